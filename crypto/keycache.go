package crypto

import (
	"sync"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/sr25519"
)

// Caches of pure functions of a public key: whether it decodes (Valid,
// a square root on the curve) and its SS58 address (base58 and a BLAKE2b
// checksum). A transfer checks its recipient and names both accounts in
// its event, in CheckTx and again in its block: a few microseconds each,
// for keys that recur.

// keyCacheSize bounds each cache (entries of a few dozen bytes): the
// active accounts of a busy chain.
const keyCacheSize = 1 << 14

var (
	validKeys = newKeyCache[bool](keyCacheSize)
	addresses = newKeyCache[string](keyCacheSize)
	// voiKeys: decompressed keys for Verify (a square root each, a third
	// of a verification); nil for an encoding that is not a point.
	voiKeys = newKeyCache[*voi.PublicKey](keyCacheSize)
)

// keyCache is a concurrency-safe map from public keys that holds at most
// max entries, dropping an arbitrary one when full. It caches values that
// are a pure function of the key, so which entry goes only costs time.
type keyCache[V any] struct {
	mu  sync.RWMutex
	m   map[PublicKey]V
	max int
}

func newKeyCache[V any](max int) *keyCache[V] {
	return &keyCache[V]{m: make(map[PublicKey]V), max: max}
}

// get returns the value for k, computing it with f (outside the lock) if
// it is not cached.
func (c *keyCache[V]) get(k PublicKey, f func() V) V {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = f()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = v
	return v
}
