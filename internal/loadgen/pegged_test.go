package loadgen

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/devnet"
	"github.com/phalago/phala/internal/testnet"
)

// The pegged token's benchmark (phala bench ppha) runs on an in-process
// devnet, small: the ring of transfers leaves the balances it implies,
// and every deposit and withdrawal is timed.
func TestPeggedBenchRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("whole devnet")
	}
	ctx, d := benchDevnet(t)
	res, err := RunPegged(ctx, PeggedConfig{
		RPC: d.RPC(), Trust: client.Options{Genesis: d.Genesis()}, Code: contracttest.Build(t, filepath.Join("..", "..", "examples", "contracts", "ppha")),
		Transfers: 60, Senders: 3, Batch: 20, DepositUnits: 5 * api.Unit, WithdrawUnits: api.Unit, Funder: crypto.MustKeyPairFromURI("//Alice"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Transfers != 60 || !res.BalancesVerified || res.Deposits != 3 || res.Withdrawals != 3 || res.TransfersPerSec <= 0 ||
		res.WithdrawBlocks < 1 || res.DepositLatency <= 0 || res.WithdrawLatency <= 0 {
		t.Fatalf("bench result: %s", res)
	}
	t.Log(res)
}

// benchDevnet starts an in-process devnet (100 ms blocks, free ports,
// silent) for a benchmark's test run, stopped with the test; the context
// bounds the run to 4 minutes.
func benchDevnet(t *testing.T) (context.Context, *devnet.Devnet) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	cfg := devnet.DefaultConfig(t.TempDir())
	cfg.Ports, cfg.PRuntimePort, cfg.TimeoutCommit = testnet.FreePorts(t, 2), 0, 100*time.Millisecond
	cfg.Log = slog.New(slog.DiscardHandler)
	d, err := devnet.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	if err := d.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx, d
}
