package wat

import (
	"math/bits"
	"strings"

	"github.com/tetratelabs/wabin/leb128"
	"github.com/tetratelabs/wabin/wasm"
)

type immKind uint8

const (
	immNone immKind = iota
	immBlock
	immElse
	immEnd
	immLabel
	immBrTable
	immCall
	immCallIndirect
	immLocal
	immGlobal
	immMemarg
	immMemIdx // memory.size, memory.grow, memory.fill: one zero byte
	immMemCopy
	immMemInit
	immDataDrop
	immI32
	immI64
	immF32
	immF64
	immSelect
)

type opInfo struct {
	code  []byte
	imm   immKind
	align uint32 // natural alignment in bytes for memory accesses
}

var ops = map[string]opInfo{}

func addOp(name string, imm immKind, code ...byte) {
	ops[name] = opInfo{code: code, imm: imm}
}

// addSeq registers names with consecutive single-byte opcodes from first.
func addSeq(first byte, prefix string, names string) {
	for i, n := range strings.Fields(names) {
		addOp(prefix+n, immNone, first+byte(i))
	}
}

func init() {
	addOp("unreachable", immNone, 0x00)
	addOp("nop", immNone, 0x01)
	addOp("block", immBlock, 0x02)
	addOp("loop", immBlock, 0x03)
	addOp("if", immBlock, 0x04)
	addOp("else", immElse, 0x05)
	addOp("end", immEnd, 0x0b)
	addOp("br", immLabel, 0x0c)
	addOp("br_if", immLabel, 0x0d)
	addOp("br_table", immBrTable, 0x0e)
	addOp("return", immNone, 0x0f)
	addOp("call", immCall, 0x10)
	addOp("call_indirect", immCallIndirect, 0x11)
	addOp("drop", immNone, 0x1a)
	addOp("select", immSelect, 0x1b)
	addOp("local.get", immLocal, 0x20)
	addOp("local.set", immLocal, 0x21)
	addOp("local.tee", immLocal, 0x22)
	addOp("global.get", immGlobal, 0x23)
	addOp("global.set", immGlobal, 0x24)

	mem := []struct {
		name  string
		align uint32
	}{
		{"i32.load", 4}, {"i64.load", 8}, {"f32.load", 4}, {"f64.load", 8},
		{"i32.load8_s", 1}, {"i32.load8_u", 1}, {"i32.load16_s", 2}, {"i32.load16_u", 2},
		{"i64.load8_s", 1}, {"i64.load8_u", 1}, {"i64.load16_s", 2}, {"i64.load16_u", 2},
		{"i64.load32_s", 4}, {"i64.load32_u", 4},
		{"i32.store", 4}, {"i64.store", 8}, {"f32.store", 4}, {"f64.store", 8},
		{"i32.store8", 1}, {"i32.store16", 2}, {"i64.store8", 1}, {"i64.store16", 2}, {"i64.store32", 4},
	}
	for i, m := range mem {
		ops[m.name] = opInfo{code: []byte{0x28 + byte(i)}, imm: immMemarg, align: m.align}
	}
	addOp("memory.size", immMemIdx, 0x3f)
	addOp("memory.grow", immMemIdx, 0x40)
	addOp("i32.const", immI32, 0x41)
	addOp("i64.const", immI64, 0x42)
	addOp("f32.const", immF32, 0x43)
	addOp("f64.const", immF64, 0x44)

	addSeq(0x45, "i32.", "eqz eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u")
	addSeq(0x50, "i64.", "eqz eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u")
	addSeq(0x5b, "f32.", "eq ne lt gt le ge")
	addSeq(0x61, "f64.", "eq ne lt gt le ge")
	const intArith = "clz ctz popcnt add sub mul div_s div_u rem_s rem_u and or xor shl shr_s shr_u rotl rotr"
	addSeq(0x67, "i32.", intArith)
	addSeq(0x79, "i64.", intArith)
	const floatArith = "abs neg ceil floor trunc nearest sqrt add sub mul div min max copysign"
	addSeq(0x8b, "f32.", floatArith)
	addSeq(0x99, "f64.", floatArith)
	addSeq(0xa7, "", `i32.wrap_i64 i32.trunc_f32_s i32.trunc_f32_u i32.trunc_f64_s i32.trunc_f64_u
		i64.extend_i32_s i64.extend_i32_u i64.trunc_f32_s i64.trunc_f32_u i64.trunc_f64_s i64.trunc_f64_u
		f32.convert_i32_s f32.convert_i32_u f32.convert_i64_s f32.convert_i64_u f32.demote_f64
		f64.convert_i32_s f64.convert_i32_u f64.convert_i64_s f64.convert_i64_u f64.promote_f32
		i32.reinterpret_f32 i64.reinterpret_f64 f32.reinterpret_i32 f64.reinterpret_i64
		i32.extend8_s i32.extend16_s i64.extend8_s i64.extend16_s i64.extend32_s`)
	for i, n := range strings.Fields(`i32.trunc_sat_f32_s i32.trunc_sat_f32_u i32.trunc_sat_f64_s i32.trunc_sat_f64_u
		i64.trunc_sat_f32_s i64.trunc_sat_f32_u i64.trunc_sat_f64_s i64.trunc_sat_f64_u`) {
		addOp(n, immNone, wasm.OpcodeMiscPrefix, byte(i))
	}
	addOp("memory.init", immMemInit, wasm.OpcodeMiscPrefix, wasm.OpcodeMiscMemoryInit)
	addOp("data.drop", immDataDrop, wasm.OpcodeMiscPrefix, wasm.OpcodeMiscDataDrop)
	addOp("memory.copy", immMemCopy, wasm.OpcodeMiscPrefix, wasm.OpcodeMiscMemoryCopy)
	addOp("memory.fill", immMemIdx, wasm.OpcodeMiscPrefix, wasm.OpcodeMiscMemoryFill)
}

// unsupportedPrefixes name real WebAssembly instruction families outside the
// subset, so that they are reported as unsupported rather than unknown.
var unsupportedPrefixes = []string{
	"ref.", "table.", "elem.", "v128.", "i8x16.", "i16x8.", "i32x4.", "i64x2.", "f32x4.", "f64x2.",
	"i32.atomic.", "i64.atomic.", "memory.atomic.", "atomic.", "return_call", "call_ref",
	"try", "catch", "throw", "rethrow", "delegate", "br_on_",
}

type frame struct {
	label   *node // identifier or nil
	op      string
	pos     pos
	sawElse bool
}

type funcCompiler struct {
	c      *compiler
	fd     *funcDef
	locals *namespace
	frames []frame
	body   []byte
	depth  int // folded nesting, bounded by maxDepth via the parser
}

func (c *compiler) funcBody(fd *funcDef) (*wasm.Code, error) {
	fc := &funcCompiler{c: c, fd: fd, locals: newNamespace("local")}
	for _, id := range fd.locals {
		if _, err := fc.locals.add(id); err != nil {
			return nil, err
		}
	}
	cur := listCursor(fd.n, fd.bodyFrom)
	var localTypes []wasm.ValueType
	for cur.peekHead() == "local" {
		l := cur.next()
		lc := listCursor(l, 1)
		if id := lc.optID(); id != nil {
			vt, err := expectValType(lc)
			if err != nil {
				return nil, err
			}
			if err := lc.expectEnd("named local"); err != nil {
				return nil, err
			}
			if _, err := fc.locals.add(id); err != nil {
				return nil, err
			}
			localTypes = append(localTypes, vt)
			fd.locals = append(fd.locals, id)
			continue
		}
		for !lc.done() {
			vt, err := expectValType(lc)
			if err != nil {
				return nil, err
			}
			_, _ = fc.locals.add(nil) // cannot fail without an id
			localTypes = append(localTypes, vt)
			fd.locals = append(fd.locals, nil)
		}
	}
	if err := fc.instrs(cur, 0); err != nil {
		return nil, err
	}
	fc.body = append(fc.body, wasm.OpcodeEnd)
	return &wasm.Code{LocalTypes: localTypes, Body: fc.body}, nil
}

// instrs compiles instructions until cur is exhausted. base is the number of
// enclosing frames owned by callers; flat end/else may not pop below it, and
// all frames opened here must be closed by the end.
func (fc *funcCompiler) instrs(cur *cursor, base int) error {
	for !cur.done() {
		n := cur.peek()
		if n.list {
			cur.next()
			if err := fc.folded(n); err != nil {
				return err
			}
			continue
		}
		if err := fc.plain(cur, base, nil); err != nil {
			return err
		}
	}
	if len(fc.frames) > base {
		f := fc.frames[len(fc.frames)-1]
		return errorf(f.pos, "%s is missing its end (the enclosing list closes at %s)", f.op, cur.end)
	}
	return nil
}

func (fc *funcCompiler) emit(b ...byte) { fc.body = append(fc.body, b...) }

// plain compiles one instruction in flat syntax starting at cur. If out is
// non-nil the encoding is written there instead of the body (used by folded
// instructions, whose operands must be emitted first).
func (fc *funcCompiler) plain(cur *cursor, base int, out *[]byte) error {
	opNode := cur.next()
	if !opNode.isKeyword() {
		return errorf(opNode.pos, "expected instruction, found %s", opNode.describe())
	}
	op, ok := ops[opNode.text]
	if !ok {
		for _, p := range unsupportedPrefixes {
			if strings.HasPrefix(opNode.text, p) {
				return errorf(opNode.pos, "unsupported instruction %q (outside the subset documented in package wat)", opNode.text)
			}
		}
		return errorf(opNode.pos, "unknown instruction %q", opNode.text)
	}
	var enc []byte
	enc = append(enc, op.code...)
	var err error
	switch op.imm {
	case immNone:
	case immBlock:
		if out != nil {
			return errorf(opNode.pos, "%s cannot be used here", opNode.text)
		}
		label := cur.optID()
		bt, err := fc.blockType(cur)
		if err != nil {
			return err
		}
		enc = append(enc, bt...)
		fc.frames = append(fc.frames, frame{label: label, op: opNode.text, pos: opNode.pos})
	case immElse, immEnd:
		if out != nil {
			return errorf(opNode.pos, "%s cannot be used in a folded instruction", opNode.text)
		}
		if len(fc.frames) <= base {
			return errorf(opNode.pos, "%s without matching block, loop or if", opNode.text)
		}
		top := &fc.frames[len(fc.frames)-1]
		if op.imm == immElse {
			if top.op != "if" || top.sawElse {
				return errorf(opNode.pos, "else without matching if")
			}
			top.sawElse = true
		} else {
			fc.frames = fc.frames[:len(fc.frames)-1]
		}
		if id := cur.optID(); id != nil && (top.label == nil || top.label.text != id.text) {
			return errorf(id.pos, "label %s does not match the enclosing %s", id.text, top.op)
		}
	case immLabel:
		enc, err = fc.labelIdx(cur, opNode, enc)
	case immBrTable:
		enc, err = fc.brTable(cur, opNode, enc)
	case immCall:
		var idx uint32
		if idx, err = fc.c.funcs.resolve(cur.next(), cur.end); err == nil {
			enc = append(enc, leb128.EncodeUint32(idx)...)
		}
	case immCallIndirect:
		enc, err = fc.callIndirect(cur, opNode, enc)
	case immLocal:
		var idx uint32
		if idx, err = fc.locals.resolve(cur.next(), cur.end); err == nil {
			enc = append(enc, leb128.EncodeUint32(idx)...)
		}
	case immGlobal:
		var idx uint32
		if idx, err = fc.c.globals.resolve(cur.next(), cur.end); err == nil {
			enc = append(enc, leb128.EncodeUint32(idx)...)
		}
	case immMemarg:
		enc, err = fc.memarg(cur, opNode, op, enc)
	case immMemIdx:
		if err = fc.optMemIdx(cur, opNode); err == nil {
			enc = append(enc, 0x00)
		}
	case immMemCopy:
		if err = fc.optMemIdx(cur, opNode); err == nil {
			if err = fc.optMemIdx(cur, opNode); err == nil {
				enc = append(enc, 0x00, 0x00)
			}
		}
	case immMemInit, immDataDrop:
		if op.imm == immMemInit {
			if err = fc.requireMemory(opNode); err != nil {
				return err
			}
		}
		var idx uint32
		if idx, err = fc.c.datas.resolve(cur.next(), cur.end); err == nil {
			enc = append(enc, leb128.EncodeUint32(idx)...)
			if op.imm == immMemInit {
				enc = append(enc, 0x00)
			}
			fc.c.needDataCnt = true
		}
	case immI32:
		var b []byte
		if b, err = immInt(cur.next(), cur.end, 32); err == nil {
			enc = append(enc, b...)
		}
	case immI64:
		var b []byte
		if b, err = immInt(cur.next(), cur.end, 64); err == nil {
			enc = append(enc, b...)
		}
	case immF32:
		var b []byte
		if b, err = immFloat(cur.next(), cur.end, 32); err == nil {
			enc = append(enc, b...)
		}
	case immF64:
		var b []byte
		if b, err = immFloat(cur.next(), cur.end, 64); err == nil {
			enc = append(enc, b...)
		}
	case immSelect:
		if cur.peekHead() == "result" {
			var s sig
			if err = paramsResults(cur, &s, false); err == nil {
				enc = []byte{wasm.OpcodeTypedSelect}
				enc = append(enc, leb128.EncodeUint32(uint32(len(s.results)))...)
				enc = append(enc, s.results...)
			}
		}
	default:
		return errorf(opNode.pos, "unsupported instruction %q", opNode.text)
	}
	if err != nil {
		return err
	}
	if out != nil {
		*out = enc
	} else {
		fc.emit(enc...)
	}
	return nil
}

func (fc *funcCompiler) requireMemory(opNode *node) error {
	if fc.c.mems.count == 0 {
		return errorf(opNode.pos, "%s requires a memory", opNode.text)
	}
	return nil
}

// optMemIdx accepts an optional memory index (only 0 exists).
func (fc *funcCompiler) optMemIdx(cur *cursor, opNode *node) error {
	if err := fc.requireMemory(opNode); err != nil {
		return err
	}
	if n := cur.peek(); n.isID() || (n.isAtom() && n.text != "" && n.text[0] >= '0' && n.text[0] <= '9') {
		cur.next()
		_, err := fc.c.mems.resolve(n, n.pos)
		return err
	}
	return nil
}

func (fc *funcCompiler) memarg(cur *cursor, opNode *node, op opInfo, enc []byte) ([]byte, error) {
	if err := fc.requireMemory(opNode); err != nil {
		return nil, err
	}
	if n := cur.peek(); n.isID() || (n.isAtom() && n.text != "" && n.text[0] >= '0' && n.text[0] <= '9') {
		cur.next() // memory index
		if _, err := fc.c.mems.resolve(n, n.pos); err != nil {
			return nil, err
		}
	}
	var offset uint32
	align := op.align
	if n := cur.peek(); n.isAtom() && strings.HasPrefix(n.text, "offset=") {
		cur.next()
		v, ok := parseU32(n.text[len("offset="):])
		if !ok {
			return nil, errorf(n.pos, "invalid offset %q: expected unsigned 32-bit integer", n.text)
		}
		offset = v
	}
	if n := cur.peek(); n.isAtom() && strings.HasPrefix(n.text, "align=") {
		cur.next()
		v, ok := parseU32(n.text[len("align="):])
		if !ok || v == 0 || v&(v-1) != 0 {
			return nil, errorf(n.pos, "invalid alignment %q: expected a power of two", n.text)
		}
		if v > op.align {
			return nil, errorf(n.pos, "alignment %d is larger than the natural alignment %d of %s", v, op.align, opNode.text)
		}
		align = v
	}
	if n := cur.peek(); n.isAtom() && (strings.HasPrefix(n.text, "offset=") || strings.HasPrefix(n.text, "align=")) {
		return nil, errorf(n.pos, "unexpected %s: write offset= before align=, each at most once", n.text)
	}
	enc = append(enc, leb128.EncodeUint32(uint32(bits.TrailingZeros32(align)))...)
	return append(enc, leb128.EncodeUint32(offset)...), nil
}

// label resolves a label reference to a relative depth.
func (fc *funcCompiler) label(n *node, end pos) (uint32, error) {
	if n == nil || !n.isAtom() {
		return 0, errorf(posOf(n, end), "expected label ($name or depth), found %s", n.describe())
	}
	if n.isID() {
		for i := len(fc.frames) - 1; i >= 0; i-- {
			if l := fc.frames[i].label; l != nil && l.text == n.text {
				return uint32(len(fc.frames) - 1 - i), nil
			}
		}
		return 0, errorf(n.pos, "undefined label %s", n.text)
	}
	d, ok := parseU32(n.text)
	if !ok {
		return 0, errorf(n.pos, "expected label ($name or depth), found %s", n.describe())
	}
	if d > uint32(len(fc.frames)) {
		return 0, errorf(n.pos, "label depth %d out of range (%d enclosing blocks)", d, len(fc.frames))
	}
	return d, nil
}

func (fc *funcCompiler) labelIdx(cur *cursor, opNode *node, enc []byte) ([]byte, error) {
	d, err := fc.label(cur.next(), cur.end)
	if err != nil {
		return nil, err
	}
	return append(enc, leb128.EncodeUint32(d)...), nil
}

func isLabelRef(n *node) bool {
	return n.isID() || (n.isAtom() && n.text != "" && n.text[0] >= '0' && n.text[0] <= '9')
}

func (fc *funcCompiler) brTable(cur *cursor, opNode *node, enc []byte) ([]byte, error) {
	var depths []uint32
	for isLabelRef(cur.peek()) {
		d, err := fc.label(cur.next(), cur.end)
		if err != nil {
			return nil, err
		}
		depths = append(depths, d)
	}
	if len(depths) == 0 {
		return nil, errorf(cur.pos(), "br_table needs at least one label")
	}
	enc = append(enc, leb128.EncodeUint32(uint32(len(depths)-1))...)
	for _, d := range depths {
		enc = append(enc, leb128.EncodeUint32(d)...)
	}
	return enc, nil
}

func (fc *funcCompiler) callIndirect(cur *cursor, opNode *node, enc []byte) ([]byte, error) {
	var table uint32
	if n := cur.peek(); isLabelRef(n) {
		cur.next()
		var err error
		if table, err = fc.c.tables.resolve(n, n.pos); err != nil {
			return nil, err
		}
	} else if fc.c.tables.count == 0 {
		return nil, errorf(opNode.pos, "call_indirect requires a table")
	}
	tidx, _, err := fc.c.typeUse(cur, false)
	if err != nil {
		return nil, err
	}
	enc = append(enc, leb128.EncodeUint32(tidx)...)
	return append(enc, leb128.EncodeUint32(table)...), nil
}

// blockType parses an optional block type and returns its encoding.
func (fc *funcCompiler) blockType(cur *cursor) ([]byte, error) {
	h := cur.peekHead()
	if h != "type" && h != "param" && h != "result" {
		return []byte{0x40}, nil
	}
	s := &sig{}
	var tidx uint32
	if h == "type" {
		var err error
		if tidx, s, err = fc.c.typeUse(cur, false); err != nil {
			return nil, err
		}
	} else if err := paramsResults(cur, s, false); err != nil {
		return nil, err
	}
	if s.typeRef == nil {
		switch {
		case len(s.params) == 0 && len(s.results) == 0:
			return []byte{0x40}, nil
		case len(s.params) == 0 && len(s.results) == 1:
			return []byte{s.results[0]}, nil
		}
		tidx = fc.c.findOrAddType(s.params, s.results)
	}
	return leb128.EncodeInt64(int64(tidx)), nil
}

// folded compiles a folded instruction: (op imm* folded*), (block ...),
// (loop ...), (if label bt folded* (then ...) (else ...)?).
func (fc *funcCompiler) folded(n *node) error {
	if len(n.kids) == 0 || !n.kids[0].isKeyword() {
		return errorf(n.pos, "expected folded instruction like (i32.add ...), found %s", n.describe())
	}
	opNode := n.kids[0]
	cur := listCursor(n, 0)
	switch opNode.text {
	case "block", "loop":
		base := len(fc.frames)
		if err := fc.plain(cur, base, nil); err != nil {
			return err
		}
		if err := fc.instrs(cur, base+1); err != nil {
			return err
		}
		fc.frames = fc.frames[:base]
		fc.emit(wasm.OpcodeEnd)
		return nil
	case "if":
		return fc.foldedIf(n)
	case "then", "else", "end":
		return errorf(opNode.pos, "unexpected (%s ...)", opNode.text)
	case "param", "result", "type", "local", "export", "import":
		return errorf(n.pos, "(%s ...) is out of place: function fields must come in the order (export) (import) (type) (param) (result) (local), before the instructions", opNode.text)
	}
	var enc []byte
	if err := fc.plain(cur, len(fc.frames), &enc); err != nil {
		return err
	}
	for !cur.done() {
		arg := cur.next()
		if !arg.list {
			return errorf(arg.pos, "unexpected %s in folded %s (operands must be parenthesized instructions)", arg.describe(), opNode.text)
		}
		if err := fc.folded(arg); err != nil {
			return err
		}
	}
	fc.emit(enc...)
	return nil
}

func (fc *funcCompiler) foldedIf(n *node) error {
	cur := listCursor(n, 1)
	label := cur.optID()
	bt, err := fc.blockType(cur)
	if err != nil {
		return err
	}
	for !cur.done() && cur.peekHead() != "then" {
		cond := cur.next()
		if !cond.list {
			return errorf(cond.pos, "unexpected %s in folded if (expected condition instructions then (then ...))", cond.describe())
		}
		if err := fc.folded(cond); err != nil {
			return err
		}
	}
	then := cur.next()
	if then == nil {
		return errorf(n.end, "folded if is missing (then ...)")
	}
	base := len(fc.frames)
	fc.emit(wasm.OpcodeIf)
	fc.emit(bt...)
	fc.frames = append(fc.frames, frame{label: label, op: "if", pos: n.pos})
	if err := fc.instrs(listCursor(then, 1), base+1); err != nil {
		return err
	}
	if els := cur.next(); els != nil {
		if els.head() != "else" {
			return errorf(els.pos, "expected (else ...) after (then ...), found %s", els.describe())
		}
		fc.frames[base].sawElse = true
		fc.emit(wasm.OpcodeElse)
		if err := fc.instrs(listCursor(els, 1), base+1); err != nil {
			return err
		}
	}
	if err := cur.expectEnd("folded if"); err != nil {
		return err
	}
	fc.frames = fc.frames[:base]
	fc.emit(wasm.OpcodeEnd)
	return nil
}
