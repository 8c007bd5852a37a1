package ppha

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/contract"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
)

var (
	alice = contract.Address{0xa1}
	bob   = contract.Address{0xb0}
	carol = contract.Address{0xc0}
	dave  = contract.Address{0xd0}
	other = contract.Address{0xee} // a contract ppha may send to
	// the native harness's escrow account (the contract's own)
	nativeEscrow = contract.Address(api.EscrowAccount(crypto.PublicKey(contracttest.NativeSelf)))
)

// world is ppha with the chain's side of it: the escrow account's PHA
// balance, the payouts requested and not yet answered, and totals of
// deposits and paid payouts, checked against the contract after every
// step.
type world struct {
	t                 *testing.T
	h                 *contracttest.NativeHarness
	escrow            uint64 // the escrow account's balance on chain
	deposited, paidTo uint64
	pending           map[uint64]contracttest.OutPayout
	payees            map[contract.Address]uint64 // PHA paid to each account
	calls             []contracttest.OutCall      // the last command's
	payouts           []contracttest.OutPayout
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, h: contracttest.Native(Handlers()), pending: map[uint64]contracttest.OutPayout{}, payees: map[contract.Address]uint64{}}
	if _, err := w.h.Init(alice, nil); err != nil {
		t.Fatal(err)
	}
	return w
}

func addr(a contract.Address) string { return "0x" + fmt.Sprintf("%x", a[:]) }

func (w *world) query(who contract.Address, q string) string {
	w.t.Helper()
	out, err := w.h.Query(who, []byte(q))
	if err != nil {
		w.t.Fatalf("query %q: %v", q, err)
	}
	return string(out)
}

func (w *world) balance(who contract.Address) uint64 {
	w.t.Helper()
	v, err := strconv.ParseUint(w.query(who, "balance"), 10, 64)
	if err != nil {
		w.t.Fatal(err)
	}
	return v
}

// check: supply == deposits − paid == the escrow's balance == Σ balances
// + Σ pending withdrawals.
func (w *world) check(step string) {
	w.t.Helper()
	supply, err := strconv.ParseUint(w.query(dave, "supply"), 10, 64)
	if err != nil {
		w.t.Fatal(err)
	}
	// Every balance in the contract's storage, not only the accounts the
	// test knows.
	var sum uint64
	prefix := string(contract.Key([]byte("bal")))
	for k, v := range w.h.Storage() {
		if strings.HasPrefix(k, prefix) {
			sum += binary.BigEndian.Uint64(v)
		}
	}
	for _, p := range w.pending {
		sum += p.Amount
	}
	if supply != w.deposited-w.paidTo || supply != w.escrow || sum != supply {
		w.t.Fatalf("after %s: supply %d, deposits−paid %d, escrow %d, balances+pending %d", step, supply, w.deposited-w.paidTo, w.escrow, sum)
	}
}

func (w *world) deposit(from contract.Address, amount uint64) {
	w.t.Helper()
	if err := w.h.Deposit(from, amount); err != nil {
		w.t.Fatalf("deposit %d: %v", amount, err)
	}
	w.escrow += amount
	w.deposited += amount
	w.check(fmt.Sprintf("deposit %d", amount))
}

func (w *world) command(who contract.Address, input string) (string, error) {
	w.t.Helper()
	out, err := w.h.Command(who, []byte(input))
	// Queries reset the harness's record of the last call's messages.
	w.calls, w.payouts = w.h.Calls(), w.h.Payouts()
	for _, p := range w.payouts {
		if _, dup := w.pending[p.ID]; dup {
			w.t.Fatalf("payout id %d requested twice", p.ID)
		}
		w.pending[p.ID] = p
	}
	w.check(input)
	return string(out), err
}

func (w *world) must(who contract.Address, input string) string {
	w.t.Helper()
	out, err := w.command(who, input)
	if err != nil {
		w.t.Fatalf("%s: %v", input, err)
	}
	return out
}

// settle is the chain executing payout id: paid (from the escrow
// account) or refused, then telling the contract.
func (w *world) settle(id uint64, paid bool, reason string) {
	w.t.Helper()
	p, ok := w.pending[id]
	if !ok {
		w.t.Fatalf("no payout %d pending", id)
	}
	delete(w.pending, id)
	if paid {
		w.escrow -= p.Amount
		w.paidTo += p.Amount
		w.payees[p.To] += p.Amount
	}
	if err := w.h.PayoutResult(contract.Payout{ID: id, To: p.To, Amount: p.Amount, Paid: paid, Reason: reason}); err != nil {
		w.t.Fatalf("payout result %d: %v", id, err)
	}
	w.check(fmt.Sprintf("payout %d paid=%v", id, paid))
}

func (w *world) history(who contract.Address) []string {
	w.t.Helper()
	return strings.Split(strings.TrimSuffix(w.query(who, "history"), "\n"), "\n")
}

// Deposits, private transfers among several accounts, a send to a
// contract, withdrawals paid and refused: exact balances and histories,
// and the supply invariant after every step.
func TestPegged(t *testing.T) {
	w := newWorld(t)
	w.deposit(alice, 500)
	w.deposit(bob, 300)
	w.deposit(alice, 20)
	w.must(alice, "transfer "+addr(bob)+" 120")
	w.must(bob, "transfer "+addr(carol)+" 50")
	w.must(carol, "transfer "+addr(alice)+" 7")
	w.must(carol, "transfer "+addr(dave)+" 43")
	for who, want := range map[contract.Address]uint64{alice: 407, bob: 370, carol: 0, dave: 43} {
		if got := w.balance(who); got != want {
			t.Errorf("balance of %x: %d, want %d", who[0], got, want)
		}
	}

	// send: the balance moves to the contract, which is called (sealed,
	// with SendGas) with the sender and the memo.
	w.must(bob, "send "+addr(other)+" 70 deal 7 "+addr(carol))
	calls := w.calls
	if len(calls) != 1 || calls[0].To != other || !calls[0].Sealed || calls[0].Gas != SendGas ||
		string(calls[0].Payload) != "received "+addr(bob)+" 70 deal 7 "+addr(carol) {
		t.Fatalf("send's call: %+v", calls)
	}
	if w.balance(other) != 70 || w.balance(bob) != 300 {
		t.Fatalf("after send: contract %d, bob %d", w.balance(other), w.balance(bob))
	}

	// Withdraw to the linked account: paid.
	w.must(alice, "link "+addr(dave))
	if got := w.query(alice, "link"); got != addr(dave) {
		t.Fatalf("link query: %s", got)
	}
	if out := w.must(alice, "withdraw 100"); out != "withdrawal 1 pending" {
		t.Fatalf("withdraw: %q", out)
	}
	if p := w.pending[1]; p.To != dave || p.Amount != 100 {
		t.Fatalf("payout: %+v", p)
	}
	w.settle(1, true, "")
	// Withdraw refused (e.g. the escrow's balance, as the chain saw it):
	// credited back, and the id is not reused.
	w.must(bob, "withdraw 250")
	if w.balance(bob) != 50 {
		t.Fatalf("bob while his withdrawal is in flight: %d", w.balance(bob))
	}
	w.settle(2, false, "beyond the escrow's balance")
	if w.balance(bob) != 300 {
		t.Fatalf("bob after the refusal: %d", w.balance(bob))
	}
	// Unlinked: pays the caller; a result for an unknown id (a refund of
	// pRuntime's) and a repeated result change nothing.
	w.must(alice, "link "+addr(alice))
	w.must(alice, "withdraw 7")
	if p := w.pending[3]; p.To != alice || p.Amount != 7 {
		t.Fatalf("unlinked payout: %+v", p)
	}
	w.settle(3, true, "")
	before := w.h.Storage()
	for _, id := range []uint64{3, contract.RefundIDBase + 1, 99} {
		if err := w.h.PayoutResult(contract.Payout{ID: id, To: alice, Amount: 7, Paid: true}); err != nil {
			t.Fatal(err)
		}
	}
	if !maps.EqualFunc(before, w.h.Storage(), func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatal("a result for no pending withdrawal changed the state")
	}
	w.check("stray results")
	if w.payees[dave] != 100 || w.payees[alice] != 7 || w.payees[bob] != 0 {
		t.Fatalf("paid out: %v", w.payees)
	}

	wantAlice := []string{
		"deposit 500 from " + addr(alice),
		"deposit 20 from " + addr(alice),
		"transfer -120 to " + addr(bob),
		"transfer +7 from " + addr(carol),
		"link " + addr(dave),
		"withdraw -100 to " + addr(dave) + " id 1 pending",
		"withdraw 100 paid id 1",
		"link " + addr(alice),
		"withdraw -7 to " + addr(alice) + " id 3 pending",
		"withdraw 7 paid id 3",
	}
	if got := w.history(alice); strings.Join(got, "\n") != strings.Join(wantAlice, "\n") {
		t.Errorf("alice's history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantAlice, "\n"))
	}
	wantBob := []string{
		"deposit 300 from " + addr(bob),
		"transfer +120 from " + addr(alice),
		"transfer -50 to " + addr(carol),
		"send -70 to " + addr(other) + " memo deal 7 " + addr(carol),
		"withdraw -250 to " + addr(bob) + " id 2 pending",
		"withdraw +250 refused id 2: beyond the escrow's balance",
	}
	if got := w.history(bob); strings.Join(got, "\n") != strings.Join(wantBob, "\n") {
		t.Errorf("bob's history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantBob, "\n"))
	}
}

// Refused commands and queries change nothing and say why; a deposit
// that would overflow the supply is refused (pRuntime refunds it).
func TestPeggedRefusals(t *testing.T) {
	w := newWorld(t)
	w.h.KnownContracts(other)
	w.deposit(alice, 100)
	for _, tc := range []struct {
		who   contract.Address
		input string
		want  string
	}{
		{alice, "", "commands:"},
		{alice, "mint " + addr(alice) + " 5", "unknown command"},
		{alice, "received " + addr(bob) + " 5 x", "unknown command"},
		{alice, "transfer " + addr(bob) + " 101", "insufficient balance"},
		{bob, "transfer " + addr(alice) + " 1", "insufficient balance"},
		{alice, "transfer " + addr(bob) + " 0", "positive integer"},
		{alice, "transfer " + addr(bob) + " 007", "positive integer"},
		{alice, "transfer " + addr(bob) + " -1", "positive integer"},
		{alice, "transfer " + addr(bob) + " 18446744073709551616", "positive integer"},
		{alice, "transfer 0x12 1", "32 bytes of hex"},
		{alice, "transfer " + addr(bob)[2:] + " 1", "32 bytes of hex"},
		{alice, "transfer " + addr(alice) + " 1", "oneself"},
		{alice, "transfer " + addr(bob), "usage"},
		{alice, "send " + addr(other) + " 5", "usage"},
		{alice, "send " + addr(bob) + " 5 hello", "no such running contract"},
		{alice, "send " + addr(contracttest.NativeSelf) + " 5 hello", "use transfer"},
		{alice, "send " + addr(other) + " 101 hello", "insufficient balance"},
		{alice, "send " + addr(other) + " 5 " + strings.Repeat("m", MaxMemoBytes+1), "memo"},
		{alice, "send " + addr(other) + " 5 caf\u00e9", "printable ASCII"},
		{alice, "withdraw 101", "insufficient balance"},
		{alice, "withdraw", "usage"},
		{alice, "link 0x" + strings.Repeat("00", 32), "zero address"},
		{alice, "link " + addr(contracttest.NativeSelf), "is this contract"},
		{alice, "link " + addr(nativeEscrow), "escrow account"},
		{alice, "transfer " + addr(contracttest.NativeSelf) + " 1", "is this contract"},
		{alice, "transfer " + addr(nativeEscrow) + " 1", "escrow account"},
		{alice, "transfer 0x" + strings.Repeat("00", 32) + " 1", "zero address"},
		{alice, "link", "usage"},
	} {
		before := w.h.Storage()
		_, err := w.command(tc.who, tc.input)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one mentioning %q", tc.input, err, tc.want)
		}
		if !maps.EqualFunc(before, w.h.Storage(), func(a, b []byte) bool { return string(a) == string(b) }) || len(w.calls) != 0 || len(w.payouts) != 0 {
			t.Errorf("%q: refused, yet changed the state or sent something", tc.input)
		}
	}
	for _, q := range []string{"", "balance " + addr(bob), "history " + addr(bob), "balances", "supply 1"} {
		if _, err := w.h.Query(alice, []byte(q)); err == nil {
			t.Errorf("query %q answered", q)
		}
	}
	// Queries are one's own: bob's history shows nothing of alice's.
	if h := w.query(bob, "history"); h != "" {
		t.Errorf("bob's history: %q", h)
	}

	// Overflow: a deposit beyond what the supply can count is refused
	// and refunded to the depositor.
	if err := w.h.Deposit(bob, math.MaxUint64-50); err == nil {
		t.Fatal("an overflowing deposit was credited")
	} else if p := w.h.Payouts(); len(p) != 1 || p[0].To != bob || p[0].Amount != math.MaxUint64-50 || p[0].ID <= contract.RefundIDBase {
		t.Fatalf("refund of the overflowing deposit: %+v", p)
	}
	w.check("overflowing deposit")
	w.deposit(bob, math.MaxUint64-100)
	w.check("a deposit up to the limit")
	if err := w.h.Deposit(carol, 101); err == nil {
		t.Fatal("a deposit overflowing the supply was credited")
	}
	w.check("overflowing deposit")
}

// The history keeps the last HistoryLen entries, oldest first.
func TestPeggedHistoryBounded(t *testing.T) {
	w := newWorld(t)
	w.deposit(alice, 1000)
	for i := 1; i <= 150; i++ {
		w.must(alice, "transfer "+addr(bob)+" "+strconv.Itoa(i%5+1))
	}
	h := w.history(alice)
	if len(h) != HistoryLen {
		t.Fatalf("%d entries", len(h))
	}
	if h[0] != "transfer -2 to "+addr(bob) || h[HistoryLen-1] != "transfer -1 to "+addr(bob) {
		t.Fatalf("oldest %q, newest %q", h[0], h[HistoryLen-1])
	}
}

// FuzzPeggedCommand: any input from any caller either fails changing
// nothing, or keeps the invariant (commands never change the supply, the
// sum of balances plus withdrawals requested equals it).
func FuzzPeggedCommand(f *testing.F) {
	for _, s := range []string{"transfer " + addr(bob) + " 5", "withdraw 3", "send " + addr(other) + " 2 m", "link " + addr(dave),
		"transfer " + addr(bob) + " 18446744073709551615", "", "\x00", "withdraw 1 2"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		w := newWorld(t)
		w.deposit(alice, 10)
		w.deposit(bob, 10)
		before := w.h.Storage()
		if _, err := w.command(alice, string(input)); err != nil && !maps.EqualFunc(before, w.h.Storage(), func(a, b []byte) bool { return string(a) == string(b) }) {
			t.Fatalf("%q failed and changed the state", input)
		}
	})
}

// BenchmarkPeggedTransferNative: a private transfer's handler cost
// (history included), natively; the VM's figure needs pRuntime's interop
// imports (the module imports call and pay).
func BenchmarkPeggedTransferNative(b *testing.B) {
	h := contracttest.Native(Handlers())
	if err := h.Deposit(alice, 1<<60); err != nil {
		b.Fatal(err)
	}
	in := []byte("transfer " + addr(bob) + " 1")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := h.Command(alice, in); err != nil {
			b.Fatal(err)
		}
	}
}

// Pad makes every length a multiple of InputBlock, keeps the command
// (the contract reads it the same), and never shortens it.
func TestPad(t *testing.T) {
	w := newWorld(t)
	w.deposit(alice, 100)
	for _, in := range []string{"", "x", strings.Repeat("y", InputBlock), strings.Repeat("z", InputBlock+1)} {
		p := Pad(in)
		if len(p)%InputBlock != 0 || len(p) == 0 || !strings.HasPrefix(p, in) || strings.TrimRight(p, " ") != strings.TrimRight(in, " ") {
			t.Errorf("Pad(%d bytes) = %d bytes", len(in), len(p))
		}
	}
	short, long := Pad("transfer "+addr(bob)+" 1"), Pad("transfer "+addr(bob)+" 99")
	if len(short) != len(long) {
		t.Fatalf("transfers of 1 and 99 padded to %d and %d bytes", len(short), len(long))
	}
	w.must(alice, short)
	w.must(alice, long)
	if w.balance(bob) != 100 {
		t.Fatalf("bob holds %d after padded transfers of 1 and 99", w.balance(bob))
	}
}
