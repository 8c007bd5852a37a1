package contracts_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/vm"
	"github.com/phalago/phala/internal/wat"
)

// A contract written by hand in WebAssembly text runs against the same ABI
// as Go contracts: the ABI is not Go-specific.
func TestHandWrittenWATContract(t *testing.T) {
	src, err := os.ReadFile("testdata/counter.wat")
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := wat.Compile(string(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, interp := range []bool{false, true} {
		ctx := context.Background()
		v, err := vm.New(ctx, vm.Config{Interpreter: interp})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close(ctx)
		m, err := v.Compile(ctx, wasm)
		if err != nil {
			t.Fatal(err)
		}
		k, _ := keys.ContractKeysFromSeed(sha256.Sum256([]byte("wat")))
		c, _ := contracts.New(ctx, v, k, m)
		var gasUsed []uint64
		for i := uint64(1); i <= 3; i++ {
			res, err := c.Command(ctx, alice.Public(), []byte("inc"), int64(i), t0)
			if err != nil {
				t.Fatal(err)
			}
			if got := binary.LittleEndian.Uint64(res.Output); got != i {
				t.Fatalf("inc %d: got %d", i, got)
			}
			gasUsed = append(gasUsed, res.GasUsed)
		}
		if gasUsed[1] != gasUsed[2] || gasUsed[1] == 0 {
			t.Fatalf("gas per increment: %v", gasUsed)
		}
		root := c.StateRoot()
		if _, err := c.Command(ctx, alice.Public(), []byte("trap"), 4, t0); !errors.Is(err, vm.ErrTrap) {
			t.Fatalf("trap: %v", err)
		}
		if res, err := c.Command(ctx, alice.Public(), []byte("what"), 4, t0); !errors.Is(err, vm.ErrFailed) || string(res.Output) != "unknown command" {
			t.Fatalf("unknown: %v %q", err, res.Output)
		}
		if _, err := c.Query(ctx, alice.Public(), []byte("write"), 4, t0); !errors.Is(err, vm.ErrReadOnly) {
			t.Fatalf("query write: %v", err)
		}
		if c.StateRoot() != root {
			t.Fatal("a trap or a refused write changed the state")
		}
		res, err := c.Query(ctx, alice.Public(), nil, 4, t0)
		if err != nil || binary.LittleEndian.Uint64(res.Output) != 3 {
			t.Fatalf("query: %v %x", err, res.Output)
		}
	}
}

// Modules that do not implement the ABI are refused at compile time.
func TestABIChecked(t *testing.T) {
	ctx := context.Background()
	v, _ := vm.New(ctx, vm.Config{})
	defer v.Close(ctx)
	for name, src := range map[string]string{
		"no exports":     `(module (memory (export "memory") 1))`,
		"foreign import": `(module (import "env" "x" (func)) (memory (export "memory") 1) (func (export "phala_alloc") (param i32) (result i32) i32.const 0) (func (export "handle_command") (param i32 i32) (result i32) i32.const 0) (func (export "handle_query") (param i32 i32) (result i32) i32.const 0))`,
		"no memory":      `(module (func (export "phala_alloc") (param i32) (result i32) i32.const 0) (func (export "handle_command") (param i32 i32) (result i32) i32.const 0) (func (export "handle_query") (param i32 i32) (result i32) i32.const 0))`,
	} {
		if _, err := v.Compile(ctx, wat.MustCompile(src)); !errors.Is(err, vm.ErrBadModule) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := v.Compile(ctx, []byte("not wasm")); !errors.Is(err, vm.ErrBadModule) {
		t.Error("garbage accepted")
	}
}
