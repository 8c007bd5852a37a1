package engine

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/phalago/phala/api"
)

// The elected gatekeeper set takes over from the genesis gatekeeper with
// real pRuntimes (whitepaper 4.4): a staked candidate is elected at an
// era's end; the genesis gatekeeper seals the MasterKey to it; it
// confirms; the chain activates the set; the genesis gatekeeper stops
// serving keys, and the next contract is provisioned by the new one.
func TestGatekeeperElectionHandover(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	const eraLength = 20
	ch := newChainWith(t, func(g *api.GenesisState) {
		g.Params.EraLength = eraLength
		g.Params.NGatekeepers = 1
	})
	gk := ch.engine(t, ch.gkDir)
	cand := ch.engine(t, t.TempDir())
	w := ch.engine(t, t.TempDir())
	for _, e := range []*Engine{gk, cand, w} {
		register(t, ch, e, bob)
	}
	bobS := ch.c.NewSigner(bob)
	for _, c := range []api.Call{
		&api.StakeBond{Amount: 100 * api.Unit},
		&api.StakeAllocate{Node: cand.Identity(), Amount: 100 * api.Unit},
		&api.GatekeeperCandidacy{Node: cand.Identity(), On: true},
	} {
		if _, err := bobS.Submit(ctx(t), c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	active := func() bool {
		v, _, err := queryRaw(t, ch.c, api.QueryGatekeepers, nil)
		if err != nil {
			t.Fatal(err)
		}
		ks, _ := api.DecodeKeys(v)
		return len(ks) == 1 && ks[0] == cand.Identity()
	}
	waitFor(t, 120*time.Second, "the elected set active on chain", func() bool {
		relay(t, ch, bobS, gk, cand, w)
		return active()
	})
	relay(t, ch, bobS, gk, cand, w)
	if !holdsMaster(cand) || masterOf(cand) != chainMaster(cand) || cand.role != RoleGatekeeper {
		t.Fatalf("the elected gatekeeper: role %s, master %v (chain's %s)", cand.role, holdsMaster(cand), chainMaster(cand).Short())
	}
	if gk.role != RoleWorker {
		t.Fatalf("the genesis gatekeeper still serves: role %s", gk.role)
	}
	// The next upload is provisioned by the new gatekeeper.
	aliceS := ch.c.NewSigner(alice)
	wasm := emitterWasm(t)
	if _, err := aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, wasm), Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	upload := api.UploadID(alice.Public(), sha256.Sum256(wasm), 0)
	var rec *api.ContractRecord
	waitFor(t, 60*time.Second, "the contract running", func() bool {
		relay(t, ch, bobS, gk, cand, w)
		if v, _, _ := queryRaw(t, ch.c, api.QueryContractUpload, upload[:]); len(v) == 32 {
			cv, _, _ := queryRaw(t, ch.c, api.QueryContract, v)
			rec, _ = api.DecodeContractRecord(cv)
		}
		return rec != nil && rec.Status == api.ContractRunning
	})
	for _, k := range rec.Workers {
		if k == cand.Identity() {
			t.Fatal("the serving gatekeeper runs a contract")
		}
	}
	// The key came from the new set: the contract's key era is the
	// elected set's (the genesis gatekeeper is not a member of it).
	if rec.KeyEra == 0 {
		t.Fatal("the contract's key was derived under the genesis key set, not the elected one")
	}
}
