package devnet

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/phalago/phala/client"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/testnet"
)

// syncBuffer collects logs from every goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

// TestEndToEnd: devnet with pRuntimes and pherries as processes → the token deployed on
// two workers → 100 encrypted transfers from three accounts, with one
// worker's pRuntime killed (SIGKILL) mid-run and restarted → balances
// correct on both replicas and told only to their owners → no plaintext
// amount or balance in the chain's stored data or in the node's and
// pherries' logs → Stop leaves no child process behind.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("whole devnet with processes")
	}
	binDir := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), "../../cmd/pruntime", "../../cmd/pherry").CombinedOutput(); err != nil {
		t.Fatalf("build pruntime and pherry: %v\n%s", err, out)
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var home string
	d, c := startTestDevnet(t, ctx, func(cfg *Config) {
		cfg.PRuntimeBinary = filepath.Join(binDir, "pruntime")
		cfg.PherryBinary = filepath.Join(binDir, "pherry")
		cfg.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		home = cfg.Home
	})
	names := []string{"Alice", "Bob", "Ferdie"}
	var keys []*crypto.KeyPair
	var signers []*client.Signer
	for _, n := range names {
		k := crypto.MustKeyPairFromURI("//" + n)
		keys = append(keys, k)
		signers = append(signers, c.NewSigner(k))
	}
	upload, _, err := signers[0].Upload(ctx, contracttest.Build(t, filepath.Join("..", "..", "examples", "contracts", "token")), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := mustDeployed(t, ctx, c, upload, 2)

	// Distinctive amounts, so a scan can look for them.
	const minted = 97_310_000_000
	balances := map[int]uint64{}
	for i := range keys {
		if _, err := signers[0].Command(ctx, rec, []byte(fmt.Sprintf("mint %s %d", keys[i].Public().Hex(), minted))); err != nil {
			t.Fatal(err)
		}
		balances[i] = minted
	}
	var amounts []uint64
	var mu sync.Mutex
	var wg sync.WaitGroup
	const perSender = 34 // 3 senders: 102 transfers
	for s := range signers {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			for j := 0; j < perSender; j++ {
				to := (s + 1 + j%2) % len(keys)
				amount := uint64(7_331_913 + 1_009*s + j)
				if _, err := signers[s].Command(ctx, rec, []byte(fmt.Sprintf("transfer %s %d", keys[to].Public().Hex(), amount))); err != nil {
					t.Errorf("transfer: %v", err)
					return
				}
				mu.Lock()
				balances[s] -= amount
				balances[to] += amount
				amounts = append(amounts, amount)
				mu.Unlock()
			}
		}(s)
	}
	// Meanwhile: crash worker1's pRuntime and bring it back.
	w1 := d.Runtimes[1]
	testnet.WaitFor(t, time.Minute, "some transfers", func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return len(amounts) >= 20, nil
	})
	if err := w1.Kill(); err != nil {
		t.Fatal(err)
	}
	testnet.WaitFor(t, time.Minute, "more transfers while worker1 is down", func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return len(amounts) >= 50, nil
	})
	if err := w1.Start(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Both replicas converge to the same encrypted state and answer the
	// owners, and only them.
	testnet.WaitFor(t, 2*time.Minute, "replicas converged", func() (bool, error) {
		var roots []string
		for _, rt := range d.Runtimes[1:] {
			info, err := rt.API.Info(ctx)
			if err != nil {
				return false, nil
			}
			roots = append(roots, info.Contracts[rec.Identity.Hex()])
		}
		return roots[0] != "" && roots[0] == roots[1], nil
	})
	for i, k := range keys {
		want := strconv.FormatUint(balances[i], 10)
		testnet.WaitFor(t, time.Minute, "balance of "+names[i], func() (bool, error) {
			out, _, err := c.QueryContract(ctx, k, rec, []byte("balance"))
			return err == nil && string(out) == want, nil
		})
	}
	if _, _, err := c.QueryContract(ctx, keys[1], rec, []byte("balance "+keys[0].Public().Hex())); err == nil {
		t.Fatal("bob read alice's balance")
	}

	// Scan: the chain's stored blocks and state, the node's and pherries'
	// logs hold no plaintext amount or balance.
	var needles [][]byte
	for _, a := range amounts {
		needles = append(needles, []byte(strconv.FormatUint(a, 10)))
	}
	for _, b := range balances {
		needles = append(needles, []byte(strconv.FormatUint(b, 10)), binary.BigEndian.AppendUint64(nil, b))
	}
	needles = append(needles, []byte("transfer 0x"), []byte("mint 0x"), []byte(strconv.Itoa(minted)))
	scan := func(what string, data []byte) {
		for _, n := range needles {
			if bytes.Contains(data, n) {
				t.Errorf("%s contains plaintext %q", what, n)
			}
		}
	}
	scan("devnet logs (node, pherries, in-process parts)", logs.Bytes())
	filepath.WalkDir(filepath.Join(home, "nodes"), func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if b, err := os.ReadFile(p); err == nil {
				scan(p, b)
			}
		}
		return nil
	})
	var pids []int
	for _, rt := range d.Runtimes {
		for _, f := range []string{rt.Log, rt.PherryLog} {
			b, err := os.ReadFile(f)
			if err != nil || len(b) == 0 {
				t.Fatalf("%s: the log of a process part is missing (%v)", f, err)
			}
			scan(f, b)
		}
		if p := rt.PIDs(); len(p) != 2 {
			t.Fatalf("%s runs processes %v, want a pRuntime and a pherry", rt.Name, p)
		}
		pids = append(pids, rt.PIDs()...)
	}
	// The pherries ran as processes: each registered or fed its pRuntime.
	if b, _ := os.ReadFile(d.Runtimes[1].PherryLog); !bytes.Contains(b, []byte("pherry ready")) {
		t.Fatalf("worker1's pherry.log:\n%s", b)
	}
	// Stop leaves no child process: every pid is gone (signal 0 fails).
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after Stop (%v)", pid, err)
		}
	}
}
