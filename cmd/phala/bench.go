package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/contractbuild"
	"github.com/phalago/phala/internal/loadgen"
)

func benchCmd(g *globals) *cobra.Command {
	cfg := loadgen.ContractConfig{Commands: 2000, Queries: 20000, Senders: 8, Concurrency: 16, Batch: 100}
	var funder string
	c := &cobra.Command{
		Use:   "bench",
		Short: "Measure confidential commands/s end to end and off-chain queries/s against a devnet",
		Long: `bench deploys the token (built from examples/contracts/token: run it from the
repository) on a running devnet, gives --senders fresh accounts tokens, then
submits --commands encrypted transfer commands (pre-signed, in JSON-RPC batches)
and times them until the worker has executed them all (commands/s end to end);
then sends --queries encrypted balance queries to the worker from
--concurrency clients (queries/s, p50 and p99 latency).`,
		Example: `  go run ./cmd/phala devnet &
  go run ./cmd/phala bench --commands 4000 --queries 20000`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Funder, err = crypto.KeyPairFromURI(funder); err != nil {
				return fmt.Errorf("--funder: %w", err)
			}
			if cfg.Code, err = contractbuild.Build(filepath.Join("examples", "contracts", "token")); err != nil {
				return err
			}
			cfg.Log = func(f string, a ...any) { fmt.Fprintf(cmd.ErrOrStderr(), f+"\n", a...) }
			ctx, cancel := g.withTimeout(cmd)
			defer cancel()
			if cfg.RPC, cfg.Trust, _, err = g.clientOptions(ctx); err != nil {
				return err
			}
			res, err := loadgen.RunContracts(ctx, cfg)
			if err != nil {
				return err
			}
			return g.output(cmd, res, func(w io.Writer) { fmt.Fprintln(w, res) })
		},
	}
	c.Flags().IntVar(&cfg.Commands, "commands", cfg.Commands, "encrypted commands to submit")
	c.Flags().IntVar(&cfg.Queries, "queries", cfg.Queries, "queries to send")
	c.Flags().IntVar(&cfg.Senders, "senders", cfg.Senders, "accounts sending commands")
	c.Flags().IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "concurrent query clients")
	c.Flags().IntVar(&cfg.Batch, "batch", cfg.Batch, "transactions per JSON-RPC batch")
	c.Flags().StringVar(&funder, "funder", "//Alice", "secret URI of the account that deploys and funds")
	c.AddCommand(benchPPHACmd(g))
	return c
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
			if cfg.Code, err = contractbuild.Build(filepath.Join("examples", "contracts", "ppha")); err != nil {
				return err
			}
			cfg.Log = func(f string, a ...any) { fmt.Fprintf(cmd.ErrOrStderr(), f+"\n", a...) }
			ctx, cancel := g.withTimeout(cmd)
			defer cancel()
			if cfg.RPC, cfg.Trust, _, err = g.clientOptions(ctx); err != nil {
				return err
			}
			res, err := loadgen.RunPegged(ctx, cfg)
			if err != nil {
				return err
			}
			return g.output(cmd, res, func(w io.Writer) { fmt.Fprintln(w, res) })
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
