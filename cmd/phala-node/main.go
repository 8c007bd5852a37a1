// Command phala-node runs the Phala chain: CometBFT consensus with the
// chain's application (accounts, registry, message queue) in one process.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/internal/version"
)

func main() {
	root := &cobra.Command{
		Use:   "phala-node",
		Short: "The Phala chain: the ordered, encrypted input queue of confidential contracts",
		Long: `phala-node runs a validator or full node of the Phala chain: CometBFT consensus
with the chain's application in one process. The chain holds accounts, the
registry of attested workers and gatekeepers, and the message queue that
pRuntime enclaves read through a light client.

Start a single-validator chain:
  phala-node init --home ~/.phala-node --chain-id phala-dev
  phala-node start --home ~/.phala-node`,
		SilenceUsage: true,
		Version:      version.Get().String(),
	}
	root.SetVersionTemplate(version.Template)
	root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn, error")
	root.AddCommand(devCmd(), initCmd(), startCmd(), testnetCmd(), benchCmd(),
		showNodeIDCmd(), showValidatorCmd(), resetAllCmd(), rollbackCmd())
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}

func logger(cmd *cobra.Command) (*slog.Logger, error) {
	s, _ := cmd.Flags().GetString("log-level")
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(s)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", s)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})), nil
}

// notifyStop starts listening for Ctrl-C and SIGTERM; call it before
// starting anything, so a signal that arrives early is not lost.
func notifyStop() <-chan os.Signal {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	return ch
}
