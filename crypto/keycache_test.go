package crypto

import (
	"sync"
	"testing"

	schnorrkel "github.com/ChainSafe/go-schnorrkel"
	subkey "github.com/vedhavyas/go-subkey/v2"
)

// Valid and Address answer the same from the cache as computed afresh,
// for valid, identity and undecodable keys, from several goroutines (run
// with -race).
func TestKeyCacheAnswers(t *testing.T) {
	notPoint := PublicKey{1} // s = 1 is negative: no ristretto255 encoding
	cases := []struct {
		name  string
		pk    PublicKey
		valid bool
	}{
		{"alice", MustKeyPairFromURI("//Alice").Public(), true},
		{"derived", DerivedAccount("test", []byte{1}), true},
		{"identity", PublicKey{}, false},
		{"not a point", notPoint, false},
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				for _, c := range cases {
					_, err := schnorrkel.NewPublicKey(c.pk)
					if want := c.pk != (PublicKey{}) && err == nil; want != c.valid {
						t.Errorf("%s: case says valid=%v, schnorrkel decodes: %v", c.name, c.valid, want)
					}
					if got := c.pk.Valid(); got != c.valid {
						t.Errorf("goroutine %d %s: Valid = %v", g, c.name, got)
					}
					if got, want := c.pk.Address(), subkey.SS58Encode(c.pk[:], AddressFormat); got != want {
						t.Errorf("%s: Address = %s, want %s", c.name, got, want)
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestKeyCacheBounded(t *testing.T) {
	c := newKeyCache[int](3)
	calls := 0
	for i := range 10 {
		if got := c.get(PublicKey{byte(i)}, func() int { calls++; return i }); got != i {
			t.Fatalf("get %d = %d", i, got)
		}
		if len(c.m) > 3 {
			t.Fatalf("%d entries, max 3", len(c.m))
		}
	}
	if got := c.get(PublicKey{9}, func() int { calls++; return -1 }); got != 9 || calls != 10 {
		t.Fatalf("cached entry: %d after %d computations", got, calls)
	}
}
