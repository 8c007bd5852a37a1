package client

import (
	"context"
	"fmt"

	"github.com/phalago/phala/api"
)

// Migrations returns the running runtime migration (nil: none) and the
// last completed or cancelled one (nil: none) as of the state after block
// height (0: the latest), proved, with the height they reflect. Errors:
// those of Prove; api.ErrMalformed for a record that does not decode.
func (c *Client) Migrations(ctx context.Context, height int64) (running *api.RuntimeMigration, last *api.RuntimeMigrated, at int64, err error) {
	pv, err := c.prove(ctx, api.QueryMigration, nil, height)
	if err != nil {
		return nil, nil, 0, err
	}
	at = pv.Height
	if pv.Value != nil {
		if running, err = api.DecodeRuntimeMigration(pv.Value); err != nil {
			return nil, nil, at, fmt.Errorf("runtime migration at height %d: %w", at, err)
		}
	}
	if pv, err = c.prove(ctx, api.QueryLastMigration, nil, at); err != nil {
		return nil, nil, at, err
	}
	if pv.Value != nil {
		if last, err = api.DecodeRuntimeMigrated(pv.Value); err != nil {
			return nil, nil, at, fmt.Errorf("last runtime migration at height %d: %w", at, err)
		}
	}
	return running, last, at, nil
}
