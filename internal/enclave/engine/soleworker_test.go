package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/phalago/phala/api"
)

// The issue's trial with real pRuntimes (docs/keys.md, "A contract that
// loses its last worker"): a contract runs on one worker; that worker
// stands for the one gatekeeper seat and is elected; it leaves the
// contract (gatekeepers run no contract); the genesis gatekeeper, member
// of the contract's key era 0 though no longer serving, provisions the
// other worker, which recovers the contract; the contract rekeys to the
// elected set's key era and key era 0 is retired unused: nothing
// stranded.
func TestSoleWorkerElectedReplaced(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	t.Run("by another worker", func(t *testing.T) { soleWorkerElected(t, false) })
	// The only eligible worker is the genesis gatekeeper, out of the set
	// now: it provisions itself.
	t.Run("by the former gatekeeper", func(t *testing.T) { soleWorkerElected(t, true) })
}

func soleWorkerElected(t *testing.T, formerOnly bool) {
	ch := newChainWith(t, func(g *api.GenesisState) {
		g.Params.EraLength = 30
		g.Params.NGatekeepers = 1
		g.Params.KeyMigrationEras = 1
	})
	gk := ch.engine(t, ch.gkDir)
	wa := ch.engine(t, t.TempDir())
	all := []*Engine{gk, wa}
	if !formerOnly {
		all = append(all, ch.engine(t, t.TempDir()))
	}
	for _, e := range all {
		register(t, ch, e, bob)
	}
	bobS := ch.c.NewSigner(bob)
	aliceS := ch.c.NewSigner(alice)
	wasm := emitterWasm(t)
	if _, err := aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, wasm), Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	upload := api.UploadID(alice.Public(), sha256.Sum256(wasm), 0)
	record := func() *api.ContractRecord {
		v, _, _ := queryRaw(t, ch.c, api.QueryContractUpload, upload[:])
		if len(v) != 32 {
			return nil
		}
		cv, _, _ := queryRaw(t, ch.c, api.QueryContract, v)
		rec, _ := api.DecodeContractRecord(cv)
		return rec
	}
	var rec *api.ContractRecord
	waitFor(t, 60*time.Second, "the contract running", func() bool {
		relay(t, ch, bobS, all...)
		rec = record()
		return rec != nil && rec.Status == api.ContractRunning && len(rec.Workers) == 1
	})
	sole, other := wa, gk
	if !formerOnly {
		sole, other = wa, all[2]
		if rec.Workers[0] == other.Identity() {
			sole, other = other, wa
		}
	}
	for _, c := range []api.Call{
		&api.StakeBond{Amount: 100 * api.Unit},
		&api.StakeAllocate{Node: sole.Identity(), Amount: 100 * api.Unit},
		&api.GatekeeperCandidacy{Node: sole.Identity(), On: true},
	} {
		if _, err := bobS.Submit(ctx(t), c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	waitFor(t, 120*time.Second, "the sole worker elected and serving", func() bool {
		relay(t, ch, bobS, all...)
		v, _, err := queryRaw(t, ch.c, api.QueryGatekeepers, nil)
		if err != nil {
			t.Fatal(err)
		}
		ks, _ := api.DecodeKeys(v)
		return len(ks) == 1 && ks[0] == sole.Identity()
	})
	t.Logf("elected; record %v", rec.Workers)
	deadline := time.Now().Add(90 * time.Second)
	for {
		relay(t, ch, bobS, all...)
		for _, e := range all {
			// What each pRuntime's pherry does (internal/relayer).
			if len(e.Info().Recovering) == 1 {
				n, err := recoverAll(t, ch, e, nil)
				t.Logf("recovery on %s: %d, %v", e.Identity().Short(), n, err)
			}
		}
		rec = record()
		if rec != nil && len(rec.Workers) == 1 && rec.Workers[0] != sole.Identity() && rec.KeyEra > 0 && !rec.Migrating {
			t.Logf("replaced by %s (the other worker %s, the genesis gatekeeper %s)", rec.Workers[0].Short(), other.Identity().Short(), gk.Identity().Short())
			break
		}
		if time.Now().After(deadline) {
			top, _ := ch.c.Height(ctx(t))
			t.Fatalf("height %d: the contract not replaced and rekeyed: workers %v key era %d epoch %d migrating %v (sole %s, other %s, genesis gatekeeper %s)",
				top, rec.Workers, rec.KeyEra, rec.KeyEpoch, rec.Migrating, sole.Identity().Short(), other.Identity().Short(), gk.Identity().Short())
		}
		time.Sleep(50 * time.Millisecond)
	}
	v, _, err := queryRaw(t, ch.c, api.QueryKeyEraRetired, binary.BigEndian.AppendUint64(nil, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(v) > 0 && v[len(v)-1] != 0 {
		t.Fatalf("key era 0 retired at its deadline: %x", v)
	}
}
