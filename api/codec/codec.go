// Package codec is the project's compact binary encoding: unsigned varints,
// fixed-size byte arrays and length-prefixed byte strings, with a strict
// reader for untrusted bytes.
//
// The reader is canonical: it refuses non-minimal varints, lengths over the
// caller's limit, booleans other than 0 and 1, and (with [Reader.Done])
// trailing bytes, so anything it accepts re-encodes to the same bytes.
// Errors are sticky: after the first failure every read returns a zero value
// and [Reader.Err] reports the first cause.
package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors reported by the reader.
var (
	ErrShort     = errors.New("unexpected end of input")
	ErrTrailing  = errors.New("trailing bytes")
	ErrVarint    = errors.New("non-canonical or overflowing varint")
	ErrTooLong   = errors.New("length over limit")
	ErrBadBool   = errors.New("boolean is neither 0 nor 1")
	ErrBadFormat = errors.New("malformed value")
)

// Writer appends encoded values to a byte slice.
type Writer struct{ buf []byte }

// NewWriter returns a writer with capacity hint n.
func NewWriter(n int) *Writer { return &Writer{buf: make([]byte, 0, n)} }

// Bytes returns the encoded bytes.
func (w *Writer) Bytes() []byte { return w.buf }

// Len returns the number of bytes written so far.
func (w *Writer) Len() int { return len(w.buf) }

// U8 writes one byte.
func (w *Writer) U8(v uint8) { w.buf = append(w.buf, v) }

// Bool writes 0 or 1.
func (w *Writer) Bool(v bool) {
	if v {
		w.buf = append(w.buf, 1)
	} else {
		w.buf = append(w.buf, 0)
	}
}

// Uvarint writes v as an unsigned LEB128 varint.
func (w *Writer) Uvarint(v uint64) { w.buf = binary.AppendUvarint(w.buf, v) }

// Varint writes a signed value (zig-zag).
func (w *Writer) Varint(v int64) { w.buf = binary.AppendVarint(w.buf, v) }

// Fixed writes b as is (the reader must know its length).
func (w *Writer) Fixed(b []byte) { w.buf = append(w.buf, b...) }

// Bytes writes a length-prefixed byte string.
func (w *Writer) BytesField(b []byte) {
	w.Uvarint(uint64(len(b)))
	w.buf = append(w.buf, b...)
}

// String writes a length-prefixed string.
func (w *Writer) String(s string) {
	w.Uvarint(uint64(len(s)))
	w.buf = append(w.buf, s...)
}

// Reader decodes values from untrusted bytes.
type Reader struct {
	b   []byte
	off int
	err error
}

// NewReader reads from b. It never modifies b; byte strings it returns are
// copies, so b may be reused by the caller.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err returns the first error.
func (r *Reader) Err() error { return r.err }

// Fail records err (wrapped with the offset) if no error is recorded yet.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = fmt.Errorf("at byte %d: %w", r.off, err)
	}
}

// Remaining returns the number of unread bytes.
func (r *Reader) Remaining() int { return len(r.b) - r.off }

// Offset returns the number of bytes consumed.
func (r *Reader) Offset() int { return r.off }

// Done returns the first error, or ErrTrailing if bytes remain.
func (r *Reader) Done() error {
	if r.err == nil && r.off != len(r.b) {
		r.Fail(fmt.Errorf("%w: %d", ErrTrailing, len(r.b)-r.off))
	}
	return r.err
}

func (r *Reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.Fail(ErrShort)
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

// U8 reads one byte.
func (r *Reader) U8() uint8 {
	s := r.take(1)
	if s == nil {
		return 0
	}
	return s[0]
}

// Bool reads a strict boolean.
func (r *Reader) Bool() bool {
	v := r.U8()
	if v > 1 {
		r.Fail(ErrBadBool)
		return false
	}
	return v == 1
}

// Uvarint reads a canonical (minimal) unsigned varint.
func (r *Reader) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n == 0 {
		r.Fail(ErrShort)
		return 0
	}
	if n < 0 || n != uvarintLen(v) {
		r.Fail(ErrVarint)
		return 0
	}
	r.off += n
	return v
}

// Varint reads a canonical zig-zag varint.
func (r *Reader) Varint() int64 {
	u := r.Uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

// Len reads a length prefix and checks it against max and the remaining input.
func (r *Reader) Len(max int) int {
	n := r.Uvarint()
	if r.err != nil {
		return 0
	}
	if n > uint64(max) {
		r.Fail(fmt.Errorf("%w: %d > %d", ErrTooLong, n, max))
		return 0
	}
	if n > uint64(r.Remaining()) {
		r.Fail(ErrShort)
		return 0
	}
	return int(n)
}

// Fixed copies exactly len(dst) bytes into dst.
func (r *Reader) Fixed(dst []byte) {
	copy(dst, r.take(len(dst)))
}

// BytesField reads a length-prefixed byte string of at most max bytes.
// It returns a copy; an empty string decodes as nil.
func (r *Reader) BytesField(max int) []byte {
	n := r.Len(max)
	s := r.take(n)
	if len(s) == 0 {
		return nil
	}
	return append([]byte(nil), s...)
}

// String reads a length-prefixed string of at most max bytes.
func (r *Reader) String(max int) string {
	n := r.Len(max)
	return string(r.take(n))
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
