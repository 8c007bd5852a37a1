package contracts

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"sort"
	"sync"

	"golang.org/x/crypto/hkdf"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
)

// ErrCorruptStorage means a stored ciphertext does not open under the
// contract's storage key.
var ErrCorruptStorage = errors.New("contract storage entry does not decrypt")

// Store is a contract's encrypted key-value storage. What it holds (and
// what leaves the enclave in snapshots) is only
//
//	location = HMAC-SHA256(locationKey, key)          (hides the key)
//	value    = seq(8) || AES-256-GCM(KDF(StorageKey, key), nonce = seq, value, ad = location)
//
// where seq is the store's write counter: unique per write, so no
// (key, nonce) pair repeats, and the same on every worker that executes
// the same commands, so encrypted states (and their roots) can be compared.
//
// A Store is not safe for concurrent use, except that views (View) may be
// read concurrently with each other and with the store they came from.
type Store struct {
	storageKey [32]byte
	locKey     [32]byte
	seq        uint64
	entries    map[string][]byte
	// shared: entries is also a view's; the next write copies it first.
	shared bool
	cache  *storeCache // shared with views
	// root caches Root until the next write (Info reads it under the
	// engine's lock; recomputing hashes the whole store).
	root *[32]byte
	// dirty: the locations changed since the last TakeChanges (the next
	// state update's), and the size of their current values.
	dirty      map[string]struct{}
	dirtyBytes int
}

// storeCache holds per-key derivations (deterministic functions of the
// key), shared by a store and its views.
type storeCache struct {
	mu    sync.Mutex
	aeads map[string]cipher.AEAD // per plaintext key, bounded
	locs  map[string]string      // per plaintext key, bounded
}

const maxCachedCiphers = 4096

// NewStore returns an empty store under storageKey.
func NewStore(storageKey [32]byte) *Store {
	s := &Store{storageKey: storageKey, entries: map[string][]byte{}, cache: &storeCache{aeads: map[string]cipher.AEAD{}, locs: map[string]string{}}}
	s.locKey = derive(storageKey, "phala/storage: location v1", nil)
	return s
}

func derive(secret [32]byte, purpose string, key []byte) [32]byte {
	var out [32]byte
	info := append([]byte(purpose), key...)
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret[:], nil, info), out[:]); err != nil {
		panic(err)
	}
	return out
}

func (s *Store) location(key []byte) string {
	c := s.cache
	c.mu.Lock()
	l, ok := c.locs[string(key)]
	c.mu.Unlock()
	if ok {
		return l
	}
	m := hmac.New(sha256.New, s.locKey[:])
	m.Write(key)
	l = string(m.Sum(nil))
	c.mu.Lock()
	if len(c.locs) >= maxCachedCiphers {
		clear(c.locs)
	}
	c.locs[string(key)] = l
	c.mu.Unlock()
	return l
}

// aead returns the value cipher of key (AES-GCM is safe for concurrent use).
func (s *Store) aead(key []byte) cipher.AEAD {
	c := s.cache
	c.mu.Lock()
	a, ok := c.aeads[string(key)]
	c.mu.Unlock()
	if ok {
		return a
	}
	k := derive(s.storageKey, "phala/storage: value v1", key)
	block, _ := aes.NewCipher(k[:])
	a, _ = cipher.NewGCM(block)
	c.mu.Lock()
	if len(c.aeads) >= maxCachedCiphers {
		clear(c.aeads)
	}
	c.aeads[string(key)] = a
	c.mu.Unlock()
	return a
}

// View returns an immutable view of the store's current state in O(1):
// the store copies its index (not the values, which are never modified in
// place) on its next write. Reading views concurrently is safe; a view
// must not be written.
func (s *Store) View() *Store {
	s.shared = true
	return &Store{storageKey: s.storageKey, locKey: s.locKey, seq: s.seq, entries: s.entries, shared: true, cache: s.cache}
}

// own makes entries private before a write.
func (s *Store) own() {
	s.root = nil
	if s.shared {
		s.entries = maps.Clone(s.entries)
		s.shared = false
	}
}

func nonce(seq uint64) []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n[4:], seq)
	return n
}

// Get decrypts the value of key.
func (s *Store) Get(key []byte) ([]byte, bool, error) {
	loc := s.location(key)
	e, ok := s.entries[loc]
	if !ok {
		return nil, false, nil
	}
	if len(e) < 8 {
		return nil, false, ErrCorruptStorage
	}
	v, err := s.aead(key).Open(nil, nonce(binary.BigEndian.Uint64(e[:8])), e[8:], []byte(loc))
	if err != nil {
		return nil, false, ErrCorruptStorage
	}
	return v, true, nil
}

// Set encrypts and stores value under key.
func (s *Store) Set(key, value []byte) {
	s.own()
	s.seq++
	loc := s.location(key)
	e := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(value)+16), s.seq)
	s.entries[loc] = s.aead(key).Seal(e, nonce(s.seq), value, []byte(loc))
	s.markDirty(loc, len(s.entries[loc]))
}

func (s *Store) markDirty(loc string, n int) {
	if s.dirty == nil {
		s.dirty = map[string]struct{}{}
	}
	s.dirty[loc] = struct{}{}
	s.dirtyBytes += len(loc) + n
}

// Seq is the store's write counter.
func (s *Store) Seq() uint64 { return s.seq }

// ChangedBytes is about how many bytes the pending changes (TakeChanges)
// hold: it counts every write since, so it may overstate them.
func (s *Store) ChangedBytes() int { return s.dirtyBytes }

// HasChanges reports whether entries changed since the last TakeChanges.
func (s *Store) HasChanges() bool { return len(s.dirty) > 0 }

// TakeChanges returns the entries changed since the last call, merged
// (the current value of each location; nil for one removed since), in
// location order, and forgets them.
func (s *Store) TakeChanges() []api.StateChange {
	locs := make([]string, 0, len(s.dirty))
	for l := range s.dirty {
		locs = append(locs, l)
	}
	sort.Strings(locs)
	out := make([]api.StateChange, 0, len(locs))
	for _, l := range locs {
		c := api.StateChange{Location: [api.StateLocationSize]byte([]byte(l))}
		if v, ok := s.entries[l]; ok {
			c.Value = v
		}
		out = append(out, c)
	}
	s.dirty, s.dirtyBytes = nil, 0
	return out
}

// DirtyLocations returns the changed locations TakeChanges would report,
// in order (to persist them with a snapshot).
func (s *Store) DirtyLocations() [][]byte {
	out := make([][]byte, 0, len(s.dirty))
	for l := range s.dirty {
		out = append(out, []byte(l))
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i], out[j]) < 0 })
	return out
}

// MarkDirty restores the changed locations of a snapshot (DirtyLocations).
func (s *Store) MarkDirty(locs [][]byte) {
	for _, l := range locs {
		n := 0
		if v, ok := s.entries[string(l)]; ok {
			n = len(v)
		}
		s.markDirty(string(l), n)
	}
}

// Remove deletes key.
func (s *Store) Remove(key []byte) {
	s.own()
	loc := s.location(key)
	delete(s.entries, loc)
	s.markDirty(loc, 0)
}

// Len is the number of entries.
func (s *Store) Len() int { return len(s.entries) }

// Raw calls f for every (location, encrypted value) pair, in location
// order: all that is visible outside the enclave.
func (s *Store) Raw(f func(location, value []byte)) {
	locs := make([]string, 0, len(s.entries))
	for l := range s.entries {
		locs = append(locs, l)
	}
	sort.Strings(locs)
	for _, l := range locs {
		f([]byte(l), s.entries[l])
	}
}

// Root is SHA-256 over the write counter and the sorted encrypted entries:
// equal on two workers that executed the same commands.
func (s *Store) Root() [32]byte {
	if s.root != nil {
		return *s.root
	}
	h := sha256.New()
	h.Write([]byte("phala/storage: root v1"))
	h.Write(binary.BigEndian.AppendUint64(nil, s.seq))
	s.Raw(func(l, v []byte) {
		h.Write(l)
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(v))))
		h.Write(v)
	})
	var out [32]byte
	copy(out[:], h.Sum(nil))
	s.root = &out
	return out
}

// RootOfEntries is Store.Root of a store whose write counter is seq and
// whose encrypted entries are entries (in location order, values not
// nil): what a worker recovering a contract from the chain checks its
// entries against (the checkpoint's root), without any key.
func RootOfEntries(seq uint64, entries []api.StateChange) [32]byte {
	return api.StateRoot(seq, entries)
}

// Snapshot encodes the encrypted state (safe to store outside the enclave).
func (s *Store) Snapshot() []byte {
	w := codec.NewWriter(64 + 64*len(s.entries))
	w.U8(1)
	w.Uvarint(s.seq)
	w.Uvarint(uint64(len(s.entries)))
	s.Raw(func(l, v []byte) {
		w.Fixed(l)
		w.BytesField(v)
	})
	return w.Bytes()
}

// Restore loads a snapshot taken under the same storage key, checking it
// against the expected root.
func RestoreStore(storageKey [32]byte, snap []byte, root [32]byte) (*Store, error) {
	s := NewStore(storageKey)
	r := codec.NewReader(snap)
	if v := r.U8(); v != 1 {
		return nil, fmt.Errorf("snapshot version %d", v)
	}
	s.seq = r.Uvarint()
	n := r.Uvarint()
	if n > uint64(r.Remaining()/33) {
		r.Fail(codec.ErrTooLong)
	}
	var prev []byte
	for i := uint64(0); r.Err() == nil && i < n; i++ {
		loc := make([]byte, 32)
		r.Fixed(loc)
		if prev != nil && bytes.Compare(prev, loc) >= 0 {
			r.Fail(errors.New("snapshot entries out of order"))
		}
		prev = loc
		s.entries[string(loc)] = r.BytesField(1 << 24)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if s.Root() != root {
		return nil, errors.New("snapshot does not match the expected root")
	}
	return s, nil
}

// overlay buffers one call's writes over a store; commit applies them in
// key order (so the write counter advances identically on every worker).
type overlay struct {
	base   *Store
	writes map[string][]byte // nil value: removed
	err    error
}

func newOverlay(s *Store) *overlay { return &overlay{base: s, writes: map[string][]byte{}} }

func (o *overlay) Get(key []byte) ([]byte, bool) {
	if v, ok := o.writes[string(key)]; ok {
		return v, v != nil
	}
	v, ok, err := o.base.Get(key)
	if err != nil && o.err == nil {
		o.err = err
	}
	return v, ok
}

func (o *overlay) Set(key, value []byte) {
	if value == nil {
		value = []byte{}
	}
	o.writes[string(key)] = value
}

func (o *overlay) Remove(key []byte) { o.writes[string(key)] = nil }

// changeBytes is about what the buffered writes add to a state update:
// per key its location, plus the encrypted value (write counter, value,
// GCM tag) unless removed.
func (o *overlay) changeBytes() int {
	n := 0
	for _, v := range o.writes {
		n += api.StateLocationSize
		if v != nil {
			n += 8 + len(v) + 16
		}
	}
	return n
}

func (o *overlay) commit() {
	keys := make([]string, 0, len(o.writes))
	for k := range o.writes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v := o.writes[k]; v == nil {
			o.base.Remove([]byte(k))
		} else {
			o.base.Set([]byte(k), v)
		}
	}
}
