package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Contract state on chain (docs/availability.md): each contract's
// encrypted store entries, written back by its workers as StateUpdates.
const (
	// TopicContractState: payload StateUpdate (origin the contract,
	// emitted by pRuntime, never by contract code).
	TopicContractState = "phala/contracts/state"
	// MaxStateUpdateBytes bounds an update's encoding (it travels in one
	// push transaction).
	MaxStateUpdateBytes = 2 << 20
	// StateLocationSize is the size of an entry's location (HMAC-SHA256).
	StateLocationSize = 32
	// DefaultCheckpointInterval is the blocks between a contract's state
	// updates unless its deployer set another (UploadContract); at most
	// MaxCheckpointInterval.
	DefaultCheckpointInterval = 13
	MaxCheckpointInterval     = 1_000
)

// EmptyStateRoot is the state root of a contract store with no entries
// and a write counter of 0 (contracts.Store.Root): the previous root of a
// contract's first update.
var EmptyStateRoot = func() [32]byte {
	h := sha256.New()
	h.Write([]byte("phala/storage: root v1"))
	h.Write(make([]byte, 8))
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}()

// StateRoot is the root of a contract store whose write counter is seq
// and whose encrypted entries are entries (in location order, values not
// nil): SHA-256 over a domain, the counter, and each location, value
// length and value. pRuntime's store computes the same
// (contracts.Store.Root); anyone can compute it from the chain's entries,
// without any key.
func StateRoot(seq uint64, entries []StateChange) [32]byte {
	h := sha256.New()
	h.Write([]byte("phala/storage: root v1"))
	h.Write(binary.BigEndian.AppendUint64(nil, seq))
	for _, e := range entries {
		h.Write(e.Location[:])
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(e.Value))))
		h.Write(e.Value)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// CheckpointPhase is the offset that spreads contracts' update heights:
// a contract writes at heights h with (h + phase) mod interval = 0.
func CheckpointPhase(contract crypto.PublicKey, interval uint64) uint64 {
	if interval == 0 {
		return 0
	}
	return binary.BigEndian.Uint64(contract[:8]) % interval
}

// StateChange is one entry of an update: Value nil means removed.
type StateChange struct {
	Location [StateLocationSize]byte
	Value    []byte // seq(8) ‖ AES-256-GCM ciphertext; nil: removed
}

// StateUpdate is a contract's changed encrypted entries since its last
// update, merged (the latest value of each location), in location order.
type StateUpdate struct {
	Height   int64    // the last block whose commands it covers
	Seq      uint64   // the store's write counter after it
	Calls    uint64   // the contract's call counter after it (its deterministic randomness depends on it)
	PrevRoot [32]byte // the root after the previous update (EmptyStateRoot for the first)
	NewRoot  [32]byte
	Changes  []StateChange
	// OldEntries: the contract's entries still under a key epoch older
	// than its write epoch after this update (0 when not migrating; the
	// accepted update with none left ends a migration, docs/keys.md).
	OldEntries uint64
}

// Encode returns the canonical bytes.
func (u *StateUpdate) Encode() []byte {
	n := 96
	for _, c := range u.Changes {
		n += 40 + len(c.Value)
	}
	w := codec.NewWriter(n)
	w.Varint(u.Height)
	w.Uvarint(u.Seq)
	w.Uvarint(u.Calls)
	w.Fixed(u.PrevRoot[:])
	w.Fixed(u.NewRoot[:])
	w.Uvarint(uint64(len(u.Changes)))
	for _, c := range u.Changes {
		w.Fixed(c.Location[:])
		w.Bool(c.Value != nil)
		if c.Value != nil {
			w.BytesField(c.Value)
		}
	}
	w.Uvarint(u.OldEntries)
	return w.Bytes()
}

// DecodeStateUpdate strictly decodes an update: locations strictly
// ascending, values at least a write counter long. Errors: ErrMalformed,
// ErrTooLarge.
func DecodeStateUpdate(b []byte) (*StateUpdate, error) {
	if len(b) > MaxStateUpdateBytes {
		return nil, fmt.Errorf("%w: state update of %d bytes", ErrTooLarge, len(b))
	}
	u := &StateUpdate{}
	r := codec.NewReader(b)
	u.Height = r.Varint()
	u.Seq = r.Uvarint()
	u.Calls = r.Uvarint()
	r.Fixed(u.PrevRoot[:])
	r.Fixed(u.NewRoot[:])
	n := r.Uvarint()
	if n > uint64(r.Remaining()/(StateLocationSize+1)) {
		r.Fail(fmt.Errorf("%w: %d changes", codec.ErrTooLong, n))
	}
	for i := uint64(0); r.Err() == nil && i < n; i++ {
		var c StateChange
		r.Fixed(c.Location[:])
		if r.Bool() {
			c.Value = r.BytesField(MaxStateUpdateBytes)
			if r.Err() == nil && len(c.Value) < 8 {
				r.Fail(fmt.Errorf("%w: a value shorter than its write counter", codec.ErrBadFormat))
			}
		}
		if k := len(u.Changes); k > 0 && bytes.Compare(u.Changes[k-1].Location[:], c.Location[:]) >= 0 {
			r.Fail(fmt.Errorf("%w: locations out of order", codec.ErrBadFormat))
		}
		u.Changes = append(u.Changes, c)
	}
	u.OldEntries = r.Uvarint()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: state update: %v", ErrMalformed, err)
	}
	return u, nil
}

// Checkpoint is the chain's record of a contract's latest accepted state
// update (the contract's signed word on its root; a recovering worker
// checks the entries against it).
type Checkpoint struct {
	Height  int64
	Seq     uint64
	Calls   uint64
	Root    [32]byte
	Entries uint64 // entries held on chain
	Bytes   uint64 // their total size (locations and values)
}

// Encode returns the canonical bytes.
func (c *Checkpoint) Encode() []byte {
	w := codec.NewWriter(64)
	w.Varint(c.Height)
	w.Uvarint(c.Seq)
	w.Uvarint(c.Calls)
	w.Fixed(c.Root[:])
	w.Uvarint(c.Entries)
	w.Uvarint(c.Bytes)
	return w.Bytes()
}

// DecodeCheckpoint strictly decodes a checkpoint record.
func DecodeCheckpoint(b []byte) (*Checkpoint, error) {
	c := &Checkpoint{}
	r := codec.NewReader(b)
	c.Height = r.Varint()
	c.Seq = r.Uvarint()
	c.Calls = r.Uvarint()
	r.Fixed(c.Root[:])
	c.Entries = r.Uvarint()
	c.Bytes = r.Uvarint()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: checkpoint: %v", ErrMalformed, err)
	}
	return c, nil
}

// State keys and queries of contract state on chain (contracts module).
const (
	QueryCheckpoint = "/contract/checkpoint" // data: contract; value: Checkpoint (absent: no update yet)
)

// CheckpointKey is the state key of a contract's checkpoint record.
func CheckpointKey(contract crypto.PublicKey) []byte { return append([]byte("cc/"), contract[:]...) }

// StateEntryKey is the state key of one encrypted entry of a contract.
func StateEntryKey(contract crypto.PublicKey, loc [StateLocationSize]byte) []byte {
	return append(StateEntryPrefix(contract), loc[:]...)
}

// StateEntryPrefix is the state key prefix of a contract's entries.
func StateEntryPrefix(contract crypto.PublicKey) []byte {
	return append([]byte("ck/"), contract[:]...)
}

// QueryContractEntries lists a contract's encrypted entries on chain, a
// page at a time (unproved: the checkpoint root authenticates them), at
// the query's height. data is one of
//
//	contract (32)                    entries from the first
//	contract ‖ after (32)            entries after location after
//	contract ‖ from (32) ‖ end (32)  entries with from ≤ location < end
//	                                 (end all zero: no upper bound)
//
// value: an EntryPage (More: entries follow within the bounds). The
// range form (EntryRangeQuery) lets a reader fetch disjoint ranges of
// locations in parallel; it continues a range from the location after
// the page's last (NextLocation).
const QueryContractEntries = "/contract/entries"

// EntryRangeQuery is the QueryContractEntries data of contract's entries
// with from ≤ location < end; end all zero means no upper bound.
func EntryRangeQuery(contract crypto.PublicKey, from, end [StateLocationSize]byte) []byte {
	return append(append(contract[:len(contract):len(contract)], from[:]...), end[:]...)
}

// NextLocation returns the location right after loc (loc + 1 as a
// big-endian number), and false if loc is the last one (all 0xff).
func NextLocation(loc [StateLocationSize]byte) ([StateLocationSize]byte, bool) {
	for i := StateLocationSize - 1; i >= 0; i-- {
		loc[i]++
		if loc[i] != 0 {
			return loc, true
		}
	}
	return loc, false
}

// MaxEntryPageBytes bounds a page of entries.
const MaxEntryPageBytes = 4 << 20

// EntryPage is a page of a contract's entries in location order; More
// says whether entries follow the last one.
type EntryPage struct {
	Entries []StateChange // Value never nil
	More    bool
}

// Encode returns the canonical bytes.
func (p *EntryPage) Encode() []byte {
	n := 8
	for _, e := range p.Entries {
		n += 40 + len(e.Value)
	}
	w := codec.NewWriter(n)
	encodeEntries(w, p.Entries)
	w.Bool(p.More)
	return w.Bytes()
}

// encodeEntries writes a list of entries (a page, a recovery's state):
// their count, then each location and value.
func encodeEntries(w *codec.Writer, entries []StateChange) {
	w.Uvarint(uint64(len(entries)))
	for _, e := range entries {
		w.Fixed(e.Location[:])
		w.BytesField(e.Value)
	}
}

// decodeEntries reads what encodeEntries wrote, strictly: locations
// strictly ascending, each value at least its 8-byte write counter and
// at most MaxEntryPageBytes.
func decodeEntries(r *codec.Reader) []StateChange {
	n := r.Uvarint()
	if n > uint64(r.Remaining()/(StateLocationSize+1)) {
		r.Fail(fmt.Errorf("%w: %d entries", codec.ErrTooLong, n))
	}
	var out []StateChange
	if r.Err() == nil && n > 0 {
		out = make([]StateChange, 0, n)
	}
	for i := uint64(0); r.Err() == nil && i < n; i++ {
		var e StateChange
		r.Fixed(e.Location[:])
		e.Value = r.BytesField(MaxEntryPageBytes)
		if r.Err() == nil && len(e.Value) < 8 {
			r.Fail(fmt.Errorf("%w: a value shorter than its write counter", codec.ErrBadFormat))
		}
		if k := len(out); k > 0 && bytes.Compare(out[k-1].Location[:], e.Location[:]) >= 0 {
			r.Fail(fmt.Errorf("%w: locations out of order", codec.ErrBadFormat))
		}
		out = append(out, e)
	}
	return out
}

// DecodeEntryPage strictly decodes a page (locations ascending).
func DecodeEntryPage(b []byte) (*EntryPage, error) {
	if len(b) > MaxEntryPageBytes+(1<<20) {
		return nil, fmt.Errorf("%w: entry page of %d bytes", ErrTooLarge, len(b))
	}
	p := &EntryPage{}
	r := codec.NewReader(b)
	p.Entries = decodeEntries(r)
	p.More = r.Bool()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: entry page: %v", ErrMalformed, err)
	}
	return p, nil
}
