package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
)

// The contract's workers are asked for a receipt at once: a worker that
// never answers (its host cut off) holds up no other's receipt, a worker
// behind is asked again, and when every worker has dispatched the height
// and holds none the answer is ErrNoReceipt.
func TestReceiptFromWorkers(t *testing.T) {
	contract := crypto.MustKeyPairFromURI("//Contract")
	sender := crypto.MustKeyPairFromURI("//Bob")
	rec := &api.ContractRecord{Identity: contract.Public(), Ecdh: contract.Public(), Status: api.ContractRunning}
	const nonce, height = 7, 5
	receipt := func() []byte {
		ch, err := channel.New(contract, sender.Public(), api.ChannelPurposeReceipt)
		if err != nil {
			t.Fatal(err)
		}
		rc := &api.Receipt{Contract: contract.Public(), From: sender.Public(), Nonce: nonce, Height: height}
		rc.Sealed = ch.Seal((&api.ReceiptBody{Status: api.ReceiptOK, Output: []byte("ok")}).Encode(), rc.Header())
		rc.Signature = contract.Sign(api.ContextReceipt, rc.SignBytes())
		return rc.Encode()
	}()
	release := make(chan struct{})
	defer close(release)
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close()
	// behindThen answers "dispatched height-1" to its first n calls, then
	// the receipt (or, with none, "dispatched height, no receipt").
	behindThen := func(n int32, hold bool) *httptest.Server {
		var calls atomic.Int32
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) <= n {
				w.WriteHeader(http.StatusNotFound)
				w.Write([]byte(`{"error":"no receipt","dispatched":4}`))
				return
			}
			if !hold {
				w.WriteHeader(http.StatusNotFound)
				w.Write([]byte(`{"error":"no receipt","dispatched":5}`))
				return
			}
			w.Write(receipt)
		}))
	}
	slow, none1, none2 := behindThen(3, true), behindThen(1, false), behindThen(0, false)
	defer slow.Close()
	defer none1.Close()
	defer none2.Close()
	worker := func(s *httptest.Server) WorkerEndpointInfo {
		return WorkerEndpointInfo{Key: crypto.MustKeyPairFromURI("//W/" + s.URL).Public(), Endpoint: s.URL}
	}
	tests := []struct {
		name    string
		ws      []WorkerEndpointInfo
		wantErr error // nil: the receipt
		within  time.Duration
	}{
		{name: "one replica cut off, the other behind then holding it", ws: []WorkerEndpointInfo{worker(hanging), worker(slow)}, within: 3 * time.Second},
		{name: "every replica holds none", ws: []WorkerEndpointInfo{worker(none1), worker(none2)}, wantErr: ErrNoReceipt, within: 3 * time.Second},
		{name: "no worker", wantErr: ErrNoWorker, within: time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
			defer cancel()
			began := time.Now()
			r, err := receiptFrom(ctx, tc.ws, sender, rec, nonce, height)
			if took := time.Since(began); took > tc.within {
				t.Errorf("answered after %s, want within %s", took, tc.within)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || r.Status != api.ReceiptOK || string(r.Output) != "ok" || r.Worker != tc.ws[1].Key {
				t.Fatalf("receipt %+v, %v", r, err)
			}
		})
	}
}

// A receipt sealed under the contract's new ECDH key (its key epoch moved
// after the client read the record) opens once the record is read again;
// without a newer record the error says the receipt does not open.
func TestReceiptAfterKeyEpoch(t *testing.T) {
	identity, oldEcdh, newEcdh := crypto.MustKeyPairFromURI("//Contract"), crypto.MustKeyPairFromURI("//Contract/ecdh/0"), crypto.MustKeyPairFromURI("//Contract/ecdh/1")
	sender := crypto.MustKeyPairFromURI("//Bob")
	const nonce, height = 3, 8
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch, err := channel.New(newEcdh, sender.Public(), api.ChannelPurposeReceipt)
		if err != nil {
			t.Error(err)
			return
		}
		rc := &api.Receipt{Contract: identity.Public(), From: sender.Public(), Nonce: nonce, Height: height}
		rc.Sealed = ch.Seal((&api.ReceiptBody{Status: api.ReceiptOK, Output: []byte("done")}).Encode(), rc.Header())
		rc.Signature = identity.Sign(api.ContextReceipt, rc.SignBytes())
		w.Write(rc.Encode())
	}))
	defer srv.Close()
	ws := []WorkerEndpointInfo{{Key: crypto.MustKeyPairFromURI("//W").Public(), Endpoint: srv.URL}}
	workers := func(context.Context, *api.ContractRecord) ([]WorkerEndpointInfo, error) { return ws, nil }
	stale := &api.ContractRecord{Identity: identity.Public(), Ecdh: oldEcdh.Public(), Status: api.ContractRunning}
	current := *stale
	current.Ecdh = newEcdh.Public()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := receiptRereading(ctx, workers, func(context.Context) (*api.ContractRecord, error) { return &current, nil }, sender, stale, nonce, height)
	if err != nil || string(r.Output) != "done" {
		t.Fatalf("receipt %+v, %v", r, err)
	}
	_, err = receiptRereading(ctx, workers, func(context.Context) (*api.ContractRecord, error) { return stale, nil }, sender, stale, nonce, height)
	if !errors.Is(err, errReceiptDoesNotOpen) {
		t.Fatalf("with no newer record: %v, want errReceiptDoesNotOpen", err)
	}
}
