package engine

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// upload submits alice's upload of the emitter asking replicas (state
// updates every 3 blocks) and returns the height of its block.
func (h *recoveryHarness) uploadOnly(t *testing.T, replicas uint8) int64 {
	t.Helper()
	wasm := emitterWasm(t)
	res, err := h.aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, wasm), Replicas: replicas, CheckpointInterval: 3})
	if err != nil {
		t.Fatal(err)
	}
	h.upload = api.UploadID(alice.Public(), sha256.Sum256(wasm), 0)
	return res.Height
}

// waitRunning relays for es (and the gatekeeper) until the contract runs
// on exactly workers.
func (h *recoveryHarness) waitRunning(t *testing.T, what string, workers []crypto.PublicKey, es ...*Engine) *api.ContractRecord {
	t.Helper()
	var rec *api.ContractRecord
	waitFor(t, 120*time.Second, what, func() bool {
		relay(t, h.ch, h.bobS, append([]*Engine{h.gk}, es...)...)
		rec = h.record(t)
		return rec != nil && rec.Status == api.ContractRunning && slices.Equal(rec.Workers, workers)
	})
	h.id, h.ecdh = rec.Identity, rec.Ecdh
	return rec
}

// A contract asking two replicas, uploaded when one worker exists, runs
// on that one; a second worker registering later is granted it (the
// gatekeeper grants waiting replicas when a worker registers), recovers
// it from the chain, and from then on emits byte for byte the first
// worker's state updates.
func TestReplicaGrantedWhenWorkerRegisters(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	h := newRecoveryHarness(t)
	w1 := h.ch.engine(t, t.TempDir())
	register(t, h.ch, w1, bob)
	h.uploadOnly(t, 2)
	h.waitRunning(t, "the contract running on the only worker", []crypto.PublicKey{w1.Identity()}, w1)
	for i := uint32(1); i <= 3; i++ {
		h.command(t, 1, 20*i)
	}
	waitFor(t, 60*time.Second, "a checkpoint covering the commands", func() bool {
		relay(t, h.ch, h.bobS, h.gk, w1)
		cp := h.checkpoint(t)
		return cp != nil && cp.Height >= h.last
	})
	if rec := h.record(t); len(rec.Workers) != 1 {
		t.Fatalf("workers %v before a second worker exists", rec.Workers)
	}

	w2 := h.ch.engine(t, t.TempDir())
	register(t, h.ch, w2, bob)
	h.bobS = h.ch.c.NewSigner(bob) // register signed with bob's key: a new nonce
	waitFor(t, 60*time.Second, "the new worker granted the contract and recovering it", func() bool {
		relay(t, h.ch, h.bobS, h.gk, w1, w2)
		return len(w2.Info().Recovering) == 1
	})
	if rec := h.record(t); !slices.Equal(rec.Workers, []crypto.PublicKey{w1.Identity(), w2.Identity()}) {
		t.Fatalf("workers after the grant %v", rec.Workers)
	}
	syncTo(t, h.ch, w1, w2)
	if n, err := recoverAll(t, h.ch, w2, nil); err != nil || n != 1 {
		t.Fatalf("recovery: %d, %v", n, err)
	}
	if a, b := w2.ContractRoots()[h.id], w1.ContractRoots()[h.id]; a != b {
		t.Fatalf("roots after recovery: %x, first worker %x", a[:4], b[:4])
	}
	h.command(t, 2, 33)
	updates := 0
	waitFor(t, 60*time.Second, "a state update of the new command from both workers, identical", func() bool {
		syncTo(t, h.ch, h.gk, w1, w2)
		u1, u2 := contractEgress(w1, h.id), contractEgress(w2, h.id)
		for seq, p := range u2 {
			q, ok := u1[seq]
			if !ok {
				continue
			}
			if !bytes.Equal(p, q) {
				t.Fatalf("the workers' messages differ at sequence %d", seq)
			}
			topic, payload, _ := bytes.Cut(p, []byte{0})
			if u, err := api.DecodeStateUpdate(payload); string(topic) == api.TopicContractState && err == nil && u.Height >= h.last {
				updates++
			}
		}
		pushEgress(t, h.ch, h.bobS, h.gk, w1, w2)
		cp := h.checkpoint(t)
		return updates > 0 && cp != nil && cp.Height >= h.last
	})
	if a, b := w2.ContractRoots()[h.id], w1.ContractRoots()[h.id]; a != b {
		t.Fatalf("roots after the new command: %x, first worker %x", a[:4], b[:4])
	}
}

// An upload committed while no worker is registered waits (the issue's
// trial: "upload committed at height 15 while the only worker registered
// at height 24 was never deployed"): once a worker registers, the
// gatekeeper grants it and the contract runs there and takes commands.
func TestUploadBeforeAnyWorkerDeployed(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	h := newRecoveryHarness(t) // a gatekeeper, no worker
	at := h.uploadOnly(t, 1)
	waitFor(t, 60*time.Second, "the gatekeeper past the upload", func() bool {
		relay(t, h.ch, h.bobS, h.gk)
		return h.gk.Info().Dispatched > at+2
	})
	if rec := h.record(t); rec != nil {
		t.Fatalf("deployed with no worker: %+v", rec)
	}
	if v, _, err := queryRaw(t, h.ch.c, api.QueryUploadPending, h.upload[:]); err != nil || v == nil {
		t.Fatalf("the upload is not pending: %v", err)
	}

	w1 := h.ch.engine(t, t.TempDir())
	register(t, h.ch, w1, bob)
	h.bobS = h.ch.c.NewSigner(bob)
	rec := h.waitRunning(t, "the waiting upload deployed on the new worker", []crypto.PublicKey{w1.Identity()}, w1)
	if rec.StatusHeight <= at {
		t.Fatalf("status height %d, upload at %d", rec.StatusHeight, at)
	}
	before := w1.ContractRoots()[h.id]
	h.command(t, 1, 64)
	waitFor(t, 60*time.Second, "the command executed and checkpointed", func() bool {
		relay(t, h.ch, h.bobS, h.gk, w1)
		cp := h.checkpoint(t)
		return cp != nil && cp.Height >= h.last
	})
	if w1.ContractRoots()[h.id] == before {
		t.Fatal("the command changed nothing")
	}
}
