package client

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// Signer builds transactions for one account, tracking its nonce locally
// (read once from the chain, then incremented per transaction).
type Signer struct {
	c   *Client
	key *crypto.KeyPair

	mu    sync.Mutex
	nonce uint64
	known bool
}

// NewSigner returns a signer for key.
func (c *Client) NewSigner(key *crypto.KeyPair) *Signer { return &Signer{c: c, key: key} }

// Key returns the key pair.
func (s *Signer) Key() *crypto.KeyPair { return s.key }

// Sign builds and signs a transaction with the next nonce and the minimum
// fee for its size.
func (s *Signer) Sign(ctx context.Context, call api.Call) (*api.Tx, error) {
	return s.signFor(ctx, func(uint64) api.Call { return call })
}

// signFor signs the call that build makes for the next nonce (a command
// binds its sealed input to the nonce of its transaction).
func (s *Signer) signFor(ctx context.Context, build func(nonce uint64) api.Call) (*api.Tx, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.known {
		a, err := s.c.Account(ctx, s.key.Public())
		if err != nil {
			return nil, err
		}
		s.nonce, s.known = a.Nonce, true
	}
	tx := BuildTx(s.c.chainID, s.c.params, s.key, s.nonce, build(s.nonce))
	s.nonce++
	return tx, nil
}

// submit sends a signed transaction and waits for it; a refusal by the
// mempool means the nonce was not used.
func (s *Signer) submit(ctx context.Context, tx *api.Tx) (*TxResult, error) {
	res, err := s.c.Submit(ctx, tx)
	var refused *api.TxError
	if res == nil && errors.As(err, &refused) {
		s.Resync()
	}
	return res, err
}

// Resync forgets the local nonce; the next Sign reads it from the chain.
func (s *Signer) Resync() {
	s.mu.Lock()
	s.known = false
	s.mu.Unlock()
}

// Submit signs, submits and waits for a call.
func (s *Signer) Submit(ctx context.Context, call api.Call) (*TxResult, error) {
	return s.signAndSubmit(ctx, func(uint64) api.Call { return call })
}

// staleNonceRetries bounds how often signAndSubmit signs anew after the
// mempool refused a nonce as used: another process signing with the same
// account (a second CLI, a pherry sharing its operator key) took it, and
// the chain's committed nonce lags the mempool by up to a block.
const staleNonceRetries = 8

// signAndSubmit signs the call build makes for the next nonce and submits
// it; when the mempool refuses the nonce as already used (nothing was
// charged), it re-reads the nonce and signs again, a bounded number of
// times, a block time apart at most.
func (s *Signer) signAndSubmit(ctx context.Context, build func(nonce uint64) api.Call) (*TxResult, error) {
	for try := 0; ; try++ {
		tx, err := s.signFor(ctx, build)
		if err != nil {
			return nil, err
		}
		res, err := s.submit(ctx, tx)
		if res != nil || !errors.Is(err, api.ErrStaleNonce) || try == staleNonceRetries {
			return res, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(time.Duration(try+1) * 100 * time.Millisecond):
		}
	}
}

// BuildTx signs a transaction paying the minimum fee for its encoded size
// and its call (api.Params.TxMinFee: a command also pays for its gas).
func BuildTx(chainID string, p api.Params, key *crypto.KeyPair, nonce uint64, call api.Call) *api.Tx {
	tx := &api.Tx{ChainID: chainID, Signer: key.Public(), Nonce: nonce, Call: call}
	// The fee's varint length depends on the fee: iterate to the fixed point.
	for {
		n := len(tx.Encode())
		fee := p.TxMinFee(call, n)
		if fee == tx.Fee {
			break
		}
		if fee < tx.Fee {
			break
		}
		tx.Fee = fee
	}
	tx.Signature = key.Sign(api.ContextTx, tx.SignBytes())
	return tx
}
