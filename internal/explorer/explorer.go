// Package explorer owns the chain explorer: a web server that shows what a
// Phala chain makes public, read through the client package (package
// client) and so verified where the client verifies (headers from the
// trust root, transactions against DataHash, results against
// LastResultsHash, queue messages and state reads against the app hash).
// Pages: the latest blocks and their transactions, a block, a transaction,
// an account, the workers and one worker, the gatekeepers and the key
// sets, the contracts and one contract, the message queue per block, the
// chain parameters; a search box; live updates as blocks arrive.
// docs/explorer.md says what each page shows and where it comes from.
//
// # Why a CLI subcommand (`phala explorer`), not a phala-node flag
//
// The explorer is a reader of public chain data like any other client: it
// runs anywhere a node's RPC is reachable (a laptop, next to a public RPC
// node), needs no change to and no restart of a node, adds no code to
// what validators run, and trusts the node it reads no more than the CLI
// does. Being a client also bounds what it can show: only what the chain
// makes public. Encrypted payloads (commands, queries, sealed keys,
// message payloads) are shown as sizes; nothing is ever decrypted.
//
// # Shape
//
// A Server follows the chain in one goroutine, keeping the last
// Config.Keep blocks (checked by client.Block) in memory for the home page,
// the queue page and the contracts it saw deployed; every other page reads
// the node when it is asked for. Pages are html/template files embedded in
// the binary; the only script is a few inline lines that poll /tip and
// refresh the latest blocks. /events streams the same heights as
// server-sent events for other programs.
package explorer

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chainview"
)

//go:embed templates/*.html
var templateFS embed.FS

// Config configures a Server.
type Config struct {
	// Keep is how many of the latest blocks are kept in memory (home
	// page, queue page, contracts seen deployed).
	Keep int
	// Poll is how often the node is asked for its latest height.
	Poll time.Duration
	// ReadTimeout bounds the node reads of one page (proved reads wait for
	// the next block, so at least a few block times).
	ReadTimeout time.Duration
	// Log receives the server's logs (never a payload).
	Log *slog.Logger
}

// DefaultConfig keeps 30 blocks, polls every 500 ms and gives a page 30 s.
func DefaultConfig() Config {
	return Config{Keep: 30, Poll: 500 * time.Millisecond, ReadTimeout: 30 * time.Second, Log: slog.Default()}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Keep < 1:
		return fmt.Errorf("explorer: Keep %d: keep at least one block", c.Keep)
	case c.Poll <= 0:
		return fmt.Errorf("explorer: Poll %s: must be positive", c.Poll)
	case c.ReadTimeout <= 0:
		return fmt.Errorf("explorer: ReadTimeout %s: must be positive", c.ReadTimeout)
	case c.Log == nil:
		return errors.New("explorer: Log is nil")
	}
	return nil
}

// Server serves the explorer's pages for one chain.
type Server struct {
	c    *client.Client
	cfg  Config
	log  *slog.Logger
	node string // the node's address, for error messages
	tmpl map[string]*template.Template

	mu        sync.Mutex
	blocks    []chainview.Block          // newest first, at most cfg.Keep
	tip       int64                      // newest block in blocks (0: none yet)
	contracts map[crypto.PublicKey]int64 // contracts seen deployed or addressed → height last seen
	subs      map[chan int64]struct{}    // /events listeners
	done      chan struct{}              // closed when Run returns
}

// New returns a server reading chain data with c (which must have a trust
// root: blocks and transactions are proved reads). node is the node's
// address as the user gave it (shown in error pages).
func New(c *client.Client, node string, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !c.Verifies() {
		return nil, fmt.Errorf("explorer: the client has no trust root: %w", client.ErrNoTrustRoot)
	}
	s := &Server{c: c, cfg: cfg, log: cfg.Log.With("module", "explorer"), node: node,
		contracts: map[crypto.PublicKey]int64{}, subs: map[chan int64]struct{}{}, done: make(chan struct{})}
	var err error
	if s.tmpl, err = parseTemplates(); err != nil {
		return nil, err
	}
	return s, nil
}

// Run follows the chain and serves on l until ctx ends; it closes l.
func (s *Server) Run(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.follow(ctx)
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	s.log.Info("explorer serving", "addr", l.Addr().String(), "chain", s.c.ChainID())
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	close(s.done) // ends the /events streams
	cancel()
	shut, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if serr := srv.Shutdown(shut); serr != nil {
		srv.Close()
	}
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// follow keeps the latest cfg.Keep blocks, adding each new one once the
// client has checked it (about one block after it is committed: its
// results and queue messages are proved by the next header).
func (s *Server) follow(ctx context.Context) {
	var next int64
	wait := s.cfg.Poll
	for {
		tip, err := s.c.Height(ctx)
		if err == nil && next == 0 {
			next = max(1, tip-int64(s.cfg.Keep)+1)
		}
		for err == nil && next > 0 && next <= tip && ctx.Err() == nil {
			var b *client.BlockInfo
			if b, err = s.c.Block(ctx, next); err == nil {
				s.add(b)
				next++
			}
		}
		switch {
		case err == nil:
			wait = s.cfg.Poll
		case ctx.Err() == nil:
			// A node that fails: warn, and ask again less and less often
			// (up to every maxFollowRetry).
			wait = min(2*wait, max(maxFollowRetry, s.cfg.Poll))
			s.log.Warn("follow the chain", "height", next, "retry_in", wait.String(), "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// maxFollowRetry is the longest wait between two attempts to read a node
// that fails.
const maxFollowRetry = 10 * time.Second

// add keeps a checked block, indexes the contracts it names and tells the
// /events listeners.
func (s *Server) add(b *client.BlockInfo) {
	v := chainview.DescribeBlock(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocks = append([]chainview.Block{v}, s.blocks...)
	if len(s.blocks) > s.cfg.Keep {
		s.blocks = s.blocks[:s.cfg.Keep]
	}
	s.tip = v.Height
	for _, m := range b.Messages.Messages {
		switch {
		case m.Origin.Kind == api.OriginContract:
			s.contracts[m.Origin.Key] = v.Height
		case m.Origin.Kind == api.OriginModule && m.Topic == api.TopicContractDeployed:
			// A public module message: the contract and its workers (its
			// grant holds sealed keys, which are not looked at).
			if d, err := api.DecodeContractDeployed(m.Payload); err == nil {
				s.contracts[d.Contract] = v.Height
			}
		}
	}
	for _, raw := range b.Txs {
		if tx, err := api.DecodeTx(raw); err == nil {
			if c, ok := tx.Call.(*api.ContractCommand); ok {
				s.contracts[c.Contract] = v.Height
			}
		}
	}
	for ch := range s.subs {
		select {
		case ch <- v.Height:
		default: // a slow listener misses a height, not the next one
		}
	}
}

// recent returns the kept blocks, newest first, and the newest height.
func (s *Server) recent() ([]chainview.Block, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]chainview.Block(nil), s.blocks...), s.tip
}

// knownContracts returns the contracts seen, the most recently seen first.
func (s *Server) knownContracts() []crypto.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]crypto.PublicKey, 0, len(s.contracts))
	for id := range s.contracts {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool {
		hi, hj := s.contracts[out[i]], s.contracts[out[j]]
		if hi != hj {
			return hi > hj
		}
		return out[i].Hex() < out[j].Hex()
	})
	return out
}

func (s *Server) subscribe() chan int64 {
	ch := make(chan int64, 4)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch
}

func (s *Server) unsubscribe(ch chan int64) {
	s.mu.Lock()
	delete(s.subs, ch)
	s.mu.Unlock()
}
