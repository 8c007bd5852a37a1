package contracts

import (
	"bytes"
	"crypto/rand"
	"slices"
	"testing"

	"github.com/phalago/phala/api"
)

// syntheticEntries returns n entries shaped like a Store's (random
// 32-byte locations, ascending; values of seq(8) ‖ epoch 0 ‖ a 27-byte ciphertext ‖
// a 16-byte tag, what Set stores for a small value) and their root.
func syntheticEntries(n int) ([]api.StateChange, uint64, [32]byte) {
	es := make([]api.StateChange, n)
	vals := make([]byte, n*52)
	rand.Read(vals)
	for i := range es {
		rand.Read(es[i].Location[:])
		vals[i*52+8] = 0 // key epoch 0
		es[i].Value = vals[i*52 : (i+1)*52 : (i+1)*52]
	}
	slices.SortFunc(es, func(a, b api.StateChange) int { return bytes.Compare(a.Location[:], b.Location[:]) })
	seq := uint64(n) + 17
	return es, seq, api.StateRoot(seq, es)
}

// BenchmarkStoreFromEntries1M: the in-enclave part of a recovery from the
// chain (docs/benchmarks.md, "Recovery from the on-chain checkpoint"):
// 1,000,000 entries already decoded, rebuilt into a store with the root
// checked (build+root); for comparison, the same store restored from a
// sealed snapshot (RestoreStore, which also checks the root), and the
// root alone.
func BenchmarkStoreFromEntries1M(b *testing.B) {
	es, seq, root := syntheticEntries(1_000_000)
	key := [32]byte{5}
	b.Run("build+root", func(b *testing.B) {
		for b.Loop() {
			if _, err := StoreFromEntries(key, seq, es, root); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("root-only", func(b *testing.B) {
		for b.Loop() {
			if rootOfSorted(seq, es) != root {
				b.Fatal("root")
			}
		}
	})
	s, err := StoreFromEntries(key, seq, es, root)
	if err != nil {
		b.Fatal(err)
	}
	snap := s.Snapshot()
	b.Run("restore-sealed-snapshot", func(b *testing.B) {
		b.SetBytes(int64(len(snap)))
		for b.Loop() {
			if _, err := RestoreStore([]EpochKey{{Key: key}}, snap, root); err != nil {
				b.Fatal(err)
			}
		}
	})
}
