package app

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

const chainID = "phala-unit"

var (
	alice = crypto.MustKeyPairFromURI("//Alice")
	bob   = crypto.MustKeyPairFromURI("//Bob")
	dave  = crypto.MustKeyPairFromURI("//Dave") // unfunded in these tests
	devAt = crypto.MustKeyPairFromURI(api.DevAttestationURI)
)

var measurement = [32]byte{1, 2, 3}

// harness drives the application directly through ABCI, one block at a time.
type harness struct {
	t      testing.TB
	app    *App
	dir    string
	height int64
	now    time.Time
	// seqs: per origin (encoded), the next sequence after the messages
	// signed (by signed) for the block being built.
	seqs map[string]blockSeq
}

// blockSeq is an origin's next sequence after the messages signed while
// height was the last committed block.
type blockSeq struct {
	height int64
	next   uint64
}

func genesis() *api.GenesisState {
	// No heartbeat challenges (the tests that want them set them): a
	// challenge is drawn from block hashes, so it would land in the
	// messages of some blocks and not others.
	p := api.DefaultParams()
	p.HeartbeatsPerEra = 0
	return &api.GenesisState{
		Accounts: []api.GenesisAccount{
			{Address: alice.Public(), Balance: 1000 * api.Unit},
			{Address: bob.Public(), Balance: 1000 * api.Unit},
		},
		Gatekeepers: []crypto.PublicKey{},
		Attestation: api.AttestationSettings{AllowSim: true, DevPublicKey: devAt.Public(), Measurements: []api.HexBytes{measurement[:]}, MaxReportAgeSeconds: 600},
		Params:      p,
	}
}

func newHarness(t testing.TB, g *api.GenesisState) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), now: time.Unix(1_700_000_000, 0)}
	h.open()
	state, _ := json.Marshal(g)
	if _, err := h.app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: chainID, AppStateBytes: state, Time: h.now, InitialHeight: 1}); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) open() {
	a, err := New(h.dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		h.t.Fatal(err)
	}
	h.app = a
	h.t.Cleanup(func() { a.Close() })
}

// block finalizes and commits a block of txs and returns the results.
func (h *harness) block(txs ...[]byte) *abci.ResponseFinalizeBlock {
	h.t.Helper()
	h.height++
	h.now = h.now.Add(time.Second)
	hash := blockHash(h.height)
	res, err := h.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Height: h.height, Time: h.now, Txs: txs, Hash: hash[:]})
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.app.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
		h.t.Fatal(err)
	}
	return res
}

// blockHash is the hash the harness gives the block at height.
func blockHash(height int64) [32]byte {
	return sha256.Sum256(binary.AppendUvarint([]byte("block "), uint64(height)))
}

func (h *harness) check(tx []byte) *abci.ResponseCheckTx {
	res, err := h.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: tx})
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

func (h *harness) account(pk crypto.PublicKey) api.Account {
	res, err := h.app.Query(context.Background(), &abci.RequestQuery{Path: api.QueryAccount, Data: pk[:]})
	if err != nil || res.Code != 0 {
		h.t.Fatalf("query: %v %s", err, res.Log)
	}
	if res.Value == nil {
		return api.Account{}
	}
	a, err := api.DecodeAccount(res.Value)
	if err != nil {
		h.t.Fatal(err)
	}
	return *a
}

func (h *harness) tx(key *crypto.KeyPair, nonce uint64, call api.Call) []byte {
	tx := &api.Tx{ChainID: chainID, Signer: key.Public(), Nonce: nonce, Fee: api.DefaultParams().MinFee(2048), Call: call}
	tx.Signature = key.Sign(api.ContextTx, tx.SignBytes())
	return tx.Encode()
}

func TestTransferApplies(t *testing.T) {
	h := newHarness(t, genesis())
	before := api.Account{Balance: 1000 * api.Unit}
	tx := h.tx(alice, 0, &api.Transfer{To: bob.Public(), Amount: 5 * api.Unit})
	if res := h.check(tx); res.Code != 0 {
		t.Fatalf("CheckTx: %s", res.Log)
	}
	res := h.block(tx)
	if res.TxResults[0].Code != 0 {
		t.Fatalf("deliver: %s", res.TxResults[0].Log)
	}
	fee := api.DefaultParams().MinFee(2048)
	if got := h.account(alice.Public()); got.Balance != before.Balance-5*api.Unit-fee || got.Nonce != 1 {
		t.Fatalf("alice: %+v", got)
	}
	if got := h.account(bob.Public()); got.Balance != 1005*api.Unit {
		t.Fatalf("bob: %+v", got)
	}
	if got := h.account(dave.Public()); got != (api.Account{}) {
		t.Fatalf("dave: %+v", got)
	}
}

// Every refusal has its own code and leaves the state (and the pending
// CheckTx state) unchanged.
func TestCheckTxRejects(t *testing.T) {
	h := newHarness(t, genesis())
	h.block(h.tx(alice, 0, &api.Transfer{To: bob.Public(), Amount: 1}))
	transfer := &api.Transfer{To: bob.Public(), Amount: 1}
	good := h.tx(alice, 1, transfer)

	wrongChain := &api.Tx{ChainID: "other", Signer: alice.Public(), Nonce: 1, Fee: 1 << 30, Call: transfer}
	wrongChain.Signature = alice.Sign(api.ContextTx, wrongChain.SignBytes())
	lowFee := &api.Tx{ChainID: chainID, Signer: alice.Public(), Nonce: 1, Fee: 1, Call: transfer}
	lowFee.Signature = alice.Sign(api.ContextTx, lowFee.SignBytes())
	badSig := append([]byte(nil), good...)
	badSig[len(badSig)-1] ^= 1
	otherCtx := &api.Tx{ChainID: chainID, Signer: alice.Public(), Nonce: 1, Fee: 1 << 30, Call: transfer}
	otherCtx.Signature = alice.Sign(crypto.SubstrateContext, otherCtx.SignBytes())
	unknown := encodeWithKind(t, chainID, alice, 1, 99)

	for _, tc := range []struct {
		name string
		tx   []byte
		code api.Code
	}{
		{"empty", nil, api.CodeMalformed},
		{"garbage", []byte("hello world"), api.CodeUnsupportedVersion},
		{"truncated", good[:len(good)-10], api.CodeMalformed},
		{"trailing byte", append(append([]byte(nil), good...), 0), api.CodeMalformed},
		{"oversized", make([]byte, api.DefaultParams().MaxTxBytes+1), api.CodeTooLarge},
		{"wrong chain", wrongChain.Encode(), api.CodeWrongChain},
		{"bad signature", badSig, api.CodeBadSignature},
		{"signature under another context", otherCtx.Encode(), api.CodeBadSignature},
		{"stale nonce", h.tx(alice, 0, transfer), api.CodeStaleNonce},
		{"future nonce", h.tx(alice, 5, transfer), api.CodeFutureNonce},
		{"fee too low", lowFee.Encode(), api.CodeFeeTooLow},
		{"unfunded signer", h.tx(dave, 0, transfer), api.CodeInsufficientBalance},
		{"amount over balance", h.tx(alice, 1, &api.Transfer{To: bob.Public(), Amount: 2000 * api.Unit}), api.CodeInsufficientBalance},
		{"zero amount", h.tx(alice, 1, &api.Transfer{To: bob.Public(), Amount: 0}), api.CodeInvalidCall},
		{"unknown call", unknown, api.CodeUnknownCall},
		{"message from an unregistered worker", h.tx(alice, 1, &api.PushMessage{Message: api.SignMessage(chainID, api.Message{Origin: api.KeyOrigin(api.OriginWorker, dave.Public()), Topic: "t", Seq: 0}, dave)}), api.CodeUnknownOrigin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.account(alice.Public())
			res := h.check(tc.tx)
			if api.Code(res.Code) != tc.code {
				t.Fatalf("code %d (%s), want %d (%s): %s", res.Code, api.Code(res.Code), tc.code, tc.code, res.Log)
			}
			if res.Log == "" {
				t.Fatal("refusal without a message")
			}
			if after := h.account(alice.Public()); after != before {
				t.Fatalf("state changed: %+v -> %+v", before, after)
			}
		})
	}
	// The pending state was not advanced by any refusal: nonce 1 is still next.
	if res := h.check(good); res.Code != 0 {
		t.Fatalf("good tx after refusals: %s", res.Log)
	}
}

func encodeWithKind(t *testing.T, chain string, key *crypto.KeyPair, nonce uint64, kind uint64) []byte {
	t.Helper()
	tx := &api.Tx{ChainID: chain, Signer: key.Public(), Nonce: nonce, Fee: 1 << 30, Call: &api.Transfer{}}
	b := tx.Encode()
	// The call kind follows the fee; transfer's kind is 1.
	prefix := 1 + 1 + len(chain) + 32 + 1
	feeLen := len(b) - prefix - 1 - 1 - 33 - 64 // kind(1) len(1) body(33) sig(64)
	b[prefix+feeLen] = byte(kind)
	// Re-sign the modified bytes.
	sig := key.Sign(api.ContextTx, b[:len(b)-64])
	copy(b[len(b)-64:], sig[:])
	return b
}

// A transaction included twice in a block (or in two blocks) applies once.
func TestReplayAppliesOnce(t *testing.T) {
	h := newHarness(t, genesis())
	tx := h.tx(alice, 0, &api.Transfer{To: bob.Public(), Amount: api.Unit})
	res := h.block(tx, tx)
	if res.TxResults[0].Code != 0 || api.Code(res.TxResults[1].Code) != api.CodeStaleNonce {
		t.Fatalf("results: %v / %v", res.TxResults[0].Log, res.TxResults[1].Log)
	}
	res = h.block(tx)
	if api.Code(res.TxResults[0].Code) != api.CodeStaleNonce {
		t.Fatalf("replay in a later block: %s", res.TxResults[0].Log)
	}
	if got := h.account(bob.Public()).Balance; got != 1001*api.Unit {
		t.Fatalf("bob has %d", got)
	}
}

// A call that fails in a block still pays its fee and uses its nonce, but
// its own writes are reverted.
func TestFailedCallPaysFee(t *testing.T) {
	h := newHarness(t, genesis())
	h.block()
	before := h.account(alice.Public())
	res := h.block(h.tx(alice, 0, &api.Transfer{To: bob.Public(), Amount: 5000 * api.Unit}))
	if api.Code(res.TxResults[0].Code) != api.CodeInsufficientBalance {
		t.Fatalf("got %s", res.TxResults[0].Log)
	}
	after := h.account(alice.Public())
	if after.Nonce != 1 || after.Balance != before.Balance-api.DefaultParams().MinFee(2048) {
		t.Fatalf("alice %+v", after)
	}
	if h.account(bob.Public()).Balance != 1000*api.Unit {
		t.Fatal("bob changed")
	}
}

func TestRestartKeepsState(t *testing.T) {
	h := newHarness(t, genesis())
	h.block(h.tx(alice, 0, &api.Transfer{To: bob.Public(), Amount: 7}))
	res := h.block(h.tx(alice, 1, &api.PostMessage{Topic: "t", Payload: []byte("x")}))
	info1, _ := h.app.Info(context.Background(), &abci.RequestInfo{})
	h.app.Close()
	h.open()
	info2, _ := h.app.Info(context.Background(), &abci.RequestInfo{})
	if info2.LastBlockHeight != 2 || string(info2.LastBlockAppHash) != string(res.AppHash) || string(info1.LastBlockAppHash) != string(info2.LastBlockAppHash) {
		t.Fatalf("after restart: height %d hash %x, want 2 %x", info2.LastBlockHeight, info2.LastBlockAppHash, res.AppHash)
	}
	if h.account(bob.Public()).Balance != 1000*api.Unit+7 {
		t.Fatal("balance lost")
	}
	// The reopened app keeps executing: nonce 2 is next.
	if r := h.block(h.tx(alice, 2, &api.Transfer{To: bob.Public(), Amount: 1})); r.TxResults[0].Code != 0 {
		t.Fatal(r.TxResults[0].Log)
	}
}

func TestAppHashDeterministic(t *testing.T) {
	var hashes [2][]byte
	for i := range hashes {
		h := newHarness(t, genesis())
		var txs [][]byte
		for n := uint64(0); n < 20; n++ {
			txs = append(txs, h.tx(alice, n, &api.Transfer{To: crypto.MustKeyPairFromURI("//x" + string(rune('a'+n))).Public(), Amount: n + 1}))
		}
		txs = append(txs, h.tx(bob, 0, &api.PostMessage{Topic: "topic", Payload: []byte("p")}))
		hashes[i] = h.block(txs...).AppHash
	}
	if string(hashes[0]) != string(hashes[1]) {
		t.Fatal("same block, different app hashes")
	}
}

func TestQueryErrors(t *testing.T) {
	h := newHarness(t, genesis())
	h.block()
	for _, tc := range []struct {
		req  *abci.RequestQuery
		want error
	}{
		{&abci.RequestQuery{Path: "/nope"}, api.ErrInvalidCall},
		{&abci.RequestQuery{Path: api.QueryAccount, Data: []byte{1, 2}}, api.ErrInvalidCall},
		{&abci.RequestQuery{Path: api.QueryAccount, Data: alice.Public().Bytes(), Height: 99}, api.ErrNotFound},
		{&abci.RequestQuery{Path: api.QueryMessages, Height: 99}, api.ErrNotFound},
		{&abci.RequestQuery{Path: api.QueryNextSeq, Data: []byte{9}}, api.ErrInvalidCall},
	} {
		res, _ := h.app.Query(context.Background(), tc.req)
		if !errors.Is(api.Code(res.Code).Err(), tc.want) {
			t.Errorf("%s: code %d (%s), want %v", tc.req.Path, res.Code, res.Log, tc.want)
		}
	}
}

// TestModuleTableComplete: every call kind and every query path the api
// declares has an owner in the module table.
func TestModuleTableComplete(t *testing.T) {
	x := newMux()
	owned := map[api.CallKind]bool{}
	for _, m := range x.Modules() {
		for k := range m.Calls {
			owned[k] = true
		}
	}
	for k := api.CallKind(1); k.String() != fmt.Sprintf("call#%d", uint16(k)); k++ {
		if !owned[k] {
			t.Errorf("call %s has no module", k)
		}
	}
	for _, k := range []api.CallKind{api.CallStakeBond, api.CallStakeAllocate, api.CallStakeUnbond, api.CallStakeWithdraw, api.CallStakeNominate, api.CallGatekeeperCandidacy, api.CallSubnetCreate, api.CallSubnetAdd, api.CallSubnetRemove, api.CallContractReassign, api.CallArbitrationRequest} {
		if !owned[k] {
			t.Errorf("call %s has no module", k)
		}
	}
	for _, p := range []string{api.QueryStakeLedger, api.QueryStakeNode, api.QueryIssuance, api.QueryAccount, api.QueryWorker, api.QueryGatekeepers, api.QueryMasterKey, api.QueryParams,
		api.QueryAttestation, api.QueryNextSeq, api.QueryContract, api.QueryContractUpload, api.QueryDeployerSeq, api.QueryContractReturn,
		api.QueryGatekeeperEra, api.QueryGatekeeperExposure, api.QueryGatekeeperCandidacy, api.QueryGatekeeperCandidates, api.QuerySubnet, api.QuerySubnetSeq, api.QueryUploadPending, api.QueryCheckpoint, api.QueryArbitration,
		api.QueryMigration, api.QueryLastMigration, api.QueryContractPayout, api.QueryEscrowOwner} {
		if !x.StateQuery(p) {
			t.Errorf("state query %s has no module", p)
		}
	}
	for _, p := range []string{api.QueryMessages, api.QueryWorkers, api.QueryStakeStakers} {
		if x.Querier(p) == nil {
			t.Errorf("query %s has no module", p)
		}
	}
}
