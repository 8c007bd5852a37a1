package contracts

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/phalago/phala/api"
)

// ErrRootMismatch means entries read from the chain do not hash to the
// checkpoint root they were to restore (a node served a wrong or
// inconsistent listing, or the checkpoint moved while it was read).
var ErrRootMismatch = errors.New("contract entries do not match the checkpoint root")

// StoreFromEntries rebuilds a contract's store from its encrypted entries
// as the chain holds them (api.QueryContractEntries; docs/availability.md,
// "Recovery", step 3): a store under storageKey whose write counter is seq
// and whose entries are exactly entries, with no pending changes
// (HasChanges is false: they are already on chain). entries must be in
// strictly ascending location order with values of at least a write
// counter (8 bytes); otherwise the error names the first bad entry. The
// store's root must equal root (the checkpoint's), else the error wraps
// ErrRootMismatch.
//
// The store takes the values without copying them: the caller must not
// modify them afterwards. Cost for 1,000,000 entries: one pass (the map
// is filled while another goroutine hashes the root; the input order is
// the root's, so nothing is sorted); see docs/benchmarks.md.
func StoreFromEntries(storageKey [32]byte, seq uint64, entries []api.StateChange, root [32]byte) (*Store, error) {
	for i := range entries {
		e := &entries[i]
		switch {
		case e.Value == nil:
			return nil, fmt.Errorf("entry %d (location %x): no value (a removal is not an entry)", i, e.Location[:8])
		case len(e.Value) < 8:
			return nil, fmt.Errorf("entry %d (location %x): a value of %d bytes is shorter than its write counter", i, e.Location[:8], len(e.Value))
		case i > 0 && bytes.Compare(entries[i-1].Location[:], e.Location[:]) >= 0:
			return nil, fmt.Errorf("entry %d (location %x): not after entry %d's location (entries must be strictly ascending)", i, e.Location[:8], i-1)
		}
	}
	// The root hashes in input order while the map is filled.
	rootc := make(chan [32]byte, 1)
	go func() { rootc <- rootOfSorted(seq, entries) }()

	s := NewStore(storageKey)
	s.seq = seq
	s.entries = make(map[string][]byte, len(entries))
	// One allocation for every location: the keys are substrings of it.
	var b strings.Builder
	b.Grow(len(entries) * api.StateLocationSize)
	for i := range entries {
		b.Write(entries[i].Location[:])
	}
	locs := b.String()
	for i := range entries {
		s.entries[locs[i*api.StateLocationSize:(i+1)*api.StateLocationSize]] = entries[i].Value
	}
	got := <-rootc
	if got != root {
		return nil, fmt.Errorf("%w: %d entries at write counter %d hash to %x, the checkpoint says %x", ErrRootMismatch, len(entries), seq, got[:8], root[:8])
	}
	s.root = &got
	return s, nil
}

// rootOfSorted is api.StateRoot (and so Store.Root) of entries already in
// location order. It hashes in 64 KiB chunks: SHA-256 runs several times
// faster on large writes than on the two small ones per entry.
func rootOfSorted(seq uint64, entries []api.StateChange) [32]byte {
	h := sha256.New()
	buf := make([]byte, 0, 64<<10)
	buf = append(buf, "phala/storage: root v1"...)
	buf = binary.BigEndian.AppendUint64(buf, seq)
	for i := range entries {
		v := entries[i].Value
		if len(buf)+api.StateLocationSize+4+len(v) > cap(buf) {
			h.Write(buf)
			buf = buf[:0]
		}
		buf = append(buf, entries[i].Location[:]...)
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(v)))
		if len(v) > cap(buf) {
			h.Write(buf)
			h.Write(v)
			buf = buf[:0]
			continue
		}
		buf = append(buf, v...)
	}
	h.Write(buf)
	var out [32]byte
	h.Sum(out[:0])
	return out
}
