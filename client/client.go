// Package client is the Go SDK of the Phala chain: it builds and signs
// transactions, submits them and waits for their result, and reads state
// with Merkle proofs checked against signed headers.
package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	coretypes "github.com/cometbft/cometbft/rpc/core/types"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// Client talks to one node's CometBFT RPC.
type Client struct {
	rpc     *rpchttp.HTTP
	chainID string
	params  api.Params
}

// Dial connects to a node (e.g. "http://127.0.0.1:26657") and reads its chain
// id and parameters (proved against a signed header). Use DialChain to
// refuse a node of another chain: transactions are signed for the chain id
// the node reports.
func Dial(ctx context.Context, addr string) (*Client, error) { return DialChain(ctx, addr, "") }

// DialChain is Dial that refuses a node whose chain id is not chainID
// (empty: accept the node's).
func DialChain(ctx context.Context, addr, chainID string) (*Client, error) {
	rpc, err := rpchttp.New(addr, "/websocket")
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
	if chainID != "" && st.NodeInfo.Network != chainID {
		return nil, fmt.Errorf("node at %s runs chain %q, expected %q", addr, st.NodeInfo.Network, chainID)
	}
	c := &Client{rpc: rpc, chainID: st.NodeInfo.Network}
	pv, err := c.Prove(ctx, api.QueryParams, nil)
	if err != nil {
		return nil, fmt.Errorf("read chain parameters from %s: %w", addr, err)
	}
	if c.params, err = api.DecodeParams(pv.Value); err != nil {
		return nil, fmt.Errorf("chain parameters from %s: %w", addr, err)
	}
	return c, nil
}

// ChainID returns the chain id.
func (c *Client) ChainID() string { return c.chainID }

// Params returns the chain parameters.
func (c *Client) Params() api.Params { return c.params }

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

// ProvedValue is a state value checked against a signed header.
type ProvedValue struct {
	Key    []byte
	Value  []byte // nil: proved absent
	Height int64  // state after this block; proved by the header of Height+1
}

// Prove reads a state value with its proof and checks it against the app
// hash of the next header, whose commit signatures are checked against the
// validator set the node reports for that height (see SignedHeader for what
// that trusts). It waits (until ctx ends) for the next header to exist.
func (c *Client) Prove(ctx context.Context, path string, data []byte) (*ProvedValue, error) {
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
	r := res.Response
	if r.Code != 0 {
		return nil, &api.TxError{Code: api.Code(r.Code), Log: r.Log}
	}
	if !bytes.Equal(r.Key, key) {
		return nil, fmt.Errorf("%w: node answered %s for another key", api.ErrBadProof, path)
	}
	sh, err := c.SignedHeader(ctx, r.Height+1)
	if err != nil {
		return nil, err
	}
	if err := api.VerifyStateProof(r.Key, r.Value, r.ProofOps, sh.AppHash); err != nil {
		return nil, fmt.Errorf("%s at height %d: %w", path, r.Height, err)
	}
	return &ProvedValue{Key: r.Key, Value: r.Value, Height: r.Height}, nil
}

// SignedHeader returns the header of height with its commit, after checking
// that the validator set the node reports hashes to the header's
// ValidatorsHash and that validators holding more than 2/3 of its power
// signed it. It waits for the height to be committed.
//
// It trusts the node for the validator set itself; verifying validator-set
// changes from a trusted genesis is the light client's job (pRuntime's
// verified sync), which the SDK will use too.
func (c *Client) SignedHeader(ctx context.Context, height int64) (*cmttypes.SignedHeader, error) {
	for {
		cm, err := c.rpc.Commit(ctx, &height)
		if err != nil && !strings.Contains(err.Error(), "must be less than or equal to the current blockchain height") {
			return nil, fmt.Errorf("header %d: %w", height, err)
		}
		if err == nil && cm.CanonicalCommit {
			vals, err := c.Validators(ctx, height)
			if err != nil {
				return nil, err
			}
			sh := &cm.SignedHeader
			if err := sh.ValidateBasic(c.chainID); err != nil {
				return nil, fmt.Errorf("header %d: %w", height, err)
			}
			if !bytes.Equal(vals.Hash(), sh.ValidatorsHash) {
				return nil, fmt.Errorf("%w: validator set reported for height %d does not match its header", api.ErrBadProof, height)
			}
			if err := vals.VerifyCommitLight(c.chainID, sh.Commit.BlockID, height, sh.Commit); err != nil {
				return nil, fmt.Errorf("commit of header %d: %w", height, err)
			}
			return sh, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for header %d: %w", height, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Validators returns the validator set of a height (as the node reports it).
func (c *Client) Validators(ctx context.Context, height int64) (*cmttypes.ValidatorSet, error) {
	var all []*cmttypes.Validator
	for page := 1; ; page++ {
		perPage := 100
		res, err := c.rpc.Validators(ctx, &height, &page, &perPage)
		if err != nil {
			return nil, fmt.Errorf("validators at %d: %w", height, err)
		}
		all = append(all, res.Validators...)
		if len(all) >= res.Total || len(res.Validators) == 0 {
			break
		}
	}
	return cmttypes.NewValidatorSet(all), nil
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
func (c *Client) Height(ctx context.Context) (int64, error) {
	st, err := c.rpc.Status(ctx)
	if err != nil {
		return 0, err
	}
	return st.SyncInfo.LatestBlockHeight, nil
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
	Code   api.Code
	Log    string
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
	if err != nil {
		return nil, err
	}
	res, err := c.WaitTx(ctx, h)
	if err != nil {
		return nil, err
	}
	return res, res.Err()
}
