// Package relayer moves data between the chain and pRuntime without
// trusting either side's word: it fetches signed headers, validator sets
// and block messages from a node, packages them for pRuntime's sync and
// dispatch endpoints, and fetches pRuntime's signed egress. pRuntime
// verifies everything it is given.
package relayer

import (
	"context"
	"fmt"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/internal/enclave/lightclient"
)

// Fetcher reads what pRuntime needs from a node.
type Fetcher struct{ C *client.Client }

// Headers returns the signed headers from..to (inclusive) with their
// validator sets.
func (f *Fetcher) Headers(ctx context.Context, from, to int64) (*api.HeaderBatch, error) {
	b := &api.HeaderBatch{}
	for h := from; h <= to; h++ {
		cm, err := f.C.RPC().Commit(ctx, &h)
		if err != nil {
			return nil, fmt.Errorf("commit %d: %w", h, err)
		}
		vals, err := f.C.Validators(ctx, h)
		if err != nil {
			return nil, err
		}
		shb, vb, err := lightclient.EncodeHeader(&cm.SignedHeader, vals)
		if err != nil {
			return nil, err
		}
		b.Headers = append(b.Headers, api.HeaderSync{SignedHeader: shb, Validators: vb})
	}
	return b, nil
}

// Blocks returns the queue messages of blocks from..to (inclusive).
func (f *Fetcher) Blocks(ctx context.Context, from, to int64) (*api.BlockBatch, error) {
	b := &api.BlockBatch{}
	for h := from; h <= to; h++ {
		bm, err := f.C.Messages(ctx, h)
		if err != nil {
			return nil, fmt.Errorf("messages of %d: %w", h, err)
		}
		b.Blocks = append(b.Blocks, *bm)
	}
	return b, nil
}
