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
	return decodeArbitration(contract, pv)
}

// ArbitrationAt is Arbitration as of the state after block height (e.g.
// the block that opened a dispute, which a verdict may already have
// closed since): proved by the header of height+1, which it waits for.
// Errors: ProveAt's.
func (c *Client) ArbitrationAt(ctx context.Context, contract crypto.PublicKey, height int64) (*api.Arbitration, error) {
	pv, err := c.ProveAt(ctx, api.QueryArbitration, contract[:], height)
	if err != nil {
		return nil, err
	}
	a, _, err := decodeArbitration(contract, pv)
	return a, err
}

func decodeArbitration(contract crypto.PublicKey, pv *ProvedValue) (*api.Arbitration, int64, error) {
	if pv.Value == nil {
		return nil, pv.Height, nil
	}
	a, err := api.DecodeArbitration(pv.Value)
	if err != nil {
		return nil, pv.Height, fmt.Errorf("arbitration of %s at height %d: %w", contract.Short(), pv.Height, err)
	}
	return a, pv.Height, nil
}

// contractsOrigin is the origin of the contracts module's messages.
var contractsOrigin = api.ModuleOrigin("contracts")

// WaitVerdict waits for the verdict on the dispute of contract's state
// update at height that block opened opened (api.Arbitration.Opened): it
// reads the verified queue messages of every block after opened, in
// order, waiting for each next header, until the contracts module's
// api.ArbitrationVerdict of that dispute, and returns it with the block
// that carries it. The chain closes every dispute within
// arbitration_timeout + 1 blocks of opening it (expiry); a dispute past
// that (with a margin of 2 blocks for a parameter change) without a
// verdict is an error. Bounded by ctx (a dispute that expires takes
// arbitration_timeout blocks: give ctx that long). Errors: ErrNoTrustRoot,
// ErrUntrustedHeader, api.ErrBadProof, ctx's.
func (c *Client) WaitVerdict(ctx context.Context, contract crypto.PublicKey, height, opened int64) (*api.ArbitrationVerdict, int64, error) {
	last := opened + int64(c.params.ArbitrationTimeout) + 3
	for h := opened + 1; h <= last; h++ {
		bm, _, err := c.VerifiedMessages(ctx, h)
		if err != nil {
			return nil, 0, fmt.Errorf("wait for the verdict on %s's update at height %d: %w", contract.Short(), height, err)
		}
		for i := range bm.Messages {
			m := &bm.Messages[i]
			if m.Origin != contractsOrigin || m.Topic != api.TopicArbitrationVerdict {
				continue
			}
			v, err := api.DecodeArbitrationVerdict(m.Payload)
			if err != nil {
				return nil, 0, fmt.Errorf("verdict in block %d: %w", h, err)
			}
			if v.Contract == contract && v.Height == height {
				return v, h, nil
			}
		}
	}
	return nil, 0, fmt.Errorf("no verdict on %s's update at height %d by block %d: the dispute opened at block %d should have expired after arbitration_timeout %d blocks",
		contract.Short(), height, last, opened, c.params.ArbitrationTimeout)
}
