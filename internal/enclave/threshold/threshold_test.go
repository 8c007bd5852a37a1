package threshold

import (
	"errors"
	"testing"

	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/proof/dleq"
	"go.dedis.ch/kyber/v3/share"
	dkg "go.dedis.ch/kyber/v3/share/dkg/pedersen"
)

// runDKG runs kyber's Pedersen DKG among n in-process members with
// threshold t (every deal, response and share exchanged directly) and
// returns each member's share and the public polynomial's commitments.
func runDKG(tb testing.TB, n, t int) ([]*dkg.DistKeyShare, []kyber.Point) {
	tb.Helper()
	sec := make([]kyber.Scalar, n)
	pub := make([]kyber.Point, n)
	for i := range sec {
		sec[i] = Suite.Scalar().Pick(Suite.RandomStream())
		pub[i] = Suite.Point().Mul(sec[i], nil)
	}
	gens := make([]*dkg.DistKeyGenerator, n)
	for i := range gens {
		g, err := dkg.NewDistKeyGenerator(Suite, sec[i], pub, t)
		if err != nil {
			tb.Fatal(err)
		}
		gens[i] = g
	}
	var resps []*dkg.Response
	for _, g := range gens {
		deals, err := g.Deals()
		if err != nil {
			tb.Fatal(err)
		}
		for to, d := range deals {
			r, err := gens[to].ProcessDeal(d)
			if err != nil {
				tb.Fatal(err)
			}
			resps = append(resps, r)
		}
	}
	for _, r := range resps {
		for i, g := range gens {
			if uint32(i) == r.Response.Index {
				continue
			}
			if _, err := g.ProcessResponse(r); err != nil {
				tb.Fatal(err)
			}
		}
	}
	out := make([]*dkg.DistKeyShare, n)
	for i, g := range gens {
		if !g.Certified() {
			tb.Fatalf("member %d not certified", i)
		}
		s, err := g.DistKeyShare()
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = s
	}
	return out, out[0].Commitments()
}

// P1 at the level of the primitives: any t members' verified partials
// give the same contract seed, the one the (never assembled) master
// secret gives; t-1 give nothing; a partial that is not its member's is
// refused, and so is a proof whose challenge was chosen rather than
// derived.
func TestThresholdContractKey(t *testing.T) {
	const n, th = 4, 3
	shares, commits := runDKG(t, n, th)
	upload := [32]byte{7}
	h := ContractPoint(upload, 1, 5)
	ps := make([]*Partial, n)
	for i, s := range shares {
		p, err := Evaluate(s.PriShare(), h)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(MemberCommitment(commits, s.PriShare().I), h, p); err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		ps[i] = p
	}
	// The reference: the secret rebuilt (tests only).
	pri := make([]*share.PriShare, n)
	for i, s := range shares {
		pri[i] = s.PriShare()
	}
	x, err := share.RecoverSecret(Suite, pri, th, n)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ContractSeed(Suite.Point().Mul(x, h), upload, 1)
	for _, subset := range [][]int{{0, 1, 2}, {1, 2, 3}, {0, 2, 3}, {0, 1, 2, 3}} {
		var sub []*Partial
		for _, i := range subset {
			sub = append(sub, ps[i])
		}
		xh, err := Combine(sub, th, n)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := ContractSeed(xh, upload, 1); got != want {
			t.Fatalf("members %v give another seed", subset)
		}
	}
	if _, err := Combine(ps[:th-1], th, n); !errors.Is(err, ErrTooFew) {
		t.Fatalf("t-1 partials: %v", err)
	}
	if _, err := Combine([]*Partial{ps[0], ps[0], ps[1]}, th, n); !errors.Is(err, ErrTooFew) {
		t.Fatalf("a repeated partial counted twice: %v", err)
	}
	// Another epoch, era or contract: another seed.
	for _, h2 := range []kyber.Point{ContractPoint(upload, 2, 5), ContractPoint(upload, 1, 6), ContractPoint([32]byte{8}, 1, 5)} {
		var sub []*Partial
		for _, s := range shares[:th] {
			p, _ := Evaluate(s.PriShare(), h2)
			sub = append(sub, p)
		}
		xh, _ := Combine(sub, th, n)
		if got, _ := ContractSeed(xh, upload, 1); got == want {
			t.Fatal("another contract point gave the same seed")
		}
	}
	// A partial checked against another member's commitment, a value
	// swapped, a forged proof with a chosen challenge: refused.
	if err := Verify(MemberCommitment(commits, 1), h, ps[0]); !errors.Is(err, ErrBadPartial) {
		t.Fatalf("another member's commitment: %v", err)
	}
	bad := *ps[0]
	bad.V = Suite.Point().Add(ps[0].V, Suite.Point().Base())
	if err := Verify(MemberCommitment(commits, 0), h, &bad); !errors.Is(err, ErrBadPartial) {
		t.Fatalf("altered value: %v", err)
	}
	forged := forgeProof(MemberCommitment(commits, 0), h, Suite.Point().Pick(Suite.RandomStream()))
	if err := forged.Proof.Verify(Suite, Suite.Point().Base(), h, MemberCommitment(commits, 0), forged.V); err != nil {
		t.Fatalf("the forgery does not pass kyber's own check (the test is wrong): %v", err)
	}
	if err := Verify(MemberCommitment(commits, 0), h, forged); !errors.Is(err, ErrBadPartial) {
		t.Fatalf("a proof with a chosen challenge was accepted: %v", err)
	}
}

// forgeProof makes a "proof" for any value v by choosing the challenge
// first: it passes kyber's dleq.Proof.Verify, which takes the challenge
// from the proof, and must fail Verify, which derives it.
func forgeProof(xi, h, v kyber.Point) *Partial {
	c := Suite.Scalar().Pick(Suite.RandomStream())
	r := Suite.Scalar().Pick(Suite.RandomStream())
	vg := Suite.Point().Add(Suite.Point().Mul(r, nil), Suite.Point().Mul(c, xi))
	vh := Suite.Point().Add(Suite.Point().Mul(r, h), Suite.Point().Mul(c, v))
	p := &Partial{V: v}
	p.Proof = &dleq.Proof{C: c, R: r, VG: vg, VH: vh}
	return p
}

// FuzzDecodePartial: a partial from the wire never panics the decoder,
// and what it accepts re-encodes to the same bytes.
func FuzzDecodePartial(f *testing.F) {
	shares, _ := runDKG(f, 3, 2)
	p, err := Evaluate(shares[1].PriShare(), ContractPoint([32]byte{1}, 0, 0))
	if err != nil {
		f.Fatal(err)
	}
	b, err := p.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(make([]byte, PartialSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePartial(b)
		if err != nil {
			return
		}
		again, err := p.Encode()
		if err != nil || string(again) != string(b) {
			t.Fatalf("accepted bytes do not re-encode: %x", b)
		}
	})
}

// A partial survives its encoding and still verifies.
func TestPartialRoundTrip(t *testing.T) {
	shares, commits := runDKG(t, 3, 2)
	h := ContractPoint([32]byte{2}, 3, 4)
	p, err := Evaluate(shares[2].PriShare(), h)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	q, err := DecodePartial(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(MemberCommitment(commits, q.Index), h, q); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{"short": b[:len(b)-1], "index": append([]byte{0xff, 0xff, 0xff, 0xff}, b[4:]...)} {
		if _, err := DecodePartial(bad); !errors.Is(err, ErrBadPartial) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
