package threshold

import (
	"bytes"
	"errors"
	"testing"

	"go.dedis.ch/kyber/v3"
	dkg "go.dedis.ch/kyber/v3/share/dkg/pedersen"
	vss "go.dedis.ch/kyber/v3/share/vss/pedersen"
)

// The DKG runs with every deal and response through its wire form, as it
// does through the chain's queue: every member certifies and all agree
// on the master public key.
func TestDKGOverTheWire(t *testing.T) {
	const n, th = 4, 3
	sec := make([]kyber.Scalar, n)
	pub := make([]kyber.Point, n)
	for i := range sec {
		sec[i] = Suite.Scalar().Pick(Suite.RandomStream())
		pub[i] = Suite.Point().Mul(sec[i], nil)
	}
	gens := make([]*dkg.DistKeyGenerator, n)
	for i := range gens {
		g, err := dkg.NewDistKeyGenerator(Suite, sec[i], pub, th)
		if err != nil {
			t.Fatal(err)
		}
		gens[i] = g
	}
	var wireResps [][]byte
	for _, g := range gens {
		deals, err := g.Deals()
		if err != nil {
			t.Fatal(err)
		}
		for to, d := range deals {
			got, err := DecodeDeal(EncodeDeal(d))
			if err != nil {
				t.Fatal(err)
			}
			r, err := gens[to].ProcessDeal(got)
			if err != nil {
				t.Fatal(err)
			}
			wireResps = append(wireResps, EncodeResponse(r))
		}
	}
	for _, b := range wireResps {
		r, err := DecodeResponse(b)
		if err != nil {
			t.Fatal(err)
		}
		for i, g := range gens {
			if uint32(i) == r.Response.Index {
				continue
			}
			if _, err := g.ProcessResponse(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	var master kyber.Point
	for i, g := range gens {
		s, err := g.DistKeyShare()
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		if master == nil {
			master = s.Public()
		} else if !master.Equal(s.Public()) {
			t.Fatal("members disagree on the master public key")
		}
	}
}

// sampleJustification is a justification of a real (plaintext) deal.
func sampleJustification(tb testing.TB) *dkg.Justification {
	sec := Suite.Scalar().Pick(Suite.RandomStream())
	var vs []kyber.Point
	for range 3 {
		vs = append(vs, Suite.Point().Pick(Suite.RandomStream()))
	}
	dealer, err := vss.NewDealer(Suite, sec, Suite.Scalar().Pick(Suite.RandomStream()), vs, 2)
	if err != nil {
		tb.Fatal(err)
	}
	d, err := dealer.PlaintextDeal(1)
	if err != nil {
		tb.Fatal(err)
	}
	return &dkg.Justification{Index: 2, Justification: &vss.Justification{SessionID: d.SessionID, Index: 1, Deal: d, Signature: bytes.Repeat([]byte{5}, 64)}}
}

func TestJustificationRoundTrip(t *testing.T) {
	b, err := EncodeJustification(sampleJustification(t))
	if err != nil {
		t.Fatal(err)
	}
	j, err := DecodeJustification(b)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := EncodeJustification(j)
	if !bytes.Equal(again, b) {
		t.Fatal("justification does not round-trip")
	}
	if _, err := DecodeJustification(append(b, 0)); !errors.Is(err, ErrBadDKGMessage) {
		t.Fatalf("trailing byte: %v", err)
	}
}

// FuzzDecodeDKGMessages: the decoders of DKG messages from the queue
// never panic, and what they accept re-encodes to the same bytes.
func FuzzDecodeDKGMessages(f *testing.F) {
	jb, err := EncodeJustification(sampleJustification(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(jb)
	f.Add(EncodeResponse(&dkg.Response{Index: 1, Response: &vss.Response{SessionID: []byte{1, 2}, Index: 3, Status: true, Signature: []byte{4}}}))
	f.Add(EncodeDeal(&dkg.Deal{Index: 1, Deal: &vss.EncryptedDeal{DHKey: mustPoint(f), Signature: []byte{1}, Nonce: []byte{2}, Cipher: []byte{3}}, Signature: []byte{4}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := DecodeDeal(b); err == nil && !bytes.Equal(EncodeDeal(d), b) {
			t.Fatalf("deal mismatch %x", b)
		}
		if r, err := DecodeResponse(b); err == nil && !bytes.Equal(EncodeResponse(r), b) {
			t.Fatalf("response mismatch %x", b)
		}
		if j, err := DecodeJustification(b); err == nil {
			if again, err := EncodeJustification(j); err != nil || !bytes.Equal(again, b) {
				t.Fatalf("justification mismatch %x", b)
			}
		}
	})
}

func mustPoint(tb testing.TB) []byte {
	b, err := Suite.Point().Pick(Suite.RandomStream()).MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
