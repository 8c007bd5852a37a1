package crypto

import "testing"

func TestDerivedAccountValid(t *testing.T) {
	a, b := DerivedAccount("x", []byte{1}), DerivedAccount("x", []byte{2})
	if !a.Valid() || !b.Valid() || a == b || a != DerivedAccount("x", []byte{1}) || a == DerivedAccount("y", []byte{1}) {
		t.Fatal("derived accounts")
	}
}
