package codec

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	w := NewWriter(0)
	w.U8(7)
	w.Bool(true)
	w.Uvarint(300)
	w.Varint(-5)
	w.Fixed([]byte{1, 2, 3})
	w.BytesField([]byte("abc"))
	w.String("hello")
	r := NewReader(w.Bytes())
	var fixed [3]byte
	u8, b, uv, v := r.U8(), r.Bool(), r.Uvarint(), r.Varint()
	r.Fixed(fixed[:])
	bs, s := r.BytesField(10), r.String(10)
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
	if u8 != 7 || !b || uv != 300 || v != -5 || fixed != [3]byte{1, 2, 3} || !bytes.Equal(bs, []byte("abc")) || s != "hello" {
		t.Fatalf("got %v %v %v %v %v %q %q", u8, b, uv, v, fixed, bs, s)
	}
}

func TestReaderRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		read func(*Reader)
		want error
	}{
		{"short", []byte{}, func(r *Reader) { r.U8() }, ErrShort},
		{"non-minimal varint", []byte{0x80, 0x00}, func(r *Reader) { r.Uvarint() }, ErrVarint},
		{"overflowing varint", bytes.Repeat([]byte{0xff}, 11), func(r *Reader) { r.Uvarint() }, ErrVarint},
		{"truncated varint", []byte{0x80}, func(r *Reader) { r.Uvarint() }, ErrShort},
		{"bad bool", []byte{2}, func(r *Reader) { r.Bool() }, ErrBadBool},
		{"length over limit", []byte{5, 1, 2, 3, 4, 5}, func(r *Reader) { r.BytesField(4) }, ErrTooLong},
		{"length past end", []byte{5, 1}, func(r *Reader) { r.BytesField(10) }, ErrShort},
		{"trailing", []byte{1, 2}, func(r *Reader) { r.U8() }, ErrTrailing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(tc.in)
			tc.read(r)
			if err := r.Done(); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestStickyError(t *testing.T) {
	r := NewReader([]byte{0x80, 0x00, 1})
	r.Uvarint()
	if r.U8() != 0 || r.Err() == nil {
		t.Fatal("reads after an error must return zero values")
	}
}
