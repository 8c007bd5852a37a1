package app

import (
	"encoding/binary"
	"math/big"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

func (h *harness) activity(era uint64, n crypto.PublicKey) api.Activity {
	v := h.query(api.QueryActivity, append(binary.BigEndian.AppendUint64(nil, era), n[:]...), false).Value
	if v == nil {
		return api.Activity{}
	}
	a, err := api.DecodeActivity(v)
	if err != nil {
		h.t.Fatal(err)
	}
	return *a
}

// challenges returns the nodes the block's Challenge names.
func challenged(t *testing.T, res *abci.ResponseFinalizeBlock, h *harness) map[crypto.PublicKey]bool {
	t.Helper()
	bm, err := h.app.store.Messages(h.height)
	if err != nil {
		t.Fatal(err)
	}
	out := map[crypto.PublicKey]bool{}
	for _, m := range bm.Messages {
		if m.Topic != api.TopicChallenge {
			continue
		}
		c, err := api.DecodeChallenge(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range c.Nodes {
			out[n] = true
		}
	}
	return out
}

// A heartbeat counts only for the node that signs it, for its own
// outstanding challenge, with that block's seed, within the window, once.
// At the era's end the 1/4 rule judges the nodes that were registered for
// the whole era.
func TestHeartbeatRules(t *testing.T) {
	g := genesis()
	g.Params.EraLength = 12
	g.Params.HeartbeatsPerEra = 12 // every node, every block
	g.Params.HeartbeatWindow = 2
	h := newHarness(t, g)
	h.block()
	w1, w2 := newWorker(t), newWorker(t)
	mustOK(t, h.block(h.tx(bob, 0, h.register(h.cite(w1.info))), h.tx(bob, 1, h.register(h.cite(w2.info)))))
	seqs := map[crypto.PublicKey]uint64{}
	nonce := uint64(2)
	beat := func(w *worker, height int64, seed [32]byte) []byte {
		hb := &api.Heartbeat{Height: height, Seed: seed}
		m := api.SignMessage(chainID, api.Message{Origin: api.KeyOrigin(api.OriginWorker, w.identity.Public()), Topic: api.TopicHeartbeat, Seq: seqs[w.identity.Public()], Payload: hb.Encode()}, w.identity)
		seqs[w.identity.Public()]++
		nonce++
		return h.tx(bob, nonce-1, &api.PushMessage{Message: m})
	}
	res := h.block()
	c := h.height
	if got := challenged(t, res, h); !got[w1.identity.Public()] || !got[w2.identity.Public()] {
		t.Fatalf("block %d challenges %v", c, got)
	}
	seed := blockHash(c - 1)
	// w1 answers in time; w2 answers with a wrong seed.
	mustOK(t, h.block(beat(w1, c, seed), beat(w2, c, [32]byte{9})))
	if a := h.activity(0, w1.identity.Public()); a.Answered != 1 {
		t.Fatalf("w1's answer: %+v", a)
	}
	if a := h.activity(0, w2.identity.Public()); a.Answered != 0 {
		t.Fatalf("w2's answer with a wrong seed counted: %+v", a)
	}
	// Block c+2, the window's last: w2 answers block c with the right
	// seed (counts); w1 answers block c again (answered already: no).
	mustOK(t, h.block(beat(w2, c, seed), beat(w1, c, seed)))
	if a := h.activity(0, w2.identity.Public()); a.Answered != 1 {
		t.Fatalf("w2's answer in the window: %+v", a)
	}
	if a := h.activity(0, w1.identity.Public()); a.Answered != 1 {
		t.Fatalf("w1's repeated answer counted: %+v", a)
	}
	// w1's key cannot answer for w2: a message in w2's name signed by w1
	// is refused at the door, and w2's count does not move.
	forged := api.SignMessage(chainID, api.Message{Origin: api.KeyOrigin(api.OriginWorker, w2.identity.Public()), Topic: api.TopicHeartbeat,
		Seq: seqs[w2.identity.Public()], Payload: (&api.Heartbeat{Height: h.height, Seed: blockHash(h.height - 1)}).Encode()}, w1.identity)
	if res := h.check(h.tx(bob, nonce, &api.PushMessage{Message: forged})); res.Code == 0 {
		t.Fatal("a heartbeat in w2's name signed by w1 was admitted")
	}
	if a := h.activity(0, w2.identity.Public()); a.Answered != 1 {
		t.Fatalf("w2's count moved: %+v", a)
	}
	// Alice backs both workers with 100 PHA each.
	mustOK(t, h.block(h.tx(alice, 0, &api.StakeBond{Amount: 200 * api.Unit})))
	mustOK(t, h.block(h.tx(alice, 1, &api.StakeAllocate{Node: w1.identity.Public(), Amount: 100 * api.Unit}),
		h.tx(alice, 2, &api.StakeAllocate{Node: w2.identity.Public(), Amount: 100 * api.Unit})))
	issuance := func() uint64 {
		v, err := api.DecodeIssuance(h.query(api.QueryIssuance, nil, false).Value)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// Until the era's end, w1 answers every challenge, w2 none. At the
	// era's first block w1's pherry renews its registration (as pherry
	// does every era, rotating the EcdhKey): a renewal without a lapse is
	// judged on the era, not exempt as a newcomer.
	for h.height < int64(2*g.Params.EraLength)-1 {
		cur := h.height
		txs := [][]byte{beat(w1, cur, blockHash(cur-1))}
		if cur == int64(g.Params.EraLength) {
			nonce++
			txs = append(txs, h.tx(bob, nonce-1, h.register(h.cite(w1.info))))
		}
		mustOK(t, h.block(txs...))
		if cur == int64(g.Params.EraLength) {
			rec := h.worker(w1.identity.Public())
			if rec.RegisteredAt != cur+1 || rec.ActiveSince >= rec.RegisteredAt {
				t.Fatalf("w1 renewed at %d: registered at %d, active since %d", cur+1, rec.RegisteredAt, rec.ActiveSince)
			}
		}
	}
	aliceBefore, issuedBefore := h.account(alice.Public()).Balance, issuance()
	h.block() // the era's last block
	v := h.query(api.QueryEraReport, binary.BigEndian.AppendUint64(nil, 1), false).Value
	r, err := api.DecodeEraReport(v)
	if err != nil {
		t.Fatal(err)
	}
	got := map[crypto.PublicKey]api.NodeVerdict{}
	for _, n := range r.Nodes {
		got[n.Node] = n
	}
	v1, v2 := got[w1.identity.Public()], got[w2.identity.Public()]
	if v1.Unresponsive || v1.Count == 0 || !v2.Unresponsive || v2.Count != 0 || r.MaxWorker != v1.Count {
		t.Fatalf("era 1: %+v", r)
	}
	// w2 loses offline_slash_ppm of its stake and earns nothing; w1
	// earns the workers' share of the era's inflation, paid to Alice, its
	// only staker; issuance moves by exactly the reward minted less the
	// slash burned.
	wantSlash := 100 * api.Unit * g.Params.OfflineSlashPPM / 1_000_000
	if v2.Slashed != wantSlash || v2.Reward != 0 {
		t.Fatalf("w2 slashed %d (want %d), rewarded %d", v2.Slashed, wantSlash, v2.Reward)
	}
	// The budget is taken of the issuance after the era's slashes.
	var b big.Int
	b.Mul(new(big.Int).SetUint64(issuedBefore-v2.Slashed), new(big.Int).SetUint64(g.Params.EraInflationPPB))
	b.Quo(&b, big.NewInt(1_000_000_000))
	if r.Budget != b.Uint64() || v1.Reward == 0 {
		t.Fatalf("budget %d (want %d), w1 reward %d", r.Budget, b.Uint64(), v1.Reward)
	}
	if workers := r.Budget - r.Budget*g.Params.GatekeeperRewardPPM/1_000_000; v1.Reward != workers {
		t.Fatalf("w1, the only responsive worker, got %d of the workers' %d", v1.Reward, workers)
	}
	if got := h.account(alice.Public()).Balance; got != aliceBefore+v1.Reward {
		t.Fatalf("alice has %d, had %d, reward %d", got, aliceBefore, v1.Reward)
	}
	rl, err := api.DecodeRewardLog(h.query(api.QueryRewards, alice.Public().Bytes(), false).Value)
	if err != nil || rl.Total != v1.Reward || len(rl.Entries) != 1 || rl.Entries[0].Node != w1.identity.Public() || rl.Entries[0].Height != h.height {
		t.Fatalf("alice's reward log: %+v %v", rl, err)
	}
	if got := issuance(); got != issuedBefore+v1.Reward-v2.Slashed {
		t.Fatalf("issuance %d, was %d, +%d -%d", got, issuedBefore, v1.Reward, v2.Slashed)
	}
	var ns api.NodeStake
	if v := h.query(api.QueryStakeNode, w2.identity.Public().Bytes(), false).Value; v != nil {
		n, err := api.DecodeNodeStake(v)
		if err != nil {
			t.Fatal(err)
		}
		ns = *n
	}
	if ns.Total != 100*api.Unit-wantSlash {
		t.Fatalf("w2's stake %d after the slash", ns.Total)
	}
	// Era 0 judged nobody: both registered during it.
	r0, err := api.DecodeEraReport(h.query(api.QueryEraReport, binary.BigEndian.AppendUint64(nil, 0), false).Value)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range r0.Nodes {
		if !n.Exempt || n.Unresponsive {
			t.Fatalf("era 0: %+v", n)
		}
	}
}

// A heartbeat within the window counts; one after it does not.
func TestHeartbeatWindow(t *testing.T) {
	g := genesis()
	g.Params.EraLength = 100
	g.Params.HeartbeatsPerEra = 1 // rarely: find a block that challenges w
	g.Params.HeartbeatWindow = 3
	h := newHarness(t, g)
	h.block()
	w := newWorker(t)
	mustOK(t, h.block(h.tx(bob, 0, h.register(h.cite(w.info)))))
	var c int64
	for c == 0 && h.height < 2000 {
		if challenged(t, h.block(), h)[w.identity.Public()] {
			c = h.height
		}
	}
	if c == 0 {
		t.Fatal("never challenged")
	}
	beat := func(seq uint64) []byte {
		hb := &api.Heartbeat{Height: c, Seed: blockHash(c - 1)}
		m := api.SignMessage(chainID, api.Message{Origin: api.KeyOrigin(api.OriginWorker, w.identity.Public()), Topic: api.TopicHeartbeat, Seq: seq, Payload: hb.Encode()}, w.identity)
		return h.tx(bob, h.nonce(bob), &api.PushMessage{Message: m})
	}
	for h.height < c+int64(g.Params.HeartbeatWindow) {
		h.block()
	}
	// The block at c+window+1 is past the window.
	mustOK(t, h.block(beat(0)))
	if a := h.activity(api.GenesisEras(g.Params.EraLength).EraOf(c), w.identity.Public()); a.Answered != 0 || a.Challenged == 0 {
		t.Fatalf("late heartbeat counted: %+v", a)
	}
}
