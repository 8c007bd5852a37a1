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
	return c
}
