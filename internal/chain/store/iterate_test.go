package store

import (
	"fmt"
	"testing"
)

// Iterate over a cache stack merges buffered writes and deletions with the
// committed and working entries of the store, in key order, and stops
// when asked.
func TestIterate(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Set([]byte("p/a"), []byte("1"))
	s.Set([]byte("p/c"), []byte("3"))
	s.Set([]byte("q/x"), []byte("x"))
	block := NewCache(s)
	block.Set([]byte("p/b"), []byte("2"))
	block.Delete([]byte("p/c"))
	tx := NewCache(block)
	tx.Set([]byte("p/d"), []byte("4"))
	tx.Set([]byte("p/a"), []byte("1'"))
	tx.Set([]byte("p/\xff"), []byte("last"))
	collect := func(kv KV, max int) string {
		out := ""
		n := 0
		Iterate(kv, []byte("p/"), func(k, v []byte) bool {
			out += fmt.Sprintf("%s=%s ", k, v)
			n++
			return n < max
		})
		return out
	}
	for _, c := range []struct {
		kv   KV
		max  int
		want string
	}{
		{s, 10, "p/a=1 p/c=3 "},
		{block, 10, "p/a=1 p/b=2 "},
		{tx, 10, "p/a=1' p/b=2 p/d=4 p/\xff=last "},
		{tx, 2, "p/a=1' p/b=2 "},
	} {
		if got := collect(c.kv, c.max); got != c.want {
			t.Errorf("%T (max %d): %q, want %q", c.kv, c.max, got, c.want)
		}
	}
	if e := prefixEnd([]byte{0x01, 0xff}); string(e) != "\x02" {
		t.Errorf("prefixEnd: %x", e)
	}
	if e := prefixEnd([]byte{0xff}); e != nil {
		t.Errorf("prefixEnd of 0xff: %x", e)
	}
}
