package threshold

import (
	"fmt"
	"testing"

	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/share"
)

// BenchmarkDeriveContractKey is a worker's part of deriving a contract
// key from a key set of n members, threshold t (docs/benchmarks.md, "Key
// lifecycle"): for t partials, decode and verify the DLEQ proof against
// the member's commitment, then interpolate x·H and hash the seed. The
// member commitments X_i are computed once per key era (pRuntime caches
// them: Engine.commitments) and are outside the loop; computing them is
// BenchmarkMemberCommitments. (Opening the sealed partials, one AES-GCM
// each, and the blocks the partials take to reach the queue are not in
// it.)
// The members' side, Evaluate, is BenchmarkEvaluatePartial.
func BenchmarkDeriveContractKey(b *testing.B) {
	for _, n := range []int{4, 21} {
		t := 2*n/3 + 1
		b.Run(fmt.Sprintf("n=%d,t=%d", n, t), func(b *testing.B) {
			secret := Suite.Scalar().Pick(Suite.RandomStream())
			poly := share.NewPriPoly(Suite, t, secret, Suite.RandomStream())
			_, commits := poly.Commit(Suite.Point().Base()).Info()
			upload := [32]byte{1}
			h := ContractPoint(upload, 0, 1)
			xs := make([]kyber.Point, n)
			for i := range xs {
				xs[i] = MemberCommitment(commits, i)
			}
			var encoded [][]byte
			for _, s := range poly.Shares(n)[:t] {
				p, err := Evaluate(s, h)
				if err != nil {
					b.Fatal(err)
				}
				e, _ := p.Encode()
				encoded = append(encoded, e)
			}
			b.ResetTimer()
			for range b.N {
				parts := make([]*Partial, 0, t)
				for _, e := range encoded {
					p, err := DecodePartial(e)
					if err != nil {
						b.Fatal(err)
					}
					if err := Verify(xs[p.Index], h, p); err != nil {
						b.Fatal(err)
					}
					parts = append(parts, p)
				}
				xh, err := Combine(parts, t, n)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := ContractSeed(xh, upload, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMemberCommitments computes every member's commitment X_i of a
// key set of n members, threshold t (once per key era in pRuntime).
func BenchmarkMemberCommitments(b *testing.B) {
	for _, n := range []int{4, 21} {
		t := 2*n/3 + 1
		b.Run(fmt.Sprintf("n=%d,t=%d", n, t), func(b *testing.B) {
			poly := share.NewPriPoly(Suite, t, Suite.Scalar().Pick(Suite.RandomStream()), Suite.RandomStream())
			_, commits := poly.Commit(Suite.Point().Base()).Info()
			for range b.N {
				for i := range n {
					MemberCommitment(commits, i)
				}
			}
		})
	}
}

// BenchmarkEvaluatePartial is a member's partial evaluation with its DLEQ
// proof (one per worker a round provisions).
func BenchmarkEvaluatePartial(b *testing.B) {
	s := &share.PriShare{I: 0, V: Suite.Scalar().Pick(Suite.RandomStream())}
	h := ContractPoint([32]byte{1}, 0, 1)
	var p *Partial
	for range b.N {
		var err error
		if p, err = Evaluate(s, h); err != nil {
			b.Fatal(err)
		}
	}
	_ = p
}
