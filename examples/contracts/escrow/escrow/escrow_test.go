package escrow

import (
	"encoding/hex"
	"maps"
	"strconv"
	"strings"
	"testing"

	"github.com/phalago/phala/contract"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/examples/contracts/ppha/ppha"
)

var (
	alice = contract.Address{0xa1}
	bob   = contract.Address{0xb0}
	carol = contract.Address{0xc0}

	pphaID   = contract.Address(crypto.MustKeyPairFromURI("//ppha").Public())
	escrowID = contract.Address(crypto.MustKeyPairFromURI("//escrow").Public())
)

func addr(a contract.Address) string { return "0x" + hex.EncodeToString(a[:]) }

// call is a contract call in flight (queued by a command, not yet run).
type call struct {
	from, to contract.Address
	payload  string
}

// router runs ppha and escrow natively and carries the calls one queues
// for the other, in order, as the chain's queue would: the receiver runs
// each as a command whose caller is the sender's identity.
type router struct {
	t         *testing.T
	ppha, esc *contracttest.NativeHarness
	deposited uint64
	// outputs of the calls delivered by the last step, in order.
	outputs []string
}

func newRouter(t *testing.T) *router {
	r := &router{t: t, ppha: contracttest.Native(ppha.Handlers()), esc: contracttest.Native(Handlers())}
	r.ppha.SetSelf(pphaID)
	r.esc.SetSelf(escrowID)
	r.ppha.KnownContracts(escrowID)
	r.esc.KnownContracts(pphaID)
	if _, err := r.esc.Init(alice, []byte(addr(pphaID))); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *router) harness(id contract.Address) *contracttest.NativeHarness {
	if id == pphaID {
		return r.ppha
	}
	return r.esc
}

// step runs a command on contract to, then every call it causes (and
// those they cause), first queued first run. A delivered call that
// fails fails the test: between these two contracts none should.
func (r *router) step(to, caller contract.Address, input string) (string, error) {
	r.t.Helper()
	r.outputs = nil
	h := r.harness(to)
	out, err := h.Command(caller, []byte(input))
	queue := r.queued(to, h)
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		h := r.harness(c.to)
		o, cerr := h.Command(c.from, []byte(c.payload))
		if cerr != nil {
			r.t.Fatalf("call %s → %x %q failed: %v", c.from, c.to[:4], c.payload, cerr)
		}
		r.outputs = append(r.outputs, string(o))
		queue = append(queue, r.queued(c.to, h)...)
	}
	r.check(input)
	return string(out), err
}

func (r *router) queued(from contract.Address, h *contracttest.NativeHarness) []call {
	var q []call
	for _, c := range h.Calls() {
		if c.To != pphaID && c.To != escrowID || !c.Sealed || c.Gas == 0 {
			r.t.Fatalf("call to %x (sealed %v, gas %d)", c.To[:4], c.Sealed, c.Gas)
		}
		q = append(q, call{from: from, to: c.To, payload: string(c.Payload)})
	}
	return q
}

func (r *router) must(to, caller contract.Address, input string) string {
	r.t.Helper()
	out, err := r.step(to, caller, input)
	if err != nil {
		r.t.Fatalf("%q: %v", input, err)
	}
	return out
}

func (r *router) balance(who contract.Address) uint64 {
	r.t.Helper()
	out, err := r.ppha.Query(who, []byte("balance"))
	if err != nil {
		r.t.Fatal(err)
	}
	v, _ := strconv.ParseUint(string(out), 10, 64)
	return v
}

// check: ppha's supply is what was deposited (nothing withdrawn here),
// and the balances (the escrow contract's included) add up to it.
func (r *router) check(step string) {
	r.t.Helper()
	out, err := r.ppha.Query(alice, []byte("supply"))
	if err != nil {
		r.t.Fatal(err)
	}
	sum := r.balance(alice) + r.balance(bob) + r.balance(carol) + r.balance(escrowID)
	if string(out) != strconv.FormatUint(r.deposited, 10) || sum != r.deposited {
		r.t.Fatalf("after %q: supply %s, deposited %d, balances %d", step, out, r.deposited, sum)
	}
}

func (r *router) deposit(from contract.Address, amount uint64) {
	r.t.Helper()
	if err := r.ppha.Deposit(from, amount); err != nil {
		r.t.Fatal(err)
	}
	r.deposited += amount
	r.check("deposit")
}

func (r *router) deal(who contract.Address, id string) (string, error) {
	out, err := r.esc.Query(who, []byte("deal "+id))
	return string(out), err
}

func (r *router) wantBalances(step string, want map[contract.Address]uint64) {
	r.t.Helper()
	for who, w := range want {
		if got := r.balance(who); got != w {
			r.t.Errorf("after %s: balance of %x is %d, want %d", step, who[:1], got, w)
		}
	}
}

// A deal funded (ppha send → escrow received), accepted (escrow → ppha
// transfer to the payee), another cancelled (refund to the payer), with
// the refusals and bounces escrow documents; ppha's supply invariant after
// every step.
func TestEscrowComposed(t *testing.T) {
	r := newRouter(t)
	r.deposit(alice, 1000)
	r.deposit(bob, 500)

	// Fund d1: alice → bob, 300.
	r.must(pphaID, alice, "send "+addr(escrowID)+" 300 deal d1 "+addr(bob))
	if len(r.outputs) != 1 || r.outputs[0] != "deal d1 funded" {
		t.Fatalf("funding d1: %q", r.outputs)
	}
	r.wantBalances("funding", map[contract.Address]uint64{alice: 700, bob: 500, escrowID: 300})
	for _, who := range []contract.Address{alice, bob} {
		if out, err := r.deal(who, "d1"); err != nil || !strings.Contains(out, "amount 300 state funded") || !strings.Contains(out, "payer "+addr(alice)+" payee "+addr(bob)) {
			t.Fatalf("deal d1 to %x: %q %v", who[:1], out, err)
		}
	}
	if _, err := r.deal(carol, "d1"); err == nil || !strings.Contains(err.Error(), "no such deal") {
		t.Fatalf("deal d1 told a third party: %v", err)
	}

	// Only the payee accepts; then the funds are the payee's.
	for _, tc := range []struct {
		who   contract.Address
		input string
		want  string
	}{
		{alice, "accept d1", "only the deal's payee"},
		{carol, "accept d1", "no such deal \"d1\" (or it is not yours)"},
		{bob, "accept d1 299", "holds 300, not 299"},
		{bob, "accept d9", "no such deal"},
		{bob, "cancel d1", "only the deal's payer"},
		{bob, "frobnicate d1", "unknown command"},
		{bob, "accept", "usage"},
		{alice, "cancel d1 300", "usage"},
	} {
		r.refused(tc.who, tc.input, tc.want)
	}
	if out := r.must(escrowID, bob, "accept d1 300"); out != "deal d1 accepted" || len(r.outputs) != 1 || r.outputs[0] != "ok" {
		t.Fatalf("accept: %q, calls answered %q", out, r.outputs)
	}
	r.wantBalances("accept", map[contract.Address]uint64{alice: 700, bob: 800, escrowID: 0})
	// A second accept and a cancel after acceptance are refused.
	r.refused(bob, "accept d1", "accepted already")
	r.refused(alice, "cancel d1", "accepted already")
	if out, _ := r.deal(bob, "d1"); !strings.Contains(out, "state accepted") {
		t.Fatalf("deal d1 after acceptance: %q", out)
	}

	// d2: funded, cancelled by the payer (refunded), then neither
	// accepted nor cancelled again.
	r.must(pphaID, alice, "send "+addr(escrowID)+" 100 deal d2 "+addr(carol)+" 100")
	r.wantBalances("funding d2", map[contract.Address]uint64{alice: 600, escrowID: 100})
	r.refused(carol, "cancel d2", "only the deal's payer")
	if out := r.must(escrowID, alice, "cancel d2"); out != "deal d2 cancelled" {
		t.Fatalf("cancel: %q", out)
	}
	r.wantBalances("cancel", map[contract.Address]uint64{alice: 700, carol: 0, escrowID: 0})
	r.refused(carol, "accept d2", "cancelled already")
	r.refused(alice, "cancel d2", "cancelled already")

	// Bounces: the deal is not funded and the amount goes back to the
	// sender, whatever was wrong with the memo.
	for _, tc := range []struct{ memo, why string }{
		{"deal d1 " + addr(carol), "exists already"},
		{"deal d2 " + addr(carol), "exists already"},
		{"hello", "memo must be"},
		{"deal d3", "memo must be"},
		{"deal d3 " + addr(carol) + " 60", "the memo names 60, 50 were sent"},
		{"deal d3 " + addr(bob), "the payee is the payer"},
		{"deal d/3 " + addr(carol), "letters, digits"},
		{"deal d3 0x12", "32 bytes of hex"},
		{"pay d3 " + addr(carol), "memo must be"},
	} {
		r.must(pphaID, bob, "send "+addr(escrowID)+" 50 "+tc.memo)
		if len(r.outputs) != 2 || !strings.HasPrefix(r.outputs[0], "bounced: ") || !strings.Contains(r.outputs[0], tc.why) || r.outputs[1] != "ok" {
			t.Errorf("memo %q: calls answered %q, want a bounce because %q", tc.memo, r.outputs, tc.why)
		}
		r.wantBalances("bounce", map[contract.Address]uint64{bob: 800, escrowID: 0})
	}
	if _, err := r.deal(bob, "d3"); err == nil {
		t.Fatal("a bounced deal exists")
	}

	// received from anyone but ppha: refused, no deal.
	r.refused(alice, "received "+addr(alice)+" 1000 deal d4 "+addr(bob), "only from the ppha contract")
	if _, err := r.deal(alice, "d4"); err == nil {
		t.Fatal("a forged received opened a deal")
	}
}

// refused runs a command on escrow that must fail with want, changing
// nothing and calling nobody.
func (r *router) refused(who contract.Address, input, want string) {
	r.t.Helper()
	before, pb := r.esc.Storage(), r.ppha.Storage()
	_, err := r.step(escrowID, who, input)
	if err == nil || !strings.Contains(err.Error(), want) {
		r.t.Errorf("%q by %x: error %v, want %q", input, who[:1], err, want)
	}
	eq := func(a, b []byte) bool { return string(a) == string(b) }
	if !maps.EqualFunc(before, r.esc.Storage(), eq) || !maps.EqualFunc(pb, r.ppha.Storage(), eq) || len(r.outputs) != 0 {
		r.t.Errorf("%q by %x: refused, yet changed something", input, who[:1])
	}
}

func TestEscrowInit(t *testing.T) {
	for _, in := range []string{"", "0x12", addr(pphaID)[2:], "ppha"} {
		if _, err := contracttest.Native(Handlers()).Init(alice, []byte(in)); err == nil {
			t.Errorf("init %q accepted", in)
		}
	}
}
