package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/testnet"
)

// A node that goes away after taking a transaction: Submit reports the
// transaction's hash (its result is unknown), so the user can look for it
// instead of guessing whether to send it again; and the transaction did
// reach the chain under that hash.
func TestSubmitReportsHashWhenTheNodeFails(t *testing.T) {
	net := testnet.New(t, testnet.Options{})
	var dead atomic.Bool
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if dead.Load() {
			http.Error(w, "node gone", http.StatusBadGateway)
			return
		}
		body, _ := io.ReadAll(r.Body)
		resp, err := http.Post(net.RPC(0), "application/json", bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var req struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(body, &req)
		if req.Method == "broadcast_tx_sync" {
			dead.Store(true) // the node fails right after taking it
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	defer proxy.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.DialOptions(ctx, proxy.URL, client.Options{Genesis: net.Genesis()})
	if err != nil {
		t.Fatal(err)
	}
	alice := crypto.MustKeyPairFromURI("//Alice")
	wait, cancelWait := context.WithTimeout(ctx, 3*time.Second)
	defer cancelWait()
	_, err = c.NewSigner(alice).Submit(wait, &api.Transfer{To: crypto.MustKeyPairFromURI("//Bob").Public(), Amount: 1})
	var unknown *client.UnknownOutcomeError
	if !errors.As(err, &unknown) || !strings.Contains(err.Error(), fmt.Sprintf("%X", unknown.Hash)) || !strings.Contains(err.Error(), "phala tx") {
		t.Fatalf("submit through a failing node: %v", err)
	}
	// The hash it names is the transaction the chain committed.
	direct := net.Client(0)
	testnet.WaitFor(t, 30*time.Second, "the transaction on chain under the reported hash", func() (bool, error) {
		res, err := direct.WaitTx(ctx, unknown.Hash)
		return err == nil && res.Code == api.CodeOK, nil
	})
}

// Signers of one account used at once: separate ones (two CLIs, or a
// CLI beside a pherry sharing its operator key), where the mempool
// refuses the second use of a nonce and Submit signs again with the next
// one instead of failing; and one Signer shared by goroutines, whose
// transactions must reach the mempool in nonce order (it refuses a nonce
// ahead of the next). Every transfer lands exactly once.
func TestSubmitConcurrentSigners(t *testing.T) {
	net := testnet.New(t, testnet.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := net.Client(0)
	alice, bob := crypto.MustKeyPairFromURI("//Alice"), crypto.MustKeyPairFromURI("//Bob").Public()
	shared := c.NewSigner(alice)
	for _, tc := range []struct {
		name   string
		signer func() *client.Signer
	}{
		{"separate signers", func() *client.Signer { return c.NewSigner(alice) }},
		{"one shared signer", func() *client.Signer { return shared }},
	} {
		before, err := c.Account(ctx, bob)
		if err != nil {
			t.Fatal(err)
		}
		const n = 6
		errs := make(chan error, n)
		for i := range n {
			go func() {
				_, err := tc.signer().Submit(ctx, &api.Transfer{To: bob, Amount: uint64(i + 1)})
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
		after, err := c.Account(ctx, bob)
		if err != nil {
			t.Fatal(err)
		}
		if got := after.Balance - before.Balance; got != n*(n+1)/2 {
			t.Fatalf("%s: bob received %d, want %d", tc.name, got, n*(n+1)/2)
		}
	}
}
