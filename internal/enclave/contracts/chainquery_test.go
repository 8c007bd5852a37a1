package contracts_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/vm"
	"github.com/phalago/phala/internal/wat"
)

// instanceCounter answers every query with how many queries its instance
// has answered: state that lives in the instance, not in the store.
const instanceCounter = `(module
  (import "phala" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)
  (global $calls (mut i32) (i32.const 0))
  (func (export "phala_alloc") (param i32) (result i32) i32.const 1024)
  (func (export "handle_command") (param i32 i32) (result i32) i32.const 0)
  (func (export "handle_query") (param i32 i32) (result i32)
    global.get $calls
    i32.const 1
    i32.add
    global.set $calls
    i32.const 0
    global.get $calls
    i32.store
    i32.const 0
    i32.const 4
    call $output
    i32.const 0))`

// A query the chain ordered gets the same answer on every replica, however
// many off-chain queries each replica's pooled instances served before:
// it runs on a fresh instance. (Its size counts against the contract's
// egress budget, which must be a function of the chain.)
func TestChainQueryIgnoresInstanceState(t *testing.T) {
	ctx := context.Background()
	wasm, err := wat.Compile(instanceCounter)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vm.New(ctx, vm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close(ctx)
	m, err := v.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := keys.ContractKeysFromSeed(sha256.Sum256([]byte("instance state")))
	busy, _ := contracts.New(ctx, v, k, m)
	idle, _ := contracts.New(ctx, v, k, m)
	// The busy replica serves off-chain queries, which reuse an instance.
	var last uint32
	for range 3 {
		res, err := busy.QueryView(ctx, busy.View(), alice.Public(), nil, 1, t0, 0)
		if err != nil {
			t.Fatal(err)
		}
		last = binary.LittleEndian.Uint32(res.Output)
	}
	if last < 2 {
		t.Fatalf("pooled instances kept no state (%d): the test proves nothing", last)
	}
	var answers []uint32
	for _, c := range []*contracts.Contract{busy, idle} {
		res, err := c.ChainQuery(ctx, alice.Public(), nil, 1, t0)
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, binary.LittleEndian.Uint32(res.Output))
	}
	if answers[0] != answers[1] || answers[0] != 1 {
		t.Fatalf("replicas answered the chain's query %v", answers)
	}
}
