package engine

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/crypto/tmhash"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// A relayer's header that decodes without its header field (a commit
// alone) is refused as bad input, changes nothing and does not panic.
func TestSyncHeadersHeaderless(t *testing.T) {
	pub := cmted25519.GenPrivKey().PubKey()
	dev, _, err := crypto.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	appState, err := json.Marshal(&api.GenesisState{Params: api.DefaultParams(), Attestation: api.AttestationSettings{AllowSim: true, DevPublicKey: dev.Public(), MaxReportAgeSeconds: 3600}})
	if err != nil {
		t.Fatal(err)
	}
	doc := &cmttypes.GenesisDoc{
		ChainID: "phala-syncbad", GenesisTime: time.Unix(1_700_000_000, 0).UTC(), InitialHeight: 1,
		Validators: []cmttypes.GenesisValidator{{PubKey: pub, Power: 10}},
		AppState:   appState,
	}
	dir := t.TempDir()
	e, err := New(Config{DataDir: dir, Genesis: doc, Endpoint: "http://127.0.0.1:1", Platform: sim(t, dir), Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	vals := cmttypes.NewValidatorSet([]*cmttypes.Validator{cmttypes.NewValidator(pub, 10)})
	vp, err := vals.ToProto()
	if err != nil {
		t.Fatal(err)
	}
	vb, err := vp.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	id := cmttypes.BlockID{Hash: tmhash.Sum([]byte("h")), PartSetHeader: cmttypes.PartSetHeader{Total: 1, Hash: tmhash.Sum([]byte("p"))}}
	commit := &cmttypes.Commit{Height: 1, BlockID: id, Signatures: []cmttypes.CommitSig{cmttypes.NewCommitSigAbsent()}}
	shb, err := (&cmtproto.SignedHeader{Commit: commit.ToProto()}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	h, err := e.SyncHeaders(&api.HeaderBatch{Headers: []api.HeaderSync{{SignedHeader: shb, Validators: vb}}})
	if !errors.Is(err, ErrBadInput) || h != 0 {
		t.Fatalf("synced to %d, err %v", h, err)

	}
	if info := e.Info(); info.Synced != 0 {
		t.Fatalf("synced moved: %+v", info)
	}
}
