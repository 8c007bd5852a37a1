// Package wat is a small, pure-Go assembler for a useful subset of the
// WebAssembly text format (https://webassembly.github.io/spec/core/text/).
// It exists so that test and development contracts can be written by hand
// in WAT; it is a test/development tool, not a production toolchain. It does
// not type-check function bodies: load the result into a runtime such as
// wazero, which validates the module fully.
//
//	bin, err := wat.Compile(`(module
//	  (func (export "add") (param $a i32) (param $b i32) (result i32)
//	    local.get $a
//	    local.get $b
//	    i32.add))`)
//
// Errors are *Error values with a 1-based line and column ("wat: 3:5:
// unknown instruction ...").  Compile never panics.
//
// # Supported syntax
//
// Lexical: line comments (;; ...), nested block comments ((; ... ;)),
// strings with \t \n \r \" \' \\ \hh and \u{hex} escapes, integers in
// decimal or 0x hex with optional sign and _ separators, floats (decimal,
// hex, inf, nan, nan:0x...), $identifiers.
//
// Module: either (module $name? field*) or a bare sequence of fields. The
// module name is accepted but not emitted (wazero would otherwise use it as
// the default instance name). Fields:
//
//   - (type $t (func (param i32 i64) (result i32)))
//   - (import "mod" "name" (func $f typeuse)), likewise (memory $m 1 2),
//     (table $t 1 funcref) and (global $g (mut i32)); inline
//     (func $f (import "mod" "name") typeuse) and the same for memory,
//     table and global. Imports must precede definitions, as in the spec.
//   - (func $f (export "x")* typeuse (local $l i32)* (local i64 i64)* instr*)
//     where typeuse is [(type $t)] (param $a i32)* (param i32 i64)*
//     (result i32)*; signatures without (type) reuse an identical type or
//     add one.
//   - (memory $m (export "memory")* 1 2?) and (memory (data "...")); at most
//     one memory.
//   - (table $t (export "x")* 1 2? funcref) and (table funcref (elem $f ...)).
//   - (global $g (export "x")* (mut i64) (i64.const 0)); initializers are
//     one i32/i64/f32/f64.const or global.get, folded or flat.
//   - (export "x" (func $f)), also (memory 0), (table $t), (global $g).
//   - (start $f).
//   - (data $d? (memory 0)? (i32.const 16) "..." "..."), the (offset ...)
//     form, and passive (data $d "...") for memory.init / data.drop.
//   - (elem (table $t)? (i32.const 0) func? $f $g ...): active segments of
//     function indices only.
//
// Instructions, in flat ("linear") syntax and as folded S-expressions
// ((i32.add (local.get 0) (i32.const 1)), (block $b ...), (loop ...),
// (if $l (result i32) cond (then ...) (else ...))):
//
//   - control: unreachable nop block loop if else end br br_if br_table
//     return call call_indirect; labels by $name or depth; block types
//     (result t), (param ...) (result ...) and (type $t); end/else may
//     repeat the label.
//   - parametric: drop, select, select (result t).
//   - variables: local.get/set/tee, global.get/set by $name or index.
//   - memory: every i32/i64/f32/f64 load and store with optional
//     offset=N align=N, memory.size, memory.grow, memory.copy, memory.fill,
//     memory.init, data.drop.
//   - numeric: i32/i64/f32/f64.const and all MVP numeric, comparison and
//     conversion instructions, the sign-extension operators
//     (i32.extend8_s ...) and the saturating truncations
//     (i32.trunc_sat_f32_s ...).
//
// The name section records function and local identifiers, so runtime
// stack traces show $names.
//
// # Not supported
//
// SIMD (v128), reference-type instructions (ref.*, table.*), externref,
// multiple memories, passive/declarative element segments, quoted
// identifiers ($"..."), (module binary ...) / (module quote ...), and
// script commands (assert_return etc.).
package wat
