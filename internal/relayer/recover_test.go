package relayer_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/phalago/phala/internal/relayer"
	"github.com/phalago/phala/internal/testnet"
)

// BlocksAt (a recovery's blocks: any heights, fetched concurrently) gives
// exactly what Blocks gives for the same heights, in the order asked, and
// fails for a height the node does not have.
func TestBlocksAtMatchesBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a validator")
	}
	ev := newEnv(t, false, testnet.Options{TimeoutCommit: 5 * time.Millisecond})
	ev.net.WaitHeight(6, 30*time.Second)
	f := &relayer.Fetcher{C: ev.c, Workers: 3}
	all, err := f.Blocks(tctx(t), 1, 6)
	if err != nil {
		t.Fatal(err)
	}
	heights := []int64{6, 2, 3, 5}
	got, err := f.BlocksAt(tctx(t), heights)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range heights {
		if !reflect.DeepEqual(got[i], all.Blocks[h-1]) {
			t.Fatalf("block %d differs from Blocks'", h)
		}
	}
	if got, err := f.BlocksAt(tctx(t), nil); err != nil || len(got) != 0 {
		t.Fatalf("no heights: %v, %v", got, err)
	}
	if _, err := f.BlocksAt(tctx(t), []int64{2, 1 << 40}); err == nil {
		t.Fatal("a block the node does not have was returned")
	}
}
