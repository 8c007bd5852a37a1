package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/phalago/phala/api"
)

// BenchmarkKeyRotation measures a MasterKey rotation with n elected
// gatekeepers, real pRuntimes in one process on an in-process chain
// (timeout_commit 100 ms): from the block where the chain begins the
// set's DKG (the era end) to the block that adopts its key set, in blocks
// and seconds. The set elected first is re-elected at every era end, and
// each era's DKG is one iteration. Run with -benchtime 1x (an iteration
// is an era).
func BenchmarkKeyRotation(b *testing.B) {
	for _, c := range []struct {
		n              int
		era, dkgPhases uint64
	}{{5, 150, 40}, {21, 600, 150}} {
		b.Run(fmt.Sprintf("n=%d", c.n), func(b *testing.B) {
			h := newRecoveryHarnessWith(b, func(g *api.GenesisState) {
				g.Params.EraLength = c.era
				g.Params.NGatekeepers = uint64(c.n)
				g.Params.DkgTimeout = c.dkgPhases
			})
			ms := electSet(b, h, c.n)
			all := append([]*Engine{h.gk}, ms...)
			var blocks, secs float64
			b.ResetTimer()
			for range b.N {
				from := ms[0].st.servingKeyEra
				// Wait for the next era's DKG to begin.
				var began int64
				var start time.Time
				waitFor(b, 10*time.Minute, "the next DKG", func() bool {
					relayBatch(b, h.ch, h.bobS, all...)
					if st := ms[0].st.dkgPhase; st != nil && st.Era > from {
						began, start = st.PhaseStart, time.Now()
						return true
					}
					return false
				})
				waitFor(b, 10*time.Minute, "the rotation", func() bool {
					relayBatch(b, h.ch, h.bobS, all...)
					return ms[0].st.servingKeyEra > from
				})
				secs += time.Since(start).Seconds()
				blocks += float64(ms[0].st.dispatched - began)
			}
			b.ReportMetric(blocks/float64(b.N), "blocks/rotation")
			b.ReportMetric(secs/float64(b.N), "s/rotation")
		})
	}
}
