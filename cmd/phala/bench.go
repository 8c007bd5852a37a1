package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/contractbuild"
	"github.com/phalago/phala/internal/devnet"
	"github.com/phalago/phala/internal/loadgen"
)

func benchCmd(g *globals) *cobra.Command {
	cfg := loadgen.ContractConfig{Commands: 2000, Queries: 20000, Senders: 8, Concurrency: 16, Batch: 100}
	var funder string
	c := &cobra.Command{
		Use:   "bench",
		Short: "Measure confidential commands/s end to end and off-chain queries/s against a devnet",
		Long: `bench deploys the token (built from examples/contracts/token: run it from the
repository) on a running devnet, gives --senders fresh accounts tokens, measures
the gas of one transfer alone in its block (each transfer then declares 3x
that, as a wallet's estimate would), then submits --commands encrypted transfer
commands (pre-signed, in JSON-RPC batches) and times them until the worker has
executed them all (commands/s end to end); then each sender opens a query
session with the worker and --concurrency clients send --queries encrypted
balance queries (queries/s, p50 and p99 latency). Every answer is checked
against the balance the transfers imply: "wrong balances" counts commands that
did not run.`,
		Example: `  go run ./cmd/phala devnet &
  go run ./cmd/phala bench --commands 4000 --queries 20000`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Funder, err = crypto.KeyPairFromURI(funder); err != nil {
				return fmt.Errorf("--funder: %w", err)
			}
			return runLoad(g, cmd, "token", func(ctx context.Context, l loadTarget) (fmt.Stringer, error) {
				cfg.Code, cfg.RPC, cfg.Trust, cfg.Log = l.code, l.rpc, l.trust, l.log
				r, err := loadgen.RunContracts(ctx, cfg)
				if err == nil && r.WrongBalances > 0 {
					return nil, fmt.Errorf("%s\n%d query answers disagree with the balances the transfers imply: some commands did not run (out of gas?), so these figures do not count", r, r.WrongBalances)
				}
				return r, err
			})
		},
	}
	c.Flags().IntVar(&cfg.Commands, "commands", cfg.Commands, "encrypted commands to submit (a multiple of --senders: each sends as many)")
	c.Flags().IntVar(&cfg.Queries, "queries", cfg.Queries, "queries to send")
	c.Flags().IntVar(&cfg.Senders, "senders", cfg.Senders, "accounts sending commands")
	c.Flags().IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "concurrent query clients")
	c.Flags().IntVar(&cfg.Batch, "batch", cfg.Batch, "transactions per JSON-RPC batch")
	c.Flags().StringVar(&funder, "funder", "//Alice", "secret URI of the account that deploys and funds")
	c.AddCommand(benchPPHACmd(g), benchSoakCmd())
	return c
}

// loadTarget is what a load run against a running network needs: the
// example contract's WebAssembly, the node and its trust root, a log.
type loadTarget struct {
	code  []byte
	rpc   string
	trust client.Options
	log   func(format string, args ...any)
}

// runLoad builds examples/contracts/<example>, connects as the global
// flags say, runs run within --timeout and prints its result.
func runLoad(g *globals, cmd *cobra.Command, example string, run func(context.Context, loadTarget) (fmt.Stringer, error)) error {
	code, err := contractbuild.Build(filepath.Join("examples", "contracts", example))
	if err != nil {
		return err
	}
	l := loadTarget{code: code, log: func(f string, a ...any) { fmt.Fprintf(cmd.ErrOrStderr(), f+"\n", a...) }}
	ctx, cancel := g.withTimeout(cmd)
	defer cancel()
	if l.rpc, l.trust, _, err = g.clientOptions(ctx); err != nil {
		return err
	}
	res, err := run(ctx, l)
	if err != nil {
		return err
	}
	return g.output(cmd, res, func(w io.Writer) { fmt.Fprintln(w, res) })
}

func benchPPHACmd(g *globals) *cobra.Command {
	cfg := loadgen.PeggedConfig{Transfers: 2000, Senders: 8, Batch: 100}
	var funder, deposit, withdraw string
	c := &cobra.Command{
		Use:   "ppha",
		Short: "Measure private PHA: transfers/s end to end, deposit-to-spendable and withdraw-to-paid latency",
		Long: `bench ppha deploys the private PHA contract (built from examples/contracts/ppha:
run it from the repository) on a running devnet and gives --senders fresh
accounts PHA. Each deposits --deposit PHA into the contract's escrow account,
one at a time, timed from submission until its balance query shows it
(deposit to spendable). Then --transfers private transfers (pre-signed,
sealed, in JSON-RPC batches, a ring among the senders) are timed until the
worker has executed them all, and the balances are checked. Last, each
sender withdraws --withdraw PHA, timed from submission until the chain has
paid it (withdraw to paid). Latencies are medians, in blocks and seconds.`,
		Example: `  go run ./cmd/phala devnet &
  go run ./cmd/phala bench ppha --transfers 4000`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Funder, err = crypto.KeyPairFromURI(funder); err != nil {
				return fmt.Errorf("--funder: %w", err)
			}
			if cfg.DepositUnits, err = pphaAmount(deposit); err != nil {
				return fmt.Errorf("--deposit: %w", err)
			}
			if cfg.WithdrawUnits, err = pphaAmount(withdraw); err != nil {
				return fmt.Errorf("--withdraw: %w", err)
			}
			return runLoad(g, cmd, "ppha", func(ctx context.Context, l loadTarget) (fmt.Stringer, error) {
				cfg.Code, cfg.RPC, cfg.Trust, cfg.Log = l.code, l.rpc, l.trust, l.log
				return loadgen.RunPegged(ctx, cfg)
			})
		},
	}
	c.Flags().IntVar(&cfg.Transfers, "transfers", cfg.Transfers, "private transfers to submit")
	c.Flags().IntVar(&cfg.Senders, "senders", cfg.Senders, "accounts depositing, transferring and withdrawing")
	c.Flags().IntVar(&cfg.Batch, "batch", cfg.Batch, "transactions per JSON-RPC batch")
	c.Flags().StringVar(&deposit, "deposit", "10", "PHA each sender deposits")
	c.Flags().StringVar(&withdraw, "withdraw", "1", "PHA each sender withdraws")
	c.Flags().StringVar(&funder, "funder", "//Alice", "secret URI of the account that deploys and funds")
	return c
}

func benchSoakCmd() *cobra.Command {
	cfg := loadgen.SoakConfig{Duration: 30 * time.Minute, Interval: time.Minute, KillEvery: 2 * time.Minute, RestartAfter: 5 * time.Second,
		Transfers: 4, Commands: 4, Queries: 4, Seed: 1}
	c := &cobra.Command{
		Use:   "soak",
		Short: "Run a devnet of processes under steady mixed load with periodic crashes, reporting throughput, memory and replica divergence",
		Long: `bench soak starts its own devnet (one validator in this process; a
gatekeeper and two worker pRuntimes, each with its pherry, as processes
built with go build: run it from the repository), deploys the token on both
workers, and for --duration keeps a steady mixed load: --transfers
goroutines sending PHA transfers, --commands goroutines sending sealed
token transfers, --queries goroutines asking balances. Every --kill-every a
random pRuntime or pherry gets SIGKILL and is started again --restart-after
later.

Every --interval it prints the chain height, transfers, commands and
queries per second, the operations that failed, the replicas' state roots
compared at equal heights (and how many differed), and the resident memory
of every process (devnet: this process, with the node and the load). At the
end it checks every token balance the commands imply, on both replicas, and
prints each process's memory at the first and last sample. It exits 1 on a
divergence or a wrong balance. The devnet's data stays in --home.`,
		Example: `  go run ./cmd/phala bench soak --duration 30m
  go run ./cmd/phala bench soak --duration 2m --interval 15s --kill-every 30s`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if cfg.Home == "" {
				dir, err := os.MkdirTemp("", "phala-soak-")
				if err != nil {
					return err
				}
				cfg.Home = dir
			}
			dcfg := devnet.Config{Home: cfg.Home}
			if err := buildParts(out, &dcfg); err != nil {
				return err
			}
			cfg.PRuntimeBinary, cfg.PherryBinary = dcfg.PRuntimeBinary, dcfg.PherryBinary
			var err error
			if cfg.TokenCode, err = contractbuild.Build(filepath.Join("examples", "contracts", "token")); err != nil {
				return err
			}
			cfg.Out = out
			ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer cancel()
			ctx, cancelT := context.WithTimeout(ctx, cfg.Duration+10*time.Minute)
			defer cancelT()
			res, err := loadgen.RunSoak(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "\n%d transfers, %d commands, %d queries (%d failed); %d kills; replica roots compared at %d heights, %d diverged; token balances exact: %v (%d senders uncertain)\n",
				res.Transfers, res.Commands, res.Queries, res.Failed, len(res.Kills), res.RootsCompared, len(res.Divergences), res.BalancesExact, res.Uncertain)
			if n := len(res.Samples); n > 0 {
				first, last := res.Samples[0], res.Samples[n-1]
				fmt.Fprintln(out, "resident memory, MiB (first sample → last sample; a restarted process starts again):")
				for _, k := range slices.Sorted(maps.Keys(last.RSSMiB)) {
					fmt.Fprintf(out, "  %-22s %5d → %5d\n", k, first.RSSMiB[k], last.RSSMiB[k])
				}
			}
			for _, d := range res.Divergences {
				fmt.Fprintln(out, "DIVERGED:", d)
			}
			if len(res.Divergences) > 0 || !res.BalancesExact {
				return errors.New("soak: the replicas diverged or a balance is wrong (see above)")
			}
			return nil
		},
	}
	c.Flags().DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long the load runs")
	c.Flags().DurationVar(&cfg.Interval, "interval", cfg.Interval, "time between samples")
	c.Flags().DurationVar(&cfg.KillEvery, "kill-every", cfg.KillEvery, "time between kills of a random pRuntime or pherry (0: none)")
	c.Flags().DurationVar(&cfg.RestartAfter, "restart-after", cfg.RestartAfter, "how long a killed process stays down")
	c.Flags().IntVar(&cfg.Transfers, "transfers", cfg.Transfers, "goroutines sending PHA transfers")
	c.Flags().IntVar(&cfg.Commands, "commands", cfg.Commands, "goroutines sending sealed token transfers")
	c.Flags().IntVar(&cfg.Queries, "queries", cfg.Queries, "goroutines asking balances")
	c.Flags().StringVar(&cfg.Home, "home", "", "the devnet's data directory (default: a new temporary one, kept)")
	c.Flags().Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the choice of what to kill")
	return c
}
