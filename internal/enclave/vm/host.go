package vm

import (
	"context"
	"fmt"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	papi "github.com/phalago/phala/api"
	"github.com/phalago/phala/internal/enclave/vm/gas"
)

const hostModule = "phala"

// Host function gas costs (on top of the instrumented instructions).
const (
	gasHostCall  = 100
	gasPerByte   = 1
	gasStorageIO = 1_000
	// gasSealCall: a sealed call's key agreement and encryption set-up
	// (an ECDH on ristretto255, about 60 µs).
	gasSealCall = 100_000
)

var i32, i64 = api.ValueTypeI32, api.ValueTypeI64

func state(ctx context.Context) *callState { return ctx.Value(ctxKey{}).(*callState) }

// abort stops the call with err: the trap unwinds the guest, Call reports err.
func abort(cs *callState, err error) {
	if cs.err == nil {
		cs.err = err
	}
	panic(err)
}

// read copies guest memory (a view would change under us).
func read(cs *callState, m api.Module, ptr, n uint32, max int) []byte {
	if int(n) > max {
		abort(cs, fmt.Errorf("%w: %d bytes over the limit %d", ErrTrap, n, max))
	}
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		abort(cs, fmt.Errorf("%w: read outside memory", ErrTrap))
	}
	return append([]byte(nil), b...)
}

func write(cs *callState, m api.Module, ptr uint32, b []byte) {
	if !m.Memory().Write(ptr, b) {
		abort(cs, fmt.Errorf("%w: write outside memory", ErrTrap))
	}
}

// charge takes host-function gas from the instance's counter; if it does
// not fit, the call aborts out of gas. Unmetered instances (a measurement
// configuration) are not charged.
func charge(cs *callState, m api.Module, cost uint64) {
	g := cs.gas
	if g == nil { // the start function, or unmetered
		if g = gas.Counter(m); g == nil {
			return
		}
	}
	if !gas.ChargeCounter(g, cost) {
		abort(cs, ErrOutOfGas)
	}
}

// queueing checks that one more message of n bytes (topic plus payload)
// fits in the call's emit limits (MaxEmitsPerCall, MaxEmitBytesPerCall),
// aborting the call if not; queued counts it.
func queueing(cs *callState, n int) {
	if cs.emits+1 > MaxEmitsPerCall {
		abort(cs, fmt.Errorf("%w: more than %d messages in one call", ErrEmitLimit, MaxEmitsPerCall))
	}
	if cs.emitBytes+n > MaxEmitBytesPerCall {
		abort(cs, fmt.Errorf("%w: more than %d bytes of messages in one call", ErrEmitLimit, MaxEmitBytesPerCall))
	}
}

func queued(cs *callState, n int) { cs.emits++; cs.emitBytes += n }

func writable(cs *callState) {
	if cs.readOnly {
		abort(cs, ErrReadOnly)
	}
}

func instantiateHost(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(hostModule)
	fn := func(name string, f api.GoModuleFunc, params, results []api.ValueType) {
		b.NewFunctionBuilder().WithGoModuleFunction(f, params, results).Export(name)
	}
	fn("storage_get", func(ctx context.Context, m api.Module, s []uint64) {
		cs := state(ctx)
		key := read(cs, m, uint32(s[0]), uint32(s[1]), MaxKeyBytes)
		charge(cs, m, gasStorageIO+gasPerByte*uint64(len(key)))
		val, ok := cs.env.Get(key)
		if !ok {
			s[0] = api.EncodeI32(-1)
			return
		}
		charge(cs, m, gasPerByte*uint64(len(val)))
		if uint32(len(val)) <= uint32(s[3]) {
			write(cs, m, uint32(s[2]), val)
		}
		s[0] = api.EncodeI32(int32(len(val)))
	}, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32})
	fn("storage_set", func(ctx context.Context, m api.Module, s []uint64) {
		cs := state(ctx)
		writable(cs)
		key := read(cs, m, uint32(s[0]), uint32(s[1]), MaxKeyBytes)
		val := read(cs, m, uint32(s[2]), uint32(s[3]), MaxValueBytes)
		charge(cs, m, 2*gasStorageIO+gasPerByte*uint64(len(key)+len(val)))
		cs.env.Set(key, val)
	}, []api.ValueType{i32, i32, i32, i32}, nil)
	fn("storage_remove", func(ctx context.Context, m api.Module, s []uint64) {
		cs := state(ctx)
		writable(cs)
		key := read(cs, m, uint32(s[0]), uint32(s[1]), MaxKeyBytes)
		charge(cs, m, gasStorageIO+gasPerByte*uint64(len(key)))
		cs.env.Remove(key)
	}, []api.ValueType{i32, i32}, nil)
	fn("caller", func(ctx context.Context, m api.Module, s []uint64) {
		cs := state(ctx)
		charge(cs, m, gasHostCall)
		c := cs.env.Caller()
		write(cs, m, uint32(s[0]), c[:])
	}, []api.ValueType{i32}, nil)
	fn("block_height", func(ctx context.Context, m api.Module, s []uint64) {
		cs := state(ctx)
		charge(cs, m, gasHostCall)
		s[0] = uint64(cs.env.Height())
	}, nil, []api.ValueType{i64})
	fn("block_time", func(ctx context.Context, m api.Module, s []uint64) {
		cs := state(ctx)
		charge(cs, m, gasHostCall)
		s[0] = uint64(cs.env.Time().UnixNano())
	}, nil, []api.ValueType{i64})
	fn("emit", func(ctx context.Context, m api.Module, s []uint64) {
		cs := state(ctx)
		writable(cs)
		topic := read(cs, m, uint32(s[0]), uint32(s[1]), MaxTopicBytes)
		payload := read(cs, m, uint32(s[2]), uint32(s[3]), MaxValueBytes)
		charge(cs, m, gasStorageIO+gasPerByte*uint64(len(topic)+len(payload)))
		// Per-call bounds, checked before the message is queued: the
		// call fails (writes reverted, emits dropped) on every replica.
		queueing(cs, len(topic)+len(payload))
		queued(cs, len(topic)+len(payload))
		if err := cs.env.Emit(string(topic), payload); err != nil {
			abort(cs, err)
		}
	}, []api.ValueType{i32, i32, i32, i32}, nil)
	fn("self", func(ctx context.Context, m api.Module, s []uint64) {
		cs := state(ctx)
		charge(cs, m, gasHostCall)
		a := cs.env.Self()
		write(cs, m, uint32(s[0]), a[:])
	}, []api.ValueType{i32}, nil)
	fn("escrow", func(ctx context.Context, m api.Module, s []uint64) {
		cs := state(ctx)
		charge(cs, m, gasHostCall)
		a := cs.env.Escrow()
		write(cs, m, uint32(s[0]), a[:])
	}, []api.ValueType{i32}, nil)
	// call(to_ptr, payload_ptr, payload_len i32, gas i64, sealed i32) -> i32
	fn("call", func(ctx context.Context, m api.Module, s []uint64) {
		cs := state(ctx)
		writable(cs)
		var to [32]byte
		copy(to[:], read(cs, m, uint32(s[0]), 32, 32))
		payload := read(cs, m, uint32(s[1]), uint32(s[2]), MaxCallPayloadBytes)
		fwd, sealed := s[3], uint32(s[4]) != 0
		cost := gasStorageIO + gasPerByte*uint64(len(payload))
		if sealed {
			cost += gasSealCall
		}
		charge(cs, m, cost)
		n := len(papi.TopicContractCall) + len(payload) + callOverhead
		queueing(cs, n)
		if fwd == 0 {
			s[0] = api.EncodeI32(1)
			return
		}
		// The forwarded gas leaves this call now (out of gas if it has
		// not that much left); a refused call gets it back.
		charge(cs, m, fwd)
		ok, err := cs.env.Call(to, payload, fwd, sealed)
		if err != nil {
			abort(cs, err)
		}
		if !ok {
			if r, metered := gas.Remaining(m); metered {
				gas.SetRemaining(m, r+fwd)
			}
			s[0] = api.EncodeI32(1)
			return
		}
		queued(cs, n)
		s[0] = 0
	}, []api.ValueType{i32, i32, i32, i64, i32}, []api.ValueType{i32})
	// pay(to_ptr i32, amount i64, id i64) -> i32
	fn("pay", func(ctx context.Context, m api.Module, s []uint64) {
		cs := state(ctx)
		writable(cs)
		var to [32]byte
		copy(to[:], read(cs, m, uint32(s[0]), 32, 32))
		amount, id := s[1], s[2]
		charge(cs, m, gasStorageIO)
		n := len(papi.TopicPayout) + payOverhead
		queueing(cs, n)
		if amount == 0 || id >= RefundIDBase {
			s[0] = api.EncodeI32(1)
			return
		}
		ok, err := cs.env.Pay(to, amount, id)
		if err != nil {
			abort(cs, err)
		}
		if !ok {
			s[0] = api.EncodeI32(1)
			return
		}
		queued(cs, n)
		s[0] = 0
	}, []api.ValueType{i32, i64, i64}, []api.ValueType{i32})
	fn("random", func(ctx context.Context, m api.Module, s []uint64) {
		cs := state(ctx)
		n := uint32(s[1])
		if n > 1<<16 {
			abort(cs, fmt.Errorf("%w: random of %d bytes", ErrTrap, n))
		}
		charge(cs, m, gasHostCall+gasPerByte*uint64(n))
		b := make([]byte, n)
		cs.env.Random(b)
		write(cs, m, uint32(s[0]), b)
	}, []api.ValueType{i32, i32}, nil)
	fn("output", func(ctx context.Context, m api.Module, s []uint64) {
		cs := state(ctx)
		out := read(cs, m, uint32(s[0]), uint32(s[1]), MaxOutputBytes)
		charge(cs, m, gasHostCall+gasPerByte*uint64(len(out)))
		cs.output = out
	}, []api.ValueType{i32, i32}, nil)
	_, err := b.Instantiate(ctx)
	return err
}
