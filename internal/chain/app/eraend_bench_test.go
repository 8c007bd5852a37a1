package app

import (
	"fmt"
	"testing"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/accounts"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/gatekeeper"
	"github.com/phalago/phala/internal/chain/registry"
	"github.com/phalago/phala/internal/chain/staking"
	"github.com/phalago/phala/internal/chain/store"
)

// BenchmarkEraEnd: the application's whole era-end work (every module's
// end-block hook at an era's last block: the computation module's 1/4
// rule, slashes, rewards and report, the gatekeeper election by
// sequential Phragmén) with 1,000 staked workers with activity, 100 of
// them gatekeeper candidates, and 10,000 nominators with up to 16 targets
// each. Target (issue 10): ≤ 100 ms. Run:
// go test ./internal/chain/app -run XXX -bench EraEnd -benchtime 10x -count 3
func BenchmarkEraEnd(b *testing.B) {
	for _, seats := range []uint64{3, 10} {
		b.Run(fmt.Sprintf("seats=%d", seats), func(b *testing.B) { benchEraEnd(b, seats) })
	}
}

func benchEraEnd(b *testing.B, seats uint64) {
	s, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	p := api.DefaultParams()
	p.NGatekeepers = seats
	m := []byte{1}
	registry.SetAttestation(s, &api.AttestationSettings{Measurements: []api.HexBytes{m}})
	key := func(kind string, i int) crypto.PublicKey {
		var k crypto.PublicKey
		copy(k[:], fmt.Sprintf("%s %d", kind, i))
		return k
	}
	const workers, candidates, nominators = 1000, 100, 10_000
	var total uint64
	fund := func(k crypto.PublicKey, amount uint64) {
		accounts.Set(s, k, api.Account{Balance: amount})
		total += amount
	}
	ctx := &block.Context{KV: s, Height: 100, Params: p}
	era := api.GenesisEras(p.EraLength).EraOf(int64(2 * p.EraLength))
	for i := range workers {
		w, op := key("worker", i), key("operator", i)
		fund(op, 1_000_000*api.Unit)
		rec := &api.WorkerRecord{Info: api.WorkerInfo{IdentityKey: w, Operator: op}, Measurement: m, RegisteredAt: 1, ExpiresAt: 1 << 40}
		s.Set(api.WorkerKey(w), rec.Encode())
		s.Set(api.ActivityKey(era, w), (&api.Activity{Challenged: 20, Answered: uint64(i % 21), Egress: uint64(i % 3)}).Encode())
	}
	for i := range nominators {
		fund(key("nominator", i), 1_000*api.Unit)
	}
	s.Set(api.KeyIssuance, api.EncodeIssuance(total))
	for i := range workers {
		w, op := key("worker", i), key("operator", i)
		stake := (100 + uint64(i%50)) * api.Unit
		if i < candidates {
			stake = 20_000 * api.Unit
		}
		if err := staking.Bond(ctx, op, stake); err != nil {
			b.Fatal(err)
		}
		if err := staking.Allocate(ctx, op, w, stake); err != nil {
			b.Fatal(err)
		}
		if i < candidates {
			if err := gatekeeper.DeclareCandidacy(ctx, op, &api.GatekeeperCandidacy{Node: w, On: true}); err != nil {
				b.Fatal(err)
			}
		}
	}
	for i := range nominators {
		n := key("nominator", i)
		if err := staking.Bond(ctx, n, uint64(100+i%900)*api.Unit); err != nil {
			b.Fatal(err)
		}
		targets := make([]crypto.PublicKey, 0, 16)
		for j := range 1 + i%16 {
			targets = append(targets, key("worker", (i*7+j*13)%candidates))
		}
		if err := staking.Nominate(ctx, n, targets); err != nil {
			b.Fatal(err)
		}
	}
	mux := newMux()
	end := int64(2 * p.EraLength) // the last block of era 1
	b.ResetTimer()
	for range b.N {
		c := store.NewCache(s)
		ctx := &block.Context{KV: c, Height: end, Params: p, BlockHash: make([]byte, api.BlockHashSize)}
		if err := mux.EndBlock(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if gatekeeper.Election(c, era+1) == nil || c.Get(api.EraReportKey(era)) == nil {
			b.Fatal("no election or no era report")
		}
		c.Discard()
		b.StartTimer()
	}
}
