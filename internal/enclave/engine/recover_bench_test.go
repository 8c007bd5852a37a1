package engine

import (
	"bytes"
	"crypto/rand"
	"sort"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/internal/enclave/contracts"
)

// BenchmarkRecoverPRuntimeSide1M measures pRuntime's part of recovering a
// contract of 1,000,000 entries (docs/benchmarks.md, "Recovery from the
// on-chain checkpoint"; the node and pherry's part is
// internal/chain/app's BenchmarkRecoverEntries1M): "decode" (the
// POST /recover body, ~85 MB, decoded strictly), "rebuild"
// (contracts.StoreFromEntries with the root check, and the contract
// instance adopting the store), "seal" (the checkpoint that makes the
// recovered contract survive a restart: its part, encrypted and written).
// Entries are 52-byte values, as Store.Set writes small values. Excluded:
// the HTTP transfer on loopback and the replay of commands after the
// checkpoint (measured by the commands/s figures).
func BenchmarkRecoverPRuntimeSide1M(b *testing.B) {
	const n = 1_000_000
	entries := make([]api.StateChange, n)
	for i := range entries {
		rand.Read(entries[i].Location[:])
		entries[i].Value = make([]byte, 52)
		rand.Read(entries[i].Value)
	}
	sort.Slice(entries, func(i, j int) bool { return bytes.Compare(entries[i].Location[:], entries[j].Location[:]) < 0 })
	const seq = n + 7
	root := contracts.RootOfEntries(seq, entries)
	body := (&api.RecoverRequest{Entries: entries}).Encode()
	bt := &testing.T{}
	x := newBare(bt, b.TempDir(), false)
	b.Logf("request body: %d bytes", len(body))
	var req *api.RecoverRequest
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			t := time.Now()
			var err error
			if req, err = api.DecodeRecoverRequest(body); err != nil {
				b.Fatal(err)
			}
			b.Logf("%s", time.Since(t).Round(time.Millisecond))
		}
	})
	b.Run("rebuild", func(b *testing.B) {
		for b.Loop() {
			t := time.Now()
			st, err := contracts.StoreFromEntries(x.ck.Storage, seq, req.Entries, root)
			if err != nil {
				b.Fatal(err)
			}
			x.e.mu.Lock()
			x.e.running[x.id].c.Adopt(st, 1)
			x.e.running[x.id].dirty = true
			x.e.mu.Unlock()
			b.Logf("%s", time.Since(t).Round(time.Millisecond))
		}
	})
	b.Run("seal", func(b *testing.B) {
		for b.Loop() {
			x.e.mu.Lock()
			x.e.running[x.id].dirty = true
			t := time.Now()
			err := x.e.checkpoint()
			d := time.Since(t)
			x.e.mu.Unlock()
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("%s", d.Round(time.Millisecond))
		}
	})
}
