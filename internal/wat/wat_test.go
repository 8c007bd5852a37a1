package wat

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// runCase is a module that must compile, instantiate in wazero and return
// want from calling fn(args...).
type runCase struct {
	name  string
	src   string
	fn    string
	args  []uint64
	want  []uint64
	host  func(ctx context.Context, r wazero.Runtime) error // optional imports
	check func(t *testing.T, ctx context.Context, m api.Module)
}

func newRuntime(ctx context.Context) wazero.Runtime {
	return wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
}

func run(t *testing.T, tc runCase) {
	t.Helper()
	bin, err := Compile(tc.src)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	ctx := context.Background()
	r := newRuntime(ctx)
	defer r.Close(ctx)
	if tc.host != nil {
		if err := tc.host(ctx, r); err != nil {
			t.Fatalf("host module: %v", err)
		}
	}
	mod, err := r.Instantiate(ctx, bin)
	if err != nil {
		t.Fatalf("Instantiate: %v", err)
	}
	if tc.fn != "" {
		got := call(t, ctx, mod, tc.fn, tc.args...)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Fatalf("%s%v = %v, want %v", tc.fn, tc.args, got, tc.want)
		}
	}
	if tc.check != nil {
		tc.check(t, ctx, mod)
	}
}

// call invokes an export, masking i32 results to 32 bits (wazero leaves the
// upper half of an i32 result undefined).
func call(t *testing.T, ctx context.Context, m api.Module, fn string, args ...uint64) []uint64 {
	t.Helper()
	f := m.ExportedFunction(fn)
	if f == nil {
		t.Fatalf("no exported function %q", fn)
	}
	res, err := f.Call(ctx, args...)
	if err != nil {
		t.Fatalf("call %s%v: %v", fn, args, err)
	}
	for i, rt := range f.Definition().ResultTypes() {
		if rt == api.ValueTypeI32 {
			res[i] = uint64(uint32(res[i]))
		}
	}
	return res
}

func i32(v int32) uint64 { return uint64(uint32(v)) }
func i64(v int64) uint64 { return uint64(v) }

var samples = []runCase{
	{
		name: "arithmetic",
		src: `(module
  (func (export "f") (param i32 i32) (result i32)
    local.get 0
    local.get 1
    i32.add       ;; a + b
    i32.const 3
    i32.mul))`,
		fn: "f", args: []uint64{2, 5}, want: []uint64{21},
	},
	{
		name: "named locals and tee",
		src: `(module
  (func $f (export "f") (param $a i64) (param i64) (result i64) (local $tmp i64) (local i64 i64)
    local.get $a
    local.get 1
    i64.sub
    local.tee $tmp
    local.set 3
    local.get 3
    local.get $tmp
    i64.mul
    local.set 4
    local.get 4))`,
		fn: "f", args: []uint64{10, 3}, want: []uint64{49},
	},
	{
		name: "loop sums 1..n with br_if",
		src: `(module
  (func (export "sum") (param $n i32) (result i32) (local $acc i32)
    block $done
      local.get $n
      i32.eqz
      br_if $done
      loop $again
        local.get $acc
        local.get $n
        i32.add
        local.set $acc
        local.get $n
        i32.const 1
        i32.sub
        local.tee $n
        br_if $again
      end $again
    end
    local.get $acc))`,
		fn: "sum", args: []uint64{100}, want: []uint64{5050},
	},
	{
		name: "loop with zero iterations",
		src: `(module
  (func (export "sum") (param $n i32) (result i32) (local $acc i32)
    block $done
      local.get $n
      i32.eqz
      br_if $done
      loop $again
        local.get $acc local.get $n i32.add local.set $acc
        local.get $n i32.const 1 i32.sub local.tee $n
        br_if 0
      end
    end
    local.get $acc))`,
		fn: "sum", args: []uint64{0}, want: []uint64{0},
	},
	{
		name: "if else with result",
		src: `(module
  (func $max (export "max") (param $a i32) (param $b i32) (result i32)
    local.get $a
    local.get $b
    i32.gt_s
    if (result i32)
      local.get $a
    else
      local.get $b
    end))`,
		fn: "max", args: []uint64{i32(-7), 3}, want: []uint64{3},
	},
	{
		name: "if without else and labelled end",
		src: `(module
  (func (export "f") (param $x i32) (result i32)
    local.get $x
    if $neg
      i32.const 0
      local.get $x
      i32.sub
      local.set $x
    end $neg
    local.get $x)
  (func (export "g") (param i32) (result i32)
    local.get 0
    i32.const 0
    i32.lt_s
    if $l
      i32.const -1
      return
    else $l
      nop
    end
    i32.const 1))`,
		fn: "f", args: []uint64{5}, want: []uint64{i32(-5)},
		check: func(t *testing.T, ctx context.Context, m api.Module) {
			if got := call(t, ctx, m, "g", i32(-3)); got[0] != i32(-1) {
				t.Fatalf("g(-3) = %v", got)
			}
		},
	},
	{
		name: "memory store load and data segment",
		src: `(module
  (memory (export "memory") 1)
  (data (i32.const 16) "hi\n\00\ff\u{e9}\"\\")
  (func (export "f") (result i64)
    i32.const 100
    i64.const 0x1122334455667788
    i64.store offset=8 align=4
    i32.const 108
    i64.load
    i32.const 104
    i32.const -2
    i32.store16
    i32.const 104
    i64.load16_s
    i64.add
    i32.const 20
    i64.load8_u offset=0 align=1  ;; 0xff
    i64.add))`,
		fn: "f", want: []uint64{0x1122334455667788 - 2 + 0xff},
		check: func(t *testing.T, ctx context.Context, m api.Module) {
			mem := m.ExportedMemory("memory")
			if mem == nil {
				t.Fatal("memory not exported")
			}
			got, ok := mem.Read(16, 10)
			want := []byte("hi\n\x00\xff\xc3\xa9\"\\")
			if !ok || string(got[:len(want)]) != string(want) {
				t.Fatalf("data = %q, want %q", got, want)
			}
			if v, _ := mem.ReadUint64Le(108); v != 0x1122334455667788 {
				t.Fatalf("stored %x", v)
			}
		},
	},
	{
		name: "data read back by code",
		src: `(module
  (memory $m 1 2)
  (export "mem" (memory $m))
  (data (offset (i32.const 0x20)) "\01\00\00\00" "\02\00\00\00")
  (func (export "f") (result i32)
    i32.const 0x20
    i32.load
    i32.const 0x24
    i32.load align=4
    i32.add
    i32.const 0x21
    i32.load8_u
    i32.add))`,
		fn: "f", want: []uint64{3},
		check: func(t *testing.T, ctx context.Context, m api.Module) {
			if m.ExportedMemory("mem") == nil {
				t.Fatal("mem not exported")
			}
			if p := m.ExportedMemory("mem").Size(); p != 65536 {
				t.Fatalf("memory size %d", p)
			}
		},
	},
	{
		name: "memory size and grow",
		src: `(module
  (memory 1 4)
  (func (export "f") (result i32)
    i32.const 2
    memory.grow   ;; returns old size 1
    memory.size   ;; 3
    i32.const 10
    i32.mul
    i32.add))`,
		fn: "f", want: []uint64{31},
	},
	{
		name: "imported host function",
		src: `(module
  (type $unop (func (param i32) (result i32)))
  (import "env" "double" (func $double (param i32) (result i32)))
  (import "env" "triple" (func $triple (type $unop)))
  (import "env" "log" (func $log (param i64)))
  (func (export "f") (param i32) (result i32)
    local.get 0
    call $double
    call $triple
    local.get 0
    i64.extend_i32_u
    call $log))`,
		fn: "f", args: []uint64{7}, want: []uint64{42},
		host: func(ctx context.Context, r wazero.Runtime) error {
			_, err := r.NewHostModuleBuilder("env").
				NewFunctionBuilder().WithFunc(func(x uint32) uint32 { return 2 * x }).Export("double").
				NewFunctionBuilder().WithFunc(func(x uint32) uint32 { return 3 * x }).Export("triple").
				NewFunctionBuilder().WithFunc(func(x uint64) { hostLog = x }).Export("log").
				Instantiate(ctx)
			return err
		},
		check: func(t *testing.T, ctx context.Context, m api.Module) {
			if hostLog != 7 {
				t.Fatalf("host log saw %d", hostLog)
			}
		},
	},
	{
		name: "inline import and host memory access",
		src: `(module
  (func $put (import "env" "put") (param i32 i32))
  (memory (export "memory") 1)
  (func (export "f") (result i32)
    i32.const 8
    i32.const 1234
    call $put
    i32.const 8
    i32.load))`,
		fn: "f", want: []uint64{1234},
		host: func(ctx context.Context, r wazero.Runtime) error {
			_, err := r.NewHostModuleBuilder("env").
				NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, p, v uint32) {
				m.Memory().WriteUint32Le(p, v)
			}).Export("put").Instantiate(ctx)
			return err
		},
	},
	{
		name: "globals",
		src: `(module
  (global $counter (export "counter") (mut i64) (i64.const 0))
  (global $step i64 i64.const 5)
  (global $k (mut i32) (i32.const -1))
  (func $bump (export "bump") (result i64)
    global.get $counter
    global.get $step
    i64.add
    global.set $counter
    global.get 0)
  (func (export "f") (result i64)
    call $bump
    drop
    call $bump
    global.get $k
    i64.extend_i32_s
    i64.add))`,
		fn: "f", want: []uint64{9},
		check: func(t *testing.T, ctx context.Context, m api.Module) {
			if g := m.ExportedGlobal("counter"); g == nil || g.Get() != 10 {
				t.Fatalf("counter global = %v", g)
			}
		},
	},
	{
		name: "start function",
		src: `(module
  (global $g (mut i32) (i32.const 0))
  (start $init)
  (func $init i32.const 99 global.set $g)
  (func (export "f") (result i32) global.get $g))`,
		fn: "f", want: []uint64{99},
	},
	{
		name: "folded instructions",
		src: `(module
  (func $fac (export "fac") (param $n i64) (result i64)
    (if (result i64) (i64.lt_u (local.get $n) (i64.const 2))
      (then (i64.const 1))
      (else
        (i64.mul
          (local.get $n)
          (call $fac (i64.sub (local.get $n) (i64.const 1))))))))`,
		fn: "fac", args: []uint64{20}, want: []uint64{2432902008176640000},
	},
	{
		name: "folded block loop and mixed",
		src: `(module
  (func (export "f") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (block $exit
      (loop $top
        (br_if $exit (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (i32.mul (local.get $i) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        br $top))
    (select (local.get $acc) (i32.const -1) (i32.ne (local.get $n) (i32.const 0)))))`,
		fn: "f", args: []uint64{4}, want: []uint64{14},
	},
	{
		name: "br_table",
		src: `(module
  (func (export "f") (param i32) (result i32)
    block $c
      block $b
        block $a
          local.get 0
          br_table $a $b 2 $c
        end
        i32.const 10
        return
      end
      i32.const 20
      return
    end
    i32.const 30))`,
		fn: "f", args: []uint64{1}, want: []uint64{20},
		check: func(t *testing.T, ctx context.Context, m api.Module) {
			for in, want := range map[uint64]uint64{0: 10, 2: 30, 3: 30, 99: 30} {
				if got := call(t, ctx, m, "f", in); got[0] != want {
					t.Fatalf("f(%d) = %v; want %d", in, got, want)
				}
			}
		},
	},
	{
		name: "call_indirect through table",
		src: `(module
  (type $bin (func (param i32 i32) (result i32)))
  (table 3 funcref)
  (elem (i32.const 0) $add $sub)
  (elem (i32.const 2) func $mul)
  (func $add (type $bin) local.get 0 local.get 1 i32.add)
  (func $sub (param i32 i32) (result i32) local.get 0 local.get 1 i32.sub)
  (func $mul (type $bin) (param i32 i32) (result i32) local.get 0 local.get 1 i32.mul)
  (func (export "f") (param $op i32) (param $a i32) (param $b i32) (result i32)
    local.get $a
    local.get $b
    local.get $op
    call_indirect (type $bin)))`,
		fn: "f", args: []uint64{2, 6, 7}, want: []uint64{42},
		check: func(t *testing.T, ctx context.Context, m api.Module) {
			if got := call(t, ctx, m, "f", 1, 6, 7); got[0] != i32(-1) {
				t.Fatalf("f(1,6,7) = %v", got)
			}
		},
	},
	{
		name: "inline table elem and folded call_indirect",
		src: `(module
  (table $t funcref (elem $one $two))
  (func $one (result i64) i64.const 1)
  (func $two (result i64) i64.const 2)
  (func (export "f") (param i32) (result i64)
    (call_indirect $t (result i64) (local.get 0))))`,
		fn: "f", args: []uint64{1}, want: []uint64{2},
	},
	{
		name: "elem segment with function index above 63",
		src:  manyFuncs(70),
		fn:   "f", args: []uint64{69}, want: []uint64{69 * 3},
	},
	{
		name: "integer constants",
		src: `(module
  (func (export "a") (result i32) i32.const 0xffffffff)
  (func (export "b") (result i32) i32.const -2147483648)
  (func (export "c") (result i64) i64.const 0xffff_ffff_ffff_ffff)
  (func (export "d") (result i64) i64.const -0x8000000000000000)
  (func (export "e") (result i64) i64.const 1_000_000)
  (func (export "f") (result i32) i32.const +42))`,
		fn: "a", want: []uint64{0xffffffff},
		check: func(t *testing.T, ctx context.Context, m api.Module) {
			for fn, want := range map[string]uint64{"b": 0x80000000, "c": math.MaxUint64, "d": 1 << 63, "e": 1000000, "f": 42} {
				if got := call(t, ctx, m, fn); got[0] != want {
					t.Fatalf("%s() = %v; want %d", fn, got, want)
				}
			}
		},
	},
	{
		name: "floats",
		src: `(module
  (func (export "f") (result f64)
    f64.const 1.5
    f64.const 0x1p3
    f64.mul
    f32.const -2.25
    f64.promote_f32
    f64.add
    f64.sqrt)
  (func (export "g") (result i32) f32.const nan:0x200000 i32.reinterpret_f32)
  (func (export "h") (result i64) f64.const -inf i64.reinterpret_f64)
  (func (export "i") (result i32) f64.const 1e3 i32.trunc_f64_s)
  (func (export "j") (result i32) f32.const 3e10 i32.trunc_sat_f32_s))`,
		fn: "f", want: []uint64{math.Float64bits(math.Sqrt(1.5*8 - 2.25))},
		check: func(t *testing.T, ctx context.Context, m api.Module) {
			for fn, want := range map[string]uint64{
				"g": 0x7fa00000, "h": math.Float64bits(math.Inf(-1)), "i": 1000, "j": math.MaxInt32,
			} {
				if got := call(t, ctx, m, fn); got[0] != want {
					t.Fatalf("%s() = %#x; want %#x", fn, got, want)
				}
			}
		},
	},
	{
		name: "conversions and sign extension",
		src: `(module
  (func (export "f") (param i64) (result i64)
    local.get 0
    i32.wrap_i64
    i64.extend_i32_s
    i64.extend8_s))`,
		fn: "f", args: []uint64{0x1234_0000_00ff}, want: []uint64{math.MaxUint64},
	},
	{
		name: "multi-value block with params",
		src: `(module
  (func (export "f") (result i32)
    i32.const 40
    i32.const 2
    block (param i32 i32) (result i32)
      i32.add
    end))`,
		fn: "f", want: []uint64{42},
	},
	{
		name: "typed select and nested label depth",
		src: `(module
  (func (export "f") (param i32) (result i64)
    block (result i64)
      block
        i64.const 7
        i64.const 8
        local.get 0
        select (result i64)
        br 1
      end
      unreachable
    end))`,
		fn: "f", args: []uint64{0}, want: []uint64{8},
	},
	{
		name: "passive data with memory.init and memory.fill",
		src: `(module
  (memory 1)
  (data $hello "hello")
  (func (export "f") (result i32)
    i32.const 0
    i32.const 0x61
    i32.const 8
    memory.fill
    i32.const 2
    i32.const 1
    i32.const 3
    memory.init $hello
    data.drop $hello
    i32.const 4
    i32.const 0
    i32.const 4
    memory.copy
    i32.const 0
    i64.load
    i32.wrap_i64))`,
		fn: "f", want: []uint64{uint64('a' | 'a'<<8 | 'e'<<16 | 'l'<<24)}, // "aaelaael"
	},
	{
		name: "bare fields without module and comments",
		src: `;; a comment
(; block (; nested ;) comment ;)
(func (export "f") (result i32) (; inline ;) i32.const 1)`,
		fn: "f", want: []uint64{1},
	},
}

var hostLog uint64

// manyFuncs builds a module with n functions returning 3*i, all placed in a
// table, and an exported dispatcher f(i).
func manyFuncs(n int) string {
	var b strings.Builder
	b.WriteString("(module\n  (type $t (func (result i32)))\n  (table ")
	fmt.Fprintf(&b, "%d funcref)\n  (elem (i32.const 0)", n)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, " $f%d", i)
	}
	b.WriteString(")\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  (func $f%d (type $t) i32.const %d)\n", i, 3*i)
	}
	b.WriteString("  (func (export \"f\") (param i32) (result i32) local.get 0 call_indirect (type $t)))\n")
	return b.String()
}

func TestSamples(t *testing.T) {
	for _, tc := range samples {
		t.Run(tc.name, func(t *testing.T) { run(t, tc) })
	}
}

// TestNumericOps checks every i32/i64 numeric instruction against Go.
func TestNumericOps(t *testing.T) {
	b2u := func(b bool) uint64 {
		if b {
			return 1
		}
		return 0
	}
	type op32 func(a, b uint32) uint64
	type op64 func(a, b uint64) uint64
	bin32 := map[string]op32{
		"eq": func(a, b uint32) uint64 { return b2u(a == b) }, "ne": func(a, b uint32) uint64 { return b2u(a != b) },
		"lt_s": func(a, b uint32) uint64 { return b2u(int32(a) < int32(b)) }, "lt_u": func(a, b uint32) uint64 { return b2u(a < b) },
		"gt_s": func(a, b uint32) uint64 { return b2u(int32(a) > int32(b)) }, "gt_u": func(a, b uint32) uint64 { return b2u(a > b) },
		"le_s": func(a, b uint32) uint64 { return b2u(int32(a) <= int32(b)) }, "le_u": func(a, b uint32) uint64 { return b2u(a <= b) },
		"ge_s": func(a, b uint32) uint64 { return b2u(int32(a) >= int32(b)) }, "ge_u": func(a, b uint32) uint64 { return b2u(a >= b) },
		"add": func(a, b uint32) uint64 { return uint64(a + b) }, "sub": func(a, b uint32) uint64 { return uint64(a - b) },
		"mul":   func(a, b uint32) uint64 { return uint64(a * b) },
		"div_s": func(a, b uint32) uint64 { return uint64(uint32(int32(a) / int32(b))) }, "div_u": func(a, b uint32) uint64 { return uint64(a / b) },
		"rem_s": func(a, b uint32) uint64 { return uint64(uint32(int32(a) % int32(b))) }, "rem_u": func(a, b uint32) uint64 { return uint64(a % b) },
		"and": func(a, b uint32) uint64 { return uint64(a & b) }, "or": func(a, b uint32) uint64 { return uint64(a | b) },
		"xor": func(a, b uint32) uint64 { return uint64(a ^ b) }, "shl": func(a, b uint32) uint64 { return uint64(a << (b % 32)) },
		"shr_s": func(a, b uint32) uint64 { return uint64(uint32(int32(a) >> (b % 32))) }, "shr_u": func(a, b uint32) uint64 { return uint64(a >> (b % 32)) },
		"rotl": func(a, b uint32) uint64 { return uint64(bits.RotateLeft32(a, int(b%32))) },
		"rotr": func(a, b uint32) uint64 { return uint64(bits.RotateLeft32(a, -int(b%32))) },
	}
	bin64 := map[string]op64{
		"eq": func(a, b uint64) uint64 { return b2u(a == b) }, "ne": func(a, b uint64) uint64 { return b2u(a != b) },
		"lt_s": func(a, b uint64) uint64 { return b2u(int64(a) < int64(b)) }, "lt_u": func(a, b uint64) uint64 { return b2u(a < b) },
		"gt_s": func(a, b uint64) uint64 { return b2u(int64(a) > int64(b)) }, "gt_u": func(a, b uint64) uint64 { return b2u(a > b) },
		"le_s": func(a, b uint64) uint64 { return b2u(int64(a) <= int64(b)) }, "le_u": func(a, b uint64) uint64 { return b2u(a <= b) },
		"ge_s": func(a, b uint64) uint64 { return b2u(int64(a) >= int64(b)) }, "ge_u": func(a, b uint64) uint64 { return b2u(a >= b) },
		"add": func(a, b uint64) uint64 { return a + b }, "sub": func(a, b uint64) uint64 { return a - b },
		"mul":   func(a, b uint64) uint64 { return a * b },
		"div_s": func(a, b uint64) uint64 { return uint64(int64(a) / int64(b)) }, "div_u": func(a, b uint64) uint64 { return a / b },
		"rem_s": func(a, b uint64) uint64 { return uint64(int64(a) % int64(b)) }, "rem_u": func(a, b uint64) uint64 { return a % b },
		"and": func(a, b uint64) uint64 { return a & b }, "or": func(a, b uint64) uint64 { return a | b },
		"xor": func(a, b uint64) uint64 { return a ^ b }, "shl": func(a, b uint64) uint64 { return a << (b % 64) },
		"shr_s": func(a, b uint64) uint64 { return uint64(int64(a) >> (b % 64)) }, "shr_u": func(a, b uint64) uint64 { return a >> (b % 64) },
		"rotl": func(a, b uint64) uint64 { return bits.RotateLeft64(a, int(b%64)) },
		"rotr": func(a, b uint64) uint64 { return bits.RotateLeft64(a, -int(b%64)) },
	}
	un32 := map[string]func(a uint32) uint64{
		"eqz": func(a uint32) uint64 { return b2u(a == 0) }, "clz": func(a uint32) uint64 { return uint64(bits.LeadingZeros32(a)) },
		"ctz": func(a uint32) uint64 { return uint64(bits.TrailingZeros32(a)) }, "popcnt": func(a uint32) uint64 { return uint64(bits.OnesCount32(a)) },
	}
	un64 := map[string]func(a uint64) uint64{
		"eqz": func(a uint64) uint64 { return b2u(a == 0) }, "clz": func(a uint64) uint64 { return uint64(bits.LeadingZeros64(a)) },
		"ctz": func(a uint64) uint64 { return uint64(bits.TrailingZeros64(a)) }, "popcnt": func(a uint64) uint64 { return uint64(bits.OnesCount64(a)) },
	}

	// One module exporting every op, so wazero compiles once.
	var src strings.Builder
	src.WriteString("(module\n")
	for name := range bin32 {
		fmt.Fprintf(&src, "(func (export \"i32.%s\") (param i32 i32) (result i32) local.get 0 local.get 1 i32.%s)\n", name, name)
	}
	for name := range bin64 {
		res := "i64"
		if strings.Contains("eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u", name) {
			res = "i32"
		}
		fmt.Fprintf(&src, "(func (export \"i64.%s\") (param i64 i64) (result %s) (i64.%s (local.get 0) (local.get 1)))\n", name, res, name)
	}
	for name := range un32 {
		fmt.Fprintf(&src, "(func (export \"i32.%s\") (param i32) (result i32) local.get 0 i32.%s)\n", name, name)
	}
	for name := range un64 {
		res := "i64"
		if name == "eqz" {
			res = "i32"
		}
		fmt.Fprintf(&src, "(func (export \"i64.%s\") (param i64) (result %s) local.get 0 i64.%s)\n", name, res, name)
	}
	src.WriteString(")")
	bin, err := Compile(src.String())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := newRuntime(ctx)
	defer r.Close(ctx)
	m, err := r.Instantiate(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	vals32 := []uint32{0, 1, 2, 3, 7, 31, 32, 33, 0x80000000, 0x7fffffff, 0xffffffff, 0xfffffff9, 0x12345678}
	vals64 := []uint64{0, 1, 2, 5, 63, 64, 65, 1 << 63, 1<<63 - 1, math.MaxUint64, 0xfffffffffffffff9, 0x123456789abcdef0}
	call1 := func(fn string, args ...uint64) uint64 {
		t.Helper()
		return call(t, ctx, m, fn, args...)[0]
	}
	for name, f := range bin32 {
		for _, a := range vals32 {
			for _, b := range vals32 {
				if (strings.HasPrefix(name, "div") || strings.HasPrefix(name, "rem")) && (b == 0 || (name[len(name)-1] == 's' && a == 0x80000000 && b == 0xffffffff)) {
					continue // traps
				}
				if got, want := call1("i32."+name, uint64(a), uint64(b)), f(a, b); got != want {
					t.Errorf("i32.%s(%#x, %#x) = %#x, want %#x", name, a, b, got, want)
				}
			}
		}
	}
	for name, f := range bin64 {
		for _, a := range vals64 {
			for _, b := range vals64 {
				if (strings.HasPrefix(name, "div") || strings.HasPrefix(name, "rem")) && (b == 0 || (name[len(name)-1] == 's' && a == 1<<63 && b == math.MaxUint64)) {
					continue
				}
				if got, want := call1("i64."+name, a, b), f(a, b); got != want {
					t.Errorf("i64.%s(%#x, %#x) = %#x, want %#x", name, a, b, got, want)
				}
			}
		}
	}
	for name, f := range un32 {
		for _, a := range vals32 {
			if got, want := call1("i32."+name, uint64(a)), f(a); got != want {
				t.Errorf("i32.%s(%#x) = %#x, want %#x", name, a, got, want)
			}
		}
	}
	for name, f := range un64 {
		for _, a := range vals64 {
			if got, want := call1("i64."+name, a), f(a); got != want {
				t.Errorf("i64.%s(%#x) = %#x, want %#x", name, a, got, want)
			}
		}
	}
}

// errCases must fail with an *Error at the given position whose message
// contains msg.
var errCases = []struct {
	name      string
	src       string
	line, col int
	msg       string
}{
	{"unknown instruction", "(module\n  (func\n    i32.cnst 1))", 3, 5, `unknown instruction "i32.cnst"`},
	{"undefined label", "(module (func\n  block $a\n    br $b\n  end))", 3, 8, "undefined label $b"},
	{"undefined function", "(module\n (func call $nope))", 2, 13, "undefined function $nope"},
	{"undefined local", "(module (func (param $x i32)\n local.get $y drop))", 2, 12, "undefined local $y"},
	{"undefined global", "(module (func global.get $g drop))", 1, 26, "undefined global $g"},
	{"undefined type", "(module (func (type $t)))", 1, 21, "undefined type $t"},
	{"local index out of range", "(module (func (param i32) local.get 1 drop))", 1, 37, "local index 1 out of range"},
	{"unclosed paren", "(module\n  (func $f\n    nop)\n", 1, 1, "unbalanced parentheses"},
	{"extra close paren", "(module (func))\n)", 2, 1, "unbalanced parentheses: unexpected ')'"},
	{"bad number", "(module (func i32.const 12x3 drop))", 1, 25, `invalid i32 literal "12x3"`},
	{"i32 out of range", "(module (func i32.const 4294967296 drop))", 1, 25, "invalid i32 literal"},
	{"i32 negative out of range", "(module (func i32.const -2147483649 drop))", 1, 25, "invalid i32 literal"},
	{"i64 out of range", "(module (func i64.const 0x1_0000_0000_0000_0000 drop))", 1, 25, "invalid i64 literal"},
	{"bad float", "(module (func f64.const 1.2.3 drop))", 1, 25, "invalid f64 literal"},
	{"bad underscore", "(module (func i32.const 1__0 drop))", 1, 25, "invalid i32 literal"},
	{"missing immediate", "(module (func local.get))", 1, 24, "expected local index"},
	{"bad label depth", "(module (func block br 2 end))", 1, 24, "label depth 2 out of range"},
	{"missing end", "(module (func\n  block\n  nop))", 2, 3, "block is missing its end"},
	{"stray end", "(module (func nop\n end))", 2, 2, "end without matching block"},
	{"stray else", "(module (func block else end))", 1, 21, "else without matching if"},
	{"mismatched end label", "(module (func block $a end $b))", 1, 28, "label $b does not match"},
	{"unknown field", "(module (fun))", 1, 10, `unknown module field "fun"`},
	{"unterminated string", "(module (data (i32.const 0) \"abc))", 1, 29, "unterminated string"},
	{"bad escape", "(module (memory 1) (data (i32.const 0) \"a\\qb\"))", 1, 42, "invalid escape"},
	{"unterminated comment", "(module (; ... )", 1, 9, "unterminated block comment"},
	{"bad character", "(module (func nop [))", 1, 19, "unexpected character '['"},
	{"duplicate function", "(module (func $f) (func $f))", 1, 25, "duplicate function $f"},
	{"duplicate export", "(module (func (export \"a\")) (func (export \"a\")))", 1, 43, `duplicate export name "a"`},
	{"bad value type", "(module (func (param i33)))", 1, 22, "expected value type"},
	{"bad align", "(module (memory 1) (func i32.const 0 i32.load align=3 drop))", 1, 47, "invalid alignment"},
	{"align too big", "(module (memory 1) (func i32.const 0 i32.load8_u align=2 drop))", 1, 50, "larger than the natural alignment"},
	{"memory op without memory", "(module (func i32.const 0 i32.load drop))", 1, 27, "requires a memory"},
	{"import after definition", "(module (func) (import \"a\" \"b\" (func)))", 1, 16, "imports must come before"},
	{"folded operand atom", "(module (func (i32.add (i32.const 1) 2) drop))", 1, 38, "operands must be parenthesized"},
	{"misplaced local", "(module (func nop (local i32)))", 1, 19, "(local ...) is out of place"},
	{"folded if without then", "(module (func (if (i32.const 1))))", 1, 32, "missing (then ...)"},
	{"type mismatch with inline signature", "(module (type $t (func (param i32))) (func (type $t) (param i64)))", 1, 44, "does not match type $t"},
	{"unsupported v128", "(module (func (param v128)))", 1, 22, "unsupported value type v128"},
	{"export of undefined func", "(module (export \"x\" (func $nope)))", 1, 27, "undefined function $nope"},
	{"start undefined", "(module (start $s))", 1, 16, "undefined function $s"},
	{"two modules", "(module) (module)", 1, 1, "single (module"},
	{"not a field", "(module foo)", 1, 9, "expected a module field"},
	{"non-utf8 export name", "(module (func (export \"\\ff\")))", 1, 23, "not valid UTF-8"},
	{"unsupported instruction", "(module (func\n  ref.null func drop))", 2, 3, `unsupported instruction "ref.null"`},
	{"module binary", "(module binary \"\\00asm\")", 1, 9, "(module binary ...) is not supported"},
	{"two memories", "(module (memory 1) (memory $b 1))", 1, 20, "only one memory"},
	{"limits max below min", "(module (memory 2 1))", 1, 19, "maximum 1 is smaller than minimum 2"},
	{"elem without table", "(module (func $f) (elem (i32.const 0) $f))", 1, 19, "requires a table"},
	{"call_indirect without table", "(module (func call_indirect))", 1, 15, "requires a table"},
	{"two starts", "(module (func $f) (start $f)\n(start $f))", 2, 1, "multiple start functions"},
	{"too deep", strings.Repeat("(", maxDepth+5), 1, maxDepth + 1, "nesting deeper"},
}

func TestErrors(t *testing.T) {
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.src)
			if err == nil {
				t.Fatalf("Compile succeeded, want error %q", tc.msg)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not *Error", err, err)
			}
			if e.Line != tc.line || e.Col != tc.col || !strings.Contains(e.Msg, tc.msg) {
				t.Fatalf("got %v, want %d:%d: ...%s...", err, tc.line, tc.col, tc.msg)
			}
			if want := fmt.Sprintf("wat: %d:%d: ", tc.line, tc.col); !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("message %q lacks position prefix %q", err.Error(), want)
			}
		})
	}
}

// TestBinaryEncoding pins the exact bytes of a tiny module, independent of
// any runtime.
func TestBinaryEncoding(t *testing.T) {
	bin, err := Compile(`(module (func (export "f") (result i32) i32.const -1))`)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0, 'a', 's', 'm', 1, 0, 0, 0,
		1, 5, 1, 0x60, 0, 1, 0x7f, // type section
		3, 2, 1, 0, // function section
		7, 5, 1, 1, 'f', 0, 0, // export section
		10, 6, 1, 4, 0, 0x41, 0x7f, 0x0b, // code section
	}
	if string(bin) != string(want) {
		t.Fatalf("got % x\nwant % x", bin, want)
	}
}

func TestNameSection(t *testing.T) {
	bin := MustCompile(`(module (func $boom (export "f") unreachable))`)
	ctx := context.Background()
	r := newRuntime(ctx)
	defer r.Close(ctx)
	m, err := r.Instantiate(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.ExportedFunction("f").Call(ctx)
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("trap error %v does not mention $boom", err)
	}
	// The module name is not emitted, so one binary instantiates twice.
	bin = MustCompile(`(module $m (func))`)
	for i := 0; i < 2; i++ {
		if _, err := r.Instantiate(ctx, bin); err != nil {
			t.Fatal(err)
		}
	}
}

// TestImports links two compiled modules: the second imports a function,
// memory, global and table exported by the first.
func TestImports(t *testing.T) {
	lib := MustCompile(`(module
  (memory (export "mem") 1)
  (global (export "base") i32 (i32.const 64))
  (global (export "ctr") (mut i64) (i64.const 100))
  (table (export "tab") 2 funcref)
  (elem (i32.const 1) $seven)
  (func $seven (result i32) i32.const 7)
  (func (export "inc") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1))))`)
	app := MustCompile(`(module
  (import "lib" "inc" (func $inc (param i32) (result i32)))
  (import "lib" "mem" (memory 1))
  (import "lib" "base" (global $base i32))
  (global $ctr (import "lib" "ctr") (mut i64))
  (table $t (import "lib" "tab") 2 funcref)
  (global $addr i32 (global.get $base))
  (func (export "f") (result i32)
    (i32.store (global.get $addr) (call $inc (i32.const 41)))
    (global.set $ctr (i64.add (global.get $ctr) (i64.const 1)))
    (i32.add
      (i32.load (global.get $base))
      (call_indirect $t (result i32) (i32.const 1)))))`)
	ctx := context.Background()
	r := newRuntime(ctx)
	defer r.Close(ctx)
	libMod, err := r.InstantiateWithConfig(ctx, lib, wazero.NewModuleConfig().WithName("lib"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Instantiate(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if got := call(t, ctx, m, "f"); got[0] != 49 {
		t.Fatalf("f() = %v, want 49", got)
	}
	if v, _ := libMod.ExportedMemory("mem").ReadUint32Le(64); v != 42 {
		t.Fatalf("mem[64] = %d", v)
	}
	if g := libMod.ExportedGlobal("ctr").Get(); g != 101 {
		t.Fatalf("ctr = %d", g)
	}
}

func TestMustCompilePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	MustCompile("(module")
}
