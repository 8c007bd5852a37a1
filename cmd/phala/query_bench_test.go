package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/devnet"
)

// BenchmarkContractQueryCLI: one `phala contract query` from a fresh
// process against a devnet with the README's block time (500 ms), as a
// user runs it: the trust root and the newest verified header remembered
// in its data directory from the previous run. ns/op is the command's wall
// time. Run: go test ./cmd/phala -run XXX -bench ContractQueryCLI -benchtime 20x
func BenchmarkContractQueryCLI(b *testing.B) {
	bin(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg := devnet.DefaultConfig(b.TempDir())
	cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.PRuntimePort = 0
	var ls []net.Listener
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		ls = append(ls, l)
		cfg.Ports = append(cfg.Ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls { // free ports, for the devnet to take
		l.Close()
	}
	d, err := startBenchDevnet(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Stop()
	c, err := d.Dial(ctx)
	if err != nil {
		b.Fatal(err)
	}
	alice := crypto.MustKeyPairFromURI("//Alice")
	upload, _, err := c.NewSigner(alice).Upload(ctx, contracttest.Build(b, filepath.Join("..", "..", "examples", "contracts", "token")), 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	rec, err := c.WaitContract(ctx, upload)
	if err != nil {
		b.Fatal(err)
	}
	args := []string{"contract", "query", "--from", "//Bob", rec.Identity.Hex(), "balance",
		"--node", d.RPC(), "--genesis", d.GenesisFile(), "--data-dir", b.TempDir()}
	query := func() error {
		out, err := exec.Command(binPath, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("phala %v: %v\n%s", args, err, out)
		}
		return nil
	}
	// The first run verifies from the genesis and remembers it; it waits
	// until the worker has started the contract (it may lag the chain's
	// deployment record by a few blocks).
	deadline := time.Now().Add(time.Minute)
	for err := query(); err != nil; err = query() {
		if time.Now().After(deadline) {
			b.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.ResetTimer()
	for range b.N {
		if err := query(); err != nil {
			b.Fatal(err)
		}
	}
}

// startBenchDevnet starts a devnet and waits until it is ready.
func startBenchDevnet(ctx context.Context, cfg devnet.Config) (*devnet.Devnet, error) {
	d, err := devnet.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := d.WaitReady(ctx); err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}
