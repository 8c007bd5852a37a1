package relayer

import (
	"testing"

	"github.com/phalago/phala/api"
)

// A registration is renewed at the first block of the next era by the
// chain's era schedule (not by height / era_length, which a governance
// change renumbers), or margin blocks before it expires if that is
// sooner.
func TestRenewHeight(t *testing.T) {
	changed := api.GenesisEras(10)
	if err := changed.Change(21, 4); err != nil { // era 2 on: 4 blocks
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		sched      *api.EraSchedule
		registered int64
		expires    int64
		want       int64
	}{
		{"era 0", api.GenesisEras(10), 3, 1000, 11},
		{"last block of era 0", api.GenesisEras(10), 10, 1000, 11},
		{"era 1 before a change: its original end", changed, 15, 1000, 21},
		{"era 2, the first of the new length", changed, 21, 1000, 25},
		{"era 3", changed, 27, 1000, 29},
		{"expiry first", changed, 15, 25, 20},
	} {
		rec := &api.WorkerRecord{RegisteredAt: tc.registered, ExpiresAt: tc.expires}
		if got := renewHeight(rec, 5, tc.sched); got != tc.want {
			t.Errorf("%s: renew at %d, want %d", tc.name, got, tc.want)
		}
	}
}
