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
	last := opened + int64(c.Params().ArbitrationTimeout) + 3
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
		contract.Short(), height, last, opened, c.Params().ArbitrationTimeout)
}

// ArbiterVote is an assigned arbiter's vote on a disputed update: the
// root it computed, and the block whose queue carried it.
type ArbiterVote struct {
	Arbiter crypto.PublicKey
	Root    [32]byte
	Block   int64
}

// MaxVoteScan bounds the blocks ArbiterVotes reads (a dispute lasts at
// most arbitration_timeout + 1 blocks; the default is 200).
const MaxVoteScan = 1_000

// ArbiterVotes returns the votes of a's arbiters on its disputed update
// found in the verified queue messages of the blocks after a.Opened up to
// to (inclusive; at most MaxVoteScan blocks), each arbiter's first, in
// the order they were cast. The chain records an assigned arbiter's first
// vote for the dispute's height (docs/availability.md, "Chain side"), so
// these are the votes the verdict counts. None when no arbiter is
// assigned. Errors: VerifiedMessages'.
func (c *Client) ArbiterVotes(ctx context.Context, contract crypto.PublicKey, a *api.Arbitration, to int64) ([]ArbiterVote, error) {
	if len(a.Arbiters) == 0 {
		return nil, nil
	}
	if to-a.Opened > MaxVoteScan {
		return nil, fmt.Errorf("votes of the dispute opened at block %d: more than %d blocks to read up to %d", a.Opened, MaxVoteScan, to)
	}
	arbiter := map[crypto.PublicKey]bool{}
	for _, k := range a.Arbiters {
		arbiter[k] = true
	}
	var out []ArbiterVote
	for h := a.Opened + 1; h <= to && len(out) < len(a.Arbiters); h++ {
		bm, _, err := c.VerifiedMessages(ctx, h)
		if err != nil {
			return nil, fmt.Errorf("votes on %s's update at height %d: %w", contract.Short(), a.Height, err)
		}
		for i := range bm.Messages {
			m := &bm.Messages[i]
			if m.Topic != api.TopicStateVote || m.Origin.Kind != api.OriginWorker || !arbiter[m.Origin.Key] {
				continue
			}
			v, err := api.DecodeStateVote(m.Payload)
			if err != nil || v.Contract != contract || v.Height != a.Height {
				continue
			}
			arbiter[m.Origin.Key] = false // its first vote stands
			out = append(out, ArbiterVote{Arbiter: m.Origin.Key, Root: v.Root, Block: h})
		}
	}
	return out, nil
}
