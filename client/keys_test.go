package client_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"
	"go.dedis.ch/kyber/v3/group/edwards25519"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/attestation"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/testnet"
)

// The key lifecycle's proved reads on a real chain: before the genesis
// MasterKey nothing serves (era and key set proved absent); after the
// first gatekeeper announces it, the genesis key set (era 0: the genesis
// gatekeepers, T = 1, the announced point as the only commitment) serves,
// no DKG runs, and KeyStatus reads it all at one height. A malformed
// argument is refused before asking the node.
func TestKeyStatusReads(t *testing.T) {
	gk := crypto.MustKeyPairFromURI("//PhalaTestGatekeeper")
	measurement := [32]byte{7}
	genesis := node.DevGenesisState(measurement[:])
	genesis.Gatekeepers = []crypto.PublicKey{gk.Public()}
	n := testnet.New(t, testnet.Options{Genesis: genesis})
	c := n.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	registerSim(t, ctx, n, gk, measurement) // its messages count only once registered

	st, err := c.KeyStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.HasEra || st.Serving != nil || st.Dkg != nil || st.Election != nil || st.Height < 1 || st.Params != genesis.Params {
		t.Fatalf("before the MasterKey: %+v", st)
	}
	if s, _, err := c.KeySet(ctx, 0); err != nil || s != nil {
		t.Fatalf("key set 0 before the MasterKey: %+v, %v", s, err)
	}

	suite := edwards25519.NewBlakeSHA256Ed25519()
	pt, err := suite.Point().Pick(suite.RandomStream()).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	msg := api.SignMessage(n.ChainID, api.Message{Origin: api.KeyOrigin(api.OriginGatekeeper, gk.Public()), Topic: api.TopicMasterKey, Payload: pt}, gk)
	if _, err := c.NewSigner(crypto.MustKeyPairFromURI("//Dave")).Submit(ctx, &api.PushMessage{Message: msg}); err != nil {
		t.Fatalf("publish the master key: %v", err)
	}
	testnet.WaitFor(t, 30*time.Second, "the serving key era", func() (bool, error) {
		_, ok, _, err := c.ServingKeyEra(ctx)
		return ok, err
	})
	era, ok, h, err := c.ServingKeyEra(ctx)
	if err != nil || !ok || era != 0 || h < 1 {
		t.Fatalf("serving key era: %d %v at %d: %v", era, ok, h, err)
	}
	set, _, err := c.KeySet(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if set == nil || set.Era != 0 || set.T != 1 || !slices.Equal(set.Members, genesis.Gatekeepers) || len(set.Commits) != 1 || set.Public() != [32]byte(pt) {
		t.Fatalf("genesis key set: %+v", set)
	}
	if s, _, err := c.KeySet(ctx, 1); err != nil || s != nil {
		t.Fatalf("key set 1: %+v, %v", s, err)
	}
	if d, _, err := c.Dkg(ctx); err != nil || d != nil {
		t.Fatalf("DKG: %+v, %v", d, err)
	}
	mk, ok, err := c.MasterKey(ctx)
	if err != nil || !ok || mk != set.Public() {
		t.Fatalf("master key %x, %v: %v (key set's %x)", mk, ok, err, set.Public())
	}

	st, err = c.KeyStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.HasEra || st.Era != 0 || st.Serving == nil || st.Serving.Public() != [32]byte(pt) || st.Dkg != nil || st.Election != nil || st.Height < h {
		t.Fatalf("key status: %+v", st)
	}

	if _, err := c.Prove(ctx, api.QueryKeySet, []byte{0, 1}); !errors.Is(err, api.ErrInvalidCall) {
		t.Errorf("a 2-byte era: %v", err)
	}
}

// registerSim registers identity as a worker of n (operated by //Charlie)
// with a sim report of measurement citing a recent block, as a pRuntime
// does.
func registerSim(t *testing.T, ctx context.Context, n *testnet.Network, identity *crypto.KeyPair, measurement [32]byte) {
	t.Helper()
	c := n.Client(0)
	operator := crypto.MustKeyPairFromURI("//Charlie")
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
}
