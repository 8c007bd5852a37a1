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
	"hash"
	"io"
	"maps"
	"slices"
	"sort"
	"sync"

	"golang.org/x/crypto/hkdf"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
)

// ErrCorruptStorage means a stored ciphertext does not open under the
// contract's storage key of its epoch (or its header does not parse).
var ErrCorruptStorage = errors.New("contract storage entry does not decrypt")

// Key epoch errors.
var (
	// ErrEpochKey: a value's key epoch is not one the store holds a key
	// for (dropped, never added, or later than the write epoch).
	ErrEpochKey = errors.New("storage key epoch not held")
	// ErrEpochInUse: DropEpoch of an epoch some entries are still under,
	// or of the write epoch.
	ErrEpochInUse = errors.New("storage key epoch still in use")
	// ErrEpochOrder: AddEpoch of an epoch not after the write epoch.
	ErrEpochOrder = errors.New("storage key epoch not after the write epoch")
	// ErrNoSecrets: the store holds no secrets entry (see Secrets).
	ErrNoSecrets = errors.New("contract storage holds no secrets entry")
)

// EpochKey is a contract's StorageKey of one key epoch (docs/keys.md,
// "Keys per era": StorageKey_{c,e}).
type EpochKey struct {
	Epoch uint64
	Key   [32]byte
}

// MaxEpochKeys bounds the epoch keys a store holds at once (a rolling
// re-encryption holds two; a lagging one may hold a few).
const MaxEpochKeys = 16

// Store is a contract's encrypted key-value storage. What it holds (and
// what leaves the enclave in snapshots) is only (docs/keys.md, "Contract
// state re-encryption (rolling)", "As built: the storage")
//
//	location = HMAC-SHA256(locationKey, key)          (hides the key)
//	value    = seq(8) || uvarint(epoch) || AES-256-GCM(KDF(StorageKey_epoch, "phala/storage: value v2", location),
//	                                                  nonce = seq, value, ad = location || uvarint(epoch))
//
// where seq is the store's write counter: unique per write, so no
// (key, nonce) pair repeats, and the same on every worker that executes
// the same commands, so encrypted states (and their roots) can be compared.
// The value's key depends on its location, not its plaintext key, so an
// entry can be re-encrypted under a later epoch (Reencrypt) by a worker
// that never learns its key. locationKey is a per-contract secret that
// does not change with the epoch (derived from the epoch-0 StorageKey);
// it and the contract's identity seed are kept in the state itself, in
// the secrets entry at SecretsLocation (WriteSecrets, Secrets), so a
// store opens from its entries and the current epoch's key alone.
//
// New values are written under the write epoch (the highest held);
// older epochs' keys are held for reading until DropEpoch.
//
// A Store is not safe for concurrent use, except that views (View) may be
// read concurrently with each other and with the store they came from.
type Store struct {
	// keys: ascending by epoch, the last is the write epoch. Replaced,
	// never modified (views share it).
	keys   []EpochKey
	locKey [32]byte
	seq    uint64
	// epochHdr: uvarint(write epoch), the value header after seq.
	epochHdr []byte
	entries  map[string][]byte
	// counts: entries per key epoch (nil in views).
	counts map[uint64]int
	// pending: the locations that were under an older epoch when it was
	// built (ascending), pending[pendingAt:] not yet passed by Reencrypt;
	// nil: to build.
	pending   []string
	pendingAt int
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

// storeCache holds derivations (deterministic functions of their
// inputs), shared by a store and its views.
type storeCache struct {
	mu    sync.Mutex
	aeads map[aeadKey]cipher.AEAD // per (epoch, location), bounded
	locs  map[string]string       // per plaintext key, bounded
	kdfs  map[uint64]*valueKDF    // per held epoch
}

type aeadKey struct {
	epoch uint64
	loc   string
}

const maxCachedCiphers = 4096

// SecretsLocation is the location of the secrets entry: SHA-256 of a
// domain string, which no HMAC(locationKey, key) equals in practice, so
// contract code (which reaches entries only by plaintext key) can neither
// read, write nor remove it.
var SecretsLocation = sha256.Sum256([]byte("phala/storage: secrets entry v1"))

// NewStore returns an empty store whose write epoch is 0 under
// storageKey (the epoch-0 StorageKey, which the location key derives
// from). It holds no secrets entry (WriteSecrets).
func NewStore(storageKey [32]byte) *Store {
	s := newStore([]EpochKey{{Epoch: 0, Key: storageKey}})
	s.locKey = locationKey(storageKey)
	return s
}

func newStore(keys []EpochKey) *Store {
	s := &Store{keys: keys, entries: map[string][]byte{}, counts: map[uint64]int{},
		cache: newStoreCache()}
	s.epochHdr = binary.AppendUvarint(nil, s.WriteEpoch())
	return s
}

func newStoreCache() *storeCache {
	return &storeCache{aeads: map[aeadKey]cipher.AEAD{}, locs: map[string]string{}, kdfs: map[uint64]*valueKDF{}}
}

// locationKey is the contract's location key, from its epoch-0 StorageKey.
func locationKey(storageKey0 [32]byte) [32]byte {
	return derive(storageKey0, "phala/storage: location v1", nil)
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

// epochKey returns the key of epoch e, if held.
func (s *Store) epochKey(e uint64) (*[32]byte, bool) {
	for i := range s.keys {
		if s.keys[i].Epoch == e {
			return &s.keys[i].Key, true
		}
	}
	return nil, false
}

// aead returns the value cipher of location loc under epoch e (AES-GCM is
// safe for concurrent use), cached unless nocache (a re-encryption uses
// each cipher once).
func (s *Store) aead(e uint64, loc string, nocache bool) (cipher.AEAD, error) {
	sk, ok := s.epochKey(e)
	if !ok {
		return nil, fmt.Errorf("%w: epoch %d", ErrEpochKey, e)
	}
	c := s.cache
	ck := aeadKey{e, loc}
	c.mu.Lock()
	a, ok := c.aeads[ck]
	kdf := c.kdfs[e]
	if kdf == nil {
		kdf = newValueKDF(sk)
		c.kdfs[e] = kdf
	}
	c.mu.Unlock()
	if ok {
		return a, nil
	}
	k := kdf.key(loc)
	block, _ := aes.NewCipher(k[:])
	a, _ = cipher.NewGCM(block)
	if nocache {
		return a, nil
	}
	c.mu.Lock()
	if len(c.aeads) >= maxCachedCiphers {
		clear(c.aeads)
	}
	c.aeads[ck] = a
	c.mu.Unlock()
	return a, nil
}

// valueKDF derives the value keys of one epoch: HKDF-SHA256(StorageKey_e,
// salt none, info = "phala/storage: value v2" || location, 32 bytes),
// computed as RFC 5869 does for one block, T(1) = HMAC(PRK, info || 1),
// with PRK = HKDF-Extract(StorageKey_e) computed once per epoch and the
// HMAC state reused (TestValueKDFIsHKDF checks it against hkdf.New).
type valueKDF struct {
	mu  sync.Mutex
	mac hash.Hash
	buf []byte
}

const valueKDFInfo = "phala/storage: value v2"

func newValueKDF(storageKey *[32]byte) *valueKDF {
	prk := hkdf.Extract(sha256.New, storageKey[:], nil)
	return &valueKDF{mac: hmac.New(sha256.New, prk), buf: make([]byte, 0, len(valueKDFInfo)+api.StateLocationSize+1)}
}

func (d *valueKDF) key(loc string) [32]byte {
	var out [32]byte
	d.mu.Lock()
	d.mac.Reset()
	d.buf = append(append(append(d.buf[:0], valueKDFInfo...), loc...), 1)
	d.mac.Write(d.buf)
	d.mac.Sum(out[:0])
	d.mu.Unlock()
	return out
}

// valueOverhead is the minimum size of an encrypted value: seq(8), a
// one-byte epoch, the GCM tag.
const valueOverhead = 8 + 1 + 16

// ParseValueHeader strictly parses an encrypted value's header (values
// come from the chain in a recovery): seq(8), then the key epoch as a
// canonical uvarint, then at least a GCM tag (16 bytes). It returns the
// write counter, the epoch, and the header's length (where the
// ciphertext starts).
func ParseValueHeader(v []byte) (seq, epoch uint64, n int, err error) {
	if len(v) < valueOverhead {
		return 0, 0, 0, fmt.Errorf("%w: a value of %d bytes is shorter than its header and tag (%d)", ErrCorruptStorage, len(v), valueOverhead)
	}
	epoch, m := binary.Uvarint(v[8:])
	if m <= 0 || m != uvarintLen(epoch) {
		return 0, 0, 0, fmt.Errorf("%w: the key epoch is not a canonical uvarint", ErrCorruptStorage)
	}
	if len(v) < 8+m+16 {
		return 0, 0, 0, fmt.Errorf("%w: a value of %d bytes is shorter than its header and tag (%d)", ErrCorruptStorage, len(v), 8+m+16)
	}
	return binary.BigEndian.Uint64(v[:8]), epoch, 8 + m, nil
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// open decrypts the value v stored at loc.
func (s *Store) open(loc string, v []byte) ([]byte, error) { return s.openWith(loc, v, false) }

func (s *Store) openWith(loc string, v []byte, nocache bool) ([]byte, error) {
	seq, e, n, err := ParseValueHeader(v)
	if err != nil {
		return nil, err
	}
	a, err := s.aead(e, loc, nocache)
	if err != nil {
		return nil, err
	}
	ad := append([]byte(loc), v[8:n]...)
	out, err := a.Open(nil, nonce(seq), v[n:], ad)
	if err != nil {
		return nil, ErrCorruptStorage
	}
	return out, nil
}

// put encrypts value under the write epoch at loc with the next write
// counter (s already owned).
func (s *Store) put(loc string, value []byte) { s.putWith(loc, value, false) }

func (s *Store) putWith(loc string, value []byte, nocache bool) {
	s.seq++
	we := s.WriteEpoch()
	a, err := s.aead(we, loc, nocache)
	if err != nil {
		panic(err) // the write epoch's key is always held
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(s.epochHdr)+len(value)+16), s.seq)
	v = append(v, s.epochHdr...)
	ad := append([]byte(loc), s.epochHdr...)
	v = a.Seal(v, nonce(s.seq), value, ad)
	s.uncount(loc)
	s.entries[loc] = v
	s.counts[we]++
	s.markDirty(loc, len(v))
}

// uncount removes loc's current entry, if any, from the epoch counts.
func (s *Store) uncount(loc string) {
	if old, ok := s.entries[loc]; ok {
		if _, e, _, err := ParseValueHeader(old); err == nil {
			if s.counts[e]--; s.counts[e] <= 0 {
				delete(s.counts, e)
			}
		}
	}
}

// View returns an immutable view of the store's current state in O(1):
// the store copies its index (not the values, which are never modified in
// place) on its next write. Reading views concurrently is safe; a view
// must not be written.
func (s *Store) View() *Store {
	s.shared = true
	return &Store{keys: s.keys, locKey: s.locKey, seq: s.seq, epochHdr: s.epochHdr, entries: s.entries, shared: true, cache: s.cache}
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

// Get decrypts the value of key. The error wraps ErrCorruptStorage (the
// entry does not open) or ErrEpochKey (its epoch's key is not held).
func (s *Store) Get(key []byte) ([]byte, bool, error) {
	loc := s.location(key)
	e, ok := s.entries[loc]
	if !ok {
		return nil, false, nil
	}
	v, err := s.open(loc, e)
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

// Set encrypts and stores value under key, under the write epoch.
func (s *Store) Set(key, value []byte) {
	s.own()
	s.put(s.location(key), value)
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
	s.uncount(loc)
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

// Snapshot encodes the encrypted state (safe to store outside the
// enclave): version 2, seq, then the entries in location order. It holds
// no key: RestoreStore takes the epoch keys.
func (s *Store) Snapshot() []byte {
	w := codec.NewWriter(64 + 64*len(s.entries))
	w.U8(2)
	w.Uvarint(s.seq)
	w.Uvarint(uint64(len(s.entries)))
	s.Raw(func(l, v []byte) {
		w.Fixed(l)
		w.BytesField(v)
	})
	return w.Bytes()
}

// RestoreStore loads a snapshot of a store that held the epoch keys keys
// (ascending, the last the write epoch; Store.EpochKeys), checking it
// against the expected root and every entry's header and epoch (see
// OpenStore).
func RestoreStore(keys []EpochKey, snap []byte, root [32]byte) (*Store, error) {
	if err := checkEpochKeys(keys); err != nil {
		return nil, err
	}
	s := newStore(slices.Clone(keys))
	r := codec.NewReader(snap)
	if v := r.U8(); v != 2 {
		return nil, fmt.Errorf("snapshot version %d, this pRuntime reads 2", v)
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
		v := r.BytesField(1 << 24)
		if r.Err() != nil {
			break
		}
		if err := s.countEntry(v); err != nil {
			return nil, fmt.Errorf("snapshot entry %d (location %x): %w", i, loc[:8], err)
		}
		s.entries[string(loc)] = v
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if s.Root() != root {
		return nil, errors.New("snapshot does not match the expected root")
	}
	if err := s.loadSecrets(); err != nil {
		return nil, err
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
// per key its location, plus the encrypted value (write counter, key
// epoch, value, GCM tag) unless removed.
func (o *overlay) changeBytes() int {
	n := 0
	for _, v := range o.writes {
		n += api.StateLocationSize
		if v != nil {
			n += 8 + len(o.base.epochHdr) + len(v) + 16
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
