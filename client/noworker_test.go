package client

import (
	"context"
	"errors"
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
			!strings.Contains(err.Error(), "a gatekeeper assigns a replacement") || !strings.Contains(err.Error(), "phala contract show "+rec.Identity.Hex()) {
			t.Errorf("no worker: %v", err)
		}
	}
}

// A worker the record names that says it does not run the contract gets
// the recovery hint; other errors are left alone.
func TestExplainWorkerError(t *testing.T) {
	base := errors.New("400 Bad Request: bad input: this worker does not run contract 0x12")
	err := explainWorkerError(base)
	if !errors.Is(err, base) || !strings.Contains(err.Error(), "recovering the contract from its on-chain checkpoint") || !strings.Contains(err.Error(), "retry shortly") {
		t.Errorf("hint: %v", err)
	}
	other := errors.New("connection refused")
	if explainWorkerError(other) != other || explainWorkerError(nil) != nil {
		t.Error("an unrelated error was changed")
	}
}
