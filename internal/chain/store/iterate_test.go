package store

import (
	"fmt"
	"strings"
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

// With IAVL fast storage on, reads and listings of an older version are
// still that version's; IterateLatestFrom lists the latest version only if
// use agrees, and says which version it was.
func TestIterateLatestFrom(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	if _, ok := s.IterateLatestFrom([]byte("p/"), nil, func(func([]byte) []byte) bool { return true }, func(k, v []byte) bool { return true }); ok {
		t.Fatal("listed a store with no version")
	}
	s.Set([]byte("p/a"), []byte("1"))
	s.Set([]byte("p/b"), []byte("1"))
	s.Set([]byte("q/a"), []byte("1"))
	commitBlock(t, s, 1, nil)
	s.Delete([]byte("p/a"))
	s.Set([]byte("p/b"), []byte("2"))
	s.Set([]byte("p/c"), []byte("2"))
	commitBlock(t, s, 2, nil)

	list := func(walk func(fn func(k, v []byte) bool)) string {
		var b strings.Builder
		walk(func(k, v []byte) bool { b.Write(k[2:]); b.Write(v); return true })
		return b.String()
	}
	old, err := s.Snapshot(1)
	if err != nil {
		t.Fatal(err)
	}
	if got := list(func(fn func(k, v []byte) bool) { old.IterateFrom([]byte("p/"), []byte("p/"), fn) }); got != "a1b1" {
		t.Fatalf("version 1 lists %q", got)
	}
	if v := old.Get([]byte("p/a")); string(v) != "1" {
		t.Fatalf("version 1 reads p/a = %q", v)
	}
	var h int64
	var ok bool
	var seen string
	got := list(func(fn func(k, v []byte) bool) {
		h, ok = s.IterateLatestFrom([]byte("p/"), []byte("p/b"), func(get func([]byte) []byte) bool {
			seen = string(get([]byte("p/b")))
			return true
		}, fn)
	})
	if got != "b2c2" || h != 2 || !ok || seen != "2" {
		t.Fatalf("latest from p/b: %q at %d (%v), use saw %q", got, h, ok, seen)
	}
	called := false
	if h, ok := s.IterateLatestFrom([]byte("p/"), nil, func(func([]byte) []byte) bool { return false }, func(k, v []byte) bool { called = true; return true }); ok || called || h != 2 {
		t.Fatal("listed although use refused")
	}
}
