package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/internal/explorer"
)

// The explorer command: a web UI of the chain's public data
// (internal/explorer says why it is a CLI command, not a node flag).

func explorerCmd(g *globals) *cobra.Command {
	var listen string
	var keep int
	c := &cobra.Command{
		Use:   "explorer --listen <addr>",
		Short: "Serve a web explorer of the chain: blocks, transactions, accounts, workers, contracts (proved)",
		Long: `explorer serves web pages of what the chain at --node makes public: the
latest blocks and their transactions (calls decoded; encrypted payloads as
sizes), a block, a transaction, an account (balance, nonce, stake), the
workers (registration, attestation platform and measurement, expiry,
stake, activity), the gatekeepers with the master public key and key sets,
the contracts (deployer, code hash, workers, status, checkpoint), the
message queue per block and the chain parameters, with a search box
(height, block or transaction hash, SS58 address, 0x key, contract id).
The latest blocks update live as they arrive.

It reads the chain as the other commands do: headers verified from the
trust root (see ` + "`phala --help`" + `), blocks, transactions, results, queue
messages and state checked against them. It needs no change to a node and
shows nothing the chain does not publish. docs/explorer.md describes each
page. It runs until interrupted (Ctrl-C).`,
		Example: `  phala explorer --listen 127.0.0.1:8080
  phala explorer --listen 127.0.0.1:8080 --node http://10.0.0.5:26657 --genesis genesis.json`,
		Args: exactArgs(0, "no arguments (use --listen)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keep < 1 {
				return fmt.Errorf("--keep %d: keep at least one block", keep)
			}
			ctx, stop := signal.NotifyContext(cmdContext(cmd), os.Interrupt, syscall.SIGTERM)
			defer stop()
			dctx, cancel := g.withTimeout(cmd)
			cl, err := g.dial(dctx)
			cancel()
			if err != nil {
				return err
			}
			cfg := explorer.DefaultConfig()
			cfg.Keep = keep
			cfg.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			if g.timeout > 0 {
				cfg.ReadTimeout = max(g.timeout/2, 5*time.Second)
			}
			srv, err := explorer.New(cl, g.nodeURL(), cfg)
			if err != nil {
				return err
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", listen, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "explorer of %s (node %s) on http://%s\n", cl.ChainID(), g.nodeURL(), l.Addr())
			return srv.Run(ctx, l)
		},
	}
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve the pages on (host:port; port 0: any free port)")
	c.Flags().IntVar(&keep, "keep", explorer.DefaultConfig().Keep, "how many of the latest blocks to keep in memory for the home and queue pages")
	return c
}

// cmdContext is the command's context, or the background one.
func cmdContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}
