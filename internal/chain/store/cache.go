package store

import (
	"sort"
)

// KV is the view of state a module reads and writes.
type KV interface {
	Get(key []byte) []byte
	Set(key, value []byte)
	Delete(key []byte)
}

// Cache buffers writes over a parent KV. Write flushes them to the parent in
// key order, so the parent (an IAVL tree, whose shape depends on insertion
// order) sees the same sequence on every node; Discard drops them.
type Cache struct {
	parent KV
	dirty  map[string][]byte // nil value: deleted
}

// NewCache returns an empty cache over parent.
func NewCache(parent KV) *Cache { return &Cache{parent: parent, dirty: map[string][]byte{}} }

// Get reads through the buffer.
func (c *Cache) Get(key []byte) []byte {
	if v, ok := c.dirty[string(key)]; ok {
		return v
	}
	return c.parent.Get(key)
}

// Set buffers a write. The value must not be modified afterwards.
func (c *Cache) Set(key, value []byte) {
	if value == nil {
		value = []byte{}
	}
	c.dirty[string(key)] = value
}

// Delete buffers a deletion.
func (c *Cache) Delete(key []byte) { c.dirty[string(key)] = nil }

// Write flushes the buffered writes to the parent in key order and empties
// the buffer.
func (c *Cache) Write() {
	keys := make([]string, 0, len(c.dirty))
	for k := range c.dirty {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v := c.dirty[k]; v == nil {
			c.parent.Delete([]byte(k))
		} else {
			c.parent.Set([]byte(k), v)
		}
	}
	clear(c.dirty)
}

// Discard drops the buffered writes.
func (c *Cache) Discard() { clear(c.dirty) }
