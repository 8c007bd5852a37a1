package contracts_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/enclave/keys"
)

func tokenWithBob(t *testing.T) *contracts.Contract {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a contract")
	}
	ctx := context.Background()
	c := newContract(t, filepath.Join("..", "..", "..", "examples", "contracts", "token"), false)
	c.Init(ctx, alice.Public(), nil, 1, t0)
	if _, err := c.Command(ctx, alice.Public(), tokenReq("mint", bob.Public(), 77), 2, t0); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestQuerySession: a session's queries are answered with the caller of
// its open; a query forged, tampered, replayed, reflected, too old or
// sealed under another session's key is refused, and so is an answer the
// host altered or reflected.
func TestQuerySession(t *testing.T) {
	c := tokenWithBob(t)
	ctx := context.Background()
	now := t0.Add(time.Minute)
	g, table := contracts.NewQueryGuard(), contracts.NewSessions()
	cs, ws := openSession(t, c, g, table, bob, now)

	q := cs.Seal([]byte("balance"))
	a, err := c.HandleSessionQuery(ctx, ws, q, 2, now)
	if err != nil {
		t.Fatal(err)
	}
	out, h, err := cs.Open(q, a)
	if err != nil || h != 2 || !strings.Contains(string(out), "77") {
		t.Fatalf("answer: %q at %d, %v", out, h, err)
	}
	// Answers are padded: Alice's balance (0, fewer digits) and a refusal
	// seal to the size of Bob's 77.
	for _, in := range []string{"balance " + alice.Public().Hex(), "no such query"} {
		q2 := cs.Seal([]byte(in))
		a2, err := c.HandleSessionQuery(ctx, ws, q2, 2, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(a2.Ciphertext) != len(a.Ciphertext) {
			t.Errorf("answer to %q seals to %d bytes, the balance of 77 to %d: sizes leak the answer", in, len(a2.Ciphertext), len(a.Ciphertext))
		}
		if _, _, err := cs.Open(q2, a2); err == nil && in == "no such query" {
			t.Errorf("%q answered without an error", in)
		}
	}

	// Another session (Alice's) on the same worker: its keys differ.
	other, otherWS := openSession(t, c, g, table, alice, now)
	otherQ := other.Seal([]byte("balance"))
	forged := &api.SessionQuery{ID: ws.ID, Seq: 1000, Ciphertext: bytes.Repeat([]byte{7}, 40)}
	tampered := cs.Seal([]byte("balance"))
	tampered.Ciphertext[0] ^= 1
	renumbered := cs.Seal([]byte("balance"))
	renumbered.Seq++
	// The answer sent back to the worker as the query of its number.
	reflected := &api.SessionQuery{ID: ws.ID, Seq: a.Seq, Ciphertext: a.Ciphertext}
	for _, tc := range []struct {
		name string
		q    *api.SessionQuery
	}{
		{"replayed", q},
		{"forged by the host", forged},
		{"tampered", tampered},
		{"renumbered", renumbered},
		{"an answer reflected as a query", reflected},
		{"sealed under another session's key", &api.SessionQuery{ID: ws.ID, Seq: 2000, Ciphertext: otherQ.Ciphertext}},
		{"number zero", &api.SessionQuery{ID: ws.ID, Seq: 0, Ciphertext: q.Ciphertext}},
		{"another session's ID", otherQ},
	} {
		if _, err := c.HandleSessionQuery(ctx, ws, tc.q, 2, now); !errors.Is(err, contracts.ErrQueryRefused) {
			t.Errorf("%s: %v, want ErrQueryRefused", tc.name, err)
		}
	}

	// Out of order within the window is answered once; beyond it, refused.
	var late []*api.SessionQuery
	for range contracts.SessionWindow + 1 {
		late = append(late, cs.Seal([]byte("balance")))
	}
	last := late[len(late)-1]
	if _, err := c.HandleSessionQuery(ctx, ws, last, 2, now); err != nil {
		t.Fatal(err)
	}
	if _, err := c.HandleSessionQuery(ctx, ws, late[1], 2, now); err != nil {
		t.Fatalf("a query within the window: %v", err)
	}
	if _, err := c.HandleSessionQuery(ctx, ws, late[1], 2, now); !errors.Is(err, contracts.ErrQueryRefused) {
		t.Fatalf("replayed within the window: %v", err)
	}
	if _, err := c.HandleSessionQuery(ctx, ws, late[0], 2, now); !errors.Is(err, contracts.ErrQueryRefused) {
		t.Fatalf("behind the window: %v", err)
	}

	// The client refuses answers the host altered or reflected.
	q2 := cs.Seal([]byte("balance"))
	a2, err := c.HandleSessionQuery(ctx, ws, q2, 5, now)
	if err != nil {
		t.Fatal(err)
	}
	// Alice's session answering her query of q2's number at height 5.
	var oq *api.SessionQuery
	for oq == nil || oq.Seq < q2.Seq {
		oq = other.Seal([]byte("balance"))
	}
	otherA, err := c.HandleSessionQuery(ctx, otherWS, oq, 5, now)
	if err != nil || otherA.Seq != q2.Seq {
		t.Fatalf("alice's answer %d: %v", otherA.Seq, err)
	}
	for _, tc := range []struct {
		name string
		a    *api.SessionAnswer
	}{
		{"height changed", &api.SessionAnswer{Seq: a2.Seq, Height: 6, Ciphertext: a2.Ciphertext}},
		{"answer of another query", &api.SessionAnswer{Seq: a.Seq, Height: a.Height, Ciphertext: a.Ciphertext}},
		{"the query reflected as its answer", &api.SessionAnswer{Seq: q2.Seq, Height: 5, Ciphertext: q2.Ciphertext}},
		{"sealed under another session's key", otherA},
		{"forged", &api.SessionAnswer{Seq: q2.Seq, Height: 5, Ciphertext: bytes.Repeat([]byte{1}, 30)}},
		{"short", &api.SessionAnswer{Seq: q2.Seq, Height: 5, Ciphertext: []byte{1}}},
	} {
		if _, _, err := cs.Open(q2, tc.a); !errors.Is(err, api.ErrBadProof) {
			t.Errorf("%s: %v, want ErrBadProof", tc.name, err)
		}
	}
	if out, h, err := cs.Open(q2, a2); err != nil || h != 5 || !strings.Contains(string(out), "77") {
		t.Fatalf("answer: %q at %d, %v", out, h, err)
	}
}

// TestQuerySessionOpen: an open that is not the client's, replayed,
// expired, too long, for another contract or worker-less is refused; an
// accept not signed by the contract or for another open is refused by
// the client; a session ends at its NotAfter.
func TestQuerySessionOpen(t *testing.T) {
	c := tokenWithBob(t)
	now := t0.Add(time.Minute)
	g, table := contracts.NewQueryGuard(), contracts.NewSessions()
	open := func(mut func(o *api.QuerySessionOpen), resign bool) *api.QuerySessionOpen {
		p, err := client.NewQuerySessionOpen(bob, c.ID(), worker, now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		mut(p.Open)
		if resign {
			p.Open.Signature = bob.Sign(api.ContextQuerySession, p.Open.SignBytes())
		}
		return p.Open
	}
	replayed := open(func(*api.QuerySessionOpen) {}, false)
	if _, err := c.OpenSession(g, table, replayed, now); err != nil {
		t.Fatal(err)
	}
	k, _ := keys.ContractKeysFromSeed(sha256.Sum256([]byte("another contract")))
	for _, tc := range []struct {
		name string
		o    *api.QuerySessionOpen
	}{
		{"replayed", replayed},
		{"signed by someone else", open(func(o *api.QuerySessionOpen) { o.Signature = alice.Sign(api.ContextQuerySession, o.SignBytes()) }, false)},
		{"altered by the host", open(func(o *api.QuerySessionOpen) { o.Ephemeral = alice.Public() }, false)},
		{"signed under the query context", open(func(o *api.QuerySessionOpen) { o.Signature = bob.Sign(api.ContextQuery, o.SignBytes()) }, false)},
		{"expired", open(func(o *api.QuerySessionOpen) { o.NotAfter = now.Unix() - 1 }, true)},
		{"longer than MaxSessionTTL", open(func(o *api.QuerySessionOpen) { o.NotAfter = now.Add(contracts.MaxSessionTTL + time.Second).Unix() }, true)},
		{"for another contract", open(func(o *api.QuerySessionOpen) { o.Contract = k.Identity.Public() }, true)},
		{"an invalid ephemeral key", open(func(o *api.QuerySessionOpen) { o.Ephemeral = crypto.PublicKey{0xff, 0xff} }, true)},
	} {
		if _, err := c.OpenSession(g, table, tc.o, now); !errors.Is(err, contracts.ErrQueryRefused) {
			t.Errorf("%s: %v, want ErrQueryRefused", tc.name, err)
		}
	}
	if n := table.Len(); n != 1 {
		t.Fatalf("%d sessions kept, want 1", n)
	}

	p, err := client.NewQuerySessionOpen(bob, c.ID(), worker, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.OpenSession(g, table, p.Open, now)
	if err != nil {
		t.Fatal(err)
	}
	wrongSigner := *a
	wrongSigner.Signature = k.Identity.Sign(api.ContextQuerySessionAccept, a.SignBytes())
	otherOpen := *a
	otherOpen.Open = replayed.Hash()
	otherOpen.Signature = k.Identity.Sign(api.ContextQuerySessionAccept, otherOpen.SignBytes())
	swapped := *a
	swapped.Ephemeral = alice.Public()
	for _, tc := range []struct {
		name string
		a    *api.QuerySessionAccept
	}{
		{"not signed by the contract", &wrongSigner},
		{"for another open", &otherOpen},
		{"ephemeral key swapped by the host", &swapped},
	} {
		if _, err := p.Accept(tc.a); !errors.Is(err, api.ErrBadProof) {
			t.Errorf("%s: %v, want ErrBadProof", tc.name, err)
		}
	}
	if _, err := p.Accept(a); err != nil {
		t.Fatal(err)
	}

	if _, err := table.Get(a.ID, now.Add(time.Minute)); err != nil {
		t.Fatalf("at its NotAfter: %v", err)
	}
	if _, err := table.Get(a.ID, now.Add(time.Minute+time.Second)); !errors.Is(err, contracts.ErrUnknownSession) {
		t.Fatalf("after its NotAfter: %v", err)
	}
	if _, err := table.Get([api.SessionIDSize]byte{1}, now); !errors.Is(err, contracts.ErrUnknownSession) {
		t.Fatalf("unknown: %v", err)
	}
}
