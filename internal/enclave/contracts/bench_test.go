package contracts_test

import (
	"context"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/phalago/phala/client"
	"github.com/phalago/phala/internal/enclave/contracts"
)

// BenchmarkQuery measures an off-chain balance query to the token handled
// in-process: signature check, channel open, replay guard, the VM's
// read-only call, sealing and signing the answer. Reports queries/s and the
// p50/p99 latency of HandleQuery (queries are built beforehand, as clients
// build them).
func BenchmarkQuery(b *testing.B) {
	ctx := context.Background()
	c := newContract(b, filepath.Join("..", "..", "..", "examples", "contracts", "token"), false)
	c.Init(ctx, alice.Public(), nil, 1, t0)
	if _, err := c.Command(ctx, alice.Public(), tokenReq("mint", bob.Public(), 77), 2, t0); err != nil {
		b.Fatal(err)
	}
	g := contracts.NewQueryGuard()
	now := t0.Add(time.Minute)
	qs := make([]*client.PendingQuery, b.N)
	for i := range qs {
		qs[i], _ = client.NewQuery(bob, c.ID(), c.EcdhPublic(), worker, []byte("balance"), now.Add(time.Minute))
	}
	lat := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := c.HandleQuery(ctx, g, qs[i].Query, 2, now); err != nil {
			b.Fatal(err)
		}
		lat[i] = time.Since(start)
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
