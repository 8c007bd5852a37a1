package gas

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	wbin "github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/wasm"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

func TestInfiniteLoopRunsOutOfGas(t *testing.T) {
	bin := instrument(t, encode(loopModule()))
	const limit = 10_000
	type outcome struct {
		err       string
		remaining uint64
	}
	var first *outcome
	for _, e := range engines {
		for run := 0; run < 3; run++ {
			mod := instance(t, e.config(), bin)
			_, _, err := meteredCall(mod, limit, "spin")
			if err == nil {
				t.Fatalf("%s run %d: spin returned without error", e.name, run)
			}
			if !IsExhausted(mod) {
				t.Fatalf("%s run %d: trap %v but not exhausted", e.name, run, err)
			}
			left, ok := Remaining(mod)
			got := outcome{err: err.Error(), remaining: left}
			if !ok || left != Exhausted {
				t.Fatalf("%s run %d: remaining = %d, %v; want Exhausted", e.name, run, left, ok)
			}
			if !strings.Contains(got.err, "unreachable") {
				t.Fatalf("%s run %d: error %q is not the unreachable trap", e.name, run, got.err)
			}
			// Wazero's error text includes a stack trace that names the
			// same functions on both engines.
			if first == nil {
				first = &got
			} else if got != *first {
				t.Fatalf("%s run %d: outcome %+v differs from the first %+v", e.name, run, got, *first)
			}

			// The sentinel is sticky: calling again without new gas traps
			// at once, and new gas runs out again.
			if _, err := mod.ExportedFunction("spin").Call(context.Background()); err == nil || !IsExhausted(mod) {
				t.Fatalf("%s: exhausted instance ran on: %v", e.name, err)
			}
			if _, err := mod.ExportedFunction("sum").Call(context.Background(), 3); err == nil || !IsExhausted(mod) {
				t.Fatalf("%s: exhausted instance ran sum: %v", e.name, err)
			}
			if _, _, err := meteredCall(mod, 5, "spin"); err == nil || !IsExhausted(mod) {
				t.Fatalf("%s: recharged spin did not run out: %v", e.name, err)
			}
		}
	}
}

func TestSumSameResultAndLinearGas(t *testing.T) {
	plain := encode(loopModule())
	metered := instrument(t, plain)
	ns := []uint64{0, 1, 2, 10, 100, 1000, 10_000}
	gasByEngine := map[string][]uint64{}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			pm := instance(t, e.config(), plain)
			mm := instance(t, e.config(), metered)
			for _, n := range ns {
				want, err := pm.ExportedFunction("sum").Call(context.Background(), n)
				if err != nil {
					t.Fatal(err)
				}
				got, used, err := meteredCall(mm, 1<<40, "sum", n)
				if err != nil {
					t.Fatalf("sum(%d): %v", n, err)
				}
				if got[0] != want[0] || want[0] != n*(n+1)/2 {
					t.Fatalf("sum(%d) = %d metered, %d plain; want %d", n, got[0], want[0], n*(n+1)/2)
				}
				if used != sumGas(n) {
					t.Errorf("sum(%d) used %d gas, want %d", n, used, sumGas(n))
				}
				gasByEngine[e.name] = append(gasByEngine[e.name], used)

				// Exactly enough gas suffices; one less runs out.
				if _, _, err := meteredCall(mm, sumGas(n), "sum", n); err != nil {
					t.Fatalf("sum(%d) with exactly %d gas: %v", n, sumGas(n), err)
				}
				if left, _ := Remaining(mm); left != 0 {
					t.Fatalf("sum(%d) with exact gas left %d", n, left)
				}
				if _, _, err := meteredCall(mm, sumGas(n)-1, "sum", n); err == nil || !IsExhausted(mm) {
					t.Fatalf("sum(%d) with %d gas: err %v, exhausted %v", n, sumGas(n)-1, err, IsExhausted(mm))
				}
			}
		})
	}
	c, i := gasByEngine["compiler"], gasByEngine["interpreter"]
	if len(c) != len(ns) || len(i) != len(ns) {
		t.Fatal("an engine did not finish")
	}
	for k := range ns {
		if c[k] != i[k] {
			t.Errorf("sum(%d): compiler used %d gas, interpreter %d", ns[k], c[k], i[k])
		}
	}
	t.Logf("gas used by sum(n), n=%v: %v (7 + 14n)", ns, c)
}

func TestOpsSameResultsAndGasOnBothEngines(t *testing.T) {
	plain := encode(opsModule())
	metered := instrument(t, plain)
	type call struct {
		fn   string
		args []uint64
	}
	var calls []call
	for _, x := range []uint64{0, 1, 2, 3, 4, 5, 6, 7, 100, 999, 999999, 123456} {
		calls = append(calls, call{"mix", []uint64{x}})
	}
	for _, n := range []uint64{0, 1, 63, 64, 65, 4096} {
		calls = append(calls, call{"fill", []uint64{n}})
	}
	calls = append(calls, call{"grow", []uint64{1}}, call{"grow", []uint64{3}}, call{"grow", []uint64{100}},
		call{"sum", []uint64{50}})

	var ref []uint64
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			pm := instance(t, e.config(), plain)
			mm := instance(t, e.config(), metered)
			var gas []uint64
			for _, c := range calls {
				want, err := pm.ExportedFunction(c.fn).Call(context.Background(), c.args...)
				if err != nil {
					t.Fatalf("plain %s%v: %v", c.fn, c.args, err)
				}
				got, used, err := meteredCall(mm, 1<<40, c.fn, c.args...)
				if err != nil {
					t.Fatalf("metered %s%v: %v", c.fn, c.args, err)
				}
				if got[0] != want[0] {
					t.Fatalf("%s%v = %d metered, %d plain", c.fn, c.args, got[0], want[0])
				}
				gas = append(gas, used)
			}
			// The memories hold the same bytes.
			if !bytes.Equal(memBytes(t, pm), memBytes(t, mm)) {
				t.Fatal("memory contents differ")
			}
			if ref == nil {
				ref = gas
				t.Logf("gas per call: %v", gas)
			} else {
				for k := range gas {
					if gas[k] != ref[k] {
						t.Errorf("%s%v used %d gas, other engine %d", calls[k].fn, calls[k].args, gas[k], ref[k])
					}
				}
			}
		})
	}
}

func memBytes(t *testing.T, mod api.Module) []byte {
	m := mod.Memory()
	b, ok := m.Read(0, m.Size())
	if !ok {
		t.Fatal("read memory")
	}
	return b
}

func TestDynamicCosts(t *testing.T) {
	s := DefaultSchedule()
	bin := instrument(t, encode(opsModule()))
	gasOf := func(fn string, arg uint64) uint64 {
		mod := instance(t, wazero.NewRuntimeConfigCompiler(), bin)
		_, used, err := meteredCall(mod, 1<<40, fn, arg)
		if err != nil {
			t.Fatalf("%s(%d): %v", fn, arg, err)
		}
		return used
	}
	tests := []struct {
		name     string
		fn       string
		a, b     uint64
		wantDiff uint64
	}{
		{"memory.grow per page", "grow", 1, 3, 2 * uint64(s.MemoryGrowPage)},
		{"failed memory.grow still pays", "grow", 1, 100, 99 * uint64(s.MemoryGrowPage)},
		{"fill+copy: 64 bytes is one chunk", "fill", 1, 64, 0},
		{"fill+copy: 65 bytes is two chunks", "fill", 64, 65, 2 * uint64(s.BulkChunk)},
		{"fill+copy: 4096 bytes", "fill", 64, 4096, 2 * 63 * uint64(s.BulkChunk)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := gasOf(tc.fn, tc.b) - gasOf(tc.fn, tc.a); d != tc.wantDiff {
				t.Fatalf("%s(%d) - %s(%d) = %d gas, want %d", tc.fn, tc.b, tc.fn, tc.a, d, tc.wantDiff)
			}
		})
	}
	// A grow the gas cannot pay for traps before growing.
	mod := instance(t, wazero.NewRuntimeConfigCompiler(), bin)
	if _, _, err := meteredCall(mod, 1000, "grow", 5); err == nil || !IsExhausted(mod) {
		t.Fatalf("grow(5) with 1000 gas: %v", err)
	}
	if pages := mod.Memory().Size() / 65536; pages != 1 {
		t.Fatalf("memory has %d pages after the failed grow, want 1", pages)
	}
}

// TestIndexStability: with an imported function and an imported global, the
// gas global is appended after imported and defined globals, and every call
// and global access still reaches the same function or global.
func TestIndexStability(t *testing.T) {
	ctx := context.Background()
	env := encode(&wasm.Module{
		GlobalSection: []*wasm.Global{{Type: &wasm.GlobalType{ValType: i32}, Init: constI32(7)}},
		ExportSection: []*wasm.Export{{Type: wasm.ExternTypeGlobal, Name: "g", Index: 0}},
	})
	bin := instrument(t, encode(indexModule()))

	m, err := wbin.DecodeModule(bin, wasm.CoreFeaturesV2)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(m.GlobalSection); got != 3 {
		t.Fatalf("%d defined globals after instrumentation, want 3", got)
	}
	var gasExport *wasm.Export
	for _, e := range m.ExportSection {
		if e.Name == GlobalName {
			gasExport = e
		}
	}
	if gasExport == nil || gasExport.Type != wasm.ExternTypeGlobal || gasExport.Index != 3 {
		t.Fatalf("gas export = %+v, want global 3", gasExport)
	}

	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			r := wazero.NewRuntimeWithConfig(ctx, e.config())
			defer r.Close(ctx)
			var gotArgs []uint32
			var seenByHost uint64
			_, err := r.NewHostModuleBuilder("host").
				NewFunctionBuilder().WithFunc(func(a, b uint32) uint32 {
				gotArgs = append(gotArgs, a, b)
				return a + b
			}).Export("add").
				NewFunctionBuilder().WithFunc(func(ctx context.Context, caller api.Module) uint32 {
				// The caller has paid for exactly what ran before this call.
				seenByHost, _ = Remaining(caller)
				return 10
			}).Export("ten").
				Instantiate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.InstantiateWithConfig(ctx, env, wazero.NewModuleConfig().WithName("env")); err != nil {
				t.Fatal(err)
			}
			mod, err := r.Instantiate(ctx, bin)
			if err != nil {
				t.Fatal(err)
			}
			res, used, err := meteredCall(mod, 1000, "run")
			if err != nil {
				t.Fatal(err)
			}
			if res[0] != 122 || len(gotArgs) != 2 || gotArgs[0] != 7 || gotArgs[1] != 100 {
				t.Fatalf("run = %d with host args %v, want 122 with [7 100]", res[0], gotArgs)
			}
			// run: [gget gget call] 2+5, [call] 5, [add call] 1+5, [add end] 1; five: 1.
			if used != 20 {
				t.Fatalf("run used %d gas, want 20", used)
			}
			// Before host.ten: [gget gget call] 7, [call] 5, five 1, [add call] 6.
			if seenByHost != 1000-19 {
				t.Fatalf("host saw %d gas remaining, want %d", seenByHost, 1000-19)
			}
			for want := uint64(6); want < 9; want++ {
				res, _, err := meteredCall(mod, 1000, "bump")
				if err != nil || res[0] != want {
					t.Fatalf("bump = %v, %v; want %d", res, err, want)
				}
			}
			if g := mod.ExportedGlobal("g2").Get(); g != 8 {
				t.Fatalf("g2 = %d, want 8", g)
			}
			if g := mod.ExportedGlobal("g1").Get(); g != 100 {
				t.Fatalf("g1 = %d, want 100", g)
			}
		})
	}
}

func TestRemainingOnPlainModule(t *testing.T) {
	mod := instance(t, wazero.NewRuntimeConfigInterpreter(), encode(loopModule()))
	if v, ok := Remaining(mod); ok || v != 0 {
		t.Fatalf("Remaining on a plain module = %d, %v", v, ok)
	}
	SetRemaining(mod, 5) // no-op, no panic
	if IsExhausted(mod) {
		t.Fatal("plain module reported exhausted")
	}
}

func TestSetRemainingClamps(t *testing.T) {
	mod := instance(t, wazero.NewRuntimeConfigInterpreter(), instrument(t, encode(loopModule())))
	if v, _ := Remaining(mod); v != DefaultSchedule().InitialGas {
		t.Fatalf("initial gas = %d, want %d", v, DefaultSchedule().InitialGas)
	}
	SetRemaining(mod, Exhausted)
	if v, _ := Remaining(mod); v != MaxGas || IsExhausted(mod) {
		t.Fatalf("SetRemaining(Exhausted) stored %d", v)
	}
	if _, used, err := meteredCall(mod, MaxGas, "sum", 10); err != nil || used != sumGas(10) {
		t.Fatalf("sum with MaxGas: used %d, %v", used, err)
	}
}

// TestStartSectionUsesInitialGas: code run during instantiation is metered
// against Schedule.InitialGas.
func TestStartSectionUsesInitialGas(t *testing.T) {
	m := loopModule()
	start := wasm.Index(0) // spin
	m.StartSection = &start
	s := DefaultSchedule()
	s.InitialGas = 1000
	bin, err := Instrument(encode(m), s)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer r.Close(ctx)
	if _, err := r.Instantiate(ctx, bin); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("instantiating a module whose start function spins: %v", err)
	}
}

// TestPreservesSections: sections wabin cannot encode (data count, passive
// data) and custom sections survive, and memory.init / data.drop still
// validate.
func TestPreservesSections(t *testing.T) {
	m := &wasm.Module{
		TypeSection:     []*wasm.FunctionType{{Params: []wasm.ValueType{i32}, Results: []wasm.ValueType{i32}}},
		FunctionSection: []wasm.Index{0},
		MemorySection:   &wasm.Memory{Min: 1},
		ExportSection:   []*wasm.Export{{Type: wasm.ExternTypeFunc, Name: "init", Index: 0}},
		CodeSection: []*wasm.Code{{Body: code(
			// memory.init 0 (dst 10, src 0, n), data.drop 0, load8_u 10
			i32c(10), i32c(0), lget(0), op(opMiscPrefix, 8, 0, 0),
			op(opMiscPrefix, 9, 0),
			i32c(10), op(0x2d, 0, 0),
			end())}},
		DataSection: []*wasm.DataSegment{{Init: []byte("xyz")}}, // passive
	}
	bin := encode(m)
	// wabin encodes no data count section: insert it before the code section,
	// and custom sections before and after everything.
	secs, err := splitSections(bin)
	if err != nil {
		t.Fatal(err)
	}
	custom1 := []byte{secCustom, 6, 3, 'a', 'b', 'c', 1, 2}
	custom2 := []byte{secCustom, 4, 1, 'z', 9, 9}
	in := append([]byte{}, wasmHeader...)
	in = append(in, custom1...)
	for _, s := range secs {
		if s.id == secCode {
			in = append(in, secDataCount, 1, 1)
		}
		in = append(in, s.raw...)
	}
	in = append(in, custom2...)

	out := instrument(t, in)
	if !bytes.Contains(out, custom1) || !bytes.Contains(out, custom2) || !bytes.Contains(out, []byte{secDataCount, 1, 1}) {
		t.Fatal("custom or data count sections lost")
	}
	for _, e := range engines {
		mod := instance(t, e.config(), out)
		res, used, err := meteredCall(mod, 1000, "init", 2)
		if err != nil || res[0] != 'x' {
			t.Fatalf("%s: init = %v, %v", e.name, res, err)
		}
		// [i32.const i32.const local.get memory.init data.drop i32.const load end]:
		// 6 + Bulk 10 + 1 chunk.
		if used != 17 {
			t.Fatalf("%s: used %d, want 17", e.name, used)
		}
	}
}

func TestInstrumentRejects(t *testing.T) {
	withBody := func(locals []wasm.ValueType, body []byte) []byte {
		return encode(&wasm.Module{
			TypeSection:     []*wasm.FunctionType{{}},
			FunctionSection: []wasm.Index{0},
			GlobalSection:   []*wasm.Global{{Type: &wasm.GlobalType{ValType: i32, Mutable: true}, Init: constI32(0)}},
			CodeSection:     []*wasm.Code{{LocalTypes: locals, Body: body}},
		})
	}
	exportsGas := loopModule()
	exportsGas.ExportSection = append(exportsGas.ExportSection, &wasm.Export{Type: wasm.ExternTypeFunc, Name: GlobalName})
	header := string(wasmHeader)
	tests := []struct {
		name string
		in   []byte
		s    func(*Schedule)
		want string
	}{
		{name: "empty", in: nil, want: "magic"},
		{name: "bad version", in: []byte("\x00asm\x02\x00\x00\x00"), want: "magic"},
		{name: "section past end", in: []byte(header + "\x01\x05\x00"), want: "exceeds"},
		{name: "unknown section", in: []byte(header + "\x0d\x00"), want: "unknown section"},
		{name: "out of order", in: []byte(header + "\x03\x01\x00\x01\x01\x00"), want: "order"},
		{name: "vector bomb", in: []byte(header + "\x01\x05\xff\xff\xff\xff\x0f"), want: "truncated"},
		{name: "param bomb", in: []byte(header + "\x01\x08\x01\x60\xff\xff\xff\xff\x0f\x00"), want: "truncated"},
		{name: "locals bomb", in: []byte(header + "\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00" +
			"\x0a\x0a\x01\x08\x01\xff\xff\xff\xff\x0f\x7f\x0b"), want: "too many locals"},
		{name: "threads opcode", in: withBody(nil, code(op(0xfe, 0x03, 0x00), end())), want: "unsupported opcode 0xfe"},
		{name: "tail call", in: withBody(nil, code(op(0x12, 0x00), end())), want: "unsupported opcode 0x12"},
		{name: "exceptions", in: withBody(nil, code(op(0x06, 0x40), end(), end())), want: "unsupported opcode 0x6"},
		{name: "unknown misc", in: withBody(nil, code(op(opMiscPrefix, 18), end())), want: "0xfc sub-opcode 18"},
		{name: "unknown simd", in: withBody(nil, code(op(opVecPrefix, 0x9a), end())), want: "SIMD sub-opcode 0x9a"},
		{name: "global.set of the gas index", in: withBody(nil, code(i64c(1<<40), gset(1), end())), want: "global 1 out of range"},
		{name: "local beyond declared", in: withBody([]wasm.ValueType{i32}, code(lget(1), op(opDrop), end())), want: "local 1 out of range"},
		{name: "truncated immediate", in: withBody(nil, code(op(opI32Const, 0x80, 0x80, 0x80, 0x80, 0x80), end())), want: "i32.const"},
		{name: "memory.size reserved byte", in: withBody(nil, code(op(opMemorySize, 1), op(opDrop), end())), want: "reserved byte"},
		{name: "bad block type", in: withBody(nil, code(block(0x60), end(), end())), want: "invalid block type"},
		{name: "else without if", in: withBody(nil, code(block(bt0), op(opElse), end(), end())), want: "else without if"},
		{name: "missing end", in: withBody(nil, code(block(bt0), end())), want: "final end"},
		{name: "code after end", in: withBody(nil, code(end(), op(opNop), end())), want: "after the function's final end"},
		{name: "export clash", in: encode(exportsGas), want: "already exports"},
		{name: "zero base", in: encode(loopModule()), s: func(s *Schedule) { s.Base = 0 }, want: "Base"},
		{name: "zero call", in: encode(loopModule()), s: func(s *Schedule) { s.Call = 0 }, want: "Call"},
		{name: "huge page cost", in: encode(loopModule()), s: func(s *Schedule) { s.MemoryGrowPage = 1 << 31 }, want: "MemoryGrowPage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := DefaultSchedule()
			if tc.s != nil {
				tc.s(&s)
			}
			out, err := Instrument(tc.in, s)
			if err == nil {
				t.Fatalf("Instrument succeeded (%d bytes)", len(out))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// TestDecodeImmediates checks the length the walker gives each instruction,
// immediates included, for every immediate shape.
func TestDecodeImmediates(t *testing.T) {
	fc := &funcContext{numTypes: 3, numLocals: 4, numGlobals: 2}
	s := DefaultSchedule()
	tests := []struct {
		name string
		in   []byte
		cost uint32
		dyn  int
	}{
		{"unreachable", op(0x00), 1, dynNone},
		{"nop", op(0x01), 0, dynNone},
		{"block empty", op(0x02, 0x40), 0, dynNone},
		{"block i32", op(0x02, 0x7f), 0, dynNone},
		{"loop v128", op(0x03, 0x7b), 0, dynNone},
		{"if funcref", op(0x04, 0x70), 1, dynNone},
		{"block type index", op(0x02, 0x02), 0, dynNone},
		{"block type index, padded LEB", op(0x02, 0x82, 0x80, 0x80, 0x80, 0x00), 0, dynNone},
		{"else", op(0x05), 0, dynNone},
		{"end", op(0x0b), 0, dynNone},
		{"br", op(0x0c, 0x85, 0x01), 1, dynNone},
		{"br_if", op(0x0d, 0x00), 1, dynNone},
		{"br_table", op(0x0e, 0x03, 0x00, 0x81, 0x01, 0x02, 0x00), 1, dynNone},
		{"br_table empty", op(0x0e, 0x00, 0x00), 1, dynNone},
		{"return", op(0x0f), 1, dynNone},
		{"call", op(0x10, 0xff, 0x01), 5, dynNone},
		{"call_indirect", op(0x11, 0x01, 0x00), 5, dynNone},
		{"call_indirect table 2", op(0x11, 0x01, 0x82, 0x00), 5, dynNone},
		{"drop", op(0x1a), 1, dynNone},
		{"select", op(0x1b), 1, dynNone},
		{"select t", op(0x1c, 0x01, 0x7e), 1, dynNone},
		{"local.get", op(0x20, 0x03), 1, dynNone},
		{"local.set", op(0x21, 0x83, 0x00), 1, dynNone},
		{"local.tee", op(0x22, 0x00), 1, dynNone},
		{"global.get", op(0x23, 0x01), 1, dynNone},
		{"global.set", op(0x24, 0x00), 1, dynNone},
		{"table.get", op(0x25, 0x00), 1, dynNone},
		{"table.set", op(0x26, 0x01), 1, dynNone},
		{"i32.load", op(0x28, 0x02, 0x80, 0x80, 0x04), 1, dynNone},
		{"i64.store32", op(0x3e, 0x02, 0x00), 1, dynNone},
		{"memory.size", op(0x3f, 0x00), 1, dynNone},
		{"memory.grow", op(0x40, 0x00), 100, dynPages},
		{"i32.const", op(0x41, 0x80, 0x80, 0x80, 0x80, 0x78), 1, dynNone},
		{"i32.const -1", op(0x41, 0x7f), 1, dynNone},
		{"i64.const", op(0x42, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00), 1, dynNone},
		{"f32.const", op(0x43, 1, 2, 3, 4), 1, dynNone},
		{"f64.const", op(0x44, 1, 2, 3, 4, 5, 6, 7, 8), 1, dynNone},
		{"i32.eqz", op(0x45), 1, dynNone},
		{"i32.div_s", op(0x6d), 8, dynNone},
		{"i64.rem_u", op(0x82), 8, dynNone},
		{"f64.sqrt", op(0x9f), 8, dynNone},
		{"f64.reinterpret", op(0xbf), 1, dynNone},
		{"i32.extend8_s", op(0xc0), 1, dynNone},
		{"i64.extend32_s", op(0xc4), 1, dynNone},
		{"ref.null extern", op(0xd0, 0x6f), 1, dynNone},
		{"ref.is_null", op(0xd1), 1, dynNone},
		{"ref.func", op(0xd2, 0x05), 1, dynNone},
		{"i32.trunc_sat_f32_s", op(0xfc, 0x00), 1, dynNone},
		{"i64.trunc_sat_f64_u", op(0xfc, 0x07), 1, dynNone},
		{"trunc_sat padded sub-opcode", op(0xfc, 0x87, 0x00), 1, dynNone},
		{"memory.init", op(0xfc, 0x08, 0x03, 0x00), 10, dynChunks},
		{"data.drop", op(0xfc, 0x09, 0x03), 1, dynNone},
		{"memory.copy", op(0xfc, 0x0a, 0x00, 0x00), 10, dynChunks},
		{"memory.fill", op(0xfc, 0x0b, 0x00), 10, dynChunks},
		{"table.init", op(0xfc, 0x0c, 0x01, 0x00), 10, dynChunks},
		{"elem.drop", op(0xfc, 0x0d, 0x01), 1, dynNone},
		{"table.copy", op(0xfc, 0x0e, 0x00, 0x00), 10, dynChunks},
		{"table.grow", op(0xfc, 0x0f, 0x00), 10, dynChunks},
		{"table.size", op(0xfc, 0x10, 0x00), 1, dynNone},
		{"table.fill", op(0xfc, 0x11, 0x00), 10, dynChunks},
		{"v128.load", op(0xfd, 0x00, 0x04, 0x10), 1, dynNone},
		{"v128.store", op(0xfd, 0x0b, 0x04, 0x00), 1, dynNone},
		{"v128.const", append(op(0xfd, 0x0c), make([]byte, 16)...), 1, dynNone},
		{"i8x16.shuffle", append(op(0xfd, 0x0d), make([]byte, 16)...), 1, dynNone},
		{"i8x16.swizzle", op(0xfd, 0x0e), 1, dynNone},
		{"i8x16.extract_lane_s", op(0xfd, 0x15, 0x0f), 1, dynNone},
		{"f64x2.replace_lane", op(0xfd, 0x22, 0x01), 1, dynNone},
		{"v128.load8_lane", op(0xfd, 0x54, 0x00, 0x00, 0x0f), 1, dynNone},
		{"v128.store64_lane", op(0xfd, 0x5b, 0x03, 0x08, 0x01), 1, dynNone},
		{"v128.load32_zero", op(0xfd, 0x5c, 0x02, 0x00), 1, dynNone},
		{"i16x8.add (one raw byte, like wazero)", op(0xfd, 0x8e), 1, dynNone},
		{"f64x2.convert_low_i32x4_u", op(0xfd, 0xff), 1, dynNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Append a marker so immediates are not read at the end of the slice.
			body := append(append([]byte{}, tc.in...), 0xee)
			in, err := decode(body, 0, fc, &s)
			if err != nil {
				t.Fatal(err)
			}
			if in.next != len(tc.in) || in.cost != tc.cost || in.dyn != tc.dyn {
				t.Fatalf("decode = next %d cost %d dyn %d; want %d %d %d", in.next, in.cost, in.dyn, len(tc.in), tc.cost, tc.dyn)
			}
			// Every proper prefix that cuts an immediate is an error.
			for n := 1; n < len(tc.in); n++ {
				if in, err := decode(tc.in[:n], 0, fc, &s); err == nil {
					t.Fatalf("prefix of %d bytes decoded (next %d)", n, in.next)
				}
			}
		})
	}

	bad := []struct {
		name string
		in   []byte
	}{
		{"i32.const 6-byte LEB", op(0x41, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00)},
		{"i32.load alignment 32", op(0x28, 0x20, 0x00)},
		{"u32 overflow", op(0x10, 0xff, 0xff, 0xff, 0xff, 0x1f)},
		{"memory.grow padded reserved byte", op(0x40, 0x80, 0x00)},
		{"memory.copy nonzero", op(0xfc, 0x0a, 0x00, 0x01)},
		{"select t two types", op(0x1c, 0x02, 0x7f, 0x7f)},
		{"select t bad type", op(0x1c, 0x01, 0x40)},
		{"ref.null bad type", op(0xd0, 0x7f)},
		{"block type index out of range", op(0x02, 0x03)},
		{"block type exnref", op(0x02, 0x69)},
		{"global out of range", op(0x23, 0x02)},
		{"local out of range", op(0x20, 0x04)},
		{"reserved 0x27", op(0x27)},
		{"0xc5", op(0xc5)},
		{"0xd3", op(0xd3)},
		{"atomics", op(0xfe, 0x00)},
		{"simd gap 0xee", op(0xfd, 0xee)},
	}
	for _, tc := range bad {
		t.Run("bad/"+tc.name, func(t *testing.T) {
			body := append(append([]byte{}, tc.in...), 0x0b, 0x0b)
			if in, err := decode(body, 0, fc, &s); err == nil {
				t.Fatalf("decoded (next %d)", in.next)
			}
		})
	}
}

// TestUnknownOpcodesAreErrors: every single-byte opcode the walker accepts is
// a WebAssembly 2.0 opcode; the rest are errors.
func TestUnknownOpcodesAreErrors(t *testing.T) {
	valid := map[byte]bool{}
	for _, r := range [][2]byte{{0x00, 0x05}, {0x0b, 0x11}, {0x1a, 0x1c}, {0x20, 0x26}, {0x28, 0xc4}, {0xd0, 0xd2}, {0xfc, 0xfd}} {
		for o := int(r[0]); o <= int(r[1]); o++ {
			valid[byte(o)] = true
		}
	}
	fc := &funcContext{numTypes: 1, numLocals: 1, numGlobals: 1}
	s := DefaultSchedule()
	// Immediates that satisfy any opcode: zeros, then padding.
	body := make([]byte, 40)
	for o := 0; o < 256; o++ {
		body[0] = byte(o)
		body[1] = 0
		if byte(o) == opSelectT {
			body[1], body[2] = 1, i32
		}
		if byte(o) == opRefNull {
			body[1] = wasm.RefTypeFuncref
		}
		if byte(o) >= opBlock && byte(o) <= opIf {
			body[1] = blockTypeEmpty
		}
		_, err := decode(body, 0, fc, &s)
		if valid[byte(o)] != (err == nil) {
			t.Errorf("opcode %#x: valid %v, err %v", o, valid[byte(o)], err)
		}
		body[2] = 0
	}
}

func TestInstrumentIsDeterministicAndIdempotentInput(t *testing.T) {
	in := encode(opsModule())
	orig := append([]byte{}, in...)
	a := instrument(t, in)
	b := instrument(t, in)
	if !bytes.Equal(a, b) {
		t.Fatal("two Instrument calls differ")
	}
	if !bytes.Equal(in, orig) {
		t.Fatal("Instrument modified its input")
	}
	// Instrumenting twice is refused (the export name is taken).
	if _, err := Instrument(a, DefaultSchedule()); err == nil {
		t.Fatal("instrumenting an instrumented module succeeded")
	}
}

func TestExhaustedIsATrapNotAnExit(t *testing.T) {
	// The VM tells out-of-gas from other traps by IsExhausted, not by the
	// error: document that the error is a plain trap, not a sys.ExitError.
	mod := instance(t, wazero.NewRuntimeConfigCompiler(), instrument(t, encode(loopModule())))
	_, _, err := meteredCall(mod, 10, "spin")
	var exit *sys.ExitError
	if err == nil || errors.As(err, &exit) {
		t.Fatalf("err = %v", err)
	}
}

func TestCharge(t *testing.T) {
	mod := instance(t, wazero.NewRuntimeConfigInterpreter(), instrument(t, encode(loopModule())))
	SetRemaining(mod, 100)
	if !Charge(mod, 60) || !Charge(mod, 40) {
		t.Fatal("Charge within the budget failed")
	}
	if v, _ := Remaining(mod); v != 0 {
		t.Fatalf("remaining %d, want 0", v)
	}
	if Charge(mod, 1) || !IsExhausted(mod) {
		t.Fatal("Charge beyond the budget did not exhaust")
	}
	if Charge(mod, 0) {
		t.Fatal("Charge on an exhausted instance succeeded")
	}
	plain := instance(t, wazero.NewRuntimeConfigInterpreter(), encode(loopModule()))
	if Charge(plain, 0) {
		t.Fatal("Charge on a plain module succeeded")
	}
}

// TestEdgeModules: modules without globals, exports or code still get the
// counter, and sections are placed in canonical order.
func TestEdgeModules(t *testing.T) {
	header := string(wasmHeader)
	tests := []struct {
		name string
		in   []byte
	}{
		{"header only", []byte(header)},
		{"empty code section", []byte(header + "\x0a\x01\x00")},
		{"empty global and export sections", []byte(header + "\x06\x01\x00\x07\x01\x00")},
		{"custom sections only", []byte(header + "\x00\x02\x01a\x00\x05\x04name")},
		{"memory and data", encode(&wasm.Module{
			MemorySection: &wasm.Memory{Min: 1},
			DataSection:   []*wasm.DataSegment{{OffsetExpression: constI32(0), Init: []byte("hi")}},
		})},
		{"start and element", func() []byte {
			m := opsModule()
			start := wasm.Index(0)
			m.StartSection = &start
			m.CodeSection[0] = &wasm.Code{Body: code(end())}
			return encode(m)
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := instrument(t, tc.in)
			if _, err := wbin.DecodeModule(out, wasm.CoreFeaturesV2); err != nil {
				t.Fatal(err)
			}
			if _, err := splitSections(out); err != nil {
				t.Fatalf("output sections: %v", err)
			}
			mod := instance(t, wazero.NewRuntimeConfigInterpreter(), out)
			if v, ok := Remaining(mod); !ok || v != DefaultSchedule().InitialGas {
				t.Fatalf("Remaining = %d, %v", v, ok)
			}
		})
	}
}
