package computation

import (
	"fmt"
	"testing"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/gatekeeper"
	"github.com/phalago/phala/internal/chain/registry"
	"github.com/phalago/phala/internal/chain/store"
)

// economy pays nothing and takes nothing: the benchmarks measure the
// module's own work.
type economy struct{}

func (economy) Slash(*block.Context, crypto.PublicKey, uint64, string) uint64 { return 1 }
func (economy) Reward(*block.Context, crypto.PublicKey, uint64) uint64        { return 1 }
func (economy) Issuance(store.KV) uint64                                      { return 1_000_000 * api.Unit }

// population writes n registered workers (and gatekeepers among them)
// with activity in era 1 into a fresh store.
func population(b *testing.B, n, gatekeepers int, p api.Params) *store.Store {
	s, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	m := []byte{1}
	registry.SetAttestation(s, &api.AttestationSettings{Measurements: []api.HexBytes{m}})
	var gks []crypto.PublicKey
	for i := range n {
		var k crypto.PublicKey
		copy(k[:], fmt.Sprintf("node %d", i))
		rec := &api.WorkerRecord{Info: api.WorkerInfo{IdentityKey: k}, Measurement: m, RegisteredAt: 1, ExpiresAt: 1 << 40}
		s.Set(api.WorkerKey(k), rec.Encode())
		s.Set(api.ActivityKey(1, k), (&api.Activity{Challenged: 20, Answered: uint64(i % 21), Egress: uint64(i % 3)}).Encode())
		if i < gatekeepers {
			gks = append(gks, k)
		}
	}
	gatekeeper.SetGatekeepers(s, gks)
	return s
}

// BenchmarkEraEnd: the computation module's era-end work (verdicts by the
// 1/4 rule, slashes, rewards, the report) for 1,000 nodes, 10 of them
// gatekeepers. Run: go test ./internal/chain/computation -bench EraEnd -run XXX
func BenchmarkEraEnd(b *testing.B) {
	p := api.DefaultParams()
	p.EraLength = 600
	s := population(b, 1000, 10, p)
	b.ResetTimer()
	for range b.N {
		c := store.NewCache(s)
		ctx := &block.Context{KV: c, Height: 1200, Params: p}
		if err := endEra(ctx, economy{}, api.GenesisEras(p.EraLength), 1); err != nil {
			b.Fatal(err)
		}
		c.Discard()
	}
}

// BenchmarkChallenges: one block's challenge draw over 1,000 nodes
// (every block pays it).
func BenchmarkChallenges(b *testing.B) {
	p := api.DefaultParams()
	s := population(b, 1000, 10, p)
	s.Set(api.BlockHashKey(700), make([]byte, api.BlockHashSize))
	b.ResetTimer()
	for range b.N {
		c := store.NewCache(s)
		ctx := &block.Context{KV: c, Height: 701, Params: p}
		if err := BeginBlock(ctx); err != nil {
			b.Fatal(err)
		}
		c.Discard()
	}
}
