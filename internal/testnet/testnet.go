// Package testnet starts in-process networks of phala-node validators on
// loopback for tests: one or N validators sharing a genesis, with helpers to
// stop and restart a node and to wait for a condition with a deadline. Logs
// go to the test's log.
package testnet

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/internal/node"
)

// Options configure a network.
type Options struct {
	Validators    int
	ChainID       string
	Genesis       *api.GenesisState // default: node.DevGenesisState()
	TimeoutCommit time.Duration     // default 100ms
	LogLevel      slog.Level        // default Warn
	Override      func(i int, c *cfg.Config)
	// StartTimeout bounds the wait for height 2 (default 30s; longer for a
	// genesis that writes much state).
	StartTimeout time.Duration
	// Metrics: nodes collect metrics (node.Options.Metrics); serve
	// Node(i).Gatherer().
	Metrics bool
}

// Network is a set of in-process validators.
type Network struct {
	t       testing.TB
	ChainID string
	Homes   []string
	nodes   []*node.Node
	log     *slog.Logger
	metrics bool
}

// New starts a network and stops it when the test ends.
func New(t testing.TB, opts Options) *Network {
	t.Helper()
	if opts.Validators == 0 {
		opts.Validators = 1
	}
	if opts.ChainID == "" {
		opts.ChainID = "phala-test"
	}
	if opts.TimeoutCommit == 0 {
		opts.TimeoutCommit = 100 * time.Millisecond
	}
	if opts.LogLevel == 0 {
		opts.LogLevel = slog.LevelWarn
	}
	ports := FreePorts(t, 2*opts.Validators)
	homes, err := node.Testnet(t.TempDir(), node.TestnetOptions{
		ChainID:    opts.ChainID,
		Validators: opts.Validators,
		Ports:      ports,
		Genesis:    opts.Genesis,
		Override: func(i int, c *cfg.Config) {
			c.Consensus.TimeoutCommit = opts.TimeoutCommit
			c.Consensus.TimeoutPropose = 500 * time.Millisecond
			c.Consensus.TimeoutPrevote = 200 * time.Millisecond
			c.Consensus.TimeoutPrecommit = 200 * time.Millisecond
			if opts.Override != nil {
				opts.Override(i, c)
			}
		},
	})
	if err != nil {
		t.Fatalf("testnet: %v", err)
	}
	n := &Network{t: t, ChainID: opts.ChainID, Homes: homes, nodes: make([]*node.Node, len(homes)), log: TestLogger(t, opts.LogLevel), metrics: opts.Metrics}
	t.Cleanup(n.StopAll)
	for i := range homes {
		n.Start(i)
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 30 * time.Second
	}
	n.WaitHeight(2, opts.StartTimeout)
	return n
}

// Start starts node i (again).
func (n *Network) Start(i int) {
	n.t.Helper()
	if n.nodes[i] != nil {
		n.t.Fatalf("node %d already running", i)
	}
	c, err := node.LoadCometConfig(n.Homes[i])
	if err != nil {
		n.t.Fatalf("node %d: %v", i, err)
	}
	nd, err := node.NewWithOptions(c, n.log.With("node", i), node.Options{Metrics: n.metrics})
	if err != nil {
		n.t.Fatalf("node %d: %v", i, err)
	}
	if err := nd.Start(); err != nil {
		n.t.Fatalf("node %d: %v", i, err)
	}
	n.nodes[i] = nd
}

// Stop stops node i.
func (n *Network) Stop(i int) {
	n.t.Helper()
	if n.nodes[i] == nil {
		return
	}
	if err := n.nodes[i].Stop(); err != nil {
		n.t.Errorf("stop node %d: %v", i, err)
	}
	n.nodes[i] = nil
}

// Restart stops and starts node i.
func (n *Network) Restart(i int) {
	n.Stop(i)
	n.Start(i)
}

// StopAll stops every running node.
func (n *Network) StopAll() {
	for i := range n.nodes {
		n.Stop(i)
	}
}

// Node returns node i (nil if stopped).
func (n *Network) Node(i int) *node.Node { return n.nodes[i] }

// RPC returns the RPC address of node i (valid while it runs).
func (n *Network) RPC(i int) string { return n.nodes[i].RPCAddress() }

// Genesis returns the network's genesis document.
func (n *Network) Genesis() *cmttypes.GenesisDoc {
	n.t.Helper()
	doc, err := cmttypes.GenesisDocFromFile(filepath.Join(n.Homes[0], "config", "genesis.json"))
	if err != nil {
		n.t.Fatalf("genesis: %v", err)
	}
	return doc
}

// Client dials node i, trusting the network's genesis validators.
func (n *Network) Client(i int) *client.Client {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.DialOptions(ctx, n.RPC(i), client.Options{Genesis: n.Genesis()})
	if err != nil {
		n.t.Fatalf("dial node %d: %v", i, err)
	}
	return c
}

// Height returns the block store height of node i.
func (n *Network) Height(i int) int64 { return n.nodes[i].Comet().BlockStore().Height() }

// WaitHeight waits until every running node has committed height h.
func (n *Network) WaitHeight(h int64, timeout time.Duration) {
	n.t.Helper()
	WaitFor(n.t, timeout, fmt.Sprintf("all nodes at height %d", h), func() (bool, error) {
		for i, nd := range n.nodes {
			if nd != nil && n.Height(i) < h {
				return false, nil
			}
		}
		return true, nil
	})
}

// WaitFor polls cond until it returns true, failing the test if it returns
// an error or the timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := 10 * time.Millisecond
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(delay)
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// FreePorts returns n free loopback TCP ports (node.FreePorts), failing
// t if there are none.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := node.FreePorts(n)
	if err != nil {
		t.Fatalf("free ports: %v", err)
	}
	return ports
}

// TestLogger returns a logger writing to t.Log at level, silent once the
// test has ended.
func TestLogger(t testing.TB, level slog.Level) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}
