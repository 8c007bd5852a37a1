package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/phalago/phala/contract"
	"github.com/phalago/phala/contract/contracttest"
)

var (
	owner = contract.Address{1}
	alice = contract.Address{2}
	bob   = contract.Address{3}
)

func addr(a contract.Address) string { return "0x" + hex.EncodeToString(a[:]) }

func req(op string, to contract.Address, amount uint64) []byte {
	return []byte(fmt.Sprintf("%s %s %d", op, addr(to), amount))
}

// TestToken runs natively (microseconds); the VM run of the same contract
// is in examples/contracts.
func TestToken(t *testing.T) { Exercise(t, contracttest.Native(contract.Registered())) }

// Exercise is the token's behaviour, for any harness.
func Exercise(t *testing.T, h contracttest.Harness) {
	t.Helper()
	must := func(out []byte, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	must(h.Init(owner, nil))
	must(h.Command(owner, req("mint", alice, 100)))
	must(h.Command(alice, req("transfer", bob, 30)))
	for _, tc := range []struct {
		who  contract.Address
		want string
	}{{alice, "70"}, {bob, "30"}, {owner, "0"}} {
		if got := must(h.Query(tc.who, []byte("balance"))); got != tc.want {
			t.Errorf("balance of %x: %s, want %s", tc.who[0], got, tc.want)
		}
	}
	for _, tc := range []struct {
		name   string
		caller contract.Address
		input  []byte
		query  bool
	}{
		{"mint by a non-owner", alice, req("mint", alice, 5), false},
		{"overdraft", bob, req("transfer", alice, 31), false},
		{"zero amount", alice, req("transfer", bob, 0), false},
		{"garbage", alice, []byte("{"), false},
		{"unknown op", alice, req("burn", bob, 1), false},
		{"bad address", alice, []byte("transfer 0x12 1"), false},
		{"bad amount", alice, []byte("transfer " + addr(bob) + " -1"), false},
		{"someone else's balance", bob, []byte("balance " + addr(alice)), true},
		{"bad query", bob, []byte("balances"), true},
	} {
		var err error
		if tc.query {
			_, err = h.Query(tc.caller, tc.input)
		} else {
			_, err = h.Command(tc.caller, tc.input)
		}
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	// Failed commands changed nothing.
	if got := must(h.Query(alice, []byte("balance"))); got != "70" {
		t.Fatalf("alice after refusals: %s", got)
	}
	if got := must(h.Query(alice, []byte("balance "+addr(alice)))); got != "70" {
		t.Fatalf("own balance by address: %s", got)
	}
	// Bob's balance to the top: a transfer to him would wrap it (mints
	// bound each balance, not their sum), and is refused.
	must(h.Command(owner, req("mint", bob, math.MaxUint64-30)))
	if _, err := h.Command(alice, req("transfer", bob, 1)); err == nil {
		t.Error("a transfer that overflows the recipient's balance: accepted")
	}
	if got := must(h.Query(bob, []byte("balance"))); got != strconv.FormatUint(math.MaxUint64, 10) {
		t.Fatalf("bob after the refused overflow: %s", got)
	}
	if got := must(h.Query(alice, []byte("balance"))); got != "70" {
		t.Fatalf("alice after the refused overflow: %s", got)
	}
	// To oneself: accepted within the balance, and nothing moves.
	must(h.Command(alice, req("transfer", alice, 70)))
	if _, err := h.Command(alice, req("transfer", alice, 71)); err == nil {
		t.Error("a transfer to oneself beyond the balance: accepted")
	}
	if got := must(h.Query(alice, []byte("balance"))); got != "70" {
		t.Fatalf("alice after transfers to herself: %s", got)
	}
}

// TestTokenInVM runs the same behaviour in pRuntime's VM: built to
// WebAssembly, gas-metered, with encrypted storage.
func TestTokenInVM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the contract")
	}
	Exercise(t, contracttest.NewVM(t, contracttest.Build(t, "."), contracttest.VMOptions{}))
}

// parseOld is the parser the token had before its allocation-free one.
func parseOld(input []byte) (op string, to contract.Address, amount uint64, err error) {
	f := strings.Fields(string(input))
	if len(f) != 3 {
		return "", to, 0, errors.New("usage: mint|transfer <0x address> <amount>")
	}
	b, herr := hex.DecodeString(strings.TrimPrefix(f[1], "0x"))
	if herr != nil || len(b) != len(to) {
		return "", to, 0, fmt.Errorf("address %q must be 0x and 32 bytes of hex", f[1])
	}
	copy(to[:], b)
	if amount, err = strconv.ParseUint(f[2], 10, 64); err != nil || amount == 0 {
		return "", to, 0, fmt.Errorf("amount %q must be a positive integer", f[2])
	}
	return f[0], to, amount, nil
}

// FuzzParse: the token's parser reads every input as the one it replaced
// (parseOld): same op, address, amount and error.
func FuzzParse(f *testing.F) {
	f.Add(req("transfer", bob, 1))
	f.Add(req("mint", alice, 0))
	f.Add([]byte("transfer\t0x" + strings.Repeat("00", 32) + "  5 "))
	f.Add([]byte("transfer " + strings.Repeat("aB", 32) + " 18446744073709551615"))
	f.Add([]byte("transfer\u00a00x" + strings.Repeat("00", 32) + " 5"))
	f.Add([]byte("a 0x" + strings.Repeat("00", 32) + " 1 x"))
	f.Fuzz(func(t *testing.T, in []byte) {
		op, to, amount, err := parse(in)
		wop, wto, wamount, werr := parseOld(in)
		if fmt.Sprint(err) != fmt.Sprint(werr) {
			t.Fatalf("%q: error %v, strings.Fields: %v", in, err, werr)
		}
		if err == nil && (string(op) != string(wop) || to != wto || amount != wamount) {
			t.Fatalf("%q: %q %x %d, strings.Fields: %q %x %d", in, op, to, amount, wop, wto, wamount)
		}
	})
}
