package gas

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/tetratelabs/wabin/binary"
	wa "github.com/tetratelabs/wabin/wasm"
)

// Section ids of the binary format.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
)

// sectionRank gives the position a non-custom section must have in a module
// (data count sits between element and code).
var sectionRank = [...]int{
	secType: 1, secImport: 2, secFunction: 3, secTable: 4, secMemory: 5,
	secGlobal: 6, secExport: 7, secStart: 8, secElement: 9, secDataCount: 10,
	secCode: 11, secData: 12,
}

var wasmHeader = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// section is one section of the input module.
type section struct {
	id      byte
	raw     []byte // the whole section: id, size and content
	content []byte
}

// splitSections cuts a module into its sections, checking the header, the
// section sizes and the canonical order of non-custom sections.
func splitSections(b []byte) ([]section, error) {
	if len(b) < len(wasmHeader) || !bytes.Equal(b[:len(wasmHeader)], wasmHeader) {
		return nil, errors.New("not a WebAssembly 1.0/2.0 binary (bad magic or version)")
	}
	var out []section
	lastRank := 0
	for p := len(wasmHeader); p < len(b); {
		start := p
		id := b[p]
		p++
		size, n, err := readU32(b[p:])
		if err != nil {
			return nil, fmt.Errorf("section at offset %d: size: %v", start, err)
		}
		p += n
		if uint64(size) > uint64(len(b)-p) {
			return nil, fmt.Errorf("section %d at offset %d: size %d exceeds the module", id, start, size)
		}
		if id != secCustom {
			if int(id) >= len(sectionRank) || sectionRank[id] == 0 {
				return nil, fmt.Errorf("unknown section id %d at offset %d", id, start)
			}
			if sectionRank[id] <= lastRank {
				return nil, fmt.Errorf("section %d at offset %d: duplicate or out of order", id, start)
			}
			lastRank = sectionRank[id]
		}
		out = append(out, section{id: id, raw: b[start : p+int(size)], content: b[p : p+int(size)]})
		p += int(size)
	}
	return out, nil
}

// Instrument returns a copy of the module wasm with gas metering as described
// in the package documentation. The input is not modified. Custom sections are
// kept byte for byte except malformed or duplicate "name" sections, which are
// dropped (they are debug information only).
func Instrument(wasm []byte, s Schedule) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	sections, m, err := decodeModule(wasm)
	if err != nil {
		return nil, err
	}

	importedGlobals := m.ImportGlobalCount()
	numGlobals := uint64(importedGlobals) + uint64(len(m.GlobalSection))
	if numGlobals >= uint64(wa.MaximumGlobals) {
		return nil, fmt.Errorf("gas: too many globals (%d)", numGlobals)
	}
	gasIndex := uint32(numGlobals)
	for _, e := range m.ExportSection {
		if e.Name == GlobalName {
			return nil, fmt.Errorf("gas: module already exports %q", GlobalName)
		}
		if e.Type == wa.ExternTypeGlobal && e.Index >= gasIndex {
			return nil, fmt.Errorf("gas: export %q refers to global %d of %d", e.Name, e.Index, gasIndex)
		}
	}

	var code []byte
	if len(m.CodeSection) > 0 {
		if code, err = instrumentCode(m, s, gasIndex); err != nil {
			return nil, fmt.Errorf("gas: %w", err)
		}
	}

	initial := min(s.InitialGas, MaxGas)
	newGlobal := []byte{wa.ValueTypeI64, 0x01, wa.OpcodeI64Const}
	newGlobal = appendS64(newGlobal, int64(initial))
	newGlobal = append(newGlobal, wa.OpcodeEnd)

	newExport := appendU32(nil, uint32(len(GlobalName)))
	newExport = append(newExport, GlobalName...)
	newExport = append(newExport, wa.ExternTypeGlobal)
	newExport = appendU32(newExport, gasIndex)

	out := make([]byte, 0, len(wasm)+len(code)-sectionLen(sections, secCode)+64)
	out = append(out, wasmHeader...)
	globalDone, exportDone, nameSeen := false, false, false
	flushBefore := func(rank int) {
		if !globalDone && rank > sectionRank[secGlobal] {
			out = appendSection(out, secGlobal, appendU32(nil, 1), nil, newGlobal)
			globalDone = true
		}
		if !exportDone && rank > sectionRank[secExport] {
			out = appendSection(out, secExport, appendU32(nil, 1), nil, newExport)
			exportDone = true
		}
	}
	for _, sec := range sections {
		if sec.id == secCustom {
			keep, isName := keepCustom(sec.content)
			if isName {
				keep = keep && !nameSeen
				nameSeen = true
			}
			if keep {
				out = append(out, sec.raw...)
			}
			continue
		}
		flushBefore(sectionRank[sec.id])
		switch sec.id {
		case secGlobal:
			out = appendVecSection(out, secGlobal, sec.content, newGlobal)
			globalDone = true
		case secExport:
			out = appendVecSection(out, secExport, sec.content, newExport)
			exportDone = true
		case secCode:
			if code == nil { // no bodies: keep the (empty) section as it is
				out = append(out, sec.raw...)
			} else {
				out = appendSection(out, secCode, code, nil, nil)
			}
		default:
			out = append(out, sec.raw...)
		}
	}
	flushBefore(len(sectionRank) + 1)
	return out, nil
}

// decodeModule splits wasm into its sections and decodes it without its
// custom sections (kept verbatim by the callers), after guard has made
// sure none of its length prefixes makes wabin allocate more than the
// input justifies.
func decodeModule(wasm []byte) ([]section, *wa.Module, error) {
	sections, err := splitSections(wasm)
	if err != nil {
		return nil, nil, fmt.Errorf("gas: %w", err)
	}
	view := make([]byte, 0, len(wasm))
	view = append(view, wasmHeader...)
	for _, sec := range sections {
		if sec.id == secCustom {
			continue
		}
		if err := guardSection(sec.id, sec.content); err != nil {
			return nil, nil, fmt.Errorf("gas: section %d: %w", sec.id, err)
		}
		view = append(view, sec.raw...)
	}
	m, err := binary.DecodeModule(view, wa.CoreFeaturesV2)
	if err != nil {
		return nil, nil, fmt.Errorf("gas: decode: %w", err)
	}
	return sections, m, nil
}

func sectionLen(sections []section, id byte) int {
	for _, s := range sections {
		if s.id == id {
			return len(s.raw)
		}
	}
	return 0
}

// appendSection appends a section with id whose content is a, b and c.
func appendSection(out []byte, id byte, a, b, c []byte) []byte {
	out = append(out, id)
	out = appendU32(out, uint32(len(a)+len(b)+len(c)))
	out = append(out, a...)
	out = append(out, b...)
	return append(out, c...)
}

// appendVecSection appends the vector section content (count + entries) with
// one more entry.
func appendVecSection(out []byte, id byte, content, entry []byte) []byte {
	count, n, _ := readU32(content) // guarded and decoded by wabin already
	return appendSection(out, id, appendU32(nil, count+1), content[n:], entry)
}

// keepCustom reports whether a custom section is well formed enough to be
// copied (wabin and wazero decode it again), and whether it is a "name"
// section. A name section is kept only if every subsection is well formed
// and exactly fills its declared size.
func keepCustom(content []byte) (keep, isName bool) {
	r := &reader{b: content}
	name := r.name()
	if r.err != nil || !utf8.Valid(name) {
		return false, false
	}
	if string(name) != "name" {
		return true, false
	}
	for !r.done() && r.err == nil {
		id := r.byte()
		size := r.count()
		if r.err != nil {
			break
		}
		sub := &reader{b: r.b[r.p : r.p+int(size)]}
		r.p += int(size)
		switch id {
		case 0:
			sub.utf8name()
		case 1:
			for n := sub.count(); n > 0 && sub.err == nil; n-- {
				sub.u32()
				sub.utf8name()
			}
		case 2:
			for n := sub.count(); n > 0 && sub.err == nil; n-- {
				sub.u32()
				for m := sub.count(); m > 0 && sub.err == nil; m-- {
					sub.u32()
					sub.utf8name()
				}
			}
		default:
			continue // skipped by decoders
		}
		if sub.err != nil || !sub.done() {
			return false, true
		}
	}
	return r.err == nil, true
}
