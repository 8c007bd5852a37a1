package app_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/app"
	"github.com/phalago/phala/internal/chain/store"
	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/relayer"
	"github.com/phalago/phala/internal/testnet"
)

// checkpointState is a contract's encrypted entries as a chain holds them
// after its state updates, with the checkpoint record of their root.
type checkpointState struct {
	contract crypto.PublicKey
	entries  []api.StateChange
	seq      uint64
	root     [32]byte
}

// newCheckpointState makes n entries shaped like a pRuntime store's
// (locations uniformly spread, ascending; values seq(8) ‖ epoch 0 ‖ 27 bytes of
// ciphertext ‖ a 16-byte tag: what Store.Set writes for a small value).
func newCheckpointState(contract crypto.PublicKey, n int, seed uint64) *checkpointState {
	rng := rand.New(rand.NewPCG(seed, 1))
	vals := make([]byte, n*52)
	for i := range vals {
		vals[i] = byte(rng.Uint32())
	}
	es := make([]api.StateChange, n)
	for i := range es {
		for j := 0; j < 32; j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				es[i].Location[j+k] = byte(v >> (8 * k))
			}
		}
		vals[i*52+8] = 0 // key epoch 0 (contracts.ParseValueHeader)
		es[i].Value = vals[i*52 : (i+1)*52 : (i+1)*52]
	}
	slices.SortFunc(es, func(a, b api.StateChange) int { return bytes.Compare(a.Location[:], b.Location[:]) })
	es = slices.CompactFunc(es, func(a, b api.StateChange) bool { return a.Location == b.Location })
	seq := uint64(len(es)) + 41
	return &checkpointState{contract: contract, entries: es, seq: seq, root: api.StateRoot(seq, es)}
}

// write stores the entries and the checkpoint record where the contracts
// module keeps them (contracts.OnState writes the same keys).
func (c *checkpointState) write(kv store.KV) {
	var bytes uint64
	for _, e := range c.entries {
		kv.Set(api.StateEntryKey(c.contract, e.Location), e.Value)
		bytes += uint64(api.StateLocationSize + len(e.Value))
	}
	cp := &api.Checkpoint{Height: 1, Seq: c.seq, Calls: 7, Root: c.root, Entries: uint64(len(c.entries)), Bytes: bytes}
	kv.Set(api.CheckpointKey(c.contract), cp.Encode())
}

// startWithCheckpoints starts a one-validator in-process node whose block
// 1 holds the given contracts' entries and checkpoint records (written by
// a test-only genesis hook: how the entries got there is not what these
// tests measure), and returns it once it has committed height 2.
func startWithCheckpoints(tb testing.TB, timeout time.Duration, states ...*checkpointState) *testnet.Network {
	app.SetGenesisHook(func(kv store.KV) {
		for _, s := range states {
			s.write(kv)
		}
	})
	defer app.SetGenesisHook(nil)
	return testnet.New(tb, testnet.Options{StartTimeout: timeout})
}

// Fetcher.Entries lists exactly one contract's entries at a height, in
// order, whatever the number of parallel ranges, across pages; the old
// query forms (the client's after-cursor paging) list the same; the
// listing rebuilds a store with the checkpoint's root; a height the node
// does not hold is an error.
func TestFetcherEntries(t *testing.T) {
	a := crypto.PublicKey{0x10, 0xff}
	b := a
	b[31]++                                // right after a: a listing must not run into it
	sa := newCheckpointState(a, 60_000, 1) // 2 pages in one range
	sb := newCheckpointState(b, 500, 2)
	net := startWithCheckpoints(t, 60*time.Second, sa, sb)
	c := net.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cp, h, err := c.Checkpoint(ctx, a)
	if err != nil || cp.Root != sa.root || cp.Entries != uint64(len(sa.entries)) {
		t.Fatalf("checkpoint: %+v %v", cp, err)
	}
	for _, workers := range []int{1, 3, 8} {
		f := &relayer.Fetcher{C: c, Workers: workers}
		got, err := f.Entries(ctx, a, h)
		if err != nil {
			t.Fatalf("%d workers: %v", workers, err)
		}
		if !slices.EqualFunc(got, sa.entries, func(x, y api.StateChange) bool {
			return x.Location == y.Location && bytes.Equal(x.Value, y.Value)
		}) {
			t.Fatalf("%d workers: %d entries listed, not the %d written", workers, len(got), len(sa.entries))
		}
		if workers == 8 {
			s, err := contracts.StoreFromEntries([32]byte{1}, cp.Seq, got, cp.Root)
			if err != nil || s.Len() != len(sa.entries) {
				t.Fatalf("rebuild: %v", err)
			}
		}
	}
	old, err := c.ContractEntries(ctx, b)
	if err != nil || len(old) != len(sb.entries) || api.StateRoot(sb.seq, old) != sb.root {
		t.Fatalf("old query form: %d entries, %v", len(old), err)
	}
	if _, err := (&relayer.Fetcher{C: c}).Entries(ctx, a, h+1000); err == nil {
		t.Fatal("entries at a future height")
	}
	if _, err := (&relayer.Fetcher{C: c}).Entries(ctx, a, 0); err == nil {
		t.Fatal("entries at no height")
	}
	// Entries of a wrong state do not rebuild.
	if _, err := contracts.StoreFromEntries([32]byte{1}, cp.Seq, sb.entries, cp.Root); !errors.Is(err, contracts.ErrRootMismatch) {
		t.Fatalf("other entries: %v", err)
	}
}
