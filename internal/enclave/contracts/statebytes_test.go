package contracts

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/phalago/phala/api"
)

// BenchmarkStateUpdateBytes: chain bytes written for 1,000 token
// transfers among 100 accounts (each transfer rewrites two 8-byte
// balances), at 50 transfers per block: one state update per command
// against one merged update every 13 blocks (docs/availability.md). The
// figures are the encoded api.StateUpdate payloads (what the chain
// stores as entries plus the update's header), reported as
// bytes/1000transfers. Run:
// go test ./internal/enclave/contracts -run XXX -bench StateUpdateBytes
func BenchmarkStateUpdateBytes(b *testing.B) {
	for _, every := range []int{0, 13} {
		name := "per-command"
		if every > 0 {
			name = fmt.Sprintf("merged-every-%d-blocks", every)
		}
		b.Run(name, func(b *testing.B) {
			var total int
			for range b.N {
				s := NewStore([32]byte{9})
				total = 0
				cut := func() {
					if !s.HasChanges() {
						return
					}
					u := &api.StateUpdate{Height: 1, Seq: s.Seq(), Changes: s.TakeChanges()}
					total += len(u.Encode())
				}
				bal := func(i int) []byte { return binary.BigEndian.AppendUint64([]byte("balance"), uint64(i)) }
				for tx := range 1000 {
					from, to := tx%100, (tx*7+3)%100
					s.Set(bal(from), binary.BigEndian.AppendUint64(nil, uint64(1000-tx)))
					s.Set(bal(to), binary.BigEndian.AppendUint64(nil, uint64(tx)))
					block := tx / 50
					switch {
					case every == 0:
						cut()
					case (tx+1)%50 == 0 && (block+1)%every == 0:
						cut()
					}
				}
				cut()
			}
			b.ReportMetric(float64(total), "bytes/1000transfers")
		})
	}
}
