package client

import (
	"context"
	"fmt"

	"github.com/phalago/phala/api"
)

// EraSchedule returns the chain's era schedule (api.EraSchedule: which
// heights make up which era, era_length changes applying at era
// boundaries), proved, with the height it reflects: every height up to
// it is numbered right. A chain from before the schedule existed has
// none (proved absent): its eras are those of the client's era_length
// from height 1. Errors: those of Prove, a malformed schedule.
func (c *Client) EraSchedule(ctx context.Context) (*api.EraSchedule, int64, error) {
	pv, err := c.Prove(ctx, api.QueryEraSchedule, nil)
	if err != nil {
		return nil, 0, err
	}
	if pv.Value == nil {
		return api.GenesisEras(c.Params().EraLength), pv.Height, nil
	}
	s, err := api.DecodeEraSchedule(pv.Value)
	if err != nil {
		return nil, pv.Height, fmt.Errorf("era schedule at height %d: %w", pv.Height, err)
	}
	return s, pv.Height, nil
}
