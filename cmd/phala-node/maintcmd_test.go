package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"

	"github.com/phalago/phala/internal/chain/store"
)

// runningNode is a `phala-node start` process.
type runningNode struct {
	cmd *exec.Cmd
	out *strings.Builder
	rpc string
}

func startNode(t *testing.T, bin, home, rpc string) *runningNode {
	t.Helper()
	n := &runningNode{cmd: exec.Command(bin, "start", "--home", home, "--log-level", "warn"), out: &strings.Builder{}, rpc: rpc}
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.cmd.Process.Kill() })
	return n
}

// get decodes the "result" of an RPC GET, or returns an error.
func (n *runningNode) get(path string, result any) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+n.rpc+path, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var body struct{ Result json.RawMessage }
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return err
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("%s: status %d", path, res.StatusCode)
	}
	return json.Unmarshal(body.Result, result)
}

// waitHeight waits until the node has committed at least height.
func (n *runningNode) waitHeight(t *testing.T, height int64) int64 {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var st struct {
			SyncInfo struct {
				LatestBlockHeight string `json:"latest_block_height"`
			} `json:"sync_info"`
		}
		if err := n.get("/status", &st); err == nil {
			if h, _ := strconv.ParseInt(st.SyncInfo.LatestBlockHeight, 10, 64); h >= height {
				return h
			}
		}
		if n.cmd.ProcessState != nil || time.Now().After(deadline) {
			t.Fatalf("node did not reach height %d\n%s", height, n.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *runningNode) stop(t *testing.T) {
	t.Helper()
	n.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- n.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGINT: %v\n%s", err, n.out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("node did not stop\n%s", n.out.String())
	}
}

// appState returns the application's committed height and the app hash of
// height h (nil if h is 0), read from the store under the stopped home.
func appState(t *testing.T, home string, h int64) (int64, []byte) {
	t.Helper()
	st, err := store.Open(filepath.Join(home, "data", "app"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if h == 0 {
		return st.Height(), nil
	}
	hash, err := st.AppHash(h)
	if err != nil {
		t.Fatal(err)
	}
	return st.Height(), hash
}

// The CometBFT maintenance commands on a home made by `phala-node init`
// whose node produced blocks: the ids printed match the key files, rollback
// takes both CometBFT and the app back one height and the node then
// re-executes the block to the same app hash and continues, and
// unsafe-reset-all keeps the keys and genesis so the node starts a new chain
// from height 1. Each refuses a missing home and a running node.
func testMaintenance(t *testing.T, bin string) {
	run := func(args ...string) (string, error) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err
	}
	for _, cmd := range []string{"show-node-id", "show-validator", "unsafe-reset-all", "rollback"} {
		out, err := run(cmd, "--help")
		if err != nil || !strings.Contains(out, "--home") {
			t.Errorf("%s --help: %v\n%s", cmd, err, out)
		}
		missing := filepath.Join(t.TempDir(), "missing")
		out, err = run(cmd, "--home", missing)
		if err == nil || !strings.Contains(out, "phala-node init --home "+missing) {
			t.Errorf("%s on a missing home: %v\n%s", cmd, err, out)
		}
		if _, err := os.Stat(missing); !os.IsNotExist(err) {
			t.Errorf("%s created the missing home %s", cmd, missing)
		}
	}
	for cmd, want := range map[string]string{"unsafe-reset-all": "kept:", "rollback": "--hard"} {
		if out, _ := run(cmd, "--help"); !strings.Contains(out, want) || !strings.Contains(out, "deleted:") {
			t.Errorf("%s --help does not say what is deleted and kept:\n%s", cmd, out)
		}
	}

	home := t.TempDir()
	rpc := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	if out, err := run("init", "--home", home, "--rpc", rpc, "--p2p", fmt.Sprintf("127.0.0.1:%d", freePort(t))); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	keyFiles := []string{"config/node_key.json", "config/priv_validator_key.json", "config/genesis.json", "config/config.toml"}
	keys := map[string][]byte{}
	for _, f := range keyFiles {
		keys[f] = readFile(t, filepath.Join(home, f))
	}

	nk, err := p2p.LoadNodeKey(filepath.Join(home, "config", "node_key.json"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := run("show-node-id", "--home", home); err != nil || strings.TrimSpace(out) != string(nk.ID()) {
		t.Errorf("show-node-id = %q, %v; want %s", out, err, nk.ID())
	}
	pv := privval.LoadFilePV(filepath.Join(home, "config", "priv_validator_key.json"), filepath.Join(home, "data", "priv_validator_state.json"))
	wantPub, err := cmtjson.Marshal(pv.Key.PubKey)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := run("show-validator", "--home", home); err != nil || strings.TrimSpace(out) != string(wantPub) || !strings.Contains(out, `"tendermint/PubKeyEd25519"`) {
		t.Errorf("show-validator = %q, %v; want %s", out, err, wantPub)
	}
	if out, err := run("rollback", "--home", home); err == nil || !strings.Contains(out, "no blocks") {
		t.Errorf("rollback before any block: %v\n%s", err, out)
	}

	n := startNode(t, bin, home, rpc)
	n.waitHeight(t, 3)
	for _, cmd := range []string{"rollback", "unsafe-reset-all"} {
		if out, err := run(cmd, "--home", home); err == nil || !strings.Contains(out, "stop it first") {
			t.Errorf("%s under a running node: %v\n%s", cmd, err, out)
		}
	}
	n.stop(t)

	// rollback: CometBFT and the app both go back one height.
	top, topHash := appState(t, home, 0)
	_, topHash = appState(t, home, top)
	_, prevHash := appState(t, home, top-1)
	out, err := run("rollback", "--home", home)
	if want := fmt.Sprintf("Rolled back state to height %d and hash %X", top-1, prevHash); err != nil || !strings.Contains(out, want) {
		t.Fatalf("rollback: %v\n%s\nwant %q", err, out, want)
	}
	if h, _ := appState(t, home, 0); h != top-1 {
		t.Fatalf("app height after rollback = %d, want %d", h, top-1)
	}
	n = startNode(t, bin, home, rpc)
	n.waitHeight(t, top+2)
	n.stop(t)
	if _, again := appState(t, home, top); !bytes.Equal(again, topHash) {
		t.Errorf("block %d re-executed after rollback to app hash %X, first %X", top, again, topHash)
	}

	// unsafe-reset-all: data gone, keys kept, a new chain from height 1.
	resetAt := time.Now()
	if out, err := run("unsafe-reset-all", "--home", home); err != nil {
		t.Fatalf("unsafe-reset-all: %v\n%s", err, out)
	}
	for _, f := range keyFiles {
		if !bytes.Equal(readFile(t, filepath.Join(home, f)), keys[f]) {
			t.Errorf("unsafe-reset-all changed %s", f)
		}
	}
	for _, gone := range []string{"data/app", "data/blockstore.db", "data/state.db", "data/cs.wal"} {
		if _, err := os.Stat(filepath.Join(home, gone)); !os.IsNotExist(err) {
			t.Errorf("%s survives unsafe-reset-all: %v", gone, err)
		}
	}
	var pvState struct{ Height string }
	if err := json.Unmarshal(readFile(t, filepath.Join(home, "data", "priv_validator_state.json")), &pvState); err != nil || pvState.Height != "0" {
		t.Errorf("priv_validator_state after reset: %+v, %v", pvState, err)
	}
	n = startNode(t, bin, home, rpc)
	n.waitHeight(t, 2)
	var blk struct {
		Block struct {
			Header struct {
				Time time.Time `json:"time"`
			} `json:"header"`
		} `json:"block"`
	}
	// Block 1 carries the genesis time; block 2 the time its block-1
	// commit was signed, which is after the reset only on a new chain.
	if err := n.get("/block?height=2", &blk); err != nil {
		t.Fatal(err)
	}
	if !blk.Block.Header.Time.After(resetAt) {
		t.Errorf("block 2 after reset is from %v, before the reset at %v: the old chain survived", blk.Block.Header.Time, resetAt)
	}
	n.stop(t)
	if out, err := run("show-node-id", "--home", home); err != nil || strings.TrimSpace(out) != string(nk.ID()) {
		t.Errorf("show-node-id after reset = %q, %v", out, err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
