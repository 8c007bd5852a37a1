package lightclient

import (
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"
)

// A header whose commit is present but whose header is not (protobuf
// without its header field decodes so) is refused by VerifyBatch with
// ErrUntrusted wherever it stands, as by Verify, and never panics: not
// even at the last position of a range, where the next range's goroutine
// reads it as its predecessor.
func TestVerifyBatchHeaderlessCommit(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	const n = 400
	k := newTestKeys(t, 4)
	set := k.set(t, 0, 1, 2, 3)
	g := &Genesis{ChainID: "phala-batch", InitialHeight: 1, Time: time.Unix(1_700_000_000, 0).UTC(), Validators: set}
	chain := valChain(t, k, g, func(int64) *cmttypes.ValidatorSet { return set }, n+1, 1)
	trusted, hs := chain[0].Header, chain[1:]
	for _, at := range []int{0, 47, 99, 100, 199, 200, 299, n - 1} {
		t.Run(fmt.Sprint(at), func(t *testing.T) {
			mut := append([]Signed(nil), hs...)
			mut[at] = Signed{Header: &cmttypes.SignedHeader{Commit: hs[at].Header.Commit}, Validators: hs[at].Validators}
			c := New(g, trusted)
			got, err := c.VerifyBatch(mut)
			if got != at || !errors.Is(err, ErrUntrusted) {
				t.Fatalf("accepted %d (want %d), err %v", got, at, err)
			}
			if c.Height() != int64(at)+1 {
				t.Fatalf("at height %d", c.Height())
			}
		})
	}
}

// With many CPUs, splitting a batch into ranges never makes a range that
// starts past the end (51 workers of 49 headers for 2,449 headers would
// start the last at 2,450): VerifyBatch accepts the whole batch.
func TestVerifyBatchManyCPUs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(51))
	const n = 51*minPerWorker + 1
	k := newTestKeys(t, 1)
	set := k.set(t, 0)
	g := &Genesis{ChainID: "phala-batch", InitialHeight: 1, Time: time.Unix(1_700_000_000, 0).UTC(), Validators: set}
	chain := valChain(t, k, g, func(int64) *cmttypes.ValidatorSet { return set }, n+1, 1)
	c := New(g, chain[0].Header)
	if got, err := c.VerifyBatch(chain[1:]); got != n || err != nil {
		t.Fatalf("accepted %d of %d: %v", got, n, err)
	}
}
