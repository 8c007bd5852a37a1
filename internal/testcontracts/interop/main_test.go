package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/contract"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
)

var (
	alice = contract.Address{2}
	other = contract.Address(crypto.MustKeyPairFromURI("//other").Public())
)

// The interoperability ABI behaves the same natively and in pRuntime's VM
// (the "self", "escrow", "call", "pay" imports and handle_event).
func TestInteropNative(t *testing.T) { exercise(t, contracttest.Native(contract.Registered())) }

func TestInteropVM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the contract")
	}
	exercise(t, contracttest.NewVM(t, contracttest.Build(t, "."), contracttest.VMOptions{}))
}

func exercise(t *testing.T, h contracttest.Harness) {
	t.Helper()
	must := func(out []byte, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	// Self and escrow.
	self := contracttest.NativeSelf
	esc := contract.Address(api.EscrowAccount(crypto.PublicKey(self)))
	if got, want := must(h.Query(alice, []byte("self"))), hexOf(self)+" "+hexOf(esc); got != want {
		t.Fatalf("self: %s, want %s", got, want)
	}
	// Calls, plain and sealed, in order, with their gas.
	must(h.Command(alice, []byte(fmt.Sprintf("call %s 5000000 0 hello there", hexOf(other)))))
	if c := h.Calls(); len(c) != 1 || c[0].To != other || c[0].Gas != 5_000_000 || c[0].Sealed || string(c[0].Payload) != "hello there" {
		t.Fatalf("plain call: %+v", c)
	}
	must(h.Command(alice, []byte(fmt.Sprintf("call %s 7000 1 secret", hexOf(other)))))
	if c := h.Calls(); len(c) != 1 || !c[0].Sealed || string(c[0].Payload) != "secret" || c[0].Gas != 7000 || c[0].To != other {
		t.Fatalf("sealed call: %+v", c)
	}
	must(h.Command(alice, []byte(fmt.Sprintf("calls %s 3 1000", hexOf(other)))))
	if c := h.Calls(); len(c) != 3 || string(c[0].Payload) != "note 0" || string(c[2].Payload) != "note 2" {
		t.Fatalf("three calls: %+v", c)
	}
	// A command that fails sends nothing; an unknown receiver is refused.
	h.KnownContracts(other)
	if _, err := h.Command(alice, []byte(fmt.Sprintf("call %s 1000 0 x", hexOf(alice)))); !strings.Contains(fmt.Sprint(err), contract.ErrUnknownContract.Error()) {
		t.Fatalf("call to an unknown contract: %v", err)
	}
	if len(h.Calls()) != 0 {
		t.Fatalf("a failed command's calls: %+v", h.Calls())
	}
	// Calls from queries are refused.
	if _, err := h.Query(alice, []byte("call")); err == nil || !strings.Contains(err.Error(), "read-only") && !strings.Contains(err.Error(), "queries cannot write") {
		t.Fatalf("call from a query: %v", err)
	}
	// Payouts.
	must(h.Command(alice, []byte(fmt.Sprintf("pay %s 250 7", hexOf(alice)))))
	if p := h.Payouts(); len(p) != 1 || p[0] != (contracttest.OutPayout{To: alice, Amount: 250, ID: 7}) {
		t.Fatalf("payout: %+v", p)
	}
	for _, bad := range []string{"pay %s 0 8", "pay %s 5 9223372036854775808"} {
		if _, err := h.Command(alice, []byte(fmt.Sprintf(bad, hexOf(alice)))); err == nil || len(h.Payouts()) != 0 {
			t.Fatalf("%s: %v %+v", bad, err, h.Payouts())
		}
	}
	// Deposits: credited; a failing handler's deposit is refunded.
	if err := h.Deposit(alice, 40); err != nil {
		t.Fatal(err)
	}
	if len(h.Payouts()) != 0 {
		t.Fatalf("a taken deposit refunded: %+v", h.Payouts())
	}
	if err := h.Deposit(alice, 13); err == nil || !strings.Contains(err.Error(), "unlucky") {
		t.Fatalf("failing deposit: %v", err)
	}
	if p := h.Payouts(); len(p) != 1 || p[0].To != alice || p[0].Amount != 13 || p[0].ID < contract.RefundIDBase {
		t.Fatalf("refund: %+v", p)
	}
	if got := must(h.Query(alice, []byte("balance "+hexOf(alice)))); got != "40" {
		t.Fatalf("balance %s", got)
	}
	if err := h.PayoutResult(contract.Payout{ID: 7, To: alice, Amount: 250, Reason: "escrow balance too low"}); err != nil {
		t.Fatal(err)
	}
	log := must(h.Query(alice, []byte("log")))
	for _, want := range []string{"deposit " + hexOf(alice) + " 40\n", "payout 7 false escrow balance too low\n"} {
		if !strings.Contains(log, want) {
			t.Fatalf("log %q lacks %q", log, want)
		}
	}
	if strings.Contains(log, " 13\n") {
		t.Fatalf("the refused deposit is logged: %q", log)
	}
}
