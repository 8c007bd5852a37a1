package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
)

// TestQueryFromWorkers: a query goes to the contract's next worker when
// one cannot be reached, answers what does not open (a lying host), or
// has not answered within the hedge delay; the contract's own answer,
// output or refusal, ends it without asking another worker.
func TestQueryFromWorkers(t *testing.T) {
	contract := crypto.MustKeyPairFromURI("//Contract")
	sender := crypto.MustKeyPairFromURI("//Bob")
	rec := &api.ContractRecord{Identity: contract.Public(), Ecdh: contract.Public(), Status: api.ContractRunning}
	// answering is a worker that answers as the contract: status, then
	// "<its name>:<the query's input>".
	answering := func(name string, status byte, calls *atomic.Int32) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			b, _ := io.ReadAll(r.Body)
			q, err := api.DecodeContractQuery(b)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			ch, err := channel.New(contract, q.From, api.ChannelPurposeQuery)
			if err != nil {
				t.Error(err)
				return
			}
			in, err := ch.Open(q.Ciphertext, q.Header())
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			resp := &api.ContractQueryResponse{Query: q.Hash(), Height: 9}
			resp.Ciphertext = ch.Seal(api.Pad(append([]byte{status}, name+":"+string(in)...)), resp.AD())
			resp.Signature = contract.Sign(api.ContextQueryResponse, resp.SignBytes())
			w.Write(resp.Encode())
		}))
	}
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close() // after release is closed (defers run last first)
	defer close(release)
	// lying answers a response signed by someone else.
	lying := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		q, err := api.DecodeContractQuery(b)
		if err != nil {
			return
		}
		resp := &api.ContractQueryResponse{Query: q.Hash(), Height: 9, Ciphertext: make([]byte, 81)}
		resp.Signature = sender.Sign(api.ContextQueryResponse, resp.SignBytes())
		w.Write(resp.Encode())
	}))
	defer lying.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // its port refuses connections
	var okCalls, refusingCalls, lateCalls atomic.Int32
	ok, refusing, late := answering("ok", 0, &okCalls), answering("refusing", 1, &refusingCalls), answering("late", 0, &lateCalls)
	defer ok.Close()
	defer refusing.Close()
	defer late.Close()
	worker := func(s *httptest.Server) WorkerEndpointInfo {
		return WorkerEndpointInfo{Key: crypto.MustKeyPairFromURI("//W/" + s.URL).Public(), Endpoint: s.URL}
	}
	// A cut-off replica costs the hedge delay; any other failure moves on
	// at once, which a hedge far longer than the bound shows.
	const short, long, bound = 300 * time.Millisecond, time.Minute, 5 * time.Second
	tests := []struct {
		name    string
		ws      []WorkerEndpointInfo
		hedge   time.Duration
		want    string // the output; "" with wantErr
		wantErr error
	}{
		{name: "first replica cut off", ws: []WorkerEndpointInfo{worker(hanging), worker(ok)}, hedge: short, want: "ok:balance"},
		{name: "first replica's host lies", ws: []WorkerEndpointInfo{worker(lying), worker(ok)}, hedge: long, want: "ok:balance"},
		{name: "first replica down", ws: []WorkerEndpointInfo{worker(down), worker(ok)}, hedge: long, want: "ok:balance"},
		{name: "the contract refuses", ws: []WorkerEndpointInfo{worker(refusing), worker(late)}, hedge: long, wantErr: ErrQueryFailed},
		{name: "every replica fails", ws: []WorkerEndpointInfo{worker(lying), worker(down)}, hedge: long, wantErr: errors.New("connection refused")},
		{name: "no worker", hedge: long, wantErr: ErrNoWorker},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			out, h, err := queryFrom(ctx, tc.ws, sender, rec, []byte("balance"), tc.hedge)
			took := time.Since(start)
			switch {
			case tc.wantErr == nil && (err != nil || string(out) != tc.want || h != 9):
				t.Fatalf("got %q at %d, %v; want %q at 9", out, h, err, tc.want)
			case tc.wantErr != nil && err == nil:
				t.Fatalf("got %q, want an error %v", out, tc.wantErr)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr) && !strings.Contains(err.Error(), tc.wantErr.Error()):
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if took > bound {
				t.Errorf("took %v, want within %v", took, bound)
			}
		})
	}
	if n := lateCalls.Load(); n != 0 {
		t.Errorf("the worker after a refusal was asked %d times", n)
	}
	if refusingCalls.Load() != 1 || okCalls.Load() != 3 {
		t.Errorf("calls: refusing %d, ok %d; want 1 and 3", refusingCalls.Load(), okCalls.Load())
	}
}
