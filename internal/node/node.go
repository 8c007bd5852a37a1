// Package node runs phala-node: CometBFT consensus in-process with the
// chain's ABCI application, plus the home-directory layout (`init`,
// `testnet`) and its configuration.
package node

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"

	dbm "github.com/cometbft/cometbft-db"

	"github.com/cometbft/cometbft/blocksync"
	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/consensus"
	"github.com/cometbft/cometbft/mempool"
	cmtnode "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	sm "github.com/cometbft/cometbft/state"
	"github.com/cometbft/cometbft/statesync"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/phalago/phala/internal/chain/app"
	chainmetrics "github.com/phalago/phala/internal/chain/metrics"
)

// Node is a running (or stopped) validator or full node.
type Node struct {
	dbs trackedDBs
	cfg *cfg.Config
	app *app.App
	cmt *cmtnode.Node
	log *slog.Logger

	reg   *prometheus.Registry // with Options.Metrics
	comet bool                 // CometBFT's metrics are this node's
}

// Options of a node beyond its CometBFT configuration.
type Options struct {
	// Metrics: collect the application's metrics (internal/chain/metrics)
	// and the node's, and CometBFT's own (cometbft_*) on the Prometheus
	// default registry, where CometBFT puts them: only the first node of
	// a process with Metrics gets those (a second one logs a warning and
	// goes without). Gatherer serves them.
	Metrics bool
}

// New builds a node from a loaded configuration. It opens the application
// state; Start runs consensus.
func New(c *cfg.Config, log *slog.Logger) (*Node, error) {
	return NewWithOptions(c, log, Options{})
}

// NewWithOptions is New with opts.
func NewWithOptions(c *cfg.Config, log *slog.Logger, opts Options) (*Node, error) {
	a, err := app.New(AppDir(c), log)
	if err != nil {
		return nil, fmt.Errorf("open application state: %w", err)
	}
	nk, err := p2p.LoadOrGenNodeKey(c.NodeKeyFile())
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("load node key: %w", err)
	}
	pv := privval.LoadOrGenFilePV(c.PrivValidatorKeyFile(), c.PrivValidatorStateFile())
	n := &Node{cfg: c, app: a, log: log}
	mp := cmtnode.DefaultMetricsProvider(c.Instrumentation)
	if opts.Metrics {
		n.reg = prometheus.NewRegistry()
		a.SetMetrics(chainmetrics.NewApp(n.reg, a.Workers))
		if mp, err = n.cometMetrics(c); err != nil {
			a.Close()
			return nil, err
		}
	}
	cn, err := cmtnode.NewNode(c, pv, nk,
		app.ClientCreator(a),
		cmtnode.DefaultGenesisDocProviderFunc(c),
		n.dbs.provider,
		mp,
		NewCometLogger(log.With("module", "cometbft")),
	)
	if err != nil {
		n.dbs.closeAll()
		a.Close()
		return nil, fmt.Errorf("create consensus node: %w", err)
	}
	n.cmt = cn
	if n.reg != nil {
		n.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "phala_node_mempool_txs",
			Help: "Transactions in this node's mempool (transactions).",
		}, func() float64 { return float64(cn.Mempool().Size()) }))
	}
	return n, nil
}

// cometMetrics builds CometBFT's Prometheus metrics for c's chain. They
// register on the default registry and panic if already there (another
// node of this process has them): then this node goes without.
func (n *Node) cometMetrics(c *cfg.Config) (mp cmtnode.MetricsProvider, err error) {
	doc, err := cmtnode.DefaultGenesisDocProviderFunc(c)()
	if err != nil {
		return nil, fmt.Errorf("read genesis: %w", err)
	}
	ic := *c.Instrumentation
	ic.Prometheus = true
	defer func() {
		if p := recover(); p != nil {
			n.log.Warn("CometBFT metrics are already registered by another node of this process; this node serves only its own", "err", fmt.Sprint(p))
			n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			mp = cmtnode.DefaultMetricsProvider(&cfg.InstrumentationConfig{})
		}
	}()
	csm, p2pm, memm, smm, pxm, bsm, ssm := cmtnode.DefaultMetricsProvider(&ic)(doc.ChainID)
	n.comet = true
	return func(string) (*consensus.Metrics, *p2p.Metrics, *mempool.Metrics, *sm.Metrics, *proxy.Metrics, *blocksync.Metrics, *statesync.Metrics) {
		return csm, p2pm, memm, smm, pxm, bsm, ssm
	}, nil
}

// Gatherer returns the node's metrics (nil without Options.Metrics): the
// application's, the node's and, if this node registered them,
// CometBFT's and the Go runtime's from the default registry.
func (n *Node) Gatherer() prometheus.Gatherer {
	if n.reg == nil {
		return nil
	}
	if n.comet {
		return prometheus.Gatherers{n.reg, prometheus.DefaultGatherer}
	}
	return n.reg
}

// Start starts consensus, p2p and RPC.
func (n *Node) Start() error {
	if err := n.cmt.Start(); err != nil {
		return fmt.Errorf("start node: %w", err)
	}
	n.log.Info("node started", "chain_id", n.cmt.GenesisDoc().ChainID, "rpc", n.RPCAddress(), "p2p", n.cfg.P2P.ListenAddress, "height", n.cmt.BlockStore().Height())
	return nil
}

// Stop stops the node and closes its state. It is safe to call once.
func (n *Node) Stop() error {
	var err error
	if n.cmt.IsRunning() {
		if err = n.cmt.Stop(); err == nil {
			n.cmt.Wait()
		}
	}
	// CometBFT v0.38 leaves some of its databases (evidence, tx index)
	// open on stop; close every one so the node can be started again in
	// the same process.
	n.dbs.closeAll()
	if cerr := n.app.Close(); err == nil {
		err = cerr
	}
	return err
}

// RPCAddress returns the CometBFT RPC base URL (http://host:port).
func (n *Node) RPCAddress() string {
	return "http://" + strings.TrimPrefix(n.cfg.RPC.ListenAddress, "tcp://")
}

// Config returns the node's CometBFT configuration.
func (n *Node) Config() *cfg.Config { return n.cfg }

// App returns the ABCI application.
func (n *Node) App() *app.App { return n.app }

// Comet returns the CometBFT node (block store, RPC environment).
func (n *Node) Comet() *cmtnode.Node { return n.cmt }

// trackedDBs opens CometBFT's databases and remembers them for Stop.
type trackedDBs struct {
	mu  sync.Mutex
	dbs []dbm.DB
}

func (t *trackedDBs) provider(ctx *cfg.DBContext) (dbm.DB, error) {
	db, err := cfg.DefaultDBProvider(ctx)
	if err == nil {
		t.mu.Lock()
		t.dbs = append(t.dbs, db)
		t.mu.Unlock()
	}
	return db, err
}

func (t *trackedDBs) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, db := range t.dbs {
		_ = db.Close() // some are already closed by CometBFT
	}
	t.dbs = nil
}

// FreePorts returns n distinct loopback TCP ports free at the time of the
// call (each listened on, then all released), for devnets and test
// networks that must not collide with another on the same machine.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free loopback port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
