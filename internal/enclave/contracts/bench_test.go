package contracts_test

import (
	"context"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/contracts"
)

// BenchmarkQuery measures an off-chain balance query to the token handled
// in-process: signature check, channel open, replay guard, the VM's
// read-only call, sealing and signing the answer. Reports queries/s and the
// p50/p99 latency of HandleQuery (queries are built beforehand, as clients
// build them). One query before the timer compiles the contract for the
// query runtime.
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
	// One query before the timer: the contract's first query compiles
	// its module for the query runtime (seconds), which is not a query's
	// cost (until 2026-12-01 it was timed as the first iteration's).
	warm, _ := client.NewQuery(bob, c.ID(), c.EcdhPublic(), worker, []byte("balance"), now.Add(time.Minute))
	if _, err := c.HandleQuery(ctx, g, warm.Query, 2, now); err != nil {
		b.Fatal(err)
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

// BenchmarkSessionQuery measures the same balance query sent in a query
// session (opened once, before the timer): opening the query under the
// session's key, its number's replay window, the VM's read-only call and
// sealing the answer. Queries are sealed beforehand, as for
// BenchmarkQuery; each answer is opened by the client after the timer.
func BenchmarkSessionQuery(b *testing.B) {
	ctx := context.Background()
	c := newContract(b, filepath.Join("..", "..", "..", "examples", "contracts", "token"), false)
	c.Init(ctx, alice.Public(), nil, 1, t0)
	if _, err := c.Command(ctx, alice.Public(), tokenReq("mint", bob.Public(), 77), 2, t0); err != nil {
		b.Fatal(err)
	}
	g, table := contracts.NewQueryGuard(), contracts.NewSessions()
	now := t0.Add(time.Minute)
	cs, ws := openSession(b, c, g, table, bob, now)
	// One query before the timer (see BenchmarkQuery).
	if _, err := c.HandleSessionQuery(ctx, ws, cs.Seal([]byte("balance")), 2, now); err != nil {
		b.Fatal(err)
	}
	qs := make([]*api.SessionQuery, b.N)
	for i := range qs {
		qs[i] = cs.Seal([]byte("balance"))
	}
	lat := make([]time.Duration, b.N)
	answers := make([]*api.SessionAnswer, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		a, err := c.HandleSessionQuery(ctx, ws, qs[i], 2, now)
		if err != nil {
			b.Fatal(err)
		}
		answers[i] = a
		lat[i] = time.Since(start)
	}
	b.StopTimer()
	for i, a := range answers {
		if out, _, err := cs.Open(qs[i], a); err != nil || len(out) == 0 {
			b.Fatalf("answer %d: %q %v", i, out, err)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// openSession opens a query session of key with c (OpenSession, then the
// client's Accept) at block time now: the client's and the worker's sides.
func openSession(tb testing.TB, c *contracts.Contract, g *contracts.QueryGuard, table *contracts.Sessions, key *crypto.KeyPair, now time.Time) (*client.QuerySession, *contracts.Session) {
	tb.Helper()
	p, err := client.NewQuerySessionOpen(key, c.ID(), worker, now.Add(time.Minute))
	if err != nil {
		tb.Fatal(err)
	}
	a, err := c.OpenSession(g, table, p.Open, now)
	if err != nil {
		tb.Fatal(err)
	}
	cs, err := p.Accept(a)
	if err != nil {
		tb.Fatal(err)
	}
	ws, err := table.Get(a.ID, now)
	if err != nil {
		tb.Fatal(err)
	}
	return cs, ws
}
