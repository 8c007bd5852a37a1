package contracts

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Key epochs of a store (docs/keys.md, "Contract state re-encryption
// (rolling)", "As built: the storage").

// WriteEpoch is the epoch new values are written under: the highest held.
func (s *Store) WriteEpoch() uint64 { return s.keys[len(s.keys)-1].Epoch }

// WriteKey is the write epoch's StorageKey.
func (s *Store) WriteKey() [32]byte { return s.keys[len(s.keys)-1].Key }

// EpochKeys returns a copy of the held epoch keys, ascending by epoch (the
// last is the write epoch): what a sealed checkpoint keeps to
// RestoreStore the store.
func (s *Store) EpochKeys() []EpochKey { return slices.Clone(s.keys) }

// AddEpoch makes epoch, under storageKey, the write epoch; the older
// epochs' keys stay held for reading (and Reencrypt) until DropEpoch. It
// changes no entry (and so not the root). Errors: ErrEpochOrder if epoch
// is not after the write epoch; an error if MaxEpochKeys are held.
func (s *Store) AddEpoch(epoch uint64, storageKey [32]byte) error {
	if we := s.WriteEpoch(); epoch <= we {
		return fmt.Errorf("%w: epoch %d, the write epoch is %d", ErrEpochOrder, epoch, we)
	}
	if len(s.keys) >= MaxEpochKeys {
		return fmt.Errorf("storage holds %d epoch keys, the most it may: drop a fully re-encrypted epoch first", len(s.keys))
	}
	keys := make([]EpochKey, len(s.keys), len(s.keys)+1)
	copy(keys, s.keys)
	s.keys = append(keys, EpochKey{Epoch: epoch, Key: storageKey})
	s.epochHdr = binary.AppendUvarint(nil, epoch)
	s.pending, s.pendingAt = nil, 0
	return nil
}

// OldEntries is the number of entries still under an epoch older than the
// write epoch (what Reencrypt has left to do).
func (s *Store) OldEntries() int {
	we, n := s.WriteEpoch(), 0
	for e, c := range s.counts {
		if e < we {
			n += c
		}
	}
	return n
}

// EpochEntries is the number of entries under epoch e.
func (s *Store) EpochEntries(e uint64) int { return s.counts[e] }

// Reencrypt re-encrypts up to max of the entries still under an older
// epoch, the first ones in location order, under the write epoch: each
// is decrypted under its epoch's key and written again as an ordinary
// write (the next write counter, marked changed so it goes in the next
// state update, counted in ChangedBytes). It returns how many it
// re-encrypted. The result is a function of the entries alone, so
// replicas that make the same calls hold identical entries and roots. If
// an entry does not open (ErrCorruptStorage, ErrEpochKey) nothing changes.
// Cost: one AES-GCM open and seal and two HKDF derivations per entry,
// plus, on the first call after AddEpoch (or a restore), a sort of the
// old entries' locations.
func (s *Store) Reencrypt(max int) (int, error) {
	if max <= 0 || s.OldEntries() == 0 {
		return 0, nil
	}
	we := s.WriteEpoch()
	if s.pending == nil {
		s.pending = make([]string, 0, s.OldEntries())
		for l, v := range s.entries {
			if _, e, _, err := ParseValueHeader(v); err == nil && e < we {
				s.pending = append(s.pending, l)
			}
		}
		sort.Strings(s.pending)
		s.pendingAt = 0
	}
	type item struct {
		loc   string
		plain []byte
	}
	todo := make([]item, 0, min(max, s.OldEntries()))
	i := s.pendingAt
	for ; i < len(s.pending) && len(todo) < max; i++ {
		loc := s.pending[i]
		v, ok := s.entries[loc]
		if !ok {
			continue
		}
		_, e, _, err := ParseValueHeader(v)
		if err != nil {
			return 0, fmt.Errorf("re-encrypt the entry at location %x: %w", loc[:8], err)
		}
		if e >= we {
			continue // rewritten since
		}
		p, err := s.openWith(loc, v, true)
		if err != nil {
			return 0, fmt.Errorf("re-encrypt the entry at location %x (epoch %d): %w", loc[:8], e, err)
		}
		todo = append(todo, item{loc, p})
	}
	if len(todo) > 0 {
		s.own()
	}
	for _, t := range todo {
		s.putWith(t.loc, t.plain, true)
	}
	s.pendingAt = i
	return len(todo), nil
}

// DropEpoch forgets epoch e's key (and every cipher derived from it; the
// store's views keep theirs until they are dropped). Refused (nothing
// changes) with ErrEpochInUse while entries remain under e or if e is the
// write epoch, with ErrEpochKey if e is not held, and with ErrNoSecrets
// for epoch 0 while the store holds no secrets entry (the location key
// would then be lost with it).
func (s *Store) DropEpoch(e uint64) error {
	if e == s.WriteEpoch() {
		return fmt.Errorf("%w: epoch %d is the write epoch", ErrEpochInUse, e)
	}
	i := slices.IndexFunc(s.keys, func(k EpochKey) bool { return k.Epoch == e })
	if i < 0 {
		return fmt.Errorf("%w: epoch %d", ErrEpochKey, e)
	}
	if n := s.counts[e]; n > 0 {
		return fmt.Errorf("%w: %d entries are still under epoch %d", ErrEpochInUse, n, e)
	}
	if _, ok := s.entries[string(SecretsLocation[:])]; e == 0 && !ok {
		return fmt.Errorf("%w: dropping epoch 0 would lose the location key", ErrNoSecrets)
	}
	s.keys = slices.Delete(slices.Clone(s.keys), i, i+1)
	c := s.cache
	c.mu.Lock()
	clear(c.aeads)
	delete(c.kdfs, e)
	c.mu.Unlock()
	return nil
}

// Secrets are a contract's persistent secrets: what a worker needs beyond
// the current epoch's keys, kept in the contract's state as the secrets
// entry (SecretsLocation), encrypted like any value under its epoch.
type Secrets struct {
	// LocationKey: locations are HMAC-SHA256(LocationKey, key).
	LocationKey [32]byte
	// IdentitySeed: the contract's IdentityKey is
	// crypto.KeyPairFromSeed(IdentitySeed) (it never rotates).
	IdentitySeed [crypto.SeedSize]byte
}

// secretsSize is the encoded size of Secrets: version(1), two 32-byte keys.
const secretsSize = 1 + 32 + crypto.SeedSize

func (x *Secrets) encode() []byte {
	w := codec.NewWriter(secretsSize)
	w.U8(1)
	w.Fixed(x.LocationKey[:])
	w.Fixed(x.IdentitySeed[:])
	return w.Bytes()
}

// DecodeSecrets strictly decodes the secrets entry's plaintext: version
// 1, the location key, the identity seed, nothing after.
func DecodeSecrets(b []byte) (Secrets, error) {
	var x Secrets
	r := codec.NewReader(b)
	if v := r.U8(); r.Err() == nil && v != 1 {
		return x, fmt.Errorf("secrets entry version %d", v)
	}
	r.Fixed(x.LocationKey[:])
	r.Fixed(x.IdentitySeed[:])
	if err := r.Done(); err != nil {
		return Secrets{}, fmt.Errorf("secrets entry: %w", err)
	}
	return x, nil
}

// Identity returns the contract's IdentityKey.
func (x *Secrets) Identity() (*crypto.KeyPair, error) {
	return crypto.KeyPairFromSeed(x.IdentitySeed[:])
}

// IdentitySeed is the seed of the IdentityKey keys.ContractKeysFromSeed
// derives from seed (the hard junction "identity"): what the secrets
// entry keeps, never seed itself (which gives the epoch's StorageKey).
func IdentitySeed(seed [crypto.SeedSize]byte) ([crypto.SeedSize]byte, error) {
	ck, err := crypto.KeyPairFromSeed(seed[:])
	if err != nil {
		return [crypto.SeedSize]byte{}, err
	}
	return ck.HardDeriveSeed([]byte("identity"))
}

// WriteSecrets writes the secrets entry (the store's location key and
// identitySeed) under the write epoch, as an ordinary write (next write
// counter, marked changed): at deployment, before the contract's init.
func (s *Store) WriteSecrets(identitySeed [crypto.SeedSize]byte) {
	s.own()
	x := Secrets{LocationKey: s.locKey, IdentitySeed: identitySeed}
	s.put(string(SecretsLocation[:]), x.encode())
}

// Secrets decrypts the secrets entry. Errors: ErrNoSecrets if there is
// none; ErrCorruptStorage or ErrEpochKey if it does not open; a decoding
// error.
func (s *Store) Secrets() (Secrets, error) {
	v, ok := s.entries[string(SecretsLocation[:])]
	if !ok {
		return Secrets{}, ErrNoSecrets
	}
	p, err := s.open(string(SecretsLocation[:]), v)
	if err != nil {
		return Secrets{}, fmt.Errorf("secrets entry: %w", err)
	}
	return DecodeSecrets(p)
}

// loadSecrets sets the location key of a store loaded from entries: from
// the secrets entry if there is one, else from the epoch-0 key if held.
func (s *Store) loadSecrets() error {
	x, err := s.Secrets()
	switch {
	case err == nil:
		s.locKey = x.LocationKey
		return nil
	case !errors.Is(err, ErrNoSecrets):
		return err
	}
	if k, ok := s.epochKey(0); ok {
		s.locKey = locationKey(*k)
		return nil
	}
	return fmt.Errorf("%w, and the epoch-0 key is not held: the location key is unknown", ErrNoSecrets)
}

// checkEpochKeys checks a key list: 1 to MaxEpochKeys keys, strictly
// ascending epochs.
func checkEpochKeys(keys []EpochKey) error {
	if len(keys) == 0 || len(keys) > MaxEpochKeys {
		return fmt.Errorf("%d storage epoch keys (want 1 to %d)", len(keys), MaxEpochKeys)
	}
	for i := 1; i < len(keys); i++ {
		if keys[i].Epoch <= keys[i-1].Epoch {
			return fmt.Errorf("storage epoch keys not in ascending epoch order (%d after %d)", keys[i].Epoch, keys[i-1].Epoch)
		}
	}
	return nil
}

// countEntry checks a loaded value's header and that its epoch is held,
// and counts it.
func (s *Store) countEntry(v []byte) error {
	_, e, _, err := ParseValueHeader(v)
	if err != nil {
		return err
	}
	if _, ok := s.epochKey(e); !ok {
		return fmt.Errorf("%w: the value is under epoch %d", ErrEpochKey, e)
	}
	s.counts[e]++
	return nil
}
