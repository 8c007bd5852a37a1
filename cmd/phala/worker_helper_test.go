package main

import (
	"context"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/attestation"
	"github.com/phalago/phala/internal/testnet"
)

// registerSimWorker registers identity as a worker of n, operated (and
// paid for) by operator, with a sim report of measurement citing a recent
// block, as a pRuntime does; it returns the registered WorkerInfo.
func registerSimWorker(t *testing.T, ctx context.Context, n *testnet.Network, operator, identity *crypto.KeyPair, measurement [32]byte) api.WorkerInfo {
	t.Helper()
	c := n.Client(0)
	ecdh, _, _ := crypto.GenerateKeyPair()
	var recent *cmttypes.SignedHeader
	testnet.WaitFor(t, 30*time.Second, "a committed block to cite", func() (bool, error) {
		h, err := c.Height(ctx)
		if err != nil || h < 2 {
			return false, err
		}
		recent, err = c.SignedHeader(ctx, h-1)
		return err == nil, err
	})
	info := api.WorkerInfo{ChainID: n.ChainID, IdentityKey: identity.Public(), EcdhKey: ecdh.Public(), Endpoint: "http://127.0.0.1:8000", Operator: operator.Public(),
		BlockHeight: recent.Height, BlockHash: [api.BlockHashSize]byte(recent.Hash())}
	report := attestation.SignSimQuote(crypto.MustKeyPairFromURI(api.DevAttestationURI), measurement, info.ReportData(), time.Now())
	if _, err := c.NewSigner(operator).Submit(ctx, &api.RegisterWorker{Info: info, Report: *report}); err != nil {
		t.Fatalf("register %s: %v", identity.Public().Short(), err)
	}
	return info
}
