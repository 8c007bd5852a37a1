package channel

import (
	"bytes"
	"errors"
	"testing"

	"github.com/phalago/phala/crypto"
)

func pair(t testing.TB, purpose string) (*Channel, *Channel, *crypto.KeyPair, *crypto.KeyPair) {
	a := crypto.MustKeyPairFromURI("//Alice")
	b := crypto.MustKeyPairFromURI("//Bob")
	ab, err := New(a, b.Public(), purpose)
	if err != nil {
		t.Fatal(err)
	}
	ba, err := New(b, a.Public(), purpose)
	if err != nil {
		t.Fatal(err)
	}
	return ab, ba, a, b
}

func TestSharedSecretAgrees(t *testing.T) {
	a := crypto.MustKeyPairFromURI("//Alice")
	b := crypto.MustKeyPairFromURI("//Bob")
	s1, _ := a.SharedSecret(b.Public())
	s2, _ := b.SharedSecret(a.Public())
	if s1 != s2 || s1 == ([32]byte{}) {
		t.Fatal("ECDH disagrees")
	}
	c := crypto.MustKeyPairFromURI("//Charlie")
	if s3, _ := a.SharedSecret(c.Public()); s3 == s1 {
		t.Fatal("different peers, same secret")
	}
	if _, err := a.SharedSecret(crypto.PublicKey{0xff, 0xff}); !errors.Is(err, crypto.ErrBadPublicKey) {
		t.Fatalf("invalid peer key: %v", err)
	}
}

func TestSealOpen(t *testing.T) {
	ab, ba, a, _ := pair(t, "command")
	msg := []byte("transfer 5 to Bob")
	sealed := ab.Seal(msg, []byte("height 7"))
	got, err := ba.Open(sealed, []byte("height 7"))
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("open: %q %v", got, err)
	}
	if bytes.Contains(sealed, msg) {
		t.Fatal("plaintext visible")
	}
	if s2 := ab.Seal(msg, nil); bytes.Equal(s2[:NonceSize], sealed[:NonceSize]) {
		t.Fatal("nonce reused")
	}

	charlie := crypto.MustKeyPairFromURI("//Charlie")
	eavesdropper, _ := New(charlie, a.Public(), "command")
	_, ba2, _, _ := pair(t, "query")
	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	for _, tc := range []struct {
		name string
		open func() ([]byte, error)
		want error
	}{
		{"tampered", func() ([]byte, error) { return ba.Open(tampered, []byte("height 7")) }, ErrOpen},
		{"wrong additional data", func() ([]byte, error) { return ba.Open(sealed, []byte("height 8")) }, ErrOpen},
		{"wrong recipient", func() ([]byte, error) { return eavesdropper.Open(sealed, []byte("height 7")) }, ErrOpen},
		{"wrong purpose", func() ([]byte, error) { return ba2.Open(sealed, []byte("height 7")) }, ErrOpen},
		{"reflected to its sender", func() ([]byte, error) { return ab.Open(sealed, []byte("height 7")) }, ErrOpen},
		{"short", func() ([]byte, error) { return ba.Open(sealed[:10], nil) }, ErrShort},
	} {
		if _, err := tc.open(); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func FuzzOpen(f *testing.F) {
	ab, ba, _, _ := pair(f, "fuzz")
	f.Add(ab.Seal([]byte("hello"), nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := ba.Open(b, nil)
		if err == nil && len(pt) != len(b)-Overhead {
			t.Fatal("length mismatch")
		}
	})
}
