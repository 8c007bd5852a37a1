package crypto

import (
	"bytes"
	"strings"
	"testing"

	subkey "github.com/vedhavyas/go-subkey/v2"
	subsr "github.com/vedhavyas/go-subkey/v2/sr25519"
)

// Vectors printed by Substrate's `subkey inspect` (well-known dev accounts).
func TestKeyPairFromURIMatchesSubkey(t *testing.T) {
	for _, tc := range []struct{ uri, pub, addr string }{
		{"//Alice", "0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d", "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"},
		{"//Bob", "0x8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48", "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"},
		{"//Charlie", "0x90b5ab205c6974c9ea841be688864633dc9ca8a357843eeacf2314649965fe22", "5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y"},
		{"//Alice//stash", "0xbe5ddb1579b72e84524fc29e78609e3caf42e85aa118ebfe0b0ad404b5bdd25f", "5GNJqTPyNqANBkUVMN1LPPrxXnFouWXoe2wNSmmEoLctxiZY"},
	} {
		kp, err := KeyPairFromURI(tc.uri)
		if err != nil {
			t.Fatalf("%s: %v", tc.uri, err)
		}
		if got := kp.Public().Hex(); got != tc.pub {
			t.Errorf("%s: public %s, want %s", tc.uri, got, tc.pub)
		}
		if got := kp.Address(); got != tc.addr {
			t.Errorf("%s: address %s, want %s", tc.uri, got, tc.addr)
		}
	}
}

// go-subkey is an independent implementation of the same derivation; soft
// junctions, numbers, long names and passwords must agree with it.
func TestKeyPairFromURIMatchesGoSubkey(t *testing.T) {
	for _, uri := range []string{
		"//Alice", "//stash/0", "//Alice/soft//hard/1", "//a-very-long-junction-name-over-thirty-two-bytes",
		DevPhrase + "//foo///password", "0x" + "0102030405060708091011121314151617181920212223242526272829303132" + "//x",
	} {
		want, err := subkey.DeriveKeyPair(subsr.Scheme{}, uri)
		if err != nil {
			t.Fatalf("go-subkey %s: %v", uri, err)
		}
		got, err := KeyPairFromURI(uri)
		if err != nil {
			t.Fatalf("%s: %v", uri, err)
		}
		pub := got.Public()
		if !bytes.Equal(pub[:], want.Public()) {
			t.Errorf("%s: public key differs from go-subkey", uri)
		}
	}
}

func TestKeyPairFromURIRejects(t *testing.T) {
	for _, uri := range []string{"//", "bad phrase words", "0x1234", "/"} {
		if _, err := KeyPairFromURI(uri); err == nil {
			t.Errorf("%q: accepted", uri)
		}
	}
}

func TestSignVerifyContexts(t *testing.T) {
	kp := MustKeyPairFromURI("//Alice")
	msg := []byte("hello")
	sig := kp.Sign("phala/test: a", msg)
	if !kp.Public().Verify("phala/test: a", msg, sig) {
		t.Fatal("signature does not verify")
	}
	if kp.Public().Verify("phala/test: b", msg, sig) {
		t.Fatal("signature verifies under another context")
	}
	if kp.Public().Verify("phala/test: a", []byte("hellO"), sig) {
		t.Fatal("signature verifies another message")
	}
	bob := MustKeyPairFromURI("//Bob").Public()
	if bob.Verify("phala/test: a", msg, sig) {
		t.Fatal("signature verifies under another key")
	}
	// Substrate's own context interoperates with go-subkey's signer.
	ref, _ := subkey.DeriveKeyPair(subsr.Scheme{}, "//Alice")
	refSig, _ := ref.Sign(msg)
	var s Signature
	copy(s[:], refSig)
	if !kp.Public().Verify(SubstrateContext, msg, s) {
		t.Fatal("go-subkey signature does not verify under the substrate context")
	}
}

func TestParsePublicKey(t *testing.T) {
	alice := MustKeyPairFromURI("//Alice").Public()
	polkadot := subkey.SS58Encode(alice[:], 0)
	for _, s := range []string{alice.Address(), alice.Hex(), polkadot} {
		pk, err := ParsePublicKey(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if pk != alice {
			t.Errorf("%s: got %s", s, pk)
		}
	}
	for _, s := range []string{"", "0x12", "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ", "0xzz"} {
		if _, err := ParsePublicKey(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestZeroKeyInvalid(t *testing.T) {
	if (PublicKey{}).Valid() {
		t.Fatal("the identity point is accepted as a public key")
	}
	if _, err := ParsePublicKey("0x" + strings.Repeat("00", 32)); err == nil {
		t.Fatal("zero key parsed")
	}
}

// HardDeriveSeed("x") is the same step as the URI junction "//x".
func TestHardDeriveSeedMatchesURIJunction(t *testing.T) {
	kp := MustKeyPairFromURI("//Alice")
	for _, name := range []string{"identity", "a-junction-name-longer-than-thirty-two-bytes"} {
		seed, err := kp.HardDeriveSeed([]byte(name))
		if err != nil {
			t.Fatal(err)
		}
		child, _ := KeyPairFromSeed(seed[:])
		viaURI := MustKeyPairFromURI("//Alice//" + name)
		if child.Public() != viaURI.Public() {
			t.Errorf("%s: HardDeriveSeed differs from //%s", name, name)
		}
	}
}
