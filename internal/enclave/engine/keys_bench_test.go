package engine

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/phalago/phala/api"
)

// BenchmarkKeyRotation measures a MasterKey rotation with n elected
// gatekeepers, real pRuntimes in one process on an in-process chain
// (timeout_commit 100 ms): from the block where the chain begins the
// set's DKG (the era end) to the block that adopts its key set, in blocks
// and seconds of header time. The relaying is the test's (every message
// broadcast at once, then one block waited), so blocks count round trips. The set elected first is re-elected at every era end, and
// each era's DKG is one iteration. Run with -benchtime 1x (an iteration
// is an era).
func BenchmarkKeyRotation(b *testing.B) {
	for _, c := range []struct {
		n              int
		era, dkgPhases uint64
	}{{5, 150, 40}, {21, 1800, 600}} {
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
				// Wait for the next era's key set; measured on the chain:
				// from the era end that elected the set and began its DKG
				// to the block that activated it, in blocks and in the
				// blocks' header time.
				waitFor(b, 10*time.Minute, "the rotation", func() bool {
					relayBatch(b, h.ch, h.bobS, all...)
					return ms[0].st.servingKeyEra > from
				})
				era := ms[0].st.servingKeyEra
				v, _, err := queryRaw(b, h.ch.c, api.QueryGatekeeperEra, binary.BigEndian.AppendUint64(nil, era))
				if err != nil {
					b.Fatal(err)
				}
				rec, err := api.DecodeElectionRecord(v)
				if err != nil {
					b.Fatal(err)
				}
				h0, err := h.ch.c.SignedHeader(ctx(b), rec.Height)
				if err != nil {
					b.Fatal(err)
				}
				h1, err := h.ch.c.SignedHeader(ctx(b), rec.StatusHeight)
				if err != nil {
					b.Fatal(err)
				}
				secs += h1.Time.Sub(h0.Time).Seconds()
				blocks += float64(rec.StatusHeight - rec.Height)
			}
			b.ReportMetric(blocks/float64(b.N), "blocks/rotation")
			b.ReportMetric(secs/float64(b.N), "s/rotation")
		})
	}
}
