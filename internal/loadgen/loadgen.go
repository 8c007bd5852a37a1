// Package loadgen drives a running node with signed transfers and measures
// how many commit per second. It is the engine of `phala-node bench` and of
// the in-process benchmark.
//
// Method: fund Accounts fresh accounts from the funder; pre-sign Txs
// transfers (each account sends to the next, nonces ascending) before the
// clock starts; submit them in JSON-RPC batches of broadcast_tx_sync from
// Workers goroutines, each owning whole accounts so nonces arrive in order;
// wait until every transaction is committed; count successful transfers in
// the blocks and divide by the span of their header times.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	coretypes "github.com/cometbft/cometbft/rpc/core/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
)

// Config of a run.
type Config struct {
	RPC      string
	Txs      int
	Accounts int
	Workers  int
	Batch    int
	Funder   *crypto.KeyPair
	Log      *slog.Logger
}

// DefaultConfig returns a run of 20,000 transfers from 64 accounts.
func DefaultConfig(rpc string) Config {
	return Config{RPC: rpc, Txs: 20_000, Accounts: 64, Workers: 8, Batch: 100, Funder: crypto.MustKeyPairFromURI("//Alice"), Log: slog.Default()}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Txs < 1, c.Accounts < 1, c.Workers < 1, c.Batch < 1:
		return errors.New("txs, accounts, workers and batch must be positive")
	case c.Workers > c.Accounts:
		return errors.New("need at least as many accounts as workers")
	case c.Funder == nil:
		return errors.New("no funder key")
	}
	return nil
}

// Result of a run.
type Result struct {
	Submitted   int
	Refused     int // refused by CheckTx
	Committed   int // committed with code 0
	Failed      int // committed with a non-zero code
	Blocks      int
	MaxBlockTxs int
	Span        time.Duration // header time of the last load block minus that of the block before the first
	Wall        time.Duration // submission start to last commit seen
	TPS         float64       // Committed / Span
}

func (r *Result) String() string {
	return fmt.Sprintf("committed %d transfers in %d blocks over %s: %.0f transfers/s (wall clock %s, %.0f/s; max %d txs/block; refused %d, failed %d)",
		r.Committed, r.Blocks, r.Span.Round(time.Millisecond), r.TPS, r.Wall.Round(time.Millisecond), float64(r.Committed)/r.Wall.Seconds(), r.MaxBlockTxs, r.Refused, r.Failed)
}

// Run performs one measurement.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c, err := client.Dial(ctx, cfg.RPC)
	if err != nil {
		return nil, err
	}
	keys := make([]*crypto.KeyPair, cfg.Accounts)
	for i := range keys {
		if keys[i], _, err = crypto.GenerateKeyPair(); err != nil {
			return nil, err
		}
	}
	if err := fund(ctx, c, cfg, keys); err != nil {
		return nil, fmt.Errorf("fund load accounts: %w", err)
	}
	cfg.Log.Info("signing transfers", "txs", cfg.Txs, "accounts", cfg.Accounts)
	perWorker := sign(c, cfg, keys)

	start, err := c.RPC().Status(ctx)
	if err != nil {
		return nil, err
	}
	h0 := start.SyncInfo.LatestBlockHeight
	t0 := time.Now()
	sub, err := broadcast(ctx, cfg.RPC, perWorker, cfg.Batch)
	if err != nil {
		return nil, err
	}
	cfg.Log.Info("submitted", "txs", sub.submitted, "refused", sub.refused, "in", time.Since(t0).Round(time.Millisecond))
	if sub.firstRefusal != "" {
		cfg.Log.Warn("some transactions were refused", "first", sub.firstRefusal)
	}
	if err := waitMempoolEmpty(ctx, c); err != nil {
		return nil, err
	}
	wall := time.Since(t0)
	end, err := c.RPC().Status(ctx)
	if err != nil {
		return nil, err
	}
	res := &Result{Submitted: sub.submitted, Refused: sub.refused, Wall: wall}
	return res, count(ctx, c, h0, end.SyncInfo.LatestBlockHeight, res)
}

// count scans blocks (h0, h1] for load transactions.
func count(ctx context.Context, c *client.Client, h0, h1 int64, res *Result) error {
	t0, err := blockTime(ctx, c, h0)
	if err != nil {
		return err
	}
	var last time.Time
	for h := h0 + 1; h <= h1; h++ {
		br, err := c.RPC().BlockResults(ctx, &h)
		if err != nil {
			return fmt.Errorf("block results %d: %w", h, err)
		}
		if len(br.TxsResults) == 0 {
			continue
		}
		res.Blocks++
		res.MaxBlockTxs = max(res.MaxBlockTxs, len(br.TxsResults))
		for _, r := range br.TxsResults {
			if r.Code == 0 {
				res.Committed++
			} else {
				res.Failed++
			}
		}
		if last, err = blockTime(ctx, c, h); err != nil {
			return err
		}
	}
	if res.Committed == 0 {
		return errors.New("no transfer committed")
	}
	res.Span = last.Sub(t0)
	res.TPS = float64(res.Committed) / res.Span.Seconds()
	return nil
}

func blockTime(ctx context.Context, c *client.Client, h int64) (time.Time, error) {
	b, err := c.RPC().Header(ctx, &h)
	if err != nil {
		return time.Time{}, fmt.Errorf("header %d: %w", h, err)
	}
	return b.Header.Time, nil
}

func fund(ctx context.Context, c *client.Client, cfg Config, keys []*crypto.KeyPair) error {
	s := c.NewSigner(cfg.Funder)
	perAccount := uint64(cfg.Txs/cfg.Accounts+1) * (c.Params().MinFee(256) + 1) * 2
	var last [32]byte
	for _, k := range keys {
		tx, err := s.Sign(ctx, &api.Transfer{To: k.Public(), Amount: perAccount})
		if err != nil {
			return err
		}
		if last, err = c.Broadcast(ctx, tx.Encode()); err != nil {
			return err
		}
	}
	r, err := c.WaitTx(ctx, last)
	if err != nil {
		return err
	}
	return r.Err()
}

// sign pre-signs the load, split by worker; each worker's list keeps every
// account's nonces ascending.
func sign(c *client.Client, cfg Config, keys []*crypto.KeyPair) [][][]byte {
	per := make([][][]byte, cfg.Workers)
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for w := range per {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			// Transfer i is account i%A's nonce i/A; worker w owns accounts a with a%W == w.
			var txs [][]byte
			for i := 0; i < cfg.Txs; i++ {
				a := i % len(keys)
				if a%cfg.Workers != w {
					continue
				}
				to := keys[(a+1)%len(keys)].Public()
				tx := client.BuildTx(c.ChainID(), c.Params(), keys[a], uint64(i/len(keys)), &api.Transfer{To: to, Amount: 1})
				txs = append(txs, tx.Encode())
			}
			per[w] = txs
		}(w)
	}
	wg.Wait()
	return per
}

type broadcastResult struct {
	submitted, refused int
	firstRefusal       string
}

// broadcast submits each list of transactions, in order, from its own
// connection in JSON-RPC batches of broadcast_tx_sync, and counts the
// refusals.
func broadcast(ctx context.Context, addr string, lists [][][]byte, batch int) (*broadcastResult, error) {
	var submitted, refused atomic.Int64
	var firstRefusal atomic.Pointer[string]
	var wg sync.WaitGroup
	errc := make(chan error, len(lists))
	for _, txs := range lists {
		wg.Add(1)
		go func(txs [][]byte) {
			defer wg.Done()
			rpc, err := rpchttp.New(addr, "/websocket")
			if err != nil {
				errc <- err
				return
			}
			for i := 0; i < len(txs); {
				b := rpc.NewBatch()
				end := min(i+batch, len(txs))
				for _, tx := range txs[i:end] {
					if _, err := b.BroadcastTxSync(ctx, tx); err != nil {
						errc <- err
						return
					}
				}
				res, err := b.Send(ctx)
				if err != nil {
					errc <- fmt.Errorf("send batch: %w", err)
					return
				}
				// A command refused because the block's gas for its
				// worker is full used no nonce: send it (and the
				// sender's later ones, refused as ahead) again once a
				// block has passed.
				full := len(res)
				for j, r := range res {
					if r, ok := r.(*coretypes.ResultBroadcastTx); ok && r.Code == uint32(api.CodeWorkerBlockFull) {
						full = j
						break
					}
				}
				for _, r := range res[:full] {
					switch r := r.(type) {
					case *coretypes.ResultBroadcastTx:
						if r.Code != 0 {
							refused.Add(1)
							firstRefusal.CompareAndSwap(nil, &r.Log)
						}
					default:
						refused.Add(1)
						msg := fmt.Sprint(r)
						firstRefusal.CompareAndSwap(nil, &msg)
					}
				}
				submitted.Add(int64(full))
				i += full
				if full < len(res) {
					select {
					case <-ctx.Done():
						errc <- ctx.Err()
						return
					case <-time.After(100 * time.Millisecond):
					}
				}
			}
		}(txs)
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	out := &broadcastResult{submitted: int(submitted.Load()), refused: int(refused.Load())}
	if r := firstRefusal.Load(); r != nil {
		out.firstRefusal = *r
	}
	return out, nil
}

// waitMempoolEmpty waits until the node's mempool has no transaction left.
func waitMempoolEmpty(ctx context.Context, c *client.Client) error {
	for {
		n, err := c.RPC().NumUnconfirmedTxs(ctx)
		if err != nil {
			return err
		}
		if n.Total == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
