package gatekeeper

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/gatekeeper/dkgplay"
	"github.com/phalago/phala/internal/chain/registry"
	"github.com/phalago/phala/internal/chain/store"
)

// memKV is a state for module tests.
type memKV map[string][]byte

func (m memKV) Get(k []byte) []byte { return m[string(k)] }
func (m memKV) Set(k, v []byte)     { m[string(k)] = append([]byte(nil), v...) }
func (m memKV) Delete(k []byte)     { delete(m, string(k)) }

// fakeStake is a VoterSource over Go values: node stakes, nominators in
// ascending order, and the slashes asked of it.
type fakeStake struct {
	stake   map[crypto.PublicKey]uint64
	noms    []nomination
	slashed []crypto.PublicKey
	// exposureSlashes: voter and amount of each exposure slash.
	exposureSlashes []nomination
	// down: nodes found unresponsive at the last era end.
	down map[crypto.PublicKey]bool
	// silent: nodes that stopped answering heartbeats (Down).
	silent map[crypto.PublicKey]bool
}

type nomination struct {
	who     crypto.PublicKey
	bonded  uint64
	targets []crypto.PublicKey
}

func (f *fakeStake) NodeStake(_ store.KV, n crypto.PublicKey) uint64 { return f.stake[n] }
func (f *fakeStake) ForEachNominator(_ store.KV, fn func(crypto.PublicKey, uint64, []crypto.PublicKey) bool) {
	for _, n := range f.noms {
		if !fn(n.who, n.bonded, n.targets) {
			return
		}
	}
}
func (f *fakeStake) Slash(_ *block.Context, n crypto.PublicKey, _ uint64, _ string) uint64 {
	f.slashed = append(f.slashed, n)
	return 0
}
func (f *fakeStake) Responsive(_ *block.Context, n crypto.PublicKey) bool { return !f.down[n] }
func (f *fakeStake) Down(_ *block.Context, n crypto.PublicKey) bool       { return f.silent[n] }
func (f *fakeStake) SlashExposure(_ *block.Context, v crypto.PublicKey, amount uint64, _ string) uint64 {
	f.exposureSlashes = append(f.exposureSlashes, nomination{who: v, bonded: amount})
	return amount
}

var (
	opA = crypto.MustKeyPairFromURI("//OperatorA").Public()
	opB = crypto.MustKeyPairFromURI("//OperatorB").Public()
)

func node(b byte) crypto.PublicKey { return crypto.PublicKey{b, 0xee} }

type env struct {
	t   *testing.T
	kv  memKV
	src *fakeStake
	h   int64
	p   api.Params
	// players answer the queue of every block run (nil: nobody does);
	// outs is what they, or the test, post in the next block.
	players *dkgplay.Players
	outs    []api.Message
}

// newEnv is a state with attestation settings, nodes 1..5 registered
// (operator A for 1-3, B for 4-5) until height 1000, genesis gatekeeper 9
// (registered too), era length 10 (a DKG phase of 3 blocks), 2 seats.
func newEnv(t *testing.T) *env {
	e := &env{t: t, kv: memKV{}, src: &fakeStake{stake: map[crypto.PublicKey]uint64{}}, p: api.DefaultParams()}
	e.p.EraLength, e.p.NGatekeepers, e.p.MinGatekeeperStake, e.p.OfflineSlashPPM = 10, 2, 100, 10_000
	registry.SetAttestation(e.kv, &api.AttestationSettings{AllowSim: true, Measurements: []api.HexBytes{{1}}})
	for _, b := range []byte{1, 2, 3, 4, 5, 9} {
		op := opA
		if b == 4 || b == 5 {
			op = opB
		}
		rec := &api.WorkerRecord{Info: api.WorkerInfo{IdentityKey: node(b), Operator: op}, Platform: "sim", Measurement: []byte{1}, ExpiresAt: 1000}
		e.kv.Set(api.WorkerKey(node(b)), rec.Encode())
	}
	SetGatekeepers(e.kv, []crypto.PublicKey{node(9)})
	return e
}

func (e *env) ctx() *block.Context {
	return &block.Context{KV: e.kv, ChainID: "c", Height: e.h, Params: e.p}
}

// block executes the next block: the messages posted for it (e.outs), each
// queued and handed to its consumer in the module table as the queue
// does, then EndBlock; the players read the block's queue and post their
// answers for the next one.
func (e *env) block() *block.Context {
	e.t.Helper()
	e.h++
	ctx := e.ctx()
	outs := e.outs
	e.outs = nil
	for i := range outs {
		deliver(ctx, e.src, &outs[i])
	}
	if err := EndBlock(ctx, e.src); err != nil {
		e.t.Fatal(err)
	}
	if e.players != nil {
		e.outs = append(e.outs, e.players.Feed(ctx.Height, ctx.Messages)...)
	}
	return ctx
}

// deliver queues m and hands it to its consumer in the module table.
func deliver(ctx *block.Context, src VoterSource, m *api.Message) {
	ctx.Emit(*m)
	for _, c := range Spec(src).Consumes {
		if c.Origin == m.Origin.Kind && c.Topic == m.Topic {
			c.Handle(ctx, m)
		}
	}
}

// run executes blocks until height to, returning the last one's context.
func (e *env) run(to int64) *block.Context {
	e.t.Helper()
	var ctx *block.Context
	for e.h < to {
		ctx = e.block()
	}
	return ctx
}

// until executes blocks until one satisfies done (at most to height
// limit), returning its context.
func (e *env) until(limit int64, what string, done func(*block.Context) bool) *block.Context {
	e.t.Helper()
	for e.h < limit {
		if ctx := e.block(); done(ctx) {
			return ctx
		}
	}
	e.t.Fatalf("no %s by height %d", what, limit)
	return nil
}

// post has node post a DKG message of topic in the next block.
func (e *env) post(node crypto.PublicKey, topic string, m *api.DkgMessage) {
	e.outs = append(e.outs, api.Message{Origin: api.KeyOrigin(api.OriginWorker, node), Topic: topic, Payload: m.Encode()})
}

func (e *env) declare(op crypto.PublicKey, n crypto.PublicKey, on bool) error {
	return DeclareCandidacy(e.ctx(), op, &api.GatekeeperCandidacy{Node: n, On: on})
}

func TestCandidacy(t *testing.T) {
	e := newEnv(t)
	e.h = 5
	expired := &api.WorkerRecord{Info: api.WorkerInfo{IdentityKey: node(7), Operator: opA}, Platform: "sim", Measurement: []byte{1}, ExpiresAt: 3}
	e.kv.Set(api.WorkerKey(node(7)), expired.Encode())
	for _, tc := range []struct {
		name string
		op   crypto.PublicKey
		n    crypto.PublicKey
		on   bool
		want error
	}{
		{"not the operator", opB, node(1), true, api.ErrNotNodeOperator},
		{"unregistered", opA, node(8), true, api.ErrUnknownOrigin},
		{"registration expired", opA, node(7), true, api.ErrUnknownOrigin},
		{"withdraw without candidacy", opA, node(1), false, api.ErrCandidacyUnchanged},
	} {
		before := len(e.kv)
		if err := e.declare(tc.op, tc.n, tc.on); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if len(e.kv) != before {
			t.Errorf("%s: refused call changed the state", tc.name)
		}
	}
	for _, n := range []byte{3, 1, 2} {
		if err := e.declare(opA, node(n), true); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.declare(opA, node(1), true); !errors.Is(err, api.ErrCandidacyUnchanged) {
		t.Fatalf("declared twice: %v", err)
	}
	if got := Candidates(e.kv); !slices.Equal(got, []crypto.PublicKey{node(1), node(2), node(3)}) {
		t.Fatalf("candidates %x", got)
	}
	if c := Candidacy(e.kv, node(2)); c == nil || c.Operator != opA || c.Since != 5 {
		t.Fatalf("candidacy %+v", c)
	}
	if err := e.declare(opB, node(2), false); !errors.Is(err, api.ErrNotNodeOperator) {
		t.Fatalf("withdrawn by another: %v", err)
	}
	if err := e.declare(opA, node(2), false); err != nil {
		t.Fatal(err)
	}
	if got := Candidates(e.kv); !slices.Equal(got, []crypto.PublicKey{node(1), node(3)}) || Candidacy(e.kv, node(2)) != nil {
		t.Fatalf("after withdrawal %x", got)
	}
}

func emitted(ctx *block.Context, topic string) []*api.GatekeeperSet {
	var out []*api.GatekeeperSet
	for _, m := range ctx.Messages {
		if m.Topic == topic && m.Origin == api.ModuleOrigin(Name) {
			s, err := api.DecodeGatekeeperSet(m.Payload)
			if err != nil {
				panic(err)
			}
			out = append(out, s)
		}
	}
	return out
}

func hasEvent(ctx *block.Context, kind string) bool {
	for _, ev := range ctx.Events {
		if ev.Type == kind {
			return true
		}
	}
	return false
}

// dkgRounds are the DKG phases the module announced in ctx's block.
func dkgRounds(t *testing.T, ctx *block.Context) []*api.DkgState {
	t.Helper()
	var out []*api.DkgState
	for _, m := range ctx.Messages {
		if m.Topic == api.TopicDkgRound && m.Origin == api.ModuleOrigin(Name) {
			st, err := api.DecodeDkgState(m.Payload)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, st)
		}
	}
	return out
}

// An election at the era end: candidates below the minimum stake or not
// attested do not stand; the result and exposures are recorded and
// announced, and the set's DKG begins (phala/keys/dkg_round, collecting
// its members' DKG keys). The genesis list serves until the members'
// DKG ends in an adopted key set, which makes its participants the
// gatekeeper list (phala/gatekeeper/active) and its members confirmed.
// The next era end re-elects the same set: a fresh DKG, the era-1 set
// serving until it completes.
func TestElectionDkgActivate(t *testing.T) {
	e := newEnv(t)
	e.h = 1
	for _, n := range []byte{1, 2, 3} {
		if err := e.declare(opA, node(n), true); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []byte{4, 5} {
		if err := e.declare(opB, node(n), true); err != nil {
			t.Fatal(err)
		}
	}
	// Node 5's registration is revoked by an allowlist change: it no
	// longer stands. Node 4 has stake below the minimum.
	rec := registry.Worker(e.kv, node(5))
	rec.Measurement = []byte{2}
	e.kv.Set(api.WorkerKey(node(5)), rec.Encode())
	e.src.stake = map[crypto.PublicKey]uint64{node(1): 100, node(2): 300, node(3): 200, node(4): 99, node(5): 1000}
	alice, bob := crypto.PublicKey{0xa1}, crypto.PublicKey{0xb0}
	// Phragmén: A1 = 100 + 150 = 250, A2 = 300, A3 = 200 + 150 + 60 =
	// 410 (alice's 150 approves 1 and 3, bob's 60 approves 3, 4 and 5).
	// Round 0: 1/250, 1/300, 1/410 → 3; loads: self3, alice, bob = 1/410.
	// Round 1: c1 = (1 + 150/410)/250 = 560/102500 ≈ 0.00546, c2 = 1/300
	// ≈ 0.00333 → 2. Alice backs only 3 among the elected: 150.
	e.src.noms = []nomination{{alice, 150, []crypto.PublicKey{node(1), node(3)}}, {bob, 60, []crypto.PublicKey{node(3), node(4), node(5)}}}
	// Every candidate would play its part if elected.
	e.players = dkgplay.New(t, e.p, node(1), node(2), node(3), node(4), node(5))

	ctx := e.run(9)
	if Election(e.kv, 1) != nil || len(ctx.Messages) != 0 || Dkg(e.kv) != nil {
		t.Fatal("elected before the era's last block")
	}
	ctx = e.run(10) // last block of era 0: elects the set of era 1
	r := Election(e.kv, 1)
	if r == nil || !slices.Equal(r.Members, []crypto.PublicKey{node(3), node(2)}) || r.Status != api.ElectionPending || r.Height != 10 || len(r.Confirmed) != 0 {
		t.Fatalf("record %+v", r)
	}
	if !slices.Equal(r.Backing, []api.MemberBacking{{Total: 410, Own: 200}, {Total: 300, Own: 300}}) {
		t.Fatalf("backing %+v", r.Backing)
	}
	x := ExposureOf(e.kv, 1, node(3))
	if x == nil || x.Total != 410 || x.Own != 200 || !slices.Equal(x.Others, []api.Backer{{Who: alice, Amount: 150}, {Who: bob, Amount: 60}}) {
		t.Fatalf("exposure %+v", x)
	}
	if el := emitted(ctx, api.TopicGatekeeperElected); len(el) != 1 || el[0].Era != 1 || !slices.Equal(el[0].Members, r.Members) {
		t.Fatalf("elected messages %+v", el)
	}
	if p, ok := Pending(e.kv); !ok || p != 1 {
		t.Fatal("no pending set")
	}
	st := Dkg(e.kv)
	if st == nil || st.Era != 1 || st.Attempt != 0 || st.Phase != api.DkgCollectingKeys || st.PhaseStart != 10 || !slices.Equal(st.Members, r.Members) ||
		len(st.Keys) != 2 || st.Keys[0] != ([32]byte{}) || len(st.Participants) != 0 || !hasEvent(ctx, "dkg_begun") {
		t.Fatalf("DKG state %+v", st)
	}
	if rounds := dkgRounds(t, ctx); len(rounds) != 1 || !bytes.Equal(rounds[0].Encode(), st.Encode()) {
		t.Fatalf("DKG rounds %+v", rounds)
	}

	// The members post their keys (11), deal (12), respond (13) and post
	// their results (14): the last one adopts the key set.
	genesis := []crypto.PublicKey{node(9)}
	ctx = e.until(20, "activation", func(c *block.Context) bool {
		if len(emitted(c, api.TopicGatekeeperActive)) == 0 {
			if !slices.Equal(Gatekeepers(e.kv), genesis) || Election(e.kv, 1).Status != api.ElectionPending {
				t.Fatalf("height %d: the genesis list must serve until the set's key set is adopted", c.Height)
			}
			return false
		}
		return true
	})
	r = Election(e.kv, 1)
	if ctx.Height != 14 || r.Status != api.ElectionActive || r.StatusHeight != 14 || !slices.Equal(r.Confirmed, r.Members) || !slices.Equal(Gatekeepers(e.kv), r.Members) {
		t.Fatalf("height %d: %+v, list %x", ctx.Height, r, Gatekeepers(e.kv))
	}
	if a := emitted(ctx, api.TopicGatekeeperActive); len(a) != 1 || a[0].Era != 1 || !slices.Equal(a[0].Members, r.Members) {
		t.Fatalf("active messages %+v", a)
	}
	if _, ok := Pending(e.kv); ok || Dkg(e.kv) != nil || e.kv.Get(api.KeyDkg) != nil {
		t.Fatal("still pending, or the DKG state kept")
	}
	s1 := KeySetOf(e.kv, 1)
	if s1 == nil || s1.T != 2 || !slices.Equal(s1.Members, r.Members) {
		t.Fatalf("key set of era 1 %+v", s1)
	}

	// Next era end: the same set is re-elected and runs a fresh DKG; the
	// set of era 1 serves until it completes.
	ctx = e.run(20)
	r2 := Election(e.kv, 2)
	if r2 == nil || r2.Status != api.ElectionPending || !slices.Equal(r2.Members, r.Members) || Dkg(e.kv) == nil || Dkg(e.kv).Era != 2 {
		t.Fatalf("re-election %+v", r2)
	}
	ctx = e.until(30, "activation of era 2", func(c *block.Context) bool {
		if len(emitted(c, api.TopicGatekeeperActive)) == 0 {
			if !slices.Equal(Gatekeepers(e.kv), r.Members) {
				t.Fatalf("height %d: list %x", c.Height, Gatekeepers(e.kv))
			}
			return false
		}
		return true
	})
	s2 := KeySetOf(e.kv, 2)
	if r2 = Election(e.kv, 2); r2.Status != api.ElectionActive || s2 == nil || s2.Public() == s1.Public() || !slices.Equal(Gatekeepers(e.kv), r.Members) {
		t.Fatalf("era 2: %+v, key set %+v", r2, s2)
	}
	if len(e.src.slashed) != 0 {
		t.Fatalf("slashed %x", e.src.slashed)
	}
}

// Nothing elected (no stake, no candidates, or n_gatekeepers = 0): no
// record, no message, the serving set stays.
func TestNothingElected(t *testing.T) {
	for name, setup := range map[string]func(e *env){
		"no candidates": func(e *env) {},
		"no stake": func(e *env) {
			e.p.MinGatekeeperStake = 0
			_ = e.declare(opA, node(1), true)
		},
		"n_gatekeepers 0": func(e *env) {
			e.p.NGatekeepers = 0
			_ = e.declare(opA, node(1), true)
			e.src.stake[node(1)] = 1000
		},
		"the only candidate found unresponsive": func(e *env) {
			_ = e.declare(opA, node(1), true)
			e.src.stake[node(1)] = 1000
			e.src.down = map[crypto.PublicKey]bool{node(1): true}
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.h = 1
			setup(e)
			ctx := e.run(10)
			if Election(e.kv, 1) != nil || len(ctx.Messages) != 0 || !slices.Equal(Gatekeepers(e.kv), []crypto.PublicKey{node(9)}) {
				t.Fatalf("state changed: %+v", Election(e.kv, 1))
			}
		})
	}
}

// BenchmarkEraEndElection is the module's whole era-end work (candidates'
// attestation and stake, the nominators, Phragmén, the records and the
// message) for 100 candidates and 10,000 nominators with 1 to 16 targets.
func BenchmarkEraEndElection(b *testing.B) {
	for _, seats := range []uint64{10, 100} {
		b.Run(fmt.Sprintf("seats=%d", seats), func(b *testing.B) {
			e := &env{kv: memKV{}, src: &fakeStake{stake: map[crypto.PublicKey]uint64{}}, p: api.DefaultParams()}
			e.p.EraLength, e.p.NGatekeepers, e.p.MinGatekeeperStake = 10, seats, 100*api.Unit
			registry.SetAttestation(e.kv, &api.AttestationSettings{AllowSim: true, Measurements: []api.HexBytes{{1}}})
			rng := rand.New(rand.NewPCG(1, 1))
			var cands []crypto.PublicKey
			for i := 0; i < 100; i++ {
				n := crypto.PublicKey{byte(i), byte(i >> 8), 1}
				rec := &api.WorkerRecord{Info: api.WorkerInfo{IdentityKey: n, Operator: opA}, Platform: "sim", Measurement: []byte{1}, ExpiresAt: 1000}
				e.kv.Set(api.WorkerKey(n), rec.Encode())
				if err := DeclareCandidacy(e.ctx(), opA, &api.GatekeeperCandidacy{Node: n, On: true}); err != nil {
					b.Fatal(err)
				}
				e.src.stake[n] = (10_000 + rng.Uint64N(100_000)) * api.Unit
				cands = append(cands, n)
			}
			for i := 0; i < 10_000; i++ {
				nm := nomination{who: crypto.PublicKey{byte(i), byte(i >> 8), 2}, bonded: (1 + rng.Uint64N(1_000)) * api.Unit}
				for j, nt := 0, 1+rng.IntN(16); j < nt; j++ {
					nm.targets = append(nm.targets, cands[rng.IntN(len(cands))])
				}
				e.src.noms = append(e.src.noms, nm)
			}
			e.h = 10
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := EndBlock(e.ctx(), e.src); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if r := Election(e.kv, 1); r == nil || uint64(len(r.Members)) != seats {
				b.Fatalf("elected %+v", r)
			}
		})
	}
}
