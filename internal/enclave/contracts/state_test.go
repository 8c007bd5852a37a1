package contracts

import (
	"testing"

	"github.com/phalago/phala/api"
)

// The chain's idea of an empty store's root is the store's; changes are
// merged per location, in order, removals included, and taken once.
func TestStoreChanges(t *testing.T) {
	s := NewStore([32]byte{7})
	if s.Root() != api.EmptyStateRoot {
		t.Fatalf("empty root %x, api says %x", s.Root(), api.EmptyStateRoot)
	}
	s.Set([]byte("a"), []byte("1"))
	s.Set([]byte("a"), []byte("2"))
	s.Set([]byte("b"), []byte("x"))
	s.Remove([]byte("b"))
	s.Set([]byte("c"), []byte("3"))
	cs := s.TakeChanges()
	if len(cs) != 3 {
		t.Fatalf("%d changes", len(cs))
	}
	var removed int
	for i, c := range cs {
		if i > 0 && string(cs[i-1].Location[:]) >= string(c.Location[:]) {
			t.Fatal("changes out of order")
		}
		if c.Value == nil {
			removed++
		} else if string(c.Value) != string(s.entries[string(c.Location[:])]) {
			t.Fatal("a change is not the current value")
		}
	}
	if removed != 1 || s.HasChanges() || len(s.TakeChanges()) != 0 {
		t.Fatal("removal not reported, or changes taken twice")
	}
	// The root of the raw entries is the store's.
	var raw []api.StateChange
	s.Raw(func(l, v []byte) { raw = append(raw, api.StateChange{Location: [32]byte(l), Value: v}) })
	if RootOfEntries(s.Seq(), raw) != s.Root() {
		t.Fatal("RootOfEntries differs from Root")
	}
	// Persisted changed locations come back.
	s.Set([]byte("d"), []byte("4"))
	locs := s.DirtyLocations()
	r, err := RestoreStore([]EpochKey{{Key: [32]byte{7}}}, s.Snapshot(), s.Root())
	if err != nil {
		t.Fatal(err)
	}
	r.MarkDirty(locs)
	if got := r.TakeChanges(); len(got) != 1 || got[0].Value == nil {
		t.Fatalf("restored changes: %+v", got)
	}
}
