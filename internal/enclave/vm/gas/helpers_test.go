package gas

import (
	"context"
	"encoding/binary"
	"math"
	"testing"

	wbin "github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/leb128"
	"github.com/tetratelabs/wabin/wasm"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Test modules are built from wabin's wasm.Module structs and encoded with
// wabin's binary.EncodeModule (there is no WAT parser in the module graph).

var engines = []struct {
	name   string
	config func() wazero.RuntimeConfig
}{
	{"compiler", wazero.NewRuntimeConfigCompiler},
	{"interpreter", wazero.NewRuntimeConfigInterpreter},
}

// code concatenates instruction bytes.
func code(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func op(b ...byte) []byte { return b }

func u32(v uint32) []byte { return leb128.EncodeUint32(v) }

func i32c(v int32) []byte { return append([]byte{opI32Const}, leb128.EncodeInt32(v)...) }

func i64c(v int64) []byte { return append([]byte{opI64Const}, leb128.EncodeInt64(v)...) }

func f32c(v float32) []byte {
	return binary.LittleEndian.AppendUint32([]byte{opF32Const}, math.Float32bits(v))
}

func f64c(v float64) []byte {
	return binary.LittleEndian.AppendUint64([]byte{opF64Const}, math.Float64bits(v))
}

func lget(i uint32) []byte { return append([]byte{opLocalGet}, u32(i)...) }
func lset(i uint32) []byte { return append([]byte{opLocalSet}, u32(i)...) }
func ltee(i uint32) []byte { return append([]byte{opLocalTee}, u32(i)...) }
func gget(i uint32) []byte { return append([]byte{opGlobalGet}, u32(i)...) }
func gset(i uint32) []byte { return append([]byte{opGlobalSet}, u32(i)...) }
func call(i uint32) []byte { return append([]byte{opCall}, u32(i)...) }
func br(d uint32) []byte   { return append([]byte{opBr}, u32(d)...) }
func brIf(d uint32) []byte { return append([]byte{opBrIf}, u32(d)...) }
func block(bt byte) []byte { return []byte{opBlock, bt} }
func loop(bt byte) []byte  { return []byte{opLoop, bt} }
func ifOp(bt byte) []byte  { return []byte{opIf, bt} }
func end() []byte          { return []byte{opEnd} }
func constI32(v int32) *wasm.ConstantExpression {
	return &wasm.ConstantExpression{Opcode: wasm.OpcodeI32Const, Data: leb128.EncodeInt32(v)}
}

const (
	i32 = wasm.ValueTypeI32
	i64 = wasm.ValueTypeI64
	bt0 = blockTypeEmpty
)

// sumBody computes 1+2+...+n as i64 for the i32 parameter n:
//
//	(local $acc i64) (local $i i32)
//	i = 1
//	block loop
//	  br_if 1 (i > n)
//	  acc += i; i++; br 0
//	end end
//	acc
func sumBody() []byte {
	return code(
		i32c(1), lset(2),
		block(bt0), loop(bt0),
		lget(2), lget(0), op(0x4b /* i32.gt_u */), brIf(1),
		lget(1), lget(2), op(opI64ExtendU, opI64Add), lset(1),
		lget(2), i32c(1), op(0x6a /* i32.add */), lset(2),
		br(0),
		end(), end(),
		lget(1),
		end(),
	)
}

// sumGas is the gas sum(n) uses under DefaultSchedule, derived by hand from
// the segments of sumBody: entry [i32.const local.set block] 2, the loop
// test [local.get local.get i32.gt_u br_if] 4 per iteration and once more,
// the loop body 10 per iteration, the tail [local.get end] 1.
func sumGas(n uint64) uint64 { return 7 + 14*n }

// loopModule exports spin (an infinite loop) and sum.
func loopModule() *wasm.Module {
	return &wasm.Module{
		TypeSection: []*wasm.FunctionType{
			{},
			{Params: []wasm.ValueType{i32}, Results: []wasm.ValueType{i64}},
		},
		FunctionSection: []wasm.Index{0, 1},
		CodeSection: []*wasm.Code{
			{Body: code(loop(bt0), br(0), end(), end())},
			{LocalTypes: []wasm.ValueType{i64, i32}, Body: sumBody()},
		},
		ExportSection: []*wasm.Export{
			{Type: wasm.ExternTypeFunc, Name: "spin", Index: 0},
			{Type: wasm.ExternTypeFunc, Name: "sum", Index: 1},
		},
	}
}

// opsModule exercises many opcodes, memory, a table, globals and data.
// Functions: 0 spin, 1 sum, 2 grow(pages), 3 fill(n), 4 mix(x), 5 inc, 6 dbl.
func opsModule() *wasm.Module {
	const (
		tVoid = iota
		tI32I64
		tI32I32
	)
	five, six := wasm.Index(5), wasm.Index(6)
	max := uint32(2)
	mix := code(
		// if x == 999999 { return 42 }
		lget(0), i32c(999999), op(0x46 /* i32.eq */), ifOp(bt0), i32c(42), op(opReturn), end(),
		block(i32),
		// y = (x*3+7) % 1000; drop y/2
		lget(0), i32c(3), op(0x6c), i32c(7), op(0x6a), i32c(1000), op(0x70 /* i32.rem_u */),
		ltee(1), i32c(2), op(0x6d /* i32.div_s */), op(opDrop),
		// mem[16] = y; push mem[16]
		i32c(0), lget(1), op(0x36, 0x02, 0x10),
		i32c(0), op(0x28, 0x02, 0x10),
		// + (y odd ? 100 : 200)
		lget(1), i32c(1), op(0x71), ifOp(i32), i32c(100), op(opElse), i32c(200), end(), op(0x6a),
		// v = x > 5 ? v : v+1
		ltee(1), lget(1), i32c(1), op(0x6a), lget(0), i32c(5), op(0x4a /* i32.gt_s */), op(opSelect),
		// typed select keeps it
		i32c(0), i32c(1), op(opSelectT, 0x01, i32),
		// + (extend8_s(0x80) + 128) == 0
		i32c(0x80), op(0xc0), i32c(128), op(0x6a), op(0x6a),
		// + trunc_sat_f64_s(1e10) - MaxInt32 == 0, + trunc_sat_f32_u(-1.5) == 0
		f64c(1e10), op(opMiscPrefix, 0x02), i32c(math.MaxInt32), op(0x6b), op(0x6a),
		f32c(-1.5), op(opMiscPrefix, 0x01), op(0x6a),
		// + wrap(extend32_s(-5) + 5) == 0, i64.div_s for coverage
		i64c(-5), op(opI64Extend32S), i64c(5), op(opI64Add), i64c(7), op(0x7f /* i64.div_s */),
		op(0xa7 /* i32.wrap_i64 */), op(0x6a),
		// global += 1; + global
		gget(0), i32c(1), op(0x6a), gset(0), gget(0), op(0x6a),
		// + table[x&1](x)
		lget(0), lget(0), i32c(1), op(0x71), op(opCallIndirect), u32(tI32I32), u32(0), op(0x6a),
		// + switch x%3 {0: 1000, 1: 2000, default: 3000}
		block(i32), block(bt0), block(bt0), block(bt0),
		lget(0), i32c(3), op(0x70), op(opBrTable, 2, 0, 1, 2),
		end(), i32c(1000), br(2),
		end(), i32c(2000), br(1),
		end(), i32c(3000),
		end(), op(0x6a),
		// acc = that; 4 times acc += memory.size
		lset(2), i32c(4), lset(1),
		loop(bt0),
		lget(2), op(opMemorySize, 0), op(0x6a), lset(2),
		lget(1), i32c(1), op(0x6b), ltee(1), brIf(0),
		end(),
		lget(2), op(opNop), call(5), br(0),
		i32c(77), op(opDrop), // unreachable code
		end(),
		end(),
	)
	return &wasm.Module{
		TypeSection: []*wasm.FunctionType{
			{},
			{Params: []wasm.ValueType{i32}, Results: []wasm.ValueType{i64}},
			{Params: []wasm.ValueType{i32}, Results: []wasm.ValueType{i32}},
		},
		FunctionSection: []wasm.Index{tVoid, tI32I64, tI32I32, tI32I32, tI32I32, tI32I32, tI32I32},
		TableSection:    []*wasm.Table{{Min: 2, Max: &max, Type: wasm.RefTypeFuncref}},
		MemorySection:   &wasm.Memory{Min: 1, Max: 10, IsMaxEncoded: true},
		GlobalSection: []*wasm.Global{
			{Type: &wasm.GlobalType{ValType: i32, Mutable: true}, Init: constI32(0)},
		},
		ExportSection: []*wasm.Export{
			{Type: wasm.ExternTypeFunc, Name: "spin", Index: 0},
			{Type: wasm.ExternTypeFunc, Name: "sum", Index: 1},
			{Type: wasm.ExternTypeFunc, Name: "grow", Index: 2},
			{Type: wasm.ExternTypeFunc, Name: "fill", Index: 3},
			{Type: wasm.ExternTypeFunc, Name: "mix", Index: 4},
			{Type: wasm.ExternTypeMemory, Name: "memory", Index: 0},
		},
		ElementSection: []*wasm.ElementSegment{{
			OffsetExpr: constI32(0), Init: []*wasm.Index{&five, &six},
			Type: wasm.RefTypeFuncref, Mode: wasm.ElementModeActive,
		}},
		CodeSection: []*wasm.Code{
			{Body: code(loop(bt0), br(0), end(), end())},
			{LocalTypes: []wasm.ValueType{i64, i32}, Body: sumBody()},
			// grow: memory.grow(pages)
			{Body: code(lget(0), op(opMemoryGrow, 0), end())},
			// fill: memory.fill(0, 7, n); memory.copy(1000, 0, n); load8_u(1000)
			{Body: code(
				i32c(0), i32c(7), lget(0), op(opMiscPrefix, 11, 0),
				i32c(1000), i32c(0), lget(0), op(opMiscPrefix, 10, 0, 0),
				i32c(1000), op(0x2d, 0, 0),
				end())},
			{LocalTypes: []wasm.ValueType{i32, i32}, Body: mix},
			{Body: code(lget(0), i32c(1), op(0x6a), end())},
			{Body: code(lget(0), i32c(2), op(0x6c), end())},
		},
		DataSection: []*wasm.DataSegment{{OffsetExpression: constI32(100), Init: []byte("hello")}},
	}
}

func encode(m *wasm.Module) []byte { return wbin.EncodeModule(m) }

func instrument(t testing.TB, bin []byte) []byte {
	t.Helper()
	out, err := Instrument(bin, DefaultSchedule())
	if err != nil {
		t.Fatalf("Instrument: %v", err)
	}
	return out
}

// instance compiles and instantiates bin in a fresh runtime; the runtime is
// closed at the end of the test.
func instance(t testing.TB, config wazero.RuntimeConfig, bin []byte) api.Module {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, config)
	t.Cleanup(func() { r.Close(ctx) })
	mod, err := r.Instantiate(ctx, bin)
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	return mod
}

// meteredCall sets the gas limit, calls fn and returns its results, the gas
// used and the error.
func meteredCall(mod api.Module, limit uint64, fn string, args ...uint64) ([]uint64, uint64, error) {
	SetRemaining(mod, limit)
	res, err := mod.ExportedFunction(fn).Call(context.Background(), args...)
	left, _ := Remaining(mod)
	if left == Exhausted {
		return res, limit, err
	}
	return res, limit - left, err
}

// indexModule imports host.add, env.g (an i32 global) and host.ten, and
// defines globals g1 (i32 100) and g2 (i64 5) and functions five, run, bump.
func indexModule() *wasm.Module {
	return &wasm.Module{
		TypeSection: []*wasm.FunctionType{
			{Params: []wasm.ValueType{i32, i32}, Results: []wasm.ValueType{i32}},
			{Results: []wasm.ValueType{i32}},
			{Results: []wasm.ValueType{i64}},
		},
		ImportSection: []*wasm.Import{
			{Type: wasm.ExternTypeFunc, Module: "host", Name: "add", DescFunc: 0},
			{Type: wasm.ExternTypeGlobal, Module: "env", Name: "g", DescGlobal: &wasm.GlobalType{ValType: i32}},
			{Type: wasm.ExternTypeFunc, Module: "host", Name: "ten", DescFunc: 1},
		},
		// Function indices: 0 host.add, 1 host.ten, 2 five, 3 run, 4 bump.
		FunctionSection: []wasm.Index{1, 1, 2},
		// Global indices: 0 env.g, 1 g1 = 100, 2 g2 = 5, 3 = gas.
		GlobalSection: []*wasm.Global{
			{Type: &wasm.GlobalType{ValType: i32, Mutable: true}, Init: constI32(100)},
			{Type: &wasm.GlobalType{ValType: i64, Mutable: true}, Init: &wasm.ConstantExpression{Opcode: wasm.OpcodeI64Const, Data: []byte{5}}},
		},
		ExportSection: []*wasm.Export{
			{Type: wasm.ExternTypeFunc, Name: "run", Index: 3},
			{Type: wasm.ExternTypeFunc, Name: "bump", Index: 4},
			{Type: wasm.ExternTypeGlobal, Name: "g1", Index: 1},
			{Type: wasm.ExternTypeGlobal, Name: "g2", Index: 2},
		},
		CodeSection: []*wasm.Code{
			{Body: code(i32c(5), end())},
			// run: add(env.g, g1) + five() + ten() = 7+100+5+10
			{Body: code(gget(0), gget(1), call(0), call(2), op(0x6a), call(1), op(0x6a), end())},
			// bump: g2 += 1; g2
			{Body: code(gget(2), i64c(1), op(opI64Add), gset(2), gget(2), end())},
		},
	}
}
