package engine

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/phalago/phala/api"
)

// A worker below min_worker_stake gets no contract: the gatekeeper, which
// learns node stakes from the staking module's queue messages, skips it and
// the upload waits; once its operator bonds and allocates the minimum to
// it, the gatekeeper provisions the waiting upload to it.
func TestStakeGatesAssignment(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + contracts")
	}
	const minStake = 100 * api.Unit
	ch := newChainWith(t, func(g *api.GenesisState) { g.Params.MinWorkerStake = minStake })
	gk := ch.engine(t, ch.gkDir)
	w := ch.engine(t, t.TempDir())
	bobS, aliceS := ch.c.NewSigner(bob), ch.c.NewSigner(alice)
	register(t, ch, gk, bob)
	register(t, ch, w, bob)
	bobS.Resync()
	relay(t, ch, bobS, gk, w)

	code := emitterWasm(t)
	if _, err := aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, code), Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	id := api.UploadID(alice.Public(), sha256.Sum256(code), 0)
	deployed := func() *api.ContractRecord {
		v, _, _ := queryRaw(t, ch.c, api.QueryContractUpload, id[:])
		if len(v) != 32 {
			return nil
		}
		cv, _, err := queryRaw(t, ch.c, api.QueryContract, v)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := api.DecodeContractRecord(cv)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	for range 3 {
		relay(t, ch, bobS, gk, w)
	}
	if rec := deployed(); rec != nil {
		t.Fatalf("deployed to a worker without stake: %+v", rec)
	}
	if v, _, _ := queryRaw(t, ch.c, api.QueryUploadPending, id[:]); v == nil {
		t.Fatal("the upload is not pending")
	}

	// Half the minimum is not enough.
	if _, err := bobS.Submit(ctx(t), &api.StakeBond{Amount: minStake}); err != nil {
		t.Fatal(err)
	}
	if _, err := bobS.Submit(ctx(t), &api.StakeAllocate{Node: w.Identity(), Amount: minStake / 2}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		relay(t, ch, bobS, gk, w)
	}
	if got := gk.st.nodeStake[w.Identity()]; got != minStake/2 {
		t.Fatalf("the gatekeeper knows stake %d of the worker, want %d", got, minStake/2)
	}
	if rec := deployed(); rec != nil {
		t.Fatalf("deployed to a worker below the minimum: %+v", rec)
	}

	// The rest: the worker is assignable and gets the contract.
	if _, err := bobS.Submit(ctx(t), &api.StakeAllocate{Node: w.Identity(), Amount: minStake / 2}); err != nil {
		t.Fatal(err)
	}
	var rec *api.ContractRecord
	waitFor(t, 90*time.Second, "the contract deployed to the staked worker", func() bool {
		relay(t, ch, bobS, gk, w)
		rec = deployed()
		return rec != nil
	})
	if len(rec.Workers) != 1 || rec.Workers[0] != w.Identity() {
		t.Fatalf("deployed to %v, want the staked worker", rec.Workers)
	}
	if gk.st.params.MinWorkerStake != minStake || gk.st.nodeStake[w.Identity()] != minStake {
		t.Fatalf("gatekeeper state: min %d, stake %d", gk.st.params.MinWorkerStake, gk.st.nodeStake[w.Identity()])
	}
	// Every pRuntime follows the stakes, and they survive its checkpoint.
	again := ch.engine(t, w.cfg.DataDir)
	if again.st.nodeStake[w.Identity()] != minStake || again.st.params.MinWorkerStake != minStake || again.st.root() != w.st.root() {
		t.Fatal("node stakes not checkpointed")
	}
	// Only the staking module speaks of stakes.
	zero := (&api.NodeStakeUpdate{Node: w.Identity()}).Encode()
	for name, m := range map[string]*api.Message{
		"not staking": {Origin: api.ModuleOrigin("registry"), Topic: api.TopicNodeStake, Payload: zero},
		"garbage":     {Origin: api.ModuleOrigin(stakingModule), Topic: api.TopicNodeStake, Payload: append(zero, 0)},
	} {
		if err := gk.onNodeStake(nil, m); err == nil || !gk.assignable(w.Identity()) {
			t.Fatalf("%s: accepted (%v) or changed the stake", name, err)
		}
	}
}
