package engine

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/internal/relayer"
	"github.com/phalago/phala/internal/testnet"
)

// BenchmarkCatchUp measures a pRuntime catching up: light verification of
// every header, the messages-root check of every block against the next
// header's app hash, and dispatch, from genesis to the tip of a chain of
// ~400 blocks (with some messages), in one header batch and one block batch
// (one sealed checkpoint each). Metric: verified blocks per second.
func BenchmarkCatchUp(b *testing.B) {
	for _, vals := range []int{1, 4} {
		b.Run(fmt.Sprintf("validators=%d", vals), func(b *testing.B) {
			net := testnet.New(b, testnet.Options{Validators: vals, TimeoutCommit: 5 * time.Millisecond})
			c := net.Client(0)
			s := c.NewSigner(alice)
			for i := 0; i < 20; i++ {
				if _, err := s.Submit(ctx(b), &api.PostMessage{Topic: "app/bench", Payload: []byte{byte(i)}}); err != nil {
					b.Fatal(err)
				}
			}
			net.WaitHeight(400, 2*time.Minute)
			top, _ := c.Height(ctx(b))
			// The header of top+1 (it proves top's messages) exists only
			// once the next block is committed: wait for it. (Asking for it
			// at once failed with 4 validators: "height N must be less than
			// or equal to the current blockchain height".)
			if _, err := c.SignedHeader(ctx(b), top+1); err != nil {
				b.Fatal(err)
			}
			f := &relayer.Fetcher{C: c}
			headers, err := f.Headers(ctx(b), 1, top+1)
			if err != nil {
				b.Fatal(err)
			}
			blocks, err := f.Blocks(ctx(b), 1, top)
			if err != nil {
				b.Fatal(err)
			}
			doc, err := cmttypes.GenesisDocFromFile(filepath.Join(net.Homes[0], "config", "genesis.json"))
			if err != nil {
				b.Fatal(err)
			}
			net.StopAll()
			ch := &chain{genesis: doc}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dir := b.TempDir()
				e, err := New(Config{DataDir: dir, Genesis: ch.genesis, Platform: sim(b, dir), Log: quiet()})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := e.SyncHeaders(headers); err != nil {
					b.Fatal(err)
				}
				if _, err := e.DispatchBlocks(blocks); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(int64(b.N)*top)/b.Elapsed().Seconds(), "blocks/s")
		})
	}
}
