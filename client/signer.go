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
// (read once from the chain, then incremented per transaction). It is
// safe for concurrent use: its transactions reach the node in nonce order.
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
	tx := BuildTx(s.c.chainID, s.c.Params(), s.key, s.nonce, build(s.nonce))
	s.nonce++
	return tx, nil
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

// signAndSubmit signs the call build makes for the next nonce, submits it
// and waits for its result; when the mempool refuses the nonce as already
// used (nothing was charged), it re-reads the nonce and signs again, a
// bounded number of times.
func (s *Signer) signAndSubmit(ctx context.Context, build func(nonce uint64) api.Call) (*TxResult, error) {
	for try := 0; ; try++ {
		tx, h, err := s.signAndBroadcast(ctx, build)
		if err == nil {
			res, err := s.c.WaitTx(ctx, h)
			if err != nil {
				return nil, &UnknownOutcomeError{Hash: h, Err: err}
			}
			res.Nonce = tx.Nonce
			return res, res.Err()
		}
		if errors.Is(err, api.ErrFeeTooLow) && try == 0 {
			// Governance changed the fees since the client read the
			// parameters: read them again and sign anew, once.
			if _, perr := s.c.ReadParams(ctx); perr != nil {
				return nil, err
			}
			continue
		}
		if !errors.Is(err, api.ErrStaleNonce) || try == staleNonceRetries {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(time.Duration(try+1) * 100 * time.Millisecond):
		}
	}
}

// signAndBroadcast signs the call for the next nonce and hands it to the
// node under the signer's lock, so that the transactions of goroutines
// sharing a Signer reach the mempool in nonce order (it refuses a nonce
// ahead of the next). A refusal by the mempool leaves the nonce unused
// (the next call reads it from the chain again); an unknown outcome
// (UnknownOutcomeError) counts it as used.
func (s *Signer) signAndBroadcast(ctx context.Context, build func(nonce uint64) api.Call) (*api.Tx, [32]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.known {
		a, err := s.c.Account(ctx, s.key.Public())
		if err != nil {
			return nil, [32]byte{}, err
		}
		s.nonce, s.known = a.Nonce, true
	}
	tx := BuildTx(s.c.chainID, s.c.Params(), s.key, s.nonce, build(s.nonce))
	b := tx.Encode()
	h, err := s.c.Broadcast(ctx, b)
	var refused *api.TxError
	if errors.As(err, &refused) {
		s.known = false
		return tx, h, err
	}
	s.nonce++
	if err != nil {
		return tx, api.TxHash(b), &UnknownOutcomeError{Hash: api.TxHash(b), Err: err}
	}
	return tx, h, nil
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
