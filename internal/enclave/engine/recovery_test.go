package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/relayer"
	"github.com/phalago/phala/internal/testnet"
)

// recoveryHarness is a chain with a gatekeeper and the emitter contract
// deployed by alice with checkpoints every 3 blocks.
type recoveryHarness struct {
	ch     *chain
	gk     *Engine
	bobS   *client.Signer
	aliceS *client.Signer
	id     crypto.PublicKey
	ecdh   crypto.PublicKey
	upload [32]byte
	nonce  uint64
	last   int64 // height of the last command
	// The arbitration verdicts read from the blocks up to scanned.
	scanned  int64
	verdicts map[int64]*api.ArbitrationVerdict
}

func newRecoveryHarness(t testing.TB) *recoveryHarness {
	t.Helper()
	return newRecoveryHarnessWith(t, nil)
}

// newRecoveryHarnessWith is newRecoveryHarness with the genesis edited.
func newRecoveryHarnessWith(t testing.TB, edit func(g *api.GenesisState)) *recoveryHarness {
	t.Helper()
	return newRecoveryHarnessOpts(t, edit, testnet.Options{})
}

// newRecoveryHarnessOpts is newRecoveryHarnessWith with network options.
func newRecoveryHarnessOpts(t testing.TB, edit func(g *api.GenesisState), opts testnet.Options) *recoveryHarness {
	t.Helper()
	h := &recoveryHarness{ch: newChainOpts(t, edit, opts)}
	h.gk = h.ch.engine(t, h.ch.gkDir)
	h.bobS, h.aliceS = h.ch.c.NewSigner(bob), h.ch.c.NewSigner(alice)
	register(t, h.ch, h.gk, bob)
	return h
}

// deploy uploads the contract and waits until its record lists want
// workers and it runs.
func (h *recoveryHarness) deploy(t *testing.T, replicas uint8, es ...*Engine) *api.ContractRecord {
	t.Helper()
	wasm := emitterWasm(t)
	if _, err := h.aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, wasm), Replicas: replicas, CheckpointInterval: 3}); err != nil {
		t.Fatal(err)
	}
	h.upload = api.UploadID(alice.Public(), sha256.Sum256(wasm), 0)
	var rec *api.ContractRecord
	waitFor(t, 60*time.Second, "the contract running", func() bool {
		relay(t, h.ch, h.bobS, append([]*Engine{h.gk}, es...)...)
		rec = h.record(t)
		return rec != nil && rec.Status == api.ContractRunning && len(rec.Workers) == int(replicas)
	})
	h.id, h.ecdh = rec.Identity, rec.Ecdh
	return rec
}

func (h *recoveryHarness) record(t *testing.T) *api.ContractRecord {
	t.Helper()
	v, _, _ := queryRaw(t, h.ch.c, api.QueryContractUpload, h.upload[:])
	if len(v) != 32 {
		return nil
	}
	cv, _, _ := queryRaw(t, h.ch.c, api.QueryContract, v)
	rec, _ := api.DecodeContractRecord(cv)
	return rec
}

func (h *recoveryHarness) checkpoint(t *testing.T) *api.Checkpoint {
	t.Helper()
	v, _, err := queryRaw(t, h.ch.c, api.QueryCheckpoint, h.id[:])
	if err != nil || v == nil {
		return nil
	}
	cp, err := api.DecodeCheckpoint(v)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// command sends the emitter a command storing size bytes and emitting
// count messages.
func (h *recoveryHarness) command(t *testing.T, count, size uint32) {
	t.Helper()
	h.nonce++
	in := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, count), size)
	chn, err := channel.New(alice, h.ecdh, api.ChannelPurposeCommand)
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.aliceS.Submit(ctx(t), &api.ContractCommand{Contract: h.id, Nonce: h.nonce, GasLimit: testGas, Sealed: chn.Seal(api.Pad(in), api.CommandAD(h.id, alice.Public(), h.nonce))})
	if err != nil {
		t.Fatal(err)
	}
	h.last = res.Height
}

// contractEgress is e's pending messages in the contract's name, by
// sequence.
func contractEgress(e *Engine, id crypto.PublicKey) map[uint64][]byte {
	out := map[uint64][]byte{}
	for _, m := range e.Egress() {
		if m.Message.Origin == api.KeyOrigin(api.OriginContract, id) {
			out[m.Message.Seq] = append([]byte(m.Message.Topic+"\x00"), m.Message.Payload...)
		}
	}
	return out
}

// recoverAll does a relayer's part of recovery for e: for each contract
// it recovers, the checkpoint's entries and the blocks it needs, posted
// to Recover (optionally edited first).
func recoverAll(t *testing.T, ch *chain, e *Engine, edit func(*api.RecoverRequest)) (int, error) {
	t.Helper()
	f := &relayer.Fetcher{C: ch.c}
	n := 0
	for _, need := range e.Info().Recovering {
		id, err := crypto.ParsePublicKey(need.Contract)
		if err != nil {
			t.Fatal(err)
		}
		req := &api.RecoverRequest{Contract: id}
		if need.Purpose == api.RecoverPurposeName(api.RecoverArbitration) {
			req.Purpose = api.RecoverArbitration
		}
		if need.EntriesHeight > 0 {
			if req.Entries, err = f.Entries(ctx(t), id, need.EntriesHeight); err != nil {
				t.Fatal(err)
			}
		}
		for _, hgt := range need.Heights {
			b, err := f.Blocks(ctx(t), hgt, hgt)
			if err != nil {
				t.Fatal(err)
			}
			req.Blocks = append(req.Blocks, b.Blocks...)
		}
		if edit != nil {
			edit(req)
		}
		// Through the wire encoding, as the control API receives it.
		dec, err := api.DecodeRecoverRequest(req.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Recover(dec); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// A contract survives the permanent loss of every worker that ever ran
// it: its only worker dies with commands after the last checkpoint (and
// messages of theirs never sent); the deployer reassigns it; a fresh
// worker, granted it, recovers it from the chain alone (refusing entries
// or blocks that are not the chain's), reaches the dead worker's state
// root and emits byte for byte the messages the dead worker never sent;
// then runs new commands, its state updates accepted by the chain.
func TestRecoveryAfterLosingEveryWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	h := newRecoveryHarness(t)
	w1 := h.ch.engine(t, t.TempDir())
	register(t, h.ch, w1, bob)
	rec := h.deploy(t, 1, w1)
	if !slices.Equal(rec.Workers, []crypto.PublicKey{w1.Identity()}) {
		t.Fatalf("workers %v", rec.Workers)
	}
	for i := uint32(1); i <= 3; i++ {
		h.command(t, 1, 100*i)
	}
	waitFor(t, 60*time.Second, "a checkpoint covering the first commands", func() bool {
		relay(t, h.ch, h.bobS, h.gk, w1)
		cp := h.checkpoint(t)
		return cp != nil && cp.Height >= h.last
	})
	// Two more commands, executed by w1, which then dies: nothing it
	// emitted after them reaches the chain.
	h.command(t, 2, 7)
	h.command(t, 1, 450)
	syncTo(t, h.ch, h.gk, w1)
	lost := contractEgress(w1, h.id)
	if len(lost) < 3 {
		t.Fatalf("the dead worker holds %d unsent messages, want its commands' and a state update", len(lost))
	}
	deadRoot := w1.ContractRoots()[h.id]

	w2 := h.ch.engine(t, t.TempDir())
	register(t, h.ch, w2, bob)
	if _, err := h.aliceS.Submit(ctx(t), &api.ContractReassign{Contract: h.id, Worker: w2.Identity()}); err == nil {
		t.Fatal("reassigning a worker that does not run the contract was accepted")
	}
	if _, err := h.bobS.Submit(ctx(t), &api.ContractReassign{Contract: h.id, Worker: w1.Identity()}); err == nil {
		t.Fatal("someone else than the deployer reassigned the contract")
	}
	if _, err := h.aliceS.Submit(ctx(t), &api.ContractReassign{Contract: h.id, Worker: w1.Identity()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the replacement granted and recovering", func() bool {
		relay(t, h.ch, h.bobS, h.gk, w2)
		return len(w2.Info().Recovering) == 1
	})
	rec = h.record(t)
	if !slices.Equal(rec.Workers, []crypto.PublicKey{w2.Identity()}) || !slices.Contains(rec.Excluded, w1.Identity()) {
		t.Fatalf("after the reassignment: workers %v, excluded %v", rec.Workers, rec.Excluded)
	}
	// A query meanwhile says why it gets no answer.
	if q, err := client.NewQuery(alice, h.id, h.ecdh, w2.Identity(), nil, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	} else if _, err := w2.Query(ctx(t), q.Query); err == nil || !strings.Contains(err.Error(), "recovering") {
		t.Fatalf("query to a recovering worker: %v", err)
	}
	need := w2.Info().Recovering[0]
	if len(need.Heights) < 2 || need.EntriesHeight == 0 {
		t.Fatalf("recovery need %+v: want the checkpoint's entries and the blocks of the two commands after it", need)
	}

	// What is not the chain's is refused, and changes nothing.
	for name, tc := range map[string]struct {
		edit func(*api.RecoverRequest)
		want error
	}{
		"an altered entry": {func(q *api.RecoverRequest) { q.Entries[0].Value[len(q.Entries[0].Value)-1] ^= 1 }, contracts.ErrRootMismatch},
		"an entry dropped": {func(q *api.RecoverRequest) { q.Entries = q.Entries[1:] }, contracts.ErrRootMismatch},
		"a block missing":  {func(q *api.RecoverRequest) { q.Blocks = q.Blocks[1:] }, ErrBadInput},
		"a command removed from a block": {func(q *api.RecoverRequest) {
			b := &q.Blocks[len(q.Blocks)-1]
			b.Messages = b.Messages[:len(b.Messages)-1]
		}, ErrBadInput},
	} {
		if _, err := recoverAll(t, h.ch, w2, tc.edit); !errors.Is(err, tc.want) {
			t.Fatalf("%s: %v, want %v", name, err, tc.want)
		}
		if len(w2.Info().Recovering) != 1 || len(w2.ContractRoots()) != 0 {
			t.Fatalf("%s: a refused recovery changed the worker", name)
		}
	}
	if n, err := recoverAll(t, h.ch, w2, nil); err != nil || n != 1 {
		t.Fatalf("recovery: %d, %v", n, err)
	}
	if got := w2.ContractRoots()[h.id]; got != deadRoot {
		t.Fatalf("recovered root %x, the dead worker's %x", got[:4], deadRoot[:4])
	}
	// Byte for byte what the dead worker held; beyond it only the state
	// update it would have cut at a height it did not reach.
	deadAt := w1.Info().Dispatched
	for seq, p := range contractEgress(w2, h.id) {
		if q, ok := lost[seq]; ok {
			if !bytes.Equal(p, q) {
				t.Fatalf("message %d differs from the dead worker's", seq)
			}
			delete(lost, seq)
			continue
		}
		topic, payload, _ := bytes.Cut(p, []byte{0})
		u, err := api.DecodeStateUpdate(payload)
		if string(topic) != api.TopicContractState || err != nil || u.Height <= deadAt {
			t.Fatalf("the replacement emits message %d (%s) the dead worker, at height %d, did not", seq, topic, deadAt)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("the replacement does not emit %d of the dead worker's messages", len(lost))
	}
	// In step from now on: the chain takes its updates (their previous
	// root is the chain's), old commands' and new ones'.
	h.command(t, 0, 9)
	waitFor(t, 60*time.Second, "the replacement's checkpoints on chain", func() bool {
		relay(t, h.ch, h.bobS, h.gk, w2)
		cp := h.checkpoint(t)
		return cp != nil && cp.Height >= h.last && cp.Root == w2.ContractRoots()[h.id]
	})
	if w2.ContractRoots()[h.id] == deadRoot {
		t.Fatal("the new command changed nothing")
	}
	// It survives its own restart.
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
}

// A worker whose data directory was wiped comes back the same way: a
// new pRuntime in the same directory (a new identity), registered, is
// assigned the contract in place of the old identity and recovers it;
// its state updates are then byte-identical to the surviving replica's.
func TestRecoveryAfterWipedDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	h := newRecoveryHarness(t)
	dir := t.TempDir()
	w1 := h.ch.engine(t, dir)
	w3 := h.ch.engine(t, t.TempDir())
	register(t, h.ch, w1, bob)
	register(t, h.ch, w3, bob)
	h.deploy(t, 2, w1, w3)
	for i := uint32(1); i <= 4; i++ {
		h.command(t, 1, 10*i)
	}
	waitFor(t, 60*time.Second, "a checkpoint covering the commands", func() bool {
		relay(t, h.ch, h.bobS, h.gk, w1, w3)
		cp := h.checkpoint(t)
		return cp != nil && cp.Height >= h.last
	})
	old := w1.Identity()
	w1.Close()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	h.command(t, 1, 77) // while it is gone
	w1 = h.ch.engine(t, dir)
	if w1.Identity() == old {
		t.Fatal("a wiped pRuntime kept its identity")
	}
	register(t, h.ch, w1, bob)
	h.bobS = h.ch.c.NewSigner(bob) // register signed with bob's key: a new nonce
	if _, err := h.aliceS.Submit(ctx(t), &api.ContractReassign{Contract: h.id, Worker: old}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the wiped worker recovering the contract", func() bool {
		relay(t, h.ch, h.bobS, h.gk, w1, w3)
		return len(w1.Info().Recovering) == 1
	})
	if _, err := recoverAll(t, h.ch, w1, nil); err != nil {
		t.Fatal(err)
	}
	if a, b := w1.ContractRoots()[h.id], w3.ContractRoots()[h.id]; a != b {
		t.Fatalf("roots after recovery: %x, replica %x", a[:4], b[:4])
	}
	h.command(t, 1, 5)
	compared := 0
	waitFor(t, 60*time.Second, "identical updates from both replicas", func() bool {
		syncTo(t, h.ch, h.gk, w1, w3)
		u1, u3 := contractEgress(w1, h.id), contractEgress(w3, h.id)
		for seq, p := range u1 {
			if q, ok := u3[seq]; ok {
				if !bytes.Equal(p, q) {
					t.Fatalf("replicas' messages differ at sequence %d", seq)
				}
				compared++
			}
		}
		pushEgress(t, h.ch, h.bobS, h.gk, w1, w3)
		cp := h.checkpoint(t)
		return compared > 0 && cp != nil && cp.Height >= h.last
	})
}

// A contract reassigned right after its start, before any state update
// of its reached the chain (no checkpoint): the new worker rebuilds it
// from its deployment, and the updates it then cuts continue the chain's
// (empty) checkpoint, so the chain accepts them. (Found by
// TestEarlyReelectionKeepsContractsRunning: every update was refused with
// "previous root ... is not the contract's root".)
func TestRecoveryBeforeFirstCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	h := newRecoveryHarness(t)
	w1, w2 := h.ch.engine(t, t.TempDir()), h.ch.engine(t, t.TempDir())
	register(t, h.ch, w1, bob)
	code := contracttest.Build(t, filepath.Join("..", "..", "..", "examples", "contracts", "token"))
	if _, err := h.aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, code), Replicas: 1, CheckpointInterval: 3}); err != nil {
		t.Fatal(err)
	}
	h.upload = api.UploadID(alice.Public(), sha256.Sum256(code), 0)
	// w1 runs it; only the status report of its egress reaches the chain.
	var rec *api.ContractRecord
	waitFor(t, 60*time.Second, "the token running on w1", func() bool {
		syncTo(t, h.ch, h.gk, w1)
		for _, e := range []*Engine{h.gk, w1} {
			for _, m := range e.Egress() {
				if m.Message.Origin.Kind == api.OriginContract && m.Message.Topic == api.TopicContractState {
					break // and what follows it, numbered after it
				}
				v, _, err := queryRaw(t, h.ch.c, api.QueryNextSeq, m.Message.Origin.Encode())
				if err != nil {
					t.Fatal(err)
				}
				if next, _ := binary.Uvarint(v); m.Message.Seq < next {
					continue
				}
				if _, err := h.bobS.Submit(ctx(t), &api.PushMessage{Message: m}); err != nil {
					t.Fatalf("push %s: %v", m.Message.Topic, err)
				}
			}
		}
		rec = h.record(t)
		return rec != nil && rec.Status == api.ContractRunning
	})
	h.id, h.ecdh = rec.Identity, rec.Ecdh
	if cp := h.checkpoint(t); cp != nil {
		t.Fatalf("a checkpoint before the reassignment: %+v", cp)
	}
	register(t, h.ch, w2, bob)
	h.bobS = h.ch.c.NewSigner(bob)
	if _, err := h.aliceS.Submit(ctx(t), &api.ContractReassign{Contract: h.id, Worker: w1.Identity()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "w2 recovering the token", func() bool {
		relay(t, h.ch, h.bobS, h.gk, w2)
		return len(w2.Info().Recovering) == 1
	})
	if n, err := recoverAll(t, h.ch, w2, nil); err != nil || n != 1 {
		t.Fatalf("recovery: %d, %v", n, err)
	}
	chn, err := channel.New(alice, h.ecdh, api.ChannelPurposeCommand)
	if err != nil {
		t.Fatal(err)
	}
	h.nonce++
	in := []byte("mint " + bob.Public().Hex() + " 5")
	res, err := h.aliceS.Submit(ctx(t), &api.ContractCommand{Contract: h.id, Nonce: h.nonce, GasLimit: testGas, Sealed: chn.Seal(api.Pad(in), api.CommandAD(h.id, alice.Public(), h.nonce))})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "a checkpoint covering the mint", func() bool {
		relay(t, h.ch, h.bobS, h.gk, w2)
		cp := h.checkpoint(t)
		return cp != nil && cp.Height >= res.Height
	})
	if cp := h.checkpoint(t); cp.Root != w2.ContractRoots()[h.id] {
		t.Fatalf("checkpoint root %x, the worker's %x", cp.Root[:4], w2.ContractRoots()[h.id])
	}
}
