package api

import (
	"bytes"
	"errors"
	"testing"
)

// TestPad: every length pads to the next multiple of PadBlock (a whole
// block when already a multiple) and unpads to itself; malformed padding
// is refused.
func TestPad(t *testing.T) {
	for _, n := range []int{0, 1, PadBlock - 2, PadBlock - 1, PadBlock, PadBlock + 1, 5*PadBlock - 1, 5 * PadBlock} {
		b := bytes.Repeat([]byte{0x80}, n) // the marker's own value in the content
		p := Pad(bytes.Clone(b))
		want := (n/PadBlock + 1) * PadBlock
		if len(p) != want {
			t.Errorf("Pad(%d bytes) has %d, want %d", n, len(p), want)
		}
		if got, err := Unpad(p); err != nil || !bytes.Equal(got, b) {
			t.Errorf("Unpad(Pad(%d bytes)) = %d bytes, %v", n, len(got), err)
		}
	}
	block := func(f func(b []byte)) []byte { b := make([]byte, PadBlock); f(b); return b }
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"not a multiple of the block", append(Pad(nil), 0)},
		{"no marker", make([]byte, PadBlock)},
		{"a non-zero byte after the marker", block(func(b []byte) { b[10], b[PadBlock-1] = 0x80, 1 })},
		{"content ending in a byte other than the marker", block(func(b []byte) { b[PadBlock-1] = 0x7f })},
		{"a marker more than a block back", append(Pad(nil)[:1], make([]byte, 2*PadBlock-1)...)},
	} {
		if _, err := Unpad(tc.b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", tc.name, err)
		}
	}
}

// FuzzUnpad: what unpads pads back to the same bytes (one encoding), and
// every input pads to a multiple of PadBlock that unpads to it.
func FuzzUnpad(f *testing.F) {
	f.Add(Pad([]byte("77")))
	f.Add(make([]byte, PadBlock))
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := Unpad(b); err == nil && !bytes.Equal(Pad(bytes.Clone(v)), b) {
			t.Fatalf("Unpad(%x) = %x does not pad back", b, v)
		}
		p := Pad(bytes.Clone(b))
		if v, err := Unpad(p); err != nil || !bytes.Equal(v, b) || len(p)%PadBlock != 0 {
			t.Fatalf("Pad(%x) = %x: unpads to %x, %v", b, p, v, err)
		}
	})
}
