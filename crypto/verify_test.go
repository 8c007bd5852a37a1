package crypto

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"

	schnorrkel "github.com/ChainSafe/go-schnorrkel"
)

// schnorrkelVerify is the reference: the library's own verification.
func schnorrkelVerify(pk PublicKey, ctx Context, msg []byte, sig Signature) bool {
	p, err := schnorrkel.NewPublicKey(pk)
	if err != nil {
		return false
	}
	var s schnorrkel.Signature
	if err := s.Decode(sig); err != nil {
		return false
	}
	ok, err := p.Verify(&s, schnorrkel.NewSigningContext([]byte(ctx), msg))
	return err == nil && ok
}

// schnorrkelValid is the reference for Valid.
func schnorrkelValid(pk PublicKey) bool {
	if pk == (PublicKey{}) {
		return false
	}
	_, err := schnorrkel.NewPublicKey(pk)
	return err == nil
}

// groupOrder is ℓ, little-endian: s+ℓ is a non-canonical encoding of s.
var groupOrder = [32]byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}

func addOrder(s []byte) {
	var carry uint16
	for i := range 32 {
		v := uint16(s[i]) + uint16(groupOrder[i]) + carry
		s[i], carry = byte(v), v>>8
	}
}

func TestVerifyMatchesSchnorrkel(t *testing.T) {
	kp := MustKeyPairFromURI("//Alice")
	other := MustKeyPairFromURI("//Bob")
	msg := []byte("transfer 1 PHA")
	sig := kp.Sign(SubstrateContext, msg)
	mut := func(f func(pk *PublicKey, sig *Signature)) (PublicKey, Signature) {
		p, s := kp.Public(), sig
		f(&p, &s)
		return p, s
	}
	type tc struct {
		name string
		pk   PublicKey
		ctx  Context
		msg  []byte
		sig  Signature
		want bool
	}
	cases := []tc{
		{"valid", kp.Public(), SubstrateContext, msg, sig, true},
		{"other context", kp.Public(), "phala/tx", msg, sig, false},
		{"other message", kp.Public(), SubstrateContext, []byte("transfer 2 PHA"), sig, false},
		{"other signer", other.Public(), SubstrateContext, msg, sig, false},
		{"identity key", PublicKey{}, SubstrateContext, msg, sig, false},
		{"zero signature", kp.Public(), SubstrateContext, msg, Signature{}, false},
	}
	pk, s := mut(func(_ *PublicKey, s *Signature) { s[63] &= 127 })
	cases = append(cases, tc{"not marked schnorrkel", pk, SubstrateContext, msg, s, false})
	pk, s = mut(func(_ *PublicKey, s *Signature) { s[63] &= 127; addOrder(s[32:]); s[63] |= 128 })
	cases = append(cases, tc{"non-canonical s (s+l)", pk, SubstrateContext, msg, s, false})
	pk, s = mut(func(_ *PublicKey, s *Signature) { s[0] ^= 1 })
	cases = append(cases, tc{"R flipped", pk, SubstrateContext, msg, s, false})
	pk, s = mut(func(_ *PublicKey, s *Signature) { s[40] ^= 1 })
	cases = append(cases, tc{"s flipped", pk, SubstrateContext, msg, s, false})
	pk, s = mut(func(p *PublicKey, _ *Signature) { p[0] ^= 1 })
	cases = append(cases, tc{"key flipped", pk, SubstrateContext, msg, s, false})
	pk, s = mut(func(p *PublicKey, _ *Signature) { p[31] |= 0x80 })
	cases = append(cases, tc{"key >= p", pk, SubstrateContext, msg, s, false})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref := schnorrkelVerify(c.pk, c.ctx, c.msg, c.sig)
			if ref != c.want {
				t.Fatalf("schnorrkel says %v, case wants %v", ref, c.want)
			}
			for range 2 { // second time from the key cache
				if got := c.pk.Verify(c.ctx, c.msg, c.sig); got != ref {
					t.Fatalf("Verify = %v, schnorrkel = %v", got, ref)
				}
				if got, want := c.pk.Valid(), schnorrkelValid(c.pk); got != want {
					t.Fatalf("Valid = %v, schnorrkel decodes: %v", got, want)
				}
			}
		})
	}
}

// Many keys and messages, concurrently (run with -race: the key cache is
// shared and evicts).
func TestVerifyConcurrentManyKeys(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				var seed [SeedSize]byte
				binary.LittleEndian.PutUint64(seed[:], uint64(g*1000+i%20))
				kp, err := KeyPairFromSeed(seed[:])
				if err != nil {
					t.Error(err)
					return
				}
				msg := []byte{byte(i), byte(g)}
				sig := kp.Sign(SubstrateContext, msg)
				if !kp.Public().Verify(SubstrateContext, msg, sig) {
					t.Errorf("key %d: valid signature refused", i)
				}
				sig[5] ^= 4
				if kp.Public().Verify(SubstrateContext, msg, sig) {
					t.Errorf("key %d: corrupted signature accepted", i)
				}
				if a := kp.Public().Address(); a != kp.Public().Address() || a == "" {
					t.Errorf("address %q", a)
				}
			}
		}()
	}
	wg.Wait()
}

func TestBoundedMapEvicts(t *testing.T) {
	m := newBoundedMap[int](3)
	for i := range 10 {
		m.put(PublicKey{byte(i)}, i)
		if len(m.m) > 3 {
			t.Fatalf("%d entries, max 3", len(m.m))
		}
	}
	if v, ok := m.get(PublicKey{9}); !ok || v != 9 {
		t.Fatalf("last entry: %d %v", v, ok)
	}
}

// FuzzVerifyMatchesSchnorrkel: for any key, signature and message bytes,
// Verify and Valid agree with the schnorrkel library.
func FuzzVerifyMatchesSchnorrkel(f *testing.F) {
	for i, uri := range []string{"//Alice", "//Bob", "//Charlie"} {
		kp := MustKeyPairFromURI(uri)
		msg := bytes.Repeat([]byte{byte(i)}, i*10)
		sig := kp.Sign(SubstrateContext, msg)
		pk := kp.Public()
		f.Add(pk[:], sig[:], msg)
		sig[63] &= 127
		f.Add(pk[:], sig[:], msg)
	}
	f.Add(make([]byte, 32), make([]byte, 64), []byte{})
	f.Fuzz(func(t *testing.T, pkb, sigb, msg []byte) {
		var pk PublicKey
		var sig Signature
		copy(pk[:], pkb)
		copy(sig[:], sigb)
		if got, want := pk.Verify(SubstrateContext, msg, sig), schnorrkelVerify(pk, SubstrateContext, msg, sig); got != want {
			t.Fatalf("Verify = %v, schnorrkel = %v (pk %x sig %x)", got, want, pk, sig)
		}
		if got, want := pk.Valid(), schnorrkelValid(pk); got != want {
			t.Fatalf("Valid = %v, schnorrkel = %v (pk %x)", got, want, pk)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	kp := MustKeyPairFromURI("//Alice")
	msg := make([]byte, 100)
	sig := kp.Sign(SubstrateContext, msg)
	b.Run("schnorrkel", func(b *testing.B) {
		for range b.N {
			if !schnorrkelVerify(kp.Public(), SubstrateContext, msg, sig) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("cached-key", func(b *testing.B) {
		for range b.N {
			if !kp.Public().Verify(SubstrateContext, msg, sig) {
				b.Fatal("refused")
			}
		}
	})
}
