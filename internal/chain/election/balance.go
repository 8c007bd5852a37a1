package election

import (
	"bytes"
	"math/bits"
	"slices"

	"github.com/phalago/phala/crypto"
)

// Balance is the post-processing of a sequential Phragmén result that
// Polkadot calls balancing (sp-npos-elections balance, the "star
// balancing" of arXiv:2004.12990): each voter backing several elected
// candidates moves its budget towards the least backed of them, so that
// after the voter all of them it still backs are equally backed (or it
// backs only the least backed ones), repeated over all voters for up to
// iterations rounds or until no voter moves more than tolerance units.
// Integer units: the remainder of dividing a voter's excess evenly goes
// one unit each to its least backed edges, so every voter's exposures
// still sum to its budget. res.Assignments change in place (edges that
// fall to zero are dropped); the elected set does not. voters must be the
// input SeqPhragmen elected res from.
func Balance(res *Result, voters []Voter, iterations int, tolerance uint64) {
	if iterations <= 0 || len(res.Elected) == 0 {
		return
	}
	elected := make(map[crypto.PublicKey]int, len(res.Elected))
	for i, k := range res.Elected {
		elected[k] = i
	}
	backed := make([]uint64, len(res.Elected))
	// Every elected candidate each voter approves, with its weight.
	type edge struct {
		c int
		w uint64
	}
	edges := make([][]edge, len(voters))
	for vi, v := range voters {
		if v.Budget == 0 || len(res.Assignments[vi]) == 0 {
			continue
		}
		for _, t := range v.Targets {
			if c, ok := elected[t]; ok && !slices.ContainsFunc(edges[vi], func(e edge) bool { return e.c == c }) {
				edges[vi] = append(edges[vi], edge{c: c})
			}
		}
		for _, a := range res.Assignments[vi] {
			c := elected[a.Target]
			for j := range edges[vi] {
				if edges[vi][j].c == c {
					edges[vi][j].w = a.Amount
				}
			}
			backed[c] += a.Amount
		}
	}
	for it := 0; it < iterations; it++ {
		var maxDiff uint64
		for vi, v := range voters {
			es := edges[vi]
			if len(es) < 2 {
				continue
			}
			var used uint64
			minB, maxB, any := uint64(0), uint64(0), false
			for _, e := range es {
				used += e.w
				if e.w > 0 {
					if !any || backed[e.c] < minB {
						minB = backed[e.c]
					}
					if !any || backed[e.c] > maxB {
						maxB = backed[e.c]
					}
					any = true
				}
			}
			diff := v.Budget
			if any {
				diff = maxB - minB + (v.Budget - used)
			}
			if diff > maxDiff {
				maxDiff = diff
			}
			if diff <= tolerance {
				continue
			}
			for j := range es {
				backed[es[j].c] -= es[j].w
				es[j].w = 0
			}
			slices.SortFunc(es, func(a, b edge) int {
				if backed[a.c] != backed[b.c] {
					if backed[a.c] < backed[b.c] {
						return -1
					}
					return 1
				}
				return bytes.Compare(res.Elected[a.c][:], res.Elected[b.c][:])
			})
			// The least backed edges the budget can lift to a common
			// level: stop before the first edge i with backed_i·i −
			// Σ_{<i} backed > budget (128-bit arithmetic).
			var cumHi, cumLo uint64
			last := len(es) - 1
			for i, e := range es {
				hi, lo := bits.Mul64(backed[e.c], uint64(i))
				// needHi:needLo = cumulative + budget
				needLo, carry := bits.Add64(cumLo, v.Budget, 0)
				needHi := cumHi + carry
				if hi > needHi || (hi == needHi && lo > needLo) {
					last = i - 1
					break
				}
				var c uint64
				cumLo, c = bits.Add64(cumLo, backed[e.c], 0)
				cumHi += c
			}
			level := backed[es[last].c]
			ways := uint64(last + 1)
			// excess = budget + cumulative − level·ways, in [0, budget].
			hi, lo := bits.Mul64(level, ways)
			exLo, c := bits.Add64(cumLo, v.Budget, 0)
			exHi := cumHi + c
			exLo, c = bits.Sub64(exLo, lo, 0)
			exHi -= hi + c
			_ = exHi // zero: the excess is at most the budget
			share, rem := exLo/ways, exLo%ways
			for j := 0; j <= last; j++ {
				w := share + level - backed[es[j].c]
				if uint64(j) < rem {
					w++
				}
				es[j].w = w
				backed[es[j].c] += w
			}
		}
		if maxDiff <= tolerance {
			break
		}
	}
	for vi := range voters {
		if len(edges[vi]) == 0 {
			continue
		}
		es := slices.Clone(edges[vi])
		slices.SortFunc(es, func(a, b edge) int { return a.c - b.c }) // election order
		out := res.Assignments[vi][:0]
		for _, e := range es {
			if e.w > 0 {
				out = append(out, Stake{Target: res.Elected[e.c], Amount: e.w})
			}
		}
		res.Assignments[vi] = out
	}
}
