// Package relayer moves data between the chain and pRuntime without
// trusting either side's word: it fetches signed headers, validator sets
// and block messages from a node, packages them for pRuntime's sync and
// dispatch endpoints, and fetches pRuntime's signed egress. pRuntime
// verifies everything it is given.
//
// Relayer (pherry) runs that loop for one node and one pRuntime; Fetcher is
// its node side, usable alone.
package relayer

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	rpcclient "github.com/cometbft/cometbft/rpc/client"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	jsonrpcclient "github.com/cometbft/cometbft/rpc/jsonrpc/client"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
)

// DefaultFetchWorkers is how many requests a Fetcher keeps in flight when
// Workers is zero.
const DefaultFetchWorkers = 8

// maxCachedValidatorSets bounds the Fetcher's cache of encoded validator
// sets (keyed by their hash; a chain has few distinct sets in a batch).
const maxCachedValidatorSets = 16

// Fetcher reads what pRuntime needs from a node. A batch is fetched with up
// to Workers concurrent requests and returned in height order. Validator
// sets are fetched once per distinct ValidatorsHash, so a header usually
// costs one /commit request and a block one /abci_query.
//
// With MaxBytes set, a batch stops growing once it holds MaxBytes: Headers
// and Blocks return the first heights of the range whose encoding fits in
// MaxBytes (at least one), and fetch beyond them only what was already in
// flight when the cap was reached (at most Workers items). The memory a
// batch takes is thus bounded by MaxBytes plus Workers items.
//
// The zero value with C set works; set RPC (see DialRPC) for a connection
// pool sized for concurrent fetching. Safe for concurrent use.
type Fetcher struct {
	C        *client.Client
	RPC      *rpchttp.HTTP // default: C.RPC()
	Workers  int           // concurrent requests; default DefaultFetchWorkers
	MaxBytes int           // cap of a batch's encoded size in bytes; 0: no cap

	mu   sync.Mutex
	vals map[string][]byte // ValidatorsHash -> protobuf-encoded set
}

// DialRPC returns a CometBFT RPC client of the node at addr whose HTTP
// transport keeps up to conns idle connections, so that concurrent
// fetching reuses connections instead of opening one per request.
func DialRPC(addr string, conns int) (*rpchttp.HTTP, error) {
	rpc, _, err := newRPC(addr, conns)
	return rpc, err
}

// newRPC is DialRPC that also returns the HTTP client, whose idle
// connections the relayer drops after an error: a connection kept alive to
// a node that stopped may otherwise be reused.
func newRPC(addr string, conns int) (*rpchttp.HTTP, *http.Client, error) {
	hc, err := jsonrpcclient.DefaultHTTPClient(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("node address %q: %w", addr, err)
	}
	if tr, ok := hc.Transport.(*http.Transport); ok {
		tr.MaxIdleConns = conns * 2
		tr.MaxIdleConnsPerHost = conns
	}
	rpc, err := rpchttp.NewWithClient(addr, "/websocket", hc)
	if err != nil {
		return nil, nil, fmt.Errorf("node address %q: %w", addr, err)
	}
	return rpc, hc, nil
}

func (f *Fetcher) rpc() *rpchttp.HTTP {
	if f.RPC != nil {
		return f.RPC
	}
	return f.C.RPC()
}

func (f *Fetcher) workers() int {
	if f.Workers > 0 {
		return f.Workers
	}
	return DefaultFetchWorkers
}

// Headers returns the signed headers from..to (inclusive) with their
// validator sets; with MaxBytes set, only from..k (k >= from) whose
// encoding fits in MaxBytes.
func (f *Fetcher) Headers(ctx context.Context, from, to int64) (*api.HeaderBatch, error) {
	if to < from {
		return &api.HeaderBatch{}, nil
	}
	out := make([]api.HeaderSync, to-from+1)
	n, err := fetchPrefix(ctx, len(out), f.workers(), f.MaxBytes, func(ctx context.Context, i int) (int, error) {
		h := from + int64(i)
		cm, err := f.rpc().Commit(ctx, &h)
		if err != nil {
			return 0, fmt.Errorf("commit %d: %w", h, err)
		}
		sh := &cm.SignedHeader
		if sh.Header == nil || sh.Commit == nil || sh.Height != h {
			return 0, fmt.Errorf("commit %d: node answered an incomplete or other header", h)
		}
		vb, err := f.validators(ctx, h, sh.ValidatorsHash)
		if err != nil {
			return 0, err
		}
		shb, err := sh.ToProto().Marshal()
		if err != nil {
			return 0, fmt.Errorf("encode header %d: %w", h, err)
		}
		out[i] = api.HeaderSync{SignedHeader: shb, Validators: vb}
		return headerBytes(&out[i]), nil
	})
	if err != nil {
		return nil, err
	}
	clear(out[n:]) // fetched past the cap: not kept
	return &api.HeaderBatch{Headers: out[:n:n]}, nil
}

// headerBytes bounds the size of h in an encoded HeaderBatch.
func headerBytes(h *api.HeaderSync) int {
	return len(h.SignedHeader) + len(h.Validators) + 2*binary.MaxVarintLen64
}

// blockBytes bounds the size of b in an encoded BlockBatch.
func blockBytes(b *api.BlockMessages) int {
	n := len(b.StateRoot) + 4*binary.MaxVarintLen64
	for i := range b.Messages {
		m := &b.Messages[i]
		n += len(m.Payload) + len(m.Topic) + len(m.Origin.Module) + 33 + 4*binary.MaxVarintLen64
	}
	return n
}

// validators returns the encoded validator set of height h, whose header
// names hash: from the cache, or fetched and checked against hash.
func (f *Fetcher) validators(ctx context.Context, h int64, hash []byte) ([]byte, error) {
	f.mu.Lock()
	vb, ok := f.vals[string(hash)]
	f.mu.Unlock()
	if ok {
		return vb, nil
	}
	var all []*cmttypes.Validator
	for page := 1; ; page++ {
		perPage := 100
		res, err := f.rpc().Validators(ctx, &h, &page, &perPage)
		if err != nil {
			return nil, fmt.Errorf("validators at %d: %w", h, err)
		}
		all = append(all, res.Validators...)
		if len(all) >= res.Total || len(res.Validators) == 0 {
			break
		}
	}
	vals := cmttypes.NewValidatorSet(all)
	if !bytes.Equal(vals.Hash(), hash) {
		// pRuntime would refuse it; say so here, where the cause is.
		return nil, fmt.Errorf("validators at %d: the set the node reports does not hash to its header's ValidatorsHash", h)
	}
	vp, err := vals.ToProto()
	if err == nil {
		vb, err = vp.Marshal()
	}
	if err != nil {
		return nil, fmt.Errorf("encode validators at %d: %w", h, err)
	}
	f.mu.Lock()
	if f.vals == nil || len(f.vals) >= maxCachedValidatorSets {
		f.vals = map[string][]byte{}
	}
	f.vals[string(hash)] = vb
	f.mu.Unlock()
	return vb, nil
}

// Blocks returns the queue messages of blocks from..to (inclusive); with
// MaxBytes set, only from..k (k >= from) whose encoding fits in MaxBytes.
func (f *Fetcher) Blocks(ctx context.Context, from, to int64) (*api.BlockBatch, error) {
	if to < from {
		return &api.BlockBatch{}, nil
	}
	out := make([]api.BlockMessages, to-from+1)
	n, err := fetchPrefix(ctx, len(out), f.workers(), f.MaxBytes, func(ctx context.Context, i int) (int, error) {
		bm, err := f.blockAt(ctx, from+int64(i))
		if err != nil {
			return 0, err
		}
		out[i] = *bm
		return blockBytes(bm), nil
	})
	if err != nil {
		return nil, err
	}
	clear(out[n:]) // fetched past the cap: not kept
	return &api.BlockBatch{Blocks: out[:n:n]}, nil
}

// BlocksAt returns the queue messages of the blocks at heights, in that
// order, fetched Workers at a time; MaxBytes does not apply (the caller
// bounds what it asks for).
func (f *Fetcher) BlocksAt(ctx context.Context, heights []int64) ([]api.BlockMessages, error) {
	out := make([]api.BlockMessages, len(heights))
	_, err := fetchPrefix(ctx, len(out), f.workers(), 0, func(ctx context.Context, i int) (int, error) {
		bm, err := f.blockAt(ctx, heights[i])
		if err != nil {
			return 0, err
		}
		out[i] = *bm
		return blockBytes(bm), nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// blockAt fetches the queue messages of block h.
func (f *Fetcher) blockAt(ctx context.Context, h int64) (*api.BlockMessages, error) {
	res, err := f.rpc().ABCIQueryWithOptions(ctx, api.QueryMessages, nil, rpcQueryOpts(h))
	if err != nil {
		return nil, fmt.Errorf("messages of %d: %w", h, err)
	}
	if r := res.Response; r.Code != 0 {
		return nil, fmt.Errorf("messages of %d: %w", h, &api.TxError{Code: api.Code(r.Code), Log: r.Log})
	}
	bm, err := api.DecodeBlockMessages(res.Response.Value)
	if err != nil {
		return nil, fmt.Errorf("messages of %d: %w", h, err)
	}
	if bm.Height != h {
		return nil, fmt.Errorf("messages of %d: %w: node answered height %d", h, api.ErrBadProof, bm.Height)
	}
	return bm, nil
}

// fetchPrefix calls f(i) for i = 0, 1, ... in order of start, with up to
// workers calls at once; f returns the size of item i. With maxBytes > 0
// it starts no call once the items fetched hold maxBytes, and returns k:
// items 0..k-1 are the longest run from 0 whose sizes sum to at most
// maxBytes (at least 1 if n > 0); items fetched beyond k are for the caller
// to drop. Without a cap, k is n. It stops at the first error and returns
// it (or ctx's error).
func fetchPrefix(ctx context.Context, n, workers, maxBytes int, f func(ctx context.Context, i int) (int, error)) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		mu       sync.Mutex
		total    int // bytes fetched so far
		full     atomic.Bool
		sizes    = make([]int, n)
	)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && !full.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				size, err := f(ctx, i)
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				mu.Lock()
				sizes[i] = size
				total += size
				if maxBytes > 0 && total >= maxBytes {
					full.Store(true)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	if err := context.Cause(ctx); err != nil {
		return 0, err // parent cancelled before the end (nil otherwise: cancel runs at return)
	}
	// Every index handed out was fetched (no call is cancelled once
	// started), so 0..started-1 are all there.
	k := min(int(next.Load()), n)
	if maxBytes > 0 {
		sum := 0
		for i := range k {
			sum += sizes[i]
			if sum > maxBytes && i > 0 {
				k = i
				break
			}
		}
	}
	return k, nil
}

func rpcQueryOpts(height int64) rpcclient.ABCIQueryOptions {
	return rpcclient.ABCIQueryOptions{Height: height}
}
