package contracts

import (
	"bytes"
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/store"
)

// maxEntriesPerPage bounds a page of the entries listing.
const maxEntriesPerPage = 50_000

// queryEntries lists a contract's encrypted entries (api.EntryPage) at the
// query's height, in one of the three forms of api.QueryContractEntries
// (from the first, after a location, or within [from, end)), up to
// api.MaxEntryPageBytes or maxEntriesPerPage.
func queryEntries(st *store.Store, req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	const k, l = crypto.PublicKeySize, api.StateLocationSize
	if n := len(req.Data); n != k && n != k+l && n != k+2*l {
		return nil, fmt.Errorf("%w: %s takes a contract key, then optionally the location to start after, or a range of locations from (inclusive) and end (exclusive, all zero: none)", api.ErrInvalidCall, api.QueryContractEntries)
	}
	snap, err := st.Snapshot(req.Height)
	if err != nil {
		return nil, err
	}
	height := snap.Height()
	contract := crypto.PublicKey(req.Data[:k])
	prefix := api.StateEntryPrefix(contract)
	start := prefix
	var end []byte // first key not listed (nil: the prefix's end)
	switch len(req.Data) {
	case k + l:
		start = append(append(bytes.Clone(prefix), req.Data[k:]...), 0) // strictly after
	case k + 2*l:
		start = append(bytes.Clone(prefix), req.Data[k:k+l]...)
		if e := req.Data[k+l:]; !bytes.Equal(e, make([]byte, l)) {
			end = append(bytes.Clone(prefix), e...)
		}
	}
	page := &api.EntryPage{}
	size := 0
	visit := func(key, v []byte) bool {
		if end != nil && bytes.Compare(key, end) >= 0 {
			return false
		}
		if len(page.Entries) >= maxEntriesPerPage || size+len(v)+40 > api.MaxEntryPageBytes {
			page.More = true
			return false
		}
		var e api.StateChange
		copy(e.Location[:], key[len(prefix):])
		e.Value = bytes.Clone(v)
		page.Entries = append(page.Entries, e)
		size += len(v) + 40
		return true
	}
	// The contract's entries change only with its checkpoint record
	// (OnState writes both, and the record's height grows with every
	// update): if the latest version has the record of the asked height,
	// it has the same entries, and the store lists its latest version
	// from a key-ordered index instead of walking the tree node by node
	// (for 1,000,000 entries ~1 s instead of ~9 s: docs/benchmarks.md,
	// "Recovery from the on-chain checkpoint"). A recovering worker asks
	// at a height whose checkpoint is usually still the contract's latest.
	cpKey := api.CheckpointKey(contract)
	record := snap.Get(cpKey)
	if _, ok := st.IterateLatestFrom(prefix, start, func(get func([]byte) []byte) bool {
		return bytes.Equal(get(cpKey), record)
	}, visit); !ok {
		snap.IterateFrom(prefix, start, visit)
	}
	return &abci.ResponseQuery{Height: height, Value: page.Encode()}, nil
}
