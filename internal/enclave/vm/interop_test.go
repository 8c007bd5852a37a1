package vm

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/phalago/phala/internal/wat"
)

// interopWAT exercises the interoperability imports. Input: an op byte,
// then two little-endian i64 a and b. The 32 bytes at 0 are the receiver
// (or payee), the 5 at 100 the payload.
//
//	'c': call(to, payload, gas a, sealed b) → output the result (i32)
//	'n': a calls of gas 1 → output the last result
//	'p': pay(to, amount a, id b) → output the result
//	's': self and escrow → output their 64 bytes
//
// handle_query runs the same.
const interopWAT = `(module
  (import "phala" "self" (func $self (param i32)))
  (import "phala" "escrow" (func $escrow (param i32)))
  (import "phala" "call" (func $call (param i32 i32 i32 i64 i32) (result i32)))
  (import "phala" "pay" (func $pay (param i32 i64 i64) (result i32)))
  (import "phala" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\07receiver-of-thirty-two-bytes..!")
  (data (i32.const 100) "hello")
  (func (export "phala_alloc") (param i32) (result i32) i32.const 1024)
  (func $dispatch (param $p i32) (param $len i32) (result i32)
    (local $op i32) (local $a i64) (local $b i64) (local $i i64)
    local.get $p i32.load8_u local.set $op
    local.get $p i64.load offset=1 local.set $a
    local.get $p i64.load offset=9 local.set $b
    local.get $op i32.const 99 i32.eq
    if
      i32.const 300
      i32.const 0 i32.const 100 i32.const 5 local.get $a local.get $b i32.wrap_i64
      call $call
      i32.store
    end
    local.get $op i32.const 110 i32.eq
    if
      block $done
        loop $next
          local.get $i local.get $a i64.ge_u br_if $done
          i32.const 300
          i32.const 0 i32.const 100 i32.const 5 i64.const 1 i32.const 0
          call $call
          i32.store
          local.get $i i64.const 1 i64.add local.set $i
          br $next
        end
      end
    end
    local.get $op i32.const 112 i32.eq
    if
      i32.const 300
      i32.const 0 local.get $a local.get $b
      call $pay
      i32.store
    end
    local.get $op i32.const 115 i32.eq
    if
      i32.const 400 call $self
      i32.const 432 call $escrow
      i32.const 400 i32.const 64 call $output
      i32.const 0
      return
    end
    i32.const 300 i32.const 4 call $output
    i32.const 0)
  (func (export "handle_command") (param i32 i32) (result i32) local.get 0 local.get 1 call $dispatch)
  (func (export "handle_query") (param i32 i32) (result i32) local.get 0 local.get 1 call $dispatch))`

type sentCall struct {
	to      [32]byte
	payload string
	gas     uint64
	sealed  bool
}

// interopEnv is a vm.Env that records calls and payouts; known decides
// which receivers take calls.
type interopEnv struct {
	known   map[[32]byte]bool
	calls   []sentCall
	payouts [][3]uint64
}

func (e *interopEnv) Get([]byte) ([]byte, bool) { return nil, false }
func (e *interopEnv) Set(_, _ []byte)           {}
func (e *interopEnv) Remove([]byte)             {}
func (e *interopEnv) Caller() [32]byte          { return [32]byte{9} }
func (e *interopEnv) Height() int64             { return 5 }
func (e *interopEnv) Time() time.Time           { return time.Unix(1_700_000_000, 0) }
func (e *interopEnv) Emit(string, []byte) error { return nil }
func (e *interopEnv) Random(dst []byte)         { clear(dst) }
func (e *interopEnv) Self() [32]byte            { return [32]byte{1, 1} }
func (e *interopEnv) Escrow() [32]byte          { return [32]byte{2, 2} }
func (e *interopEnv) Pay(to [32]byte, amount, id uint64) (bool, error) {
	e.payouts = append(e.payouts, [3]uint64{uint64(to[0]), amount, id})
	return true, nil
}
func (e *interopEnv) Call(to [32]byte, payload []byte, gas uint64, sealed bool) (bool, error) {
	if !e.known[to] {
		return false, nil
	}
	e.calls = append(e.calls, sentCall{to, string(payload), gas, sealed})
	return true, nil
}

func interopInput(op byte, a, b uint64) []byte {
	return binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64([]byte{op}, a), b)
}

// The interoperability host functions: self and escrow; a call queues its
// message with the gas taken out of the caller's limit at once (given back
// if the receiver is refused, out of gas if it has not that much left);
// calls count against the emit limits; pay refuses an amount of zero and
// pRuntime's ids; both trap in queries.
func TestInteropHostFunctions(t *testing.T) {
	ctx := context.Background()
	v, err := New(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close(ctx)
	m, err := v.Compile(ctx, wat.MustCompile(interopWAT))
	if err != nil {
		t.Fatal(err)
	}
	var to [32]byte
	copy(to[:], "\x07receiver-of-thirty-two-bytes..!")
	run := func(env *interopEnv, entry Entry, in []byte, limit uint64) (uint32, uint64, error) {
		t.Helper()
		inst, err := v.Instantiate(ctx, m, "", env)
		if err != nil {
			t.Fatal(err)
		}
		defer inst.Close(ctx)
		res, err := inst.Call(ctx, entry, in, env, limit)
		if err != nil || len(res.Output) != 4 {
			return 0, res.GasUsed, err
		}
		return binary.LittleEndian.Uint32(res.Output), res.GasUsed, nil
	}
	known := func() *interopEnv { return &interopEnv{known: map[[32]byte]bool{to: true}} }

	// self and escrow
	inst, _ := v.Instantiate(ctx, m, "", known())
	res, err := inst.Call(ctx, EntryCommand, interopInput('s', 0, 0), known(), 1_000_000)
	if err != nil || res.Output[0] != 1 || res.Output[1] != 1 || res.Output[32] != 2 || res.Output[33] != 2 {
		t.Fatalf("self, escrow: %x %v", res.Output, err)
	}
	inst.Close(ctx)

	// A call: queued with its payload, gas and sealing; the gas used grows
	// by exactly the gas forwarded.
	env := known()
	ret, used1, err := run(env, EntryCommand, interopInput('c', 1, 0), 10_000_000)
	if err != nil || ret != 0 || len(env.calls) != 1 || env.calls[0] != (sentCall{to, "hello", 1, false}) {
		t.Fatalf("call: %d %v %+v", ret, err, env.calls)
	}
	env = known()
	ret, usedBig, err := run(env, EntryCommand, interopInput('c', 3_000_001, 1), 10_000_000)
	if err != nil || ret != 0 || len(env.calls) != 1 || !env.calls[0].sealed || env.calls[0].gas != 3_000_001 {
		t.Fatalf("sealed call: %d %v %+v", ret, err, env.calls)
	}
	if usedBig-used1 != 3_000_000+gasSealCall {
		t.Fatalf("gas used %d with 3,000,001 forwarded (sealed), %d with 1: the difference is not the gas forwarded plus sealing", usedBig, used1)
	}
	// Refused: an unknown receiver, or no gas; the gas comes back.
	env = &interopEnv{}
	ret, usedRefused, err := run(env, EntryCommand, interopInput('c', 3_000_000, 0), 10_000_000)
	if err != nil || ret != 1 || len(env.calls) != 0 || usedRefused >= used1 {
		t.Fatalf("call to an unknown receiver: %d %v %+v, gas used %d (accepted with 1 forwarded: %d)", ret, err, env.calls, usedRefused, used1)
	}
	if ret, _, err := run(known(), EntryCommand, interopInput('c', 0, 0), 10_000_000); err != nil || ret != 1 {
		t.Fatalf("call with no gas: %d %v", ret, err)
	}
	// More gas than the call has left: out of gas, nothing queued.
	env = known()
	if _, _, err := run(env, EntryCommand, interopInput('c', 20_000_000, 0), 10_000_000); !errors.Is(err, ErrOutOfGas) || len(env.calls) != 0 {
		t.Fatalf("forwarding more than the limit: %v %+v", err, env.calls)
	}
	// Calls count against the per-call message limit.
	env = known()
	if ret, _, err := run(env, EntryCommand, interopInput('n', MaxEmitsPerCall, 0), 10_000_000); err != nil || ret != 0 || len(env.calls) != MaxEmitsPerCall {
		t.Fatalf("%d calls: %d %v", MaxEmitsPerCall, ret, err)
	}
	if _, _, err := run(known(), EntryCommand, interopInput('n', MaxEmitsPerCall+1, 0), 10_000_000); !errors.Is(err, ErrEmitLimit) {
		t.Fatalf("%d calls: %v", MaxEmitsPerCall+1, err)
	}
	// pay
	env = known()
	if ret, _, err := run(env, EntryCommand, interopInput('p', 250, 7), 10_000_000); err != nil || ret != 0 || len(env.payouts) != 1 || env.payouts[0] != [3]uint64{7, 250, 7} {
		t.Fatalf("pay: %d %v %+v", ret, err, env.payouts)
	}
	for _, in := range [][2]uint64{{0, 8}, {5, RefundIDBase}, {5, 1<<64 - 1}} {
		env = known()
		if ret, _, err := run(env, EntryCommand, interopInput('p', in[0], in[1]), 10_000_000); err != nil || ret != 1 || len(env.payouts) != 0 {
			t.Fatalf("pay %v: %d %v", in, ret, err)
		}
	}
	// Queries can neither call nor pay.
	for _, op := range []byte{'c', 'p'} {
		env = known()
		if _, _, err := run(env, EntryQuery, interopInput(op, 5, 1), 10_000_000); !errors.Is(err, ErrReadOnly) || len(env.calls)+len(env.payouts) != 0 {
			t.Fatalf("%c from a query: %v", op, err)
		}
	}
	// handle_event is optional: absent, a call to it fails cleanly.
	inst, _ = v.Instantiate(ctx, m, "", known())
	defer inst.Close(ctx)
	if _, err := inst.Call(ctx, EntryEvent, nil, known(), 1_000_000); !errors.Is(err, ErrBadModule) || inst.Broken() {
		t.Fatalf("handle_event absent: %v", err)
	}
}
