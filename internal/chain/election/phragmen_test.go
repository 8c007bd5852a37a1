package election

import (
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/phalago/phala/crypto"
)

func key(b byte) crypto.PublicKey { return crypto.PublicKey{b} }

func rat(a, b int64) *big.Rat { return big.NewRat(a, b) }

func eligible(keys ...byte) []Candidate {
	var cs []Candidate
	for _, k := range keys {
		cs = append(cs, Candidate{Key: key(k), Eligible: true})
	}
	return cs
}

func targets(keys ...byte) []crypto.PublicKey {
	var ts []crypto.PublicKey
	for _, k := range keys {
		ts = append(ts, key(k))
	}
	return ts
}

type want struct {
	elected     []byte
	scores      []*big.Rat
	assignments [][]Stake // per voter
}

func st(k byte, amount uint64) Stake { return Stake{Target: key(k), Amount: amount} }

func check(t *testing.T, got *Result, w want) {
	t.Helper()
	var elected []byte
	for _, k := range got.Elected {
		elected = append(elected, k[0])
	}
	if !slices.Equal(elected, w.elected) {
		t.Fatalf("elected %v, want %v", elected, w.elected)
	}
	if len(got.Scores) != len(w.scores) {
		t.Fatalf("%d scores, want %d", len(got.Scores), len(w.scores))
	}
	for i := range w.scores {
		if got.Scores[i].Cmp(w.scores[i]) != 0 {
			t.Errorf("round %d score %s, want %s", i, got.Scores[i].RatString(), w.scores[i].RatString())
		}
	}
	if len(got.Assignments) != len(w.assignments) {
		t.Fatalf("%d assignments, want %d", len(got.Assignments), len(w.assignments))
	}
	for i := range w.assignments {
		if len(got.Assignments[i]) == 0 && len(w.assignments[i]) == 0 {
			continue
		}
		if !reflect.DeepEqual(got.Assignments[i], w.assignments[i]) {
			t.Errorf("voter %d: %v, want %v", i, got.Assignments[i], w.assignments[i])
		}
	}
}

// TestSeqPhragmenKnownResults: small tables whose results are computed by
// hand in the comments (score_c = (1 + Σ b_v·l_v) / A_c; the lowest wins,
// the lowest key on a tie; the winner's voters take its score as load;
// each voter's budget splits by edge load, floors, remainder to its
// largest exposure).
func TestSeqPhragmenKnownResults(t *testing.T) {
	// Polkadot's phragmen_poc: candidates 1, 2, 3; voters 10 → {1,2},
	// 20 → {1,3}, 30 → {2,3}. Approvals A1 = 30, A2 = 40, A3 = 50.
	poc := []Voter{{10, targets(1, 2)}, {20, targets(1, 3)}, {30, targets(2, 3)}}
	for _, tc := range []struct {
		name       string
		n          int
		candidates []Candidate
		voters     []Voter
		want       want
	}{
		{
			// Round 0: 1/30, 1/40, 1/50 → 3 (1/50); loads v20 = v30 = 1/50.
			// Round 1: c1 = (1 + 20/50)/30 = 7/150, c2 = (1 + 30/50)/40 =
			// 1/25 → 2 (1/25); loads v10 = v30 = 1/25.
			// Exposures: v10 → 2: 10. v20 → 3: 20. v30: edge 3 load 1/50,
			// edge 2 load 1/25 - 1/50 = 1/50 of 1/25: 15 and 15.
			name: "polkadot poc, 2 seats", n: 2, candidates: eligible(1, 2, 3), voters: poc,
			want: want{elected: []byte{3, 2}, scores: []*big.Rat{rat(1, 50), rat(1, 25)},
				assignments: [][]Stake{{st(2, 10)}, {st(3, 20)}, {st(3, 15), st(2, 15)}}},
		},
		{
			// Fewer candidates than seats: rounds 0 and 1 as above; round 2:
			// c1 = (1 + 10·1/25 + 20·1/50)/30 = (1 + 2/5 + 2/5)/30 = 3/50.
			// Exposures: v10: edge 2 load 1/25, edge 1 load 3/50 - 1/25 =
			// 1/50 → 10·2/3 = 6.67 → 6, 10·1/3 → 3, remainder 1 to the
			// largest (2): 7 and 3. v20: edge 3 load 1/50, edge 1 load 2/50
			// → 6 and 13, remainder to 1: 6 and 14. v30 unchanged.
			name: "fewer candidates than seats", n: 5, candidates: eligible(1, 2, 3), voters: poc,
			want: want{elected: []byte{3, 2, 1}, scores: []*big.Rat{rat(1, 50), rat(1, 25), rat(3, 50)},
				assignments: [][]Stake{{st(2, 7), st(1, 3)}, {st(3, 6), st(1, 14)}, {st(3, 15), st(2, 15)}}},
		},
		{
			// Candidates 1..4 eligible, 5 not. Voters: v0 100 → {1}; v1 100
			// → {2}; v2 50 → {1,3}; v3 50 → {2,3}; v4 7 → {3,4,5}; v5 0 →
			// {4}; v6 30 → {5} (nobody eligible). A1 = A2 = 150, A3 = 107,
			// A4 = 7 (v5's zero budget adds nothing, 5 is ignored).
			// Round 0: 1/150, 1/150, 1/107, 1/7: tie of 1 and 2, the lower
			// key 1 wins (1/150); loads v0 = v2 = 1/150.
			// Round 1: c2 = 1/150 (its voters are unloaded), c3 = (1 +
			// 50/150)/107 = 4/321, c4 = 1/7 → 2 (1/150); loads v1 = v3 =
			// 1/150.
			// Round 2: c3 = (1 + 50/150 + 50/150)/107 = 5/321, c4 = 1/7 →
			// 3 (5/321).
			// Exposures: v2: edge 1 load 1/150 of 5/321 = 321/750 → 50·321/
			// 750 = 21.4 → 21; edge 3: 28.6 → 28; remainder 1 to the
			// largest (3): 21 and 29. v3 likewise with 2. v4 → 3: 7.
			name: "tie by key, ineligible and zero-budget voters", n: 3, candidates: append(eligible(3, 1, 4, 2), Candidate{Key: key(5)}),
			voters: []Voter{{100, targets(1)}, {100, targets(2)}, {50, targets(1, 3)}, {50, targets(3, 2)}, {7, targets(3, 4, 5)}, {0, targets(4)}, {30, targets(5)}},
			want: want{elected: []byte{1, 2, 3}, scores: []*big.Rat{rat(1, 150), rat(1, 150), rat(5, 321)},
				assignments: [][]Stake{{st(1, 100)}, {st(2, 100)}, {st(1, 21), st(3, 29)}, {st(2, 21), st(3, 29)}, {st(3, 7)}, nil, nil}},
		},
		{
			// A repeated target counts once: A1 = 5 (not 10), A2 = 4 → 1/5 <
			// 1/4: 1 wins.
			name: "repeated target counts once", n: 1, candidates: eligible(1, 2),
			voters: []Voter{{5, targets(1, 1)}, {4, targets(2)}},
			want:   want{elected: []byte{1}, scores: []*big.Rat{rat(1, 5)}, assignments: [][]Stake{{st(1, 5)}, nil}},
		},
		{name: "no voters", n: 3, candidates: eligible(1, 2), want: want{}},
		{name: "no candidates", n: 3, voters: poc, want: want{assignments: [][]Stake{nil, nil, nil}}},
		{name: "zero seats", n: 0, candidates: eligible(1, 2, 3), voters: poc, want: want{assignments: [][]Stake{nil, nil, nil}}},
		{name: "zero budgets", n: 2, candidates: eligible(1, 2), voters: []Voter{{0, targets(1)}, {0, targets(1, 2)}},
			want: want{assignments: [][]Stake{nil, nil}}},
		{name: "voters approving nobody eligible", n: 2, candidates: append(eligible(1), Candidate{Key: key(2)}),
			voters: []Voter{{9, targets(2)}, {9, targets(7)}}, want: want{assignments: [][]Stake{nil, nil}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SeqPhragmen(tc.n, tc.candidates, tc.voters)
			if err != nil {
				t.Fatal(err)
			}
			check(t, got, tc.want)
		})
	}
}

func TestSeqPhragmenErrors(t *testing.T) {
	if _, err := SeqPhragmen(1, append(eligible(1, 2), Candidate{Key: key(1)}), nil); !errors.Is(err, ErrDuplicateCandidate) {
		t.Fatalf("duplicate candidate: %v", err)
	}
	if _, err := SeqPhragmen(1, eligible(1), []Voter{{1 << 63, targets(1)}, {1 << 63, targets(1)}}); !errors.Is(err, ErrOverflow) {
		t.Fatalf("overflow: %v", err)
	}
}

// naive is sequential Phragmén as Polkadot writes it (loads per voter and
// per edge as rationals), the reference SeqPhragmen must agree with.
func naive(n int, candidates []Candidate, voters []Voter) ([]crypto.PublicKey, []*big.Rat, [][]*big.Rat) {
	var keys []crypto.PublicKey
	for _, c := range candidates {
		if c.Eligible {
			keys = append(keys, c.Key)
		}
	}
	slices.SortFunc(keys, func(a, b crypto.PublicKey) int { return slices.Compare(a[:], b[:]) })
	approval := map[crypto.PublicKey]*big.Rat{}
	for _, k := range keys {
		approval[k] = new(big.Rat)
	}
	type edge struct {
		to   crypto.PublicKey
		load *big.Rat
	}
	loads := make([]*big.Rat, len(voters))
	edges := make([][]edge, len(voters))
	for i, v := range voters {
		loads[i] = new(big.Rat)
		seen := map[crypto.PublicKey]bool{}
		for _, t := range v.Targets {
			if a, ok := approval[t]; ok && !seen[t] && v.Budget > 0 {
				seen[t] = true
				a.Add(a, new(big.Rat).SetInt64(int64(v.Budget)))
				edges[i] = append(edges[i], edge{t, new(big.Rat)})
			}
		}
	}
	elected := map[crypto.PublicKey]bool{}
	var winners []crypto.PublicKey
	var scores []*big.Rat
	for round := 0; round < n; round++ {
		score := map[crypto.PublicKey]*big.Rat{}
		for _, k := range keys {
			if !elected[k] && approval[k].Sign() > 0 {
				score[k] = new(big.Rat).Inv(approval[k])
			}
		}
		for i, v := range voters {
			for _, e := range edges[i] {
				if s, ok := score[e.to]; ok {
					b := new(big.Rat).SetInt64(int64(v.Budget))
					s.Add(s, b.Mul(b, loads[i]).Quo(b, approval[e.to]))
				}
			}
		}
		var best *crypto.PublicKey
		for _, k := range keys {
			if s, ok := score[k]; ok && (best == nil || s.Cmp(score[*best]) < 0) {
				best = &k
			}
		}
		if best == nil {
			break
		}
		w := *best
		elected[w] = true
		winners = append(winners, w)
		scores = append(scores, score[w])
		for i := range voters {
			for j := range edges[i] {
				if edges[i][j].to == w {
					edges[i][j].load = new(big.Rat).Sub(score[w], loads[i])
					loads[i] = new(big.Rat).Set(score[w])
				}
			}
		}
	}
	// Exact (unrounded) exposure of each voter to each winner.
	exact := make([][]*big.Rat, len(voters))
	for i, v := range voters {
		for _, w := range winners {
			x := new(big.Rat)
			for _, e := range edges[i] {
				if e.to == w && loads[i].Sign() > 0 {
					x.Mul(new(big.Rat).SetInt64(int64(v.Budget)), e.load).Quo(x, loads[i])
				}
			}
			exact[i] = append(exact[i], x)
		}
	}
	return winners, scores, exact
}

// SeqPhragmen agrees with the textbook algorithm on random tables: same
// winners, same scores, and each exposure within one unit of the exact
// share, summing to the voter's budget; the input order of candidates and
// voters does not change the outcome.
func TestSeqPhragmenMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 300; iter++ {
		nc := 1 + rng.IntN(12)
		var cands []Candidate
		for i := 0; i < nc; i++ {
			cands = append(cands, Candidate{Key: key(byte(i + 1)), Eligible: rng.IntN(5) > 0})
		}
		var voters []Voter
		for i, nv := 0, rng.IntN(30); i < nv; i++ {
			v := Voter{Budget: uint64(rng.IntN(4)) * uint64(rng.IntN(1000))}
			for j, nt := 0, rng.IntN(5); j < nt; j++ {
				v.Targets = append(v.Targets, key(byte(1+rng.IntN(nc+1))))
			}
			voters = append(voters, v)
		}
		n := rng.IntN(nc + 2)
		got, err := SeqPhragmen(n, cands, voters)
		if err != nil {
			t.Fatal(err)
		}
		winners, scores, exact := naive(n, cands, voters)
		if !slices.Equal(got.Elected, winners) {
			t.Fatalf("iter %d: elected %v, reference %v", iter, got.Elected, winners)
		}
		for i := range scores {
			if got.Scores[i].Cmp(scores[i]) != 0 {
				t.Fatalf("iter %d round %d: score %s, reference %s", iter, i, got.Scores[i].RatString(), scores[i].RatString())
			}
		}
		for vi, v := range voters {
			var sum uint64
			for _, s := range got.Assignments[vi] {
				sum += s.Amount
				wi := slices.Index(winners, s.Target)
				diff := new(big.Rat).Sub(new(big.Rat).SetInt64(int64(s.Amount)), exact[vi][wi])
				if diff.Abs(diff).Cmp(big.NewRat(int64(len(got.Assignments[vi])), 1)) >= 0 {
					t.Fatalf("iter %d voter %d: %d to %x, exact %s", iter, vi, s.Amount, s.Target[0], exact[vi][wi].RatString())
				}
			}
			if len(got.Assignments[vi]) > 0 && sum != v.Budget {
				t.Fatalf("iter %d voter %d: exposures sum to %d of budget %d", iter, vi, sum, v.Budget)
			}
		}
		// Order of the input changes nothing but the voters' indices.
		rc := slices.Clone(cands)
		rng.Shuffle(len(rc), func(i, j int) { rc[i], rc[j] = rc[j], rc[i] })
		again, _ := SeqPhragmen(n, rc, voters)
		if !reflect.DeepEqual(again, got) {
			t.Fatalf("iter %d: candidate order changed the result", iter)
		}
	}
}

// benchInput is 100 candidates (each with a self-vote) and 10,000
// nominators approving 1 to 16 of them, budgets up to 1,000 PHA (all stake together under 2^64 units, as issuance is).
func benchInput() ([]Candidate, []Voter) {
	rng := rand.New(rand.NewPCG(7, 7))
	var cands []Candidate
	var voters []Voter
	for i := 0; i < 100; i++ {
		var k crypto.PublicKey
		k[0], k[1] = byte(i), byte(i*7)
		cands = append(cands, Candidate{Key: k, Eligible: true})
		voters = append(voters, Voter{Budget: (10_000 + rng.Uint64N(100_000)) * 1_000_000_000_000, Targets: []crypto.PublicKey{k}})
	}
	for i := 0; i < 10_000; i++ {
		v := Voter{Budget: (1 + rng.Uint64N(1_000)) * 1_000_000_000_000}
		for j, nt := 0, 1+rng.IntN(16); j < nt; j++ {
			v.Targets = append(v.Targets, cands[rng.IntN(len(cands))].Key)
		}
		voters = append(voters, v)
	}
	return cands, voters
}

func BenchmarkSeqPhragmen(b *testing.B) {
	cands, voters := benchInput()
	for _, n := range []int{10, 30, 100} {
		b.Run(fmt.Sprintf("seats=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r, err := SeqPhragmen(n, cands, voters)
				if err != nil || len(r.Elected) != n {
					b.Fatal(err, len(r.Elected))
				}
			}
		})
	}
}

// mulDiv's estimate-and-correct floor equals big.Int division on long
// operands (the scores of many rounds over their common denominator).
func TestMulDivExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var md mulDiv
	for i := 0; i < 2000; i++ {
		den := new(big.Int)
		for j, words := 0, 1+rng.IntN(40); j < words; j++ {
			den.Lsh(den, 64).Or(den, new(big.Int).SetUint64(rng.Uint64()))
		}
		if den.Sign() == 0 {
			continue
		}
		// num in [0, den]: den scaled by a random fraction.
		num := new(big.Int).Mul(den, new(big.Int).SetUint64(rng.Uint64()))
		num.Rsh(num, 64)
		if i%7 == 0 {
			num.Set(den)
		}
		b := rng.Uint64()
		want := new(big.Int).Mul(num, new(big.Int).SetUint64(b))
		want.Quo(want, den)
		if got := md.floor(b, num, den); got != want.Uint64() || !want.IsUint64() {
			t.Fatalf("⌊%d·%s/%s⌋ = %d, want %s", b, num, den, got, want)
		}
	}
}

// TestBalanceKnownResults: balancing by hand. Each voter backing several
// elected candidates takes its weights off them, sorts them by backing,
// and lifts the least backed to a common level with its budget (an
// uneven remainder goes one unit each to the least backed first).
func TestBalanceKnownResults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		voters []Voter
		before [][]Stake
		after  [][]Stake
	}{
		{
			// Polkadot's poc (see TestSeqPhragmenKnownResults): backing 3 =
			// 20 + 15 = 35, 2 = 10 + 15 = 25. v30 off: 3 = 20, 2 = 10; it
			// lifts 2 to 20 (10 units) and splits the remaining 20 evenly:
			// 2 gets 20, 3 gets 10; both backed 30, nothing more moves.
			name:   "polkadot poc",
			voters: []Voter{{10, targets(1, 2)}, {20, targets(1, 3)}, {30, targets(2, 3)}},
			before: [][]Stake{{st(2, 10)}, {st(3, 20)}, {st(3, 15), st(2, 15)}},
			after:  [][]Stake{{st(2, 10)}, {st(3, 20)}, {st(3, 10), st(2, 20)}},
		},
		{
			// A 5 → {1}, B 4 → {2}, C 4 → {1,2}. Phragmén: A1 = 9, A2 = 8;
			// round 0 elects 1 (1/9), round 1 2 ((1 + 4/9)/8 = 13/72); C's
			// loads 8/72 and 5/72: 2.46 → 2 and 1.54 → 1, remainder to the
			// larger: 3 and 1. Backing 1 = 8, 2 = 5. Balancing C: off, 1 =
			// 5, 2 = 4; lift 2 to 5 (1 unit), excess 3 over 2 edges: 1 each
			// and the remainder unit to the least backed (2): 2 gets 3, 1
			// gets 1 (backing 7 and 6, the unit of dust cannot be split).
			name:   "uneven remainder",
			voters: []Voter{{5, targets(1)}, {4, targets(2)}, {4, targets(1, 2)}},
			before: [][]Stake{{st(1, 5)}, {st(2, 4)}, {st(1, 3), st(2, 1)}},
			after:  [][]Stake{{st(1, 5)}, {st(2, 4)}, {st(1, 1), st(2, 3)}},
		},
		{
			// A 10 → {1}, B 1 → {2}, C 2 → {1,2}: Phragmén gives C 0 (left
			// out) and 2 to 2; 1 is backed 10, 2 is 3: C already backs only
			// the least backed, nothing moves.
			name:   "budget short of the level",
			voters: []Voter{{10, targets(1)}, {1, targets(2)}, {2, targets(1, 2)}},
			before: [][]Stake{{st(1, 10)}, {st(2, 1)}, {st(2, 2)}},
			after:  [][]Stake{{st(1, 10)}, {st(2, 1)}, {st(2, 2)}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := SeqPhragmen(2, eligible(1, 2, 3), tc.voters)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Assignments, tc.before) {
				t.Fatalf("before balancing %v, want %v", res.Assignments, tc.before)
			}
			elected := slices.Clone(res.Elected)
			Balance(res, tc.voters, 10, 0)
			if !reflect.DeepEqual(res.Assignments, tc.after) || !slices.Equal(res.Elected, elected) {
				t.Fatalf("after balancing %v, want %v", res.Assignments, tc.after)
			}
		})
	}
}

// Balancing keeps every voter's exposures summing to its budget, on
// elected candidates it approves, and never widens the gap between the
// most and the least backed elected candidate.
func TestBalanceInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for iter := 0; iter < 300; iter++ {
		nc := 2 + rng.IntN(10)
		var voters []Voter
		for i, nv := 0, 1+rng.IntN(30); i < nv; i++ {
			v := Voter{Budget: uint64(rng.IntN(1000))}
			for j, nt := 0, rng.IntN(6); j < nt; j++ {
				v.Targets = append(v.Targets, key(byte(1+rng.IntN(nc))))
			}
			voters = append(voters, v)
		}
		var cands []Candidate
		for i := 0; i < nc; i++ {
			cands = append(cands, Candidate{Key: key(byte(i + 1)), Eligible: true})
		}
		res, err := SeqPhragmen(1+rng.IntN(nc), cands, voters)
		if err != nil {
			t.Fatal(err)
		}
		spread := func() uint64 {
			backed := map[crypto.PublicKey]uint64{}
			for _, as := range res.Assignments {
				for _, a := range as {
					backed[a.Target] += a.Amount
				}
			}
			lo, hi := ^uint64(0), uint64(0)
			for _, k := range res.Elected {
				lo, hi = min(lo, backed[k]), max(hi, backed[k])
			}
			return hi - lo
		}
		before := spread()
		Balance(res, voters, 10, 0)
		if after := spread(); after > before {
			t.Fatalf("iter %d: spread %d → %d", iter, before, after)
		}
		for vi, v := range voters {
			var sum uint64
			for _, a := range res.Assignments[vi] {
				sum += a.Amount
				if a.Amount == 0 || !slices.Contains(v.Targets, a.Target) || !slices.Contains(res.Elected, a.Target) {
					t.Fatalf("iter %d voter %d: assignment %v", iter, vi, a)
				}
			}
			if len(res.Assignments[vi]) > 0 && sum != v.Budget {
				t.Fatalf("iter %d voter %d: %d of %d", iter, vi, sum, v.Budget)
			}
		}
	}
}

func BenchmarkBalance(b *testing.B) {
	cands, voters := benchInput()
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("seats=%d", n), func(b *testing.B) {
			r, err := SeqPhragmen(n, cands, voters)
			if err != nil {
				b.Fatal(err)
			}
			orig := r.Assignments
			for i := 0; i < b.N; i++ {
				r.Assignments = make([][]Stake, len(orig))
				for j := range orig {
					r.Assignments[j] = slices.Clone(orig[j])
				}
				Balance(r, voters, 10, 0)
			}
		})
	}
}
