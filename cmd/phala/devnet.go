package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/contractbuild"
	"github.com/phalago/phala/internal/devnet"
)

func devnetCmd(g *globals) *cobra.Command {
	var (
		home, logLevel, pprofAddr string
		cfg                       = devnet.DefaultConfig("")
		demo                      bool
		processes                 bool
		params                    []string
	)
	c := &cobra.Command{
		Use:   "devnet",
		Short: "Run a whole development network on this machine",
		Long: `devnet starts on loopback, in this process (see --processes): --validators phala-node
validators (RPC on 127.0.0.1:26657), a gatekeeper pRuntime and --workers
worker pRuntimes (public APIs on 127.0.0.1:8000..., control APIs, which only
their pherry uses, on 127.0.0.1:8100...), and one pherry per pRuntime.
The development accounts (//Alice, //Bob, ...) are funded. It prints the
endpoints and one "devnet ready" line once the gatekeeper has published the
master key and every worker is registered. Ctrl-C stops everything.

Data lives in --home: run devnet again with the same --home and it resumes
where it stopped. Without --home, a fresh temporary directory is used and removed
when the devnet stops.

The pRuntimes use the sim platform: no hardware protection, development only.

--processes runs each pRuntime and each pherry as a process of its own, as
on separate hosts, instead of inside this one: the programs are built with
` + "`go build`" + ` from ./cmd/pruntime and ./cmd/pherry into <home>/bin (so run it from
the repository), or taken from --pruntime-binary and --pherry-binary (either
implies --processes). Each process logs to a file that the startup output
names (<home>/<pruntime name>/pruntime.log and pherry.log), and stopping the
devnet stops them (on Linux, so does the devnet dying). The genesis allows
the measurement of the pRuntime build that created it, so resume a devnet
with the same kind of build it started with.

The devnet records its genesis as the trust root of its chain id in the
CLI's --data-dir (~/.phala/chains/<chain id>/genesis.json), so phala
commands verify this devnet's headers from its genesis validators with no
flag. A new devnet (another --home) replaces the record.

--demo deploys the confidential token (built from examples/contracts/token,
so run it from the repository) and runs a few private transfers and queries.

--param name=value (repeatable) sets a chain parameter of a new devnet's
genesis, by its name under "params" in phala status --json (e.g. --param era_length=60
--param dkg_timeout=8 to watch elections and key rotations within minutes). A
devnet that already exists keeps its parameters: change them by governance
(phala gov propose params name=value).`,
		Example: `  go run ./cmd/phala devnet
  go run ./cmd/phala devnet --home ~/.phala-devnet --demo
  go run ./cmd/phala devnet --processes
  go run ./cmd/phala devnet --param era_length=60 --param dkg_timeout=8`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: use debug, info, warn or error", logLevel)
			}
			if home == "" {
				// A throwaway devnet: its directory goes when it stops.
				dir, err := os.MkdirTemp("", "phala-devnet-")
				if err != nil {
					return err
				}
				home = dir
				defer os.RemoveAll(dir)
			}
			cfg.Home = home
			if len(params) > 0 {
				if devnet.Exists(home) {
					return fmt.Errorf("--param: the devnet in %s exists and keeps its genesis parameters; change them by governance (phala gov propose params %s), or start a new devnet in another --home", home, strings.Join(params, " "))
				}
				// Checked before anything starts; applied to the genesis
				// the devnet makes.
				if _, err := editParams(api.DefaultParams(), params); err != nil {
					return fmt.Errorf("--param: %w", err)
				}
				cfg.EditGenesis = func(g *api.GenesisState) {
					if p, err := editParams(g.Params, params); err == nil {
						g.Params = p
					}
				}
			}
			if pprofAddr != "" {
				if err := servePprof(pprofAddr); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "pprof:       http://%s/debug/pprof/\n", pprofAddr)
			}
			if processes || cfg.PRuntimeBinary != "" || cfg.PherryBinary != "" {
				if err := buildParts(cmd.OutOrStdout(), &cfg); err != nil {
					return err
				}
			}
			cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			d, err := devnet.Start(ctx, cfg)
			if errors.Is(err, syscall.EADDRINUSE) || (err != nil && strings.Contains(err.Error(), "address already in use")) {
				return fmt.Errorf("%w\n(another devnet or node uses these ports: choose others with --base-port (validators: %d and up) and --pruntime-port (pRuntimes: %d and up))", err, cfg.BasePort, cfg.PRuntimePort)
			}
			if err != nil {
				return err
			}
			defer func() {
				fmt.Fprintln(cmd.OutOrStdout(), "stopping devnet...")
				d.Stop()
			}()
			out := cmd.OutOrStdout()
			if g.trust.dataDir != "" {
				if err := g.trust.recordGenesis(d.GenesisFile()); err != nil {
					return fmt.Errorf("record the devnet's genesis in %s: %w", g.trust.dataDir, err)
				}
			}
			fmt.Fprintf(out, "home:        %s\nnode RPC:    %s\ngenesis:     %s (trusted by phala commands)\n", home, d.RPC(), d.GenesisFile())
			for _, rt := range d.Runtimes {
				fmt.Fprintf(out, "%-12s %s (control %s)\n", rt.Name+":", rt.URL, rt.ControlURL)
				if rt.Log != "" || rt.PherryLog != "" {
					fmt.Fprintf(out, "%-12s processes %v, logs %s %s\n", "", rt.PIDs(), rt.Log, rt.PherryLog)
				}
			}
			readyCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			err = d.WaitReady(readyCtx)
			cancel()
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "devnet ready: chain %s at %s; try `%s`\n", cfg.ChainID, d.RPC(), devnetTry(d.RPC(), g.trust.dataDir, d.GenesisFile()))
			if demo {
				if err := runDemo(ctx, out, d); err != nil {
					return fmt.Errorf("demo: %w", err)
				}
			}
			<-ctx.Done()
			return nil
		},
	}
	c.Flags().StringVar(&home, "home", "", "data directory (reuse it to resume a devnet)")
	c.Flags().IntVar(&cfg.Validators, "validators", cfg.Validators, "number of validators")
	c.Flags().IntVar(&cfg.Workers, "workers", cfg.Workers, "number of worker pRuntimes")
	c.Flags().IntVar(&cfg.BasePort, "base-port", cfg.BasePort, "validator i listens on base+2i (p2p) and base+2i+1 (RPC)")
	c.Flags().IntVar(&cfg.PRuntimePort, "pruntime-port", cfg.PRuntimePort, "first pRuntime public API port (gatekeeper; workers follow); control APIs at this +100")
	c.Flags().BoolVar(&processes, "processes", false, "run each pRuntime and pherry as its own process (built with go build into <home>/bin unless the binaries are given)")
	c.Flags().StringVar(&cfg.PRuntimeBinary, "pruntime-binary", "", "pruntime executable to run the pRuntimes with (implies --processes)")
	c.Flags().StringVar(&cfg.PherryBinary, "pherry-binary", "", "pherry executable to run the pherries with (implies --processes)")
	c.Flags().BoolVar(&demo, "demo", false, "deploy the confidential token and run private transfers and queries")
	c.Flags().StringVar(&pprofAddr, "pprof", "", "serve Go's net/http/pprof profiles of this process on this address (e.g. 127.0.0.1:6060; development only: never expose it)")
	c.Flags().StringVar(&logLevel, "log-level", "warn", "log level of the devnet's parts: debug, info, warn, error")
	c.Flags().StringArrayVar(&params, "param", nil, "set a genesis chain parameter of a new devnet, name=value (repeatable; names as under \"params\" in phala status --json)")
	return c
}

// buildParts sets the pRuntime and pherry executables of a devnet of
// processes: the ones given, else built from this module with go build
// into <home>/bin.
func buildParts(out io.Writer, cfg *devnet.Config) error {
	var pkgs []string
	dir := filepath.Join(cfg.Home, "bin")
	for _, p := range []struct {
		path *string
		name string
	}{{&cfg.PRuntimeBinary, "pruntime"}, {&cfg.PherryBinary, "pherry"}} {
		if *p.path != "" {
			abs, err := filepath.Abs(*p.path)
			if err != nil {
				return err
			}
			if st, err := os.Stat(abs); err != nil || st.IsDir() {
				return fmt.Errorf("--%s-binary %s: not an executable file (%v)", p.name, *p.path, err)
			}
			*p.path = abs
			continue
		}
		pkgs = append(pkgs, "github.com/phalago/phala/cmd/"+p.name)
		*p.path = filepath.Join(dir, p.name)
	}
	if len(pkgs) == 0 {
		return nil
	}
	fmt.Fprintf(out, "building %s into %s ...\n", strings.Join(pkgs, " "), dir)
	build := exec.Command("go", append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("--processes: go build: %v\n%s(run it from the repository, or give --pruntime-binary and --pherry-binary)", err, b)
	}
	return nil
}

// runDemo deploys the token and shows what each party sees.
func runDemo(ctx context.Context, out io.Writer, d *devnet.Devnet) error {
	cl, err := d.Dial(ctx)
	if err != nil {
		return err
	}
	alice, bob := crypto.MustKeyPairFromURI("//Alice"), crypto.MustKeyPairFromURI("//Bob")
	fmt.Fprintln(out, "demo: building examples/contracts/token ...")
	code, err := contractbuild.Build(filepath.Join("examples", "contracts", "token"))
	if err != nil {
		return err
	}
	as, bs := cl.NewSigner(alice), cl.NewSigner(bob)
	upload, _, err := as.Upload(ctx, code, 2, nil)
	if err != nil {
		return err
	}
	rec, err := cl.WaitContract(ctx, upload)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "demo: token deployed as %s on %d worker(s); Alice (the deployer) owns it\n", rec.Identity.Hex(), len(rec.Workers))
	steps := []struct {
		s     *client.Signer
		input string
		what  string
	}{
		{as, "mint " + alice.Public().Hex() + " 1000", "Alice mints 1000 to herself"},
		{as, "transfer " + bob.Public().Hex() + " 250", "Alice sends 250 to Bob"},
		{bs, "transfer " + alice.Public().Hex() + " 50", "Bob sends 50 back"},
	}
	for _, st := range steps {
		// Execute waits for the receipt, so the queries below see it.
		r, res, err := st.s.Execute(ctx, rec, []byte(st.input))
		if err == nil {
			err = r.Err()
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "demo: %s: an encrypted command in block %d (the chain sees only ciphertext), executed with %d gas of the %d it paid for\n", st.what, res.Height, r.GasUsed, r.GasLimit)
	}
	for _, k := range []*crypto.KeyPair{alice, bob} {
		name := map[*crypto.KeyPair]string{alice: "Alice", bob: "Bob"}[k]
		var outb []byte
		var h int64
		for i := 0; i < 50; i++ {
			outb, h, err = cl.QueryContract(ctx, k, rec, []byte("balance"))
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "demo: %s asks a worker for her/his balance: %s (as of block %d)\n", name, outb, h)
	}
	if _, _, err := cl.QueryContract(ctx, bob, rec, []byte("balance "+alice.Public().Hex())); err != nil {
		fmt.Fprintf(out, "demo: Bob asks for Alice's balance: refused (%v)\n", err)
	}
	fmt.Fprintln(out, "demo: done; the devnet keeps running (Ctrl-C to stop)")
	return nil
}

// devnetTry is the command the ready line suggests: phala status with the
// flags that reach this devnet: --node unless it listens on the default
// RPC address, --data-dir unless its genesis was recorded in the default
// one, --genesis if it was recorded nowhere (an empty --data-dir).
func devnetTry(rpc, dataDir, genesisFile string) string {
	try := "go run ./cmd/phala status"
	if rpc != defaultNode {
		try += " --node " + rpc
	}
	switch dataDir {
	case defaultDataDir():
	case "":
		try += " --data-dir '' --genesis " + genesisFile
	default:
		try += " --data-dir " + dataDir
	}
	return try
}

// servePprof serves net/http/pprof's handlers on addr (a development aid
// of the devnet, whose pRuntimes run in this process: `go tool pprof
// http://addr/debug/pprof/profile?seconds=10`).
func servePprof(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() { _ = (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(ln) }()
	return nil
}
