package relayer_test

import (
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/relayer"
	"github.com/phalago/phala/internal/testnet"
)

func stakeLedger(t *testing.T, ev *env, who crypto.PublicKey) *api.StakeLedger {
	t.Helper()
	pv, err := ev.c.Prove(tctx(t), api.QueryStakeLedger, who[:])
	if err != nil {
		t.Fatal(err)
	}
	if pv.Value == nil {
		return &api.StakeLedger{}
	}
	l, err := api.DecodeStakeLedger(pv.Value)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// With Config.Stake, the operator backs its worker once it is registered;
// a restart with the same amount does nothing more, and a restart with a
// larger one tops the allocation up, bonding only what the operator's
// bonded stake lacks.
func TestStakeAfterRegistration(t *testing.T) {
	ev := newEnv(t, false, testnet.Options{})
	rt := ev.startRuntime(t)
	id := rt.e.Identity()
	allocated := func(want uint64) {
		t.Helper()
		testnet.WaitFor(t, 30*time.Second, "the operator's allocation to the worker", func() (bool, error) {
			return stakeLedger(t, ev, charlie.Public()).Allocated(id) == want, nil
		})
	}
	run := startRelayer(t, ev.net.RPC(0), rt.srv.URL, charlie, func(c *relayer.Config) { c.Stake = 150 * api.Unit })
	allocated(150 * api.Unit)
	run.stop(t)

	// The same amount again: nothing is bonded or allocated.
	before := stakeLedger(t, ev, charlie.Public())
	run = startRelayer(t, ev.net.RPC(0), rt.srv.URL, charlie, func(c *relayer.Config) { c.Stake = 150 * api.Unit })
	h := ev.net.Height(0)
	ev.net.WaitHeight(h+3, 20*time.Second)
	run.stop(t)
	if after := stakeLedger(t, ev, charlie.Public()); after.Bonded != before.Bonded || after.Allocated(id) != 150*api.Unit {
		t.Fatalf("restart with the same stake changed the ledger: %+v -> %+v", before, after)
	}

	// 30 PHA already bonded: raising the stake to 200 bonds 20 more.
	if _, err := ev.c.NewSigner(charlie).Submit(tctx(t), &api.StakeBond{Amount: 30 * api.Unit}); err != nil {
		t.Fatal(err)
	}
	run = startRelayer(t, ev.net.RPC(0), rt.srv.URL, charlie, func(c *relayer.Config) { c.Stake = 200 * api.Unit })
	allocated(200 * api.Unit)
	run.stop(t)
	if l := stakeLedger(t, ev, charlie.Public()); l.Bonded != 0 || len(l.Allocations) != 1 {
		t.Fatalf("ledger after topping up: %+v", l)
	}
}
