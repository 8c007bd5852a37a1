package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bip39 "github.com/cosmos/go-bip39"
	subkey "github.com/vedhavyas/go-subkey/v2"
	subsr "github.com/vedhavyas/go-subkey/v2/sr25519"

	"github.com/cometbft/cometbft/crypto/ed25519"
	cmttypes "github.com/cometbft/cometbft/types"
	"go.dedis.ch/kyber/v3/group/edwards25519"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/attestation"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/testnet"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The CLI, tested by running the binary (built once per test binary).

var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func bin(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "phala-cli-test"); buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "phala")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs the binary with stdin and args.
func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin(t), args...)
	cmd.Env = append(os.Environ(), "PHALA_HOME="+filepath.Join(buildDir, "home")) // never the user's ~/.phala
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", args, err)
	}
	return r
}

// ok runs the binary and fails the test unless it exits 0.
func ok(t *testing.T, args ...string) string {
	t.Helper()
	r := run(t, "", args...)
	if r.code != 0 {
		t.Fatalf("phala %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// fails runs the binary, expecting a non-zero exit and an error that
// mentions every one of want.
func fails(t *testing.T, want []string, args ...string) result {
	t.Helper()
	r := run(t, "", args...)
	if r.code == 0 {
		t.Fatalf("phala %s succeeded: %s", strings.Join(args, " "), r)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("phala %s: error does not mention %q: %s", strings.Join(args, " "), w, r)
		}
	}
	return r
}

func okJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := ok(t, append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("phala %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestHelp(t *testing.T) {
	for _, c := range [][]string{
		{}, {"key"}, {"key", "generate"}, {"key", "inspect"}, {"key", "sign"}, {"key", "verify"}, {"key", "vanity"}, {"status"}, {"balance"},
		{"transfer"}, {"worker"}, {"gatekeepers"},
		{"gov", "propose"}, {"gov", "vote"}, {"gov", "show"}, {"gov", "list"},
		{"tx"}, {"block"}, {"contract", "watch"}, {"contract", "arbitrate"}, {"contract", "arbitration"}, {"explorer"},
	} {
		out := ok(t, append(c, "--help")...)
		for _, want := range []string{"Examples:", "  phala ", "--node", "--json"} {
			if !strings.Contains(out, want) {
				t.Errorf("phala %s --help lacks %q:\n%s", strings.Join(c, " "), want, out)
			}
		}
	}
	// The top-level help describes every command group before listing them.
	top := ok(t, "--help")
	intro, _, _ := strings.Cut(top, "Usage:")
	for _, group := range []string{"devnet", "contract", "key", "transfer", "gov", "status"} {
		if !strings.Contains(intro, " "+group) {
			t.Errorf("phala --help does not describe %q:\n%s", group, intro)
		}
	}
}

// An unknown subcommand of any command group fails with cobra's "unknown
// command" error, a suggestion when one is close, and a pointer to the
// group's help; a group called alone prints its help and exits 0.
func TestUnknownSubcommand(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"frobnicate"}, []string{`unknown command "frobnicate" for "phala"`, "phala --help"}},
		{[]string{"stat"}, []string{`unknown command "stat"`, "did you mean", "status"}},
		{[]string{"contract", "frobnicate"}, []string{`unknown command "frobnicate" for "phala contract"`, "phala contract --help"}},
		{[]string{"contract", "uplod"}, []string{"did you mean upload?"}},
		{[]string{"key", "frobnicate"}, []string{`for "phala key"`}},
		{[]string{"stake", "frobnicate"}, []string{`for "phala stake"`}},
		{[]string{"gov", "frobnicate"}, []string{`for "phala gov"`}},
		{[]string{"subnet", "frobnicate", "x"}, []string{`for "phala subnet"`}},
	} {
		fails(t, c.want, c.args...)
	}
	for _, group := range []string{"contract", "key", "gov"} {
		if out := ok(t, group); !strings.Contains(out, "Available Commands:") {
			t.Errorf("phala %s prints no help:\n%s", group, out)
		}
	}
}

// Vectors printed by Substrate's `subkey inspect`.
var subkeyVectors = []struct{ uri, pub, addr string }{
	{"//Alice", "0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d", "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"},
	{"//Bob", "0x8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48", "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"},
	{"//Alice//stash", "0xbe5ddb1579b72e84524fc29e78609e3caf42e85aa118ebfe0b0ad404b5bdd25f", "5GNJqTPyNqANBkUVMN1LPPrxXnFouWXoe2wNSmmEoLctxiZY"},
}

// The seeds subkey prints for them (hard junctions of the development
// phrase).
var subkeySeeds = map[string]string{
	"//Alice":        "0xe5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a",
	"//Bob":          "0x398f0c28f98885e046333d4a41c19cee4c37368a9832c6502f6cfd182e2aef89",
	"//Alice//stash": "",
}

func TestKeyInspect(t *testing.T) {
	for _, v := range subkeyVectors {
		ref, err := subkey.DeriveKeyPair(subsr.Scheme{}, v.uri)
		if err != nil {
			t.Fatal(err)
		}
		seed := "0x" + hex.EncodeToString(ref.Seed())
		if want := subkeySeeds[v.uri]; want != "" && want != seed {
			t.Fatalf("go-subkey's seed of %s is %s, subkey prints %s", v.uri, seed, want)
		}
		out := ok(t, "key", "inspect", v.uri)
		want := fmt.Sprintf("Secret Key URI `%s` is account:\n"+
			"  Network ID:        substrate\n"+
			"  Secret seed:       %s\n"+
			"  Public key (hex):  %s\n"+
			"  Account ID:        %s\n"+
			"  Public key (SS58): %s\n"+
			"  SS58 Address:      %s\n", v.uri, seed, v.pub, v.pub, v.addr, v.addr)
		if out != want {
			t.Errorf("key inspect %s:\n%s\nwant:\n%s", v.uri, out, want)
		}
		var k keyInfo
		okJSON(t, &k, "key", "inspect", v.uri)
		if k != (keyInfo{SecretKeyURI: v.uri, SecretSeed: seed, NetworkID: "substrate", PublicKey: v.pub, AccountID: v.pub, SS58PublicKey: v.addr, SS58Address: v.addr}) {
			t.Errorf("key inspect %s --json: %+v", v.uri, k)
		}
		// The seed is a secret URI of the same account.
		var again keyInfo
		okJSON(t, &again, "key", "inspect", seed)
		if again.SS58Address != v.addr || again.SecretSeed != seed {
			t.Errorf("key inspect %s (the seed of %s): %+v", seed, v.uri, again)
		}
		// The same account from its public key, SS58 or hex (no secret).
		for _, pub := range []string{v.addr, v.pub} {
			var p keyInfo
			okJSON(t, &p, "key", "inspect", "--public", pub)
			if p != (keyInfo{NetworkID: "substrate", PublicKey: v.pub, AccountID: v.pub, SS58PublicKey: v.addr, SS58Address: v.addr}) {
				t.Errorf("key inspect --public %s: %+v", pub, p)
			}
		}
	}
	// A phrase prints as subkey prints it; a soft junction has no seed.
	out := ok(t, "key", "inspect", crypto.DevPhrase)
	if !strings.HasPrefix(out, "Secret phrase:       "+crypto.DevPhrase+"\n  Network ID:        substrate\n  Secret seed:       0xfac7959dbfe72f052e5a0c3c8d6530f202b02fd8f9f5ca3580ec8deb7797479e\n") {
		t.Errorf("key inspect <dev phrase>:\n%s", out)
	}
	if out := ok(t, "key", "inspect", "//Alice/soft"); !strings.Contains(out, "  Secret seed:       n/a\n") {
		t.Errorf("key inspect //Alice/soft:\n%s", out)
	}
	// Standard input keeps the secret off the command line.
	r := run(t, "//Bob\n", "key", "inspect", "-")
	if r.code != 0 || !strings.Contains(r.stdout, subkeyVectors[1].addr) {
		t.Errorf("key inspect - with //Bob on stdin: %s", r)
	}

	// Phrases, passwords, soft and numeric junctions and raw seeds agree
	// with go-subkey, an independent implementation of subkey's derivation.
	for _, uri := range []string{
		crypto.DevPhrase, crypto.DevPhrase + "//Alice", crypto.DevPhrase + "///secret",
		crypto.DevPhrase + "//foo/bar//1///password", "//Alice/soft", "//0",
		"0x0102030405060708091011121314151617181920212223242526272829303132//x",
	} {
		ref, err := subkey.DeriveKeyPair(subsr.Scheme{}, uri)
		if err != nil {
			t.Fatalf("go-subkey %s: %v", uri, err)
		}
		var k keyInfo
		okJSON(t, &k, "key", "inspect", uri)
		if want := "0x" + fmt.Sprintf("%x", ref.Public()); k.PublicKey != want || k.SS58Address != ref.SS58Address(42) {
			t.Errorf("key inspect %q: %+v, go-subkey says %s %s", uri, k, want, ref.SS58Address(42))
		}
		wantSeed := "n/a"
		if ref.Seed() != nil {
			wantSeed = "0x" + hex.EncodeToString(ref.Seed())
		}
		if k.SecretSeed != wantSeed {
			t.Errorf("key inspect %q: seed %s, go-subkey says %s", uri, k.SecretSeed, wantSeed)
		}
	}

	fails(t, []string{"secret URI"}, "key", "inspect", "not a valid phrase")
	fails(t, []string{"secret URI"}, "key", "inspect", "0x1234")
	fails(t, []string{"--public", "SS58"}, "key", "inspect", "--public", "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ")
	fails(t, []string{"not both"}, "key", "inspect", "//Alice", "--public", subkeyVectors[0].addr)
}

func TestKeyGenerate(t *testing.T) {
	seen := map[string]bool{}
	for _, words := range []int{12, 24} {
		var k keyInfo
		okJSON(t, &k, "key", "generate", "--words", strconv.Itoa(words))
		if n := len(strings.Fields(k.SecretPhrase)); n != words || !bip39.IsMnemonicValid(k.SecretPhrase) {
			t.Fatalf("--words %d: %d words, valid %v: %q", words, n, bip39.IsMnemonicValid(k.SecretPhrase), k.SecretPhrase)
		}
		if seen[k.SS58Address] {
			t.Fatal("two generated keys are the same")
		}
		seen[k.SS58Address] = true
		// Inspecting the phrase, or the seed printed with it, gives the
		// same account; so does go-subkey.
		for _, secret := range []string{k.SecretPhrase, k.SecretSeed} {
			var again keyInfo
			okJSON(t, &again, "key", "inspect", secret)
			if again.PublicKey != k.PublicKey || again.SS58Address != k.SS58Address || again.AccountID != k.AccountID {
				t.Errorf("inspect of the generated secret: %+v, generated %+v", again, k)
			}
		}
		ref, err := subkey.DeriveKeyPair(subsr.Scheme{}, k.SecretPhrase)
		if err != nil || ref.SS58Address(42) != k.SS58Address {
			t.Errorf("go-subkey derives %v (%v), generate printed %s", ref, err, k.SS58Address)
		}
	}
	r := run(t, "", "key", "generate")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Secret phrase:") || !strings.Contains(r.stdout, "SS58 Address:") || !strings.Contains(r.stderr, "Keep the secret phrase safe") {
		t.Errorf("key generate: %s", r)
	}
	fails(t, []string{"--words 13"}, "key", "generate", "--words", "13")
	fails(t, []string{"sr25519"}, "key", "generate", "--scheme", "ed25519")
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestDeadNode(t *testing.T) {
	dead := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	for _, args := range [][]string{{"status"}, {"balance", "//Alice"}, {"gatekeepers"}, {"transfer", "--from", "//Alice", "--to", "//Bob", "--amount", "1"}} {
		fails(t, []string{"node at " + dead + " does not answer", "go run ./cmd/phala devnet"}, append(args, "--node", dead)...)
	}
	// A node that accepts connections and never answers: --timeout.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()
	fails(t, []string{"did not answer within --timeout 500ms"}, "status", "--node", l.Addr().String(), "--timeout", "500ms")
	fails(t, []string{"not an RPC address"}, "status", "--node", "http://exa mple")
}

func TestChain(t *testing.T) {
	bin(t) // skip before starting a chain in -short mode
	measurement := [32]byte{1, 2, 3}
	gatekeeper := crypto.MustKeyPairFromURI("//PhalaTestGatekeeper")
	genesis := node.DevGenesisState(measurement[:])
	genesis.Gatekeepers = []crypto.PublicKey{gatekeeper.Public()}
	n := testnet.New(t, testnet.Options{Genesis: genesis})
	rpc := n.RPC(0)
	c := n.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice, bob := crypto.MustKeyPairFromURI("//Alice"), crypto.MustKeyPairFromURI("//Bob")

	// A registered worker (from //Charlie, the operator), and the
	// gatekeeper registered likewise (its messages count only then). The
	// reports cite a recent block, as a pRuntime's do.
	charlie := crypto.MustKeyPairFromURI("//Charlie")
	identity, _, _ := crypto.GenerateKeyPair()
	registerKey := func(id *crypto.KeyPair) api.WorkerInfo {
		ecdh, _, _ := crypto.GenerateKeyPair()
		var recent *cmttypes.SignedHeader
		testnet.WaitFor(t, 30*time.Second, "a committed block to cite", func() (bool, error) {
			h, err := c.Height(ctx)
			if err != nil || h < 2 {
				return false, err
			}
			recent, err = c.SignedHeader(ctx, h-1)
			return err == nil, err
		})
		info := api.WorkerInfo{ChainID: n.ChainID, IdentityKey: id.Public(), EcdhKey: ecdh.Public(), Endpoint: "http://127.0.0.1:8000", Operator: charlie.Public(),
			BlockHeight: recent.Height, BlockHash: [api.BlockHashSize]byte(recent.Hash())}
		report := attestation.SignSimQuote(crypto.MustKeyPairFromURI(api.DevAttestationURI), measurement, info.ReportData(), time.Now())
		if _, err := c.NewSigner(charlie).Submit(ctx, &api.RegisterWorker{Info: info, Report: *report}); err != nil {
			t.Fatalf("register %s: %v", id.Public().Short(), err)
		}
		return info
	}
	info := registerKey(identity)
	registerKey(gatekeeper)

	genesisFile := filepath.Join(n.Homes[0], "config", "genesis.json")
	phala := func(args ...string) []string { return append(args, "--node", rpc, "--genesis", genesisFile) }

	t.Run("status", func(t *testing.T) {
		var s statusJSON
		okJSON(t, &s, phala("status")...)
		if s.ChainID != n.ChainID || s.LatestHeight < 2 || s.Validators != 1 || s.Params != genesis.Params || s.TransferFee == "" || time.Since(s.LatestTime) > time.Minute {
			t.Errorf("status: %+v", s)
		}
		out := ok(t, phala("status")...)
		for _, want := range []string{"Chain:        " + n.ChainID, "Latest block: ", "Validators:   1", "era length:            600 blocks", "0.000001 PHA + 0.000000001 PHA per byte"} {
			if !strings.Contains(out, want) {
				t.Errorf("status lacks %q:\n%s", want, out)
			}
		}
	})

	balance := func(t *testing.T, who string) balanceJSON {
		t.Helper()
		var b balanceJSON
		okJSON(t, &b, phala("balance", who)...)
		return b
	}

	t.Run("balance", func(t *testing.T) {
		b := balance(t, alice.Address())
		if b.Balance != fmt.Sprint(node.DevBalance) || b.BalancePHA != "1000000" || b.Nonce != 0 || b.Address != alice.Address() || b.Height < 2 {
			t.Errorf("balance of //Alice: %+v", b)
		}
		out := ok(t, phala("balance", "//Alice")...)
		if !strings.Contains(out, "balance: 1000000 PHA") || !strings.Contains(out, "nonce:   0") {
			t.Errorf("balance //Alice:\n%s", out)
		}
		// An account the chain has never seen: proved absent, zero.
		if b := balance(t, "//Nobody"); b.Balance != "0" || b.Nonce != 0 {
			t.Errorf("balance of an unknown account: %+v", b)
		}
		fails(t, []string{"not an account", "SS58"}, phala("balance", "5notanaddress")...)
	})

	t.Run("transfer", func(t *testing.T) {
		a0, b0 := balance(t, alice.Address()), balance(t, bob.Address())
		var tr transferJSON
		okJSON(t, &tr, phala("transfer", "--from", "//Alice", "--to", bob.Address(), "--amount", "1.5")...)
		fee, err := strconv.ParseUint(tr.Fee, 10, 64)
		if err != nil || tr.Result != "ok" || tr.Code != 0 || tr.Amount != "1500000000000" || tr.AmountPHA != "1.5" ||
			fee < api.DefaultParams().FeeBase || tr.Height <= 0 || len(tr.Hash) != 64 || tr.From != alice.Address() || tr.To != bob.Address() || tr.Nonce != a0.Nonce {
			t.Fatalf("transfer: %+v", tr)
		}
		// The committed transaction is the one reported.
		res, err := c.WaitTx(ctx, mustHash(t, tr.Hash))
		if err != nil || res.Height != tr.Height || res.Code != api.CodeOK {
			t.Fatalf("tx %s: %+v %v", tr.Hash, res, err)
		}
		a1, b1 := balance(t, alice.Address()), balance(t, bob.Address())
		units := func(s string) uint64 { v, _ := strconv.ParseUint(s, 10, 64); return v }
		if units(a1.Balance) != units(a0.Balance)-1_500_000_000_000-fee || a1.Nonce != a0.Nonce+1 {
			t.Errorf("alice %s (nonce %d) after sending 1.5 PHA with fee %d from %s (nonce %d)", a1.Balance, a1.Nonce, fee, a0.Balance, a0.Nonce)
		}
		if units(b1.Balance) != units(b0.Balance)+1_500_000_000_000 || b1.Nonce != b0.Nonce {
			t.Errorf("bob %s after receiving 1.5 PHA, had %s", b1.Balance, b0.Balance)
		}
		// Human output, to a development account name, the smallest unit.
		out := ok(t, phala("transfer", "--from", "//Bob", "--to", "//Alice", "--amount", "0.000000000001")...)
		for _, want := range []string{"Transfer of 0.000000000001 PHA from " + bob.Address() + " to " + alice.Address() + " committed", "hash:", "height:", "fee:", "result: ok"} {
			if !strings.Contains(out, want) {
				t.Errorf("transfer output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("insufficient balance", func(t *testing.T) {
		poor := crypto.MustKeyPairFromURI("//Nobody").Address()
		fails(t, []string{"insufficient balance", poor + " has 0 PHA", "needs 1 PHA plus a fee of 0.000001", "Fund the account"},
			phala("transfer", "--from", "//Nobody", "--to", "//Bob", "--amount", "1")...)
		// From standard input too.
		r := run(t, "//Nobody\n", phala("transfer", "--from", "-", "--to", "//Bob", "--amount", "1")...)
		if r.code == 0 || !strings.Contains(r.stderr, "insufficient balance") {
			t.Errorf("transfer --from - : %s", r)
		}
		// More than the balance of a funded account.
		fails(t, []string{"insufficient balance", "needs 2000000 PHA"}, phala("transfer", "--from", "//Dave", "--to", "//Bob", "--amount", "2000000")...)
	})

	t.Run("bad amounts", func(t *testing.T) {
		for _, tc := range []struct{ amount, want string }{
			{"1.0000000000001", "13 decimals"},
			{"-1", "negative"},
			{"abc", "not a number"},
			{"1e3", "not a number"},
			{"1,5", "not a number"},
			{"", "not a number"},
			{"0", "0 PHA"},
			{"18446745", "too large"},
		} {
			fails(t, []string{"--amount", tc.want}, phala("transfer", "--from", "//Alice", "--to", "//Bob", "--amount", tc.amount)...)
		}
		fails(t, []string{"--to", "not an account"}, phala("transfer", "--from", "//Alice", "--to", "bob", "--amount", "1")...)
		fails(t, []string{"--from", "secret URI"}, phala("transfer", "--from", "no such phrase", "--to", "//Bob", "--amount", "1")...)
		fails(t, []string{"required flag", "amount"}, phala("transfer", "--from", "//Alice", "--to", "//Bob")...)
	})

	t.Run("worker", func(t *testing.T) {
		var w workerJSON
		okJSON(t, &w, phala("worker", identity.Public().Address())...)
		if w.Identity != identity.Public().Address() || w.Endpoint != info.Endpoint || w.Operator != charlie.Address() ||
			w.EcdhKey != info.EcdhKey.Hex() || w.Platform != api.PlatformSim || w.Measurement != fmt.Sprintf("0x%x", measurement) ||
			!w.Active || w.RegisteredAt <= 0 || w.ReportBlock != info.BlockHeight || w.ReportHash != fmt.Sprintf("%X", info.BlockHash) || w.ExpiresAt != w.RegisteredAt+int64(api.DefaultParams().RegistrationLifetime) || w.ChainID != n.ChainID {
			t.Errorf("worker: %+v", w)
		}
		out := ok(t, phala("worker", identity.Public().Hex())...)
		for _, want := range []string{"status:        active", "endpoint:      " + info.Endpoint, "operator:      " + charlie.Address(), "platform:      sim", "expires at:    height", fmt.Sprintf("report cites:  block %d", info.BlockHeight)} {
			if !strings.Contains(out, want) {
				t.Errorf("worker output lacks %q:\n%s", want, out)
			}
		}
		fails(t, []string{"worker " + bob.Address() + " is not registered", "proved absent"}, phala("worker", bob.Address())...)
		// An unknown contract id is not "not deployed yet".
		fails(t, []string{"no such contract " + bob.Public().Hex(), "proved absent"}, phala("contract", "query", "--from", "//Bob", bob.Public().Hex(), "balance")...)
		fails(t, []string{"no such contract"}, phala("contract", "command", "--from", "//Bob", bob.Public().Hex(), "anything")...)
		list := ok(t, phala("workers")...)
		if !strings.Contains(list, identity.Public().Hex()) || !strings.Contains(list, info.Endpoint) {
			t.Errorf("workers lacks the registered worker:\n%s", list)
		}
	})

	// An upload no gatekeeper can provision: upload says why it waits
	// (until --timeout), show tells it later from the upload id.
	code := filepath.Join(t.TempDir(), "c.wasm")
	if err := os.WriteFile(code, []byte("\x00asm\x01\x00\x00\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	var uploadID string
	t.Run("pending upload", func(t *testing.T) {
		r := fails(t, []string{"pending: no gatekeeper holds the MasterKey yet", "wait for the contract to run"},
			phala("contract", "upload", "--from", "//Eve", code, "--timeout", "8s")...)
		m := regexp.MustCompile(`upload ([0-9a-f]{64}) committed`).FindStringSubmatch(r.stderr)
		if m == nil {
			t.Fatalf("no upload id: %s", r)
		}
		uploadID = m[1]
		if out := ok(t, phala("contract", "show", uploadID)...); !strings.Contains(out, "status:     pending") || !strings.Contains(out, "no gatekeeper holds the MasterKey") {
			t.Errorf("show of a pending upload:\n%s", out)
		}
		fails(t, []string{"no such contract", "no upload has that id"}, phala("contract", "show", strings.Repeat("ab", 32))...)
	})

	t.Run("gatekeepers", func(t *testing.T) {
		var g gatekeepersJSON
		okJSON(t, &g, phala("gatekeepers")...)
		if len(g.Gatekeepers) != 1 || g.Gatekeepers[0].Address != gatekeeper.Address() || g.MasterKey != nil {
			t.Errorf("gatekeepers: %+v", g)
		}
		if out := ok(t, phala("gatekeepers")...); !strings.Contains(out, gatekeeper.Address()) || !strings.Contains(out, "Master key: not published yet") {
			t.Errorf("gatekeepers:\n%s", out)
		}
		// The gatekeeper publishes the master key, an edwards25519 point
		// (pushed by //Dave).
		suite := edwards25519.NewBlakeSHA256Ed25519()
		pt, err := suite.Point().Pick(suite.RandomStream()).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		mk := crypto.PublicKey(pt)
		msg := api.SignMessage(n.ChainID, api.Message{Origin: api.KeyOrigin(api.OriginGatekeeper, gatekeeper.Public()), Topic: api.TopicMasterKey, Payload: mk[:]}, gatekeeper)
		if _, err := c.NewSigner(crypto.MustKeyPairFromURI("//Dave")).Submit(ctx, &api.PushMessage{Message: msg}); err != nil {
			t.Fatalf("publish master key: %v", err)
		}
		okJSON(t, &g, phala("gatekeepers")...)
		if g.MasterKey == nil || g.MasterKey.PublicKey != mk.Hex() {
			t.Errorf("gatekeepers after publication: %+v", g)
		}
	})

	t.Run("pending upload, master key published", func(t *testing.T) {
		if uploadID == "" {
			t.Skip("no upload")
		}
		// The master key is out and a worker is registered: it waits for
		// a gatekeeper's grant (the test's gatekeeper runs no pRuntime).
		if out := ok(t, phala("contract", "show", uploadID)...); !strings.Contains(out, "waiting for a gatekeeper to provision its keys to up to 1 of the 1 registered worker(s)") {
			t.Errorf("show of a pending upload:\n%s", out)
		}
	})

	// Trust roots: none is refused; --genesis and --trust-height/--trust-hash
	// verify and are remembered in --data-dir; wrong ones are refused.
	t.Run("trust", func(t *testing.T) {
		at := func(dir string, args ...string) []string { return append(args, "--node", rpc, "--data-dir", dir) }
		empty := t.TempDir()
		for _, cmd := range [][]string{{"status"}, {"balance", "//Alice"}, {"worker", identity.Public().Hex()}, {"gatekeepers"}} {
			fails(t, []string{"no trust root for chain \"" + n.ChainID + "\"", "--genesis FILE", "--trust-height N --trust-hash HEX"}, at(empty, cmd...)...)
		}
		// --genesis, remembered with the newest verified header.
		dir := t.TempDir()
		var s statusJSON
		okJSON(t, &s, at(dir, "status", "--genesis", genesisFile)...)
		if s.TrustRoot != "genesis validators" || s.Validators != 1 {
			t.Errorf("status from the genesis: %+v", s)
		}
		ok(t, at(dir, "balance", "//Alice")...)
		chainDir := filepath.Join(dir, "chains", n.ChainID)
		if _, err := os.Stat(filepath.Join(chainDir, "genesis.json")); err != nil {
			t.Errorf("genesis not remembered: %v", err)
		}
		if m, _ := filepath.Glob(filepath.Join(chainDir, "trusted-*.pb")); len(m) != 1 {
			t.Errorf("verified headers stored: %v", m)
		}
		// A trusted header: a wrong hash is refused, the right one verifies
		// and replaces the genesis as the remembered root.
		lb, err := c.LightBlock(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		hash := hex.EncodeToString(lb.Hash())
		wrong := strings.Repeat("ab", 32)
		fails(t, []string{"does not verify", "not the trusted"}, at(dir, "balance", "//Alice", "--trust-height", "2", "--trust-hash", wrong)...)
		okJSON(t, &s, at(dir, "status", "--trust-height", "2", "--trust-hash", "0x"+hash)...)
		if s.TrustRoot != "header 2 "+strings.ToUpper(hash) {
			t.Errorf("status from a trusted header: %+v", s)
		}
		okJSON(t, &s, at(dir, "status")...)
		if s.TrustRoot != "header 2 "+strings.ToUpper(hash) {
			t.Errorf("remembered root: %+v", s)
		}
		if _, err := os.Stat(filepath.Join(chainDir, "genesis.json")); !os.IsNotExist(err) {
			t.Errorf("the replaced genesis root is still there: %v", err)
		}
		// Bad flags.
		fails(t, []string{"not both"}, at(dir, "status", "--genesis", genesisFile, "--trust-height", "2", "--trust-hash", hash)...)
		fails(t, []string{"go together"}, at(dir, "status", "--trust-height", "2")...)
		fails(t, []string{"--trust-hash", "64 hex digits"}, at(dir, "status", "--trust-height", "2", "--trust-hash", "abc")...)
		fails(t, []string{"not a genesis document"}, at(dir, "status", "--genesis", filepath.Join(n.Homes[0], "config", "config.toml"))...)
		// A genesis of another chain id, and one with other validators.
		doc := n.Genesis()
		doc.ChainID = "other-chain"
		other := filepath.Join(t.TempDir(), "other.json")
		if err := doc.SaveAs(other); err != nil {
			t.Fatal(err)
		}
		fails(t, []string{"runs chain \"" + n.ChainID + "\", expected \"other-chain\""}, at(t.TempDir(), "status", "--genesis", other)...)
		doc = n.Genesis()
		doc.Validators = []cmttypes.GenesisValidator{{PubKey: ed25519.GenPrivKey().PubKey(), Power: 10}}
		if err := doc.SaveAs(other); err != nil {
			t.Fatal(err)
		}
		fresh := t.TempDir()
		fails(t, []string{"does not verify", "not signed by the genesis validators"}, at(fresh, "balance", "//Alice", "--genesis", other)...)
		if _, err := os.Stat(filepath.Join(fresh, "chains", n.ChainID, "genesis.json")); !os.IsNotExist(err) {
			t.Errorf("a root that did not verify was remembered: %v", err)
		}
	})

	// The SDK functions behind the commands.
	t.Run("sdk", func(t *testing.T) {
		w, h, err := c.WorkerProved(ctx, identity.Public())
		if err != nil || w.Info != info || !w.Active(h) {
			t.Errorf("WorkerProved: %+v %d %v", w, h, err)
		}
		if _, err := c.Worker(ctx, bob.Public()); !errors.Is(err, api.ErrNotFound) {
			t.Errorf("Worker of an unregistered key: %v", err)
		}
		if gks, err := c.Gatekeepers(ctx); err != nil || len(gks) != 1 || gks[0] != gatekeeper.Public() {
			t.Errorf("Gatekeepers: %v %v", gks, err)
		}
		a, h, err := c.AccountProved(ctx, crypto.MustKeyPairFromURI("//Ferdie").Public())
		if err != nil || a.Balance != node.DevBalance || h <= 0 {
			t.Errorf("AccountProved: %+v %d %v", a, h, err)
		}
	})
}

func mustHash(t *testing.T, s string) [32]byte {
	var h [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("hash %q", s)
	}
	copy(h[:], b)
	return h
}

// withArticle reads call names as a user does: "an upload_contract".
func TestWithArticle(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"upload_contract", "an upload_contract"},
		{"transfer", "a transfer"},
		{"gov_propose", "a gov_propose"},
		{"Unknown", "an Unknown"},
		{"", "a "},
	} {
		if got := withArticle(c.in); got != c.want {
			t.Errorf("withArticle(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// No flag usage holds a backquote: pflag takes backquoted text as the
// flag's value name, so `--contract phala ppha deploy` appeared in help.
func TestFlagUsagesHaveNoBackquotes(t *testing.T) {
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			n++
			if strings.Contains(f.Usage, "`") {
				t.Errorf("%s --%s: usage %q", c.CommandPath(), f.Name, f.Usage)
			}
		})
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRootCmd())
	if n < 50 {
		t.Fatalf("only %d flags seen", n)
	}
}
