package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/devnet"
)

// The contract commands as a user runs them on a devnet: upload says
// when the contract runs, and fails with the reason when its module
// cannot; a command prints the contract's output, and a refused one exits
// non-zero with the contract's message; the receipt of a command sent
// with --no-wait opens for its sender only.
func TestContractCLI(t *testing.T) {
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
	token := filepath.Join(dir, "token.wasm")
	if err := os.WriteFile(token, contracttest.Build(t, filepath.Join("..", "..", "examples", "contracts", "token")), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.wasm")
	if err := os.WriteFile(bad, []byte("\x00asm\x01\x00\x00\x00\xff\xff"), 0o600); err != nil {
		t.Fatal(err)
	}
	alice, bob := crypto.MustKeyPairFromURI("//Alice").Public(), crypto.MustKeyPairFromURI("//Bob").Public()

	// Upload: the contract runs; the output names it.
	r := run(t, "", phala("contract", "upload", "--from", "//Alice", token)...)
	if r.code != 0 || !strings.Contains(r.stdout, "running on 1 worker(s)") || !strings.Contains(r.stderr, "committed at height") {
		t.Fatalf("upload: %s", r)
	}
	id := regexp.MustCompile(`contract (0x[0-9a-f]{64}) running`).FindStringSubmatch(r.stdout)[1]
	uploadTx := regexp.MustCompile(`\(tx ([0-9a-f]{64})\)`).FindStringSubmatch(r.stderr)[1]
	fails(t, []string{"is an upload_contract, not a contract command"}, phala("receipt", uploadTx, "--from", "//Alice")...)
	if out := ok(t, phala("contract", "show", id)...); !strings.Contains(out, "status:     running") {
		t.Errorf("show:\n%s", out)
	}

	// A command the contract executes prints its output; one it refuses
	// exits non-zero with its message.
	if out := ok(t, phala("contract", "command", "--from", "//Alice", id, "mint "+bob.Hex()+" 100")...); !strings.Contains(out, "executed at block") || !strings.Contains(out, "ok") {
		t.Errorf("mint:\n%s", out)
	}
	fails(t, []string{"the contract refused the command", "insufficient balance"},
		phala("contract", "command", "--from", "//Bob", id, "transfer "+alice.Hex()+" 1000")...)

	// --no-wait, then the receipt by transaction hash: only its sender
	// opens it.
	out := ok(t, phala("contract", "command", "--no-wait", "--from", "//Bob", id, "transfer "+alice.Hex()+" 1000")...)
	tx := regexp.MustCompile(`tx ([0-9a-f]{64})`).FindStringSubmatch(out)[1]
	fails(t, []string{"the contract refused the command", "insufficient balance"}, phala("receipt", tx, "--from", "//Bob")...)
	fails(t, []string{"sealed to another account", "only the sender's key"}, phala("receipt", tx, "--from", "//Alice")...)
	var rj map[string]any
	okJSON(t, &rj, phala("contract", "command", "--from", "//Bob", id, "transfer "+alice.Hex()+" 40")...)
	if rj["status"] != "ok" || rj["output"] != "ok" || rj["gas_used"].(float64) <= 0 {
		t.Errorf("receipt JSON: %v", rj)
	}
	if out := ok(t, phala("contract", "query", "--from", "//Bob", id, "balance")...); !strings.HasPrefix(out, "60\n") {
		t.Errorf("balance after the receipts: %s", out)
	}
	// --gas: the receipt shows the gas used against the declared limit;
	// too little runs out; over the chain's max_command_gas is refused.
	okJSON(t, &rj, phala("contract", "command", "--gas", "200000", "--from", "//Bob", id, "transfer "+alice.Hex()+" 1")...)
	if rj["gas_limit"].(float64) != 200000 || rj["gas_used"].(float64) <= 0 || rj["gas_used"].(float64) > 200000 {
		t.Errorf("receipt JSON with --gas: %v", rj)
	}
	fails(t, []string{"the contract refused the command", "out of gas"}, phala("contract", "command", "--gas", "1000", "--from", "//Bob", id, "transfer "+alice.Hex()+" 1")...)
	fails(t, []string{"exceeds the chain's max_command_gas"}, phala("contract", "command", "--gas", "100000001", "--from", "//Bob", id, "transfer "+alice.Hex()+" 1")...)

	// The workers write the contract's state to the chain: show lists
	// the checkpoint once the next cut height passes.
	deadline := time.Now().Add(60 * time.Second)
	// It covers the last command (the transfer of 40) once its height is
	// at least that command's: the state is settled then.
	lastHeight := int64(rj["height"].(float64))
	covers := regexp.MustCompile(`checkpoint: height (\d+)`)
	for out := ""; ; out = ok(t, phala("contract", "show", id)...) {
		if m := covers.FindStringSubmatch(out); m != nil {
			if h, _ := strconv.ParseInt(m[1], 10, 64); h >= lastHeight {
				if !strings.Contains(out, "written every 13 blocks") {
					t.Errorf("contract show does not say the checkpoint interval:\n%s", out)
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint covering height %d in contract show:\n%s", lastHeight, out)
		}
		time.Sleep(500 * time.Millisecond) // a block
	}

	// The chain alone holds the contract's state: its entries hash to the
	// checkpoint's root.
	if out := ok(t, phala("contract", "checkpoints", id)...); !strings.Contains(out, "verified: the entries on chain hash to the root") {
		t.Errorf("contract checkpoints:\n%s", out)
	}
	var cj map[string]any
	okJSON(t, &cj, phala("contract", "checkpoint", id)...) // the old name, an alias
	if cj["verified"] != true || cj["entries"].(float64) < 1 {
		t.Errorf("contract checkpoint --json: %v", cj)
	}

	// Arbitration (docs/availability.md): no dispute yet; a height with
	// no update, and a requester with the fee but not the bond, are
	// refused; the deployer's dispute of the real checkpoint opens with no
	// bond, is shown as of its block, and the devnet's other worker, as
	// arbiter, recomputes the update: the verdict upholds it, after which
	// it cannot be disputed again.
	if out := ok(t, phala("contract", "arbitration", id)...); !strings.Contains(out, "no open dispute") {
		t.Errorf("arbitration before any:\n%s", out)
	}
	cpHeight := strconv.FormatInt(int64(cj["height"].(float64)), 10)
	fails(t, []string{"arbitration request: refused by the node", "no state update of that height can be disputed", "has no update of height 1"},
		phala("contract", "arbitrate", "--from", "//Alice", id, "1")...)
	ok(t, phala("transfer", "--from", "//Alice", "--to", crypto.MustKeyPairFromURI("//Mallory").Public().Address(), "--amount", "1")...)
	fails(t, []string{"arbitration", "bond", "insufficient balance"}, phala("contract", "arbitrate", "--from", "//Mallory", id, cpHeight)...)
	var aj map[string]any
	okJSON(t, &aj, phala("contract", "arbitrate", "--from", "//Alice", "--wait", "--timeout", "3m", id, cpHeight)...)
	arb, _ := aj["arbitration"].(map[string]any)
	verdict, _ := aj["verdict"].(map[string]any)
	if arb == nil || verdict == nil || arb["bond"] != "0" || arb["requester"] != alice.Address() || arb["height"] != cj["height"] ||
		verdict["outcome"] != "upheld" || len(verdict["slashed"].([]any)) != 0 {
		t.Fatalf("arbitrate --wait --json: %v", aj)
	}
	opened := strconv.FormatInt(int64(arb["opened"].(float64)), 10)
	if out := ok(t, phala("contract", "arbitration", "--height", opened, id)...); !strings.Contains(out, "update:     height "+cpHeight) ||
		!strings.Contains(out, "requester:  "+alice.Address()) || !strings.Contains(out, "bond:       none") || !strings.Contains(out, "arbiters:   none assigned yet") {
		t.Errorf("arbitration as of the block that opened it:\n%s", out)
	}
	// The block before the verdict: the arbiter is assigned, its vote
	// (which decided, in the verdict's block) not yet cast.
	before := strconv.FormatInt(int64(verdict["block"].(float64))-1, 10)
	var bj map[string]any
	okJSON(t, &bj, phala("contract", "arbitration", "--height", before, id)...)
	if ba, _ := bj["arbitration"].(map[string]any); ba == nil || len(ba["arbiters"].([]any)) != 1 || len(ba["votes"].([]any)) != 0 || bj["open"] != true {
		t.Errorf("arbitration before the verdict: %v", bj)
	}
	if out := ok(t, phala("contract", "arbitration", id)...); !strings.Contains(out, "no open dispute") {
		t.Errorf("arbitration after the verdict:\n%s", out)
	}
	fails(t, []string{"no state update of that height can be disputed", "already upheld"}, phala("contract", "arbitrate", "--from", "//Bob", id, cpHeight)...)

	// A module that does not validate: upload fails with the reason, and
	// commands to it are refused.
	r = fails(t, []string{"contract failed to start", "invalid module"}, phala("contract", "upload", "--from", "//Alice", bad)...)
	badID := regexp.MustCompile(`contract (0x[0-9a-f]{64})`).FindStringSubmatch(r.stderr)[1]
	fails(t, []string{"failed to start", "invalid module"}, phala("contract", "command", "--from", "//Alice", badID, "x")...)
	if out := ok(t, phala("contract", "show", badID)...); !strings.Contains(out, "status:     failed") || !strings.Contains(out, "invalid module") {
		t.Errorf("show of the failed contract:\n%s", out)
	}

	// The deployer reassigns the token contract's worker: others may not,
	// nor name a worker that does not run it; the removed worker is
	// listed as excluded, no longer among the workers.
	var sj map[string]any
	okJSON(t, &sj, phala("contract", "show", id)...)
	ws := sj["workers"].([]any)
	if len(ws) == 0 {
		t.Fatalf("show --json lists no worker: %v", sj)
	}
	worker := ws[0].(string)
	fails(t, []string{"reassign", "only the contract's deployer"}, phala("contract", "reassign", "--from", "//Bob", id, worker)...)
	fails(t, []string{"reassign", "does not run contract"}, phala("contract", "reassign", "--from", "//Alice", id, bob.Hex())...)
	fails(t, []string{"worker \"nope\" is not an account"}, phala("contract", "reassign", "--from", "//Alice", id, "nope")...)
	if out := ok(t, phala("contract", "reassign", "--from", "//Alice", id, worker)...); !strings.Contains(out, "worker "+worker+" removed from contract "+id) ||
		!regexp.MustCompile(`now runs on [01] worker\(s\); a gatekeeper will assign a replacement`).MatchString(out) {
		t.Errorf("reassign:\n%s", out)
	}
	// show reads the state one block back: it lists the change once
	// that block is proved.
	deadline = time.Now().Add(20 * time.Second)
	for out = ok(t, phala("contract", "show", id)...); !strings.Contains(out, "excluded:   "+worker); out = ok(t, phala("contract", "show", id)...) {
		if time.Now().After(deadline) {
			t.Fatalf("show after the reassign does not list the excluded worker:\n%s", out)
		}
		time.Sleep(500 * time.Millisecond) // a block
	}
	if strings.Contains(out, "worker:     "+worker) || !strings.Contains(out, "checkpoint: height ") {
		t.Errorf("show after the reassign:\n%s", out)
	}
	fails(t, []string{"reassign", "does not run contract"}, phala("contract", "reassign", "--from", "//Alice", id, worker)...)

	// The devnet's other worker replaces it; once the deployer reassigns
	// that one too, no worker may run the contract: a query says the
	// contract has no worker right now (not that it is not deployed).
	deadline = time.Now().Add(30 * time.Second)
	for okJSON(t, &sj, phala("contract", "show", id)...); len(sj["workers"].([]any)) == 0; okJSON(t, &sj, phala("contract", "show", id)...) {
		if time.Now().After(deadline) {
			t.Fatalf("no replacement worker after the reassign: %v", sj)
		}
		time.Sleep(500 * time.Millisecond) // a block
	}
	ok(t, phala("contract", "reassign", "--from", "//Alice", id, sj["workers"].([]any)[0].(string))...)
	deadline = time.Now().Add(20 * time.Second)
	for out = ok(t, phala("contract", "show", id)...); !strings.Contains(out, "workers:    none right now"); out = ok(t, phala("contract", "show", id)...) {
		if time.Now().After(deadline) {
			t.Fatalf("show after reassigning both workers:\n%s", out)
		}
		time.Sleep(500 * time.Millisecond) // a block
	}
	fails(t, []string{"the contract has no worker right now", "of its key era 0 assign a replacement"}, phala("contract", "query", "--from", "//Bob", id, "balance")...)
}
