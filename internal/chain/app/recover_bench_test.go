package app_test

import (
	"context"
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/relayer"
)

// BenchmarkRecoverEntries1M measures recovering a contract of 1,000,000
// entries from its on-chain checkpoint (docs/benchmarks.md, "Recovery
// from the on-chain checkpoint"; issue target ≤ 5 s to a queryable
// state): a real in-process node (CometBFT + the app, IAVL on goleveldb,
// committed and persisted) holds the entries (52-byte values, as
// Store.Set writes for small values: ~85 MB as listed); the relayer's
// Fetcher.Entries reads them over the node's RPC at the checkpoint's
// height (JSON-RPC abci_query pages, decoded and checked), and
// contracts.StoreFromEntries rebuilds the store and checks its root
// against the checkpoint's.
//
// Phases: "node-listing" (the node's part alone: every page listed by an
// in-process ABCI Query, no RPC), "fetch-ranges=N" (Fetcher.Entries with
// N parallel location ranges), "fetch" (the default 8), "build+root"
// (StoreFromEntries on the fetched entries), "total" (fetch and build,
// what a recovering pRuntime waits for, minus the HTTP hop from pherry to
// pRuntime's control API). Each run's time is logged (-v).
// Excluded: writing the entries into the node (a test-only genesis hook,
// timed only as setup), the replay of the commands after the checkpoint,
// and reading the checkpoint record.
func BenchmarkRecoverEntries1M(b *testing.B) {
	contract := crypto.PublicKey{0x42}
	st := newCheckpointState(contract, 1_000_000, 11)
	t0 := time.Now()
	net := startWithCheckpoints(b, 10*time.Minute, st)
	b.Logf("setup: %d entries written and committed in %s", len(st.entries), time.Since(t0).Round(time.Millisecond))
	ctx := context.Background()
	c := net.Client(0)
	cp, h, err := c.Checkpoint(ctx, contract)
	if err != nil {
		b.Fatal(err)
	}
	rpc, err := relayer.DialRPC(net.RPC(0), relayer.DefaultFetchWorkers)
	if err != nil {
		b.Fatal(err)
	}
	f := &relayer.Fetcher{C: c, RPC: rpc}
	// timed runs the phase and logs each run's time (-v shows them: the
	// figures in docs/benchmarks.md are their medians).
	timed := func(b *testing.B, run func()) {
		for b.Loop() {
			t := time.Now()
			run()
			b.Logf("%s", time.Since(t).Round(time.Millisecond))
		}
	}
	// The node's own part: the pages listed in-process (ABCI Query on the
	// app, no RPC, no JSON), one range after the other.
	b.Run("node-listing", func(b *testing.B) {
		timed(b, func() {
			n := 0
			data := contract[:]
			for {
				res, err := net.Node(0).App().Query(ctx, &abci.RequestQuery{Path: api.QueryContractEntries, Data: data, Height: h})
				if err != nil || res.Code != 0 {
					b.Fatal(err, res.Log)
				}
				p, err := api.DecodeEntryPage(res.Value)
				if err != nil {
					b.Fatal(err)
				}
				n += len(p.Entries)
				if !p.More {
					break
				}
				last := p.Entries[len(p.Entries)-1].Location
				data = append(contract[:len(contract):len(contract)], last[:]...)
			}
			if n != len(st.entries) {
				b.Fatalf("%d entries listed", n)
			}
		})
	})
	// The parallel ranges: 1 (one range read page after page) to 8 (the
	// default, DefaultFetchWorkers).
	for _, w := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("fetch-ranges=%d", w), func(b *testing.B) {
			g := &relayer.Fetcher{C: c, RPC: rpc, Workers: w}
			timed(b, func() {
				if _, err := g.Entries(ctx, contract, h); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
	var fetched []api.StateChange
	b.Run("fetch", func(b *testing.B) {
		timed(b, func() {
			if fetched, err = f.Entries(ctx, contract, h); err != nil {
				b.Fatal(err)
			}
		})
		b.ReportMetric(float64(len(fetched)), "entries")
	})
	b.Run("build+root", func(b *testing.B) {
		timed(b, func() {
			if _, err := contracts.StoreFromEntries([32]byte{1}, cp.Seq, fetched, cp.Root); err != nil {
				b.Fatal(err)
			}
		})
	})
	fetched = nil
	b.Run("total", func(b *testing.B) {
		timed(b, func() {
			es, err := f.Entries(ctx, contract, h)
			if err != nil {
				b.Fatal(err)
			}
			s, err := contracts.StoreFromEntries([32]byte{1}, cp.Seq, es, cp.Root)
			if err != nil || s.Len() != len(st.entries) {
				b.Fatal(err)
			}
		})
	})
}
