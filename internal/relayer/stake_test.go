package relayer_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
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

// A pRuntime whose data was wiped comes back behind the same endpoint
// with a new identity: the relayer registers it and stakes it too (the
// stake done for the old identity does not count).
func TestStakeFollowsANewIdentity(t *testing.T) {
	ev := newEnv(t, false, testnet.Options{})
	rt := ev.startRuntime(t)
	var h atomic.Pointer[http.Handler]
	first := rt.srv.Config.Handler
	h.Store(&first)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*h.Load()).ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	run := startRelayer(t, ev.net.RPC(0), srv.URL, charlie, func(c *relayer.Config) { c.Stake = 150 * api.Unit; c.Register = true })
	old := rt.e.Identity()
	testnet.WaitFor(t, 30*time.Second, "the first identity staked", func() (bool, error) {
		return stakeLedger(t, ev, charlie.Public()).Allocated(old) == 150*api.Unit, nil
	})
	// Wiped: a new engine in a fresh directory, same endpoint.
	ev.dir = t.TempDir()
	fresh := ev.startRuntime(t)
	if fresh.e.Identity() == old {
		t.Fatal("a wiped pRuntime kept its identity")
	}
	next := fresh.srv.Config.Handler
	h.Store(&next)
	testnet.WaitFor(t, 60*time.Second, "the new identity staked", func() (bool, error) {
		return stakeLedger(t, ev, charlie.Public()).Allocated(fresh.e.Identity()) == 150*api.Unit, nil
	})
	run.stop(t)
}
