package app

import "sync"

// sigCache remembers the outcome of signature checks by transaction hash, so
// a transaction's signature is verified once per process (CheckTx, recheck
// and FinalizeBlock all see it), bounded by FIFO eviction.
type sigCache struct {
	mu    sync.Mutex
	valid map[[32]byte]bool
	ring  [][32]byte
	next  int
}

func newSigCache(size int) *sigCache {
	return &sigCache{valid: make(map[[32]byte]bool, size), ring: make([][32]byte, size)}
}

func (c *sigCache) get(h [32]byte) (valid, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	valid, ok = c.valid[h]
	return
}

func (c *sigCache) put(h [32]byte, valid bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.valid[h]; ok {
		return
	}
	old := c.ring[c.next]
	if old != ([32]byte{}) {
		delete(c.valid, old)
	}
	c.ring[c.next] = h
	c.next = (c.next + 1) % len(c.ring)
	c.valid[h] = valid
}
