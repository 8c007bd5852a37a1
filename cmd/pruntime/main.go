// Command pruntime runs the enclave runtime: it holds the entity keys (and,
// for a gatekeeper, the MasterKey), verifies the chain it is fed through
// its API, dispatches the chain's messages and produces signed egress.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/spf13/cobra"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/internal/enclave/engine"
	"github.com/phalago/phala/internal/enclave/enginemetrics"
	"github.com/phalago/phala/internal/enclave/httpapi"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/platform"
	"github.com/phalago/phala/internal/enclave/sealing"
	"github.com/phalago/phala/internal/metrics"
	"github.com/phalago/phala/internal/version"
)

func main() {
	var (
		dataDir, genesis, listen, controlListen, endpoint, plat, level string
		metricsAddr                                                    string
		cores                                                          uint32
		memoryMB                                                       uint64
		controlAllow                                                   []string
	)
	root := &cobra.Command{
		Use:   "pruntime",
		Short: "The Phala enclave runtime",
		Long: `pruntime is the enclave runtime of a Phala worker or gatekeeper. At first start
it creates its identity and ECDH keys and seals them in --data-dir; it trusts
only the --genesis it is given and what it verifies (headers with the CometBFT
light verifier, block messages against the app hash of the next header).

It serves two HTTP APIs. The public API on --listen (its URL, or --endpoint,
goes in the worker's on-chain WorkerInfo) answers contract queries and public
info, and changes no state. The control API on --control-listen is the host's:
the relayer (pherry --pruntime-control) feeds it the chain, collects its egress
and asks for its registration there. The control API answers only callers on
loopback: anyone who reached it could stall this worker (feed it nothing, hold
its sync budget) or read its egress before the chain does. --control-allow CIDR
admits a network besides loopback (e.g. a relayer on another host of a private
network); never allow a network you do not control, and put no proxy on this
host in front of the control API (its callers would all look local).

The sim platform runs anywhere and protects nothing from this machine's
operator; use it for development only.`,
		SilenceUsage: true,
		Version:      version.Get().String(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Listen for Ctrl-C first: a signal that arrives while starting
			// must not kill the process without its clean shutdown.
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(level)); err != nil {
				return fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
			var opts httpapi.ControlOptions
			for _, a := range controlAllow {
				p, err := netip.ParsePrefix(a)
				if err != nil {
					return fmt.Errorf("--control-allow %q: want a network in CIDR form, e.g. 10.0.0.0/24: %w", a, err)
				}
				opts.Allow = append(opts.Allow, p.Masked())
			}
			if plat != api.PlatformSim {
				return fmt.Errorf("--platform %q: this build supports only %q", plat, api.PlatformSim)
			}
			if genesis == "" {
				return errors.New("--genesis is required: the chain's genesis.json (e.g. <node home>/config/genesis.json)")
			}
			doc, err := cmttypes.GenesisDocFromFile(genesis)
			if err != nil {
				return fmt.Errorf("read genesis: %w", err)
			}
			p, err := platform.NewSim(dataDir, nil, log)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			cln, err := net.Listen("tcp", controlListen)
			if err != nil {
				ln.Close()
				return fmt.Errorf("control API: listen on %s: %w", controlListen, err)
			}
			if endpoint == "" {
				// The URL clients are told (WorkerInfo): a wildcard bind
				// address reaches nobody from another host.
				if a, ok := ln.Addr().(*net.TCPAddr); ok && a.IP.IsUnspecified() {
					ln.Close()
					cln.Close()
					return fmt.Errorf("--listen %s binds every interface: give --endpoint, the URL other hosts reach this public API at (it goes in the WorkerInfo), e.g. --endpoint http://10.0.0.5:%d", listen, a.Port)
				}
				endpoint = "http://" + ln.Addr().String()
			}
			e, err := engine.New(engine.Config{DataDir: dataDir, Genesis: doc, Endpoint: endpoint, Platform: p, Log: log, Cores: cores, MemoryMB: memoryMB})
			if err != nil {
				return err
			}
			if metricsAddr != "" {
				reg := metrics.NewRegistry()
				reg.MustRegister(enginemetrics.New(e))
				ms, err := metrics.Listen(metricsAddr, reg, log.With("module", "metrics"))
				if err != nil {
					e.Close()
					return fmt.Errorf("--metrics: %w", err)
				}
				defer ms.Close()
			}
			srv, csrv := httpapi.PublicServer(e, log), httpapi.ControlServer(e, log, opts)
			go srv.Serve(ln)
			go csrv.Serve(cln)
			info := e.Info()
			fmt.Printf("pruntime ready: %s %s, public API %s, control API http://%s, synced %d\n", info.Role, info.IdentityKey, endpoint, cln.Addr(), info.Synced)
			log.Info("stopping", "signal", (<-ch).String())
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			// Stop both listeners before the last checkpoint, so no call
			// changes the state after it.
			serr := errors.Join(srv.Shutdown(ctx), csrv.Shutdown(ctx))
			return errors.Join(serr, e.Close())
		},
	}
	// --version also prints the sim platform's measurement (the SHA-256 of
	// this executable), the value a genesis or governance allows.
	cobra.AddTemplateFunc("measurement", func() string {
		m, err := platform.ExecutableMeasurement()
		if err != nil {
			return "unknown: " + err.Error()
		}
		return fmt.Sprintf("%x", m)
	})
	root.SetVersionTemplate(version.Template + "measurement (sim platform, SHA-256 of this executable): {{measurement}}\n")
	root.AddCommand(initCommand(), identityCommand())
	f := root.Flags()
	f.StringVar(&dataDir, "data-dir", "pruntime-data", "directory of the sealed keys and state")
	f.StringVar(&genesis, "genesis", "", "the chain's genesis.json (the only thing pRuntime trusts)")
	f.StringVar(&listen, "listen", "127.0.0.1:8000", "public API listen address (contract queries, public info)")
	f.StringVar(&endpoint, "endpoint", "", "public URL of the public API put in WorkerInfo, the one clients on other hosts reach (default: http://<listen>; required when --listen binds 0.0.0.0 or [::])")
	f.StringVar(&controlListen, "control-listen", "127.0.0.1:8001", "control API listen address (the relayer's: sync, egress, registration); keep it on loopback, or on a private network with --control-allow")
	f.StringSliceVar(&controlAllow, "control-allow", nil, "network (CIDR) whose callers the control API serves besides loopback; repeatable. Anyone there can stall this worker: allow only networks you control")
	f.StringVar(&plat, "platform", api.PlatformSim, "TEE platform: sim")
	f.Uint32Var(&cores, "cores", 0, "CPU cores declared in WorkerInfo (deployment requirements --min-cores are checked against it; 0: this machine's)")
	f.Uint64Var(&memoryMB, "memory-mb", 0, "memory (MiB) declared in WorkerInfo (deployment requirements --min-memory-mb are checked against it; 0: this machine's)")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&metricsAddr, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics (host:port; empty: off). They carry counts, heights, sizes and durations only (docs/metrics.md)")
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}

// initCommand creates a genesis gatekeeper's entity keys before the genesis
// that names it exists (pre-genesis; the first start binds them to its
// chain) and prints the identity to put in the genesis' gatekeepers.
func initCommand() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a genesis gatekeeper's keys before its chain's genesis exists",
		Long: `init creates the entity keys of a pRuntime that a chain's genesis will name as
gatekeeper (the first one listed creates the chain's MasterKey at its first
start). The keys are sealed "pre-genesis"; the first start with a --genesis
binds them to that chain for good. Run it once, in an empty data directory;
workers need no init (they create keys bound to their chain at first start).`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return initEntity(dataDir, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "pruntime-data", "directory of the sealed keys and state")
	return cmd
}

func initEntity(dataDir string, w io.Writer) error {
	if _, err := os.Stat(filepath.Join(dataDir, keys.EntityFile)); err == nil {
		return fmt.Errorf("%s already holds entity keys", dataDir)
	}
	p, err := platform.NewSim(dataDir, nil, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		return err
	}
	e, err := keys.CreatePreGenesisEntity(p, dataDir)
	if err != nil {
		return err
	}
	printIdentity(w, e, sealing.Binding{}, p.Measurement())
	return nil
}

// identityCommand prints what a genesis needs from this pRuntime, reading
// its sealed keys without starting it or changing its data directory.
func identityCommand() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "Print this pRuntime's public keys and measurement, and the genesis line naming it",
		Long: `identity reads the sealed entity keys in --data-dir, without starting pRuntime
and without changing the directory, and prints what a chain's genesis needs
from this pRuntime: its identity key (what ` + "`phala-node init --gatekeeper`" + ` takes),
its ECDH public key, the measurement of this executable (what
` + "`phala-node init --measurement`" + ` takes, as ` + "`pruntime --version`" + ` prints it), the chain
its keys are bound to (none before the first start) and, while they are bound
to none, the phala-node init line naming it. It prints public keys only,
never secret material.

A directory without keys is an error: create a genesis gatekeeper's keys with
` + "`pruntime init`" + ` (a worker's are created at its first start).`,
		Example:      `  pruntime identity --data-dir gk`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return showIdentity(dataDir, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "pruntime-data", "directory of the sealed keys and state")
	return cmd
}

// errNoKeys: the data directory holds no entity keys.
var errNoKeys = errors.New("no pRuntime keys")

func showIdentity(dataDir string, w io.Writer) error {
	// Check before opening the platform: NewSim would create its key.
	for _, f := range []string{keys.EntityFile, platform.SimKeyFile} {
		if _, err := os.Stat(filepath.Join(dataDir, f)); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w in %s (no %s): create a genesis gatekeeper's with `pruntime init --data-dir %s`; a worker's are created at its first start", errNoKeys, dataDir, f, dataDir)
		} else if err != nil {
			return err
		}
	}
	p, err := platform.NewSim(dataDir, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	e, b, err := keys.LoadEntity(p, dataDir)
	if err != nil {
		return fmt.Errorf("read the keys in %s: %w", dataDir, err)
	}
	printIdentity(w, e, b, p.Measurement())
	return nil
}

// printIdentity prints the public keys, the measurement and the genesis
// line: the output of init and identity.
func printIdentity(w io.Writer, e *keys.Entity, b sealing.Binding, measurement []byte) {
	id := e.Identity.Public().Hex()
	m := fmt.Sprintf("%x", measurement)
	fmt.Fprintf(w, "identity %s\necdh %s\nmeasurement %s\n", id, e.Ecdh.Public().Hex(), m)
	if b.PreGenesis() {
		fmt.Fprintf(w, "keys pre-genesis: the first start with a --genesis binds them to that chain\n")
		fmt.Fprintf(w, "name it in the chain's genesis: phala-node init --gatekeeper %s --measurement %s\n", id, m)
		return
	}
	// Bound keys open only on their chain: a new genesis naming this
	// identity would get a gatekeeper that cannot start, so no init line.
	fmt.Fprintf(w, "keys bound to %s since their first start: no other genesis can name this pRuntime (to name a gatekeeper, `pruntime init` new keys before the genesis)\n", b.Chain())
}
