package client

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// A deployed contract whose record names no worker (all removed) is not
// "not deployed": queries and receipts say it has no worker right now
// and what happens next, without asking the node anything.
func TestNoWorkerError(t *testing.T) {
	rec := &api.ContractRecord{Identity: crypto.MustKeyPairFromURI("//C").Public(), Status: api.ContractRunning}
	key := crypto.MustKeyPairFromURI("//Alice")
	var c Client
	_, _, qerr := c.QueryContract(context.Background(), key, rec, []byte("q"))
	_, rerr := c.Receipt(context.Background(), key, rec, 1, 1)
	for _, err := range []error{qerr, rerr} {
		if !errors.Is(err, ErrNoWorker) || errors.Is(err, ErrNotDeployed) ||
			!strings.Contains(err.Error(), "members of its key era 0 assign a replacement") || !strings.Contains(err.Error(), "stranded") || !strings.Contains(err.Error(), "phala contract show "+rec.Identity.Hex()) {
			t.Errorf("no worker: %v", err)
		}
	}
}

// A worker the record names that says it does not run the contract gets
// the recovery hint; other errors are left alone.
func TestExplainWorkerError(t *testing.T) {
	base := errors.New("400 Bad Request: bad input: this worker does not run contract 0x12")
	err := explainWorkerError(base)
	if !errors.Is(err, base) || !strings.Contains(err.Error(), "does not run the contract") || !strings.Contains(err.Error(), "phala contract reassign") {
		t.Errorf("hint: %v", err)
	}
	// A worker that does not answer: a real refused connection.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, derr := net.Dial("tcp", addr)
	if derr == nil {
		t.Skip("the closed port answered")
	}
	if err := explainWorkerError(derr); !errors.Is(err, derr) || !strings.Contains(err.Error(), "does not answer") || !strings.Contains(err.Error(), "--on-chain") {
		t.Errorf("down hint: %v", err)
	}
	other := errors.New("400 Bad Request: the query expired")
	if explainWorkerError(other) != other || explainWorkerError(nil) != nil {
		t.Error("an unrelated error was changed")
	}
}
