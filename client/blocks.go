package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
)

// Reads of blocks, transactions and queue messages, each checked against
// headers verified from the trust root (see LightBlock).

// ErrTxNotFound: the node knows no committed transaction with that hash
// (never committed, or the node does not index transactions).
var ErrTxNotFound = errors.New("no such transaction")

// ErrBeyondTip: the height asked for is above the node's latest block.
var ErrBeyondTip = errors.New("height beyond the chain's tip")

// TxInfo is a committed transaction: its bytes decoded, where it is, and
// its result.
type TxInfo struct {
	Hash   [32]byte
	Height int64
	Index  uint32
	Bytes  []byte  // the encoded transaction
	Tx     *api.Tx // nil if the bytes do not decode (DecodeErr says why)
	// DecodeErr is why Bytes do not decode as an api.Tx (a block may hold
	// bytes CheckTx would refuse; FinalizeBlock rejects them with a code).
	DecodeErr error
	Code      api.Code
	Log       string
	Events    []abci.Event
	// ResultProved: Code (with the result's data and gas) was checked
	// against LastResultsHash of the verified header of Height+1. Log and
	// Events are not part of that hash: they are the node's word.
	ResultProved bool
}

// Tx returns the committed transaction with hash, its inclusion proved
// against the DataHash of the verified header of its height, and its
// result code against the LastResultsHash of the verified header of the
// next height (it waits for that header, about one block). Errors:
// ErrTxNotFound, ErrNoTrustRoot, ErrUntrustedHeader, api.ErrBadProof.
func (c *Client) Tx(ctx context.Context, hash [32]byte) (*TxInfo, error) {
	if c.v == nil {
		return nil, fmt.Errorf("transaction %X: %w", hash, ErrNoTrustRoot)
	}
	res, err := c.rpc.Tx(ctx, hash[:], true)
	if err != nil {
		if strings.Contains(err.Error(), "not found") {
			return nil, fmt.Errorf("transaction %X: %w", hash, ErrTxNotFound)
		}
		return nil, fmt.Errorf("transaction %X: %w", hash, err)
	}
	if res.Height < 1 || !bytes.Equal(res.Hash, hash[:]) || !bytes.Equal(cmttypes.Tx(res.Tx).Hash(), hash[:]) {
		return nil, fmt.Errorf("%w: asked for transaction %X, the node answered another", api.ErrBadProof, hash)
	}
	lb, err := c.LightBlock(ctx, res.Height)
	if err != nil {
		return nil, fmt.Errorf("transaction %X: %w", hash, err)
	}
	if err := res.Proof.Validate(lb.DataHash); err != nil || !bytes.Equal(res.Proof.Data, res.Tx) || res.Proof.Proof.Index != int64(res.Index) {
		return nil, fmt.Errorf("%w: transaction %X is not proved to be in block %d (%v)", api.ErrBadProof, hash, res.Height, err)
	}
	info := &TxInfo{Hash: hash, Height: res.Height, Index: res.Index, Bytes: res.Tx,
		Code: api.Code(res.TxResult.Code), Log: res.TxResult.Log, Events: res.TxResult.Events}
	info.Tx, info.DecodeErr = api.DecodeTx(res.Tx)
	results, err := c.blockResults(ctx, res.Height)
	if err != nil {
		return nil, fmt.Errorf("transaction %X: %w", hash, err)
	}
	if int(res.Index) >= len(results) || !deterministicEqual(results[res.Index], &res.TxResult) {
		return nil, fmt.Errorf("%w: the result of transaction %X differs from its block's proved results", api.ErrBadProof, hash)
	}
	info.ResultProved = true
	return info, nil
}

// deterministicEqual compares the fields of two results that
// LastResultsHash covers.
func deterministicEqual(a, b *abci.ExecTxResult) bool {
	return a.Code == b.Code && bytes.Equal(a.Data, b.Data) && a.GasWanted == b.GasWanted && a.GasUsed == b.GasUsed
}

// blockResults returns the transaction results of height, checked against
// the LastResultsHash of the verified header of height+1 (waiting for it).
func (c *Client) blockResults(ctx context.Context, height int64) ([]*abci.ExecTxResult, error) {
	next, err := c.LightBlock(ctx, height+1)
	if err != nil {
		return nil, err
	}
	br, err := c.rpc.BlockResults(ctx, &height)
	if err != nil {
		return nil, fmt.Errorf("results of block %d: %w", height, err)
	}
	if !bytes.Equal(cmttypes.NewResults(br.TxsResults).Hash(), next.LastResultsHash) {
		return nil, fmt.Errorf("%w: the results of block %d do not hash to the LastResultsHash of header %d", api.ErrBadProof, height, height+1)
	}
	return br.TxsResults, nil
}

// BlockInfo is a block checked against its verified header: its
// transactions (with their results, proved) and its queue messages
// (proved by the app hash of the next header).
type BlockInfo struct {
	Header   *cmttypes.LightBlock
	Txs      []cmttypes.Tx
	Results  []*abci.ExecTxResult // the node's full results; Code, Data and gas proved
	Messages *api.BlockMessages
}

// Block returns the block of height (0: the latest), its header verified
// from the trust root, its transactions checked against the header's
// DataHash, their results against LastResultsHash of the next header, and
// its queue messages against the next header's app hash. It waits for the
// next header (about one block). Errors: ErrBeyondTip (with the tip),
// ErrNoTrustRoot, ErrUntrustedHeader, api.ErrBadProof.
func (c *Client) Block(ctx context.Context, height int64) (*BlockInfo, error) {
	if c.v == nil {
		return nil, fmt.Errorf("block %d: %w", height, ErrNoTrustRoot)
	}
	tip, err := c.Height(ctx)
	if err != nil {
		return nil, err
	}
	if height == 0 {
		height = tip
	}
	if height > tip {
		return nil, fmt.Errorf("block %d: %w: the latest block is %d", height, ErrBeyondTip, tip)
	}
	lb, err := c.LightBlock(ctx, height)
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", height, err)
	}
	rb, err := c.rpc.Block(ctx, &height)
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", height, err)
	}
	if rb.Block == nil || !bytes.Equal(rb.Block.Hash(), lb.Hash()) || !bytes.Equal(rb.Block.Data.Hash(), lb.DataHash) {
		return nil, fmt.Errorf("%w: block %d from the node is not the verified header's", api.ErrBadProof, height)
	}
	results, err := c.blockResults(ctx, height)
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", height, err)
	}
	if len(results) != len(rb.Block.Txs) {
		return nil, fmt.Errorf("%w: block %d has %d transactions and %d results", api.ErrBadProof, height, len(rb.Block.Txs), len(results))
	}
	bm, _, err := c.VerifiedMessages(ctx, height)
	if err != nil {
		return nil, err
	}
	return &BlockInfo{Header: lb, Txs: rb.Block.Txs, Results: results, Messages: bm}, nil
}

// VerifiedMessages returns the queue messages of height, checked against
// the app hash of the verified header of height+1, which it waits for (as
// pRuntime checks what a relayer brings it) and returns. Errors:
// ErrNoTrustRoot, ErrUntrustedHeader, api.ErrBadProof.
func (c *Client) VerifiedMessages(ctx context.Context, height int64) (*api.BlockMessages, *cmttypes.LightBlock, error) {
	if c.v == nil {
		return nil, nil, fmt.Errorf("messages of block %d: %w", height, ErrNoTrustRoot)
	}
	next, err := c.LightBlock(ctx, height+1)
	if err != nil {
		return nil, nil, fmt.Errorf("messages of block %d: %w", height, err)
	}
	bm, err := c.Messages(ctx, height)
	if err != nil {
		return nil, nil, fmt.Errorf("messages of block %d: %w", height, err)
	}
	if err := bm.Verify(next.AppHash); err != nil {
		return nil, nil, err
	}
	return bm, next, nil
}
