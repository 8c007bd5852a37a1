package relayer

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// A batch stops growing at its byte cap: fetchPrefix starts no fetch once
// the items fetched hold the cap (so at most workers items are fetched past
// it), and returns the longest prefix within the cap, never less than one
// item.
func TestFetchPrefixStopsAtCap(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		n, workers, size, maxB int
		want                   int
	}{
		{"no cap", 100, 4, 10, 0, 100},
		{"cap in the middle", 100, 4, 10, 35, 3},
		{"cap on a boundary", 100, 1, 10, 30, 3},
		{"one item over the cap", 100, 4, 50, 10, 1},
		{"all fit", 5, 8, 10, 1000, 5},
		{"empty", 0, 4, 10, 10, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			got, err := fetchPrefix(context.Background(), tc.n, tc.workers, tc.maxB, func(_ context.Context, i int) (int, error) {
				calls.Add(1)
				return tc.size, nil
			})
			if err != nil || got != tc.want {
				t.Fatalf("prefix %d, %v; want %d", got, err, tc.want)
			}
			// Fetches: up to the cap, plus at most one per worker in flight.
			if tc.maxB > 0 {
				limit := tc.maxB/tc.size + 1 + tc.workers
				if c := int(calls.Load()); c > limit {
					t.Fatalf("%d items fetched for a cap of %d bytes (limit %d)", c, tc.maxB, limit)
				}
			}
		})
	}
	// Errors stop the batch.
	boom := errors.New("boom")
	if _, err := fetchPrefix(context.Background(), 10, 2, 0, func(_ context.Context, i int) (int, error) {
		if i == 3 {
			return 0, boom
		}
		return 1, nil
	}); !errors.Is(err, boom) {
		t.Fatalf("error: %v", err)
	}
}

// A failing recovery waits longer after each failure, from the check
// interval up to maxRecoverBackoff.
func TestRecoverBackoff(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute}
	for i, w := range want {
		if got := recoverBackoff(i + 1); got != w {
			t.Fatalf("after %d failures: %s, want %s", i+1, got, w)
		}
	}
	if got := recoverBackoff(1000); got != maxRecoverBackoff {
		t.Fatalf("after 1000 failures: %s", got)
	}
}
