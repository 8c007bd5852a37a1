package api

import (
	"bytes"
	"testing"

	"github.com/phalago/phala/crypto"
)

func sampleSession() (*QuerySessionOpen, *QuerySessionAccept, *SessionQuery, *SessionAnswer) {
	alice := crypto.MustKeyPairFromURI("//Alice")
	bob := crypto.MustKeyPairFromURI("//Bob")
	o := &QuerySessionOpen{Contract: alice.Public(), Worker: bob.Public(), From: bob.Public(), Ephemeral: alice.Public(), Nonce: [16]byte{3}, NotAfter: 1_700_000_060}
	o.Signature = bob.Sign(ContextQuerySession, o.SignBytes())
	a := &QuerySessionAccept{Open: o.Hash(), ID: [SessionIDSize]byte{9}, Ephemeral: bob.Public()}
	a.Signature = alice.Sign(ContextQuerySessionAccept, a.SignBytes())
	q := &SessionQuery{ID: a.ID, Seq: 300, Ciphertext: bytes.Repeat([]byte{5}, 40)}
	ans := &SessionAnswer{Seq: 300, Height: 1234, Ciphertext: bytes.Repeat([]byte{6}, 50)}
	return o, a, q, ans
}

// TestQuerySessionCodec: each message round-trips; trailing or missing
// bytes are refused.
func TestQuerySessionCodec(t *testing.T) {
	o, a, q, ans := sampleSession()
	for _, tc := range []struct {
		name   string
		b      []byte
		decode func([]byte) ([]byte, error)
	}{
		{"open", o.Encode(), func(b []byte) ([]byte, error) { x, err := DecodeQuerySessionOpen(b); return enc(x, err) }},
		{"accept", a.Encode(), func(b []byte) ([]byte, error) { x, err := DecodeQuerySessionAccept(b); return enc(x, err) }},
		{"query", q.Encode(), func(b []byte) ([]byte, error) { x, err := DecodeSessionQuery(b); return enc(x, err) }},
		{"answer", ans.Encode(), func(b []byte) ([]byte, error) { x, err := DecodeSessionAnswer(b); return enc(x, err) }},
	} {
		got, err := tc.decode(tc.b)
		if err != nil || !bytes.Equal(got, tc.b) {
			t.Errorf("%s: round trip: %v", tc.name, err)
		}
		if _, err := tc.decode(append(append([]byte(nil), tc.b...), 0)); err == nil {
			t.Errorf("%s: trailing byte accepted", tc.name)
		}
		if _, err := tc.decode(tc.b[:len(tc.b)-1]); err == nil {
			t.Errorf("%s: truncated accepted", tc.name)
		}
	}
}

// FuzzDecodeQuerySession: the decoders of the four session messages never
// panic, and what they accept re-encodes to the same bytes.
func FuzzDecodeQuerySession(f *testing.F) {
	o, a, q, ans := sampleSession()
	for _, b := range [][]byte{o.Encode(), a.Encode(), q.Encode(), ans.Encode(), {}} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(name string, got []byte, err error) {
			if err == nil && !bytes.Equal(got, b) {
				t.Fatalf("%s: decode/encode mismatch:\n in %x\nout %x", name, b, got)
			}
		}
		x1, err := DecodeQuerySessionOpen(b)
		if err == nil {
			check("open", x1.Encode(), nil)
		}
		x2, err := DecodeQuerySessionAccept(b)
		if err == nil {
			check("accept", x2.Encode(), nil)
		}
		x3, err := DecodeSessionQuery(b)
		if err == nil {
			check("query", x3.Encode(), nil)
		}
		x4, err := DecodeSessionAnswer(b)
		if err == nil {
			check("answer", x4.Encode(), nil)
		}
	})
}
