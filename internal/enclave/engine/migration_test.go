package engine

import (
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/gatekeeper"
	"github.com/phalago/phala/internal/enclave/platform"
)

// newBuildEngine starts a pRuntime whose sim measurement is that of code
// (another build than the harness's).
func newBuildEngine(t *testing.T, ch *chain, code []byte) *Engine {
	t.Helper()
	dir := t.TempDir()
	p, err := platform.NewSim(dir, code, quiet())
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{DataDir: dir, Genesis: ch.genesis, Endpoint: "http://127.0.0.1:1", Platform: p, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A runtime migration moves a running contract and the gatekeeper seat
// to a second build (another measurement): governance approves the new
// build's measurement; a new-build gatekeeper is elected (old-build
// candidates are not) and makes a fresh key set by DKG; the contract
// gets a new-build worker (its key from the key set's members sealed to
// the worker's attested EcdhKey, its state from the on-chain checkpoint)
// beside its old-build one, and loses the old one once the new one says
// it caught up; the chain then revokes the old measurement. The old
// builds retire (no contract, no MasterKey share, queries refused), the
// contract's next state updates chain on from the old worker's (its
// state came over intact) and it moves to a fresh key epoch.
func TestRuntimeMigration(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	h := newRecoveryHarnessWith(t, func(g *api.GenesisState) {
		g.Params.EraLength = 60
		g.Params.NGatekeepers = 1
	})
	w1 := h.ch.engine(t, t.TempDir())
	register(t, h.ch, w1, bob)
	h.bobS = h.ch.c.NewSigner(bob)
	rec := h.deploy(t, 1, w1)
	for range 3 {
		h.command(t, 1, 16)
	}
	waitFor(t, 60*time.Second, "a checkpoint covering the commands", func() bool {
		relay(t, h.ch, h.bobS, h.gk, w1)
		cp := h.checkpoint(t)
		return cp != nil && cp.Height >= h.last
	})

	code2 := append(slices.Clone(code), " v2"...)
	target := sha256.Sum256(code2)
	enactMotion(t, h.ch, h.aliceS, h.bobS, api.Action{Kind: api.ActionMigrateRuntime, Measurement: target[:]})
	// A second migration while this one runs is refused.
	if _, err := h.aliceS.Submit(ctx(t), &api.GovPropose{Action: api.Action{Kind: api.ActionMigrateRuntime, Measurement: make([]byte, api.SimMeasurementSize)}}); err == nil {
		t.Fatal("a second migration was proposed while one runs")
	}
	gk2, w2 := newBuildEngine(t, h.ch, code2), newBuildEngine(t, h.ch, code2)
	register(t, h.ch, gk2, bob)
	register(t, h.ch, w2, bob)
	h.bobS = h.ch.c.NewSigner(bob) // register signed with another signer
	// An old-build candidate stands too: the election seats only the
	// new build.
	for _, c := range []api.Call{&api.StakeBond{Amount: 300 * api.Unit},
		&api.StakeAllocate{Node: gk2.Identity(), Amount: 100 * api.Unit}, &api.GatekeeperCandidacy{Node: gk2.Identity(), On: true},
		&api.StakeAllocate{Node: w1.Identity(), Amount: 200 * api.Unit}, &api.GatekeeperCandidacy{Node: w1.Identity(), On: true}} {
		if _, err := h.bobS.Submit(ctx(t), c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}

	all := []*Engine{h.gk, w1, gk2, w2}
	var done *api.RuntimeMigrated
	iter := 0
	waitFor(t, 5*time.Minute, "the migration completed", func() bool {
		relayBatch(t, h.ch, h.bobS, all...)
		if iter++; iter%50 == 0 {
			r := h.record(t)
			v, hgt, _ := queryRaw(t, h.ch.c, api.QueryGatekeepers, nil)
			gks, _ := api.DecodeKeys(v)
			ev, _, _ := queryRaw(t, h.ch.c, api.QueryKeyEra, nil)
			t.Logf("height %d: workers %v key era %d/%d epoch %d migrating %v; gatekeepers %v; serving era %x; w2 recovering %d running %d",
				hgt, r.Workers, r.KeyEra, r.PrevKeyEra, r.KeyEpoch, r.Migrating, gks, ev, len(w2.Info().Recovering), len(w2.running))
		}
		if len(w2.Info().Recovering) > 0 {
			syncTo(t, h.ch, w2)
			if _, err := recoverAll(t, h.ch, w2, nil); err != nil {
				t.Fatalf("recovery on the new build: %v", err)
			}
		}
		v, _, _ := queryRaw(t, h.ch.c, api.QueryLastMigration, nil)
		if v == nil {
			return false
		}
		var err error
		if done, err = api.DecodeRuntimeMigrated(v); err != nil {
			t.Fatal(err)
		}
		return true
	})
	old := sha256.Sum256(code)
	if string(done.Target) != string(target[:]) || len(done.Retired) != 1 || string(done.Retired[0]) != string(old[:]) {
		t.Fatalf("completed migration %+v", done)
	}
	syncTo(t, h.ch, all...)
	// The old worker left by the handover, after the new one said it
	// caught up.
	ch := h.ch
	ch.fetch(t)
	var readyAt, handedAt int64
	for _, b := range ch.blocks.Blocks {
		for _, m := range b.Messages {
			switch {
			case m.Topic == api.TopicReplicaReady && m.Origin == api.KeyOrigin(api.OriginWorker, w2.Identity()) && readyAt == 0:
				readyAt = b.Height
			case m.Topic == api.TopicContractDeployed:
				if d, err := api.DecodeContractDeployed(m.Payload); err == nil && d.Reason == api.RemovedMigrated && slices.Equal(d.Removed, []crypto.PublicKey{w1.Identity()}) {
					handedAt = b.Height
				}
			}
		}
	}
	// The handover may be in the very block that carries the last
	// readiness (the replica check runs at the end of every 10th block).
	if readyAt == 0 || handedAt < readyAt || handedAt > done.Height {
		t.Fatalf("new worker ready at %d, old worker handed over at %d, migration completed at %d", readyAt, handedAt, done.Height)
	}

	// The chain: only the new build is allowed; the contract runs on the
	// new-build worker only; the serving gatekeeper is the new build's.
	v, _, _ := queryRaw(t, h.ch.c, api.QueryAttestation, nil)
	settings, err := api.DecodeAttestationSettings(v)
	if err != nil || len(settings.Measurements) != 1 || string(settings.Measurements[0]) != string(target[:]) {
		t.Fatalf("allowlist after the migration: %+v (%v)", settings, err)
	}
	rec = h.record(t)
	if !slices.Equal(rec.Workers, []crypto.PublicKey{w2.Identity()}) {
		t.Fatalf("contract workers after the migration: %v", rec.Workers)
	}
	v, _, _ = queryRaw(t, h.ch.c, api.QueryGatekeepers, nil)
	if gks, _ := api.DecodeKeys(v); !slices.Equal(gks, []crypto.PublicKey{gk2.Identity()}) {
		t.Fatalf("gatekeepers after the migration: %v", gks)
	}
	// The old builds retired: nothing running, no share kept (in memory
	// or sealed), queries refused.
	for _, e := range []*Engine{h.gk, w1} {
		if !e.retired.Load() || len(e.running) != 0 {
			t.Fatalf("old-build pRuntime %s: retired %v, running %d contracts", e.Identity().Short(), e.retired.Load(), len(e.running))
		}
		if _, err := e.Query(ctx(t), &api.ContractQuery{Contract: rec.Identity, Worker: e.Identity()}); !errors.Is(err, ErrRetired) {
			t.Fatalf("query to a retired pRuntime: %v", err)
		}
	}
	if shares, err := gatekeeper.LoadShares(h.gk.sealer, h.gk.cfg.DataDir); err != nil || len(shares) != 0 {
		t.Fatalf("the old gatekeeper's sealed shares after the migration: %d (%v)", len(shares), err)
	}
	// The state came over intact: a new command's state update chains on
	// from the old worker's checkpoints, and the contract moves to a key
	// epoch begun after the migration.
	h.command(t, 1, 16)
	waitFor(t, 2*time.Minute, "a new-build state update and a fresh key epoch", func() bool {
		relayBatch(t, h.ch, h.bobS, gk2, w2)
		cp, r := h.checkpoint(t), h.record(t)
		return cp != nil && cp.Height >= h.last && r.EpochHeight > done.Height && !r.Migrating
	})
	if root, ok := w2.Info().Contracts[rec.Identity.Hex()]; !ok || root == "" {
		t.Fatalf("the new-build worker does not run the contract: %+v", w2.Info().Contracts)
	}
}

// A migration to a build no worker runs holds new contracts back; the
// council cancels it, the pRuntimes stop restricting their grants, and
// the old build's worker runs the contract.
func TestRuntimeMigrationCancelled(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	h := newRecoveryHarness(t)
	w1 := h.ch.engine(t, t.TempDir())
	register(t, h.ch, w1, bob)
	h.bobS = h.ch.c.NewSigner(bob)
	target := sha256.Sum256([]byte("a build nobody runs"))
	enactMotion(t, h.ch, h.aliceS, h.bobS, api.Action{Kind: api.ActionMigrateRuntime, Measurement: target[:]})
	wasm := emitterWasm(t)
	if _, err := h.aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, wasm), Replicas: 1, CheckpointInterval: 3}); err != nil {
		t.Fatal(err)
	}
	h.upload = api.UploadID(alice.Public(), sha256.Sum256(wasm), 0)
	// Held back: a few blocks relayed, no worker granted it.
	top, err := h.ch.c.Height(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "five blocks with the upload pending", func() bool {
		relay(t, h.ch, h.bobS, h.gk, w1)
		now, _ := h.ch.c.Height(ctx(t))
		return now >= top+5
	})
	if r := h.record(t); r != nil || w1.st.migration == nil {
		t.Fatalf("during the migration: record %+v, w1's migration %v", r, w1.st.migration)
	}
	enactMotion(t, h.ch, h.aliceS, h.bobS, api.Action{Kind: api.ActionCancelMigration})
	waitFor(t, 60*time.Second, "the contract running on the old build's worker", func() bool {
		relay(t, h.ch, h.bobS, h.gk, w1)
		r := h.record(t)
		return r != nil && r.Status == api.ContractRunning && len(w1.running) == 1
	})
	if w1.st.migration != nil || h.gk.st.migration != nil {
		t.Fatal("a pRuntime still restricts its grants after the cancellation")
	}
}
