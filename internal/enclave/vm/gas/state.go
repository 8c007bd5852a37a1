package gas

import (
	"fmt"
	"math"
	"strconv"

	wa "github.com/tetratelabs/wabin/wasm"
)

// StateGlobalPrefix starts the export names ExportState gives a module's
// mutable globals: the prefix and the global's index ("phala.state.3").
const StateGlobalPrefix = "phala.state."

// ExportState returns a copy of the module wasm that exports each of its
// own mutable globals as StateGlobalPrefix and the global's index (their
// export names, in index order, are globals), so a
// host can read and reset an instance's whole state through the public
// API: its linear memory and those globals.
//
// restorable reports whether that is the whole state: false if any
// function changes a table (table.set, table.grow, table.fill,
// table.copy, table.init) or drops a segment (data.drop, elem.drop), as
// resetting memory and globals would not undo that, or if the module
// imports a global, a memory or a table (whose state lives outside the
// instance), or has a mutable v128 global.
// A module that is not restorable is returned as it is, with no error.
// Errors: the module does not decode (as Instrument's), or a function's
// type is out of range.
func ExportState(wasm []byte) (out []byte, globals []string, restorable bool, err error) {
	sections, m, err := decodeModule(wasm)
	if err != nil {
		return nil, nil, false, err
	}
	for _, imp := range m.ImportSection {
		if imp.Type == wa.ExternTypeGlobal || imp.Type == wa.ExternTypeMemory || imp.Type == wa.ExternTypeTable {
			return wasm, nil, false, nil
		}
	}
	// What wazero v1.12.0 does not check before it indexes with it
	// (CompileModule panics on an out-of-range type index).
	if len(m.CodeSection) != len(m.FunctionSection) {
		return nil, nil, false, fmt.Errorf("gas: %d function declarations but %d bodies", len(m.FunctionSection), len(m.CodeSection))
	}
	for i, ti := range m.FunctionSection {
		if ti >= uint32(len(m.TypeSection)) {
			return nil, nil, false, fmt.Errorf("gas: function %d: type %d out of range", i, ti)
		}
	}
	fc := funcContext{numTypes: uint32(len(m.TypeSection)), numLocals: math.MaxUint32, numGlobals: math.MaxUint32}
	s := DefaultSchedule()
	for i, c := range m.CodeSection {
		for pc := 0; pc < len(c.Body); {
			in, err := decode(c.Body, pc, &fc, &s)
			if err != nil {
				return nil, nil, false, fmt.Errorf("gas: function %d: %w", i, err)
			}
			if changesTablesOrSegments(c.Body, pc, in) {
				return wasm, nil, false, nil
			}
			pc = in.next
		}
	}

	var entries []byte
	n := uint32(0)
	for i, g := range m.GlobalSection {
		if !g.Type.Mutable {
			continue
		}
		if g.Type.ValType == wa.ValueTypeV128 {
			return wasm, nil, false, nil // the public API sets only 64 bits
		}
		name := StateGlobalPrefix + strconv.Itoa(i)
		globals = append(globals, name)
		entries = appendU32(entries, uint32(len(name)))
		entries = append(entries, name...)
		entries = append(entries, wa.ExternTypeGlobal)
		entries = appendU32(entries, uint32(i))
		n++
	}
	if n == 0 {
		return wasm, nil, true, nil
	}
	out = make([]byte, 0, len(wasm)+len(entries)+16)
	out = append(out, wasmHeader...)
	done := false
	for _, sec := range sections {
		if !done && sec.id != secCustom && sectionRank[sec.id] > sectionRank[secExport] {
			out = appendSection(out, secExport, appendU32(nil, n), nil, entries)
			done = true
		}
		if sec.id == secExport {
			count, k, _ := readU32(sec.content) // guarded and decoded already
			out = appendSection(out, secExport, appendU32(nil, count+n), sec.content[k:], entries)
			done = true
			continue
		}
		out = append(out, sec.raw...)
	}
	if !done {
		out = appendSection(out, secExport, appendU32(nil, n), nil, entries)
	}
	return out, globals, true, nil
}

// changesTablesOrSegments reports whether the decoded instruction at
// body[pc:] changes a table or drops a data or element segment.
func changesTablesOrSegments(body []byte, pc int, in instr) bool {
	switch in.op {
	case opTableSet:
		return true
	case opMiscPrefix:
		sub, _, _ := readU32(body[pc+1:]) // decoded already
		switch sub {
		case 9, 12, 13, 14, 15, 17: // data.drop, table.init, elem.drop, table.copy, table.grow, table.fill
			return true
		}
	}
	return false
}
