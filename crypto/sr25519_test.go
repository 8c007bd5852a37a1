package crypto

import (
	"bytes"
	"testing"

	schnorrkel "github.com/ChainSafe/go-schnorrkel"
)

// schnorrkelVerify is the reference: go-schnorrkel's verification, which
// Verify replaced for speed.
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

// TestVerifyAgreesWithSchnorrkel checks Verify against go-schnorrkel on
// valid signatures and on each way of breaking one.
func TestVerifyAgreesWithSchnorrkel(t *testing.T) {
	alice, bob := MustKeyPairFromURI("//Alice"), MustKeyPairFromURI("//Bob")
	msg := []byte("transfer 1 to bob")
	sig := alice.Sign("phala-tx", msg)
	flip := func(s Signature, i int) Signature { s[i] ^= 1; return s }
	unmarked := sig
	unmarked[63] &^= 128
	cases := []struct {
		name string
		pk   PublicKey
		ctx  Context
		msg  []byte
		sig  Signature
		want bool
	}{
		{"valid", alice.Public(), "phala-tx", msg, sig, true},
		{"other signer", bob.Public(), "phala-tx", msg, sig, false},
		{"other context", alice.Public(), "phala-query", msg, sig, false},
		{"other message", alice.Public(), "phala-tx", []byte("transfer 2 to bob"), sig, false},
		{"R flipped", alice.Public(), "phala-tx", msg, flip(sig, 3), false},
		{"s flipped", alice.Public(), "phala-tx", msg, flip(sig, 40), false},
		{"not marked schnorrkel", alice.Public(), "phala-tx", msg, unmarked, false},
		{"zero key", PublicKey{}, "phala-tx", msg, sig, false},
		{"zero signature", alice.Public(), "phala-tx", msg, Signature{}, false},
		{"empty message", alice.Public(), "phala-tx", nil, alice.Sign("phala-tx", nil), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ref := c.pk.Verify(c.ctx, c.msg, c.sig), schnorrkelVerify(c.pk, c.ctx, c.msg, c.sig)
			if got != c.want || ref != c.want {
				t.Fatalf("Verify = %v, go-schnorrkel = %v, want %v", got, ref, c.want)
			}
		})
	}
}

// FuzzVerifyMatchesSchnorrkel: on any key, message and signature bytes,
// Verify never accepts what go-schnorrkel refuses, and accepts every
// signature Sign makes.
func FuzzVerifyMatchesSchnorrkel(f *testing.F) {
	alice := MustKeyPairFromURI("//Alice")
	sig := alice.Sign("phala-tx", []byte("m"))
	pk := alice.Public()
	f.Add(pk[:], []byte("m"), sig[:], false)
	f.Add(pk[:], []byte("m"), sig[:], true)
	f.Add(make([]byte, 32), []byte{}, make([]byte, 64), false)
	forged := forgeForIdentity()
	f.Add(make([]byte, 32), []byte("m"), forged[:], false)
	f.Fuzz(func(t *testing.T, pkb, msg, sigb []byte, sign bool) {
		if sign {
			// A fresh signature by a derived key over the fuzzed message.
			k, err := KeyPairFromSeed(append(bytes.Repeat([]byte{1}, 32-min(len(pkb), 32)), pkb[:min(len(pkb), 32)]...))
			if err != nil {
				t.Skip()
			}
			s := k.Sign("phala-tx", msg)
			if !k.Public().Verify("phala-tx", msg, s) {
				t.Fatalf("Verify refuses a signature Sign made")
			}
			return
		}
		var p PublicKey
		var s Signature
		copy(p[:], pkb)
		copy(s[:], sigb)
		if p.Verify("phala-tx", msg, s) && !schnorrkelVerify(p, "phala-tx", msg, s) {
			t.Fatalf("Verify accepts what go-schnorrkel refuses: pk %x sig %x", p, s)
		}
	})
}

// BenchmarkVerify compares Verify with go-schnorrkel's verification of
// the same signature (run with -bench Verify; the ratio is the gain).
func BenchmarkVerify(b *testing.B) {
	alice := MustKeyPairFromURI("//Alice")
	msg := bytes.Repeat([]byte{7}, 150)
	sig := alice.Sign("phala-tx", msg)
	for _, v := range []struct {
		name   string
		verify func(PublicKey, Context, []byte, Signature) bool
	}{{"voi", PublicKey.Verify}, {"schnorrkel", schnorrkelVerify}} {
		b.Run(v.name, func(b *testing.B) {
			for b.Loop() {
				if !v.verify(alice.Public(), "phala-tx", msg, sig) {
					b.Fatal("refused")
				}
			}
		})
	}
}
