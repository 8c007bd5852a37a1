package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/loadgen"
)

func benchCmd() *cobra.Command {
	cfg := loadgen.DefaultConfig("http://127.0.0.1:26657")
	var funder string
	c := &cobra.Command{
		Use:   "bench",
		Short: "Submit signed transfers to a running node and report committed transfers/s",
		Long: `bench funds --accounts fresh accounts from --funder, pre-signs --txs transfers
between them, submits them to the node at --rpc in JSON-RPC batches of
broadcast_tx_sync from --workers connections, waits until all are committed,
and reports committed transfers per second over the span of the blocks'
header times. Run it against a node started with phala-node start.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logger(cmd)
			if err != nil {
				return err
			}
			if cfg.Funder, err = crypto.KeyPairFromURI(funder); err != nil {
				return fmt.Errorf("--funder: %w", err)
			}
			cfg.Log = log
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			res, err := loadgen.Run(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Println(res)
			return nil
		},
	}
	c.Flags().StringVar(&cfg.RPC, "rpc", cfg.RPC, "node RPC address")
	c.Flags().IntVar(&cfg.Txs, "txs", cfg.Txs, "transfers to submit")
	c.Flags().IntVar(&cfg.Accounts, "accounts", cfg.Accounts, "sending accounts")
	c.Flags().IntVar(&cfg.Workers, "workers", cfg.Workers, "concurrent RPC connections")
	c.Flags().IntVar(&cfg.Batch, "batch", cfg.Batch, "transactions per JSON-RPC batch")
	c.Flags().StringVar(&funder, "funder", "//Alice", "secret URI of the account that funds the load accounts")
	return c
}
