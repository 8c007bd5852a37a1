package api

import "testing"

// NextLocation adds one to a location as a big-endian number (what a
// range listing continues from), and says when there is no next one.
func TestNextLocation(t *testing.T) {
	var l [StateLocationSize]byte
	l[31] = 0xfe
	if n, ok := NextLocation(l); !ok || n[31] != 0xff || n[30] != 0 {
		t.Fatalf("%x %v", n, ok)
	}
	l[31], l[30] = 0xff, 0x01
	if n, ok := NextLocation(l); !ok || n[31] != 0 || n[30] != 2 {
		t.Fatalf("carry: %x %v", n, ok)
	}
	for i := range l {
		l[i] = 0xff
	}
	if _, ok := NextLocation(l); ok {
		t.Fatal("a location after the last one")
	}
}
