package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/contract"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/relayer"
)

// interopHarness is a chain with a gatekeeper, workers, and contracts of
// the interop test contract (internal/testcontracts/interop) alice
// deployed.
type interopHarness struct {
	ch     *chain
	gk     *Engine
	bobS   *client.Signer
	aliceS *client.Signer
	code   []byte
	nonce  uint64
}

func hexAddr(k crypto.PublicKey) string { return "0x" + hex.EncodeToString(k[:]) }

// deploy uploads the contract (alice's upload seq) asking replicas, and
// waits until it runs on want workers, each of them running it.
func (h *interopHarness) deploy(t *testing.T, seq uint64, replicas uint8, want int, es ...*Engine) *api.ContractRecord {
	t.Helper()
	if _, err := h.aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, h.code), Replicas: replicas, CheckpointInterval: api.MaxCheckpointInterval}); err != nil {
		t.Fatal(err)
	}
	upload := api.UploadID(alice.Public(), sha256.Sum256(h.code), seq)
	var rec *api.ContractRecord
	waitFor(t, 120*time.Second, fmt.Sprintf("contract %d running on %d workers", seq, want), func() bool {
		relay(t, h.ch, h.bobS, append([]*Engine{h.gk}, es...)...)
		v, _, _ := queryRaw(t, h.ch.c, api.QueryContractUpload, upload[:])
		if len(v) != 32 {
			return false
		}
		cv, _, _ := queryRaw(t, h.ch.c, api.QueryContract, v)
		if rec, _ = api.DecodeContractRecord(cv); rec == nil || rec.Status != api.ContractRunning || len(rec.Workers) != want {
			return false
		}
		for _, e := range es {
			if _, ok := e.ContractRoots()[rec.Identity]; slices.Contains(rec.Workers, e.Identity()) && !ok {
				return false
			}
		}
		return true
	})
	return rec
}

// command sends alice's sealed command input to contract rec.
func (h *interopHarness) command(t *testing.T, rec *api.ContractRecord, input string) int64 {
	t.Helper()
	h.nonce++
	chn, err := channel.New(alice, rec.Ecdh, api.ChannelPurposeCommand)
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.aliceS.Submit(ctx(t), &api.ContractCommand{Contract: rec.Identity, Nonce: h.nonce, GasLimit: testGas,
		Sealed: chn.Seal(api.Pad([]byte(input)), api.CommandAD(rec.Identity, alice.Public(), h.nonce))})
	if err != nil {
		t.Fatal(err)
	}
	return res.Height
}

// query asks worker e for contract rec's answer to input.
func query(t *testing.T, e *Engine, rec *api.ContractRecord, input string) string {
	t.Helper()
	p, err := client.NewQuery(bob, rec.Identity, rec.Ecdh, e.Identity(), []byte(input), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.Query(ctx(t), p.Query)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := p.Open(resp)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// chainMessages returns the queue's messages of origin o and topic.
func chainMessages(t *testing.T, ch *chain, o api.Origin, topic string) (ms []api.Message, heights []int64) {
	t.Helper()
	top, err := ch.c.Height(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	bb, err := (&relayer.Fetcher{C: ch.c}).Blocks(ctx(t), 1, top)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bb.Blocks {
		for _, m := range b.Messages {
			if m.Origin == o && m.Topic == topic {
				ms, heights = append(ms, m), append(heights, b.Height)
			}
		}
	}
	return ms, heights
}

// Contract A calls contract B (docs/interop.md): B runs each call once,
// as a command whose caller is A, in the chain's order, on every replica
// of B, however many replicas of A push the message (the queue keeps the
// first); a sealed call opens only inside B's workers (its plaintext is in
// no block); a restarted worker keeps following (the deployments' ECDH
// keys in its sealed checkpoint). Deposits to B's escrow reach its
// handler (a failing one is refunded by a payout), B's payout is executed
// and its result delivered; a worker granted B later recovers it from
// the chain, replaying the calls, deposits and payout results, to the
// same state.
func TestContractCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	h := &interopHarness{ch: newChain(t)}
	h.gk = h.ch.engine(t, h.ch.gkDir)
	h.bobS, h.aliceS = h.ch.c.NewSigner(bob), h.ch.c.NewSigner(alice)
	h.code = contracttest.Build(t, filepath.Join("..", "..", "testcontracts", "interop"))
	w1, w2 := h.ch.engine(t, t.TempDir()), h.ch.engine(t, t.TempDir())
	for _, e := range []*Engine{h.gk, w1, w2} {
		register(t, h.ch, e, bob)
	}
	h.bobS = h.ch.c.NewSigner(bob)
	a := h.deploy(t, 0, 2, 2, w1, w2)
	b := h.deploy(t, 1, 3, 2, w1, w2) // a third replica comes later
	all := func() []*Engine { return []*Engine{h.gk, w1, w2} }

	// The first call: both replicas of A emit it with the same sequence;
	// the queue keeps the first copy and refuses the second.
	h.command(t, a, fmt.Sprintf("call %s 5000000 0 hello", hexAddr(b.Identity)))
	oa := api.KeyOrigin(api.OriginContract, a.Identity)
	callOf := func(e *Engine) *api.SignedMessage {
		for _, m := range e.Egress() {
			if m.Message.Origin == oa && m.Message.Topic == api.TopicContractCall {
				return &m
			}
		}
		return nil
	}
	waitFor(t, 60*time.Second, "both replicas of A emitting the call", func() bool {
		syncTo(t, h.ch, all()...)
		return callOf(w1) != nil && callOf(w2) != nil
	})
	m1, m2 := callOf(w1), callOf(w2)
	if m1.Message.Seq != m2.Message.Seq {
		t.Fatalf("the replicas numbered the call %d and %d", m1.Message.Seq, m2.Message.Seq)
	}
	if _, err := h.bobS.Submit(ctx(t), &api.PushMessage{Message: *m1}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.bobS.Submit(ctx(t), &api.PushMessage{Message: *m2}); err == nil || !strings.Contains(err.Error(), api.ErrAlreadyAccepted.Error()) {
		t.Fatalf("the second replica's copy of the call: %v", err)
	}
	h.command(t, a, fmt.Sprintf("calls %s 3 1000000", hexAddr(b.Identity)))
	h.command(t, a, fmt.Sprintf("call %s 5000000 1 secret", hexAddr(b.Identity)))
	h.command(t, a, fmt.Sprintf("call %s 5000000 0 %s", hexAddr(b.Identity), "x"))
	caller := hexAddr(a.Identity) + ":"
	want := caller + "hello\n" + caller + "note 0\n" + caller + "note 1\n" + caller + "note 2\n" + caller + "secret\n" + caller + "x\n"
	waitFor(t, 120*time.Second, "B running the calls on both workers", func() bool {
		relay(t, h.ch, h.bobS, all()...)
		return query(t, w1, b, "log") == want && query(t, w2, b, "log") == want
	})
	calls, callHeights := chainMessages(t, h.ch, oa, api.TopicContractCall)
	if len(calls) != 6 {
		t.Fatalf("%d calls on chain, want 6", len(calls))
	}
	sealed := 0
	for _, m := range calls {
		c, err := api.DecodeContractCall(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if c.Sealed() {
			sealed++
			if bytes.Contains(c.Payload, []byte("secret")) {
				t.Fatal("the sealed call's plaintext is on chain")
			}
		}
	}
	if sealed != 1 {
		t.Fatalf("%d sealed calls on chain", sealed)
	}
	// A restart from the sealed checkpoint keeps the deployments' keys.
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	w2 = h.ch.engine(t, w2.cfg.DataDir)

	// Deposits: one taken, one refused by the handler and refunded.
	escrow := api.EscrowAccount(b.Identity)
	if _, err := h.bobS.Submit(ctx(t), &api.Transfer{To: escrow, Amount: 40}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.bobS.Submit(ctx(t), &api.Transfer{To: escrow, Amount: 13}); err != nil {
		t.Fatal(err)
	}
	h.command(t, b, fmt.Sprintf("pay %s 5 1", hexAddr(alice.Public())))
	ob := api.KeyOrigin(api.OriginContract, b.Identity)
	var refund *api.PayoutResult
	waitFor(t, 120*time.Second, "the deposit credited, the failed one refunded, the payout's result delivered", func() bool {
		relay(t, h.ch, h.bobS, all()...)
		log := query(t, w1, b, "log")
		if !strings.Contains(log, "deposit "+hexAddr(bob.Public())+" 40\n") || !strings.Contains(log, "payout 1 true \n") {
			return false
		}
		ps, _ := chainMessages(t, h.ch, ob, api.TopicPayout)
		for _, m := range ps {
			p, err := api.DecodePayoutRequest(m.Payload)
			if err != nil || p.ID < contract.RefundIDBase {
				continue
			}
			if p.To != bob.Public() || p.Amount != 13 {
				t.Fatalf("refund %+v", p)
			}
			v, _, _ := queryRaw(t, h.ch.c, api.QueryContractPayout, binary.BigEndian.AppendUint64(b.Identity[:], p.ID))
			if v != nil {
				if refund, _ = api.DecodePayoutResult(v); refund == nil {
					t.Fatal("payout result does not decode")
				}
			}
		}
		return refund != nil && query(t, w2, b, "log") == log
	})
	if !refund.Paid {
		t.Fatalf("refund not paid: %+v", refund)
	}
	if got := query(t, w2, b, "balance "+hexAddr(bob.Public())); got != "40" {
		t.Fatalf("bob's balance in B: %s", got)
	}
	if acc, err := h.ch.c.Account(ctx(t), escrow); err != nil || acc.Balance != 35 {
		t.Fatalf("escrow balance %d (%v), want 40 deposited - 5 paid", acc.Balance, err)
	}
	if n := strings.Count(query(t, w1, b, "log"), "payout 1 "); n != 1 {
		t.Fatalf("payout result delivered %d times", n)
	}

	// A third worker is granted B and recovers it from the chain,
	// replaying the calls (unless a checkpoint covers them).
	w3 := h.ch.engine(t, t.TempDir())
	register(t, h.ch, w3, bob)
	h.bobS = h.ch.c.NewSigner(bob)
	waitFor(t, 120*time.Second, "the third worker recovering B", func() bool {
		relay(t, h.ch, h.bobS, h.gk, w1, w2, w3)
		return len(w3.Info().Recovering) == 1
	})
	need := w3.Info().Recovering[0]
	if need.CheckpointHeight < callHeights[0] && !slices.Contains(need.Heights, callHeights[0]) {
		t.Fatalf("the recovery does not replay the first call's block %d: %v", callHeights[0], need.Heights)
	}
	syncTo(t, h.ch, w1, w2, w3)
	if n, err := recoverAll(t, h.ch, w3, nil); err != nil || n != 1 {
		t.Fatalf("recovery: %d, %v", n, err)
	}
	if r1, r3 := w1.ContractRoots()[b.Identity], w3.ContractRoots()[b.Identity]; r1 != r3 {
		t.Fatalf("recovered root %x, the replicas' %x", r3[:4], r1[:4])
	}
	if got, want := query(t, w3, b, "log"), query(t, w1, b, "log"); got != want {
		t.Fatalf("recovered log %q, the replicas' %q", got, want)
	}
	// After the recovery, a new call reaches all three.
	h.command(t, a, fmt.Sprintf("call %s 5000000 1 after", hexAddr(b.Identity)))
	waitFor(t, 120*time.Second, "the new call on the three replicas of B", func() bool {
		relay(t, h.ch, h.bobS, h.gk, w1, w2, w3)
		for _, e := range []*Engine{w1, w2, w3} {
			if !strings.HasSuffix(query(t, e, b, "log"), caller+"after\n") {
				return false
			}
		}
		return true
	})
}

// The receiving side's rule for a call message is the chain's
// (contracts.OnCall): from a contract, well formed, to a deployed
// contract that did not fail, with gas at most max_command_gas.
func TestAcceptedCallRule(t *testing.T) {
	e := &Engine{st: newState()}
	e.st.params.MaxCommandGas = 1000
	recv, failed := crypto.PublicKey{1}, crypto.PublicKey{2}
	e.st.deployed[recv] = &deployment{deployedAt: 3}
	e.st.deployed[failed] = &deployment{deployedAt: 3, reported: true, failed: true, failedAt: 4}
	sender := api.KeyOrigin(api.OriginContract, crypto.PublicKey{9})
	call := func(to crypto.PublicKey, gas uint64) []byte {
		return (&api.ContractCall{To: to, Gas: gas, Payload: []byte("x")}).Encode()
	}
	for _, tc := range []struct {
		name    string
		origin  api.Origin
		payload []byte
		ok      bool
	}{
		{"accepted", sender, call(recv, 1000), true},
		{"from an account", api.KeyOrigin(api.OriginAccount, alice.Public()), call(recv, 10), false},
		{"from a module", api.ModuleOrigin("contracts"), call(recv, 10), false},
		{"malformed", sender, append(call(recv, 10), 0), false},
		{"no gas", sender, call(recv, 0), false},
		{"unknown receiver", sender, call(crypto.PublicKey{3}, 10), false},
		{"failed receiver", sender, call(failed, 10), false},
		{"over max_command_gas", sender, call(recv, 1001), false},
	} {
		if _, ok := e.acceptedCall(&api.Message{Origin: tc.origin, Topic: api.TopicContractCall, Payload: tc.payload}); ok != tc.ok {
			t.Errorf("%s: accepted %v", tc.name, ok)
		}
	}
}

// The sending side's rule (engine.peer) is by heights: a receiver takes
// calls made in blocks after its deployment's and, if it failed to
// start, up to the block of its failure report; and needs a known ECDH
// key. Gas above max_command_gas is refused, as the chain would.
func TestPeerByHeights(t *testing.T) {
	e := &Engine{st: newState()}
	e.st.params.MaxCommandGas = 1000
	key := crypto.MustKeyPairFromURI("//peer").Public()
	ok, failed, nokey := crypto.PublicKey{1}, crypto.PublicKey{2}, crypto.PublicKey{3}
	e.st.deployed[ok] = &deployment{deployedAt: 10, ecdh: key}
	e.st.deployed[failed] = &deployment{deployedAt: 10, ecdh: key, failed: true, failedAt: 12}
	e.st.deployed[nokey] = &deployment{deployedAt: 10}
	for _, tc := range []struct {
		to     crypto.PublicKey
		height int64
		want   bool
	}{
		{ok, 10, false}, {ok, 11, true}, {ok, 1000, true},
		{failed, 11, true}, {failed, 12, true}, {failed, 13, false},
		{nokey, 11, false}, {crypto.PublicKey{4}, 11, false},
	} {
		k, got := e.peer(tc.to, 1000, tc.height)
		if got != tc.want || (got && k != key) {
			t.Errorf("peer %x at %d: %v %x, want %v", tc.to[:1], tc.height, got, k[:4], tc.want)
		}
	}
	if _, got := e.peer(ok, 1001, 11); got {
		t.Error("a call forwarding more than max_command_gas taken")
	}
}
