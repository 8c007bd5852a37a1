package relayer

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
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
		value, h, err := f.queryPage(ctx, api.EntryRangeQuery(contract, from, end), height)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if h != height {
			return nil, fmt.Errorf("%s: %w: node answered at height %d", where, api.ErrBadProof, h)
		}
		p, err := api.DecodeEntryPage(value)
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

// queryPage runs an entries query at height and returns the answer's
// value and height. Over HTTP it reads the node's JSON-RPC answer itself
// (one pass of encoding/json, the value decoded from base64 straight into
// bytes): the CometBFT client's generic decoding parses a 4 MiB page
// several times over and cost most of a recovery's time (docs/benchmarks.md,
// "Recovery from the on-chain checkpoint"). Other transports go through
// the client.
func (f *Fetcher) queryPage(ctx context.Context, data []byte, height int64) ([]byte, int64, error) {
	remote := f.rpc().Remote()
	if strings.HasPrefix(remote, "tcp://") {
		remote = "http://" + strings.TrimPrefix(remote, "tcp://")
	}
	if !strings.HasPrefix(remote, "http://") && !strings.HasPrefix(remote, "https://") {
		res, err := f.rpc().ABCIQueryWithOptions(ctx, api.QueryContractEntries, data, rpcQueryOpts(height))
		if err != nil {
			return nil, 0, err
		}
		if r := res.Response; r.Code != 0 {
			return nil, 0, &api.TxError{Code: api.Code(r.Code), Log: r.Log}
		}
		return res.Response.Value, res.Response.Height, nil
	}
	u := fmt.Sprintf("%s/abci_query?path=%%22%s%%22&data=0x%x&height=%d&prove=false", strings.TrimSuffix(remote, "/"), url.QueryEscape(api.QueryContractEntries), data, height)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := entriesHTTP.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	// A page is at most MaxEntryPageBytes, ~4/3 of it in base64, plus the
	// envelope.
	body, err := io.ReadAll(io.LimitReader(resp.Body, api.MaxEntryPageBytes*3/2+(1<<20)))
	if err != nil {
		return nil, 0, err
	}
	var r struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Data    string `json:"data"`
		} `json:"error"`
		Result *struct {
			Response struct {
				Code   uint32 `json:"code"`
				Log    string `json:"log"`
				Value  []byte `json:"value"`
				Height int64  `json:"height,string"`
			} `json:"response"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, 0, fmt.Errorf("node answer (HTTP %d): %w", resp.StatusCode, err)
	}
	switch {
	case r.Error != nil:
		return nil, 0, fmt.Errorf("node error %d: %s %s", r.Error.Code, r.Error.Message, r.Error.Data)
	case r.Result == nil:
		return nil, 0, fmt.Errorf("node answer (HTTP %d) holds no result", resp.StatusCode)
	case r.Result.Response.Code != 0:
		return nil, 0, &api.TxError{Code: api.Code(r.Result.Response.Code), Log: r.Result.Response.Log}
	}
	return r.Result.Response.Value, r.Result.Response.Height, nil
}

// entriesHTTP is the HTTP client of entry pages (connections kept for the
// parallel ranges).
var entriesHTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, ForceAttemptHTTP2: false}}
