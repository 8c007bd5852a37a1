package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/spf13/cobra"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/metrics"
	"github.com/phalago/phala/internal/node"
)

func defaultHome() string {
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".phala-node")
	}
	return ".phala-node"
}

func initCmd() *cobra.Command {
	var opts node.InitOptions
	var home string
	var gatekeepers, measurements []string
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a home directory for a single-validator chain",
		Long: `init writes config/config.toml, a validator key, a node key and a genesis
whose validator is this node. The genesis funds the development accounts
(//Alice, //Bob, ... from Substrate's development phrase), accepts sim
attestation signed by the development attestation key, and sets the default
chain parameters; edit config/genesis.json before the first start to change
them.

A chain runs contracts once its genesis names a gatekeeper (--gatekeeper, the
identity key that ` + "`pruntime init`" + ` or ` + "`pruntime identity`" + ` prints; the first one listed creates the
MasterKey) and allows the pRuntime builds that may register (--measurement,
the measurement ` + "`pruntime init`" + ` or ` + "`pruntime --version`" + ` prints; repeat both
flags for several).`,
		Example: `  phala-node init --home ~/.phala-node --chain-id phala-dev
  pruntime init --data-dir gk    # prints its identity and measurement
  phala-node init --home ~/.phala-node --gatekeeper 0x7c35... --measurement 60a5...`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g, err := initGenesis(gatekeepers, measurements)
			if err != nil {
				return err
			}
			opts.Genesis = g
			if err := node.Init(home, opts); err != nil {
				return err
			}
			fmt.Printf("initialized chain %q in %s (%d gatekeepers, %d allowed pRuntime measurements)\nstart it with: phala-node start --home %s\n",
				opts.ChainID, home, len(g.Gatekeepers), len(g.Attestation.Measurements), home)
			return nil
		},
	}
	c.Flags().StringArrayVar(&gatekeepers, "gatekeeper", nil, "identity key (0x hex or SS58) of a genesis gatekeeper's pRuntime; repeatable, the first creates the MasterKey")
	c.Flags().StringArrayVar(&measurements, "measurement", nil, "hex measurement of a pRuntime build allowed to register; repeatable")
	c.Flags().StringVar(&home, "home", defaultHome(), "node home directory")
	c.Flags().StringVar(&opts.ChainID, "chain-id", "phala-dev", "chain id")
	c.Flags().StringVar(&opts.Moniker, "moniker", "phala-node", "node name")
	c.Flags().StringVar(&opts.RPCAddr, "rpc", "127.0.0.1:26657", "RPC listen address")
	c.Flags().StringVar(&opts.P2PAddr, "p2p", "127.0.0.1:26656", "p2p listen address")
	return c
}

// metricsUsage is the --metrics flag's of start and dev.
const metricsUsage = "serve Prometheus metrics at http://ADDR/metrics (host:port; empty: off): CometBFT's (cometbft_*) and the chain application's (phala_*; docs/metrics.md)"

func devCmd() *cobra.Command {
	var home, metricsAddr string
	c := &cobra.Command{
		Use:   "dev",
		Short: "Run a single-validator development chain (initialized on first use)",
		Long: `dev initializes --home as a single-validator development chain if it holds
no genesis yet (chain id phala-dev, dev accounts funded, sim attestation
accepted), then runs it until interrupted. Data is kept in --home, so running
dev again resumes the same chain.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conf := node.DefaultCometConfig(home)
			if _, err := os.Stat(conf.GenesisFile()); errors.Is(err, os.ErrNotExist) {
				if err := node.Init(home, node.InitOptions{ChainID: "phala-dev"}); err != nil {
					return err
				}
				fmt.Printf("initialized development chain in %s\n", home)
			}
			return runNode(cmd, home, metricsAddr)
		},
	}
	c.Flags().StringVar(&home, "home", filepath.Join(os.TempDir(), "phala-dev"), "node home directory")
	c.Flags().StringVar(&metricsAddr, "metrics", "", metricsUsage)
	return c
}

func runNode(cmd *cobra.Command, home, metricsAddr string) error {
	stop := notifyStop()
	log, err := logger(cmd)
	if err != nil {
		return err
	}
	conf, err := node.LoadCometConfig(home)
	if err != nil {
		return err
	}
	n, err := node.NewWithOptions(conf, log, node.Options{Metrics: metricsAddr != ""})
	if err != nil {
		return err
	}
	if metricsAddr != "" {
		ms, err := metrics.Listen(metricsAddr, n.Gatherer(), log.With("module", "metrics"))
		if err != nil {
			n.Stop()
			return fmt.Errorf("--metrics: %w", err)
		}
		defer ms.Close()
	}
	if err := n.Start(); err != nil {
		n.Stop()
		return err
	}
	fmt.Printf("phala-node ready: chain %s, RPC %s (Ctrl-C to stop)\n", n.App().ChainID(), n.RPCAddress())
	sig := <-stop
	log.Info("stopping", "signal", sig.String())
	return n.Stop()
}

func startCmd() *cobra.Command {
	var home, metricsAddr string
	c := &cobra.Command{
		Use:   "start",
		Short: "Run the node until interrupted",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runNode(cmd, home, metricsAddr)
		},
	}
	c.Flags().StringVar(&home, "home", defaultHome(), "node home directory")
	c.Flags().StringVar(&metricsAddr, "metrics", "", metricsUsage)
	return c
}

func testnetCmd() *cobra.Command {
	var (
		dir                       string
		opts                      node.TestnetOptions
		gatekeepers, measurements []string
		timeoutCommit             time.Duration
	)
	c := &cobra.Command{
		Use:   "testnet",
		Short: "Write home directories for an N-validator network, on loopback or one validator per host",
		Long: `testnet writes DIR/node0 ... DIR/node{N-1}, each a validator of one shared
genesis, all persistent peers of each other. The genesis is init's: the
development accounts funded, and --gatekeeper and --measurement as for init.
Start each with phala-node start --home DIR/node<i> (copy DIR/node<i> to its
host first when the nodes run on several hosts).

On one machine (default): every node listens on --host, node i on port
BASE+2i for p2p and BASE+2i+1 for RPC.

On several hosts: --hosts gives one address per validator (IP or DNS name,
in validator order). Node i then listens on its host's BASE (p2p) and BASE+1
(RPC), announces HOST:BASE as its p2p external address, and its peers dial it
there; a host named twice gets its second node 2 ports up. --listen-host
binds every node's listeners to another address than its host (0.0.0.0: all
interfaces, e.g. behind NAT) while peers still dial --hosts. The RPC port
serves the pherries and clients of the network: keep it on a private
network or behind a firewall that admits them.`,
		Example: `  phala-node testnet --validators 4 --output ./testnet
  phala-node testnet --validators 4 --hosts 10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4 \
      --gatekeeper 0x7c35... --measurement 60a5... --output ./testnet`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(opts.Hosts) > 0 {
				if cmd.Flags().Changed("host") {
					return fmt.Errorf("give --host (every node on one machine) or --hosts (one per validator), not both")
				}
				opts.Host = ""
				if !cmd.Flags().Changed("validators") {
					opts.Validators = len(opts.Hosts)
				}
			}
			g, err := initGenesis(gatekeepers, measurements)
			if err != nil {
				return err
			}
			opts.Genesis = g
			addrs, err := opts.Addrs()
			if err != nil {
				return err
			}
			if timeoutCommit > 0 {
				opts.Override = func(_ int, c *cmtcfg.Config) { c.Consensus.TimeoutCommit = timeoutCommit }
			}
			homes, err := node.Testnet(dir, opts)
			if err != nil {
				return err
			}
			for i, h := range homes {
				a := addrs[i]
				fmt.Printf("node%d: %s (host %s, p2p %d, rpc %d)\n", i, h, a.Host, a.P2PPort, a.RPCPort)
			}
			return nil
		},
	}
	c.Flags().IntVar(&opts.Validators, "validators", 4, "number of validators (default with --hosts: one per host)")
	c.Flags().StringVar(&dir, "output", "./testnet", "output directory")
	c.Flags().StringVar(&opts.ChainID, "chain-id", "phala-testnet", "chain id")
	c.Flags().IntVar(&opts.BasePort, "base-port", 26656, "first port")
	c.Flags().StringVar(&opts.Host, "host", "127.0.0.1", "listen host of every node when all run on one machine")
	c.Flags().StringSliceVar(&opts.Hosts, "hosts", nil, "address of each validator's host, comma-separated in validator order (peers dial them; p2p external addresses)")
	c.Flags().StringVar(&opts.ListenHost, "listen-host", "", "with --hosts: bind p2p and RPC to this address instead of each node's host (0.0.0.0: all interfaces)")
	c.Flags().DurationVar(&timeoutCommit, "timeout-commit", 0, "CometBFT consensus timeout_commit of every node (0: the default, 500ms)")
	c.Flags().StringArrayVar(&gatekeepers, "gatekeeper", nil, "identity key (0x hex or SS58) of a genesis gatekeeper's pRuntime (pruntime init prints it); repeatable, the first creates the MasterKey")
	c.Flags().StringArrayVar(&measurements, "measurement", nil, "hex measurement of a pRuntime build allowed to register; repeatable")
	return c
}

// initGenesis is the development genesis naming gatekeepers and allowed
// measurements given on the command line.
func initGenesis(gatekeepers, measurements []string) (*api.GenesisState, error) {
	var ms []api.HexBytes
	for _, m := range measurements {
		var h api.HexBytes
		if err := h.UnmarshalText([]byte(m)); err != nil || len(h) == 0 || len(h) > api.MaxMeasurementBytes {
			return nil, fmt.Errorf("--measurement %q: want 1 to %d bytes of hex (as `pruntime init` prints it)", m, api.MaxMeasurementBytes)
		}
		ms = append(ms, h)
	}
	g := node.DevGenesisState(ms...)
	for _, k := range gatekeepers {
		pk, err := crypto.ParsePublicKey(k)
		if err != nil {
			return nil, fmt.Errorf("--gatekeeper %q: %w (give the identity key `pruntime init` prints)", k, err)
		}
		g.Gatekeepers = append(g.Gatekeepers, pk)
	}
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	return g, nil
}
