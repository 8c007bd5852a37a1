package gatekeeper

import (
	"bytes"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.dedis.ch/kyber/v3"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/gatekeeper/dkgplay"
	"github.com/phalago/phala/internal/enclave/threshold"
)

func TestDkgThreshold(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want uint32
	}{{1, 1}, {2, 2}, {3, 3}, {4, 3}, {5, 4}, {6, 5}, {7, 5}, {100, 67}} {
		if got := DkgThreshold(tc.n); got != tc.want {
			t.Errorf("DkgThreshold(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}

// dkgNominator backs the last elected member in dkgEnv.
var dkgNominator = crypto.PublicKey{0xa1}

// dkgEnv is an env whose era end at height 30 (era length 30, DKG phases
// of 4 blocks, a deal window of 2, offline_slash_ppm 10%) elects nodes
// 1..n in that order (stakes 900, 800, ...; dkgNominator backs node n
// with 50), every one of them played by an honest player.
func dkgEnv(t *testing.T, n int) *env {
	e := newEnv(t)
	e.p.EraLength, e.p.DkgTimeout, e.p.NGatekeepers, e.p.OfflineSlashPPM = 30, 4, uint64(n), 100_000
	if e.p.DkgPhase() != 4 || e.p.DkgDealWindow() != 2 {
		t.Fatalf("DKG phase %d, deal window %d", e.p.DkgPhase(), e.p.DkgDealWindow())
	}
	e.h = 1
	var nodes []crypto.PublicKey
	for i := 1; i <= n; i++ {
		op := opA
		if i >= 4 {
			op = opB
		}
		if err := e.declare(op, node(byte(i)), true); err != nil {
			t.Fatal(err)
		}
		e.src.stake[node(byte(i))] = uint64(1000 - 100*i)
		nodes = append(nodes, node(byte(i)))
	}
	e.src.noms = []nomination{{dkgNominator, 50, []crypto.PublicKey{node(byte(n))}}}
	e.players = dkgplay.New(t, e.p, nodes...)
	return e
}

func nodes(bs ...byte) []crypto.PublicKey {
	var out []crypto.PublicKey
	for _, b := range bs {
		out = append(out, node(b))
	}
	return out
}

// How an elected set's DKG ends, by what its members do (DKG phases of
// 4 blocks, the set elected at 30): dealing begins when every member
// posted its key, or at the phase deadline among those that did, with T
// = DkgThreshold(participants); T identical results adopt the key set
// (its participants serve, the matching ones are confirmed); the dealing
// deadline announces the timeout (phala/keys/dkg_timeout), after which
// results still count; one more phase without a key set fails the
// attempt: the members without key, deals or result are slashed (an
// adoption slashes those without key or deals)
// offline_slash_ppm (and their nominators' exposure), and the others
// retry while they are two thirds of the elected set, else the set
// fails and the serving one stays. Nobody is slashed again at the next
// era end. (Confirmed are the participants whose result came by the
// adoption: a fourth identical result in the same block comes after it.)
func TestDkgOutcomes(t *testing.T) {
	const none = -1
	for _, tc := range []struct {
		name      string
		n         int
		mute      map[byte][]string
		dealingAt int64  // attempt 0's dealing began (none: never)
		dealers   []byte // its participants
		timeoutAt int64  // attempt 0's timeout (none: none)
		endAt     int64  // adoption or failure
		attempt   uint64 // of the adoption
		serving   []byte // the adopted participants (nil: the set fails)
		confirmed []byte
		t         uint32
		slashed   []byte
	}{
		{name: "a single member: a result made alone", n: 1,
			dealingAt: 31, dealers: []byte{1}, timeoutAt: none, endAt: 32, serving: []byte{1}, confirmed: []byte{1}, t: 1},
		{name: "three honest members", n: 3,
			dealingAt: 31, dealers: []byte{1, 2, 3}, timeoutAt: none, endAt: 34, serving: []byte{1, 2, 3}, confirmed: []byte{1, 2, 3}, t: 3},
		{name: "a member posts no key: dealing without it at the deadline", n: 3, mute: map[byte][]string{3: {api.TopicDkgKey}},
			dealingAt: 34, dealers: []byte{1, 2}, timeoutAt: none, endAt: 37, serving: []byte{1, 2}, confirmed: []byte{1, 2}, t: 2, slashed: []byte{3}},
		{name: "a participant does not deal: the others certify at the timeout", n: 4, mute: map[byte][]string{4: {api.TopicDkgDeals}},
			dealingAt: 31, dealers: []byte{1, 2, 3, 4}, timeoutAt: 35, endAt: 36, serving: []byte{1, 2, 3, 4}, confirmed: []byte{1, 2, 3}, t: 3, slashed: []byte{4}},
		{name: "a participant posts no result, two thirds remain: attempt 1 without it", n: 3, mute: map[byte][]string{3: {api.TopicDkgResult}},
			dealingAt: 31, dealers: []byte{1, 2, 3}, timeoutAt: 35, endAt: 43, attempt: 1, serving: []byte{1, 2}, confirmed: []byte{1, 2}, t: 2, slashed: []byte{3}},
		{name: "a participant posts no result, fewer than two thirds remain: the set fails", n: 2, mute: map[byte][]string{2: {api.TopicDkgResult}},
			dealingAt: 31, dealers: []byte{1, 2}, timeoutAt: 35, endAt: 39, slashed: []byte{2}},
		{name: "no member posts a key: the set fails", n: 3, mute: map[byte][]string{1: {api.TopicDkgKey}, 2: {api.TopicDkgKey}, 3: {api.TopicDkgKey}},
			dealingAt: none, timeoutAt: none, endAt: 34, slashed: []byte{1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := dkgEnv(t, tc.n)
			for b, topics := range tc.mute {
				e.players.Mute(node(b), topics...)
			}
			e.run(30)
			var dealing *api.DkgState
			dealingAt, timeoutAt, attempt := int64(none), int64(none), uint64(0)
			ctx := e.until(60, "the DKG's end", func(c *block.Context) bool {
				for _, st := range dkgRounds(t, c) {
					if st.Phase == api.DkgDealing && st.Attempt == 0 && dealing == nil {
						dealing, dealingAt = st, c.Height
					}
					attempt = st.Attempt
				}
				for _, m := range c.Messages {
					if m.Topic == api.TopicDkgTimeout && m.Origin == api.ModuleOrigin(Name) && timeoutAt == none {
						if !bytes.Equal(m.Payload, (&api.DkgMessage{Era: 1}).Encode()) {
							t.Fatalf("timeout message %x", m.Payload)
						}
						timeoutAt = c.Height
					}
				}
				return Election(e.kv, 1).Status != api.ElectionPending
			})
			if dealingAt != tc.dealingAt || timeoutAt != tc.timeoutAt || ctx.Height != tc.endAt {
				t.Fatalf("dealing at %d, timeout at %d, end at %d; want %d, %d, %d", dealingAt, timeoutAt, ctx.Height, tc.dealingAt, tc.timeoutAt, tc.endAt)
			}
			if dealing != nil && (!slices.Equal(dealing.Participants, nodes(tc.dealers...)) || dealing.T != DkgThreshold(len(tc.dealers)) ||
				dealing.PhaseStart != dealingAt || len(dealing.Members) != tc.n || slices.Contains(dealing.Dealt, true)) {
				t.Fatalf("dealing state %+v", dealing)
			}
			r := Election(e.kv, 1)
			if tc.serving != nil {
				checkAdopted(t, e, ctx, nodes(tc.serving...), nodes(tc.confirmed...), tc.t)
				if attempt != tc.attempt {
					t.Fatalf("adopted in attempt %d", attempt)
				}
			} else {
				if r.Status != api.ElectionExpired || r.StatusHeight != ctx.Height || !hasEvent(ctx, "dkg_failed") || !hasEvent(ctx, "gatekeeper_set_expired") {
					t.Fatalf("record %+v", r)
				}
				rounds := dkgRounds(t, ctx)
				if len(rounds) != 1 || rounds[0].Phase != api.DkgFailed || rounds[0].Era != 1 || rounds[0].PhaseStart != ctx.Height {
					t.Fatalf("rounds %+v", rounds)
				}
				if !slices.Equal(Gatekeepers(e.kv), nodes(9)) || KeySetOf(e.kv, 1) != nil || len(emitted(ctx, api.TopicGatekeeperActive)) != 0 {
					t.Fatal("a failed set serves")
				}
				if _, ok := ServingKeyEra(e.kv); ok || e.kv.Get(api.KeyMasterKey) != nil {
					t.Fatal("a failed set's key")
				}
				if _, ok := Pending(e.kv); ok || e.kv.Get(api.KeyDkg) != nil {
					t.Fatal("the failed set is still pending")
				}
			}
			checkSlashed(t, e, tc.n, nodes(tc.slashed...))
			// The next era end elects anew; the set of era 1 is not
			// expired again.
			e.run(60)
			if r := Election(e.kv, 1); r.Status == api.ElectionPending || Election(e.kv, 2) == nil {
				t.Fatalf("era 1 %+v at the next era end", r)
			}
			checkSlashed(t, e, tc.n, nodes(tc.slashed...))
		})
	}
}

// checkSlashed checks the members slashed (in order) and the slash of
// dkgNominator's exposure to node n (offline_slash_ppm 10% of 50).
func checkSlashed(t *testing.T, e *env, n int, want []crypto.PublicKey) {
	t.Helper()
	if !slices.Equal(e.src.slashed, want) {
		t.Fatalf("slashed %x, want %x", e.src.slashed, want)
	}
	var exp []nomination
	if slices.Contains(want, node(byte(n))) {
		exp = []nomination{{dkgNominator, 5, nil}}
	}
	if !reflect.DeepEqual(e.src.exposureSlashes, exp) {
		t.Fatalf("exposure slashes %+v, want %+v", e.src.exposureSlashes, exp)
	}
}

// checkAdopted checks the end of era 1's DKG in ctx's block: the key set
// of era 1 (T t, the serving participants, the commitments their players'
// shares match) is stored, serves, is the MasterKey and is announced; the
// set is active with the confirmed members, its participants are the
// gatekeeper list (announced); nothing pending, no DKG state.
func checkAdopted(t *testing.T, e *env, ctx *block.Context, serving, confirmed []crypto.PublicKey, th uint32) {
	t.Helper()
	r := Election(e.kv, 1)
	if r.Status != api.ElectionActive || r.StatusHeight != ctx.Height || !slices.Equal(r.Confirmed, confirmed) || !slices.Equal(Gatekeepers(e.kv), serving) {
		t.Fatalf("record %+v, list %x", r, Gatekeepers(e.kv))
	}
	s := KeySetOf(e.kv, 1)
	if s == nil || s.Era != 1 || s.T != th || !slices.Equal(s.Members, serving) || len(s.Commits) != int(th) {
		t.Fatalf("key set %+v", s)
	}
	for i, m := range serving {
		sh := e.players.Player(m).Share
		if sh == nil || sh.Index != i || pointBytes(t, threshold.MemberCommitment(pointsOf(t, s.Commits), i)) != pointBytes(t, threshold.Suite.Point().Mul(sh.V, nil)) {
			t.Fatalf("member %d's share does not match the key set", i)
		}
	}
	if era, ok := ServingKeyEra(e.kv); !ok || era != 1 || !bytes.Equal(e.kv.Get(api.KeyMasterKey), s.Commits[0][:]) || !hasEvent(ctx, "key_set_adopted") {
		t.Fatal("the key set of era 1 does not serve")
	}
	var ready [][]byte
	for _, m := range ctx.Messages {
		if m.Topic == api.TopicKeyRotationReady && m.Origin == api.ModuleOrigin(Name) {
			ready = append(ready, m.Payload)
		}
	}
	if len(ready) != 1 || !bytes.Equal(ready[0], s.Encode()) {
		t.Fatalf("rotation ready %x", ready)
	}
	if a := emitted(ctx, api.TopicGatekeeperActive); len(a) != 1 || a[0].Era != 1 || !slices.Equal(a[0].Members, serving) {
		t.Fatalf("active %+v", a)
	}
	if _, ok := Pending(e.kv); ok || e.kv.Get(api.KeyDkg) != nil {
		t.Fatal("pending, or the DKG state kept")
	}
}

// Deals count within DkgDealWindow blocks of the dealing phase's start
// (2 here); later ones are refused ("too late to deal") and change
// nothing.
func TestDkgDealWindow(t *testing.T) {
	for _, tc := range []struct {
		after int64
		ok    bool
	}{{1, true}, {2, true}, {3, false}} {
		t.Run(fmt.Sprint(tc.after), func(t *testing.T) {
			e := dkgEnv(t, 2)
			for _, n := range nodes(1, 2) {
				e.players.Mute(n, api.TopicDkgDeals)
			}
			e.run(31)
			st := Dkg(e.kv)
			if st.Phase != api.DkgDealing || st.PhaseStart != 31 {
				t.Fatalf("state %+v", st)
			}
			e.run(30 + tc.after)
			before := e.kv.Get(api.KeyDkg)
			e.post(node(2), api.TopicDkgDeals, &api.DkgMessage{Era: 1, Body: []byte("deals")})
			ctx := e.block()
			late := ignoredFor(ctx, api.TopicDkgDeals) == "too late to deal"
			if st := Dkg(e.kv); st.Dealt[1] != tc.ok || late == tc.ok {
				t.Fatalf("deals %d blocks after the start: dealt %v, ignored %v", tc.after, st.Dealt, late)
			}
			if !tc.ok && !bytes.Equal(e.kv.Get(api.KeyDkg), before) {
				t.Fatal("refused deals changed the state")
			}
		})
	}
}

// ignoredFor is the reason of ctx's dkg_message_ignored event of topic,
// "" if none.
func ignoredFor(ctx *block.Context, topic string) string {
	for _, ev := range ctx.Events {
		if ev.Type != "dkg_message_ignored" {
			continue
		}
		var tp, why string
		for _, a := range ev.Attributes {
			switch a.Key {
			case "topic":
				tp = a.Value
			case "reason":
				why = a.Value
			}
		}
		if tp == topic {
			return why
		}
	}
	return ""
}

func randomPoints(t *testing.T, n int) []kyber.Point {
	out := make([]kyber.Point, n)
	for i := range out {
		out[i] = threshold.Suite.Point().Pick(threshold.Suite.RandomStream())
	}
	return out
}

func result(t *testing.T, qual []int, commits []kyber.Point) []byte {
	t.Helper()
	b, err := threshold.EncodeResult(qual, commits)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// DKG messages that do not apply are ignored (dkg_message_ignored, with
// why) and change nothing: malformed, of another era or attempt, from a
// non-member (a non-participant once dealing), of another phase, a
// second key, deals or result of the same member, a key that is no
// prime-order point, a result with a commitment that is the identity or
// not of prime order, a key without its proof of possession or whose proof
// is for another member, era or attempt, a key another member posted
// (with that member's proof or not), a result that does not decode or has other than T
// commitments, fewer than T qualified dealers, or a dealer beyond the
// participants. A participant's response while dealing is forwarded
// without an event.
func TestDkgMessagesIgnored(t *testing.T) {
	e := dkgEnv(t, 3)
	for _, n := range nodes(1, 2, 3) {
		e.players.Mute(n, api.TopicDkgDeals, api.TopicDkgResult)
	}
	e.players.Mute(node(3), api.TopicDkgKey)
	msg := func(era, attempt uint64, body []byte) []byte {
		return (&api.DkgMessage{Era: era, Attempt: attempt, Body: body}).Encode()
	}
	key := pointBytes(t, randomPoints(t, 1)[0])
	identity := pointBytes(t, threshold.Suite.Point().Null())
	type ignored struct {
		name  string
		from  byte
		topic string
		body  []byte
		want  string // the reason contains it; "": accepted, no event
	}
	check := func(t *testing.T, cases []ignored) {
		for _, tc := range cases {
			snapshot := maps.Clone(e.kv)
			ctx := e.ctx()
			deliver(ctx, e.src, &api.Message{Origin: api.KeyOrigin(api.OriginWorker, node(tc.from)), Topic: tc.topic, Payload: tc.body})
			why := ignoredFor(ctx, tc.topic)
			if tc.want == "" && why != "" || !strings.Contains(why, tc.want) {
				t.Errorf("%s: ignored for %q, want %q", tc.name, why, tc.want)
			}
			if !reflect.DeepEqual(map[string][]byte(e.kv), map[string][]byte(snapshot)) || len(ctx.Messages) != 1 {
				t.Errorf("%s: the state changed or the module emitted", tc.name)
			}
		}
	}

	e.run(31) // nodes 1 and 2 posted their keys
	if st := Dkg(e.kv); st.Phase != api.DkgCollectingKeys || st.Keys[0] == ([32]byte{}) || st.Keys[2] != ([32]byte{}) {
		t.Fatalf("state %+v", st)
	}
	seed := [32]byte{7}
	n1, n2, n3 := node(1), node(2), node(3)
	withProof := func(k []byte) []byte { return append(slices.Clone(k), make([]byte, threshold.DKGKeyProofSize)...) }
	posted := e.players.Player(n1).Seed
	check(t, []ignored{
		{"malformed", 3, api.TopicDkgKey, []byte{1, 0}, "malformed"},
		{"another era", 3, api.TopicDkgKey, msg(2, 0, withProof(key[:])), "no DKG of era 2 attempt 0"},
		{"another attempt", 3, api.TopicDkgKey, msg(1, 1, withProof(key[:])), "no DKG of era 1 attempt 1"},
		{"a non-member", 4, api.TopicDkgKey, msg(1, 0, withProof(key[:])), "not a participant"},
		{"a second key", 1, api.TopicDkgKey, msg(1, 0, threshold.DKGKeyBody(seed, 1, 0, n1[:])), "key already posted"},
		{"not a point", 3, api.TopicDkgKey, msg(1, 0, withProof(bytes.Repeat([]byte{0xff}, 32))), "not a DKG key"},
		{"the identity", 3, api.TopicDkgKey, msg(1, 0, withProof(identity[:])), "not a DKG key"},
		{"zero", 3, api.TopicDkgKey, msg(1, 0, withProof(make([]byte, 32))), "not a DKG key"},
		{"31 bytes", 3, api.TopicDkgKey, msg(1, 0, key[:31]), "not a DKG key and its proof"},
		{"a key without its proof", 3, api.TopicDkgKey, msg(1, 0, key[:]), "not a DKG key and its proof"},
		{"member 1's key and proof, posted by member 3", 3, api.TopicDkgKey, msg(1, 0, threshold.DKGKeyBody(posted, 1, 0, n1[:])), "another member's DKG key"},
		{"member 1's key with a proof of member 3's", 3, api.TopicDkgKey, msg(1, 0, withProof(Dkg(e.kv).Keys[0][:])), "another member's DKG key"},
		{"a proof made for member 2", 3, api.TopicDkgKey, msg(1, 0, threshold.DKGKeyBody(seed, 1, 0, n2[:])), "proof of possession does not verify"},
		{"a proof of another attempt", 3, api.TopicDkgKey, msg(1, 0, threshold.DKGKeyBody(seed, 1, 1, n3[:])), "proof of possession does not verify"},
		{"a proof of another era", 3, api.TopicDkgKey, msg(1, 0, threshold.DKGKeyBody(seed, 2, 0, n3[:])), "proof of possession does not verify"},
		{"a broken proof", 3, api.TopicDkgKey, msg(1, 0, withProof(threshold.DKGKeyBody(seed, 1, 0, n3[:])[:32])), "proof of possession does not verify"},
		{"deals while collecting keys", 1, api.TopicDkgDeals, msg(1, 0, []byte("deals")), "not in this phase"},
		{"a response while collecting keys", 1, api.TopicDkgResponse, msg(1, 0, []byte("response")), "not in this phase"},
		{"a result while collecting keys", 1, api.TopicDkgResult, msg(1, 0, result(t, []int{0, 1}, randomPoints(t, 2))), "not in this phase"},
	})

	// Dealing among nodes 1 and 2 (T 2) from the deadline (34); node 1
	// deals and posts a result at 35.
	e.run(34)
	if st := Dkg(e.kv); st.Phase != api.DkgDealing || !slices.Equal(st.Participants, nodes(1, 2)) || st.T != 2 {
		t.Fatalf("state %+v", st)
	}
	e.post(node(1), api.TopicDkgDeals, &api.DkgMessage{Era: 1, Body: []byte("deals")})
	e.post(node(1), api.TopicDkgResult, &api.DkgMessage{Era: 1, Body: result(t, []int{0, 1}, randomPoints(t, 2))})
	e.block()
	if st := Dkg(e.kv); !st.Dealt[0] || st.Dealt[1] || st.Results[0] == ([32]byte{}) || st.Results[1] != ([32]byte{}) {
		t.Fatalf("state %+v", st)
	}
	good := result(t, []int{0, 1}, randomPoints(t, 2))
	check(t, []ignored{
		{"a second deals", 1, api.TopicDkgDeals, msg(1, 0, []byte("deals")), "already dealt"},
		{"deals of a member not dealing", 3, api.TopicDkgDeals, msg(1, 0, []byte("deals")), "not a participant"},
		{"deals of a non-member", 4, api.TopicDkgDeals, msg(1, 0, []byte("deals")), "not a participant"},
		{"deals of another era", 2, api.TopicDkgDeals, msg(0, 0, []byte("deals")), "no DKG of era 0 attempt 0"},
		{"deals of another attempt", 2, api.TopicDkgDeals, msg(1, 1, []byte("deals")), "no DKG of era 1 attempt 1"},
		{"malformed deals", 2, api.TopicDkgDeals, msg(1, 0, nil)[:2], "malformed"},
		{"a key while dealing", 3, api.TopicDkgKey, msg(1, 0, key[:]), "not in this phase"},
		{"a response of a member not dealing", 3, api.TopicDkgResponse, msg(1, 0, []byte("response")), "not a participant"},
		{"a justification of another attempt", 2, api.TopicDkgJustification, msg(1, 1, []byte("justification")), "no DKG"},
		{"a participant's response", 2, api.TopicDkgResponse, msg(1, 0, []byte("response")), ""},
		{"a second result", 1, api.TopicDkgResult, msg(1, 0, good), "result already posted"},
		{"a result of a member not dealing", 3, api.TopicDkgResult, msg(1, 0, good), "not a participant"},
		{"a result of another attempt", 2, api.TopicDkgResult, msg(1, 1, good), "no DKG"},
		{"a malformed result", 2, api.TopicDkgResult, msg(1, 0, []byte("result")), "invalid DKG share or result"},
		{"a result with T-1 commitments", 2, api.TopicDkgResult, msg(1, 0, result(t, []int{0, 1}, randomPoints(t, 1))), "a result of 1 commitments"},
		{"a result with T+1 commitments", 2, api.TopicDkgResult, msg(1, 0, result(t, []int{0, 1}, randomPoints(t, 3))), "a result of 3 commitments"},
		{"a result with the identity as a commitment", 2, api.TopicDkgResult, msg(1, 0, result(t, []int{0, 1}, []kyber.Point{randomPoints(t, 1)[0], threshold.Suite.Point().Null()})), "commitment 1 is not a prime-order point"},
		{"a result with a torsion commitment", 2, api.TopicDkgResult, msg(1, 0, result(t, []int{0, 1}, []kyber.Point{torsioned(t), randomPoints(t, 1)[0]})), "commitment 0 is not a prime-order point"},
		{"a result with fewer than T qualified", 2, api.TopicDkgResult, msg(1, 0, result(t, []int{1}, randomPoints(t, 2))), "1 qualified dealers"},
		{"a result with a dealer beyond the participants", 2, api.TopicDkgResult, msg(1, 0, result(t, []int{0, 2}, randomPoints(t, 2))), "at least 2 of 2"},
	})
}

// Results must be identical to count: the key set is adopted when T (3 of
// 4) participants posted the same one, with those as the confirmed
// members (all four serve); split results adopt nothing, and the attempt
// fails at its deadline with nobody late: the set fails, nobody slashed.
func TestDkgResultsMismatch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		posts   string // per member: r the real result, o another (its QUAL without dealer 3)
		adopted bool
	}{
		{"r r o r: adopted at the third real one", "rror", true},
		{"r r o o: no result reaches T", "rroo", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := dkgEnv(t, 4)
			ms := nodes(1, 2, 3, 4)
			for _, n := range ms {
				e.players.Mute(n, api.TopicDkgResult)
			}
			e.until(36, "the members' results", func(*block.Context) bool { return e.players.Player(ms[3]).Done })
			real := e.players.Player(ms[0]).Result
			qual, commits, err := threshold.DecodeResult(real)
			if err != nil || !slices.Equal(qual, []int{0, 1, 2, 3}) {
				t.Fatalf("result: QUAL %v, %v", qual, err)
			}
			other := result(t, qual[:3], commits)
			var ctx *block.Context
			for i, c := range tc.posts {
				body := real
				if c == 'o' {
					body = other
				}
				e.post(ms[i], api.TopicDkgResult, &api.DkgMessage{Era: 1, Body: body})
				ctx = e.block()
				if ignoredFor(ctx, api.TopicDkgResult) != "" {
					t.Fatalf("result %d ignored: %s", i, ignoredFor(ctx, api.TopicDkgResult))
				}
				if adopted := KeySetOf(e.kv, 1) != nil; adopted != (tc.adopted && i == 3) {
					t.Fatalf("after result %d: adopted %v", i, adopted)
				}
			}
			if tc.adopted {
				checkAdopted(t, e, ctx, ms, nodes(1, 2, 4), 3)
				return
			}
			if st := Dkg(e.kv); st == nil || slices.Contains(st.Results, [32]byte{}) {
				t.Fatalf("results not recorded: %+v", st)
			}
			ctx = e.until(60, "the set's failure", func(*block.Context) bool { return Election(e.kv, 1).Status != api.ElectionPending })
			if r := Election(e.kv, 1); r.Status != api.ElectionExpired || len(r.Confirmed) != 0 || KeySetOf(e.kv, 1) != nil || !hasEvent(ctx, "dkg_failed") {
				t.Fatalf("record %+v", r)
			}
			if len(e.src.slashed) != 0 || !slices.Equal(Gatekeepers(e.kv), nodes(9)) {
				t.Fatalf("slashed %x, list %x", e.src.slashed, Gatekeepers(e.kv))
			}
		})
	}
}

// A DKG still running at the next era end expires with its set (era
// length 12: phases of 4 blocks, api.MinDkgPhase): here attempt 0 of
// three members fails at 21 for node 3's missing result (slashed),
// attempt 1 among nodes 1 and 2 begins and is still dealing at 24. The
// era end announces the DKG
// failed, expires the set (nobody slashed for the attempt it cut short), elects the
// set of era 2 and begins its DKG; era 1's late messages are ignored; the
// genesis list serves throughout.
func TestDkgExpiresAtEraEnd(t *testing.T) {
	e := newEnv(t)
	e.p.NGatekeepers, e.p.EraLength = 3, 12
	e.h = 1
	for _, n := range []byte{1, 2, 3} {
		if err := e.declare(opA, node(n), true); err != nil {
			t.Fatal(err)
		}
	}
	e.src.stake = map[crypto.PublicKey]uint64{node(1): 900, node(2): 800, node(3): 700}
	e.players = dkgplay.New(t, e.p, nodes(1, 2, 3)...)
	e.players.Mute(node(3), api.TopicDkgResult)
	ctx := e.run(21)
	if st := Dkg(e.kv); st == nil || st.Era != 1 || st.Attempt != 1 || st.Phase != api.DkgCollectingKeys || !slices.Equal(st.Members, nodes(1, 2)) ||
		!hasEvent(ctx, "dkg_failed") || !slices.Equal(e.src.slashed, nodes(3)) {
		t.Fatalf("attempt 1 %+v, slashed %x", st, e.src.slashed)
	}
	ctx = e.run(24)
	r := Election(e.kv, 1)
	if r.Status != api.ElectionExpired || r.StatusHeight != 24 || len(r.Confirmed) != 0 || !hasEvent(ctx, "gatekeeper_set_expired") {
		t.Fatalf("era 1 %+v", r)
	}
	// Node 3 was slashed for its missing result; the attempt the era end
	// cut short slashes nobody.
	if !slices.Equal(e.src.slashed, nodes(3)) {
		t.Fatalf("slashed %x", e.src.slashed)
	}
	rounds := dkgRounds(t, ctx)
	if len(rounds) != 2 || rounds[0].Era != 1 || rounds[0].Attempt != 1 || rounds[0].Phase != api.DkgFailed ||
		rounds[1].Era != 2 || rounds[1].Attempt != 0 || rounds[1].Phase != api.DkgCollectingKeys {
		t.Fatalf("rounds %+v", rounds)
	}
	if st := Dkg(e.kv); st == nil || st.Era != 2 || KeySetOf(e.kv, 1) != nil || !slices.Equal(Gatekeepers(e.kv), nodes(9)) {
		t.Fatalf("DKG %+v, list %x", st, Gatekeepers(e.kv))
	}
	if p, ok := Pending(e.kv); !ok || p != 2 {
		t.Fatalf("pending %d %v", p, ok)
	}
	ctx = e.block()
	if why := ignoredFor(ctx, api.TopicDkgResult); why != "no DKG of era 1 attempt 1 runs" {
		t.Fatalf("a result of era 1 after its expiry: %q", why)
	}
}

// torsioned is a random point plus the point of order 2 (not of prime
// order).
func torsioned(t *testing.T) kyber.Point {
	t.Helper()
	o2 := threshold.Suite.Point()
	if err := o2.UnmarshalBinary(append([]byte{0xec}, append(bytes.Repeat([]byte{0xff}, 30), 0x7f)...)); err != nil {
		t.Fatal(err)
	}
	return threshold.Suite.Point().Add(randomPoints(t, 1)[0], o2)
}
