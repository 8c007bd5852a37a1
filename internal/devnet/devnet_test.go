package devnet

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/client/pruntime"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/testnet"
)

// The spine in one process: devnet up, the token deployed by Alice,
// encrypted commands in chain order on both replicas, private balances
// answered off-chain to their owners only; then a restart resumes.
func TestDevnetToken(t *testing.T) {
	if testing.Short() {
		t.Skip("whole devnet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d, c := startTestDevnet(t, ctx, func(cfg *Config) { cfg.Log = testnet.TestLogger(t, 0) })
	alice, bob := crypto.MustKeyPairFromURI("//Alice"), crypto.MustKeyPairFromURI("//Bob")
	as, bs := c.NewSigner(alice), c.NewSigner(bob)
	code := contracttest.Build(t, filepath.Join("..", "..", "examples", "contracts", "token"))
	upload, _, err := as.Upload(ctx, code, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.WaitContract(ctx, upload)
	if err != nil {
		t.Fatal(err)
	}
	testnet.WaitFor(t, time.Minute, "both replicas", func() (bool, error) {
		r, err := c.ContractByUpload(ctx, upload)
		if err != nil {
			return false, nil
		}
		rec = r
		return len(r.Workers) == 2, nil
	})
	// The devnet runs the stake rule: its pherries staked the workers.
	if min := c.Params().MinWorkerStake; min != api.DefaultParams().MinWorkerStake {
		t.Fatalf("devnet min_worker_stake %d", min)
	}
	for _, w := range rec.Workers {
		if ns, _, err := c.NodeStake(ctx, w); err != nil || ns.Total < c.Params().MinWorkerStake {
			t.Fatalf("worker %s has stake %+v (%v), below the minimum", w.Short(), ns, err)
		}
	}
	if _, err := as.Command(ctx, rec, []byte("mint "+bob.Public().Hex()+" 1000")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := bs.Command(ctx, rec, []byte(fmt.Sprintf("transfer %s %d", alice.Public().Hex(), 10))); err != nil {
			t.Fatal(err)
		}
	}
	want := map[*crypto.KeyPair]string{bob: "950", alice: "50"}
	testnet.WaitFor(t, time.Minute, "balances on the workers", func() (bool, error) {
		for k, v := range want {
			out, _, err := c.QueryContract(ctx, k, rec, []byte("balance"))
			if err != nil || string(out) != v {
				return false, nil
			}
		}
		return true, nil
	})
	if _, _, err := c.QueryContract(ctx, alice, rec, []byte("balance "+bob.Public().Hex())); err == nil {
		t.Fatal("alice read bob's balance")
	}
	// The on-chain fallback gives the same answer, through the chain.
	out, h, err := bs.QueryOnChain(ctx, rec, []byte("balance"))
	if err != nil || string(out) != "950" {
		t.Fatalf("on-chain query: %q at %d: %v", out, h, err)
	}
	// The contracts' answers were accepted: no egress stays pending.
	testnet.WaitFor(t, time.Minute, "workers' egress acknowledged", func() (bool, error) {
		for _, rt := range d.Runtimes[1:] {
			info, err := rt.API.Info(ctx)
			if err != nil || info.Egress != 0 {
				return false, nil
			}
		}
		return true, nil
	})
	// The queries above may all have gone to one replica: the other
	// reaches the same encrypted state once it has caught up.
	testnet.WaitFor(t, time.Minute, "both replicas at the same encrypted state", func() (bool, error) {
		roots := map[string]bool{}
		for _, rt := range d.Runtimes[1:] {
			info, err := rt.API.Info(ctx)
			if err != nil {
				return false, err
			}
			roots[info.Contracts[rec.Identity.Hex()]] = true
		}
		return len(roots) == 1, nil
	})
	// The queries above went to the endpoints the workers registered:
	// their public APIs, which cannot be fed; the control APIs are elsewhere.
	for _, rt := range d.Runtimes[1:] {
		info, err := rt.API.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := crypto.ParsePublicKey(info.IdentityKey)
		ep, err := c.WorkerEndpoint(ctx, id)
		if err != nil || ep != rt.URL || ep == rt.ControlURL {
			t.Fatalf("%s registered endpoint %q (public %s, control %s): %v", rt.Name, ep, rt.URL, rt.ControlURL, err)
		}
		if _, err := pruntime.NewClient(rt.URL).SyncHeaders(ctx, &api.HeaderBatch{}); err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("%s: sync on the public API: %v", rt.Name, err)
		}
		if pub, err := pruntime.NewPublic(rt.URL).Info(ctx); err != nil || pub.IdentityKey != info.IdentityKey {
			t.Fatalf("%s public info %+v: %v", rt.Name, pub, err)
		}
	}
	// Governance revokes the workers' pRuntime measurement: clients stop
	// sending queries to them (their registrations count as expired).
	w, err := c.Worker(ctx, rec.Workers[0])
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := as.Propose(ctx, api.Action{Kind: api.ActionRevokeMeasurement, Measurement: w.Measurement})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Vote(ctx, id, true); err != nil {
		t.Fatal(err)
	}
	testnet.WaitFor(t, 30*time.Second, "queries refused by the client", func() (bool, error) {
		_, _, err := c.QueryContract(ctx, bob, rec, []byte("balance"))
		return err != nil && strings.Contains(err.Error(), "no longer allowed"), nil
	})
}

func dial(t *testing.T, ctx context.Context, d *Devnet) *client.Client {
	c, err := d.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustDeployed(t *testing.T, ctx context.Context, c *client.Client, upload [32]byte, replicas int) *api.ContractRecord {
	t.Helper()
	var rec *api.ContractRecord
	testnet.WaitFor(t, 2*time.Minute, "contract deployed", func() (bool, error) {
		r, err := c.ContractByUpload(ctx, upload)
		if err != nil {
			return false, nil
		}
		rec = r
		return len(r.Workers) == replicas, nil
	})
	return rec
}

// startTestDevnet starts a one-validator devnet on free ports with fast
// blocks (adjusted by tweak), waits until it is ready, and stops it when
// the test ends.
func startTestDevnet(t *testing.T, ctx context.Context, tweak func(*Config)) (*Devnet, *client.Client) {
	t.Helper()
	cfg := DefaultConfig(t.TempDir())
	cfg.Ports = testnet.FreePorts(t, 2)
	cfg.PRuntimePort = 0
	cfg.TimeoutCommit = 100 * time.Millisecond
	tweak(&cfg)
	d, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	if err := d.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return d, dial(t, ctx, d)
}

// A pRuntime process that exits at start fails Start at once, naming its
// log, and leaves neither a process nor the home's lock behind.
func TestProcessExitsAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a validator")
	}
	fail, err := exec.LookPath("false")
	if err != nil {
		t.Skip("no false(1)")
	}
	cfg := DefaultConfig(t.TempDir())
	cfg.Ports, cfg.PRuntimePort = testnet.FreePorts(t, 2), 0
	cfg.Log = slog.New(slog.DiscardHandler)
	cfg.PRuntimeBinary, cfg.PherryBinary = fail, fail
	for range 2 { // the second start finds the home unlocked
		start := time.Now()
		d, err := Start(context.Background(), cfg)
		if err == nil {
			d.Stop()
			t.Fatal("started with a pRuntime that exits")
		}
		if !strings.Contains(err.Error(), "exited at start") || !strings.Contains(err.Error(), "pruntime.log") || time.Since(start) > 20*time.Second {
			t.Fatalf("after %s: %v", time.Since(start), err)
		}
	}
}
