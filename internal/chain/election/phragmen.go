// Package election owns the chain's stake-weighted election algorithm:
// sequential Phragmén, as Polkadot elects validators (sp-npos-elections
// seq_phragmen, SeqPhragmen) and its balancing post-processing (Balance),
// in exact integer arithmetic. It is a pure function of its input: no state, no clock, no
// map iteration order, no floats; ties break by candidate key.
//
// # The algorithm
//
// Every voter v has a budget b_v (PHA base units) and approves some
// candidates; every candidate c has an approval stake A_c = Σ b_v over the
// voters approving it. Each voter carries a load l_v, initially 0. In each
// round, every candidate not yet elected with A_c > 0 has the score
//
//	score_c = (1 + Σ_{v approves c} b_v · l_v) / A_c
//
// and the candidate with the lowest score is elected (the lowest key on a
// tie); each voter approving it moves its load to that score, the part of
// its load on that edge being the difference. After n rounds (or when no
// candidate with approval is left) each voter's budget is split among the
// elected candidates it approves in proportion to the edge loads: its
// exposure to each. Loads are rationals; this implementation keeps every
// voter load as one of the scores of the previous rounds (a voter's load is
// the score of the last elected candidate it approves), all over a common
// denominator as big integers, so a round costs O(candidates × rounds) big
// integer operations and moving voters between loads O(edges) additions
// of uint64.
//
// Exposures are whole units: each edge gets ⌊b_v · load_e / l_v⌋ and the
// remainder of the divisions goes to the voter's largest exposure (the
// earliest elected on a tie), so a voter's exposures sum to its budget
// exactly when it backs anyone elected; zero exposures are left out.
// Balance is the optional post-processing that evens the backing out.
package election

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"slices"

	"github.com/phalago/phala/crypto"
)

// Errors of SeqPhragmen.
var (
	// ErrOverflow: a candidate's approval stake exceeds 2^64-1 units
	// (impossible while all stake is below total issuance, a uint64).
	ErrOverflow = errors.New("election: approval stake overflows 64 bits")
	// ErrDuplicateCandidate: a key is listed twice among the candidates.
	ErrDuplicateCandidate = errors.New("election: candidate listed twice")
)

// Candidate is a key standing for election; only Eligible candidates can
// be elected, and votes for the others are ignored.
type Candidate struct {
	Key      crypto.PublicKey
	Eligible bool
}

// Voter is a budget (units) and the candidates it approves. Targets that
// are not eligible candidates, and repeated targets, are ignored.
type Voter struct {
	Budget  uint64
	Targets []crypto.PublicKey
}

// Stake is an amount (units) a voter assigns to an elected candidate.
type Stake struct {
	Target crypto.PublicKey
	Amount uint64
}

// Result is the outcome of an election.
type Result struct {
	// Elected are the winners in election order (round 0 first).
	Elected []crypto.PublicKey
	// Scores[i] is Elected[i]'s score when it was elected (in 1/units).
	Scores []*big.Rat
	// Assignments[v] is voter v's exposure to the elected candidates it
	// approves, in election order; empty when it backs nobody elected.
	// Index v is the voter's index in the input.
	Assignments [][]Stake
}

type candidate struct {
	key      crypto.PublicKey
	approval uint64
	elected  bool
	// weight[k]: the budgets of the voters approving this candidate whose
	// load is the score of round k.
	weight  []uint64
	backers []int32
}

type voter struct {
	budget uint64
	edges  []int32 // candidate indices, ascending
	class  int     // 1 + the round whose score is the voter's load; 0: unloaded
	won    []int32 // elected candidates among edges, in election order
	rounds []int   // their rounds
}

// SeqPhragmen elects up to n candidates among the eligible ones by
// sequential Phragmén and returns the winners in order, their scores and
// every voter's exposure. Candidates whose approval stake is zero are never
// elected (nobody backs them), so fewer than n may win. Errors:
// ErrDuplicateCandidate, ErrOverflow.
func SeqPhragmen(n int, candidates []Candidate, voters []Voter) (*Result, error) {
	// Candidates in key order: the scan order decides ties.
	seen := make(map[crypto.PublicKey]bool, len(candidates))
	var cs []*candidate
	for _, c := range candidates {
		if seen[c.Key] {
			return nil, fmt.Errorf("%w: %s", ErrDuplicateCandidate, c.Key.Hex())
		}
		seen[c.Key] = true
		if c.Eligible {
			cs = append(cs, &candidate{key: c.Key})
		}
	}
	slices.SortFunc(cs, func(a, b *candidate) int { return bytes.Compare(a.key[:], b.key[:]) })
	index := make(map[crypto.PublicKey]int32, len(cs))
	for i, c := range cs {
		index[c.key] = int32(i)
	}

	vs := make([]voter, len(voters))
	for i, v := range voters {
		if v.Budget == 0 {
			continue
		}
		var edges []int32
		for _, t := range v.Targets {
			if c, ok := index[t]; ok {
				edges = append(edges, c)
			}
		}
		slices.Sort(edges)
		edges = slices.Compact(edges)
		vs[i] = voter{budget: v.Budget, edges: edges}
		for _, c := range edges {
			sum, carry := bits.Add64(cs[c].approval, v.Budget, 0)
			if carry != 0 {
				return nil, fmt.Errorf("%w: candidate %s", ErrOverflow, cs[c].key.Hex())
			}
			cs[c].approval = sum
			cs[c].backers = append(cs[c].backers, int32(i))
		}
	}

	res := &Result{Assignments: make([][]Stake, len(voters))}
	// Scores of the rounds so far are S[k]/D.
	D := big.NewInt(1)
	var S []*big.Int
	x, term, lhs, rhs := new(big.Int), new(big.Int), new(big.Int), new(big.Int)
	var bestX *big.Int
	for round := 0; round < n; round++ {
		best := -1
		for i, c := range cs {
			if c.elected || c.approval == 0 {
				continue
			}
			// score_c = X / (D · A_c) with X = D + Σ_k S_k · weight_k.
			x.Set(D)
			for k, w := range c.weight {
				if w != 0 {
					x.Add(x, term.Mul(S[k], term.SetUint64(w)))
				}
			}
			if best >= 0 {
				// X/A_c < bestX/A_best  ⇔  X·A_best < bestX·A_c.
				lhs.Mul(x, rhs.SetUint64(cs[best].approval))
				rhs.Mul(bestX, term.SetUint64(c.approval))
				if lhs.Cmp(rhs) >= 0 {
					continue
				}
			}
			best, bestX = i, new(big.Int).Set(x)
		}
		if best < 0 {
			break
		}
		w := cs[best]
		w.elected = true
		a := new(big.Int).SetUint64(w.approval)
		res.Elected = append(res.Elected, w.key)
		res.Scores = append(res.Scores, new(big.Rat).SetFrac(bestX, new(big.Int).Mul(D, a)))
		// Rescale to the new common denominator D·A_w; the new score is X_w.
		D.Mul(D, a)
		for _, s := range S {
			s.Mul(s, a)
		}
		S = append(S, bestX)
		for _, c := range cs {
			c.weight = append(c.weight, 0)
		}
		for _, vi := range w.backers {
			v := &vs[vi]
			for _, e := range v.edges {
				c := cs[e]
				if c.elected {
					continue
				}
				if v.class > 0 {
					c.weight[v.class-1] -= v.budget
				}
				c.weight[round] += v.budget
			}
			v.class = round + 1
			v.won = append(v.won, int32(best))
			v.rounds = append(v.rounds, round)
		}
	}

	// Exposures: edge loads are differences of successive scores.
	prev, load := new(big.Int), new(big.Int)
	var md mulDiv
	for i := range vs {
		v := &vs[i]
		if len(v.won) == 0 {
			continue
		}
		total := S[v.rounds[len(v.rounds)-1]]
		out := make([]Stake, len(v.won))
		var sum uint64
		largest := 0
		prev.SetInt64(0)
		for j, c := range v.won {
			s := S[v.rounds[j]]
			load.Sub(s, prev)
			prev.Set(s)
			out[j] = Stake{Target: cs[c].key, Amount: md.floor(v.budget, load, total)}
			sum += out[j].Amount
			if out[j].Amount > out[largest].Amount {
				largest = j
			}
		}
		out[largest].Amount += v.budget - sum
		// An edge whose load is zero (two rounds with equal scores) gets
		// nothing: no exposure of 0 units.
		res.Assignments[i] = slices.DeleteFunc(out, func(s Stake) bool { return s.Amount == 0 })
	}
	return res, nil
}

// mulDiv computes ⌊b·num/den⌋ for 0 ≤ num ≤ den, den > 0, exactly, without
// dividing the (thousands of bits long) num and den: it estimates the
// quotient from their top 128 bits, which is off by at most one, and
// corrects it by comparing exact products. Its fields are scratch space.
type mulDiv struct{ a, b, n, d, q big.Int }

func (m *mulDiv) floor(b uint64, num, den *big.Int) uint64 {
	shift := den.BitLen() - 128
	if shift < 0 {
		shift = 0
	}
	m.n.Rsh(num, uint(shift))
	m.d.Rsh(den, uint(shift))
	m.b.SetUint64(b)
	m.q.Mul(&m.n, &m.b)
	m.q.Quo(&m.q, &m.d) // within one of the exact quotient
	m.a.Mul(num, &m.b)  // b·num
	for {
		// q too large: q·den > b·num.
		m.n.Mul(&m.q, den)
		if m.n.Cmp(&m.a) <= 0 {
			break
		}
		m.q.Sub(&m.q, big.NewInt(1))
	}
	for {
		// q too small: (q+1)·den ≤ b·num.
		m.n.Add(&m.n, den)
		if m.n.Cmp(&m.a) > 0 {
			break
		}
		m.q.Add(&m.q, big.NewInt(1))
	}
	return m.q.Uint64()
}
