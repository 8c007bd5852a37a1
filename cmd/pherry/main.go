// Command pherry is the relayer between one node and one pRuntime: it
// forwards every header and block message of the chain to pRuntime, which
// verifies them, and submits pRuntime's signed egress to the chain.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/metrics"
	"github.com/phalago/phala/internal/relayer"
	"github.com/phalago/phala/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once
	}()
	err := newRootCmd(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(1)
	}
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	d := relayer.DefaultConfig()
	var (
		operator, level, stake string
		metricsAddr            string
		noRegister             bool
		cfg                    = d
	)
	root := &cobra.Command{
		Use:   "pherry",
		Short: "Relay a Phala chain to a pRuntime and its egress back",
		Long: `pherry is the untrusted relayer between one node (--node) and one pRuntime,
reached at its control API (--pruntime-control: pruntime's --control-listen,
on loopback by default, so pherry runs on the pRuntime's host; on another host
once pruntime listens on a private address and --control-allow admits that
network). The node may be any validator or full node of the chain, on any host
(--node http://10.0.0.1:26657). It forwards every signed header and every block's queue messages
to pRuntime, which verifies all of it: a relayer can delay the chain, but
pRuntime refuses anything forged, skipped or reordered. It submits pRuntime's signed egress
messages to the chain and, unless --no-register, registers (and renews) the
worker with its attestation report. With --stake AMOUNT, the operator then
bonds and allocates AMOUNT PHA to the worker if its allocation is lower: a
worker is assigned contracts only with the chain's min_worker_stake.

The --operator account signs and pays the fees of those transactions, and is
recorded on chain as the worker's operator. The default //Alice is a public
development key: use your own secret URI outside a development chain, given
as --operator - to read it from standard input (keeping it off the command
line, which ps shows).

pherry resumes from the heights pRuntime reports, so it can be stopped
(Ctrl-C) and restarted at any time; node or pRuntime restarts are retried.
Every request has a timeout; pherry warns (once, then at most once per
--warn-interval) when the node or pRuntime does not answer, when the chain
tip has not moved for --stall-after, and when pRuntime stays more than
--max-lag blocks behind, and says when each recovers. --metrics serves the
same, and its counters, to Prometheus.
A batch stops growing at --batch-bytes while it is fetched, and pRuntime's
egress is read in pages, so pherry's memory stays bounded whatever the chain
or pRuntime hold.`,
		SilenceUsage: true,
		Version:      version.Get().String(),
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(level)); err != nil {
				return fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
			}
			log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
			if operator == "" {
				return fmt.Errorf("--operator is required: the secret URI of the account that pays the fees")
			}
			if operator == "-" {
				// The secret on standard input (a systemd credential, a
				// pipe): never on the command line, where ps shows it.
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("--operator -: read the secret URI from standard input: %w", err)
				}
				if operator = strings.TrimRight(line, "\r\n"); operator == "" {
					return fmt.Errorf("--operator -: no secret URI on standard input")
				}
			}
			key, err := crypto.KeyPairFromURI(operator)
			if err != nil {
				return fmt.Errorf("--operator: %w", err)
			}
			cfg.Operator = key
			cfg.Register = !noRegister
			if stake != "" {
				if cfg.Stake, err = api.ParseAmount(stake); err != nil {
					return fmt.Errorf("--stake: %w", err)
				}
			}
			cfg.Log = log
			if isTerminal(stderr) {
				cfg.Progress = stderr
			}
			r, err := relayer.New(cfg)
			if err != nil {
				return err
			}
			if metricsAddr != "" {
				reg := metrics.NewRegistry()
				reg.MustRegister(r.Collector())
				ms, err := metrics.Listen(metricsAddr, reg, log.With("module", "metrics"))
				if err != nil {
					return fmt.Errorf("--metrics: %w", err)
				}
				defer ms.Close()
			}
			reg := "on"
			if noRegister {
				reg = "off"
			}
			if cfg.Stake > 0 {
				reg += ", stake " + api.FormatAmount(cfg.Stake) + " " + api.TokenSymbol
			}
			fmt.Fprintf(stdout, "pherry ready: node %s -> pRuntime control API %s, operator %s (pays fees), registration %s\n",
				cfg.Node, cfg.PRuntime, key.Address(), reg)
			return r.Run(cmd.Context())
		},
	}
	f := root.Flags()
	f.StringVar(&cfg.Node, "node", d.Node, "the node's CometBFT RPC URL")
	f.StringVar(&cfg.PRuntime, "pruntime-control", d.PRuntime, "URL of pRuntime's control API (pruntime --control-listen), not its public one")
	f.StringVar(&operator, "operator", "//Alice", "secret URI of the operator account: it signs and pays the fees of egress and registration txs, and is the worker's operator (//Alice: development only; - reads it from standard input)")
	f.IntVar(&cfg.BatchSize, "batch", d.BatchSize, "headers or blocks per pRuntime call while catching up")
	f.IntVar(&cfg.MaxBatchBytes, "batch-bytes", d.MaxBatchBytes, "a batch stops growing at this many bytes while it is fetched (bounds pherry's memory)")
	f.DurationVar(&cfg.PollInterval, "poll", d.PollInterval, "how often to ask the node for new blocks once caught up")
	f.BoolVar(&noRegister, "no-register", false, "do not register or renew the worker on chain")
	f.StringVar(&stake, "stake", "", "PHA the operator bonds and allocates to the registered worker if its allocation is lower (decimal, like phala transfer --amount; a worker needs the chain's min_worker_stake to get contracts)")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&metricsAddr, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics (host:port; empty: off; docs/metrics.md lists them)")
	f.DurationVar(&cfg.NodeTimeout, "node-timeout", d.NodeTimeout, "give up on a request to the node after this long (and warn that it does not answer)")
	f.DurationVar(&cfg.PRuntimeTimeout, "pruntime-timeout", d.PRuntimeTimeout, "give up on a request to pRuntime after this long (and warn), except header and block batches")
	f.DurationVar(&cfg.BatchTimeout, "batch-timeout", d.BatchTimeout, "give up on a header or block batch sent to pRuntime after this long")
	f.DurationVar(&cfg.StallAfter, "stall-after", d.StallAfter, "warn when the chain tip has not moved for this long (about 5 block intervals)")
	f.Int64Var(&cfg.MaxLag, "max-lag", d.MaxLag, "warn when pRuntime stays more than this many blocks behind the tip for --stall-after")
	f.DurationVar(&cfg.WarnInterval, "warn-interval", d.WarnInterval, "repeat a warning that lasts at most this often")
	root.SetVersionTemplate(version.Template)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
