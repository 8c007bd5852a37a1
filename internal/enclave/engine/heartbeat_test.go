package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
)

// pushFast syncs es and broadcasts their new egress without waiting for
// each transaction (heartbeats must arrive within their window).
func pushFast(t *testing.T, ch *chain, s *client.Signer, es ...*Engine) {
	t.Helper()
	syncTo(t, ch, es...)
	for _, e := range es {
		for _, m := range e.Egress() {
			v, _, err := queryRaw(t, ch.c, api.QueryNextSeq, m.Message.Origin.Encode())
			if err != nil {
				t.Fatal(err)
			}
			next := uint64(0)
			if len(v) > 0 {
				next, _ = binary.Uvarint(v)
			}
			if m.Message.Seq < next {
				continue
			}
			tx, err := s.Sign(ctx(t), &api.PushMessage{Message: m})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ch.c.Broadcast(ctx(t), tx.Encode()); err != nil {
				s.Resync()
			}
		}
	}
}

// Heartbeats and the 1/4 rule (whitepaper 4.10): the chain challenges
// every node from the previous block's hash; pRuntimes answer; a worker
// whose answers stop reaching the chain for an era is found unresponsive
// at its end (the other worker and the gatekeeper are not), the chain
// tells the gatekeepers, which then give it no new contract. A late
// answer, or one by another node, does not count.
func TestHeartbeatsAndQuarterRule(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	const eraLength = 40
	ch := newChainWith(t, func(g *api.GenesisState) {
		g.Params.EraLength = eraLength
		g.Params.HeartbeatsPerEra = 6
		g.Params.HeartbeatWindow = 15
	})
	gk := ch.engine(t, ch.gkDir)
	w1 := ch.engine(t, t.TempDir())
	w2 := ch.engine(t, t.TempDir())
	for _, e := range []*Engine{gk, w1, w2} {
		register(t, ch, e, bob)
	}
	bobS := ch.c.NewSigner(bob)
	height := func() int64 {
		h, err := ch.c.Height(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	report := func(era uint64) *api.EraReport {
		v, _, err := queryRaw(t, ch.c, api.QueryEraReport, binary.BigEndian.AppendUint64(nil, era))
		if err != nil || v == nil {
			return nil
		}
		r, err := api.DecodeEraReport(v)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Era 0: everyone answers (all registered during it: exempt).
	waitFor(t, 90*time.Second, "the end of era 0", func() bool {
		pushFast(t, ch, bobS, gk, w1, w2)
		return height() > eraLength
	})
	// Era 1: w2's heartbeats never reach the chain.
	var r *api.EraReport
	waitFor(t, 120*time.Second, "the report of era 1", func() bool {
		pushFast(t, ch, bobS, gk, w1)
		syncTo(t, ch, w2)
		r = report(1)
		return r != nil
	})
	verdict := map[crypto.PublicKey]api.NodeVerdict{}
	for _, v := range r.Nodes {
		verdict[v.Node] = v
	}
	if v := verdict[w2.Identity()]; !v.Unresponsive || v.Count != 0 || v.Exempt {
		t.Fatalf("silent worker: %+v (report %+v)", v, r)
	}
	if v := verdict[w1.Identity()]; v.Unresponsive || v.Count == 0 || v.Gatekeeper {
		t.Fatalf("answering worker: %+v", v)
	}
	if v := verdict[gk.Identity()]; v.Unresponsive || v.Count == 0 || !v.Gatekeeper {
		t.Fatalf("gatekeeper: %+v", v)
	}
	if 4*verdict[w2.Identity()].Count >= r.MaxWorker {
		t.Fatalf("max %d", r.MaxWorker)
	}
	// The gatekeeper learns the verdict; an upload for two replicas goes
	// to w1 alone (w2 stays silent: era 2 must not end with a verdict
	// for it first).
	relay(t, ch, bobS, gk, w1)
	gk.mu.Lock()
	out := gk.st.unassignable[w2.Identity()]
	gk.mu.Unlock()
	if !out {
		t.Fatal("the gatekeeper does not know w2 is unassignable")
	}
	aliceS := ch.c.NewSigner(alice)
	wasm := emitterWasm(t)
	if _, err := aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, wasm), Replicas: 2}); err != nil {
		t.Fatal(err)
	}
	upload := api.UploadID(alice.Public(), sha256.Sum256(wasm), 0)
	var rec *api.ContractRecord
	waitFor(t, 60*time.Second, "the deployment", func() bool {
		relay(t, ch, bobS, gk, w1)
		if v, _, _ := queryRaw(t, ch.c, api.QueryContractUpload, upload[:]); len(v) == 32 {
			cv, _, _ := queryRaw(t, ch.c, api.QueryContract, v)
			rec, _ = api.DecodeContractRecord(cv)
		}
		return rec != nil
	})
	if len(rec.Workers) != 1 || rec.Workers[0] != w1.Identity() {
		t.Fatalf("contract granted to %v, want w1 only", rec.Workers)
	}
	// w2's old answers, pushed now, are late: they do not count.
	before := verdict[w2.Identity()].Count
	relay(t, ch, bobS, w2)
	act := func(era uint64, n crypto.PublicKey) *api.Activity {
		v, _, err := queryRaw(t, ch.c, api.QueryActivity, append(binary.BigEndian.AppendUint64(nil, era), n[:]...))
		if err != nil {
			t.Fatal(err)
		}
		if v == nil {
			return &api.Activity{}
		}
		a, err := api.DecodeActivity(v)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if a := act(1, w2.Identity()); a.Answered != before || a.Challenged == 0 {
		t.Fatalf("late heartbeats counted: %+v", a)
	}
}
