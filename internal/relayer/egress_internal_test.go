package relayer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/testnet"
)

// A submitter whose parameters are older than the chain's fees (a
// governance motion raised them) reads them again when the mempool refuses
// its fee as too low, and its transaction goes through; without a way to
// read them it stays refused.
func TestSubmitterFollowsFeeChange(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node")
	}
	net := testnet.New(t, testnet.Options{TimeoutCommit: 5 * time.Millisecond})
	c := net.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stale := c.Params()
	stale.FeeBase, stale.FeePerByte = 0, 0 // what it read before the fees went up
	bob := crypto.MustKeyPairFromURI("//Bob")
	call := &api.Transfer{To: crypto.MustKeyPairFromURI("//Dave").Public(), Amount: 1}

	blind := &submitter{rpc: c.RPC(), chainID: c.ChainID(), key: bob, params: stale, paramsAt: time.Now()}
	var refused *api.TxError
	if _, err := blind.broadcast(ctx, call); !errors.As(err, &refused) || refused.Code != api.CodeFeeTooLow {
		t.Fatalf("with stale fees and no way to read them: %v, want a fee-too-low refusal", err)
	}
	s := &submitter{rpc: c.RPC(), chainID: c.ChainID(), key: bob, params: stale, paramsAt: time.Now(), readParams: c.ReadParams}
	if _, err := s.broadcast(ctx, call); err != nil {
		t.Fatalf("after reading the fees again: %v", err)
	}
	if got := s.currentParams(); got.FeeBase != c.Params().FeeBase || got.FeeBase == 0 {
		t.Fatalf("fee base %d kept, the chain's is %d", got.FeeBase, c.Params().FeeBase)
	}
	testnet.WaitFor(t, 30*time.Second, "the transfer committed", func() (bool, error) {
		a, err := c.Account(ctx, bob.Public())
		return err == nil && a.Nonce == 1, err
	})
}
