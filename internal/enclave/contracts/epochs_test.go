package contracts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/enclave/keys"
)

func epochKey(e uint64) [32]byte {
	return sha256.Sum256(fmt.Appendf(nil, "storage key of epoch %d", e))
}

// deployed returns a store as a newly deployed contract has it (epoch 0,
// the secrets entry written), with n entries, and the contract's keys.
func deployed(t testing.TB, n int) (*Store, *keys.ContractKeys) {
	t.Helper()
	k, err := keys.ContractKeysFromSeed(sha256.Sum256([]byte("epoch test contract")))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(context.Background(), nil, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Store()
	for i := range n {
		s.Set(fmt.Appendf(nil, "key-%04d", i), fmt.Appendf(nil, "value-%04d", i))
	}
	return s, k
}

func valueEpoch(t testing.TB, v []byte) uint64 {
	t.Helper()
	_, e, _, err := ParseValueHeader(v)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Every epoch (one- and multi-byte uvarints) round-trips: values written
// under it say it, read back, and a store opened from the entries with
// the held keys reads them too.
func TestEpochRoundTrip(t *testing.T) {
	for _, epochs := range [][]uint64{{0}, {0, 1}, {0, 1, 300}, {0, 127, 128, 1 << 40}} {
		t.Run(fmt.Sprint(epochs), func(t *testing.T) {
			s, _ := deployed(t, 0)
			for i, e := range epochs {
				if i > 0 {
					if err := s.AddEpoch(e, epochKey(e)); err != nil {
						t.Fatal(err)
					}
				}
				s.Set(fmt.Appendf(nil, "k%d", e), fmt.Appendf(nil, "v%d", e))
				if s.WriteEpoch() != e || s.WriteKey() != s.keys[len(s.keys)-1].Key {
					t.Fatalf("write epoch %d, want %d", s.WriteEpoch(), e)
				}
			}
			s.TakeChanges()
			r, err := OpenStore(s.EpochKeys(), s.Seq(), rawEntries(s), s.Root())
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range []*Store{s, r} {
				for _, e := range epochs {
					v, ok, err := st.Get(fmt.Appendf(nil, "k%d", e))
					if err != nil || !ok || string(v) != fmt.Sprintf("v%d", e) {
						t.Fatalf("epoch %d: %q %v %v", e, v, ok, err)
					}
					if got := valueEpoch(t, st.entries[st.location(fmt.Appendf(nil, "k%d", e))]); got != e {
						t.Fatalf("value says epoch %d, written under %d", got, e)
					}
					if n := st.EpochEntries(e); n < 1 {
						t.Fatalf("%d entries counted under epoch %d", n, e)
					}
				}
			}
			if len(epochs) > 1 && s.OldEntries() != len(epochs) { // the secrets entry, and one per older epoch
				t.Fatalf("%d old entries", s.OldEntries())
			}
		})
	}
}

// A value written under epoch e+1 does not open with e's key, nor one
// written under e with e+1's key; a header whose epoch is changed does
// not open either (the epoch is in the AEAD's additional data).
func TestEpochKeysSeparate(t *testing.T) {
	s, _ := deployed(t, 0)
	s.Set([]byte("old"), []byte("under 0"))
	if err := s.AddEpoch(1, epochKey(1)); err != nil {
		t.Fatal(err)
	}
	s.Set([]byte("new"), []byte("under 1"))
	k0, k1 := s.keys[0].Key, s.keys[1].Key
	for _, tc := range []struct {
		name string
		key  string
		as   []EpochKey // the keys the reader holds, mislabelled
	}{
		{"epoch-1 value, epoch-0 key", "new", []EpochKey{{0, k0}, {1, k0}}},
		{"epoch-0 value, epoch-1 key", "old", []EpochKey{{0, k1}, {1, k1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.View()
			r.keys = tc.as
			r.cache = newStoreCache()
			if _, _, err := r.Get([]byte(tc.key)); !errors.Is(err, ErrCorruptStorage) {
				t.Fatalf("opened: %v", err)
			}
		})
	}
	// Without the value's epoch held at all: ErrEpochKey.
	r := s.View()
	r.keys = []EpochKey{{1, k1}}
	if _, _, err := r.Get([]byte("old")); !errors.Is(err, ErrEpochKey) {
		t.Fatalf("epoch 0 not held: %v", err)
	}
	// The epoch in the header is authenticated.
	loc := s.location([]byte("new"))
	v := bytes.Clone(s.entries[loc])
	v[8] = 0
	if _, err := s.open(loc, v); !errors.Is(err, ErrCorruptStorage) {
		t.Fatalf("relabelled value: %v", err)
	}
}

// Rolling re-encryption: two stores fed the same calls (re-encryption in
// bounded steps interleaved with writes and removals) keep identical
// entries and roots, each step re-encrypts at most its bound, the old
// count falls to zero, every entry ends under the new epoch, values and
// the secrets entry still read.
func TestReencryptRolling(t *testing.T) {
	const n, step = 1000, 128
	a, k := deployed(t, n)
	b, _ := deployed(t, n)
	a.TakeChanges()
	b.TakeChanges()
	for _, s := range []*Store{a, b} {
		if err := s.AddEpoch(1, epochKey(1)); err != nil {
			t.Fatal(err)
		}
	}
	if a.OldEntries() != n+1 || a.Root() != b.Root() {
		t.Fatalf("%d old entries, want %d (the secrets entry too)", a.OldEntries(), n+1)
	}
	steps := 0
	for i := 0; a.OldEntries() > 0; i++ {
		left := a.OldEntries()
		// Writes and removals between steps, the same on both.
		for _, s := range []*Store{a, b} {
			s.Set(fmt.Appendf(nil, "key-%04d", (i*37)%n), []byte("rewritten"))
			s.Remove(fmt.Appendf(nil, "key-%04d", (i*53+11)%n))
		}
		left2 := a.OldEntries()
		if left2 > left {
			t.Fatal("writes added old entries")
		}
		bytesBefore := a.ChangedBytes()
		na, err := a.Reencrypt(step)
		if err != nil {
			t.Fatal(err)
		}
		nb, err := b.Reencrypt(step)
		if err != nil || na != nb {
			t.Fatalf("replicas re-encrypted %d and %d (%v)", na, nb, err)
		}
		if na > step || na != min(step, left2) || a.OldEntries() != left2-na {
			t.Fatalf("step %d: re-encrypted %d of %d (bound %d), %d left", i, na, left2, step, a.OldEntries())
		}
		if na > 0 && a.ChangedBytes() <= bytesBefore {
			t.Fatal("re-encryptions not counted in ChangedBytes")
		}
		if a.Root() != b.Root() || a.Seq() != b.Seq() {
			t.Fatalf("step %d: replicas diverge", i)
		}
		ca, cb := a.TakeChanges(), b.TakeChanges()
		if len(ca) != len(cb) || len(ca) < na {
			t.Fatalf("step %d: %d and %d changes for %d re-encryptions", i, len(ca), len(cb), na)
		}
		for j := range ca {
			if ca[j].Location != cb[j].Location || !bytes.Equal(ca[j].Value, cb[j].Value) {
				t.Fatalf("step %d: change %d differs", i, j)
			}
		}
		steps++
		if steps > n/step+2 {
			t.Fatal("re-encryption does not finish")
		}
	}
	for l, v := range a.entries {
		if valueEpoch(t, v) != 1 || !bytes.Equal(b.entries[l], v) {
			t.Fatalf("entry %x under epoch %d after re-encryption", l[:4], valueEpoch(t, v))
		}
	}
	if n, err := a.Reencrypt(step); n != 0 || err != nil {
		t.Fatalf("nothing left, yet %d re-encrypted (%v)", n, err)
	}
	for i := range n {
		v, ok, err := a.Get(fmt.Appendf(nil, "key-%04d", i))
		if err != nil || (ok && string(v) != fmt.Sprintf("value-%04d", i) && string(v) != "rewritten") {
			t.Fatalf("key %d: %q %v", i, v, err)
		}
	}
	x, err := a.Secrets()
	if err != nil || x.LocationKey != a.locKey {
		t.Fatalf("secrets after re-encryption: %v", err)
	}
	if id, _ := x.Identity(); id.Public() != k.Identity.Public() {
		t.Fatal("the secrets entry's identity is not the contract's")
	}
}

// DropEpoch is refused while entries remain under the epoch (and for the
// write epoch, an epoch not held, epoch 0 of a store without secrets);
// after it, with only the new epoch's key (P2), entries captured under
// the old epoch open nowhere, and the store holds nothing of the old key.
func TestDropEpochForwardSecrecy(t *testing.T) {
	s, _ := deployed(t, 50)
	s.TakeChanges()
	old, oldSeq, oldRoot := rawEntries(s), s.Seq(), s.Root() // what an observer captured
	if err := s.AddEpoch(1, epochKey(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.AddEpoch(1, epochKey(9)); !errors.Is(err, ErrEpochOrder) {
		t.Fatalf("AddEpoch of the write epoch again: %v", err)
	}
	if _, err := s.Reencrypt(20); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		epoch uint64
		want  error
	}{{0, ErrEpochInUse}, {1, ErrEpochInUse}, {7, ErrEpochKey}} {
		if err := s.DropEpoch(tc.epoch); !errors.Is(err, tc.want) {
			t.Fatalf("DropEpoch(%d) = %v, want %v", tc.epoch, err, tc.want)
		}
	}
	if len(s.keys) != 2 {
		t.Fatal("a refused DropEpoch changed the keys")
	}
	if _, err := s.Reencrypt(1 << 20); err != nil || s.OldEntries() != 0 {
		t.Fatalf("%d left (%v)", s.OldEntries(), err)
	}
	if err := s.DropEpoch(0); err != nil {
		t.Fatal(err)
	}
	held := s.EpochKeys()
	if len(held) != 1 || held[0].Epoch != 1 || len(s.cache.aeads) != 0 || s.cache.kdfs[0] != nil {
		t.Fatalf("after DropEpoch(0): keys %d, cached ciphers %d", len(held), len(s.cache.aeads))
	}
	// P2: everything held now opens none of the captured entries.
	if _, err := OpenStore(held, oldSeq, old, oldRoot); !errors.Is(err, ErrEpochKey) {
		t.Fatalf("old entries with the new key: %v", err)
	}
	mis := s.View()
	mis.keys = []EpochKey{{0, held[0].Key}, {1, held[0].Key}}
	mis.cache = newStoreCache()
	for _, e := range old {
		if _, err := mis.open(string(e.Location[:]), e.Value); !errors.Is(err, ErrCorruptStorage) {
			t.Fatalf("captured entry %x opened under the new key: %v", e.Location[:4], err)
		}
	}
	// A store without a secrets entry keeps epoch 0 (its location key).
	p := NewStore(epochKey(0))
	p.Set([]byte("a"), []byte("b"))
	if err := p.AddEpoch(1, epochKey(1)); err != nil {
		t.Fatal(err)
	}
	p.Reencrypt(10)
	if err := p.DropEpoch(0); !errors.Is(err, ErrNoSecrets) {
		t.Fatalf("DropEpoch(0) without secrets: %v", err)
	}
}

// Contract code reaches entries only through the host functions, by
// plaintext key (the overlay): no key it can name reads, overwrites or
// removes the secrets entry.
func TestSecretsEntryUnreachable(t *testing.T) {
	s, k := deployed(t, 3)
	before := bytes.Clone(s.entries[string(SecretsLocation[:])])
	if before == nil {
		t.Fatal("no secrets entry at deployment")
	}
	probes := [][]byte{{}, SecretsLocation[:], []byte("phala/storage: secrets entry v1"), s.locKey[:], k.Storage[:], k.Seed[:]}
	e := &env{overlay: newOverlay(s)}
	for _, p := range probes {
		if v, ok := e.Get(p); ok {
			t.Fatalf("key %x reads %x", p, v)
		}
		e.Set(p, []byte("overwrite"))
	}
	e.commit()
	e = &env{overlay: newOverlay(s)}
	for _, p := range probes {
		e.Remove(p)
	}
	e.commit()
	if !bytes.Equal(s.entries[string(SecretsLocation[:])], before) {
		t.Fatal("contract writes reached the secrets entry")
	}
	x, err := s.Secrets()
	if err != nil || x.LocationKey != s.locKey {
		t.Fatalf("secrets: %v", err)
	}
	id, _ := IdentitySeed(k.Seed)
	if x.IdentitySeed != id || bytes.Contains(before, k.Seed[:]) {
		t.Fatal("the secrets entry does not hold the identity seed")
	}
}

// A worker holding only the current epoch's key (epoch 0's destroyed)
// rebuilds the same store from the entries: root, values, secrets, the
// contract's identity, and it goes on identically. Mid-migration, both
// epochs' keys do the same; fewer fail clearly.
func TestOpenStoreAfterEpochZero(t *testing.T) {
	s, k := deployed(t, 200)
	if err := s.AddEpoch(1, epochKey(1)); err != nil {
		t.Fatal(err)
	}
	s.Reencrypt(120)
	s.TakeChanges()
	mid := rawEntries(s)
	if _, err := OpenStore([]EpochKey{{1, epochKey(1)}}, s.Seq(), mid, s.Root()); !errors.Is(err, ErrEpochKey) {
		t.Fatalf("mid-migration with one key: %v", err)
	}
	if r, err := OpenStore(s.EpochKeys(), s.Seq(), mid, s.Root()); err != nil || r.OldEntries() != s.OldEntries() {
		t.Fatalf("mid-migration with both keys: %v", err)
	}
	s.Reencrypt(1 << 20)
	if err := s.DropEpoch(0); err != nil {
		t.Fatal(err)
	}
	s.TakeChanges()
	r, err := OpenStore([]EpochKey{{1, epochKey(1)}}, s.Seq(), rawEntries(s), s.Root())
	if err != nil {
		t.Fatal(err)
	}
	if r.Root() != s.Root() || r.locKey != s.locKey || r.HasChanges() {
		t.Fatal("the rebuilt store differs")
	}
	for i := range 200 {
		v, ok, err := r.Get(fmt.Appendf(nil, "key-%04d", i))
		if err != nil || !ok || string(v) != fmt.Sprintf("value-%04d", i) {
			t.Fatalf("key %d: %q %v %v", i, v, ok, err)
		}
	}
	x, err := r.Secrets()
	if err != nil {
		t.Fatal(err)
	}
	k1 := *k
	k1.Storage = epochKey(1)
	k1.Identity = nil
	ck, err := KeysWithSecrets(&k1, &x)
	if err != nil || ck.Identity.Public() != k.Identity.Public() {
		t.Fatalf("recovered identity: %v", err)
	}
	s.Set([]byte("after"), []byte("1"))
	r.Set([]byte("after"), []byte("1"))
	if r.Root() != s.Root() {
		t.Fatal("the rebuilt store diverges")
	}
	// The sealed-snapshot path gives the same.
	rs, err := RestoreStore(s.EpochKeys(), s.Snapshot(), s.Root())
	if err != nil || rs.Root() != s.Root() || rs.locKey != s.locKey {
		t.Fatalf("snapshot restore: %v", err)
	}
	// After epoch 0 the identity is the state's whatever the epoch keys
	// passed (the engine checks it is the contract part's id).
	other, _ := keys.ContractKeysFromSeed(sha256.Sum256([]byte("other")))
	c, err := Restore(context.Background(), nil, other, nil, s.EpochKeys(), s.Snapshot(), s.Root(), 0)
	if err != nil || c.ID() != k.Identity.Public() {
		t.Fatalf("restore at epoch 1: %v", err)
	}
	// At epoch 0, keys of another contract's identity are refused.
	s0 := NewStore(k.Storage)
	s0.WriteSecrets(mustIdentitySeed(t, k.Seed))
	if _, err := Restore(context.Background(), nil, other, nil, s0.EpochKeys(), s0.Snapshot(), s0.Root(), 0); !errors.Is(err, ErrWrongContract) {
		t.Fatalf("restore under another contract's keys: %v", err)
	}
}

func mustIdentitySeed(t *testing.T, seed [32]byte) [32]byte {
	t.Helper()
	id, err := IdentitySeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Bad value headers and epoch lists are refused with clear errors.
func TestValueHeaderRefused(t *testing.T) {
	seq8 := binary.BigEndian.AppendUint64(nil, 1)
	tag := make([]byte, 16)
	for _, tc := range []struct {
		name string
		v    []byte
	}{
		{"empty", nil},
		{"no epoch", append(bytes.Clone(seq8), tag...)[:8+15]},
		{"non-canonical epoch", append(append(bytes.Clone(seq8), 0x80, 0x00), tag...)},
		{"overlong epoch", append(append(bytes.Clone(seq8), bytes.Repeat([]byte{0xff}, 11)...), tag...)},
		{"no tag", append(bytes.Clone(seq8), 0x81, 0x01, 1, 2, 3)},
	} {
		if _, _, _, err := ParseValueHeader(tc.v); !errors.Is(err, ErrCorruptStorage) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	for _, ks := range [][]EpochKey{nil, {{1, epochKey(1)}, {1, epochKey(1)}}, make([]EpochKey, MaxEpochKeys+1)} {
		if _, err := OpenStore(ks, 0, nil, api.StateRoot(0, nil)); err == nil {
			t.Errorf("%d keys accepted", len(ks))
		}
	}
}

func FuzzParseValueHeader(f *testing.F) {
	s, _ := deployed(f, 2)
	s.AddEpoch(300, epochKey(300))
	s.Set([]byte("x"), []byte("y"))
	s.Raw(func(_, v []byte) { f.Add(v) })
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		seq, e, n, err := ParseValueHeader(v)
		if err != nil {
			return
		}
		h := binary.AppendUvarint(binary.BigEndian.AppendUint64(nil, seq), e)
		if !bytes.Equal(h, v[:n]) || len(v) < n+16 {
			t.Fatalf("header %x of %x re-encodes as %x", v[:n], v, h)
		}
	})
}

func FuzzDecodeSecrets(f *testing.F) {
	x := Secrets{LocationKey: [32]byte{1}, IdentitySeed: [32]byte{2}}
	f.Add(x.encode())
	f.Add([]byte{1})
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := DecodeSecrets(b)
		if err != nil {
			return
		}
		if !bytes.Equal(x.encode(), b) {
			t.Fatalf("secrets %x re-encode differently", b)
		}
	})
}

func FuzzRestoreStore(f *testing.F) {
	s, _ := deployed(f, 3)
	s.AddEpoch(1, epochKey(1))
	s.Reencrypt(2)
	keys, root := s.EpochKeys(), s.Root()
	f.Add(s.Snapshot())
	f.Add([]byte{2, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := RestoreStore(keys, b, root)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Snapshot(), b) {
			t.Fatalf("snapshot %x re-encodes differently", b)
		}
	})
}

// BenchmarkReencrypt: rolling re-encryption of 1,000 entries (32-byte
// keys, 64-byte values) from one epoch to the next, per op: AddEpoch,
// Reencrypt(1000) (decrypt under the old key, seal under the new, HKDF of
// both per-location keys, as after a cold cache), DropEpoch of the old.
func BenchmarkReencrypt(b *testing.B) {
	s := NewStore(epochKey(0))
	val := bytes.Repeat([]byte{7}, 64)
	for i := range 1000 {
		k := sha256.Sum256(fmt.Appendf(nil, "%d", i))
		s.Set(k[:], val)
	}
	s.TakeChanges()
	e := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		e++
		if err := s.AddEpoch(e, epochKey(e)); err != nil {
			b.Fatal(err)
		}
		if n, err := s.Reencrypt(1000); err != nil || n != 1000 {
			b.Fatal(n, err)
		}
		if e > 1 {
			if err := s.DropEpoch(e - 1); err != nil {
				b.Fatal(err)
			}
		}
		s.TakeChanges()
	}
}

// The per-epoch value KDF is HKDF-SHA256 (golang.org/x/crypto/hkdf) of the
// epoch's key with info "phala/storage: value v2" || location.
func TestValueKDFIsHKDF(t *testing.T) {
	for _, e := range []uint64{0, 1, 300} {
		k := epochKey(e)
		d := newValueKDF(&k)
		for _, loc := range []string{string(SecretsLocation[:]), string(make([]byte, 32))} {
			if d.key(loc) != derive(k, valueKDFInfo, []byte(loc)) {
				t.Fatalf("epoch %d: the value key is not HKDF's", e)
			}
		}
	}
}

// The Contract's epoch plumbing: AddKeyEpoch moves writes and the call
// randomness to the new key, Reencrypt reports its state bytes,
// DropKeyEpoch is refused until nothing is left, and Restore takes the
// held keys back from a checkpoint.
func TestContractKeyEpochs(t *testing.T) {
	k, _ := keys.ContractKeysFromSeed(sha256.Sum256([]byte("epoch test contract")))
	c, err := New(context.Background(), nil, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		c.Store().Set(fmt.Appendf(nil, "k%d", i), []byte("v"))
	}
	seed0 := string(c.newEnv("command", k.Identity.Public(), 5, time.Unix(1, 0)).seed.bytes())
	if err := c.AddKeyEpoch(1, epochKey(1)); err != nil {
		t.Fatal(err)
	}
	if seed1 := string(c.newEnv("command", k.Identity.Public(), 5, time.Unix(1, 0)).seed.bytes()); seed1 == seed0 {
		t.Fatal("the call randomness does not follow the write epoch")
	}
	if err := c.DropKeyEpoch(0); !errors.Is(err, ErrEpochInUse) {
		t.Fatalf("DropKeyEpoch(0) with 11 entries under it: %v", err)
	}
	n, b, err := c.Reencrypt(4)
	if err != nil || n != 4 || b <= 4*api.StateLocationSize {
		t.Fatalf("Reencrypt(4) = %d, %d bytes, %v", n, b, err)
	}
	snap, root, held := c.Store().Snapshot(), c.StateRoot(), c.Store().EpochKeys()
	r, err := Restore(context.Background(), nil, k, nil, held, snap, root, c.Calls())
	if err != nil || r.StateRoot() != root || r.Store().OldEntries() != 7 || r.Store().WriteEpoch() != 1 {
		t.Fatalf("restored: %v", err)
	}
	if n, _, err := c.Reencrypt(100); err != nil || n != 7 {
		t.Fatalf("rest: %d %v", n, err)
	}
	if err := c.DropKeyEpoch(0); err != nil {
		t.Fatal(err)
	}
}

// TestChannelCacheFollowsEcdhKey: Channel caches CommKey per peer and
// purpose, and a key epoch switch drops the cache, so inputs sealed to
// the retired ECDH key no longer open through it.
func TestChannelCacheFollowsEcdhKey(t *testing.T) {
	k0, _ := keys.ContractKeysFromSeed(sha256.Sum256([]byte("channel cache epoch 0")))
	k1, _ := keys.ContractKeysFromSeed(sha256.Sum256([]byte("channel cache epoch 1")))
	c, err := New(context.Background(), nil, k0, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := crypto.MustKeyPairFromURI("//Alice")
	seal := func(to *crypto.KeyPair, purpose string) []byte {
		ch, err := channel.New(client, to.Public(), purpose)
		if err != nil {
			t.Fatal(err)
		}
		return ch.Seal([]byte("transfer"), []byte("ad"))
	}
	open := func(purpose string, sealed []byte) error {
		ch, err := c.Channel(client.Public(), purpose)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ch.Open(sealed, []byte("ad"))
		return err
	}
	to0 := seal(k0.Ecdh, api.ChannelPurposeCommand)
	if err := open(api.ChannelPurposeCommand, to0); err != nil {
		t.Fatalf("command sealed to the current key: %v", err)
	}
	if a, _ := c.Channel(client.Public(), api.ChannelPurposeCommand); a != must(c.Channel(client.Public(), api.ChannelPurposeCommand)) {
		t.Fatal("the channel is derived again on every call")
	}
	if err := open(api.ChannelPurposeReceipt, to0); err == nil {
		t.Fatal("a command's ciphertext opens as a receipt: purposes share a key")
	}
	if err := c.SwitchEpoch(1, k1); err != nil {
		t.Fatal(err)
	}
	if err := open(api.ChannelPurposeCommand, to0); err == nil {
		t.Fatal("after the switch, the cached channel of the retired ECDH key still opens")
	}
	if err := open(api.ChannelPurposeCommand, seal(k1.Ecdh, api.ChannelPurposeCommand)); err != nil {
		t.Fatalf("command sealed to the new key: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
