package contracts

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/phalago/phala/api"
)

// ErrRootMismatch means entries read from the chain do not hash to the
// checkpoint root they were to restore (a node served a wrong or
// inconsistent listing, or the checkpoint moved while it was read).
var ErrRootMismatch = errors.New("contract entries do not match the checkpoint root")

// StoreFromEntries is OpenStore with the epoch-0 StorageKey alone.
func StoreFromEntries(storageKey [32]byte, seq uint64, entries []api.StateChange, root [32]byte) (*Store, error) {
	return OpenStore([]EpochKey{{Epoch: 0, Key: storageKey}}, seq, entries, root)
}

// OpenStore rebuilds a contract's store from its encrypted entries as the
// chain holds them (api.QueryContractEntries; docs/availability.md,
// "Recovery", step 3) and the epoch keys keys (ascending, 1 to
// MaxEpochKeys; the last is the write epoch; during a rolling
// re-encryption, both epochs'): a store whose write counter is seq and
// whose entries are exactly entries, with no pending changes (HasChanges
// is false: they are already on chain). Its location key comes from the
// secrets entry (Store.Secrets: so the current epoch's key alone
// suffices), or, in a store without one, from the epoch-0 key. entries
// must be in strictly ascending location order, each value with a
// well-formed header (ParseValueHeader) under an epoch of keys; otherwise
// the error names the first bad entry (wrapping ErrCorruptStorage or
// ErrEpochKey). The store's root must equal root (the checkpoint's), else
// the error wraps ErrRootMismatch.
//
// The store takes the values without copying them: the caller must not
// modify them afterwards. Cost for 1,000,000 entries: one pass (the map
// is filled while another goroutine hashes the root; the input order is
// the root's, so nothing is sorted); see docs/benchmarks.md.
func OpenStore(keys []EpochKey, seq uint64, entries []api.StateChange, root [32]byte) (*Store, error) {
	if err := checkEpochKeys(keys); err != nil {
		return nil, err
	}
	// Entries per held epoch (keys are few: a linear scan per entry).
	counts := make([]int, len(keys))
	for i := range entries {
		e := &entries[i]
		switch {
		case e.Value == nil:
			return nil, fmt.Errorf("entry %d (location %x): no value (a removal is not an entry)", i, e.Location[:8])
		case i > 0 && bytes.Compare(entries[i-1].Location[:], e.Location[:]) >= 0:
			return nil, fmt.Errorf("entry %d (location %x): not after entry %d's location (entries must be strictly ascending)", i, e.Location[:8], i-1)
		}
		_, ep, _, err := ParseValueHeader(e.Value)
		if err != nil {
			return nil, fmt.Errorf("entry %d (location %x): %w", i, e.Location[:8], err)
		}
		k := 0
		for k < len(keys) && keys[k].Epoch != ep {
			k++
		}
		if k == len(keys) {
			return nil, fmt.Errorf("entry %d (location %x): %w: the value is under epoch %d", i, e.Location[:8], ErrEpochKey, ep)
		}
		counts[k]++
	}
	// The root hashes in input order while the map is filled.
	rootc := make(chan [32]byte, 1)
	go func() { rootc <- rootOfSorted(seq, entries) }()

	s := newStore(slices.Clone(keys))
	s.seq = seq
	for k, n := range counts {
		if n > 0 {
			s.counts[keys[k].Epoch] = n
		}
	}
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
	if err := s.loadSecrets(); err != nil {
		return nil, err
	}
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
