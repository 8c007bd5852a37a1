package contracts

import (
	"errors"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// One account's opens churn only its own sessions: past
// MaxSessionsPerAccount its oldest goes, others' stay; expiry and
// eviction keep the per-account index in step with the table.
func TestSessionsPerAccountBound(t *testing.T) {
	tab := NewSessions()
	a, b := crypto.MustKeyPairFromURI("//Alice").Public(), crypto.MustKeyPairFromURI("//Bob").Public()
	id := func(n int) (x [api.SessionIDSize]byte) { x[0], x[1] = byte(n), byte(n>>8); return }
	now := time.Unix(1000, 0)
	tab.add(&Session{ID: id(9000), From: b, NotAfter: now.Unix() + 60})
	for n := range MaxSessionsPerAccount + 5 {
		tab.add(&Session{ID: id(n), From: a, NotAfter: now.Unix() + 60})
	}
	if got := tab.Len(); got != MaxSessionsPerAccount+1 {
		t.Fatalf("%d sessions kept, want %d of Alice's and Bob's one", got, MaxSessionsPerAccount)
	}
	for n := range 5 {
		if _, err := tab.Get(id(n), now); !errors.Is(err, ErrUnknownSession) {
			t.Fatalf("Alice's session %d (of her oldest) still kept: %v", n, err)
		}
	}
	if _, err := tab.Get(id(MaxSessionsPerAccount+4), now); err != nil {
		t.Fatalf("Alice's newest session: %v", err)
	}
	if _, err := tab.Get(id(9000), now); err != nil {
		t.Fatalf("Bob's session was dropped by Alice's opens: %v", err)
	}
	// Expired: Get drops it from both indexes.
	if _, err := tab.Get(id(9000), now.Add(2*time.Minute)); !errors.Is(err, ErrUnknownSession) {
		t.Fatalf("expired session: %v", err)
	}
	tab.mu.Lock()
	defer tab.mu.Unlock()
	if _, ok := tab.byFrom[b]; ok || len(tab.byFrom[a]) != MaxSessionsPerAccount || len(tab.m) != MaxSessionsPerAccount {
		t.Fatalf("indexes out of step: %d in the table, Alice %d, Bob %v", len(tab.m), len(tab.byFrom[a]), tab.byFrom[b])
	}
}

// A full table drops the expired sessions first, then the one that
// expires soonest, whoever holds it; the index of expiry stays bounded
// however many sessions come and go.
func TestSessionsFullTableEviction(t *testing.T) {
	tab := NewSessions()
	id := func(n int) (x [api.SessionIDSize]byte) { x[0], x[1], x[2] = byte(n), byte(n>>8), byte(n>>16); return }
	from := func(n int) crypto.PublicKey {
		var k crypto.PublicKey
		k[0], k[1], k[2] = byte(n), byte(n>>8), 1
		return k
	}
	const base = 1000
	// Session n expires at base+10+n, except three that expire at base
	// (already expired when the next opens at base+5) and one long-lived.
	expired := map[int]bool{17: true, 4000: true, 9999: true}
	for n := range MaxSessions {
		na := int64(base + 10 + n)
		if expired[n] {
			na = base
		}
		if n == 0 {
			na = base + 1_000_000
		}
		tab.add(&Session{ID: id(n), From: from(n), NotAfter: na})
	}
	for n := range 4 {
		tab.add(&Session{ID: id(MaxSessions + n), From: from(MaxSessions + n), NotAfter: base + 100_000})
	}
	if got := tab.Len(); got != MaxSessions {
		t.Fatalf("%d sessions kept, want %d", got, MaxSessions)
	}
	now := time.Unix(base+5, 0)
	gone := []int{17, 4000, 9999, 1} // the expired three, then the soonest to expire
	for _, n := range gone {
		if _, err := tab.Get(id(n), now); !errors.Is(err, ErrUnknownSession) {
			t.Errorf("session %d kept: %v", n, err)
		}
	}
	for _, n := range []int{0, 2, MaxSessions + 3} {
		if _, err := tab.Get(id(n), now); err != nil {
			t.Errorf("session %d dropped: %v", n, err)
		}
	}
	// Churn: many more opens than the table holds keep it and its heap
	// bounded.
	for n := range 5 * MaxSessions {
		tab.add(&Session{ID: id(2*MaxSessions + n), From: from(n % 7), NotAfter: base + 100_000 + int64(n)})
	}
	tab.mu.Lock()
	defer tab.mu.Unlock()
	if len(tab.m) > MaxSessions || len(tab.expiry) > 2*MaxSessions+64 {
		t.Fatalf("table %d, expiry index %d: unbounded", len(tab.m), len(tab.expiry))
	}
}

// BenchmarkSessionOpenFullTable: adding a session to a full table.
func BenchmarkSessionOpenFullTable(b *testing.B) {
	tab := NewSessions()
	id := func(n int) (x [api.SessionIDSize]byte) {
		x[0], x[1], x[2], x[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
		return
	}
	for n := range MaxSessions {
		var k crypto.PublicKey
		k[0], k[1] = byte(n), byte(n>>8)
		tab.add(&Session{ID: id(n), From: k, NotAfter: int64(1000 + n)})
	}
	b.ResetTimer()
	for i := range b.N {
		var k crypto.PublicKey
		k[0], k[1], k[2] = byte(i), byte(i>>8), 2
		tab.add(&Session{ID: id(MaxSessions + i), From: k, NotAfter: int64(20_000 + i)})
	}
}
