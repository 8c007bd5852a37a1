package client

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// Payout reads, proved, the chain's result of contract's payout request
// id (docs/interop.md, "Contract → chain: payouts"): paid or refused with
// its reason, and the block that decided it. It returns nil when no
// request with that id has reached the chain yet. Errors: the proof's
// (ErrNoTrustRoot, ErrUntrustedHeader, api.ErrBadProof), api.ErrMalformed.
func (c *Client) Payout(ctx context.Context, contract crypto.PublicKey, id uint64) (*api.PayoutResult, error) {
	v, err := c.proveRecentValue(ctx, api.QueryContractPayout, binary.BigEndian.AppendUint64(contract[:], id))
	if err != nil || v == nil {
		return nil, err
	}
	return api.DecodePayoutResult(v)
}

// EscrowOwner reads, proved, the contract whose escrow account account is
// (api.EscrowAccount), or ok false when it is no deployed contract's.
func (c *Client) EscrowOwner(ctx context.Context, account crypto.PublicKey) (contract crypto.PublicKey, ok bool, err error) {
	v, err := c.proveRecentValue(ctx, api.QueryEscrowOwner, account[:])
	if err != nil || v == nil {
		return crypto.PublicKey{}, false, err
	}
	if len(v) != crypto.PublicKeySize {
		return crypto.PublicKey{}, false, fmt.Errorf("%w: escrow owner of %d bytes", api.ErrMalformed, len(v))
	}
	return crypto.PublicKey(v), true, nil
}
