package app

import (
	"strings"
	"testing"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/contracts"
)

// Edge cases found by a review of issue 12's last changes.
//
// A worker silent for a whole era must not dodge the era's verdict (and
// its slash) by letting its registration "lapse" for zero blocks: it
// registers again in the very block its registration expires (ExpiresAt).
// Before the fix the chain took it for a newcomer (ActiveSince = that
// height, Exempt) although it was registered, and served its contracts,
// for the whole era; a registration whose predecessor was valid at some
// point of the era keeps its ActiveSince.
func TestReregistrationAtExpiryIsJudged(t *testing.T) {
	g := genesis()
	g.Params.EraLength = 12
	g.Params.HeartbeatsPerEra = 12 // every node, every block
	g.Params.HeartbeatWindow = 2
	g.Params.RegistrationLifetime = 20 // registered at 2: expires at 22, in era 1 (13 to 24)
	h := newHarness(t, g)
	h.block()
	healthy, silent := newWorker(t), newWorker(t)
	hk, sk := healthy.identity.Public(), silent.identity.Public()
	mustOK(t, h.block(h.tx(bob, h.nonce(bob), h.register(h.cite(healthy.info))), h.tx(bob, h.nonce(bob)+1, h.register(h.cite(silent.info)))))
	var seq uint64
	for h.height < 24 {
		cur := h.height
		nonce := h.nonce(bob)
		hb := &api.Heartbeat{Height: cur, Seed: blockHash(cur - 1)}
		m := api.SignMessage(chainID, api.Message{Origin: api.KeyOrigin(api.OriginWorker, hk), Topic: api.TopicHeartbeat, Seq: seq, Payload: hb.Encode()}, healthy.identity)
		seq++
		txs := [][]byte{h.tx(bob, nonce, &api.PushMessage{Message: m})}
		nonce++
		switch cur + 1 {
		case 13: // the healthy worker renews at era 1's first block, as pherry does
			txs = append(txs, h.tx(bob, nonce, h.register(h.cite(healthy.info))))
		case h.worker(sk).ExpiresAt: // the silent one, in the block its registration expires
			txs = append(txs, h.tx(bob, nonce, h.register(h.cite(silent.info))))
		}
		mustOK(t, h.block(txs...))
	}
	if h.height != 24 {
		t.Fatalf("height %d", h.height)
	}
	rec := h.worker(sk)
	t.Logf("silent worker: registered at %d, active since %d, expires at %d", rec.RegisteredAt, rec.ActiveSince, rec.ExpiresAt)
	r := h.eraReport(1)
	if r == nil {
		t.Fatal("no report of era 1")
	}
	got := map[crypto.PublicKey]api.NodeVerdict{}
	for _, n := range r.Nodes {
		got[n.Node] = n
	}
	if v := got[sk]; v.Exempt || !v.Unresponsive {
		t.Fatalf("silent for all of era 1 (registered without a gap since height 2), yet its verdict is %+v (max worker activity %d)", v, r.MaxWorker)
	}
}

// heartbeats_per_era is validated against the new era_length, but until
// the next era boundary challenges are drawn with the running era's own
// (old) length: raising era_length and heartbeats_per_era together (12 → 1200,
// 3 → 600) challenges every node at every block for the rest of the era
// (selector mod 12 < 600 always), a rate neither the old (1/4) nor the new
// (1/2) parameters ask for: every node's operator pays a push_message per
// block meanwhile (and with a long old era, for a long time).
func TestHeartbeatParamsFitRunningEra(t *testing.T) {
	g := govGenesis()
	g.Governance.Threshold = 1
	g.Params.EraLength = 12
	g.Params.HeartbeatsPerEra = 3
	g.Params.HeartbeatWindow = 2
	h := newGovHarness(t, g)
	h.block()
	var ws []*worker
	var txs [][]byte
	for i := range 4 {
		w := newWorker(t)
		ws = append(ws, w)
		txs = append(txs, h.tx(bob, h.nonce(bob)+uint64(i), h.register(h.cite(w.info))))
	}
	mustOK(t, h.block(txs...))
	for h.height < 14 {
		h.block()
	}
	p := h.params()
	p.EraLength, p.HeartbeatsPerEra = 1200, 600
	// Refused, and nothing changes: until the boundary, challenges are
	// drawn with the running era's length, 12 blocks.
	res := h.block(h.tx(alice, h.nonce(alice), &api.GovPropose{Action: api.Action{Kind: api.ActionSetParams, Params: p}}))
	if r := res.TxResults[0]; r.Code == 0 || !strings.Contains(r.Log, "running era's length") {
		t.Fatalf("raising heartbeats_per_era beyond the running era's length: code %d %q", r.Code, r.Log)
	}
	if got := h.params(); got.EraLength != 12 || got.HeartbeatsPerEra != 3 {
		t.Fatalf("params changed by a refused motion: %+v", got)
	}
	// The two steps the refusal names: era_length first (from the next
	// era), heartbeats_per_era once the long eras have begun.
	p = h.params()
	p.EraLength = 1200
	mustOK(t, h.block(h.tx(alice, h.nonce(alice), &api.GovPropose{Action: api.Action{Kind: api.ActionSetParams, Params: p}})))
	n, all := 0, 0
	for h.height < 24 { // the rest of era 1, still 12 blocks long
		res := h.block()
		c := challenged(t, res, h)
		for _, w := range ws {
			all++
			if c[w.identity.Public()] {
				n++
			}
		}
	}
	if s := h.eraSchedule(); len(s.Segments) != 1 {
		t.Fatalf("schedule changed mid-era: %+v", s.Segments)
	}
	if n == all {
		t.Fatalf("every node challenged at every block for the rest of the era (%d of %d node-blocks)", n, all)
	}
	h.block() // era 2's first block: the 1200-block segment begins
	p = h.params()
	p.HeartbeatsPerEra = 600
	mustOK(t, h.block(h.tx(alice, h.nonce(alice), &api.GovPropose{Action: api.Action{Kind: api.ActionSetParams, Params: p}})))
	if got := h.params(); got.HeartbeatsPerEra != 600 {
		t.Fatalf("heartbeats_per_era %d after the longer eras began, want 600", got.HeartbeatsPerEra)
	}
}

// The cz/ marker ("lost every worker") is dropped by the next check as
// soon as the contract's key era is the serving one, whether or not it
// has a worker again (epochs.go checkEpochs: rec.KeyEra == serving &&
// !rec.Migrating). A contract that loses its last worker while its era
// still serves (here its deployer takes w3 off it; an expiry, a stake
// drop or an unresponsive verdict do the same) and gets no replacement
// before the next key set is adopted has lost its marker by then: its era's
// deadline is not held although its member is attested and w4 could run
// it, and it is stranded one window after the adoption, the failure the
// hold was built for (TestSoleWorkerElectedLateReplacement, where the
// worker leaves after the adoption, is held).
func TestWorkerLostBeforeRotationHeld(t *testing.T) {
	c := newSoleWorkerChain(t)
	h, id := c.h, c.contract.Public()
	mustOK(t, h.block(h.tx(alice, h.nonce(alice), &api.ContractReassign{Contract: id, Worker: c.w3.identity.Public()})))
	if rec := h.contractRecord(id); len(rec.Workers) != 0 || rec.KeyEra != 0 {
		t.Fatalf("record after the reassign: %+v", rec)
	}
	for h.height < 30 {
		h.block()
	}
	d := h.dkgMembers(c.w3)
	d.read()
	for h.keySet(1) == nil {
		if h.height >= 40 {
			t.Fatalf("no key set of era 1 by height %d", h.height)
		}
		d.block()
	}
	adopted := h.height
	retired, stranded := c.run(adopted + 30 + contracts.ReplicaCheckInterval)
	if len(retired) != 0 || len(stranded) != 0 {
		t.Fatalf("worker-less since before era 1's adoption (at %d), replaceable under era 0 (w4, member attested): at %d retired %v, stranded %v", adopted, h.height, retired, stranded)
	}
}
