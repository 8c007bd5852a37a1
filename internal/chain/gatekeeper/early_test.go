package gatekeeper

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/gatekeeper/dkgplay"
)

// earlyEnv is newEnv with nodes 1..8 registered and declared candidates
// (stakes 900, 800, ..., 200: Phragmén elects them in that order), every
// one played honestly in a DKG, n seats, the serving list nodes 1..n
// (as a genesis list), an era of 30 blocks with DKG phases of 4, at
// height 1.
func earlyEnv(t *testing.T, n int) *env {
	t.Helper()
	e := newEnv(t)
	e.p.EraLength, e.p.DkgTimeout, e.p.NGatekeepers = 30, 4, uint64(n)
	e.h = 1
	var all []crypto.PublicKey
	for b := byte(1); b <= 8; b++ {
		rec := &api.WorkerRecord{Info: api.WorkerInfo{IdentityKey: node(b), Operator: opA}, Platform: "sim", Measurement: []byte{1}, ExpiresAt: 1000}
		e.kv.Set(api.WorkerKey(node(b)), rec.Encode())
		if err := e.declare(opA, node(b), true); err != nil {
			t.Fatal(err)
		}
		e.src.stake[node(b)] = 1000 - 100*uint64(b)
		all = append(all, node(b))
	}
	e.src.silent = map[crypto.PublicKey]bool{}
	SetGatekeepers(e.kv, all[:n])
	e.players = dkgplay.New(t, e.p, all...)
	return e
}

func events(ctx *block.Context, kind string) []map[string]string {
	var out []map[string]string
	for _, ev := range ctx.Events {
		if ev.Type == kind {
			attrs := map[string]string{}
			for _, a := range ev.Attributes {
				attrs[a.Key] = a.Value
			}
			out = append(out, attrs)
		}
	}
	return out
}

// The trigger fires at the first block where ⌈n/3⌉ of the n serving
// gatekeepers are down, not with one fewer: the set of the next era (1)
// is elected at once, without the down candidates, and its DKG begins;
// the event names the down members; era 0's early election is recorded.
func TestEarlyElectionTrigger(t *testing.T) {
	for _, tc := range []struct{ n, down int }{{3, 0}, {3, 1}, {4, 1}, {4, 2}, {6, 1}, {6, 2}} {
		need := (tc.n + 2) / 3
		t.Run(fmt.Sprintf("n=%d down=%d", tc.n, tc.down), func(t *testing.T) {
			e := earlyEnv(t, tc.n)
			e.run(5)
			serving := Gatekeepers(e.kv)
			for _, m := range serving[:tc.down] {
				e.src.silent[m] = true
			}
			ctx := e.block()
			fired := events(ctx, "gatekeeper_early_election")
			if tc.down < need {
				e.run(29)
				if len(fired) != 0 || Election(e.kv, 1) != nil || Dkg(e.kv) != nil {
					t.Fatalf("%d of %d down: early election %v, record %+v", tc.down, tc.n, fired, Election(e.kv, 1))
				}
				if _, ok := EarlyElection(e.kv, 0); ok {
					t.Fatal("an early election recorded")
				}
				return
			}
			r := Election(e.kv, 1)
			if len(fired) != 1 || r == nil || r.Status != api.ElectionPending || r.Height != 6 || len(r.Members) != tc.n {
				t.Fatalf("%d of %d down: events %v, record %+v", tc.down, tc.n, fired, r)
			}
			if fired[0]["era"] != "1" || fired[0]["during_era"] != "0" || fired[0]["reason"] != ReasonThirdDown || fired[0]["down"] != hexKeys(serving[:tc.down]) {
				t.Fatalf("event %v", fired[0])
			}
			for _, m := range r.Members {
				if e.src.silent[m] {
					t.Fatalf("down candidate %x elected: %x", m, r.Members)
				}
			}
			if h, ok := EarlyElection(e.kv, 0); !ok || h != 6 {
				t.Fatalf("early election record %d %v", h, ok)
			}
			if st := Dkg(e.kv); st == nil || st.Era != 1 || !slices.Equal(st.Members, r.Members) {
				t.Fatalf("DKG %+v", st)
			}
		})
	}
}

// One early election per era: the set elected early (era 1) is adopted
// and serves; when a third of it is down too, nothing more happens in
// era 0 but one gatekeeper_set_down event; at era 0's end the early set,
// active, is not elected again; in era 1 the trigger may fire again (the
// set of era 2). ElectEarly refuses, changing nothing, when n_gatekeepers
// is 0, at an era's last block, while a set is pending, after the era's
// early election.
func TestEarlyElectionOncePerEra(t *testing.T) {
	e := earlyEnv(t, 3)
	e.run(5)
	e.src.silent[node(1)] = true
	e.block()
	if p, ok := Pending(e.kv); !ok || p != 1 {
		t.Fatal("no early election")
	}
	refused := func(what string, ctx *block.Context) {
		t.Helper()
		before := fmt.Sprint(e.kv)
		if err := ElectEarly(ctx, e.src, "test"); !errors.Is(err, ErrNoEarlyElection) {
			t.Fatalf("%s: %v", what, err)
		}
		if fmt.Sprint(e.kv) != before || len(ctx.Events) != 0 || len(ctx.Messages) != 0 {
			t.Fatalf("%s: a refused early election changed something", what)
		}
	}
	refused("a set pending", e.ctx())
	ctx := e.until(20, "the early set adopted", func(c *block.Context) bool { return len(emitted(c, api.TopicGatekeeperActive)) > 0 })
	r := Election(e.kv, 1)
	if r.Status != api.ElectionActive || !slices.Equal(Gatekeepers(e.kv), nodes(2, 3, 4)) || KeySetOf(e.kv, 1) == nil {
		t.Fatalf("height %d: record %+v, list %x", ctx.Height, r, Gatekeepers(e.kv))
	}
	refused("the era's early election held", e.ctx())
	last := &block.Context{KV: e.kv, Height: 30, Params: e.p}
	refused("an era's last block", last)
	p0 := e.p
	p0.NGatekeepers = 0
	refused("n_gatekeepers 0", &block.Context{KV: e.kv, Height: e.h, Params: p0})

	// A third of the early set down: one event, no election.
	e.src.silent[node(2)] = true
	var down []map[string]string
	for e.h < 29 {
		c := e.block()
		down = append(down, events(c, "gatekeeper_set_down")...)
		if len(events(c, "gatekeeper_early_election"))+len(events(c, "gatekeeper_elected")) > 0 {
			t.Fatalf("height %d: a second early election in era 0", c.Height)
		}
	}
	if len(down) != 1 || down[0]["era"] != "0" || down[0]["down"] != hexKeys(nodes(2)) {
		t.Fatalf("set-down events %v", down)
	}
	// Era 0's end: the set of era 1 serves already.
	ctx = e.block()
	if sk := events(ctx, "gatekeeper_election_skipped"); len(sk) != 1 || sk[0]["era"] != "1" || len(emitted(ctx, api.TopicGatekeeperElected)) != 0 {
		t.Fatalf("era end: skipped %v", sk)
	}
	if r2 := Election(e.kv, 1); r2.Status != api.ElectionActive || r2.Height != r.Height || Election(e.kv, 2) != nil {
		t.Fatalf("era 1's set after the era end: %+v", r2)
	}
	// Era 1: its own early election (node 2 is still down).
	ctx = e.block()
	r2 := Election(e.kv, 2)
	if len(events(ctx, "gatekeeper_early_election")) != 1 || r2 == nil || r2.Height != 31 || !slices.Equal(r2.Members, nodes(3, 4, 5)) {
		t.Fatalf("era 1's early election: %+v", r2)
	}
}

// An early set still pending at the era end (elected two blocks before
// it) expires, and the era end elects the set of the same era again,
// without the down candidate; that one is adopted.
func TestEarlyElectionPendingAtEraEnd(t *testing.T) {
	e := earlyEnv(t, 3)
	e.run(27)
	e.src.silent[node(1)] = true
	e.block() // 28: elected early
	if r := Election(e.kv, 1); r == nil || r.Height != 28 || r.Status != api.ElectionPending {
		t.Fatalf("early election %+v", r)
	}
	e.run(29)
	ctx := e.block() // 30: era end
	if ex := events(ctx, "gatekeeper_set_expired"); len(ex) != 1 || ex[0]["era"] != "1" {
		t.Fatalf("expired %v", ex)
	}
	r := Election(e.kv, 1)
	if r == nil || r.Height != 30 || r.Status != api.ElectionPending || !slices.Equal(r.Members, nodes(2, 3, 4)) {
		t.Fatalf("re-election at the era end %+v", r)
	}
	if st := Dkg(e.kv); st == nil || st.Era != 1 || st.PhaseStart != 30 {
		t.Fatalf("DKG %+v", st)
	}
	e.until(40, "the re-elected set adopted", func(c *block.Context) bool { return len(emitted(c, api.TopicGatekeeperActive)) > 0 })
	if !slices.Equal(Gatekeepers(e.kv), nodes(2, 3, 4)) || Election(e.kv, 1).Status != api.ElectionActive {
		t.Fatalf("list %x", Gatekeepers(e.kv))
	}
}
