package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
)

// TestSessionEndpointsRefuseWithReason: the query session endpoints on the
// public API refuse malformed bodies (400), opens this worker cannot take
// and queries of sessions it does not keep (422, with the reason), and
// the client SDK reports the latter as ErrSessionGone.
func TestSessionEndpointsRefuseWithReason(t *testing.T) {
	_, public, e := newServers(t, ControlOptions{})
	bob := crypto.MustKeyPairFromURI("//Bob")
	contractKey := crypto.MustKeyPairFromURI("//Contract")
	contract := contractKey.Public()
	open := func(worker crypto.PublicKey) []byte {
		p, err := client.NewQuerySessionOpen(bob, contract, worker, time.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return p.Open.Encode()
	}
	for _, tc := range []struct {
		name, path string
		body       []byte
		status     int
		reason     string
	}{
		{"garbage open", "/session/open", []byte{0xff}, 400, "malformed"},
		{"open with a trailing byte", "/session/open", append(open(e.Identity()), 0), 400, "malformed"},
		{"open for another worker", "/session/open", open(bob.Public()), 422, "addressed to worker"},
		{"open for a contract it does not run", "/session/open", open(e.Identity()), 422, "does not run contract"},
		{"garbage query", "/session/query", []byte{1, 2}, 400, "malformed"},
		{"query of an unknown session", "/session/query", (&api.SessionQuery{Seq: 1, Ciphertext: make([]byte, 20)}).Encode(), 422, "unknown query session"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := http.Post(public.URL+tc.path, "application/octet-stream", bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status || !strings.Contains(string(b), tc.reason) {
				t.Fatalf("%d %s, want %d with %q", res.StatusCode, b, tc.status, tc.reason)
			}
		})
	}
	// A session this worker never opened (accepted by the contract's key
	// elsewhere).
	p, err := client.NewQuerySessionOpen(bob, contract, e.Identity(), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	acc := &api.QuerySessionAccept{Open: p.Open.Hash(), ID: [api.SessionIDSize]byte{7}, Ephemeral: crypto.MustKeyPairFromURI("//Eph").Public()}
	acc.Signature = contractKey.Sign(api.ContextQuerySessionAccept, acc.SignBytes())
	s, err := p.Accept(acc)
	if err != nil {
		t.Fatal(err)
	}
	s.Endpoint = public.URL
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := s.Query(ctx, []byte("balance")); !errors.Is(err, client.ErrSessionGone) {
		t.Fatalf("query of an unknown session: %v", err)
	}
}
