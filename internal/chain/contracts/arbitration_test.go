package contracts

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/store"
)

func undoSeeds() []*undoRecord {
	return []*undoRecord{
		{Accepted: 9, Root: [32]byte{1}, Old: []api.StateChange{{Location: [32]byte{1}, Value: make([]byte, 8)}, {Location: [32]byte{2}}}},
		{Accepted: 1 << 40, Root: [32]byte{2}, Prev: &api.Checkpoint{Height: 7, Seq: 3, Calls: 2, Root: [32]byte{3}, Entries: 1, Bytes: 50}, Settled: true, Old: []api.StateChange{}},
	}
}

// Undo records round-trip exactly; a decoder of state refuses what is not
// canonical: locations out of order, a short value, a zero accepting
// height, trailing bytes, a truncation.
func TestUndoRecordRoundTrip(t *testing.T) {
	for _, u := range undoSeeds() {
		got, err := decodeUndo(u.encode())
		if err != nil || !bytes.Equal(got.encode(), u.encode()) || got.Accepted != u.Accepted || got.Settled != u.Settled || (got.Prev == nil) != (u.Prev == nil) || len(got.Old) != len(u.Old) {
			t.Fatalf("round trip %+v: %+v %v", u, got, err)
		}
		if u.Prev != nil && *got.Prev != *u.Prev {
			t.Fatalf("prev %+v", got.Prev)
		}
	}
	ok := undoSeeds()[0]
	for name, u := range map[string]*undoRecord{
		"out of order": {Accepted: 1, Old: []api.StateChange{{Location: [32]byte{2}}, {Location: [32]byte{1}}}},
		"repeated":     {Accepted: 1, Old: []api.StateChange{{Location: [32]byte{2}}, {Location: [32]byte{2}}}},
		"short value":  {Accepted: 1, Old: []api.StateChange{{Location: [32]byte{2}, Value: []byte{1}}}},
		"height 0":     {Accepted: 0},
	} {
		if _, err := decodeUndo(u.encode()); !errors.Is(err, api.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, b := range map[string][]byte{"trailing": append(ok.encode(), 0), "truncated": ok.encode()[:len(ok.encode())-1]} {
		if _, err := decodeUndo(b); !errors.Is(err, api.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzDecodeUndo: whatever decodes re-encodes to the same bytes.
func FuzzDecodeUndo(f *testing.F) {
	for _, u := range undoSeeds() {
		f.Add(u.encode())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if u, err := decodeUndo(b); err == nil && !bytes.Equal(u.encode(), b) {
			t.Fatalf("undo record mismatch %x", b)
		}
	})
}

// Undo records are kept for arbitration_window blocks after their
// acceptance and pruned when the contract's next update is applied (none
// with a window of 0; the open dispute's and later ones whatever their
// age); votes go with them, and a replica's vote for a height the chain
// has no update of yet waits for it.
func TestUndoPruning(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	contract, _, _ := crypto.GenerateKeyPair()
	worker, _, _ := crypto.GenerateKeyPair()
	ctx := &block.Context{KV: st, ChainID: "c", Height: 10, Time: time.Unix(1, 0), Params: api.DefaultParams()}
	ctx.Params.ArbitrationWindow = 5
	st.Set(api.ContractKey(contract.Public()), (&api.ContractRecord{Identity: contract.Public(), Workers: []crypto.PublicKey{worker.Public()}}).Encode())
	root := api.EmptyStateRoot
	apply := func(height int64) {
		next := [32]byte{byte(height)}
		u := &api.StateUpdate{Height: height, Seq: uint64(height), PrevRoot: root, NewRoot: next, Changes: []api.StateChange{{Location: [32]byte{byte(height)}, Value: make([]byte, 9)}}}
		OnState(ctx, contract.Public(), u.Encode())
		if cp := currentCheckpoint(st, contract.Public()); cp.Root != next {
			t.Fatalf("update %d not applied", height)
		}
		root = next
	}
	vote := func(height int64) {
		OnVote(ctx, worker.Public(), (&api.StateVote{Contract: contract.Public(), Height: height, Root: [32]byte{1}}).Encode())
	}
	has := func(height int64) (undo, voted bool) {
		return st.Get(undoKey(contract.Public(), height)) != nil, st.Get(voteKey(contract.Public(), height, worker.Public())) != nil
	}
	apply(9) // accepted at 10
	vote(9)
	ctx.Height = 12
	vote(11) // before its update
	vote(13) // not before this block: ignored
	if u, v := has(9); !u || !v {
		t.Fatalf("undo %v vote %v at 9", u, v)
	}
	if _, v := has(11); !v {
		t.Fatal("early vote not kept")
	}
	if _, v := has(13); v {
		t.Fatal("vote for a future height kept")
	}
	apply(11) // accepted at 12
	vote(10)  // between updates: no update of that height
	if _, v := has(10); v {
		t.Fatal("vote for a height without update kept")
	}
	ctx.Height = 15
	apply(14) // accepted at 15: the record of 9 (accepted at 10) is 5 blocks old, kept
	if u, _ := has(9); !u {
		t.Fatal("record pruned within the window")
	}
	ctx.Height = 16
	apply(15)
	if u, v := has(9); u || v {
		t.Fatalf("record of 9 kept past the window (undo %v vote %v)", u, v)
	}
	if u, v := has(11); !u || !v {
		t.Fatal("record of 11 pruned")
	}
	// An open dispute keeps its record and the later ones.
	st.Set(api.ArbitrationKey(contract.Public()), (&api.Arbitration{Height: 11, PrevHeight: 9, Opened: 16}).Encode())
	ctx.Height = 40
	apply(39)
	for _, h := range []int64{11, 14, 15, 39} {
		if u, _ := has(h); !u {
			t.Fatalf("record of %d pruned during the dispute", h)
		}
	}
	// Closed, with arbitration off: none is kept.
	st.Delete(api.ArbitrationKey(contract.Public()))
	ctx.Params.ArbitrationWindow = 0
	ctx.Height = 41
	apply(40)
	for _, h := range []int64{11, 14, 15, 39, 40} {
		if u, v := has(h); u || v {
			t.Fatalf("record of %d kept with a window of 0 (undo %v vote %v)", h, u, v)
		}
	}
}
