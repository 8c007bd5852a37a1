// Package gas meters WebAssembly contracts deterministically by rewriting
// their bytecode before wazero compiles them (wazero has no fuel of its own).
//
// # Scheme
//
// Instrument decodes a module with wabin, appends ONE mutable i64 global (the
// gas counter) and exports it as GlobalName. The new global's index is
// imported globals + defined globals, so no existing global or function index
// moves and the module's own code and imports keep working unchanged. Its
// initial value is Schedule.InitialGas: the budget of the code wazero runs
// during instantiation (the start section and start functions such as a WASI
// reactor's _initialize), which executes before the host can call
// SetRemaining.
//
// Every function body is cut into metered segments: straight-line runs of
// instructions that end at a control-flow boundary. A segment ends after
// block, loop, if, else, end, br, br_if, br_table, return, unreachable, call
// and call_indirect, and the function entry starts the first one. Every place
// control can enter (function entry, the start of a block/loop/if/else body,
// the continuation after an end, the fall-through of br_if, the return from a
// call) is therefore the start of a segment. At each segment start the summed
// static cost of the whole segment, boundary instruction included, is
// charged:
//
//	global.get $gas; i64.const cost; i64.lt_s
//	if
//	  i64.const -1; global.set $gas   ;; Exhausted
//	  unreachable
//	end
//	global.get $gas; i64.const cost; i64.sub; global.set $gas
//
// Without a trap, a call therefore consumes exactly the sum of the static
// costs of the instructions it executed (plus the dynamic costs below):
// the same number on every engine, machine and run. Calls end a segment
// (the conservative choice): after a callee returns, the caller pays for the
// rest of its segment only then, so when a host function reads the counter
// the caller has been charged for exactly the instructions executed so far.
// If a trap (out of bounds access, division by zero, a callee running out of
// gas) leaves a segment early, its remaining instructions were charged but not
// run; the instance is discarded after a trap anyway. Segments in unreachable
// code (after br, br_table, return or unreachable up to the end or else of
// the enclosing construct) and segments of cost 0 get no charge.
//
// Instructions whose work depends on an operand also pay a dynamic cost,
// charged immediately before them from their size operand (kept in two
// locals appended to the function, i32 and i64, after all existing locals):
// memory.grow pays Schedule.MemoryGrowPage per requested page (also when the
// grow then fails), memory.copy, memory.fill, memory.init, table.copy,
// table.init, table.fill and table.grow pay Schedule.BulkChunk per started
// 64 units of their length operand (bytes for memory, elements for tables).
//
// The counter is a signed i64 holding a value in [0, math.MaxInt64]; the
// comparisons are signed. When a charge does not fit, the counter is set to
// Exhausted (math.MaxUint64, -1 as i64) before the trap. Because -1 is below
// every cost, any further charge traps again: an exhausted instance can never
// run on by accident, it must be discarded or recharged with SetRemaining.
//
// Instrument walks every instruction of every body with its immediates and
// accepts exactly the WebAssembly 2.0 instruction set that wazero validates
// by default (sign extension, non-trapping float-to-int, bulk memory,
// reference types, multi-value block types, SIMD), decoding immediates the way
// wazero does. It returns an error for anything else (threads, tail calls,
// exceptions, typed function references...) instead of guessing. It rejects
// code that refers to global or local indices beyond those the original
// function could use, which would otherwise reach the gas counter or the
// temporaries the instrumentation adds. It does not otherwise validate the
// module; wazero validates the instrumented module when it is compiled.
//
// # Use
//
// Instrument the contract once at upload (it is deterministic and safe for
// concurrent use) and store or compile the result. Per call, the VM sets the
// limit with SetRemaining, calls the export, and computes gas used as the
// limit minus Remaining. Host functions charge their own work with Charge. A
// trap with IsExhausted true is out of gas; the instance is then discarded
// (or recharged with SetRemaining before it runs again).
//
// # Limitations
//
//   - Host functions are not metered by the instrumentation; they must call
//     Charge.
//   - A trap in the middle of a segment leaves the rest of the segment
//     charged but not executed.
//   - memory.grow pays for the requested pages even when the grow fails;
//     bulk operations pay per started 64 units, not per byte.
//   - Recursion depth is bounded by wazero's stack limit, not by gas beyond
//     Schedule.Call per call.
//   - Functions may declare at most 50,000 locals and a module 2^24 in all
//     (protection against decoder memory blow-up); malformed or duplicate
//     "name" custom sections are dropped, other custom sections are kept.
//   - Cost: on a Go wasip1 module the code grows by about half, wazero's
//     compile time by about as much, and a tight loop runs about 2x slower
//     on the compiler engine (BenchmarkInstrumentedLoop).
package gas

import (
	"errors"
	"fmt"
	"math"

	"github.com/tetratelabs/wazero/api"
)

// GlobalName is the export name of the gas counter global added by Instrument.
const GlobalName = "phala_gas"

// Exhausted is the value of the gas counter after a metered charge did not
// fit: the instance trapped (unreachable) because it ran out of gas.
const Exhausted uint64 = math.MaxUint64

// MaxGas is the largest gas value the counter can hold. SetRemaining clamps
// larger values to it.
const MaxGas uint64 = math.MaxInt64

// maxDynamicUnitCost bounds the per-unit dynamic costs so that units*cost
// computed in the guest never exceeds MaxGas (units < 2^32).
const maxDynamicUnitCost = math.MaxInt32

// Schedule gives the gas cost of instructions. All costs are static (known
// from the bytecode) except MemoryGrowPage and BulkChunk, which are charged at
// run time from the instruction's size operand. A Schedule is part of
// consensus: changing it changes gas used and thus results.
type Schedule struct {
	// InitialGas is the initial value of the gas counter in the instrumented
	// module: the budget of the start section and of start functions (such
	// as _initialize) that wazero runs while instantiating, before the host
	// can call SetRemaining. Clamped to MaxGas.
	InitialGas uint64

	// Base is the cost of every instruction not covered by a field below,
	// including every branch, so it must be at least 1: each loop iteration
	// then costs at least 1 and no loop runs forever.
	Base uint32
	// Structural is the cost of block, loop, else, end and nop, which
	// compile to no work (if, which tests its operand, costs Base).
	Structural uint32
	// Call is the cost of call and call_indirect (the callee's body is
	// metered on its own; host functions charge what they do themselves).
	// Must be at least 1 so unbounded recursion is metered as well.
	Call uint32
	// DivRem is the cost of integer division and remainder (i32/i64
	// div_s, div_u, rem_s, rem_u) and of float division and square root.
	DivRem uint32
	// MemoryGrow is the static cost of memory.grow.
	MemoryGrow uint32
	// MemoryGrowPage is the dynamic cost of memory.grow per requested 64 KiB
	// page. At most math.MaxInt32.
	MemoryGrowPage uint32
	// Bulk is the static cost of memory.copy, memory.fill, memory.init,
	// table.copy, table.init, table.fill and table.grow.
	Bulk uint32
	// BulkChunk is the dynamic cost of those bulk instructions per started
	// chunk of 64 units of their length operand (bytes for memory.*,
	// elements for table.*). At most math.MaxInt32.
	BulkChunk uint32
}

// DefaultSchedule returns the default costs: 1 per instruction (about one
// machine-level operation of compiled code), 0 for the structural block,
// loop, else, end and nop, 5 per call, 8 for division, remainder and square
// root, 10 + 1 per started 64 bytes for bulk memory operations and
// 100 + 1024 per page for memory.grow (zeroing and mapping a 64 KiB page
// costs about as much as a thousand simple instructions). InitialGas is 10^9
// (about a second of compiled code at most): the _initialize of a minimal Go
// wasip1 reactor uses about 5.6*10^5 gas with these costs (TestGoReactor),
// programs with heavy package initialisation more.
func DefaultSchedule() Schedule {
	return Schedule{
		InitialGas:     1_000_000_000,
		Base:           1,
		Structural:     0,
		Call:           5,
		DivRem:         8,
		MemoryGrow:     100,
		MemoryGrowPage: 1024,
		Bulk:           10,
		BulkChunk:      1,
	}
}

// Validate reports whether s can be used by Instrument.
func (s Schedule) Validate() error {
	switch {
	case s.Base == 0:
		return errors.New("gas: schedule: Base must be at least 1 (branches would be free)")
	case s.Call == 0:
		return errors.New("gas: schedule: Call must be at least 1 (recursion would be free)")
	case s.MemoryGrowPage > maxDynamicUnitCost:
		return fmt.Errorf("gas: schedule: MemoryGrowPage %d exceeds %d", s.MemoryGrowPage, maxDynamicUnitCost)
	case s.BulkChunk > maxDynamicUnitCost:
		return fmt.Errorf("gas: schedule: BulkChunk %d exceeds %d", s.BulkChunk, maxDynamicUnitCost)
	}
	return nil
}

// counter returns the exported gas counter of mod, or nil if mod was not
// instrumented.
func counter(mod api.Module) api.MutableGlobal {
	if mod == nil {
		return nil
	}
	g := mod.ExportedGlobal(GlobalName)
	if g == nil || g.Type() != api.ValueTypeI64 {
		return nil
	}
	mg, ok := g.(api.MutableGlobal)
	if !ok {
		return nil
	}
	return mg
}

// Remaining returns the raw value of mod's gas counter and whether mod has
// one (was instrumented). After the instance ran out of gas the value is
// Exhausted; check IsExhausted (or compare with Exhausted) before treating
// the value as remaining gas. Gas used by a call is the value before minus
// the value after.
func Remaining(mod api.Module) (uint64, bool) {
	g := counter(mod)
	if g == nil {
		return 0, false
	}
	return g.Get(), true
}

// SetRemaining sets mod's gas counter, typically to the gas limit before a
// call, or to give an exhausted instance new gas. Values above MaxGas are
// clamped to MaxGas (the counter is a signed i64 in the guest). It does
// nothing if mod was not instrumented (Remaining reports ok == false then).
func SetRemaining(mod api.Module, gas uint64) {
	g := counter(mod)
	if g == nil {
		return
	}
	g.Set(min(gas, MaxGas))
}

// Charge deducts cost from mod's gas counter for work done by a host function
// on behalf of the guest (storage access, hashing...). If the counter holds
// less than cost it is set to Exhausted and Charge returns false: the host
// function should then fail the call (for example by panicking, which wazero
// turns into an error) and the VM treats the trap as out of gas, like one
// raised by the guest. Charge returns false as well if mod was not
// instrumented.
func Charge(mod api.Module, cost uint64) bool {
	return ChargeCounter(counter(mod), cost)
}

// Counter returns mod's gas counter (nil if mod was not instrumented),
// for callers that charge often: ChargeCounter on it is Charge without
// looking the counter up.
func Counter(mod api.Module) api.MutableGlobal { return counter(mod) }

// ChargeCounter is Charge on a counter Counter returned (false if nil).
func ChargeCounter(g api.MutableGlobal, cost uint64) bool {
	if g == nil {
		return false
	}
	left := g.Get()
	if left > MaxGas || left < cost {
		g.Set(Exhausted)
		return false
	}
	g.Set(left - cost)
	return true
}

// IsExhausted reports whether mod ran out of gas: its counter holds the
// Exhausted sentinel, written just before the trap. A trap with IsExhausted
// false has another cause.
func IsExhausted(mod api.Module) bool {
	v, ok := Remaining(mod)
	return ok && v == Exhausted
}
