package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/enclave/contracts"
)

// State updates on chain (docs/availability.md): both replicas cut the
// same update at the same heights, byte for byte; the chain applies the
// first, its checkpoint root is the replicas' root and its entries are
// the store's; an update whose previous root is not the chain's is
// refused and changes nothing.
func TestStateUpdatesOnChain(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	ch := newChain(t)
	gk := ch.engine(t, ch.gkDir)
	w1 := ch.engine(t, t.TempDir())
	w2 := ch.engine(t, t.TempDir())
	for _, e := range []*Engine{gk, w1, w2} {
		register(t, ch, e, bob)
	}
	bobS, aliceS := ch.c.NewSigner(bob), ch.c.NewSigner(alice)
	wasm := emitterWasm(t)
	if _, err := aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, wasm), Replicas: 2, CheckpointInterval: api.MaxCheckpointInterval + 1}); err == nil {
		t.Fatal("an interval over the maximum was accepted")
	}
	const interval = 3 // the deployer's
	if _, err := aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, wasm), Replicas: 2, CheckpointInterval: interval}); err != nil {
		t.Fatal(err)
	}
	upload := api.UploadID(alice.Public(), sha256.Sum256(wasm), 0)
	var rec *api.ContractRecord
	waitFor(t, 60*time.Second, "the contract running on both workers", func() bool {
		relay(t, ch, bobS, gk, w1, w2)
		if v, _, _ := queryRaw(t, ch.c, api.QueryContractUpload, upload[:]); len(v) == 32 {
			cv, _, _ := queryRaw(t, ch.c, api.QueryContract, v)
			rec, _ = api.DecodeContractRecord(cv)
		}
		return rec != nil && rec.Status == api.ContractRunning && len(rec.Workers) == 2
	})
	id := rec.Identity
	var last int64
	for nonce := uint64(1); nonce <= 3; nonce++ {
		in := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 0), uint32(100*nonce))
		chn, err := channel.New(alice, rec.Ecdh, api.ChannelPurposeCommand)
		if err != nil {
			t.Fatal(err)
		}
		res, err := aliceS.Submit(ctx(t), &api.ContractCommand{Contract: id, Nonce: nonce, GasLimit: testGas, Sealed: chn.Seal(api.Pad(in), api.CommandAD(id, alice.Public(), nonce))})
		if err != nil {
			t.Fatal(err)
		}
		last = res.Height
	}
	checkpoint := func() *api.Checkpoint {
		v, _, err := queryRaw(t, ch.c, api.QueryCheckpoint, id[:])
		if err != nil || v == nil {
			return nil
		}
		cp, err := api.DecodeCheckpoint(v)
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	// The replicas' updates, compared before the chain takes them.
	updates := func(e *Engine) map[uint64][]byte {
		out := map[uint64][]byte{}
		for _, m := range e.Egress() {
			if m.Message.Topic == api.TopicContractState && m.Message.Origin.Key == id {
				out[m.Message.Seq] = m.Message.Payload
				u, err := api.DecodeStateUpdate(m.Message.Payload)
				if err != nil {
					t.Fatal(err)
				}
				if (uint64(u.Height)+api.CheckpointPhase(id, interval))%interval != 0 {
					t.Fatalf("update cut at height %d, not on the contract's cadence of %d blocks", u.Height, interval)
				}
			}
		}
		return out
	}
	var cp *api.Checkpoint
	compared := 0
	waitFor(t, 60*time.Second, "a checkpoint covering the commands", func() bool {
		syncTo(t, ch, gk, w1, w2)
		u1, u2 := updates(w1), updates(w2)
		for seq, p := range u1 {
			if q, ok := u2[seq]; ok {
				if !bytes.Equal(p, q) {
					t.Fatalf("replicas' updates differ at sequence %d", seq)
				}
				compared++
			}
		}
		pushEgress(t, ch, bobS, gk, w1, w2) // no sync: every cut is compared first
		cp = checkpoint()
		return cp != nil && cp.Height >= last
	})
	if compared == 0 {
		t.Fatal("no pair of replica updates compared")
	}
	roots := w1.ContractRoots()
	if cp.Root != roots[id] || cp.Root != w2.ContractRoots()[id] {
		t.Fatalf("checkpoint root %x, replicas %x / %x", cp.Root[:4], roots[id], w2.ContractRoots()[id])
	}
	w1.mu.Lock()
	n := w1.running[id].c.Store().Len()
	calls := w1.running[id].c.Calls()
	keys := w1.running[id].c.Keys()
	w1.mu.Unlock()
	if cp.Entries != uint64(n) || cp.Seq == 0 || cp.Calls != calls {
		t.Fatalf("checkpoint %+v, store of %d entries", cp, n)
	}
	// Every pRuntime follows the checkpoint from the queue alone, by the
	// chain's rule, and the contract's latest command: the gatekeeper,
	// which does not run it, too.
	syncTo(t, ch, gk)
	gk.mu.Lock()
	followed, lastCmd := gk.st.checkpoints[id], gk.st.lastCommand[id]
	gk.mu.Unlock()
	if followed.Height != cp.Height || followed.Seq != cp.Seq || followed.Calls != cp.Calls || followed.Root != cp.Root || lastCmd != last {
		t.Fatalf("the gatekeeper follows checkpoint %+v and last command %d; the chain has %+v, the last command was at %d", followed, lastCmd, cp, last)
	}
	// The chain alone holds the contract's state: its entries, read back,
	// have the checkpoint's root (what a recovering worker checks).
	entries, err := ch.c.ContractEntries(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if got := contracts.RootOfEntries(cp.Seq, entries); got != cp.Root || uint64(len(entries)) != cp.Entries {
		t.Fatalf("%d entries on chain with root %x, checkpoint %+v", len(entries), got[:4], cp)
	}
	// A forged update (signed with the contract's key, as only an
	// enclave can) whose previous root is not the chain's: refused.
	origin := api.KeyOrigin(api.OriginContract, id)
	v, _, err := queryRaw(t, ch.c, api.QueryNextSeq, origin.Encode())
	if err != nil {
		t.Fatal(err)
	}
	next, _ := binary.Uvarint(v)
	bad := &api.StateUpdate{Height: cp.Height + 1, Seq: cp.Seq + 1, PrevRoot: [32]byte{1}, NewRoot: [32]byte{2}}
	m := api.SignMessage(ch.net.ChainID, api.Message{Origin: origin, Topic: api.TopicContractState, Seq: next, Payload: bad.Encode()}, keys.Identity)
	if _, err := bobS.Submit(ctx(t), &api.PushMessage{Message: m}); err != nil {
		t.Fatal(err)
	}
	if got := checkpoint(); got.Root != cp.Root || got.Height != cp.Height {
		t.Fatalf("a forged update moved the checkpoint: %+v", got)
	}
	// Another key cannot sign in the contract's name.
	other, _, _ := crypto.GenerateKeyPair()
	m = api.SignMessage(ch.net.ChainID, api.Message{Origin: origin, Topic: api.TopicContractState, Seq: next + 1, Payload: bad.Encode()}, other)
	if _, err := bobS.Submit(ctx(t), &api.PushMessage{Message: m}); err == nil {
		t.Fatal("an update signed by another key was admitted")
	}
}

// pushEgress submits es's egress the chain has not taken yet, without
// syncing them first.
func pushEgress(t *testing.T, ch *chain, s *client.Signer, es ...*Engine) {
	t.Helper()
	for _, e := range es {
		for _, m := range e.Egress() {
			v, _, err := queryRaw(t, ch.c, api.QueryNextSeq, m.Message.Origin.Encode())
			if err != nil {
				t.Fatal(err)
			}
			next, _ := binary.Uvarint(v)
			if m.Message.Seq < next {
				continue
			}
			if _, err := s.Submit(ctx(t), &api.PushMessage{Message: m}); err != nil {
				t.Fatalf("push %s: %v", m.Message.Topic, err)
			}
		}
	}
}
