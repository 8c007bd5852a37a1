package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/devnet"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/testnet"
)

// `phala ppha` without a node: the escrow account is api.EscrowAccount
// (text and JSON), the help of every subcommand, and arguments refused
// with a message before anything is sent.
func TestPPHACLIArgs(t *testing.T) {
	bin(t)
	id := crypto.MustKeyPairFromURI("//ppha").Public()
	escrow := api.EscrowAccount(id)
	if out := ok(t, "ppha", "escrow-account", "--contract", id.Hex()); out != escrow.Address()+"\n"+escrow.Hex()+"\n" {
		t.Errorf("escrow-account: %q", out)
	}
	var ej map[string]string
	okJSON(t, &ej, "ppha", "escrow-account", "--contract", id.Hex())
	if ej["escrow"] != escrow.Address() || ej["escrow_hex"] != escrow.Hex() || ej["contract"] != id.Hex() {
		t.Errorf("escrow-account --json: %v", ej)
	}
	for _, sub := range []string{"", "deploy", "escrow-account", "deposit", "link", "transfer", "send", "withdraw", "balance", "history", "supply"} {
		args := []string{"ppha", "--help"}
		if sub != "" {
			args = []string{"ppha", sub, "--help"}
		}
		out := ok(t, args...)
		for _, want := range []string{"Examples:", "  phala ppha ", "--node", "--json"} {
			if !strings.Contains(out, want) {
				t.Errorf("phala %s --help lacks %q:\n%s", strings.Join(args[:len(args)-1], " "), want, out)
			}
		}
	}
	if top, _, _ := strings.Cut(ok(t, "--help"), "Usage:"); !strings.Contains(top, "  ppha ") {
		t.Errorf("phala --help does not describe ppha:\n%s", top)
	}
	if out := ok(t, "ppha"); !strings.Contains(out, "Available Commands:") {
		t.Errorf("phala ppha prints no help:\n%s", out)
	}
	c := id.Hex()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ppha", "frob"}, `unknown command "frob"`},
		{[]string{"ppha", "escrow-account"}, "--contract is required"},
		{[]string{"ppha", "escrow-account", "--contract", "0x12"}, "is not a contract id"},
		{[]string{"ppha", "deposit", "--from", "//Bob", "--contract", c}, "takes an amount of PHA"},
		{[]string{"ppha", "deposit", "--from", "//Bob", "--contract", c, "0"}, "amount 0"},
		{[]string{"ppha", "deposit", "--from", "//Bob", "--contract", c, "1,5"}, "is not a number"},
		{[]string{"ppha", "deposit", "--from", "//Bob", "--contract", c, "1.0000000000001"}, "13 decimals"},
		{[]string{"ppha", "deposit", "--from", "//Bob", "1"}, "--contract is required"},
		{[]string{"ppha", "deposit", "--contract", c, "1"}, "--from is required"},
		{[]string{"ppha", "transfer", "--from", "//Bob", "--contract", c, "bob", "1"}, "is not an account"},
		{[]string{"ppha", "transfer", "--from", "//Bob", "--contract", c, "//Charlie"}, "takes a recipient and an amount"},
		{[]string{"ppha", "send", "--from", "//Bob", "--contract", c, c, "1"}, "takes a contract, an amount of PHA and a memo"},
		{[]string{"ppha", "send", "--from", "//Bob", "--contract", c, "0x12", "1", "memo"}, "is not a contract id"},
		{[]string{"ppha", "send", "--from", "//Bob", "--contract", c, c, "1", strings.Repeat("m", 201)}, "the memo has 201 bytes"},
		{[]string{"ppha", "send", "--from", "//Bob", "--contract", c, c, "1", "caf\u00e9"}, "printable ASCII"},
		{[]string{"ppha", "withdraw", "--from", "//Bob", "--contract", c, "1.5x"}, "is not a number"},
		{[]string{"ppha", "link", "--from", "//Bob", "--contract", c, "nobody"}, "is not an account"},
		{[]string{"ppha", "balance", "--contract", c}, "--from is required"},
		{[]string{"ppha", "history", "--from", "//Bob"}, "--contract is required"},
		{[]string{"ppha", "supply"}, "--contract is required"},
		{[]string{"ppha", "deploy"}, "--from is required"},
	} {
		fails(t, []string{tc.want}, append(tc.args, "--node", "127.0.0.1:1")...)
	}
}

// Against an in-process chain with no contract: deposit refuses a
// contract id that names no contract (its escrow account would keep the
// PHA forever) and moves nothing.
func TestPPHACLIDepositUnknownContract(t *testing.T) {
	bin(t)
	n := testnet.New(t, testnet.Options{Genesis: node.DevGenesisState([]byte{7})})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	phala := func(args ...string) []string {
		return append(args, "--node", n.RPC(0), "--genesis", filepath.Join(n.Homes[0], "config", "genesis.json"), "--data-dir", t.TempDir())
	}
	bob := crypto.MustKeyPairFromURI("//Bob").Public()
	before, err := n.Client(0).Account(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	nobody := crypto.MustKeyPairFromURI("//no-contract").Public()
	fails(t, []string{"no such contract"}, phala("ppha", "deposit", "--from", "//Bob", "--contract", nobody.Hex(), "1")...)
	fails(t, []string{"no such contract"}, phala("ppha", "supply", "--contract", nobody.Hex())...)
	after, err := n.Client(0).Account(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("a refused deposit moved something: %+v → %+v", before, after)
	}
	if e, err := n.Client(0).Account(ctx, api.EscrowAccount(nobody)); err != nil || e.Balance != 0 {
		t.Fatalf("escrow of no contract: %+v %v", e, err)
	}
}

// On a devnet (real pRuntime workers): a deposit is a PHA transfer to the
// contract's escrow account; then the pegged token end to end. The full
// run needs pRuntime's interoperability (the VM's call, pay, self, escrow
// imports and handle_event, issue 13): on a pRuntime without them the
// ppha contract fails to instantiate and the test stops after the
// transfer-to-escrow path, saying so.
func TestPPHACLIDevnet(t *testing.T) {
	bin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cfg := devnet.DefaultConfig(t.TempDir())
	cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.PRuntimePort = 0
	var ls []net.Listener
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		cfg.Ports = append(cfg.Ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	d, err := startBenchDevnet(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	dir := t.TempDir()
	phala := func(args ...string) []string {
		return append(args, "--node", d.RPC(), "--genesis", d.GenesisFile(), "--data-dir", dir)
	}
	cl, err := d.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// //Alice and //Bob: no devnet process signs with them after the genesis
	// (the pherries use //Charlie, //Dave...), so their nonces are the test's.
	bob, alice := crypto.MustKeyPairFromURI("//Bob").Public(), crypto.MustKeyPairFromURI("//Alice").Public()
	// The withdrawals' account: no process signs with it (the devnet's
	// pherries pay fees from //Charlie, //Dave and //Eve), so its balance
	// moves by the payouts only.
	payee, _, err := crypto.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	dave := payee.Public()

	ppha := filepath.Join(dir, "ppha.wasm")
	if err := os.WriteFile(ppha, contracttest.Build(t, filepath.Join("..", "..", "examples", "contracts", "ppha")), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", phala("ppha", "deploy", "--from", "//Alice", "--code", ppha)...)
	m := regexp.MustCompile(`ppha contract (0x[0-9a-f]{64}) running`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		if strings.Contains(r.stderr, `is not exported in module "phala"`) {
			// The transfer-to-escrow path still works on a contract
			// that runs: the token.
			token := filepath.Join(dir, "token.wasm")
			if err := os.WriteFile(token, contracttest.Build(t, filepath.Join("..", "..", "examples", "contracts", "token")), 0o600); err != nil {
				t.Fatal(err)
			}
			out := ok(t, phala("contract", "upload", "--from", "//Alice", token)...)
			tid := regexp.MustCompile(`contract (0x[0-9a-f]{64}) running`).FindStringSubmatch(out)[1]
			pk, _ := crypto.ParsePublicKey(tid)
			escrow := api.EscrowAccount(pk)
			before, err := cl.Account(ctx, bob)
			if err != nil {
				t.Fatal(err)
			}
			out = ok(t, phala("ppha", "deposit", "--from", "//Bob", "--contract", tid, "2")...)
			if !strings.Contains(out, "deposited 2 PHA (2000000000000 units) from "+bob.Address()+" to the escrow account "+escrow.Address()) {
				t.Errorf("deposit:\n%s", out)
			}
			after, err := cl.Account(ctx, bob)
			if err != nil {
				t.Fatal(err)
			}
			if before.Balance-after.Balance < 2*api.Unit {
				t.Errorf("bob paid %d for a deposit of 2 PHA", before.Balance-after.Balance)
			}
			t.Skipf("this pRuntime does not run the ppha contract (no interoperability imports yet): checked the deposit transfer only\n%s", r)
		}
		t.Fatalf("ppha deploy: %s", r)
	}
	id := m[1]
	if !strings.Contains(r.stdout, "escrow account: ") {
		t.Errorf("deploy does not print the escrow account:\n%s", r.stdout)
	}
	pk, _ := crypto.ParsePublicKey(id)
	escrow := api.EscrowAccount(pk)
	pp := func(sub string, args ...string) []string {
		return phala(append([]string{"ppha", sub, "--contract", id}, args...)...)
	}
	balance := func(who string) string {
		t.Helper()
		var j map[string]any
		okJSON(t, &j, pp("balance", "--from", who)...)
		return j["balance"].(string)
	}
	supply := func() {
		t.Helper()
		var j map[string]any
		okJSON(t, &j, pp("supply")...)
		if j["supply"] != j["escrow_balance"] || j["escrow"] != escrow.Address() || j["invariant"] != true {
			t.Errorf("supply %v, escrow holds %v", j["supply"], j["escrow_balance"])
		}
	}
	ok(t, pp("deposit", "--from", "//Bob", "10")...)
	// The worker runs the deposit's block after the chain commits it.
	testnet.WaitFor(t, time.Minute, "the deposit credited", func() (bool, error) { return balance("//Bob") == "10000000000000", nil })
	supply()
	if out := ok(t, pp("transfer", "--from", "//Bob", "//Alice", "2.5")...); !strings.Contains(out, "transferred 2.5 pPHA (2500000000000 units) to "+alice.Address()) {
		t.Errorf("transfer:\n%s", out)
	}
	fails(t, []string{"insufficient balance"}, pp("transfer", "--from", "//Alice", "//Bob", "3")...)
	// Recipients nobody could spend from are refused before anything is
	// sent: the contract itself, its escrow account, another contract.
	fails(t, []string{"is this ppha contract itself"}, pp("transfer", "--from", "//Bob", id, "1")...)
	fails(t, []string{"is this contract's escrow account"}, pp("transfer", "--from", "//Bob", escrow.Address(), "1")...)
	fails(t, []string{"is this contract's escrow account"}, pp("link", "--from", "//Bob", escrow.Address())...)
	ok(t, pp("link", "--from", "//Alice", dave.Address())...)
	daveBefore, err := cl.Account(ctx, dave)
	if err != nil {
		t.Fatal(err)
	}
	ok(t, pp("withdraw", "--from", "//Alice", "1")...)
	fails(t, []string{"insufficient balance"}, pp("withdraw", "--from", "//Alice", "2")...)
	testnet.WaitFor(t, time.Minute, "the withdrawal paid", func() (bool, error) {
		out := run(t, "", pp("history", "--from", "//Alice")...)
		return strings.Contains(out.stdout, "withdraw 1 pPHA paid id 1"), nil
	})
	daveAfter, err := cl.Account(ctx, dave)
	if err != nil {
		t.Fatal(err)
	}
	if daveAfter.Balance-daveBefore.Balance != api.Unit {
		t.Errorf("dave received %d for a withdrawal of 1 PHA", daveAfter.Balance-daveBefore.Balance)
	}
	if b := balance("//Alice"); b != "1500000000000" {
		t.Errorf("alice: %s", b)
	}
	supply()
	out := ok(t, pp("history", "--from", "//Bob")...)
	for _, want := range []string{"deposit 10 pPHA from " + bob.Hex(), "transfer -2.5 pPHA to " + alice.Hex()} {
		if !strings.Contains(out, want) {
			t.Errorf("bob's history lacks %q:\n%s", want, out)
		}
	}
}
