package store

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
)

// Iterator is a KV that lists its entries under a prefix, in key order.
type Iterator interface {
	Iterate(prefix []byte, fn func(key, value []byte) bool)
}

// Iterate calls fn for every entry of kv under prefix, in key order, until
// fn returns false. kv must be an Iterator (Store, Cache, Snapshot are);
// modules use it on their context's KV to walk their own keys. fn must not
// write to kv.
func Iterate(kv KV, prefix []byte, fn func(key, value []byte) bool) {
	it, ok := kv.(Iterator)
	if !ok {
		panic(fmt.Sprintf("store: a %T cannot iterate", kv))
	}
	it.Iterate(prefix, fn)
}

// prefixEnd returns the first key after every key starting with prefix
// (nil: no bound).
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Iterate walks the working version.
func (s *Store) Iterate(prefix []byte, fn func(key, value []byte) bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	it, err := s.tree.Iterator(prefix, prefixEnd(prefix), true)
	if err != nil {
		panic(fmt.Sprintf("state iterate %q: %v", prefix, err))
	}
	defer it.Close()
	for ; it.Valid(); it.Next() {
		if !fn(it.Key(), it.Value()) {
			break
		}
	}
	if err := it.Error(); err != nil {
		panic(fmt.Sprintf("state iterate %q: %v", prefix, err))
	}
}

// Iterate walks the snapshot.
func (sn *Snapshot) Iterate(prefix []byte, fn func(key, value []byte) bool) {
	if err := sn.Prefix(prefix, int(^uint(0)>>1), fn); err != nil {
		panic(fmt.Sprintf("state iterate %q: %v", prefix, err))
	}
}

// Iterate walks the parent's entries merged with the buffered writes:
// buffered values replace the parent's, buffered deletions hide them.
func (c *Cache) Iterate(prefix []byte, fn func(key, value []byte) bool) {
	var dirty []string
	for k := range c.dirty {
		if strings.HasPrefix(k, string(prefix)) {
			dirty = append(dirty, k)
		}
	}
	sort.Strings(dirty)
	i, stop := 0, false
	// emitUntil emits the buffered entries before key (all if key is nil).
	emitUntil := func(key []byte) {
		for ; !stop && i < len(dirty) && (key == nil || dirty[i] < string(key)); i++ {
			if v := c.dirty[dirty[i]]; v != nil && !fn([]byte(dirty[i]), v) {
				stop = true
			}
		}
	}
	Iterate(c.parent, prefix, func(k, v []byte) bool {
		emitUntil(k)
		if stop {
			return false
		}
		if i < len(dirty) && dirty[i] == string(k) {
			dv := c.dirty[dirty[i]]
			i++
			if dv == nil {
				return true // deleted here
			}
			v = dv
		}
		if !fn(k, v) {
			stop = true
		}
		return !stop
	})
	emitUntil(nil)
}

// IterateFrom walks the snapshot's entries under prefix from key start
// (inclusive) on, in key order, until fn returns false.
func (sn *Snapshot) IterateFrom(prefix, start []byte, fn func(key, value []byte) bool) {
	sn.mu.RLock()
	defer sn.mu.RUnlock()
	if bytes.Compare(start, prefix) < 0 {
		start = prefix
	}
	it, err := sn.tree.Iterator(start, prefixEnd(prefix), true)
	if err != nil {
		panic(fmt.Sprintf("state iterate %q: %v", prefix, err))
	}
	defer it.Close()
	for ; it.Valid(); it.Next() {
		if !fn(it.Key(), it.Value()) {
			break
		}
	}
	if err := it.Error(); err != nil {
		panic(fmt.Sprintf("state iterate %q: %v", prefix, err))
	}
}

// IterateLatestFrom walks the latest committed version's entries under
// prefix from start (inclusive) on, like Snapshot.IterateFrom, if use,
// given a reader of that version, agrees; no commit happens in between,
// so the walk reads the key-ordered index IAVL keeps of the latest
// version (fast storage: a LevelDB range scan) rather than the tree node
// by node. It returns that version's height and whether it walked.
func (s *Store) IterateLatestFrom(prefix, start []byte, use func(get func(key []byte) []byte) bool, fn func(key, value []byte) bool) (int64, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h := s.tree.Version()
	if h == 0 {
		return 0, false
	}
	t, err := s.tree.GetImmutable(h)
	if err != nil {
		panic(fmt.Sprintf("state version %d: %v", h, err))
	}
	get := func(key []byte) []byte {
		v, err := t.Get(key)
		if err != nil {
			panic(fmt.Sprintf("state read %q at %d: %v", key, h, err))
		}
		return v
	}
	if !use(get) {
		return h, false
	}
	if bytes.Compare(start, prefix) < 0 {
		start = prefix
	}
	it, err := t.Iterator(start, prefixEnd(prefix), true)
	if err != nil {
		panic(fmt.Sprintf("state iterate %q: %v", prefix, err))
	}
	defer it.Close()
	for ; it.Valid(); it.Next() {
		if !fn(it.Key(), it.Value()) {
			break
		}
	}
	if err := it.Error(); err != nil {
		panic(fmt.Sprintf("state iterate %q: %v", prefix, err))
	}
	return h, true
}
