// Package client is the Go SDK of the Phala chain: it builds and signs
// transactions, submits them and waits for their result, and reads state
// with Merkle proofs checked against headers it verified itself with
// CometBFT's light-client verifier, from a trust root the caller gives:
// the chain's genesis or a header trusted out of band (see Options). A
// node supplies data, never trust.
package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	coretypes "github.com/cometbft/cometbft/rpc/core/types"
	jsonrpcclient "github.com/cometbft/cometbft/rpc/jsonrpc/client"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// Client talks to one node's CometBFT RPC. Proved reads are checked
// against headers it verified itself from its trust root (see Options);
// the node supplies data, never trust.
type Client struct {
	rpc     *rpchttp.HTTP
	chainID string
	params  atomic.Pointer[api.Params] // ReadParams replaces them
	v       *verifier                  // nil: no trust root, proved reads fail
}

// rpcIdleConnTimeout is how long an idle RPC connection is kept: below
// the node's ReadTimeout (CometBFT's default 10 s), which is also its
// idle timeout.
const rpcIdleConnTimeout = 5 * time.Second

// Dial connects to a node (e.g. "http://127.0.0.1:26657") without a trust
// root: transactions and unproved reads work, proved reads (Prove and
// everything built on it) fail with ErrNoTrustRoot, and Params are the
// node's word (unproved). It suits a relayer talking to its own node; use
// DialOptions with a genesis or a trusted header to read state.
func Dial(ctx context.Context, addr string) (*Client, error) {
	return DialOptions(ctx, addr, Options{})
}

// DialChain is Dial that refuses a node whose chain id is not chainID
// (empty: accept the node's).
func DialChain(ctx context.Context, addr, chainID string) (*Client, error) {
	return DialOptions(ctx, addr, Options{ChainID: chainID})
}

// DialOptions connects to a node and, with a trust root in opts, verifies
// proved reads from it (light-client verification of every header used).
// It refuses a node whose chain id is not opts.ChainID or the genesis'
// chain id, and reads the chain parameters (proved, with a trust root).
// Errors: ErrUntrustedHeader when the node's headers do not verify from
// the root, ErrTrustExpired when the root is older than the trusting
// period.
func DialOptions(ctx context.Context, addr string, opts Options) (*Client, error) {
	hc, err := jsonrpcclient.DefaultHTTPClient(addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	if t, ok := hc.Transport.(*http.Transport); ok {
		// CometBFT's RPC server closes connections idle for its read
		// timeout (10 s). A POST on a connection it is closing fails with
		// EOF and is not retried: drop idle connections before it does.
		t.IdleConnTimeout = rpcIdleConnTimeout
	}
	rpc, err := rpchttp.NewWithClient(addr, "/websocket", hc)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	st, err := rpc.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("node at %s does not answer (is it running?): %w", addr, err)
	}
	for st.SyncInfo.LatestBlockHeight < 1 { // a brand-new chain: wait for its first block
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("node at %s has not produced a block yet: %w", addr, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if st, err = rpc.Status(ctx); err != nil {
			return nil, fmt.Errorf("node at %s does not answer: %w", addr, err)
		}
	}
	want := opts.ChainID
	if want == "" && opts.Genesis != nil {
		want = opts.Genesis.ChainID
	}
	if want != "" && st.NodeInfo.Network != want {
		return nil, fmt.Errorf("node at %s runs chain %q, expected %q", addr, st.NodeInfo.Network, want)
	}
	c := &Client{rpc: rpc, chainID: st.NodeInfo.Network}
	if !opts.HasRoot() {
		v, _, err := c.query(ctx, api.QueryParams, nil, 0)
		if err != nil {
			return nil, fmt.Errorf("read chain parameters from %s: %w", addr, err)
		}
		p, err := api.DecodeParams(v)
		if err != nil {
			return nil, fmt.Errorf("chain parameters from %s: %w", addr, err)
		}
		c.params.Store(&p)
		return c, nil
	}
	if c.v, err = newVerifier(&opts, c.chainID, rpcSource{c}); err != nil {
		return nil, err
	}
	pv, err := c.ProveRecent(ctx, api.QueryParams, nil)
	if err != nil {
		return nil, fmt.Errorf("read chain parameters from %s: %w", addr, err)
	}
	p, err := api.DecodeParams(pv.Value)
	if err != nil {
		return nil, fmt.Errorf("chain parameters from %s: %w", addr, err)
	}
	c.params.Store(&p)
	return c, nil
}

// ReadParams reads the chain parameters again (proved when the client
// verifies), keeps them for Params and the transactions it builds from
// then on, and returns them. Governance may change them at any block
// (fees among them): a long-lived client calls it when the chain refuses
// a fee as too low (Signer does).
func (c *Client) ReadParams(ctx context.Context) (api.Params, error) {
	var v []byte
	if c.v == nil {
		b, _, err := c.query(ctx, api.QueryParams, nil, 0)
		if err != nil {
			return api.Params{}, fmt.Errorf("read chain parameters: %w", err)
		}
		v = b
	} else {
		pv, err := c.ProveRecent(ctx, api.QueryParams, nil)
		if err != nil {
			return api.Params{}, fmt.Errorf("read chain parameters: %w", err)
		}
		v = pv.Value
	}
	p, err := api.DecodeParams(v)
	if err != nil {
		return api.Params{}, fmt.Errorf("chain parameters: %w", err)
	}
	c.params.Store(&p)
	return p, nil
}

// Verifies reports whether the client has a trust root (proved reads work).
func (c *Client) Verifies() bool { return c.v != nil }

// TrustRoot describes the trust root: "genesis validators" or "header
// <height> <hash>" ("" without one).
func (c *Client) TrustRoot() string {
	switch {
	case c.v == nil:
		return ""
	case c.v.gen != nil:
		return "genesis validators"
	default:
		return fmt.Sprintf("header %d %X", c.v.trust.Height, c.v.trust.Hash)
	}
}

// ChainID returns the chain id.
func (c *Client) ChainID() string { return c.chainID }

// Params returns the chain parameters.
func (c *Client) Params() api.Params {
	if p := c.params.Load(); p != nil {
		return *p
	}
	return api.Params{} // a Client not made by Dial
}

// RPC returns the underlying CometBFT RPC client.
func (c *Client) RPC() *rpchttp.HTTP { return c.rpc }

func (c *Client) query(ctx context.Context, path string, data []byte, height int64) ([]byte, int64, error) {
	res, err := c.rpc.ABCIQueryWithOptions(ctx, path, data, rpcQueryOpts(height, false))
	if err != nil {
		return nil, 0, fmt.Errorf("query %s: %w", path, err)
	}
	if res.Response.Code != 0 {
		return nil, 0, &api.TxError{Code: api.Code(res.Response.Code), Log: res.Response.Log}
	}
	return res.Response.Value, res.Response.Height, nil
}

// Account returns an account's balance and next nonce (unproved).
func (c *Client) Account(ctx context.Context, pk crypto.PublicKey) (api.Account, error) {
	v, _, err := c.query(ctx, api.QueryAccount, pk[:], 0)
	if err != nil || v == nil {
		return api.Account{}, err
	}
	a, err := api.DecodeAccount(v)
	if err != nil {
		return api.Account{}, err
	}
	return *a, nil
}

// ProvedValue is a state value checked against a verified header.
type ProvedValue struct {
	Key    []byte
	Value  []byte // nil: proved absent
	Height int64  // state after this block; proved by the header of Height+1
}

// Prove reads a state value as of the node's latest committed block (so
// it reflects every transaction committed before the call) with its proof,
// and checks it against the app hash of the next header, verified from
// the trust root. It waits (until ctx ends) for the next header to exist
// (about one block). Errors: ErrNoTrustRoot, ErrUntrustedHeader,
// api.ErrBadProof.
func (c *Client) Prove(ctx context.Context, path string, data []byte) (*ProvedValue, error) {
	if c.v == nil {
		return nil, fmt.Errorf("proved read of %s: %w", path, ErrNoTrustRoot)
	}
	key, err := api.QueryKey(path, data)
	if err != nil {
		return nil, err
	}
	res, err := c.rpc.ABCIQueryWithOptions(ctx, path, data, rpcQueryOpts(0, true))
	for err == nil && res.Response.Code == 0 && res.Response.Height < 1 {
		// A brand-new chain whose first block is stored but not yet
		// committed by the application: nothing to prove yet.
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("query %s: the chain has committed no block yet: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		res, err = c.rpc.ABCIQueryWithOptions(ctx, path, data, rpcQueryOpts(0, true))
	}
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", path, err)
	}
	return c.checkAnswer(ctx, path, key, 0, &res.Response, nil)
}

// ProveRecent is Prove without the wait: it reads the state as of the
// block before the node's latest one (at most one block older than
// Prove's), proved by the latest header, and reuses a header this client
// already verified when it is that recent. Reads that need not see a
// transaction committed in the last block (parameters, registrations,
// contract records) use it; one verified header then serves them all.
func (c *Client) ProveRecent(ctx context.Context, path string, data []byte) (*ProvedValue, error) {
	if c.v == nil {
		return nil, fmt.Errorf("proved read of %s: %w", path, ErrNoTrustRoot)
	}
	key, err := api.QueryKey(path, data)
	if err != nil {
		return nil, err
	}
	latest, err := c.Height(ctx)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", path, err)
	}
	lb := c.v.newest(latest, latest+1) // a header the node has the state below
	if lb == nil {
		if latest < 2 { // no state proved by a header yet: wait for one
			return c.Prove(ctx, path, data)
		}
		if lb, err = c.v.verified(ctx, latest, false); err != nil {
			return nil, fmt.Errorf("query %s: %w", path, err)
		}
	}
	res, err := c.rpc.ABCIQueryWithOptions(ctx, path, data, rpcQueryOpts(lb.Height-1, true))
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", path, err)
	}
	return c.checkAnswer(ctx, path, key, lb.Height-1, &res.Response, lb)
}

// ProveAt reads a state value as of the state after block height (>= 1),
// proved by the verified header of height+1, which it waits for (until
// ctx ends). Errors: ErrNoTrustRoot, ErrUntrustedHeader, api.ErrBadProof,
// the node's (a node that pruned that state version refuses).
func (c *Client) ProveAt(ctx context.Context, path string, data []byte, height int64) (*ProvedValue, error) {
	if c.v == nil {
		return nil, fmt.Errorf("proved read of %s: %w", path, ErrNoTrustRoot)
	}
	if height < 1 {
		return nil, fmt.Errorf("proved read of %s at height %d: heights start at 1", path, height)
	}
	key, err := api.QueryKey(path, data)
	if err != nil {
		return nil, err
	}
	lb, err := c.v.verified(ctx, height+1, true)
	if err != nil {
		return nil, fmt.Errorf("query %s at height %d: %w", path, height, err)
	}
	res, err := c.rpc.ABCIQueryWithOptions(ctx, path, data, rpcQueryOpts(height, true))
	if err != nil {
		return nil, fmt.Errorf("query %s at height %d: %w", path, height, err)
	}
	return c.checkAnswer(ctx, path, key, height, &res.Response, lb)
}

// checkAnswer checks a proved ABCI answer for key (at height, 0: any)
// against lb, or the verified header of its height + 1.
func (c *Client) checkAnswer(ctx context.Context, path string, key []byte, height int64, r *abci.ResponseQuery, lb *cmttypes.LightBlock) (*ProvedValue, error) {
	if r.Code != 0 {
		return nil, &api.TxError{Code: api.Code(r.Code), Log: r.Log}
	}
	if !bytes.Equal(r.Key, key) {
		return nil, fmt.Errorf("%w: node answered %s for another key", api.ErrBadProof, path)
	}
	if height != 0 && r.Height != height {
		return nil, fmt.Errorf("%w: asked for %s at height %d, node answered for %d", api.ErrBadProof, path, height, r.Height)
	}
	if r.Height < 1 {
		return nil, fmt.Errorf("%w: %s answered for height %d", api.ErrBadProof, path, r.Height)
	}
	if lb == nil {
		var err error
		if lb, err = c.v.verified(ctx, r.Height+1, true); err != nil {
			return nil, fmt.Errorf("query %s: %w", path, err)
		}
	}
	if err := api.VerifyStateProof(r.Key, r.Value, r.ProofOps, lb.AppHash); err != nil {
		return nil, fmt.Errorf("%s at height %d: %w", path, r.Height, err)
	}
	return &ProvedValue{Key: r.Key, Value: r.Value, Height: r.Height}, nil
}

// SignedHeader returns the header of height with its commit, verified from
// the trust root (see LightBlock). It waits for the height to be
// committed.
func (c *Client) SignedHeader(ctx context.Context, height int64) (*cmttypes.SignedHeader, error) {
	lb, err := c.LightBlock(ctx, height)
	if err != nil {
		return nil, err
	}
	return lb.SignedHeader, nil
}

// LightBlock returns the header of height with its commit and validator
// set, verified from the trust root with CometBFT's light-client verifier
// (each verified header is kept, so a height is verified once). It waits
// for the height to be committed. Errors: ErrNoTrustRoot,
// ErrUntrustedHeader, ErrTrustExpired.
func (c *Client) LightBlock(ctx context.Context, height int64) (*cmttypes.LightBlock, error) {
	if c.v == nil {
		return nil, fmt.Errorf("header %d: %w", height, ErrNoTrustRoot)
	}
	return c.v.verified(ctx, height, true)
}

// TrustedHeight is the height of the newest header the client verified (0
// before any, or without a trust root).
func (c *Client) TrustedHeight() int64 {
	if c.v == nil {
		return 0
	}
	if lb := c.v.newest(0, math.MaxInt64); lb != nil {
		return lb.Height
	}
	return 0
}

// Validators returns the validator set of a height as the node reports it
// (unverified; LightBlock returns a verified one).
func (c *Client) Validators(ctx context.Context, height int64) (*cmttypes.ValidatorSet, error) {
	var all []*cmttypes.Validator
	for page := 1; ; page++ {
		perPage := 100
		res, err := c.rpc.Validators(ctx, &height, &page, &perPage)
		if err != nil {
			return nil, fmt.Errorf("validators at %d: %w", height, err)
		}
		if res.Total > maxValidators {
			return nil, fmt.Errorf("%w: node reports %d validators at %d", ErrUntrustedHeader, res.Total, height)
		}
		all = append(all, res.Validators...)
		if len(all) >= res.Total || len(res.Validators) == 0 {
			break
		}
	}
	return cmttypes.NewValidatorSet(all), nil
}

// rpcSource fetches the node's light blocks (the commit of a height is
// its canonical one, or the node's seen commit for its latest height;
// both carry more than 2/3 of the signatures).
type rpcSource struct{ c *Client }

func (s rpcSource) lightBlock(ctx context.Context, height int64) (*cmttypes.LightBlock, error) {
	cm, err := s.c.rpc.Commit(ctx, &height)
	if err != nil {
		if strings.Contains(err.Error(), "must be less than or equal to the current blockchain height") {
			return nil, fmt.Errorf("header %d: %w", height, errNotYet)
		}
		return nil, fmt.Errorf("header %d: %w", height, err)
	}
	vals, err := s.c.Validators(ctx, height)
	if err != nil {
		return nil, err
	}
	lb := &cmttypes.LightBlock{SignedHeader: &cm.SignedHeader, ValidatorSet: vals}
	if err := lb.ValidateBasic(s.c.chainID); err != nil {
		return nil, fmt.Errorf("%w: header %d from the node: %v", ErrUntrustedHeader, height, err)
	}
	return lb, nil
}

// Messages returns the queue messages of a height (verify them with
// BlockMessages.Verify against the app hash of the next signed header).
func (c *Client) Messages(ctx context.Context, height int64) (*api.BlockMessages, error) {
	v, _, err := c.query(ctx, api.QueryMessages, nil, height)
	if err != nil {
		return nil, err
	}
	bm, err := api.DecodeBlockMessages(v)
	if err != nil {
		return nil, err
	}
	if height != 0 && bm.Height != height {
		return nil, fmt.Errorf("%w: asked for the messages of %d, node answered %d", api.ErrBadProof, height, bm.Height)
	}
	return bm, nil
}

// Height returns the latest committed height.
//
// It is the application's last committed height (ABCI Info), not the
// block store's (Status): CometBFT stores a block before the application
// commits it, so for a moment Status names a height whose state and
// queue messages no query can read yet ("no state at this height").
func (c *Client) Height(ctx context.Context) (int64, error) {
	info, err := c.rpc.ABCIInfo(ctx)
	if err != nil {
		return 0, err
	}
	return info.Response.LastBlockHeight, nil
}

// Broadcast submits encoded transaction bytes and returns once the node's
// mempool admitted them. A refusal is an *api.TxError.
func (c *Client) Broadcast(ctx context.Context, tx []byte) ([32]byte, error) {
	res, err := c.rpc.BroadcastTxSync(ctx, tx)
	if err != nil {
		return [32]byte{}, fmt.Errorf("broadcast: %w", err)
	}
	if res.Code != 0 {
		return [32]byte{}, &api.TxError{Code: api.Code(res.Code), Log: res.Log}
	}
	return api.TxHash(tx), nil
}

// TxResult is the outcome of a committed transaction.
type TxResult struct {
	Hash   [32]byte
	Height int64
	// Nonce is the transaction's nonce (set by Submit; zero when read
	// back by hash): a contract command's nonce, which names its receipt.
	Nonce uint64
	Code  api.Code
	Log   string
}

// Err returns the transaction's failure as an *api.TxError, or nil.
func (r *TxResult) Err() error {
	if r.Code == api.CodeOK {
		return nil
	}
	return &api.TxError{Code: r.Code, Log: r.Log}
}

// WaitTx waits until the transaction is committed and returns its result.
func (c *Client) WaitTx(ctx context.Context, hash [32]byte) (*TxResult, error) {
	delay := 20 * time.Millisecond
	for {
		res, err := c.rpc.Tx(ctx, hash[:], false)
		if err == nil {
			return txResult(hash, res), nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for tx %s: %w", hex.EncodeToString(hash[:4]), ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}

func txResult(hash [32]byte, res *coretypes.ResultTx) *TxResult {
	return &TxResult{Hash: hash, Height: res.Height, Code: api.Code(res.TxResult.Code), Log: res.TxResult.Log}
}

// Submit broadcasts a transaction and waits for it to be committed. The
// error is non-nil if the mempool refused it or the block rejected it.
func (c *Client) Submit(ctx context.Context, tx *api.Tx) (*TxResult, error) {
	b := tx.Encode()
	h, err := c.Broadcast(ctx, b)
	var refused *api.TxError
	if errors.As(err, &refused) {
		return nil, err // refused before it entered the mempool: definitive
	}
	if err != nil {
		return nil, &UnknownOutcomeError{Hash: api.TxHash(b), Err: err}
	}
	res, err := c.WaitTx(ctx, h)
	if err != nil {
		return nil, &UnknownOutcomeError{Hash: h, Err: err}
	}
	res.Nonce = tx.Nonce
	return res, res.Err()
}

// UnknownOutcomeError is Submit's error when a transaction may have
// reached the chain but its result is unknown (the node failed or went
// away mid-flight): its hash says where to look. Broadcasting the same
// bytes again is safe (a duplicate is refused); signing the call anew is
// not, if the first one was committed: check first.
type UnknownOutcomeError struct {
	Hash [32]byte
	Err  error
}

func (e *UnknownOutcomeError) Error() string {
	return fmt.Sprintf("transaction %X may have reached the chain, its result is unknown (%v): check it with `phala tx %X` once the node answers", e.Hash, e.Err, e.Hash)
}

func (e *UnknownOutcomeError) Unwrap() error { return e.Err }
