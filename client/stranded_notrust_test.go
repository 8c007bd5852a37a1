package client

import (
	"context"
	"testing"

	"github.com/phalago/phala/api"
)

// Signer.Command reads, proved, whether a worker-less contract's key era
// is retired (checkNotDead → Stranded → ProveRecent). A client without a
// trust root (client.Dial, the SDK's plain entry point; loadgen and pherry
// use it) cannot make proved reads: it skips the check, so a command to a
// contract that has no worker at the moment (between a removal and its
// replacement: the case where "commands wait in the chain") is sent, not
// refused with ErrNoTrustRoot.
func TestCommandToWorkerlessContractWithoutTrustRoot(t *testing.T) {
	c := &Client{} // no verifier: as client.Dial makes it
	rec := &api.ContractRecord{Status: api.ContractRunning, KeyEra: 1}
	if err := c.checkNotDead(context.Background(), rec); err != nil {
		t.Fatalf("a command to a worker-less contract (not stranded) refused by a client without a trust root: %v", err)
	}
}
