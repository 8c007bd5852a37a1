package engine

import (
	"slices"
	"testing"
	"time"

	"go.dedis.ch/kyber/v3/share"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/enclave/gatekeeper"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/threshold"
	"github.com/phalago/phala/internal/relayer"
)

// checkpointEntries returns contract id's entries on chain at its latest
// accepted state update (as e follows it) and that update.
func checkpointEntries(t *testing.T, h *recoveryHarness, e *Engine, id crypto.PublicKey) ([]api.StateChange, api.Checkpoint) {
	t.Helper()
	syncTo(t, h.ch, e)
	cp, meta := e.st.checkpoints[id], e.st.cpMeta[id]
	if meta.acceptedAt == 0 {
		t.Fatal("no accepted state update")
	}
	entries, err := (&relayer.Fetcher{C: h.ch.c}).Entries(ctx(t), id, meta.acceptedAt)
	if err != nil {
		t.Fatal(err)
	}
	return entries, cp
}

// A contract's key follows the MasterKey's rotation, and what the
// rotation retired is gone (P2) and useless for what comes after (P3),
// with real pRuntimes: an elected set of 4 (key era 1) serves a contract
// that writes state; its sealed shares are taken then (a leak of 3 of
// them: enough for the era's key). At the next era end the set makes a
// fresh MasterKey (era 2), the chain moves the contract to key epoch 1
// under it, the workers re-encrypt its state and the chain retires era 1:
// every member destroys its share. P3: the leaked era-1 key set derives
// the contract's epoch-0 key, which opens the state as it was, and none
// of the state written after. P2: every key any pRuntime holds after
// the rotation (the shares of era 2, the running contract's epoch keys)
// opens none of the state as it was. A member paused through the rotation
// is left out of the new set and, caught up, destroys its era-1 share too;
// a worker paused through it takes the new epoch's key from the queue when
// it catches up and runs in step.
func TestKeyRotationForwardSecrecy(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	h := newRecoveryHarnessWith(t, func(g *api.GenesisState) {
		g.Params.EraLength = 160 // the deployment and its commands fit in the first elected era
		g.Params.NGatekeepers = 4
	})
	w1 := h.ch.engine(t, t.TempDir())
	register(t, h.ch, w1, bob)
	ms := electSet(t, h, 4, w1)
	workers := []*Engine{w1, h.gk}
	all := append(slices.Clone(ms), workers...)
	h.uploadOnly(t, 2)
	var rec *api.ContractRecord
	waitFor(t, 120*time.Second, "the contract running", func() bool {
		relayBatch(t, h.ch, h.bobS, all...)
		rec = h.record(t)
		return rec != nil && rec.Status == api.ContractRunning && len(rec.Workers) == 2
	})
	h.id, h.ecdh = rec.Identity, rec.Ecdh
	// Both workers run it; the lagging one is paused through the
	// rotation below.
	runner, lagging := w1, h.gk
	era1 := rec.KeyEra
	for i := uint32(1); i <= 4; i++ {
		h.command(t, 1, 40*i)
	}
	waitFor(t, 120*time.Second, "a checkpoint covering the commands", func() bool {
		relayBatch(t, h.ch, h.bobS, all...)
		cp := h.checkpoint(t)
		return cp != nil && cp.Height >= h.last
	})
	before, cpBefore := checkpointEntries(t, h, runner, h.id)

	// The leak: three members' sealed shares of era 1.
	set1 := runner.st.keySets[era1]
	leaked := leakedShares(t, set1, ms[:3])
	var pri []*share.PriShare
	for i, v := range leaked {
		pri = append(pri, &share.PriShare{I: i, V: v})
	}
	x1, err := share.RecoverSecret(threshold.Suite, pri, int(set1.T), len(set1.Members))
	if err != nil {
		t.Fatal(err)
	}
	hp := threshold.ContractPoint(h.upload, 0, era1)
	seed0, _ := threshold.ContractSeed(threshold.Suite.Point().Mul(x1, hp), h.upload, 0)
	k0, _ := keys.ContractKeysFromSeed(seed0)
	if _, err := contracts.OpenStore([]contracts.EpochKey{{Epoch: 0, Key: k0.Storage}}, cpBefore.Seq, before, cpBefore.Root); err != nil {
		t.Fatalf("the leaked key does not open the state as it was: %v", err)
	}

	// The rotation, with one member's pRuntime paused throughout (it
	// posts no DKG key: the other three make era 2 without it), then
	// caught up.
	paused := ms[3]
	up := append(slices.Clone(ms[:3]), runner)
	waitFor(t, 5*time.Minute, "the next key era serving", func() bool {
		relayBatch(t, h.ch, h.bobS, up...)
		return ms[0].st.servingKeyEra > era1
	})
	if set := ms[0].st.keySets[ms[0].st.servingKeyEra]; set.Index(paused.Identity()) >= 0 || len(set.Members) != 3 {
		t.Fatalf("the paused member is in the new key set %+v", set)
	}
	// The contract's new key epoch, the re-encryption, the retirement of
	// era 1, with the paused member and the lagging worker caught up.
	waitFor(t, 5*time.Minute, "the contract migrated to the next key era and era 1 retired", func() bool {
		relayBatch(t, h.ch, h.bobS, all...)
		r := h.record(t)
		retired := true
		for _, m := range ms {
			retired = retired && !m.gk.Holds(era1)
		}
		return r != nil && r.KeyEra > era1 && r.KeyEpoch == 1 && !r.Migrating && retired
	})
	// A command after the migration, and its checkpoint.
	rec = h.record(t)
	h.ecdh = rec.Ecdh
	h.command(t, 1, 99)
	waitFor(t, 120*time.Second, "a checkpoint after the migration", func() bool {
		relayBatch(t, h.ch, h.bobS, all...)
		cp := h.checkpoint(t)
		return cp != nil && cp.Height >= h.last
	})
	after, cpAfter := checkpointEntries(t, h, runner, h.id)

	// P3: the leaked era-1 keys open nothing written after.
	for _, e := range []uint64{0, 1} {
		if _, err := contracts.OpenStore([]contracts.EpochKey{{Epoch: e, Key: k0.Storage}}, cpAfter.Seq, after, cpAfter.Root); err == nil {
			t.Fatalf("the leaked epoch-0 key opens the state written after the rotation (as epoch %d)", e)
		}
	}
	// P2: every key held after the rotation opens nothing of before.
	for _, m := range ms {
		shares, err := gatekeeper.LoadShares(m.sealer, m.cfg.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		if shares[era1] != nil {
			t.Fatalf("member %s kept its era-%d share sealed", m.Identity().Short(), era1)
		}
	}
	held := runner.running[h.id].c.Store().EpochKeys()
	if len(held) != 1 || held[0].Epoch != 1 || runner.running[h.id].prevSeed != nil {
		t.Fatalf("the worker holds epoch keys %v after the migration", held)
	}
	// The worker that lagged through the rotation took the new epoch's
	// key from the queue when it caught up: it runs the contract in step
	// (the same state root) and holds the same single epoch key.
	syncTo(t, h.ch, runner, lagging)
	lr := lagging.running[h.id]
	if lr == nil || lr.c.StateRoot() != runner.running[h.id].c.StateRoot() {
		t.Fatal("the worker that lagged through the rotation does not run the contract in step")
	}
	if lh := lr.c.Store().EpochKeys(); len(lh) != 1 || lh[0] != held[0] || lr.prevSeed != nil {
		t.Fatalf("the lagging worker holds epoch keys %v after the migration", lh)
	}
	set2 := runner.st.keySets[rec.KeyEra]
	now := leakedShares(t, set2, ms[:3])
	pri = pri[:0]
	for i, v := range now {
		pri = append(pri, &share.PriShare{I: i, V: v})
	}
	x2, err := share.RecoverSecret(threshold.Suite, pri, int(set2.T), len(set2.Members))
	if err != nil {
		t.Fatal(err)
	}
	candidates := [][32]byte{held[0].Key}
	for _, epoch := range []uint64{0, 1} { // every key era 2's MasterKey derives for the contract
		s, _ := threshold.ContractSeed(threshold.Suite.Point().Mul(x2, threshold.ContractPoint(h.upload, epoch, rec.KeyEra)), h.upload, epoch)
		k, _ := keys.ContractKeysFromSeed(s)
		candidates = append(candidates, k.Storage)
	}
	for _, key := range candidates {
		for _, e := range []uint64{0, 1} {
			if _, err := contracts.OpenStore([]contracts.EpochKey{{Epoch: e, Key: key}}, cpBefore.Seq, before, cpBefore.Root); err == nil {
				t.Fatal("a key held after the rotation opens the state as it was before")
			}
		}
	}
}
