package client

import (
	"context"
	"fmt"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// Arbitration returns a contract's open arbitration (api.Arbitration,
// docs/availability.md "Arbitration"), proved, with the height it was
// proved at; nil when none is open. Open one with Signer.Submit of an
// api.ArbitrationRequest.
func (c *Client) Arbitration(ctx context.Context, contract crypto.PublicKey) (*api.Arbitration, int64, error) {
	pv, err := c.ProveRecent(ctx, api.QueryArbitration, contract[:])
	if err != nil {
		return nil, 0, err
	}
	if pv.Value == nil {
		return nil, pv.Height, nil
	}
	a, err := api.DecodeArbitration(pv.Value)
	if err != nil {
		return nil, pv.Height, fmt.Errorf("arbitration of %s at height %d: %w", contract.Short(), pv.Height, err)
	}
	return a, pv.Height, nil
}
