package wat

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/leb128"
	"github.com/tetratelabs/wabin/wasm"
)

// Compile assembles WebAssembly text (a single module) into the binary
// format. Errors are *Error values carrying the line and column of the
// offending token. Compile does not type-check function bodies; load the
// result into a runtime (e.g. wazero) for full validation.
func Compile(src string) (bin []byte, err error) {
	defer func() {
		// Defensive only: compile is written (and fuzzed) not to panic,
		// but an assembler for tests must never take its caller down.
		if r := recover(); r != nil {
			bin, err = nil, &Error{Line: 1, Col: 1, Msg: fmt.Sprintf("internal error: %v", r)}
		}
	}()
	return compile(src)
}

func compile(src string) ([]byte, error) {
	nodes, err := parse(src)
	if err != nil {
		return nil, err
	}
	c := newCompiler()
	if err := c.compile(nodes); err != nil {
		return nil, err
	}
	return c.encode(), nil
}

// MustCompile is like Compile but panics on error. It is meant for tests
// and package-level fixtures.
func MustCompile(src string) []byte {
	bin, err := Compile(src)
	if err != nil {
		panic(err)
	}
	return bin
}

// namespace maps identifiers to indices for one index space.
type namespace struct {
	what  string // "function", "global", ... for messages
	names map[string]uint32
	count uint32
}

func newNamespace(what string) *namespace {
	return &namespace{what: what, names: map[string]uint32{}}
}

// add allocates the next index, binding id (may be nil) to it.
func (ns *namespace) add(id *node) (uint32, error) {
	idx := ns.count
	if id != nil {
		if _, dup := ns.names[id.text]; dup {
			return 0, errorf(id.pos, "duplicate %s %s", ns.what, id.text)
		}
		ns.names[id.text] = idx
	}
	ns.count++
	return idx, nil
}

// resolve turns an identifier or numeric index atom into an index.
func (ns *namespace) resolve(n *node, at pos) (uint32, error) {
	if n == nil || !n.isAtom() {
		if n != nil {
			at = n.pos
		}
		return 0, errorf(at, "expected %s index or $name, found %s", ns.what, n.describe())
	}
	if n.isID() {
		idx, ok := ns.names[n.text]
		if !ok {
			return 0, errorf(n.pos, "undefined %s %s", ns.what, n.text)
		}
		return idx, nil
	}
	idx, ok := parseU32(n.text)
	if !ok {
		return 0, errorf(n.pos, "expected %s index or $name, found %s", ns.what, n.describe())
	}
	if idx >= ns.count {
		return 0, errorf(n.pos, "%s index %d out of range (%d defined)", ns.what, idx, ns.count)
	}
	return idx, nil
}

// cursor walks the children of a list.
type cursor struct {
	nodes []*node
	i     int
	end   pos // reported when input runs out
}

func listCursor(n *node, skip int) *cursor {
	c := &cursor{nodes: n.kids, end: n.end}
	if skip > len(n.kids) {
		skip = len(n.kids)
	}
	c.i = skip
	return c
}

func (c *cursor) peek() *node {
	if c.i < len(c.nodes) {
		return c.nodes[c.i]
	}
	return nil
}

func (c *cursor) next() *node {
	n := c.peek()
	if n != nil {
		c.i++
	}
	return n
}

func (c *cursor) done() bool { return c.i >= len(c.nodes) }

// pos is the position of the next node, or the end of the list.
func (c *cursor) pos() pos {
	if n := c.peek(); n != nil {
		return n.pos
	}
	return c.end
}

// peekHead returns the head keyword of the next node if it is a list.
func (c *cursor) peekHead() string { return c.peek().head() }

// optID consumes an identifier if present.
func (c *cursor) optID() *node {
	if n := c.peek(); n.isID() {
		c.i++
		return n
	}
	return nil
}

// expectEnd fails if anything is left.
func (c *cursor) expectEnd(what string) error {
	if n := c.peek(); n != nil {
		return errorf(n.pos, "unexpected %s in %s", n.describe(), what)
	}
	return nil
}

type funcDef struct {
	n        *node // the (func ...) list; nil for imports
	typeIdx  uint32
	bodyFrom int     // index into n.kids where locals/body start
	locals   []*node // param then local identifiers (nil entries for unnamed)
	name     string  // identifier without '$', or ""
	imported bool
}

type pendingExport struct {
	name  *node
	kind  wasm.ExternType
	idx   uint32
	ref   *node // explicit export: the (func x) etc. list; nil if idx is set
	refNs *namespace
}

type compiler struct {
	mod *wasm.Module

	types, funcs, tables, mems, globals, datas, elems *namespace

	funcDefs     []*funcDef
	globalInits  []*node // defined globals: the global list
	globalFrom   []int   // where the init expression starts
	exports      []pendingExport
	deferred     []*node // start, elem, data fields
	defined      bool    // a non-imported func/table/memory/global was seen
	elemSegments [][]byte
	dataFields   []*node
	needDataCnt  bool
	exportNames  map[string]bool
}

func newCompiler() *compiler {
	return &compiler{
		mod:         &wasm.Module{},
		types:       newNamespace("type"),
		funcs:       newNamespace("function"),
		tables:      newNamespace("table"),
		mems:        newNamespace("memory"),
		globals:     newNamespace("global"),
		datas:       newNamespace("data segment"),
		elems:       newNamespace("elem segment"),
		exportNames: map[string]bool{},
	}
}

func (c *compiler) compile(top []*node) error {
	fields := top
	if len(top) == 1 && top[0].head() == "module" {
		cur := listCursor(top[0], 1)
		cur.optID() // module name: accepted, not emitted (see package doc)
		if n := cur.peek(); n.isAtom() && (n.text == "binary" || n.text == "quote") {
			return errorf(n.pos, "(module %s ...) is not supported", n.text)
		}
		fields = cur.nodes[cur.i:]
	} else {
		for _, n := range top {
			if n.head() == "module" {
				return errorf(n.pos, "only a single (module ...) is supported")
			}
		}
	}
	for _, f := range fields {
		if !f.list {
			return errorf(f.pos, "expected a module field like (func ...), found %s", f.describe())
		}
		switch f.head() {
		case "type", "import", "func", "table", "memory", "global", "export", "start", "elem", "data":
		case "":
			return errorf(f.pos, "expected a module field like (func ...)")
		default:
			return errorf(f.kids[0].pos, "unknown module field %q", f.head())
		}
	}
	// Pass 1: explicit types, so that they precede implicit ones.
	for _, f := range fields {
		if f.head() == "type" {
			if err := c.typeField(f); err != nil {
				return err
			}
		}
	}
	// Pass 2: everything that allocates an index.
	for _, f := range fields {
		var err error
		switch f.head() {
		case "import":
			err = c.importField(f)
		case "func":
			err = c.funcField(f)
		case "table":
			err = c.tableField(f)
		case "memory":
			err = c.memoryField(f)
		case "global":
			err = c.globalField(f)
		case "data":
			// data indices are needed by memory.init / data.drop
			cur := listCursor(f, 1)
			_, err = c.datas.add(cur.optID())
			c.dataFields = append(c.dataFields, f)
		case "elem":
			cur := listCursor(f, 1)
			_, err = c.elems.add(cur.optID())
			c.deferred = append(c.deferred, f)
		case "export":
			err = c.exportField(f)
		case "start":
			c.deferred = append(c.deferred, f)
		}
		if err != nil {
			return err
		}
	}
	// Pass 3: bodies and references.
	for i, g := range c.globalInits {
		cur := listCursor(g, c.globalFrom[i])
		expr, err := c.constExpr(cur, "global initializer")
		if err != nil {
			return err
		}
		c.mod.GlobalSection[i].Init = expr
	}
	for _, fd := range c.funcDefs {
		if fd.imported {
			continue
		}
		code, err := c.funcBody(fd)
		if err != nil {
			return err
		}
		c.mod.CodeSection = append(c.mod.CodeSection, code)
	}
	for _, f := range c.deferred {
		var err error
		switch f.head() {
		case "start":
			err = c.startField(f)
		case "elem":
			err = c.elemField(f)
		}
		if err != nil {
			return err
		}
	}
	for _, f := range c.dataFields {
		if err := c.dataField(f); err != nil {
			return err
		}
	}
	for _, e := range c.exports {
		idx := e.idx
		if e.ref != nil {
			var err error
			if idx, err = e.refNs.resolve(e.ref.kids[1], e.ref.end); err != nil {
				return err
			}
		}
		c.mod.ExportSection = append(c.mod.ExportSection, &wasm.Export{Type: e.kind, Name: e.name.text, Index: idx})
	}
	c.names()
	return nil
}

// names fills the name section with function and local identifiers.
func (c *compiler) names() {
	ns := &wasm.NameSection{}
	for i, fd := range c.funcDefs {
		if fd.name != "" {
			ns.FunctionNames = append(ns.FunctionNames, &wasm.NameAssoc{Index: uint32(i), Name: fd.name})
		}
	}
	for i, fd := range c.funcDefs {
		var m wasm.NameMap
		for j, p := range fd.locals {
			if p != nil {
				m = append(m, &wasm.NameAssoc{Index: uint32(j), Name: p.text[1:]})
			}
		}
		if len(m) > 0 {
			ns.LocalNames = append(ns.LocalNames, &wasm.NameMapAssoc{Index: uint32(i), NameMap: m})
		}
	}
	if len(ns.FunctionNames) > 0 || len(ns.LocalNames) > 0 {
		c.mod.NameSection = ns
	}
}

// encode produces the binary, splicing in the sections wabin cannot encode
// correctly (element segments with function indices >= 64 or table indices
// other than 0) or at all (data count).
func (c *compiler) encode() []byte {
	bin := binary.EncodeModule(c.mod)
	var extra []byte
	if len(c.elemSegments) > 0 {
		content := leb128.EncodeUint32(uint32(len(c.elemSegments)))
		for _, s := range c.elemSegments {
			content = append(content, s...)
		}
		extra = append(extra, section(wasm.SectionIDElement, content)...)
	}
	if c.needDataCnt {
		extra = append(extra, section(wasm.SectionIDDataCount, leb128.EncodeUint32(uint32(len(c.mod.DataSection))))...)
	}
	if len(extra) == 0 {
		return bin
	}
	// Insert before the first code, data or custom section.
	off := 8
	for off < len(bin) {
		id := bin[off]
		if id == wasm.SectionIDCode || id == wasm.SectionIDData || id == wasm.SectionIDCustom {
			break
		}
		size, n, err := leb128.DecodeUint32(bytes.NewReader(bin[off+1:]))
		if err != nil { // cannot happen for wabin output
			break
		}
		off += 1 + int(n) + int(size)
	}
	if off > len(bin) {
		off = len(bin)
	}
	out := make([]byte, 0, len(bin)+len(extra))
	out = append(out, bin[:off]...)
	out = append(out, extra...)
	return append(out, bin[off:]...)
}

func section(id byte, content []byte) []byte {
	out := []byte{id}
	out = append(out, leb128.EncodeUint32(uint32(len(content)))...)
	return append(out, content...)
}

// valType parses a value type keyword.
func valType(n *node) (wasm.ValueType, bool) {
	if n == nil || !n.isAtom() {
		return 0, false
	}
	switch n.text {
	case "i32":
		return wasm.ValueTypeI32, true
	case "i64":
		return wasm.ValueTypeI64, true
	case "f32":
		return wasm.ValueTypeF32, true
	case "f64":
		return wasm.ValueTypeF64, true
	}
	return 0, false
}

// expectValType consumes a value type.
func expectValType(cur *cursor) (wasm.ValueType, error) {
	at := cur.pos()
	n := cur.next()
	vt, ok := valType(n)
	if !ok {
		if n != nil && n.isAtom() && (n.text == "v128" || n.text == "funcref" || n.text == "externref") {
			return 0, errorf(at, "unsupported value type %s (supported: i32 i64 f32 f64)", n.text)
		}
		return 0, errorf(at, "expected value type (i32, i64, f32, f64), found %s", n.describe())
	}
	return vt, nil
}

// sig is a parsed function signature with optional parameter identifiers.
type sig struct {
	params     []wasm.ValueType
	paramIDs   []*node
	results    []wasm.ValueType
	hasInline  bool // (param) or (result) given
	typeRef    *node
	typeRefIdx uint32
}

// paramsResults parses (param ...)* (result ...)*.
func paramsResults(cur *cursor, s *sig, allowNames bool) error {
	for cur.peekHead() == "param" {
		s.hasInline = true
		l := cur.next()
		pc := listCursor(l, 1)
		if id := pc.optID(); id != nil {
			if !allowNames {
				return errorf(id.pos, "parameter identifiers are not allowed here")
			}
			vt, err := expectValType(pc)
			if err != nil {
				return err
			}
			if err := pc.expectEnd("named param"); err != nil {
				return err
			}
			s.params = append(s.params, vt)
			s.paramIDs = append(s.paramIDs, id)
			continue
		}
		for !pc.done() {
			vt, err := expectValType(pc)
			if err != nil {
				return err
			}
			s.params = append(s.params, vt)
			s.paramIDs = append(s.paramIDs, nil)
		}
	}
	for cur.peekHead() == "result" {
		s.hasInline = true
		rc := listCursor(cur.next(), 1)
		for !rc.done() {
			vt, err := expectValType(rc)
			if err != nil {
				return err
			}
			s.results = append(s.results, vt)
		}
	}
	return nil
}

func (c *compiler) typeField(f *node) error {
	cur := listCursor(f, 1)
	id := cur.optID()
	fn := cur.next()
	if fn.head() != "func" {
		return errorf(posOf(fn, cur.end), "expected (func ...) in type definition")
	}
	if err := cur.expectEnd("type definition"); err != nil {
		return err
	}
	fc := listCursor(fn, 1)
	var s sig
	if err := paramsResults(fc, &s, true); err != nil {
		return err
	}
	if err := fc.expectEnd("function type"); err != nil {
		return err
	}
	if _, err := c.types.add(id); err != nil {
		return err
	}
	c.mod.TypeSection = append(c.mod.TypeSection, &wasm.FunctionType{Params: s.params, Results: s.results})
	return nil
}

func posOf(n *node, dflt pos) pos {
	if n != nil {
		return n.pos
	}
	return dflt
}

// typeUse parses [(type x)] (param ...)* (result ...)* and returns the type
// index, adding an implicit type if needed.
func (c *compiler) typeUse(cur *cursor, allowNames bool) (uint32, *sig, error) {
	s := &sig{}
	if cur.peekHead() == "type" {
		t := cur.next()
		tc := listCursor(t, 1)
		idx, err := c.types.resolve(tc.next(), t.end)
		if err != nil {
			return 0, nil, err
		}
		if err := tc.expectEnd("type use"); err != nil {
			return 0, nil, err
		}
		s.typeRef, s.typeRefIdx = t, idx
	}
	if err := paramsResults(cur, s, allowNames); err != nil {
		return 0, nil, err
	}
	if s.typeRef != nil {
		ft := c.mod.TypeSection[s.typeRefIdx]
		if s.hasInline && !ft.EqualsSignature(s.params, s.results) {
			return 0, nil, errorf(s.typeRef.pos, "inline signature does not match type %s", s.typeRef.kids[len(s.typeRef.kids)-1].text)
		}
		if !s.hasInline {
			s.params = ft.Params
			s.results = ft.Results
			s.paramIDs = make([]*node, len(ft.Params))
		}
		return s.typeRefIdx, s, nil
	}
	return c.findOrAddType(s.params, s.results), s, nil
}

func (c *compiler) findOrAddType(params, results []wasm.ValueType) uint32 {
	for i, t := range c.mod.TypeSection {
		if t.EqualsSignature(params, results) {
			return uint32(i)
		}
	}
	c.mod.TypeSection = append(c.mod.TypeSection, &wasm.FunctionType{Params: params, Results: results})
	c.types.count++
	return uint32(len(c.mod.TypeSection) - 1)
}

// name parses a string that must be valid UTF-8 (import/export names).
func name(cur *cursor, what string) (*node, error) {
	at := cur.pos()
	n := cur.next()
	if n == nil || !n.str {
		return nil, errorf(at, "expected %s string, found %s", what, n.describe())
	}
	if !utf8.ValidString(n.text) {
		return nil, errorf(n.pos, "%s is not valid UTF-8", what)
	}
	return n, nil
}

// inlineExports parses (export "name")* and records them for index idx.
func (c *compiler) inlineExports(cur *cursor, kind wasm.ExternType, idx uint32) error {
	for cur.peekHead() == "export" {
		e := cur.next()
		ec := listCursor(e, 1)
		nm, err := name(ec, "export name")
		if err != nil {
			return err
		}
		if err := ec.expectEnd("inline export"); err != nil {
			return err
		}
		if err := c.addExport(nm, kind, idx, nil, nil); err != nil {
			return err
		}
	}
	return nil
}

func (c *compiler) addExport(nm *node, kind wasm.ExternType, idx uint32, ref *node, ns *namespace) error {
	if c.exportNames[nm.text] {
		return errorf(nm.pos, "duplicate export name %q", nm.text)
	}
	c.exportNames[nm.text] = true
	c.exports = append(c.exports, pendingExport{name: nm, kind: kind, idx: idx, ref: ref, refNs: ns})
	return nil
}

// inlineImport parses an optional (import "mod" "name").
func inlineImport(cur *cursor) (mod, nm *node, err error) {
	if cur.peekHead() != "import" {
		return nil, nil, nil
	}
	im := cur.next()
	ic := listCursor(im, 1)
	if mod, err = name(ic, "import module name"); err != nil {
		return nil, nil, err
	}
	if nm, err = name(ic, "import name"); err != nil {
		return nil, nil, err
	}
	return mod, nm, ic.expectEnd("inline import")
}

func (c *compiler) checkImportOrder(at pos) error {
	if c.defined {
		return errorf(at, "imports must come before all function, table, memory and global definitions")
	}
	return nil
}

func (c *compiler) importField(f *node) error {
	cur := listCursor(f, 1)
	mod, err := name(cur, "import module name")
	if err != nil {
		return err
	}
	nm, err := name(cur, "import name")
	if err != nil {
		return err
	}
	desc := cur.next()
	if err := cur.expectEnd("import"); err != nil {
		return err
	}
	if err := c.checkImportOrder(f.pos); err != nil {
		return err
	}
	if desc == nil || !desc.list {
		return errorf(posOf(desc, f.end), "expected import description like (func ...), found %s", desc.describe())
	}
	dc := listCursor(desc, 1)
	id := dc.optID()
	switch desc.head() {
	case "func":
		return c.importFunc(dc, id, mod, nm)
	case "memory":
		return c.importMemory(dc, id, mod, nm)
	case "table":
		return c.importTable(dc, id, mod, nm)
	case "global":
		return c.importGlobal(dc, id, mod, nm)
	}
	return errorf(desc.pos, "unsupported import description %s", desc.describe())
}

func (c *compiler) addImport(mod, nm *node, im *wasm.Import) {
	im.Module, im.Name = mod.text, nm.text
	c.mod.ImportSection = append(c.mod.ImportSection, im)
}

func (c *compiler) importFunc(cur *cursor, id, mod, nm *node) error {
	idx, err := c.funcs.add(id)
	if err != nil {
		return err
	}
	if err := c.inlineExports(cur, wasm.ExternTypeFunc, idx); err != nil {
		return err
	}
	tidx, _, err := c.typeUse(cur, true)
	if err != nil {
		return err
	}
	if err := cur.expectEnd("imported function"); err != nil {
		return err
	}
	c.addImport(mod, nm, &wasm.Import{Type: wasm.ExternTypeFunc, DescFunc: tidx})
	c.funcDefs = append(c.funcDefs, &funcDef{imported: true, typeIdx: tidx, name: idName(id)})
	return nil
}

func idName(id *node) string {
	if id == nil {
		return ""
	}
	return id.text[1:]
}

// limits parses "min max?".
func limits(cur *cursor) (min uint32, max *uint32, err error) {
	at := cur.pos()
	n := cur.next()
	if n == nil || !n.isAtom() {
		return 0, nil, errorf(at, "expected limits (min [max]), found %s", n.describe())
	}
	v, ok := parseU32(n.text)
	if !ok {
		return 0, nil, errorf(n.pos, "invalid limit %q: expected unsigned 32-bit integer", n.text)
	}
	min = v
	if m := cur.peek(); m.isAtom() && m.text != "" && m.text[0] >= '0' && m.text[0] <= '9' {
		cur.next()
		v, ok := parseU32(m.text)
		if !ok {
			return 0, nil, errorf(m.pos, "invalid limit %q: expected unsigned 32-bit integer", m.text)
		}
		if v < min {
			return 0, nil, errorf(m.pos, "maximum %d is smaller than minimum %d", v, min)
		}
		max = &v
	}
	return min, max, nil
}

func memFromLimits(min uint32, max *uint32) *wasm.Memory {
	m := &wasm.Memory{Min: min}
	if max != nil {
		m.Max, m.IsMaxEncoded = *max, true
	}
	return m
}

func (c *compiler) addMemory(id *node, at pos) (uint32, error) {
	if c.mems.count > 0 {
		return 0, errorf(at, "only one memory is supported")
	}
	return c.mems.add(id)
}

func (c *compiler) importMemory(cur *cursor, id, mod, nm *node) error {
	idx, err := c.addMemory(id, mod.pos)
	if err != nil {
		return err
	}
	if err := c.inlineExports(cur, wasm.ExternTypeMemory, idx); err != nil {
		return err
	}
	min, max, err := limits(cur)
	if err != nil {
		return err
	}
	if err := cur.expectEnd("imported memory"); err != nil {
		return err
	}
	c.addImport(mod, nm, &wasm.Import{Type: wasm.ExternTypeMemory, DescMem: memFromLimits(min, max)})
	return nil
}

func expectFuncref(cur *cursor) error {
	at := cur.pos()
	n := cur.next()
	if n == nil || !n.isAtom() || (n.text != "funcref" && n.text != "anyfunc") {
		return errorf(at, "expected funcref (the only supported table type), found %s", n.describe())
	}
	return nil
}

func (c *compiler) importTable(cur *cursor, id, mod, nm *node) error {
	idx, err := c.tables.add(id)
	if err != nil {
		return err
	}
	if err := c.inlineExports(cur, wasm.ExternTypeTable, idx); err != nil {
		return err
	}
	min, max, err := limits(cur)
	if err != nil {
		return err
	}
	if err := expectFuncref(cur); err != nil {
		return err
	}
	if err := cur.expectEnd("imported table"); err != nil {
		return err
	}
	c.addImport(mod, nm, &wasm.Import{Type: wasm.ExternTypeTable, DescTable: &wasm.Table{Min: min, Max: max, Type: wasm.RefTypeFuncref}})
	return nil
}

// globalType parses "valtype" or "(mut valtype)".
func globalType(cur *cursor) (*wasm.GlobalType, error) {
	if cur.peekHead() == "mut" {
		m := cur.next()
		mc := listCursor(m, 1)
		vt, err := expectValType(mc)
		if err != nil {
			return nil, err
		}
		if err := mc.expectEnd("mut"); err != nil {
			return nil, err
		}
		return &wasm.GlobalType{ValType: vt, Mutable: true}, nil
	}
	vt, err := expectValType(cur)
	if err != nil {
		return nil, err
	}
	return &wasm.GlobalType{ValType: vt}, nil
}

func (c *compiler) importGlobal(cur *cursor, id, mod, nm *node) error {
	idx, err := c.globals.add(id)
	if err != nil {
		return err
	}
	if err := c.inlineExports(cur, wasm.ExternTypeGlobal, idx); err != nil {
		return err
	}
	gt, err := globalType(cur)
	if err != nil {
		return err
	}
	if err := cur.expectEnd("imported global"); err != nil {
		return err
	}
	c.addImport(mod, nm, &wasm.Import{Type: wasm.ExternTypeGlobal, DescGlobal: gt})
	return nil
}

func (c *compiler) funcField(f *node) error {
	cur := listCursor(f, 1)
	id := cur.optID()
	// Inline exports may precede an inline import; peek for the import.
	save := cur.i
	for cur.peekHead() == "export" {
		cur.next()
	}
	if cur.peekHead() == "import" {
		mod, nm, err := inlineImport(cur)
		if err != nil {
			return err
		}
		if err := c.checkImportOrder(f.pos); err != nil {
			return err
		}
		rest := cur.i
		cur.i = save
		idx, err := c.funcs.add(id)
		if err != nil {
			return err
		}
		if err := c.inlineExports(cur, wasm.ExternTypeFunc, idx); err != nil {
			return err
		}
		cur.i = rest
		tidx, _, err := c.typeUse(cur, true)
		if err != nil {
			return err
		}
		if err := cur.expectEnd("imported function"); err != nil {
			return err
		}
		c.addImport(mod, nm, &wasm.Import{Type: wasm.ExternTypeFunc, DescFunc: tidx})
		c.funcDefs = append(c.funcDefs, &funcDef{imported: true, typeIdx: tidx, name: idName(id)})
		return nil
	}
	cur.i = save
	c.defined = true
	idx, err := c.funcs.add(id)
	if err != nil {
		return err
	}
	if err := c.inlineExports(cur, wasm.ExternTypeFunc, idx); err != nil {
		return err
	}
	tidx, s, err := c.typeUse(cur, true)
	if err != nil {
		return err
	}
	c.mod.FunctionSection = append(c.mod.FunctionSection, tidx)
	c.funcDefs = append(c.funcDefs, &funcDef{n: f, typeIdx: tidx, bodyFrom: cur.i, locals: s.paramIDs, name: idName(id)})
	return nil
}

func (c *compiler) memoryField(f *node) error {
	cur := listCursor(f, 1)
	id := cur.optID()
	save := cur.i
	for cur.peekHead() == "export" {
		cur.next()
	}
	if cur.peekHead() == "import" {
		mod, nm, err := inlineImport(cur)
		if err != nil {
			return err
		}
		if err := c.checkImportOrder(f.pos); err != nil {
			return err
		}
		rest := cur.i
		cur.i = save
		idx, err := c.addMemory(id, f.pos)
		if err != nil {
			return err
		}
		if err := c.inlineExports(cur, wasm.ExternTypeMemory, idx); err != nil {
			return err
		}
		cur.i = rest
		min, max, err := limits(cur)
		if err != nil {
			return err
		}
		if err := cur.expectEnd("imported memory"); err != nil {
			return err
		}
		c.addImport(mod, nm, &wasm.Import{Type: wasm.ExternTypeMemory, DescMem: memFromLimits(min, max)})
		return nil
	}
	cur.i = save
	c.defined = true
	idx, err := c.addMemory(id, f.pos)
	if err != nil {
		return err
	}
	if err := c.inlineExports(cur, wasm.ExternTypeMemory, idx); err != nil {
		return err
	}
	if cur.peekHead() == "data" {
		// (memory (data "...")): sized to fit, data at offset 0.
		d := cur.next()
		if err := cur.expectEnd("memory"); err != nil {
			return err
		}
		var size int
		dc := listCursor(d, 1)
		for !dc.done() {
			s := dc.next()
			if !s.str {
				return errorf(s.pos, "expected string in inline data, found %s", s.describe())
			}
			size += len(s.text)
		}
		pages := uint32((size + 65535) / 65536)
		c.mod.MemorySection = memFromLimits(pages, &pages)
		// Emitted in pass 3 via a synthetic (data (i32.const 0) ...) field.
		c.dataFields = append(c.dataFields, &node{pos: d.pos, end: d.end, list: true, kids: append([]*node{
			{pos: d.pos, text: "data"},
			{pos: d.pos, end: d.pos, list: true, kids: []*node{{pos: d.pos, text: "i32.const"}, {pos: d.pos, text: "0"}}},
		}, d.kids[1:]...)})
		_, err := c.datas.add(nil)
		return err
	}
	min, max, err := limits(cur)
	if err != nil {
		return err
	}
	if err := cur.expectEnd("memory"); err != nil {
		return err
	}
	c.mod.MemorySection = memFromLimits(min, max)
	return nil
}

func (c *compiler) tableField(f *node) error {
	cur := listCursor(f, 1)
	id := cur.optID()
	save := cur.i
	for cur.peekHead() == "export" {
		cur.next()
	}
	if cur.peekHead() == "import" {
		mod, nm, err := inlineImport(cur)
		if err != nil {
			return err
		}
		if err := c.checkImportOrder(f.pos); err != nil {
			return err
		}
		rest := cur.i
		cur.i = save
		idx, err := c.tables.add(id)
		if err != nil {
			return err
		}
		if err := c.inlineExports(cur, wasm.ExternTypeTable, idx); err != nil {
			return err
		}
		cur.i = rest
		min, max, err := limits(cur)
		if err != nil {
			return err
		}
		if err := expectFuncref(cur); err != nil {
			return err
		}
		if err := cur.expectEnd("imported table"); err != nil {
			return err
		}
		c.addImport(mod, nm, &wasm.Import{Type: wasm.ExternTypeTable, DescTable: &wasm.Table{Min: min, Max: max, Type: wasm.RefTypeFuncref}})
		return nil
	}
	cur.i = save
	c.defined = true
	idx, err := c.tables.add(id)
	if err != nil {
		return err
	}
	if err := c.inlineExports(cur, wasm.ExternTypeTable, idx); err != nil {
		return err
	}
	if n := cur.peek(); n.isAtom() && (n.text == "funcref" || n.text == "anyfunc") {
		// (table funcref (elem $f ...)): sized to fit, segment at offset 0.
		cur.next()
		e := cur.next()
		if e.head() != "elem" {
			return errorf(posOf(e, f.end), "expected (elem ...) after funcref, found %s", e.describe())
		}
		if err := cur.expectEnd("table"); err != nil {
			return err
		}
		ec := listCursor(e, 1)
		var items []*node
		for !ec.done() {
			items = append(items, ec.next())
		}
		n := uint32(len(items))
		c.mod.TableSection = append(c.mod.TableSection, &wasm.Table{Min: n, Max: &n, Type: wasm.RefTypeFuncref})
		// Resolved in pass 3 via a synthetic deferred elem field.
		c.deferred = append(c.deferred, &node{pos: e.pos, end: e.end, list: true, kids: append([]*node{
			{pos: e.pos, text: "elem"},
			{pos: e.pos, list: true, kids: []*node{{pos: e.pos, text: "table"}, {pos: e.pos, text: fmt.Sprint(idx)}}},
			{pos: e.pos, list: true, kids: []*node{{pos: e.pos, text: "i32.const"}, {pos: e.pos, text: "0"}}, end: e.pos},
			{pos: e.pos, text: "func"},
		}, items...)})
		_, err := c.elems.add(nil)
		return err
	}
	min, max, err := limits(cur)
	if err != nil {
		return err
	}
	if err := expectFuncref(cur); err != nil {
		return err
	}
	if err := cur.expectEnd("table"); err != nil {
		return err
	}
	c.mod.TableSection = append(c.mod.TableSection, &wasm.Table{Min: min, Max: max, Type: wasm.RefTypeFuncref})
	return nil
}

func (c *compiler) globalField(f *node) error {
	cur := listCursor(f, 1)
	id := cur.optID()
	save := cur.i
	for cur.peekHead() == "export" {
		cur.next()
	}
	if cur.peekHead() == "import" {
		mod, nm, err := inlineImport(cur)
		if err != nil {
			return err
		}
		if err := c.checkImportOrder(f.pos); err != nil {
			return err
		}
		rest := cur.i
		cur.i = save
		idx, err := c.globals.add(id)
		if err != nil {
			return err
		}
		if err := c.inlineExports(cur, wasm.ExternTypeGlobal, idx); err != nil {
			return err
		}
		cur.i = rest
		gt, err := globalType(cur)
		if err != nil {
			return err
		}
		if err := cur.expectEnd("imported global"); err != nil {
			return err
		}
		c.addImport(mod, nm, &wasm.Import{Type: wasm.ExternTypeGlobal, DescGlobal: gt})
		return nil
	}
	cur.i = save
	c.defined = true
	idx, err := c.globals.add(id)
	if err != nil {
		return err
	}
	if err := c.inlineExports(cur, wasm.ExternTypeGlobal, idx); err != nil {
		return err
	}
	gt, err := globalType(cur)
	if err != nil {
		return err
	}
	c.mod.GlobalSection = append(c.mod.GlobalSection, &wasm.Global{Type: gt})
	c.globalInits = append(c.globalInits, f)
	c.globalFrom = append(c.globalFrom, cur.i)
	return nil
}

func (c *compiler) exportField(f *node) error {
	cur := listCursor(f, 1)
	nm, err := name(cur, "export name")
	if err != nil {
		return err
	}
	d := cur.next()
	if err := cur.expectEnd("export"); err != nil {
		return err
	}
	if d == nil || !d.list {
		return errorf(posOf(d, f.end), "expected export description like (func $f), found %s", d.describe())
	}
	var kind wasm.ExternType
	var ns *namespace
	switch d.head() {
	case "func":
		kind, ns = wasm.ExternTypeFunc, c.funcs
	case "memory":
		kind, ns = wasm.ExternTypeMemory, c.mems
	case "table":
		kind, ns = wasm.ExternTypeTable, c.tables
	case "global":
		kind, ns = wasm.ExternTypeGlobal, c.globals
	default:
		return errorf(d.pos, "unsupported export description %s", d.describe())
	}
	if len(d.kids) != 2 {
		return errorf(d.pos, "expected (%s index-or-$name)", d.head())
	}
	return c.addExport(nm, kind, 0, d, ns)
}

func (c *compiler) startField(f *node) error {
	cur := listCursor(f, 1)
	idx, err := c.funcs.resolve(cur.next(), f.end)
	if err != nil {
		return err
	}
	if err := cur.expectEnd("start"); err != nil {
		return err
	}
	if c.mod.StartSection != nil {
		return errorf(f.pos, "multiple start functions")
	}
	c.mod.StartSection = &idx
	return nil
}

// offsetExpr parses (offset instr) or a single folded instruction.
func (c *compiler) offsetExpr(cur *cursor, what string) (*wasm.ConstantExpression, error) {
	n := cur.peek()
	if n == nil || !n.list {
		return nil, errorf(cur.pos(), "expected %s offset like (i32.const 0), found %s", what, n.describe())
	}
	cur.next()
	if n.head() == "offset" {
		return c.constExpr(listCursor(n, 1), what+" offset")
	}
	return c.constExpr(&cursor{nodes: []*node{n}, end: n.end}, what+" offset")
}

// constExpr parses a constant expression occupying the rest of cur: either
// one folded instruction or a flat one.
func (c *compiler) constExpr(cur *cursor, what string) (*wasm.ConstantExpression, error) {
	at := cur.pos()
	var op, arg *node
	var end pos
	if n := cur.peek(); n != nil && n.list {
		cur.next()
		ic := listCursor(n, 0)
		op, arg, end = ic.next(), ic.next(), n.end
		if err := ic.expectEnd(what); err != nil {
			return nil, err
		}
	} else {
		op, arg, end = cur.next(), cur.next(), cur.end
	}
	if err := cur.expectEnd(what); err != nil {
		return nil, err
	}
	if op == nil || !op.isKeyword() {
		return nil, errorf(posOf(op, at), "expected constant expression for %s, found %s", what, op.describe())
	}
	expr := &wasm.ConstantExpression{}
	var err error
	switch op.text {
	case "i32.const":
		expr.Opcode = wasm.OpcodeI32Const
		expr.Data, err = immInt(arg, end, 32)
	case "i64.const":
		expr.Opcode = wasm.OpcodeI64Const
		expr.Data, err = immInt(arg, end, 64)
	case "f32.const":
		expr.Opcode = wasm.OpcodeF32Const
		expr.Data, err = immFloat(arg, end, 32)
	case "f64.const":
		expr.Opcode = wasm.OpcodeF64Const
		expr.Data, err = immFloat(arg, end, 64)
	case "global.get":
		expr.Opcode = wasm.OpcodeGlobalGet
		var idx uint32
		idx, err = c.globals.resolve(arg, end)
		expr.Data = leb128.EncodeUint32(idx)
	default:
		return nil, errorf(op.pos, "unsupported instruction %q in %s (use i32/i64/f32/f64.const or global.get)", op.text, what)
	}
	if err != nil {
		return nil, err
	}
	return expr, nil
}

func (c *compiler) dataField(f *node) error {
	cur := listCursor(f, 1)
	cur.optID()
	if cur.peekHead() == "memory" {
		m := cur.next()
		if len(m.kids) != 2 {
			return errorf(m.pos, "expected (memory index-or-$name)")
		}
		if _, err := c.mems.resolve(m.kids[1], m.end); err != nil {
			return err
		}
	} else if n := cur.peek(); n.isAtom() {
		cur.next()
		if _, err := c.mems.resolve(n, n.pos); err != nil {
			return err
		}
	}
	seg := &wasm.DataSegment{}
	if n := cur.peek(); n != nil && n.list {
		if c.mems.count == 0 {
			return errorf(f.pos, "data segment requires a memory")
		}
		expr, err := c.offsetExpr(cur, "data")
		if err != nil {
			return err
		}
		seg.OffsetExpression = expr
	} else {
		c.needDataCnt = true // passive segment
	}
	for !cur.done() {
		s := cur.next()
		if !s.str {
			return errorf(s.pos, "expected data string, found %s", s.describe())
		}
		seg.Init = append(seg.Init, s.text...)
	}
	if seg.Init == nil {
		seg.Init = []byte{}
	}
	c.mod.DataSection = append(c.mod.DataSection, seg)
	return nil
}

// elemField encodes an active element segment of function indices:
//
//	(elem $id? (table x)? (offset expr)|(expr) func? funcidx*)
//	(elem $id? x (offset expr)|(expr) func? funcidx*)
func (c *compiler) elemField(f *node) error {
	cur := listCursor(f, 1)
	cur.optID()
	var table uint32
	if cur.peekHead() == "table" {
		t := cur.next()
		if len(t.kids) != 2 {
			return errorf(t.pos, "expected (table index-or-$name)")
		}
		var err error
		if table, err = c.tables.resolve(t.kids[1], t.end); err != nil {
			return err
		}
	} else if n := cur.peek(); n.isAtom() && n.text != "func" && n.text != "declare" {
		cur.next()
		var err error
		if table, err = c.tables.resolve(n, n.pos); err != nil {
			return err
		}
	}
	if n := cur.peek(); n == nil || !n.list {
		return errorf(cur.pos(), "only active element segments with an offset are supported")
	}
	if c.tables.count == 0 {
		return errorf(f.pos, "elem segment requires a table")
	}
	expr, err := c.offsetExpr(cur, "elem")
	if err != nil {
		return err
	}
	if n := cur.peek(); n.isAtom() && n.text == "func" {
		cur.next()
	}
	var idxs []uint32
	for !cur.done() {
		n := cur.next()
		if n.list {
			return errorf(n.pos, "only function indices are supported in elem segments, found %s", n.describe())
		}
		idx, err := c.funcs.resolve(n, n.pos)
		if err != nil {
			return err
		}
		idxs = append(idxs, idx)
	}
	var seg []byte
	if table == 0 {
		seg = append(seg, 0x00)
	} else {
		seg = append(seg, 0x02)
		seg = append(seg, leb128.EncodeUint32(table)...)
	}
	seg = append(seg, expr.Opcode)
	seg = append(seg, expr.Data...)
	seg = append(seg, wasm.OpcodeEnd)
	if table != 0 {
		seg = append(seg, 0x00) // elemkind funcref
	}
	seg = append(seg, leb128.EncodeUint32(uint32(len(idxs)))...)
	for _, idx := range idxs {
		seg = append(seg, leb128.EncodeUint32(idx)...)
	}
	c.elemSegments = append(c.elemSegments, seg)
	return nil
}

// immInt parses an integer immediate of the given width as signed LEB128.
func immInt(n *node, end pos, width int) ([]byte, error) {
	if n == nil || !n.isAtom() {
		return nil, errorf(posOf(n, end), "expected i%d literal, found %s", width, n.describe())
	}
	v, ok := parseInt(n.text, width)
	if !ok {
		return nil, errorf(n.pos, "invalid i%d literal %q", width, n.text)
	}
	if width == 32 {
		return leb128.EncodeInt32(int32(uint32(v))), nil
	}
	return leb128.EncodeInt64(int64(v)), nil
}

// immFloat parses a float immediate as little-endian IEEE 754 bytes.
func immFloat(n *node, end pos, width int) ([]byte, error) {
	if n == nil || !n.isAtom() {
		return nil, errorf(posOf(n, end), "expected f%d literal, found %s", width, n.describe())
	}
	v, ok := parseFloat(n.text, width)
	if !ok {
		return nil, errorf(n.pos, "invalid f%d literal %q", width, n.text)
	}
	out := make([]byte, width/8)
	for i := range out {
		out[i] = byte(v >> (8 * i))
	}
	return out, nil
}
