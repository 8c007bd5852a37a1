package app

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/store"
)

// testVoters is the election's VoterSource in app tests until staking is
// wired in: node stakes and nominations given as Go values.
type testVoters struct {
	stake map[crypto.PublicKey]uint64
	noms  []testNomination // ascending by account
}

type testNomination struct {
	who     crypto.PublicKey
	bonded  uint64
	targets []crypto.PublicKey
}

func (v *testVoters) NodeStake(_ store.KV, n crypto.PublicKey) uint64 { return v.stake[n] }
func (v *testVoters) ForEachNominator(_ store.KV, fn func(crypto.PublicKey, uint64, []crypto.PublicKey) bool) {
	for _, n := range v.noms {
		if !fn(n.who, n.bonded, n.targets) {
			return
		}
	}
}
func (v *testVoters) Slash(*block.Context, crypto.PublicKey, uint64, string) uint64 { return 0 }
func (v *testVoters) SlashExposure(*block.Context, crypto.PublicKey, uint64, string) uint64 {
	return 0
}
func (v *testVoters) Responsive(*block.Context, crypto.PublicKey) bool { return true }
func (v *testVoters) Down(*block.Context, crypto.PublicKey) bool       { return false }

// newElectionHarness is a harness whose gatekeeper election reads voters.
func newElectionHarness(t *testing.T, g *api.GenesisState, voters *testVoters) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), now: time.Unix(1_700_000_000, 0)}
	h.open()
	h.app.mux = newMuxWith(voters)
	state, _ := json.Marshal(g)
	if _, err := h.app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: chainID, AppStateBytes: state, Time: h.now, InitialHeight: 1}); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) proved(path string, data []byte, appHash []byte) []byte {
	h.t.Helper()
	res, err := h.app.Query(context.Background(), &abci.RequestQuery{Path: path, Data: data, Prove: true})
	if err != nil || res.Code != 0 {
		h.t.Fatalf("query %s: %v %s", path, err, res.Log)
	}
	key, _ := api.QueryKey(path, data)
	if err := api.VerifyStateProof(key, res.Value, res.ProofOps, appHash); err != nil {
		h.t.Fatalf("proof of %s: %v", path, err)
	}
	return res.Value
}

func topicMessages(bm *api.BlockMessages, topic string) []*api.GatekeeperSet {
	var out []*api.GatekeeperSet
	for _, m := range bm.Messages {
		if m.Topic == topic && m.Origin == api.ModuleOrigin("gatekeeper") {
			s, err := api.DecodeGatekeeperSet(m.Payload)
			if err != nil {
				panic(err)
			}
			out = append(out, s)
		}
	}
	return out
}

// TestGatekeeperElection runs the chain across an era boundary: operators
// declare candidates, the last block of era 0 elects the set of era 1 by
// Phragmén over the voters' stake, announces it and begins its DKG; the
// genesis gatekeeper keeps serving while the members run it through the
// queue (their messages pushed with origin WORKER; a non-member's DKG key
// is ignored), and the key set their results agree on makes the set the
// gatekeeper list: its members speak as gatekeepers, the genesis
// gatekeeper no longer does.
func TestGatekeeperElection(t *testing.T) {
	genesisGK := newWorker(t)
	g := genesis()
	g.Gatekeepers = []crypto.PublicKey{genesisGK.identity.Public()}
	g.Params.EraLength, g.Params.NGatekeepers, g.Params.MinGatekeeperStake, g.Params.HeartbeatsPerEra = 10, 2, 100, 0
	voters := &testVoters{}
	h := newElectionHarness(t, g, voters)
	h.block()
	ws := []*worker{newWorker(t), newWorker(t), newWorker(t)}
	var txs [][]byte
	for i, w := range ws {
		txs = append(txs, h.tx(bob, uint64(i), h.register(h.cite(w.info))))
	}
	mustOK(t, h.block(txs...))
	id := func(i int) crypto.PublicKey { return ws[i].identity.Public() }

	// Only the operator declares a candidate.
	h.mustRefuse(h.tx(alice, 0, &api.GatekeeperCandidacy{Node: id(0), On: true}), api.CodeInvalidCall, "not the node's operator")
	mustOK(t, h.block(h.tx(bob, 3, &api.GatekeeperCandidacy{Node: id(0), On: true}), h.tx(bob, 4, &api.GatekeeperCandidacy{Node: id(1), On: true}),
		h.tx(bob, 5, &api.GatekeeperCandidacy{Node: id(2), On: true})))
	cands, _ := api.DecodeKeys(h.state(api.QueryGatekeeperCandidates))
	want := []crypto.PublicKey{id(0), id(1), id(2)}
	slices.SortFunc(want, func(a, b crypto.PublicKey) int { return slices.Compare(a[:], b[:]) })
	if !slices.Equal(cands, want) {
		t.Fatalf("candidates %x", cands)
	}

	// Stakes: w0 500, w1 300, w2 100, and alice nominates w2 with 250.
	// Approvals 500, 300, 350: round 0 elects w0 (1/500), round 1 w2
	// (1/350 < 1/300).
	voters.stake = map[crypto.PublicKey]uint64{id(0): 500, id(1): 300, id(2): 100}
	voters.noms = []testNomination{{alice.Public(), 250, []crypto.PublicKey{id(2)}}}
	d := h.dkgMembers(ws...) // each would take part if elected
	for h.height < 9 {
		d.block()
	}
	last := d.block() // height 10: the last block of era 0
	if h.height != 10 {
		t.Fatalf("height %d", h.height)
	}
	era := binary.BigEndian.AppendUint64(nil, 1)
	rec, err := api.DecodeElectionRecord(h.proved(api.QueryGatekeeperEra, era, last.AppHash))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.Members, []crypto.PublicKey{id(0), id(2)}) || rec.Status != api.ElectionPending || rec.Height != 10 ||
		!slices.Equal(rec.Backing, []api.MemberBacking{{Total: 500, Own: 500}, {Total: 350, Own: 100}}) {
		t.Fatalf("record %+v", rec)
	}
	x, err := api.DecodeExposure(h.proved(api.QueryGatekeeperExposure, append(era, id(2).Bytes()...), last.AppHash))
	if err != nil || !slices.Equal(x.Others, []api.Backer{{Who: alice.Public(), Amount: 250}}) {
		t.Fatalf("exposure %+v %v", x, err)
	}
	if el := topicMessages(h.messages(10), api.TopicGatekeeperElected); len(el) != 1 || el[0].Era != 1 || !slices.Equal(el[0].Members, rec.Members) {
		t.Fatalf("elected messages %+v", el)
	}
	if st := dkgRoundsOf(t, h.messages(10)); len(st) != 1 || st[0].Era != 1 || st[0].Phase != api.DkgCollectingKeys || !slices.Equal(st[0].Members, rec.Members) {
		t.Fatalf("DKG rounds %+v", st)
	}
	list := func() []crypto.PublicKey {
		keys, _ := api.DecodeKeys(h.state(api.QueryGatekeepers))
		return keys
	}
	if !slices.Equal(list(), g.Gatekeepers) {
		t.Fatal("the genesis gatekeeper must serve until the set's key set is adopted")
	}

	// Block 11: the members' DKG keys, and w1's, which is not a member's.
	d.post(ws[1], api.TopicDkgKey, &api.DkgMessage{Era: 1, Body: masterPointBytes()})
	res := d.block()
	ignored := 0
	for _, r := range res.TxResults {
		if why := event(r, "dkg_message_ignored", "reason"); why != "" {
			if event(r, "dkg_message_ignored", "node") != id(1).Hex() || !strings.Contains(why, "not a participant") {
				t.Fatalf("ignored %s", why)
			}
			ignored++
		}
	}
	st, err := api.DecodeDkgState(h.app.store.Get(api.KeyDkg))
	if err != nil || ignored != 1 || st.Phase != api.DkgDealing || !slices.Equal(st.Participants, rec.Members) || st.T != 2 {
		t.Fatalf("after the keys (%d ignored): %+v %v", ignored, st, err)
	}
	// Deals (12), responses (13), results (14): the key set is adopted.
	for len(topicMessages(h.messages(h.height), api.TopicGatekeeperActive)) == 0 {
		if h.height >= 14 {
			t.Fatalf("no activation by height %d", h.height)
		}
		if !slices.Equal(list(), g.Gatekeepers) {
			t.Fatalf("height %d: the genesis gatekeeper must serve until the set's key set is adopted", h.height)
		}
		d.block()
	}
	rec, _ = api.DecodeElectionRecord(h.stateData(api.QueryGatekeeperEra, era))
	if rec.Status != api.ElectionActive || rec.StatusHeight != h.height || !slices.Equal(rec.Confirmed, rec.Members) || !slices.Equal(list(), rec.Members) {
		t.Fatalf("not active: %+v, list %x", rec, list())
	}
	if a := topicMessages(h.messages(h.height), api.TopicGatekeeperActive); len(a) != 1 || a[0].Era != 1 || !slices.Equal(a[0].Members, rec.Members) {
		t.Fatalf("active messages %+v", a)
	}
	s := h.keySet(1)
	if s == nil || s.T != 2 || !slices.Equal(s.Members, rec.Members) || !bytes.Equal(h.query(api.QueryMasterKey, nil, false).Value, s.Commits[0][:]) ||
		h.app.store.Get(api.KeyDkg) != nil {
		t.Fatalf("key set of era 1 %+v", s)
	}
	// The list is the elected set's now: a member speaks as a gatekeeper,
	// the genesis gatekeeper does not.
	asGK := func(k *crypto.KeyPair, relayer *crypto.KeyPair) []byte {
		m := api.SignMessage(chainID, api.Message{Origin: api.KeyOrigin(api.OriginGatekeeper, k.Public()), Topic: "phala/gatekeeper/test"}, k)
		return h.tx(relayer, h.nonce(relayer), &api.PushMessage{Message: m})
	}
	h.mustRefuse(asGK(genesisGK.identity, bob), api.CodeUnknownOrigin, "not a gatekeeper")
	if res := h.check(asGK(ws[0].identity, alice)); res.Code != 0 {
		t.Fatalf("member as gatekeeper: %s", res.Log)
	}
}

// dkgRoundsOf are the DKG phases the gatekeeper module announced in bm.
func dkgRoundsOf(t *testing.T, bm *api.BlockMessages) []*api.DkgState {
	t.Helper()
	var out []*api.DkgState
	for _, m := range bm.Messages {
		if m.Topic == api.TopicDkgRound && m.Origin == api.ModuleOrigin("gatekeeper") {
			st, err := api.DecodeDkgState(m.Payload)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, st)
		}
	}
	return out
}

// masterPointBytes is masterPoint as a slice (a valid DKG key too).
func masterPointBytes() []byte {
	p := masterPoint()
	return p[:]
}

func (h *harness) stateData(path string, data []byte) []byte {
	h.t.Helper()
	res, _ := h.app.Query(context.Background(), &abci.RequestQuery{Path: path, Data: data})
	if res.Code != 0 {
		h.t.Fatal(res.Log)
	}
	return res.Value
}

// A failed DKG slashes through staking: w1, elected with w0, never posts
// its result; the attempt times out (15) and fails (19: phases of
// api.MinDkgPhase = 4 blocks) with w1 late,
// and one responsive member of two is under two thirds, so the set
// fails: w1's stakers lose offline_slash_ppm (1%) of their allocation to
// it and its nominator (bob) the same share of its exposure to it, burned
// from the issuance; w0's stake is untouched, the genesis gatekeeper
// serves on, no key set of era 1 exists.
func TestDkgFailureSlashesStake(t *testing.T) {
	gk := newWorker(t)
	g := genesis()
	g.Gatekeepers = []crypto.PublicKey{gk.identity.Public()}
	g.Params.EraLength, g.Params.NGatekeepers, g.Params.MinGatekeeperStake = 10, 2, api.Unit
	h := newHarness(t, g)
	h.block()
	w0, w1 := newWorker(t), newWorker(t)
	mustOK(t, h.block(h.tx(bob, 0, h.register(h.cite(w0.info))), h.tx(bob, 1, h.register(h.cite(w1.info)))))
	id0, id1 := w0.identity.Public(), w1.identity.Public()
	mustOK(t, h.block(
		h.tx(alice, 0, &api.StakeBond{Amount: 300 * api.Unit}),
		h.tx(alice, 1, &api.StakeAllocate{Node: id0, Amount: 200 * api.Unit}),
		h.tx(alice, 2, &api.StakeAllocate{Node: id1, Amount: 100 * api.Unit}),
		h.tx(bob, 2, &api.StakeBond{Amount: 50 * api.Unit}),
		h.tx(bob, 3, &api.StakeNominate{Targets: []crypto.PublicKey{id1}}),
		h.tx(bob, 4, &api.GatekeeperCandidacy{Node: id0, On: true}),
		h.tx(bob, 5, &api.GatekeeperCandidacy{Node: id1, On: true})))
	d := h.dkgMembers(w0, w1)
	d.Mute(id1, api.TopicDkgResult)
	for h.height < 10 {
		d.block()
	}
	issuance := func() uint64 {
		v, err := api.DecodeIssuance(h.query(api.QueryIssuance, nil, false).Value)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := issuance()
	era := binary.BigEndian.AppendUint64(nil, 1)
	x, err := api.DecodeExposure(h.stateData(api.QueryGatekeeperExposure, append(era, id1.Bytes()...)))
	if err != nil || !slices.Equal(x.Others, []api.Backer{{Who: bob.Public(), Amount: 50 * api.Unit}}) {
		t.Fatalf("exposure of w1 %+v %v", x, err)
	}
	var failed *abci.ResponseFinalizeBlock
	pushes := 0
	for failed == nil {
		res := d.block()
		pushes += len(res.TxResults)
		for _, ev := range res.Events {
			if ev.Type == "dkg_failed" {
				failed = res
			}
		}
		if h.height > 19 {
			t.Fatalf("no failure by height %d", h.height)
		}
	}
	rec, _ := api.DecodeElectionRecord(h.stateData(api.QueryGatekeeperEra, era))
	if h.height != 19 || rec.Status != api.ElectionExpired || rec.StatusHeight != 19 || h.keySet(1) != nil || h.app.store.Get(api.KeyDkg) != nil {
		t.Fatalf("height %d: %+v", h.height, rec)
	}
	if keys, _ := api.DecodeKeys(h.state(api.QueryGatekeepers)); !slices.Equal(keys, g.Gatekeepers) {
		t.Fatalf("list %x", keys)
	}
	stake := func(n crypto.PublicKey) uint64 {
		s, err := api.DecodeNodeStake(h.query(api.QueryStakeNode, n[:], false).Value)
		if err != nil {
			t.Fatal(err)
		}
		return s.Total
	}
	l, err := api.DecodeStakeLedger(h.query(api.QueryStakeLedger, bob.Public().Bytes(), false).Value)
	if err != nil || stake(id0) != 200*api.Unit || stake(id1) != 99*api.Unit || l.Bonded != 50*api.Unit-api.Unit/2 {
		t.Fatalf("stakes %d, %d; bob's ledger %+v %v", stake(id0), stake(id1), l, err)
	}
	// The pushes' fees burn too.
	if want := before - api.Unit - api.Unit/2 - uint64(pushes)*api.DefaultParams().MinFee(2048); issuance() != want {
		t.Fatalf("issuance %d, want %d", issuance(), want)
	}
}
