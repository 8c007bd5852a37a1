package vm

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/phalago/phala/internal/wat"
)

// stateWAT keeps state in a mutable global and in memory. handle_command's
// first input byte: 'i' increments both and outputs them (two i32), 'g'
// grows memory by a page, 't' traps.
const stateWAT = `(module
  (import "phala" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 40))
  (func (export "phala_alloc") (param i32) (result i32) i32.const 1024)
  (func $cmd (param $p i32) (param $n i32) (result i32)
    (local $op i32)
    local.get $p i32.load8_u local.set $op
    local.get $op i32.const 116 i32.eq
    if unreachable end
    local.get $op i32.const 103 i32.eq
    if i32.const 1 memory.grow drop end
    global.get $g i32.const 1 i32.add global.set $g
    i32.const 2000 i32.const 2000 i32.load i32.const 1 i32.add i32.store
    i32.const 100 global.get $g i32.store
    i32.const 104 i32.const 2000 i32.load i32.store
    i32.const 100 i32.const 8 call $output
    i32.const 0)
  (func (export "handle_command") (param i32 i32) (result i32) local.get 0 local.get 1 call $cmd)
  (func (export "handle_query") (param i32 i32) (result i32) i32.const 0))`

// dropWAT drops a data segment: its state is not memory and globals alone.
const dropWAT = `(module
  (memory (export "memory") 1)
  (data $d "abc")
  (func (export "phala_alloc") (param i32) (result i32) i32.const 1024)
  (func (export "handle_command") (param i32 i32) (result i32)
    data.drop $d i32.const 0)
  (func (export "handle_query") (param i32 i32) (result i32) i32.const 0))`

// A restored instance (in place, after a trap, or a new one when memory
// grew) answers exactly as a fresh one: same outputs, same gas.
func TestSnapshotRestore(t *testing.T) {
	ctx := context.Background()
	v, err := New(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close(ctx)
	m, err := v.Compile(ctx, wat.MustCompile(stateWAT))
	if err != nil {
		t.Fatal(err)
	}
	env := &interopEnv{}
	call := func(in *Instance, op string) (g, mem uint32, gas uint64) {
		t.Helper()
		res, err := in.Call(ctx, EntryCommand, []byte(op), env, 1_000_000)
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		return binary.LittleEndian.Uint32(res.Output), binary.LittleEndian.Uint32(res.Output[4:]), res.GasUsed
	}
	fresh, err := v.Instantiate(ctx, m, "", env)
	if err != nil {
		t.Fatal(err)
	}
	wantG, wantMem, wantGas := call(fresh, "i")
	if wantG != 41 || wantMem != 1 {
		t.Fatalf("fresh instance: %d %d", wantG, wantMem)
	}

	in, err := v.Instantiate(ctx, m, "", env)
	if err != nil {
		t.Fatal(err)
	}
	snap, ok := in.Snapshot()
	if !ok {
		t.Fatal("no snapshot of a restorable module")
	}
	for _, tc := range []struct {
		name    string
		before  []string // calls before the restore
		inPlace bool     // Restore succeeds on the instance
	}{
		{"after calls", []string{"i", "i", "i"}, true},
		{"after a trap", []string{"i", "t"}, true},
		{"memory grew", []string{"g"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, op := range tc.before {
				in.Call(ctx, EntryCommand, []byte(op), env, 1_000_000)
			}
			if ok := in.Restore(snap); ok != tc.inPlace {
				t.Fatalf("Restore = %v, want %v", ok, tc.inPlace)
			}
			if !tc.inPlace {
				in.Close(ctx)
				if in, err = v.InstantiateSnapshot(ctx, snap, "", env); err != nil {
					t.Fatal(err)
				}
			}
			if in.Broken() {
				t.Fatal("restored instance is broken")
			}
			if g, mem, gas := call(in, "i"); g != wantG || mem != wantMem || gas != wantGas {
				t.Fatalf("restored: %d %d gas %d, fresh: %d %d gas %d", g, mem, gas, wantG, wantMem, wantGas)
			}
			if size := in.mod.Memory().Size(); size != 65536 {
				t.Fatalf("memory %d bytes, want one page", size)
			}
			in.Restore(snap)
		})
	}

	tm, err := v.Compile(ctx, wat.MustCompile(dropWAT))
	if err != nil {
		t.Fatal(err)
	}
	tin, err := v.Instantiate(ctx, tm, "", env)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tin.Snapshot(); ok {
		t.Fatal("snapshot of a module that drops a segment")
	}
}
