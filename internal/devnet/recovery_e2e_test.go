package devnet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/client/pruntime"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/gatekeeper"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/platform"
	"github.com/phalago/phala/internal/enclave/sealing"
	"github.com/phalago/phala/internal/enclave/threshold"
	"github.com/phalago/phala/internal/testnet"
)

// TestContractSurvivesLosingEveryWorker, with pRuntimes and pherries as
// processes (docs/availability.md, "Recovery" and "Reassignment"): the
// token, deployed on one worker with a checkpoint every 4 blocks, runs
// commands and checkpoints them on chain; the worker's pRuntime and
// pherry are killed (SIGKILL) and its data directory deleted; the
// deployer reassigns the dead worker (contract_reassign), which leaves
// the contract without worker (queries refused); commands sent meanwhile
// wait in the chain; a fresh worker (a new pRuntime, a new identity,
// registered and staked by its own pherry) starts; the gatekeeper grants
// it the contract, its pherry brings the checkpoint's entries and the
// blocks since, and the fresh worker runs it: a client, finding the
// worker from the contract record, gets every balance the commands made
// (those the dead worker ran and those sent after its death), a new
// command runs, and the fresh worker's state updates are accepted by the
// chain, also after a kill -9 of its pRuntime. The control API refuses a
// second recovery (409) and a malformed one (400); the public API has no
// /recover. pherry logs the recovery ("contract recovered"), and no log
// of any part nor the chain's stored data holds the contract's keys, the
// master key or a plaintext balance or amount.
func TestContractSurvivesLosingEveryWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("whole devnet with processes")
	}
	start := time.Now()
	binDir := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), "../../cmd/pruntime", "../../cmd/pherry").CombinedOutput(); err != nil {
		t.Fatalf("build pruntime and pherry: %v\n%s", err, out)
	}
	prBin, phBin := filepath.Join(binDir, "pruntime"), filepath.Join(binDir, "pherry")
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var home string
	d, c := startTestDevnet(t, ctx, func(cfg *Config) {
		cfg.Workers = 1
		cfg.PRuntimeBinary, cfg.PherryBinary = prBin, phBin
		cfg.Log = log
		home = cfg.Home
	})
	t.Logf("devnet ready after %s", time.Since(start).Round(time.Millisecond))

	alice, bob, ferdie := crypto.MustKeyPairFromURI("//Alice"), crypto.MustKeyPairFromURI("//Bob"), crypto.MustKeyPairFromURI("//Ferdie")
	as, bs := c.NewSigner(alice), c.NewSigner(bob)
	code := contracttest.Build(t, filepath.Join("..", "..", "examples", "contracts", "token"))
	const interval = 4
	upload, _, err := as.UploadWith(ctx, code, client.UploadOptions{Replicas: 1, CheckpointInterval: interval})
	if err != nil {
		t.Fatal(err)
	}
	rec := mustDeployed(t, ctx, c, upload, 1)
	dead := d.Runtimes[1]
	deadID := identity(t, ctx, dead)
	if rec.Workers[0] != deadID {
		t.Fatalf("the contract runs on %s, not on worker1 (%s)", rec.Workers[0].Short(), deadID.Short())
	}

	// Distinctive amounts, so that the scans below can look for them.
	const minted = 83_170_000_000
	balances := map[*crypto.KeyPair]uint64{}
	var amounts []uint64
	var last int64 // height of the last command
	mint := func(to *crypto.KeyPair, n uint64) {
		t.Helper()
		res, err := as.Command(ctx, rec, []byte(fmt.Sprintf("mint %s %d", to.Public().Hex(), n)))
		if err != nil {
			t.Fatal(err)
		}
		balances[to] += n
		amounts = append(amounts, n)
		last = res.Height
	}
	transfer := func(s *client.Signer, from, to *crypto.KeyPair, n uint64) {
		t.Helper()
		res, err := s.Command(ctx, rec, []byte(fmt.Sprintf("transfer %s %d", to.Public().Hex(), n)))
		if err != nil {
			t.Fatal(err)
		}
		balances[from] -= n
		balances[to] += n
		amounts = append(amounts, n)
		last = res.Height
	}
	// Every balance answered off-chain by the contract's worker, found by
	// the client from the contract's current record, as a user does.
	waitBalances := func(what string, timeout time.Duration) {
		t.Helper()
		lastErr := ""
		testnet.WaitFor(t, timeout, what, func() (bool, error) {
			r, err := c.ContractByUpload(ctx, upload)
			if err != nil {
				return false, nil
			}
			for k, v := range balances {
				out, _, err := c.QueryContract(ctx, k, r, []byte("balance"))
				if err != nil || string(out) != strconv.FormatUint(v, 10) {
					if err != nil && err.Error() != lastErr {
						lastErr = err.Error()
						t.Logf("%s: %v", what, err)
					}
					return false, nil
				}
			}
			return true, nil
		})
	}

	// A checkpoint on chain covering every command so far, whose root is
	// the state the live worker holds (nothing after it changed).
	waitCheckpoint := func(what string, rt *Runtime) {
		t.Helper()
		testnet.WaitFor(t, time.Minute, what, func() (bool, error) {
			cp, _, err := c.Checkpoint(ctx, rec.Identity)
			if err != nil || cp == nil || cp.Height < last {
				return false, nil
			}
			info, err := rt.API.Info(ctx)
			return err == nil && hex.EncodeToString(cp.Root[:]) == info.Contracts[rec.Identity.Hex()], nil
		})
	}
	// Commands the dead worker runs and checkpoints on chain.
	mint(bob, minted)
	mint(ferdie, minted+1)
	transfer(bs, bob, alice, 4_417_001_337)
	transfer(bs, bob, ferdie, 4_417_002_337)
	testnet.WaitFor(t, time.Minute, "a checkpoint on chain covering the first commands", func() (bool, error) {
		cp, _, err := c.Checkpoint(ctx, rec.Identity)
		return err == nil && cp != nil && cp.Height >= last && cp.Entries > 0, nil
	})
	// More that it runs (checkpointed or not when it dies).
	transfer(bs, bob, alice, 4_417_003_337)
	waitBalances("balances on the worker before its loss", time.Minute)

	// The worker is lost for good: both processes killed, its data gone.
	for _, p := range []struct {
		cmd  *exec.Cmd
		done chan struct{}
	}{{dead.pherry, dead.pherryDone}, {dead.cmd, dead.exited}} {
		dead.stopping.Store(true)
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-p.done
	}
	deadLogs := readFiles(t, dead.Log, dead.PherryLog)
	if err := os.RemoveAll(dead.Dir); err != nil {
		t.Fatal(err)
	}
	// The deployer reassigns the dead worker: the contract has no worker.
	reassigned := time.Now()
	if _, err := as.Submit(ctx, &api.ContractReassign{Contract: rec.Identity, Worker: deadID}); err != nil {
		t.Fatalf("reassign: %v", err)
	}
	testnet.WaitFor(t, 30*time.Second, "the record without worker, the dead one excluded", func() (bool, error) {
		r, err := c.ContractByUpload(ctx, upload)
		if err != nil {
			return false, nil
		}
		rec = r
		return len(r.Workers) == 0 && slices.Equal(r.Excluded, []crypto.PublicKey{deadID}), nil
	})
	if _, _, err := c.QueryContract(ctx, bob, rec, []byte("balance")); err == nil {
		t.Fatal("a query was answered while no worker runs the contract")
	} else {
		t.Logf("query with no worker: %v", err)
	}
	// Commands sent while no worker runs the contract: only the chain has
	// them, after its last checkpoint.
	transfer(bs, bob, ferdie, 4_417_004_337)
	mint(alice, 52_910_053_317)
	if cp, _, err := c.Checkpoint(ctx, rec.Identity); err != nil || cp == nil || cp.Height >= last {
		t.Fatalf("checkpoint %+v (%v) covers commands no worker ran", cp, err)
	}

	// A fresh worker: a new pRuntime (new identity) and its pherry, which
	// registers and stakes it; the gatekeeper grants it the contract.
	fresh, err := startProcess(prBin, "worker2", filepath.Join(home, "worker2"), d.GenesisFile(), 0, 0, "debug")
	if err != nil {
		t.Fatal(err)
	}
	d.Runtimes = append(d.Runtimes, fresh) // Stop stops it
	if err := fresh.startPherry(phBin, d.RPC(), "//Eve", workerStake(d.Genesis()), log); err != nil {
		t.Fatal(err)
	}
	freshID := identity(t, ctx, fresh)
	if freshID == deadID {
		t.Fatal("the fresh pRuntime has the dead one's identity")
	}
	testnet.WaitFor(t, time.Minute, "the fresh worker assigned the contract", func() (bool, error) {
		r, err := c.ContractByUpload(ctx, upload)
		if err != nil {
			return false, nil
		}
		rec = r
		return slices.Equal(r.Workers, []crypto.PublicKey{freshID}), nil
	})
	testnet.WaitFor(t, time.Minute, "the fresh worker running the contract", func() (bool, error) {
		info, err := fresh.API.Info(ctx)
		return err == nil && len(info.Recovering) == 0 && info.Contracts[rec.Identity.Hex()] != "", nil
	})
	waitBalances("every balance on the fresh worker", time.Minute)
	t.Logf("contract recovered and answering %s after the reassignment (the fresh worker started after it)", time.Since(reassigned).Round(time.Millisecond))

	// The control API refuses a second recovery of a running contract
	// (409) and a malformed request (400); the public API has no /recover.
	var perr *pruntime.Error
	if _, err := fresh.API.Recover(ctx, &api.RecoverRequest{Contract: rec.Identity}); !errors.As(err, &perr) || perr.Status != http.StatusConflict {
		t.Fatalf("recovering a running contract again: %v, want 409", err)
	}
	for _, tc := range []struct {
		base string
		body []byte
		want int
	}{
		{fresh.ControlURL, []byte{1, 2, 3}, http.StatusBadRequest},
		{fresh.URL, (&api.RecoverRequest{Contract: rec.Identity}).Encode(), http.StatusNotFound},
	} {
		res, err := http.Post(tc.base+"/recover", "application/octet-stream", bytes.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Fatalf("POST %s/recover: %s, want %d", tc.base, res.Status, tc.want)
		}
	}
	if r, _ := c.ContractByUpload(ctx, upload); r == nil || !slices.Equal(r.Workers, []crypto.PublicKey{freshID}) {
		t.Fatalf("record after the refused requests: %+v", r)
	}

	// It runs new commands, and the chain accepts its state updates (the
	// next links of the dead worker's checkpoint chain).
	transfer(bs, bob, alice, 4_417_006_337)
	waitBalances("balances after a new command", time.Minute)
	waitCheckpoint("the fresh worker's checkpoint on chain", fresh)
	// The recovered contract is the fresh worker's own: it survives a
	// crash of its pRuntime (kill -9, restarted on the same data) and runs
	// the next command, its state update accepted by the chain. (Queries
	// are not asked here: after a crash a worker refuses, by design, those
	// valid no later than its last answers, a minute at most.)
	if err := fresh.Kill(); err != nil {
		t.Fatal(err)
	}
	<-fresh.exited
	if err := fresh.Start(); err != nil {
		t.Fatal(err)
	}
	if info, err := fresh.API.Info(ctx); err != nil || info.Contracts[rec.Identity.Hex()] == "" || len(info.Recovering) != 0 {
		t.Fatalf("the fresh worker after its restart: %+v (%v)", info, err)
	}
	transfer(bs, bob, ferdie, 4_417_007_337)
	waitCheckpoint("the restarted worker's checkpoint on chain", fresh)

	// pherry says what it did; pRuntime too.
	freshLogs := readFiles(t, fresh.Log, fresh.PherryLog)
	pherryLog, _ := os.ReadFile(fresh.PherryLog)
	m := regexp.MustCompile(`msg="contract recovered" .*contract=(\S+) checkpoint_height=(\d+) entries=(\d+) blocks_replayed=(\d+)`).FindSubmatch(pherryLog)
	if m == nil || string(m[1]) != rec.Identity.Short() || string(m[3]) == "0" || string(m[4]) == "0" {
		t.Fatalf("the fresh pherry's log does not tell the recovery (want its contract, entries and blocks replayed):\n%s", pherryLog)
	}
	t.Logf("pherry: %s", m[0])
	if prLog, _ := os.ReadFile(fresh.Log); !bytes.Contains(prLog, []byte("contract recovered from its on-chain checkpoint")) {
		t.Fatalf("the fresh pRuntime's log does not tell the recovery:\n%s", prLog)
	}

	// No log holds key material or plaintext state: the contract's keys
	// (derived here from the master key, unsealed from the gatekeeper's
	// directory with the sim platform of the pRuntime build), the master
	// key, the balances and amounts.
	ck := contractKeys(t, filepath.Join(home, "gatekeeper"), prBin, alice.Public(), sha256.Sum256(code))
	if ck.Identity.Public() != rec.Identity {
		t.Fatal("the keys derived here are not the contract's")
	}
	var needles [][]byte
	for _, secret := range [][]byte{ck.Seed[:], ck.Storage[:], ck.master[:]} {
		needles = append(needles, secret, []byte(hex.EncodeToString(secret)), []byte(strings.ToUpper(hex.EncodeToString(secret))))
	}
	for _, a := range amounts {
		needles = append(needles, []byte(strconv.FormatUint(a, 10)))
	}
	for _, b := range balances {
		needles = append(needles, []byte(strconv.FormatUint(b, 10)), binary.BigEndian.AppendUint64(nil, b), binary.LittleEndian.AppendUint64(nil, b))
	}
	needles = append(needles, []byte("transfer 0x"), []byte("mint 0x"))
	all := map[string][]byte{"devnet log (node, debug)": logs.Bytes()}
	for k, v := range deadLogs {
		all[k] = v
	}
	for k, v := range freshLogs {
		all[k] = v
	}
	for _, rt := range d.Runtimes[:1] {
		for k, v := range readFiles(t, rt.Log, rt.PherryLog) {
			all[k] = v
		}
	}
	// The scan can see keys as the logs write them: the contract's public
	// identity is there, in hex.
	if !bytes.Contains(all[fresh.PherryLog], []byte(rec.Identity.Hex()[2:])) {
		t.Fatalf("the fresh pherry's log never names the contract %s: the scan would miss hex keys", rec.Identity.Hex())
	}
	// Nor does the chain's stored data (blocks, state with the on-chain
	// checkpoint's encrypted entries).
	filepath.WalkDir(filepath.Join(home, "nodes"), func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if b, err := os.ReadFile(p); err == nil {
				all[p] = b
			}
		}
		return nil
	})
	for what, data := range all {
		for _, n := range needles {
			if bytes.Contains(data, n) {
				t.Errorf("%s contains key material or plaintext %q", what, n)
			}
		}
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// identity is a process pRuntime's identity key, from its info.
func identity(t *testing.T, ctx context.Context, rt *Runtime) crypto.PublicKey {
	t.Helper()
	info, err := rt.API.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id, err := crypto.ParsePublicKey(info.IdentityKey)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// readFiles reads non-empty log files, by path.
func readFiles(t *testing.T, paths ...string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			t.Fatalf("log %s missing or empty (%v)", p, err)
		}
		out[p] = b
	}
	return out
}

type testContractKeys struct {
	*keys.ContractKeys
	master [crypto.SeedSize]byte
}

// contractKeys derives the keys of deployer's first upload of codeHash
// from the genesis master key share sealed in the gatekeeper's directory gkDir by the
// pRuntime binary prBin (the sim platform: its sealing key is a file).
func contractKeys(t *testing.T, gkDir, prBin string, deployer crypto.PublicKey, codeHash [32]byte) testContractKeys {
	t.Helper()
	bin, err := os.ReadFile(prBin)
	if err != nil {
		t.Fatal(err)
	}
	p, err := platform.NewSim(gkDir, bin, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var path string
	filepath.WalkDir(gkDir, func(f string, e fs.DirEntry, err error) error {
		if err == nil && e.Name() == keys.MasterFile {
			path = f
		}
		return nil
	})
	if path == "" {
		t.Fatalf("no %s under %s", keys.MasterFile, gkDir)
	}
	b, err := sealing.ReadBinding(path)
	if err != nil {
		t.Fatal(err)
	}
	shares, err := gatekeeper.LoadShares(sealing.NewSealer(p, b), filepath.Dir(path))
	if err != nil || shares[0] == nil {
		t.Fatalf("genesis master key share: %v", err)
	}
	// The genesis key set has threshold 1: its share is the MasterKey.
	upload := api.UploadID(deployer, codeHash, 0)
	seed, err := threshold.ContractSeed(threshold.Suite.Point().Mul(shares[0], threshold.ContractPoint(upload, 0, 0)), upload, 0)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := keys.ContractKeysFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	master, _ := shares[0].MarshalBinary()
	return testContractKeys{ContractKeys: ck, master: [crypto.SeedSize]byte(master)}
}
