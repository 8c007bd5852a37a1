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
	tab.add(&Session{ID: id(9000), From: b, NotAfter: now.Unix() + 60}, now.Unix())
	for n := range MaxSessionsPerAccount + 5 {
		tab.add(&Session{ID: id(n), From: a, NotAfter: now.Unix() + 60}, now.Unix())
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
