package devnet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/testnet"
)

// A devnet running the token migrates to a second build of pRuntime (the
// same source linked with another build id: another measurement) while
// transfers keep coming: governance approves the new build; a new-build
// gatekeeper and worker join (real processes, each with its pherry); the
// new gatekeeper is elected and makes a fresh key set; the token is
// handed to the new worker, which recovers it from the chain; the chain
// revokes the old build, whose pRuntimes retire. Every transfer sent
// during the migration counts: the balances are exact on the new worker.
func TestMigrationToSecondBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("whole devnet with processes")
	}
	start := time.Now()
	binDir, bin2Dir := t.TempDir(), t.TempDir()
	for _, b := range []struct{ dir, ldflags string }{{binDir, ""}, {bin2Dir, "-buildid=phala-migration-test-build-2"}} {
		args := []string{"build", "-o", b.dir + string(filepath.Separator)}
		if b.ldflags != "" {
			args = append(args, "-ldflags="+b.ldflags)
		}
		if out, err := exec.Command("go", append(args, "../../cmd/pruntime", "../../cmd/pherry")...).CombinedOutput(); err != nil {
			t.Fatalf("build pruntime and pherry: %v\n%s", err, out)
		}
	}
	prBin, phBin, prBin2 := filepath.Join(binDir, "pruntime"), filepath.Join(binDir, "pherry"), filepath.Join(bin2Dir, "pruntime")
	m1, m2 := fileHash(t, prBin), fileHash(t, prBin2)
	if m1 == m2 {
		t.Fatal("the second build has the first one's measurement")
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var home string
	d, c := startTestDevnet(t, ctx, func(cfg *Config) {
		cfg.Workers = 1
		cfg.PRuntimeBinary, cfg.PherryBinary = prBin, phBin
		cfg.Log = log
		cfg.EditGenesis = func(g *api.GenesisState) {
			g.Params.EraLength = 40
			g.Params.NGatekeepers = 1
			g.Params.DkgTimeout = 12
		}
		home = cfg.Home
	})
	t.Logf("devnet ready after %s", time.Since(start).Round(time.Millisecond))

	alice, bob, ferdie := crypto.MustKeyPairFromURI("//Alice"), crypto.MustKeyPairFromURI("//Bob"), crypto.MustKeyPairFromURI("//Ferdie")
	as, bs := c.NewSigner(alice), c.NewSigner(bob)
	code := contracttest.Build(t, filepath.Join("..", "..", "examples", "contracts", "token"))
	upload, _, err := as.UploadWith(ctx, code, client.UploadOptions{Replicas: 1, CheckpointInterval: 4})
	if err != nil {
		t.Fatal(err)
	}
	rec := mustDeployed(t, ctx, c, upload, 1)
	oldGK, oldWorker := d.Runtimes[0], d.Runtimes[1]
	if rec.Workers[0] != identity(t, ctx, oldWorker) {
		t.Fatalf("the token runs on %s, not on worker1", rec.Workers[0].Short())
	}
	var mu sync.Mutex
	balances := map[*crypto.KeyPair]uint64{}
	if _, err := as.Command(ctx, rec, []byte(fmt.Sprintf("mint %s %d", bob.Public().Hex(), 1_000_000))); err != nil {
		t.Fatal(err)
	}
	balances[bob] = 1_000_000

	// Governance approves the second build.
	if _, err := as.Submit(ctx, &api.GovPropose{Action: api.Action{Kind: api.ActionMigrateRuntime, Measurement: m2[:]}}); err != nil {
		t.Fatal(err)
	}
	pv, err := c.Prove(ctx, api.QueryNextMotion, nil)
	if err != nil || len(pv.Value) != 8 {
		t.Fatalf("next motion: %v", err)
	}
	if _, err := bs.Submit(ctx, &api.GovVote{Motion: uint64(pv.Value[7]) - 1, Aye: true}); err != nil {
		t.Fatal(err)
	}
	testnet.WaitFor(t, time.Minute, "the migration running", func() (bool, error) {
		pv, err := c.Prove(ctx, api.QueryMigration, nil)
		return err == nil && pv.Value != nil, nil
	})

	// Load: Bob pays Ferdie, one transfer after another, sealed to the
	// contract's current ECDH key (re-read before each, as a client does),
	// until the migration is done.
	stop := make(chan struct{})
	loadDone := make(chan int)
	go func() {
		n := 0
		defer func() { loadDone <- n }()
		for amount := uint64(1); ; amount++ {
			select {
			case <-stop:
				return
			default:
			}
			r, err := c.ContractByUpload(ctx, upload)
			if err != nil {
				t.Errorf("read the record: %v", err)
				return
			}
			if _, err := bs.Command(ctx, r, []byte(fmt.Sprintf("transfer %s %d", ferdie.Public().Hex(), amount))); err != nil {
				t.Errorf("transfer during the migration: %v", err)
				return
			}
			mu.Lock()
			balances[bob] -= amount
			balances[ferdie] += amount
			mu.Unlock()
			n++
		}
	}()

	// The new build: a gatekeeper candidate and a worker, each with its
	// pherry (which registers and stakes it).
	var fresh []*Runtime
	for i, op := range []string{"//Eve", "//Ferdie"} {
		name := []string{"gatekeeper2", "worker2"}[i]
		rt, err := startProcess(prBin2, name, filepath.Join(home, name), d.GenesisFile(), 0, 0, "debug")
		if err != nil {
			t.Fatal(err)
		}
		d.Runtimes = append(d.Runtimes, rt) // Stop stops it
		if err := rt.startPherry(phBin, d.RPC(), op, workerStake(d.Genesis()), log); err != nil {
			t.Fatal(err)
		}
		fresh = append(fresh, rt)
	}
	gk2, w2 := identity(t, ctx, fresh[0]), identity(t, ctx, fresh[1])
	testnet.WaitFor(t, time.Minute, "the new gatekeeper registered", func() (bool, error) {
		pv, err := c.Prove(ctx, api.QueryWorker, gk2[:])
		return err == nil && pv.Value != nil, nil
	})
	// Eve's pherry signs with her key too: a stale nonce is retried.
	eve := c.NewSigner(crypto.MustKeyPairFromURI("//Eve"))
	testnet.WaitFor(t, time.Minute, "the candidacy of the new gatekeeper", func() (bool, error) {
		if _, err := eve.Submit(ctx, &api.GatekeeperCandidacy{Node: gk2, On: true}); err != nil {
			t.Logf("candidacy: %v", err)
			eve.Resync()
			return false, nil
		}
		return true, nil
	})

	var done *api.RuntimeMigrated
	testnet.WaitFor(t, 3*time.Minute, "the migration completed", func() (bool, error) {
		pv, err := c.Prove(ctx, api.QueryLastMigration, nil)
		if err != nil || pv.Value == nil {
			return false, nil
		}
		done, err = api.DecodeRuntimeMigrated(pv.Value)
		return err == nil, err
	})
	t.Logf("migration completed at height %d, %d blocks after its start", done.Height, done.Height-done.Start)
	if st, err := c.KeyStatus(ctx); err != nil || st.Migration != nil || st.LastMigration == nil || st.LastMigration.Height != done.Height {
		t.Fatalf("key status after the migration: %+v (%v)", st, err)
	}
	// The load goes on through two more MasterKey rotations (a fresh DKG
	// each era) after the completion.
	servingEra := func() uint64 {
		pv, err := c.Prove(ctx, api.QueryKeyEra, nil)
		if err != nil {
			return 0
		}
		era, _ := binary.Uvarint(pv.Value)
		return era
	}
	atDone := servingEra()
	var after int64
	testnet.WaitFor(t, 2*time.Minute, "two key rotations after the completion", func() (bool, error) {
		after, _ = c.Height(ctx)
		return servingEra() >= atDone+2, nil
	})
	close(stop)
	transfers := <-loadDone
	if t.Failed() {
		t.FailNow()
	}
	if transfers < 10 {
		t.Fatalf("only %d transfers ran during the migration", transfers)
	}
	t.Logf("%d transfers sent during the migration and the rotations after it (up to height %d, key era %d)", transfers, after, servingEra())

	rec, err = c.ContractByUpload(ctx, upload)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.Workers, []crypto.PublicKey{w2}) {
		t.Fatalf("the token runs on %v, want the new worker %s only", rec.Workers, w2.Short())
	}
	if v, err := c.Prove(ctx, api.QueryGatekeepers, nil); err != nil {
		t.Fatal(err)
	} else if gks, _ := api.DecodeKeys(v.Value); !slices.Equal(gks, []crypto.PublicKey{gk2}) {
		t.Fatalf("gatekeepers %v, want the new one %s", gks, gk2.Short())
	}
	mu.Lock()
	want := map[*crypto.KeyPair]uint64{bob: balances[bob], ferdie: balances[ferdie]}
	mu.Unlock()
	last := ""
	testnet.WaitFor(t, time.Minute, "exact balances on the new build", func() (bool, error) {
		for k, v := range want {
			out, _, err := c.QueryContract(ctx, k, rec, []byte("balance"))
			if err != nil || string(out) != strconv.FormatUint(v, 10) {
				if now := fmt.Sprintf("%s: %q (%v), want %d", k.Public().Short(), out, err, v); now != last {
					t.Log(now)
					last = now
				}
				return false, nil
			}
		}
		return true, nil
	})
	// The old build's pRuntimes retired, and say so.
	for _, rt := range []*Runtime{oldGK, oldWorker} {
		info, err := rt.API.Info(ctx)
		if err != nil || info.RetiredAt != done.Height || len(info.Contracts) != 0 || info.MasterKey != "" {
			t.Fatalf("%s after the migration: retired at %d (want %d), %d contracts, master key %q (%v)", rt.Name, info.RetiredAt, done.Height, len(info.Contracts), info.MasterKey, err)
		}
		if b, _ := os.ReadFile(rt.Log); !bytes.Contains(b, []byte("build was retired by the chain's runtime migration")) {
			t.Fatalf("%s's log does not say it retired", rt.Name)
		}
		// Its pherry, renewing the registration at an era's start, says
		// so too (once, not at every block).
		if b, _ := os.ReadFile(rt.PherryLog); bytes.Count(b, []byte("build was retired by the chain's runtime migration")) != 1 {
			t.Fatalf("%s's pherry log says %d times that its pRuntime retired, want once", rt.Name, bytes.Count(b, []byte("build was retired by the chain's runtime migration")))
		}
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// fileHash is the SHA-256 of a file: a sim pRuntime's measurement.
func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}
