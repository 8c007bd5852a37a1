package contracts

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/phalago/phala/api"
)

// rawEntries lists s's encrypted entries as the chain holds them.
func rawEntries(s *Store) []api.StateChange {
	var out []api.StateChange
	s.Raw(func(l, v []byte) { out = append(out, api.StateChange{Location: [32]byte(l), Value: bytes.Clone(v)}) })
	return out
}

// A store rebuilt from its raw entries is the store: same root, its values
// decrypt under the storage key, no pending changes, and it goes on
// exactly as the original (same write counter).
func TestStoreFromEntriesRoundTrip(t *testing.T) {
	key := [32]byte{9}
	orig := NewStore(key)
	for i := range 300 {
		orig.Set(fmt.Appendf(nil, "key-%d", i), fmt.Appendf(nil, "value-%d", i))
	}
	orig.Set([]byte("big"), make([]byte, 100<<10)) // larger than the root's hashing chunk
	orig.Remove([]byte("key-7"))
	orig.TakeChanges()

	s, err := StoreFromEntries(key, orig.Seq(), rawEntries(orig), orig.Root())
	if err != nil {
		t.Fatal(err)
	}
	if s.Root() != orig.Root() || s.Len() != orig.Len() || s.Seq() != orig.Seq() || s.HasChanges() {
		t.Fatalf("rebuilt: root %x len %d seq %d changes %v; want %x %d %d false", s.Root(), s.Len(), s.Seq(), s.HasChanges(), orig.Root(), orig.Len(), orig.Seq())
	}
	// The cached root is what hashing the entries gives.
	s.root = nil
	if s.Root() != orig.Root() {
		t.Fatal("recomputed root differs")
	}
	for _, k := range []string{"key-0", "key-150", "key-299"} {
		v, ok, err := s.Get([]byte(k))
		if err != nil || !ok || string(v) != "value-"+strings.TrimPrefix(k, "key-") {
			t.Fatalf("Get(%s) = %q %v %v", k, v, ok, err)
		}
	}
	if _, ok, _ := s.Get([]byte("key-7")); ok {
		t.Fatal("a removed key is back")
	}
	// Both stores go on identically.
	orig.Set([]byte("next"), []byte("1"))
	s.Set([]byte("next"), []byte("1"))
	if s.Root() != orig.Root() {
		t.Fatal("the rebuilt store diverges on its next write")
	}
	if cs := s.TakeChanges(); len(cs) != 1 {
		t.Fatalf("%d changes after one write", len(cs))
	}
	// An empty store.
	if e, err := StoreFromEntries(key, 0, nil, api.EmptyStateRoot); err != nil || e.Len() != 0 {
		t.Fatalf("empty: %v", err)
	}
}

// Entries out of order, duplicated or without a value are refused, naming
// the entry; entries that do not hash to the root are refused with
// ErrRootMismatch.
func TestStoreFromEntriesRefuses(t *testing.T) {
	key := [32]byte{9}
	orig := NewStore(key)
	for i := range 5 {
		orig.Set(fmt.Appendf(nil, "k%d", i), []byte("v"))
	}
	good := rawEntries(orig)
	root, seq := orig.Root(), orig.Seq()
	edit := func(f func([]api.StateChange) []api.StateChange) []api.StateChange {
		c := make([]api.StateChange, len(good))
		copy(c, good)
		return f(c)
	}
	for _, tc := range []struct {
		name    string
		entries []api.StateChange
		seq     uint64
		root    [32]byte
		want    string
		mismat  bool
	}{
		{"out of order", edit(func(c []api.StateChange) []api.StateChange { c[1], c[2] = c[2], c[1]; return c }), seq, root, "entry 2", false},
		{"duplicate", edit(func(c []api.StateChange) []api.StateChange { c[3] = c[2]; return c }), seq, root, "entry 3", false},
		{"nil value", edit(func(c []api.StateChange) []api.StateChange { c[4].Value = nil; return c }), seq, root, "entry 4", false},
		{"value shorter than a counter", edit(func(c []api.StateChange) []api.StateChange { c[0].Value = []byte{1}; return c }), seq, root, "entry 0", false},
		{"wrong root", good, seq, [32]byte{1}, "", true},
		{"wrong counter", good, seq + 1, root, "", true},
		{"an entry missing", good[1:], seq, root, "", true},
		{"a value changed", edit(func(c []api.StateChange) []api.StateChange {
			c[1].Value = bytes.Clone(c[1].Value)
			c[1].Value[10] ^= 1
			return c
		}), seq, root, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := StoreFromEntries(key, tc.seq, tc.entries, tc.root)
			if err == nil || s != nil {
				t.Fatal("accepted")
			}
			if errors.Is(err, ErrRootMismatch) != tc.mismat || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v", err)
			}
		})
	}
}
