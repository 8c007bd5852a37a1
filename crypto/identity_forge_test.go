package crypto

import (
	"testing"

	"github.com/gtank/ristretto255"
)

// forgeForIdentity makes a "signature" for the identity key (all-zero
// encoding) without any secret: with A the identity, s·B − k·A = s·B, so
// R = s·B verifies for any s and any message unless the key is refused.
func forgeForIdentity() Signature {
	var wide [64]byte
	wide[0] = 7
	s := ristretto255.NewScalar()
	s.FromUniformBytes(wide[:])
	r := ristretto255.NewElement().ScalarBaseMult(s)
	var sig Signature
	copy(sig[:32], r.Encode(nil))
	copy(sig[32:], s.Encode(nil))
	sig[63] |= 128 // schnorrkel's marker bit
	return sig
}

// The identity key verifies no signature, as with go-schnorrkel (which
// refuses a public key at infinity): else anyone signs as the zero key
// (the zero account, a zero caller).
func TestVerifyRefusesIdentityKey(t *testing.T) {
	sig := forgeForIdentity()
	for _, ctx := range []Context{"phala-tx", SubstrateContext} {
		msg := []byte("transfer everything from the zero account")
		if ref := schnorrkelVerify(PublicKey{}, ctx, msg, sig); ref {
			t.Fatal("go-schnorrkel accepts the forgery")
		}
		if (PublicKey{}).Verify(ctx, msg, sig) {
			t.Fatalf("Verify accepts a forged signature by the identity key under %q", ctx)
		}
	}
}
