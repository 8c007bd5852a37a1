package contracts_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/vm"
)

// A contract's command instance is restored from a snapshot at each block
// (and after a trap, or in a new instance when its memory grew): every
// call gives what it gives on a replica that restarted before each block
// (whose first instance runs the start function): same output, same
// error, same gas, same state root. The Go runtime's state (a counter in
// the guest, math/rand, a map's iteration order) starts the same at every
// block.
func TestSnapshotRestoreMatchesRestartedReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a contract")
	}
	ctx := context.Background()
	v, err := vm.New(ctx, vm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(ctx) })
	m, err := v.Compile(ctx, code(t, misbehave))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := keys.ContractKeysFromSeed(sha256.Sum256([]byte("snapshot contract")))
	kept, err := contracts.New(ctx, v, k, m)
	if err != nil {
		t.Fatal(err)
	}
	restarted, err := contracts.New(ctx, v, k, m)
	if err != nil {
		t.Fatal(err)
	}
	blocks := [][]string{
		{"state", "set", "state"},
		{"state", "grow", "state"}, // memory grows: the next block needs a new instance
		{"state", "panic", "state", "set"},
		{"nil", "state", "grow", "grow"},
		{"state", "random", "state"},
		{"state"},
	}
	var firstStates []string
	for i, block := range blocks {
		h := int64(10 + i)
		// The restarted replica: a new Contract from the checkpoint.
		st := restarted.Store()
		r, err := contracts.Restore(ctx, v, k, m, st.EpochKeys(), st.Snapshot(), st.Root(), restarted.Calls())
		if err != nil {
			t.Fatal(err)
		}
		restarted = r
		for j, in := range block {
			ra, errA := kept.Command(ctx, alice.Public(), []byte(in), h, t0)
			rb, errB := restarted.Command(ctx, alice.Public(), []byte(in), h, t0)
			if fmt.Sprint(errA) != fmt.Sprint(errB) {
				t.Fatalf("block %d command %d %q: errors %v / %v", i, j, in, errA, errB)
			}
			if ra == nil || rb == nil {
				t.Fatalf("block %d command %d %q: no result", i, j, in)
			}
			if string(ra.Output) != string(rb.Output) || ra.GasUsed != rb.GasUsed {
				t.Fatalf("block %d command %d %q: output %q gas %d (restored) / %q gas %d (restarted)", i, j, in, ra.Output, ra.GasUsed, rb.Output, rb.GasUsed)
			}
			if j == 0 && in == "state" {
				if !strings.HasPrefix(string(ra.Output), "1 0 ") {
					t.Fatalf("block %d: the first call sees %q: not a fresh runtime", i, ra.Output)
				}
				firstStates = append(firstStates, string(ra.Output))
			}
		}
		if kept.StateRoot() != restarted.StateRoot() {
			t.Fatalf("block %d: roots differ", i)
		}
	}
	for _, s := range firstStates[1:] {
		if s != firstStates[0] {
			t.Fatalf("the first call of a block sees %q, of another %q", s, firstStates[0])
		}
	}
}
