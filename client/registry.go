package client

import (
	"context"
	"fmt"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// Proved reads of the registry and of accounts. Each is checked with Prove
// against a signed header; the chain keeps no list of workers, so workers
// are read one identity at a time.

// Worker returns the registration of the worker whose identity key is id,
// proved against a signed header. An identity that is not registered is an
// error wrapping api.ErrNotFound (proved absent). The record is returned
// even if its registration has expired: check it with Active.
func (c *Client) Worker(ctx context.Context, id crypto.PublicKey) (*api.WorkerRecord, error) {
	w, _, err := c.WorkerProved(ctx, id)
	return w, err
}

// WorkerProved is Worker that also returns the height whose state the answer
// reflects (use it with WorkerRecord.Active).
func (c *Client) WorkerProved(ctx context.Context, id crypto.PublicKey) (*api.WorkerRecord, int64, error) {
	pv, err := c.Prove(ctx, api.QueryWorker, id[:])
	if err != nil {
		return nil, 0, err
	}
	if pv.Value == nil {
		return nil, pv.Height, fmt.Errorf("%w: worker %s is not registered (proved absent at height %d)", api.ErrNotFound, id, pv.Height)
	}
	w, err := api.DecodeWorkerRecord(pv.Value)
	if err != nil {
		return nil, pv.Height, fmt.Errorf("worker %s at height %d: %w", id, pv.Height, err)
	}
	if w.Info.IdentityKey != id {
		return nil, pv.Height, fmt.Errorf("%w: the record under worker %s names identity %s", api.ErrBadProof, id, w.Info.IdentityKey)
	}
	return w, pv.Height, nil
}

// Gatekeepers returns the gatekeeper list, proved against a signed header
// (empty when the chain has none).
func (c *Client) Gatekeepers(ctx context.Context) ([]crypto.PublicKey, error) {
	pv, err := c.Prove(ctx, api.QueryGatekeepers, nil)
	if err != nil {
		return nil, err
	}
	if pv.Value == nil {
		return []crypto.PublicKey{}, nil
	}
	keys, err := api.DecodeKeys(pv.Value)
	if err != nil {
		return nil, fmt.Errorf("gatekeepers at height %d: %w", pv.Height, err)
	}
	return keys, nil
}

// MasterKey returns the serving key set's master public key (an
// edwards25519 point, docs/keys.md), proved against a signed header. ok is
// false (proved absent) until the genesis one is published.
func (c *Client) MasterKey(ctx context.Context) (pk [32]byte, ok bool, err error) {
	pv, err := c.Prove(ctx, api.QueryMasterKey, nil)
	if err != nil {
		return pk, false, err
	}
	if pv.Value == nil {
		return pk, false, nil
	}
	if len(pv.Value) != 32 {
		return pk, false, fmt.Errorf("%w: master key at height %d is %d bytes, want 32", api.ErrMalformed, pv.Height, len(pv.Value))
	}
	return [32]byte(pv.Value), true, nil
}

// AccountProved returns an account's balance and next nonce, proved against
// a signed header, and the height whose state it reflects. An account the
// chain has never seen is proved absent and returned as the zero Account.
func (c *Client) AccountProved(ctx context.Context, pk crypto.PublicKey) (api.Account, int64, error) {
	pv, err := c.Prove(ctx, api.QueryAccount, pk[:])
	if err != nil {
		return api.Account{}, 0, err
	}
	if pv.Value == nil {
		return api.Account{}, pv.Height, nil
	}
	a, err := api.DecodeAccount(pv.Value)
	if err != nil {
		return api.Account{}, pv.Height, fmt.Errorf("account %s at height %d: %w", pk, pv.Height, err)
	}
	return *a, pv.Height, nil
}

// WorkerIDs lists the identities of registered workers (a listing the node
// answers without proof; read each with Worker to have it proved).
func (c *Client) WorkerIDs(ctx context.Context) ([]crypto.PublicKey, error) {
	v, _, err := c.query(ctx, api.QueryWorkers, nil, 0)
	if err != nil {
		return nil, err
	}
	return api.DecodeKeys(v)
}
