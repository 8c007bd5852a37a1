package contracts_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/vm"
	"github.com/phalago/phala/internal/wat"
)

// startRandomWAT has a WebAssembly start section that asks for random
// bytes (kept nowhere that survives a snapshot). handle_command's first
// input byte: 'g' grows memory by a page, 'r' outputs 32 random bytes.
const startRandomWAT = `(module
  (import "phala" "random" (func $random (param i32 i32)))
  (import "phala" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)
  (func $start i32.const 3000 i32.const 8 call $random)
  (start $start)
  (func (export "phala_alloc") (param i32) (result i32) i32.const 1024)
  (func (export "handle_command") (param $p i32) (param $n i32) (result i32)
    local.get $p i32.load8_u i32.const 103 i32.eq
    if i32.const 1 memory.grow drop end
    i32.const 100 i32.const 32 call $random
    i32.const 100 i32.const 32 call $output
    i32.const 0)
  (func (export "handle_query") (param i32 i32) (result i32) i32.const 0))`

// A module's start section runs again when a snapshot is instantiated
// anew (the kept instance's memory grew): it must not see, and use up,
// the randomness of the call that needed the instance. Else that call's
// random bytes differ from a restarted replica's (whose instance comes
// from a plain instantiation), and the replicas' states diverge.
func TestSnapshotStartSectionKeepsCallRandomness(t *testing.T) {
	ctx := context.Background()
	v, err := vm.New(ctx, vm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(ctx) })
	m, err := v.Compile(ctx, wat.MustCompile(startRandomWAT))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := keys.ContractKeysFromSeed(sha256.Sum256([]byte("start section")))
	kept, err := contracts.New(ctx, v, k, m)
	if err != nil {
		t.Fatal(err)
	}
	restarted := kept
	for i, block := range [][]string{{"r"}, {"g"}, {"r", "r"}, {"g", "g"}, {"r"}} {
		h := int64(10 + i)
		st := restarted.Store()
		if restarted, err = contracts.Restore(ctx, v, k, m, st.EpochKeys(), st.Snapshot(), st.Root(), restarted.Calls()); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if kept, err = contracts.Restore(ctx, v, k, m, st.EpochKeys(), st.Snapshot(), st.Root(), restarted.Calls()); err != nil {
				t.Fatal(err)
			}
		}
		for j, in := range block {
			ra, errA := kept.Command(ctx, alice.Public(), []byte(in), h, t0)
			rb, errB := restarted.Command(ctx, alice.Public(), []byte(in), h, t0)
			if errA != nil || errB != nil {
				t.Fatalf("block %d command %d: %v / %v", i, j, errA, errB)
			}
			if fmt.Sprintf("%x", ra.Output) != fmt.Sprintf("%x", rb.Output) || ra.GasUsed != rb.GasUsed {
				t.Fatalf("block %d command %d %q: random %x gas %d (kept) / %x gas %d (restarted)", i, j, in, ra.Output, ra.GasUsed, rb.Output, rb.GasUsed)
			}
		}
	}
}
