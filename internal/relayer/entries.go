package relayer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// Entries returns all of contract's encrypted entries on chain at height
// (docs/availability.md, "Recovery", step 3), in strictly ascending
// location order: what contracts.StoreFromEntries rebuilds a store from
// and checks against the checkpoint root of that height. Every page is
// queried at height, so the listing is one consistent snapshot even while
// the contract keeps writing; height must be one the node still holds.
//
// The location space is split into f.Workers equal ranges (locations are
// HMAC outputs, spread uniformly) read concurrently, each page by page
// with the range form of api.QueryContractEntries. The node's answers are
// unproved: each page must decode strictly and stay inside its range in
// ascending order (else an error naming the range); the caller's root
// check authenticates the whole.
func (f *Fetcher) Entries(ctx context.Context, contract crypto.PublicKey, height int64) ([]api.StateChange, error) {
	if height <= 0 {
		return nil, fmt.Errorf("entries of %s: a height is required (pages of different heights would not be one state)", contract.Short())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ranges := entryRanges(f.workers())
	parts := make([][]api.StateChange, len(ranges))
	errs := make([]error, len(ranges))
	var wg sync.WaitGroup
	for i, r := range ranges {
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts[i], errs[i] = f.entryRange(ctx, contract, height, r[0], r[1])
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	n := 0
	for i := range parts {
		if errs[i] != nil && !errors.Is(errs[i], context.Canceled) {
			return nil, errs[i]
		}
		n += len(parts[i])
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]api.StateChange, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	for i := 1; i < len(out); i++ {
		if bytes.Compare(out[i-1].Location[:], out[i].Location[:]) >= 0 {
			return nil, fmt.Errorf("entries of %s at %d: %w: locations not ascending at entry %d", contract.Short(), height, api.ErrBadProof, i)
		}
	}
	return out, nil
}

// entryRanges splits the location space into n (1..65536) ranges
// [from, end) of equal width; the last one's end is all zero (no bound).
func entryRanges(n int) [][2][api.StateLocationSize]byte {
	n = max(1, min(n, 1<<16))
	out := make([][2][api.StateLocationSize]byte, n)
	for i := 1; i < n; i++ {
		binary.BigEndian.PutUint16(out[i][0][:2], uint16(i*(1<<16)/n))
		out[i-1][1] = out[i][0]
	}
	return out
}

// entryRange reads the entries with from ≤ location < end (end all zero:
// no bound) at height, page by page.
func (f *Fetcher) entryRange(ctx context.Context, contract crypto.PublicKey, height int64, from, end [api.StateLocationSize]byte) ([]api.StateChange, error) {
	var out []api.StateChange
	bounded := end != [api.StateLocationSize]byte{}
	for {
		where := fmt.Sprintf("entries of %s at %d from %x", contract.Short(), height, from[:4])
		res, err := f.rpc().ABCIQueryWithOptions(ctx, api.QueryContractEntries, api.EntryRangeQuery(contract, from, end), rpcQueryOpts(height))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if r := res.Response; r.Code != 0 {
			return nil, fmt.Errorf("%s: %w", where, &api.TxError{Code: api.Code(r.Code), Log: r.Log})
		}
		if res.Response.Height != height {
			return nil, fmt.Errorf("%s: %w: node answered at height %d", where, api.ErrBadProof, res.Response.Height)
		}
		p, err := api.DecodeEntryPage(res.Response.Value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if k := len(p.Entries); k > 0 {
			first, last := p.Entries[0].Location, p.Entries[k-1].Location
			if bytes.Compare(first[:], from[:]) < 0 || bounded && bytes.Compare(last[:], end[:]) >= 0 {
				return nil, fmt.Errorf("%s: %w: the page leaves its range", where, api.ErrBadProof)
			}
		}
		if out == nil {
			out = p.Entries
		} else {
			out = append(out, p.Entries...)
		}
		if !p.More {
			return out, nil
		}
		if len(p.Entries) == 0 {
			return nil, fmt.Errorf("%s: %w: an empty page says more follow", where, api.ErrBadProof)
		}
		next, ok := api.NextLocation(p.Entries[len(p.Entries)-1].Location)
		if !ok {
			return nil, fmt.Errorf("%s: %w: more entries after the last location", where, api.ErrBadProof)
		}
		from = next
	}
}
