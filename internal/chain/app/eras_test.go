package app

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/store"
)

func (h *harness) eraSchedule() *api.EraSchedule {
	h.t.Helper()
	s, err := api.DecodeEraSchedule(h.state(api.QueryEraSchedule))
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) eraReport(era uint64) *api.EraReport {
	h.t.Helper()
	v := h.query(api.QueryEraReport, binary.BigEndian.AppendUint64(nil, era), false).Value
	if v == nil {
		return nil
	}
	r, err := api.DecodeEraReport(v)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// eventAttr returns the attribute key of the first event of kind in res
// ("" and false when none).
func eventAttr(res *abci.ResponseFinalizeBlock, kind, key string) (string, bool) {
	for _, e := range res.Events {
		if e.Type != kind {
			continue
		}
		for _, a := range e.Attributes {
			if a.Key == key {
				return a.Value, true
			}
		}
		return "", true
	}
	return "", false
}

// A governance motion changes era_length in the middle of an era: the
// current era still ends at its original last block, the next one has
// the new length, past eras keep their heights, and a healthy worker
// answering its heartbeats across the change is neither found
// unresponsive nor slashed (on the devnet, renumbering by the new length
// judged a 3-block "era" and slashed one). A silent worker still is.
func TestEraLengthChangeMidEra(t *testing.T) {
	g := govGenesis()
	g.Governance.Threshold = 1 // Alice's proposal is enacted at once
	g.Params.EraLength = 12
	g.Params.HeartbeatsPerEra = 12 // every node, every block
	g.Params.HeartbeatWindow = 2
	h := newGovHarness(t, g)
	h.block()
	healthy, silent := newWorker(t), newWorker(t)
	hk := healthy.identity.Public()
	mustOK(t, h.block(h.tx(bob, h.nonce(bob), h.register(h.cite(healthy.info))), h.tx(bob, h.nonce(bob)+1, h.register(h.cite(silent.info)))))
	mustOK(t, h.block(h.tx(charlie, 0, &api.StakeBond{Amount: 200 * api.Unit})))
	mustOK(t, h.block(h.tx(charlie, 1, &api.StakeAllocate{Node: hk, Amount: 100 * api.Unit}),
		h.tx(charlie, 2, &api.StakeAllocate{Node: silent.identity.Public(), Amount: 100 * api.Unit})))

	// step runs a block carrying the healthy worker's answers to its
	// challenges of the previous block(s) and extra, and remembers its
	// new challenge.
	var open []int64
	var seq uint64
	step := func(extra ...[]byte) *abci.ResponseFinalizeBlock {
		t.Helper()
		nonce := h.nonce(bob)
		var txs [][]byte
		for _, c := range open {
			hb := &api.Heartbeat{Height: c, Seed: blockHash(c - 1)}
			m := api.SignMessage(chainID, api.Message{Origin: api.KeyOrigin(api.OriginWorker, hk), Topic: api.TopicHeartbeat, Seq: seq, Payload: hb.Encode()}, healthy.identity)
			seq++
			txs = append(txs, h.tx(bob, nonce, &api.PushMessage{Message: m}))
			nonce++
		}
		open = nil
		res := h.block(append(txs, extra...)...)
		mustOK(t, res)
		if challenged(t, res, h)[hk] {
			open = append(open, h.height)
		}
		return res
	}
	for h.height < 15 { // into era 1 (heights 13 to 24)
		step()
	}
	if h.eraReport(0) == nil || h.eraReport(0).Height != 12 {
		t.Fatalf("era 0's report: %+v", h.eraReport(0))
	}

	// Height 16: era_length 12 → 4 (heartbeats_per_era must fit in it).
	p := h.params()
	p.EraLength, p.HeartbeatsPerEra = 4, 4
	step(h.tx(alice, h.nonce(alice), &api.GovPropose{Action: api.Action{Kind: api.ActionSetParams, Params: p}}))
	if got := h.params(); got.EraLength != 4 {
		t.Fatalf("params not changed: era_length %d", got.EraLength)
	}
	if s := h.eraSchedule(); len(s.Segments) != 1 {
		t.Fatalf("the schedule changed mid-era: %+v", s.Segments)
	}
	// Up to height 23 nothing ends: by the new length, 20 would be "the
	// last block of era 4", judging heights 17 to 20.
	for h.height < 23 {
		if res := step(); h.height != 23 {
			if _, ok := eventAttr(res, "era_ended", "era"); ok {
				t.Fatalf("an era ended at height %d", h.height)
			}
		}
	}
	// Height 24, era 1's original last block: era 1 ends there.
	res := step()
	if era, ok := eventAttr(res, "era_ended", "era"); h.height != 24 || !ok || era != "1" {
		t.Fatalf("height %d: era_ended %q %v", h.height, era, ok)
	}
	r1 := h.eraReport(1)
	if r1 == nil || r1.Height != 24 {
		t.Fatalf("era 1's report: %+v", r1)
	}
	verdict := func(r *api.EraReport, n crypto.PublicKey) api.NodeVerdict {
		t.Helper()
		i := slices.IndexFunc(r.Nodes, func(v api.NodeVerdict) bool { return v.Node == n })
		if i < 0 {
			t.Fatalf("era %d judged no %s", r.Era, n.Hex())
		}
		return r.Nodes[i]
	}
	if v := verdict(r1, hk); v.Unresponsive || v.Slashed != 0 || v.Exempt || v.Count == 0 || v.Reward == 0 {
		t.Fatalf("the healthy worker in era 1: %+v", v)
	}
	if v := verdict(r1, silent.identity.Public()); !v.Unresponsive || v.Slashed == 0 {
		t.Fatalf("the silent worker in era 1: %+v", v)
	}
	// Its activity of era 1 is all of heights 13 to 24 (answers counted
	// in the era of the challenge); nothing was counted under the eras
	// the new length would give those heights.
	if a := h.activity(1, hk); a.Answered == 0 || a.Answered+1 < a.Challenged {
		t.Fatalf("era 1 activity: %+v", a)
	}
	for _, e := range []uint64{3, 4, 5} {
		if a := h.activity(e, hk); a != (api.Activity{}) {
			t.Fatalf("activity counted in era %d: %+v", e, a)
		}
	}

	// Height 25: era 2 begins, 4 blocks long; the schedule says so and
	// pRuntimes are told.
	step()
	s := h.eraSchedule()
	want := []api.EraSegment{{Start: 1, FirstEra: 0, Length: 12}, {Start: 25, FirstEra: 2, Length: 4}}
	if !slices.Equal(s.Segments, want) {
		t.Fatalf("schedule %+v, want %+v", s.Segments, want)
	}
	if msgs := h.moduleMessages(api.ErasModule, api.TopicEraSchedule); len(msgs) != 1 || string(msgs[0]) != string(s.Encode()) {
		t.Fatalf("schedule messages: %d", len(msgs))
	}
	for h.height < 27 {
		step()
	}
	res = step() // 28: era 2's last block
	if era, ok := eventAttr(res, "era_ended", "era"); h.height != 28 || !ok || era != "2" {
		t.Fatalf("height %d: era_ended %q %v", h.height, era, ok)
	}
	r2 := h.eraReport(2)
	if r2 == nil || r2.Height != 28 {
		t.Fatalf("era 2's report: %+v", r2)
	}
	if v := verdict(r2, hk); v.Unresponsive || v.Slashed != 0 {
		t.Fatalf("the healthy worker in era 2: %+v", v)
	}
	// Past eras keep their heights and reports.
	for _, c := range []struct {
		era        uint64
		start, end int64
	}{{0, 1, 12}, {1, 13, 24}, {2, 25, 28}, {3, 29, 32}} {
		if s.Start(c.era) != c.start || s.End(c.era) != c.end {
			t.Fatalf("era %d: heights %d to %d, want %d to %d", c.era, s.Start(c.era), s.End(c.era), c.start, c.end)
		}
	}
	if r := h.eraReport(0); r == nil || r.Height != 12 {
		t.Fatalf("era 0's report after the change: %+v", r)
	}
	if r := h.eraReport(1); r == nil || r.Height != 24 || len(r.Nodes) != len(r1.Nodes) {
		t.Fatalf("era 1's report after the change: %+v", r)
	}
}

// Once the era schedule holds api.MaxEraSegments segments, governance
// refuses a change of era_length (the schedule is bounded); other
// parameter changes still pass.
func TestEraLengthChangeRefusedWhenScheduleFull(t *testing.T) {
	full := api.GenesisEras(13)
	for i := 1; i < api.MaxEraSegments; i++ {
		cur := full.Current()
		if err := full.Change(full.End(cur.FirstEra)+1, uint64(13-i%2)); err != nil {
			t.Fatal(err)
		}
	}
	if !full.Full() || full.Current().Length != 12 {
		t.Fatalf("%d segments, current length %d", len(full.Segments), full.Current().Length)
	}
	genesisHook = func(kv store.KV) { kv.Set(api.KeyEraSchedule, full.Encode()) }
	defer func() { genesisHook = nil }()
	g := govGenesis()
	g.Governance.Threshold = 1
	g.Params.EraLength = 12
	h := newGovHarness(t, g)
	h.block()
	p := h.params()
	p.EraLength = 20
	res := h.block(h.tx(alice, h.nonce(alice), &api.GovPropose{Action: api.Action{Kind: api.ActionSetParams, Params: p}}))
	if r := res.TxResults[0]; r.Code == 0 || !strings.Contains(r.Log, "era_length cannot change any more") {
		t.Fatalf("a change of era_length with a full schedule: code %d %s", r.Code, r.Log)
	}
	p = h.params()
	p.FeeBase++
	mustOK(t, h.block(h.tx(alice, h.nonce(alice), &api.GovPropose{Action: api.Action{Kind: api.ActionSetParams, Params: p}})))
	if h.params().FeeBase != p.FeeBase {
		t.Fatal("fee_base did not change")
	}
}

// While a gatekeeper DKG runs, governance refuses a change of its phase
// length (dkg_timeout, or era_length through its cap of a third): the
// deadlines of the running phase would move under its members, and the
// ones it made late would be slashed. Other changes pass.
func TestDkgPhaseChangeRefusedWhileDkgRuns(t *testing.T) {
	gk := newWorker(t)
	g := govGenesis()
	g.Governance.Threshold = 1
	g.Gatekeepers = []crypto.PublicKey{gk.identity.Public()}
	// DkgPhase: min(dkg_timeout 20, era_length/3 = 10) = 10 blocks.
	g.Params.EraLength, g.Params.NGatekeepers, g.Params.MinGatekeeperStake = 30, 1, api.Unit
	h := newGovHarness(t, g)
	h.block()
	w0 := newWorker(t)
	id0 := w0.identity.Public()
	mustOK(t, h.block(h.tx(bob, h.nonce(bob), h.register(h.cite(w0.info)))))
	mustOK(t, h.block(
		h.tx(charlie, 0, &api.StakeBond{Amount: 300 * api.Unit}),
		h.tx(charlie, 1, &api.StakeAllocate{Node: id0, Amount: 200 * api.Unit}),
		h.tx(bob, h.nonce(bob), &api.GatekeeperCandidacy{Node: id0, On: true})))
	d := h.dkgMembers(w0)
	for h.height < 31 {
		d.block()
	}
	if h.app.store.Get(api.KeyDkg) == nil {
		t.Fatal("no DKG runs after the election")
	}
	for name, change := range map[string]func(*api.Params){
		"dkg_timeout": func(p *api.Params) { p.DkgTimeout = 5 }, // phase 5
		"era_length":  func(p *api.Params) { p.EraLength = 15 }, // phase min(20, 5) = 5
	} {
		p := h.params()
		change(&p)
		res := h.block(h.tx(alice, h.nonce(alice), &api.GovPropose{Action: api.Action{Kind: api.ActionSetParams, Params: p}}))
		if r := res.TxResults[0]; r.Code == 0 || !strings.Contains(r.Log, "a gatekeeper DKG runs") {
			t.Fatalf("%s: code %d %s", name, r.Code, r.Log)
		}
	}
	p := h.params()
	p.FeeBase++
	mustOK(t, h.block(h.tx(alice, h.nonce(alice), &api.GovPropose{Action: api.Action{Kind: api.ActionSetParams, Params: p}})))
}
