package gas

import (
	"fmt"
	"math"

	"github.com/tetratelabs/wabin/wasm"
)

// Opcodes used by the walker and the emitted charge sequences.
const (
	opUnreachable  = 0x00
	opNop          = 0x01
	opBlock        = 0x02
	opLoop         = 0x03
	opIf           = 0x04
	opElse         = 0x05
	opEnd          = 0x0b
	opBr           = 0x0c
	opBrIf         = 0x0d
	opBrTable      = 0x0e
	opReturn       = 0x0f
	opCall         = 0x10
	opCallIndirect = 0x11
	opDrop         = 0x1a
	opSelect       = 0x1b
	opSelectT      = 0x1c
	opLocalGet     = 0x20
	opLocalSet     = 0x21
	opLocalTee     = 0x22
	opGlobalGet    = 0x23
	opGlobalSet    = 0x24
	opTableGet     = 0x25
	opTableSet     = 0x26
	opI32Load      = 0x28
	opI64Store32   = 0x3e
	opMemorySize   = 0x3f
	opMemoryGrow   = 0x40
	opI32Const     = 0x41
	opI64Const     = 0x42
	opF32Const     = 0x43
	opF64Const     = 0x44
	opI32Eqz       = 0x45
	opI64LtS       = 0x53
	opI64Add       = 0x7c
	opI64Sub       = 0x7d
	opI64Mul       = 0x7e
	opI64ShrU      = 0x88
	opI64ExtendU   = 0xad
	opI64Extend32S = 0xc4
	opRefNull      = 0xd0
	opRefIsNull    = 0xd1
	opRefFunc      = 0xd2
	opMiscPrefix   = 0xfc
	opVecPrefix    = 0xfd
	blockTypeEmpty = 0x40
)

// Kinds of dynamic (operand-dependent) charges.
const (
	dynNone = iota
	dynPages
	dynChunks
)

// bulkChunkShift: bulk operations pay per started 1<<bulkChunkShift units.
const bulkChunkShift = 6

// instr describes one decoded instruction.
type instr struct {
	op   byte
	next int    // offset just past the instruction and its immediates
	cost uint32 // static cost
	dyn  int    // dynamic charge kind
}

// validVec marks the SIMD sub-opcodes of WebAssembly 2.0. Like wazero, the
// walker reads the sub-opcode as one raw byte.
var validVec = func() (v [256]bool) {
	for i := range v {
		v[i] = true
	}
	for _, op := range []byte{0x9a, 0xa2, 0xa5, 0xa6, 0xaf, 0xb0, 0xb2, 0xb3, 0xb4, 0xbb,
		0xc2, 0xc5, 0xc6, 0xcf, 0xd0, 0xd2, 0xd3, 0xd4, 0xe2, 0xee} {
		v[op] = false
	}
	return v
}()

// funcContext is what the walker needs to know about the function.
type funcContext struct {
	numTypes   uint32 // size of the type section (multi-value block types)
	numLocals  uint32 // parameters + declared locals, before instrumentation
	numGlobals uint32 // globals before instrumentation
}

// decode decodes the instruction at body[pc:], following the encodings wazero
// accepts (see leb.go), and assigns its static cost from s.
func decode(body []byte, pc int, fc *funcContext, s *Schedule) (in instr, err error) {
	op := body[pc]
	in.op = op
	in.cost = s.Base
	p := pc + 1

	u32 := func() uint32 {
		if err != nil {
			return 0
		}
		v, n, e := readU32(body[p:])
		if e != nil {
			err = fmt.Errorf("%#x at %d: immediate: %v", op, pc, e)
			return 0
		}
		p += n
		return v
	}
	fixed := func(n int) {
		if err == nil && n > len(body)-p {
			err = fmt.Errorf("%#x at %d: truncated immediate", op, pc)
		}
		p += n
	}
	zeroByte := func() {
		if err == nil && (p >= len(body) || body[p] != 0) {
			err = fmt.Errorf("%#x at %d: reserved byte must be 0x00", op, pc)
		}
		p++
	}
	memarg := func() {
		if align := u32(); err == nil && align >= 32 {
			err = fmt.Errorf("%#x at %d: invalid alignment %d", op, pc, align)
		}
		u32() // offset
	}

	switch {
	case op == opUnreachable || op == opReturn || op == opDrop || op == opSelect || op == opRefIsNull:
	case op == opNop || op == opElse || op == opEnd:
		in.cost = s.Structural
	case op == opBlock || op == opLoop || op == opIf:
		if op != opIf {
			in.cost = s.Structural
		}
		bt, n, e := readS33(body[p:])
		if e != nil {
			return in, fmt.Errorf("%#x at %d: block type: %v", op, pc, e)
		}
		p += n
		switch {
		case bt == -64, bt >= -5 && bt <= -1, bt == -16, bt == -17: // empty, i32 i64 f32 f64 v128, funcref, externref
		case bt >= 0 && bt < int64(fc.numTypes):
		default:
			return in, fmt.Errorf("%#x at %d: invalid block type %d", op, pc, bt)
		}
	case op == opBr || op == opBrIf:
		u32()
	case op == opBrTable:
		for n := u32(); n > 0 && err == nil; n-- {
			u32()
		}
		u32()
	case op == opCall:
		in.cost = s.Call
		u32()
	case op == opCallIndirect:
		in.cost = s.Call
		u32()
		u32()
	case op == opSelectT:
		if p+1 >= len(body) || body[p] != 1 {
			return in, fmt.Errorf("select at %d: exactly one type immediate expected", pc)
		}
		switch body[p+1] {
		case wasm.ValueTypeI32, wasm.ValueTypeI64, wasm.ValueTypeF32, wasm.ValueTypeF64,
			wasm.ValueTypeV128, wasm.ValueTypeFuncref, wasm.ValueTypeExternref:
		default:
			return in, fmt.Errorf("select at %d: invalid value type %#x", pc, body[p+1])
		}
		p += 2
	case op >= opLocalGet && op <= opLocalTee:
		if idx := u32(); err == nil && idx >= fc.numLocals {
			return in, fmt.Errorf("%#x at %d: local %d out of range (%d)", op, pc, idx, fc.numLocals)
		}
	case op == opGlobalGet || op == opGlobalSet:
		if idx := u32(); err == nil && idx >= fc.numGlobals {
			return in, fmt.Errorf("%#x at %d: global %d out of range (%d)", op, pc, idx, fc.numGlobals)
		}
	case op == opTableGet || op == opTableSet || op == opRefFunc:
		u32()
	case op >= opI32Load && op <= opI64Store32:
		memarg()
	case op == opMemorySize:
		zeroByte()
	case op == opMemoryGrow:
		zeroByte()
		in.cost = s.MemoryGrow
		in.dyn = dynPages
	case op == opI32Const:
		_, n, e := readS32(body[p:])
		if e != nil {
			return in, fmt.Errorf("i32.const at %d: %v", pc, e)
		}
		p += n
	case op == opI64Const:
		_, n, e := readS64(body[p:])
		if e != nil {
			return in, fmt.Errorf("i64.const at %d: %v", pc, e)
		}
		p += n
	case op == opF32Const:
		fixed(4)
	case op == opF64Const:
		fixed(8)
	case op >= opI32Eqz && op <= opI64Extend32S: // numeric, incl. sign extension
		switch op {
		case 0x6d, 0x6e, 0x6f, 0x70, // i32.div_s div_u rem_s rem_u
			0x7f, 0x80, 0x81, 0x82, // i64.div_s div_u rem_s rem_u
			0x91, 0x95, 0x9f, 0xa3: // f32.sqrt f32.div f64.sqrt f64.div
			in.cost = s.DivRem
		}
	case op == opRefNull:
		if p >= len(body) || (body[p] != wasm.RefTypeFuncref && body[p] != wasm.RefTypeExternref) {
			return in, fmt.Errorf("ref.null at %d: invalid reference type", pc)
		}
		p++
	case op == opMiscPrefix:
		sub := u32()
		if err != nil {
			return in, err
		}
		switch sub {
		case 0, 1, 2, 3, 4, 5, 6, 7: // i32/i64.trunc_sat_f32/f64_s/u
		case 8: // memory.init dataidx 0x00
			u32()
			zeroByte()
			in.cost, in.dyn = s.Bulk, dynChunks
		case 9, 13: // data.drop dataidx, elem.drop elemidx
			u32()
		case 10: // memory.copy 0x00 0x00
			zeroByte()
			zeroByte()
			in.cost, in.dyn = s.Bulk, dynChunks
		case 11: // memory.fill 0x00
			zeroByte()
			in.cost, in.dyn = s.Bulk, dynChunks
		case 12, 14: // table.init elemidx tableidx, table.copy dst src
			u32()
			u32()
			in.cost, in.dyn = s.Bulk, dynChunks
		case 15, 17: // table.grow, table.fill
			u32()
			in.cost, in.dyn = s.Bulk, dynChunks
		case 16: // table.size
			u32()
		default:
			return in, fmt.Errorf("unknown 0xfc sub-opcode %d at %d", sub, pc)
		}
	case op == opVecPrefix:
		if p >= len(body) {
			return in, fmt.Errorf("truncated SIMD instruction at %d", pc)
		}
		sub := body[p]
		p++
		switch {
		case !validVec[sub]:
			return in, fmt.Errorf("unknown SIMD sub-opcode %#x at %d", sub, pc)
		case sub <= 0x0b || sub == 0x5c || sub == 0x5d: // loads, store, load zero
			memarg()
		case sub == 0x0c || sub == 0x0d: // v128.const, i8x16.shuffle
			fixed(16)
		case sub >= 0x15 && sub <= 0x22: // extract/replace lane
			fixed(1)
		case sub >= 0x54 && sub <= 0x5b: // load/store lane
			memarg()
			fixed(1)
		}
	default:
		return in, fmt.Errorf("unsupported opcode %#x at %d", op, pc)
	}
	if err != nil {
		return in, err
	}
	if p > len(body) {
		return in, fmt.Errorf("%#x at %d: truncated immediate", op, pc)
	}
	in.next = p
	return in, nil
}

// bodyWriter rewrites function bodies; its buffers are reused across
// functions.
type bodyWriter struct {
	s        *Schedule
	gasIdx   []byte // LEB128 of the gas global index
	out      []byte
	stack    []byte // control frames: opBlock, opLoop, opIf, opElse
	usesTemp bool
	tmp32    []byte // LEB128 of the i32 temporary's index
	tmp64    []byte // LEB128 of the i64 temporary's index
}

// charge emits the static charge of cost.
func (w *bodyWriter) charge(cost uint64) {
	o := w.out
	o = append(o, opGlobalGet)
	o = append(o, w.gasIdx...)
	o = append(o, opI64Const)
	o = appendS64(o, int64(cost))
	o = append(o, opI64LtS, opIf, blockTypeEmpty, opI64Const, 0x7f, opGlobalSet)
	o = append(o, w.gasIdx...)
	o = append(o, opUnreachable, opEnd, opGlobalGet)
	o = append(o, w.gasIdx...)
	o = append(o, opI64Const)
	o = appendS64(o, int64(cost))
	o = append(o, opI64Sub, opGlobalSet)
	w.out = append(o, w.gasIdx...)
}

// dynamic emits the charge of an operand-dependent instruction whose size
// operand (i32) is on top of the stack, leaving the operand in place.
func (w *bodyWriter) dynamic(kind int) {
	var unit uint32
	if kind == dynPages {
		unit = w.s.MemoryGrowPage
	} else {
		unit = w.s.BulkChunk
	}
	if unit == 0 {
		return
	}
	w.usesTemp = true
	o := w.out
	o = append(o, opLocalTee)
	o = append(o, w.tmp32...)
	o = append(o, opI64ExtendU)
	if kind == dynChunks { // (n + 63) >> 6
		o = append(o, opI64Const, 1<<bulkChunkShift-1, opI64Add, opI64Const, bulkChunkShift, opI64ShrU)
	}
	o = append(o, opI64Const)
	o = appendS64(o, int64(unit))
	o = append(o, opI64Mul, opLocalSet)
	o = append(o, w.tmp64...)
	o = append(o, opGlobalGet)
	o = append(o, w.gasIdx...)
	o = append(o, opLocalGet)
	o = append(o, w.tmp64...)
	o = append(o, opI64LtS, opIf, blockTypeEmpty, opI64Const, 0x7f, opGlobalSet)
	o = append(o, w.gasIdx...)
	o = append(o, opUnreachable, opEnd, opGlobalGet)
	o = append(o, w.gasIdx...)
	o = append(o, opLocalGet)
	o = append(o, w.tmp64...)
	o = append(o, opI64Sub, opGlobalSet)
	o = append(o, w.gasIdx...)
	o = append(o, opLocalGet)
	w.out = append(o, w.tmp32...)
}

// rewrite instruments one function body (instructions only, locals excluded)
// and appends the result to w.out.
func (w *bodyWriter) rewrite(body []byte, fc *funcContext) error {
	w.stack = append(w.stack[:0], opBlock) // the function's own frame
	w.usesTemp = false
	w.tmp32 = appendU32(w.tmp32[:0], fc.numLocals)
	w.tmp64 = appendU32(w.tmp64[:0], fc.numLocals+1)

	segStart := 0
	var segCost uint64
	var dynAt []int // body offsets of dynamic instructions in the segment
	var dynKind []int
	dead, segDead := false, false
	deadHeight := 0 // control stack height where dead code began

	for pc := 0; pc < len(body); {
		if len(w.stack) == 0 {
			return fmt.Errorf("instructions after the function's final end at %d", pc)
		}
		in, err := decode(body, pc, fc, w.s)
		if err != nil {
			return err
		}
		segCost += uint64(in.cost)
		if segCost > MaxGas {
			return fmt.Errorf("segment cost overflows at %d", pc)
		}
		if in.dyn != dynNone {
			dynAt = append(dynAt, pc)
			dynKind = append(dynKind, in.dyn)
		}

		boundary := true
		switch in.op {
		case opBlock, opLoop, opIf:
			w.stack = append(w.stack, in.op)
		case opElse:
			if top := len(w.stack) - 1; top < 1 || w.stack[top] != opIf {
				return fmt.Errorf("else without if at %d", pc)
			}
			w.stack[len(w.stack)-1] = opElse
			if dead && len(w.stack) == deadHeight {
				dead = false
			}
		case opEnd:
			w.stack = w.stack[:len(w.stack)-1]
			if dead && len(w.stack) < deadHeight {
				dead = false
			}
		case opBr, opBrTable, opReturn, opUnreachable:
			if !dead {
				dead, deadHeight = true, len(w.stack)
			}
		case opBrIf, opCall, opCallIndirect:
		default:
			boundary = false
		}
		if !boundary && in.next < len(body) {
			pc = in.next
			continue
		}

		// Flush the segment body[segStart:in.next].
		if !segDead && segCost > 0 {
			w.charge(segCost)
		}
		from := segStart
		for i, at := range dynAt {
			w.out = append(w.out, body[from:at]...)
			w.dynamic(dynKind[i])
			from = at
		}
		w.out = append(w.out, body[from:in.next]...)
		segStart, segCost, segDead = in.next, 0, dead
		dynAt, dynKind = dynAt[:0], dynKind[:0]
		pc = in.next
	}
	if len(w.stack) != 0 {
		return fmt.Errorf("function body does not end with its final end")
	}
	return nil
}

// instrumentCode returns the content of the new code section.
func instrumentCode(m *wasm.Module, s Schedule, gasIndex uint32) ([]byte, error) {
	if len(m.CodeSection) != len(m.FunctionSection) {
		return nil, fmt.Errorf("%d function declarations but %d bodies", len(m.FunctionSection), len(m.CodeSection))
	}
	w := &bodyWriter{s: &s, gasIdx: appendU32(nil, gasIndex)}
	fc := funcContext{
		numTypes:   uint32(len(m.TypeSection)),
		numGlobals: gasIndex,
	}
	size := 0
	for _, c := range m.CodeSection {
		size += len(c.Body)
	}
	section := make([]byte, 0, size*3+16)
	section = appendU32(section, uint32(len(m.CodeSection)))
	var entry []byte
	for i, c := range m.CodeSection {
		ti := m.FunctionSection[i]
		if ti >= uint32(len(m.TypeSection)) {
			return nil, fmt.Errorf("function %d: type %d out of range", i, ti)
		}
		locals := uint64(len(m.TypeSection[ti].Params)) + uint64(len(c.LocalTypes))
		if locals+2 > math.MaxUint32 {
			return nil, fmt.Errorf("function %d: too many locals", i)
		}
		fc.numLocals = uint32(locals)

		w.out = w.out[:0]
		if err := w.rewrite(c.Body, &fc); err != nil {
			return nil, fmt.Errorf("function %d (index %d): %w", i, uint32(i)+m.ImportFuncCount(), err)
		}

		entry = appendLocals(entry[:0], c.LocalTypes, w.usesTemp)
		entry = append(entry, w.out...)
		section = appendU32(section, uint32(len(entry)))
		section = append(section, entry...)
	}
	return section, nil
}

// appendLocals encodes local declarations run-length compressed, plus the
// instrumentation's i32 and i64 temporaries if extra is set.
func appendLocals(dst []byte, types []wasm.ValueType, extra bool) []byte {
	if extra {
		types = append(types[:len(types):len(types)], wasm.ValueTypeI32, wasm.ValueTypeI64)
	}
	groups := 0
	for i := range types {
		if i == 0 || types[i] != types[i-1] {
			groups++
		}
	}
	dst = appendU32(dst, uint32(groups))
	for i := 0; i < len(types); {
		j := i
		for j < len(types) && types[j] == types[i] {
			j++
		}
		dst = appendU32(dst, uint32(j-i))
		dst = append(dst, types[i])
		i = j
	}
	return dst
}
