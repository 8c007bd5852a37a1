package contracts

import (
	"sync"
	"testing"
)

// A view keeps the state it was taken at while the store moves on, and
// may be read concurrently with the store's writes.
func TestStoreViewCopyOnWrite(t *testing.T) {
	s := NewStore([32]byte{1})
	s.Set([]byte("a"), []byte("1"))
	root := s.Root()
	v := s.View()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 1000 {
			if got, ok, err := v.Get([]byte("a")); err != nil || !ok || string(got) != "1" {
				t.Errorf("view: %q %v %v", got, ok, err)
				return
			}
			if _, ok, _ := v.Get([]byte("b")); ok {
				t.Error("view sees a later write")
				return
			}
		}
	}()
	for i := range 1000 {
		s.Set([]byte("a"), []byte{byte(i)})
		s.Set([]byte("b"), []byte("2"))
		s.Remove([]byte("b"))
	}
	wg.Wait()
	if v.Root() != root || s.Root() == root {
		t.Fatal("view root moved, or store root did not")
	}
}
