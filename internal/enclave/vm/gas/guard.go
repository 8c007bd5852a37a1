package gas

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// wabin's decoder trusts length prefixes: it allocates a slice as long as a
// vector's declared count before reading the elements, and expands run-length
// local declarations into one byte per local. A few bytes claiming 2^32
// elements would make it allocate gigabytes, which Go cannot recover from.
// guardSection walks each non-custom section along the same path as wabin's
// decoder (binary/*.go at the pinned version) and rejects the module unless
// every count fits in the bytes left in the section (each element takes at
// least one byte) and the declared locals stay within limits.

const (
	// maxFunctionLocals bounds the locals (without parameters) one function
	// may declare.
	maxFunctionLocals = 50_000
	// maxModuleLocals bounds the locals declared by all functions together.
	maxModuleLocals = 1 << 24
)

var errTruncated = errors.New("truncated or oversized vector")

// reader is a cursor over a byte slice with a sticky error.
type reader struct {
	b   []byte
	p   int
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) done() bool { return r.p >= len(r.b) }

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.p >= len(r.b) {
		r.fail(errTruncated)
		return 0
	}
	c := r.b[r.p]
	r.p++
	return c
}

func (r *reader) u32() uint32 {
	if r.err != nil {
		return 0
	}
	v, n, err := readU32(r.b[r.p:])
	if err != nil {
		r.fail(err)
		return 0
	}
	r.p += n
	return v
}

// count reads a vector length or byte size and checks that it is at most the
// number of bytes left.
func (r *reader) count() uint32 {
	v := r.u32()
	if r.err == nil && uint64(v) > uint64(len(r.b)-r.p) {
		r.fail(errTruncated)
		return 0
	}
	return v
}

func (r *reader) skip(n int) {
	if r.err != nil {
		return
	}
	if n > len(r.b)-r.p {
		r.fail(errTruncated)
		return
	}
	r.p += n
}

func (r *reader) name() []byte {
	n := r.count()
	if r.err != nil {
		return nil
	}
	s := r.b[r.p : r.p+int(n)]
	r.p += int(n)
	return s
}

func (r *reader) utf8name() {
	if s := r.name(); r.err == nil && !utf8.Valid(s) {
		r.fail(errors.New("invalid UTF-8 name"))
	}
}

func (r *reader) limits() {
	switch r.byte() {
	case 0:
		r.u32()
	case 1:
		r.u32()
		r.u32()
	default:
		r.fail(errors.New("invalid limits flag"))
	}
}

// constExpr follows wabin's decodeConstantExpression.
func (r *reader) constExpr() {
	switch op := r.byte(); op {
	case 0x41: // i32.const
		if r.err == nil {
			_, n, err := readS32(r.b[r.p:])
			r.fail(err)
			r.p += n
		}
	case 0x42: // i64.const
		if r.err == nil {
			_, n, err := readS64(r.b[r.p:])
			r.fail(err)
			r.p += n
		}
	case 0x43: // f32.const
		r.skip(4)
	case 0x44: // f64.const
		r.skip(8)
	case 0x23, 0xd2: // global.get, ref.func
		r.u32()
	case 0xd0: // ref.null
		r.byte()
	case 0xfd: // v128.const
		r.byte()
		r.skip(16)
	default:
		r.fail(fmt.Errorf("invalid constant expression opcode %#x", op))
	}
	if r.byte() != 0x0b && r.err == nil {
		r.fail(errors.New("constant expression not terminated"))
	}
}

// guardSection checks the section content as described above. Sections wabin
// does not allocate for by count (start, data count) need no walk.
func guardSection(id byte, content []byte) error {
	r := &reader{b: content}
	switch id {
	case secType:
		for n := r.count(); n > 0 && r.err == nil; n-- {
			r.byte()               // 0x60
			r.skip(int(r.count())) // params
			r.skip(int(r.count())) // results
		}
	case secImport:
		for n := r.count(); n > 0 && r.err == nil; n-- {
			r.name()
			r.name()
			switch r.byte() {
			case 0x00: // func
				r.u32()
			case 0x01: // table
				r.byte()
				r.limits()
			case 0x02: // memory
				r.limits()
			case 0x03: // global
				r.byte()
				r.byte()
			default:
				r.fail(errors.New("invalid import kind"))
			}
		}
	case secFunction:
		for n := r.count(); n > 0 && r.err == nil; n-- {
			r.u32()
		}
	case secTable:
		for n := r.count(); n > 0 && r.err == nil; n-- {
			r.byte()
			r.limits()
		}
	case secMemory:
		if r.count() > 1 {
			r.fail(errors.New("more than one memory"))
		}
		r.limits()
	case secGlobal:
		for n := r.count(); n > 0 && r.err == nil; n-- {
			r.byte()
			r.byte()
			r.constExpr()
		}
	case secExport:
		for n := r.count(); n > 0 && r.err == nil; n-- {
			r.name()
			r.byte()
			r.u32()
		}
	case secElement:
		for n := r.count(); n > 0 && r.err == nil; n-- {
			r.element()
		}
	case secCode:
		var total uint64
		for n := r.count(); n > 0 && r.err == nil; n-- {
			size := r.count()
			if r.err != nil {
				break
			}
			body := &reader{b: r.b[r.p : r.p+int(size)]}
			r.p += int(size)
			var locals uint64
			for g := body.count(); g > 0 && body.err == nil; g-- {
				locals += uint64(body.u32())
				body.byte()
			}
			if body.err != nil {
				return fmt.Errorf("code: locals: %w", body.err)
			}
			total += locals
			if locals > maxFunctionLocals || total > maxModuleLocals {
				return fmt.Errorf("code: too many locals (%d in a function, %d in the module; limits %d and %d)",
					locals, total, maxFunctionLocals, maxModuleLocals)
			}
		}
	case secData:
		for n := r.count(); n > 0 && r.err == nil; n-- {
			switch r.u32() {
			case 0:
				r.constExpr()
			case 1:
			case 2:
				r.u32()
				r.constExpr()
			default:
				r.fail(errors.New("invalid data segment prefix"))
			}
			r.skip(int(r.count()))
		}
	}
	return r.err
}

// element follows wabin's decodeElementSegment.
func (r *reader) element() {
	indices := func() {
		for n := r.count(); n > 0 && r.err == nil; n-- {
			r.u32()
		}
	}
	exprs := func() {
		for n := r.count(); n > 0 && r.err == nil; n-- {
			r.constExpr()
		}
	}
	switch r.u32() {
	case 0:
		r.constExpr()
		indices()
	case 1, 3:
		r.byte()
		indices()
	case 2:
		r.u32()
		r.constExpr()
		r.byte()
		indices()
	case 4:
		r.constExpr()
		exprs()
	case 5, 7:
		r.byte()
		exprs()
	case 6:
		r.u32()
		r.constExpr()
		r.byte()
		exprs()
	default:
		r.fail(errors.New("invalid element segment prefix"))
	}
}
