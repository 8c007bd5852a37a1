// Package node runs phala-node: CometBFT consensus in-process with the
// chain's ABCI application, plus the home-directory layout (`init`,
// `testnet`) and its configuration.
package node

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"

	dbm "github.com/cometbft/cometbft-db"

	cfg "github.com/cometbft/cometbft/config"
	cmtnode "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"

	"github.com/phalago/phala/internal/chain/app"
)

// Node is a running (or stopped) validator or full node.
type Node struct {
	dbs trackedDBs
	cfg *cfg.Config
	app *app.App
	cmt *cmtnode.Node
	log *slog.Logger
}

// New builds a node from a loaded configuration. It opens the application
// state; Start runs consensus.
func New(c *cfg.Config, log *slog.Logger) (*Node, error) {
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
	cn, err := cmtnode.NewNode(c, pv, nk,
		proxy.NewConnSyncLocalClientCreator(a),
		cmtnode.DefaultGenesisDocProviderFunc(c),
		n.dbs.provider,
		cmtnode.DefaultMetricsProvider(c.Instrumentation),
		NewCometLogger(log.With("module", "cometbft")),
	)
	if err != nil {
		n.dbs.closeAll()
		a.Close()
		return nil, fmt.Errorf("create consensus node: %w", err)
	}
	n.cmt = cn
	return n, nil
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
