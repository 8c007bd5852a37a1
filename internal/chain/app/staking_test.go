package app

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/contracts"
)

// query runs a query at the last height and fails the test on an error code.
func (h *harness) query(path string, data []byte, prove bool) *abci.ResponseQuery {
	h.t.Helper()
	res, err := h.app.Query(context.Background(), &abci.RequestQuery{Path: path, Data: data, Prove: prove})
	if err != nil || res.Code != 0 {
		h.t.Fatalf("query %s: %v %s", path, err, res.Log)
	}
	return res
}

// TestStakingThroughTheApp: bond and allocate to a registered worker with
// transactions; the ledger and the node aggregate are proved state, the
// staker listing names the stakers, the node's total goes to pRuntimes,
// and fees burn the issuance.
func TestStakingThroughTheApp(t *testing.T) {
	h := newHarness(t, genesis())
	h.block()
	if iss, err := api.DecodeIssuance(h.query(api.QueryIssuance, nil, false).Value); err != nil || iss != 2000*api.Unit {
		t.Fatalf("genesis issuance %d %v", iss, err)
	}
	w := newWorker(t)
	w.info = h.cite(w.info)
	node := w.identity.Public()
	res := h.block(h.tx(bob, 0, h.register(w.info)),
		h.tx(alice, 0, &api.StakeBond{Amount: 300 * api.Unit}),
		h.tx(alice, 1, &api.StakeAllocate{Node: node, Amount: 200 * api.Unit}),
		h.tx(alice, 2, &api.StakeAllocate{Node: dave.Public(), Amount: 1}),          // unknown node
		h.tx(alice, 3, &api.StakeUnbond{Node: node, Amount: 201 * api.Unit}),        // more than allocated
		h.tx(alice, 4, &api.StakeNominate{Targets: []crypto.PublicKey{node, node}}), // repeated target
		h.tx(bob, 1, &api.StakeBond{Amount: 50 * api.Unit}),
		h.tx(bob, 2, &api.StakeAllocate{Node: node, Amount: 50 * api.Unit}),
	)
	wantCodes := []api.Code{api.CodeOK, api.CodeOK, api.CodeOK, api.CodeInvalidCall, api.CodeInsufficientBalance, api.CodeInvalidCall, api.CodeOK, api.CodeOK}
	for i, r := range res.TxResults {
		if api.Code(r.Code) != wantCodes[i] {
			t.Fatalf("tx %d: code %s (%s), want %s", i, api.Code(r.Code), r.Log, wantCodes[i])
		}
	}
	lres := h.query(api.QueryStakeLedger, alice.Public().Bytes(), true)
	l, err := api.DecodeStakeLedger(lres.Value)
	if err != nil || l.Bonded != 100*api.Unit || l.Allocated(node) != 200*api.Unit {
		t.Fatalf("alice's ledger %+v %v", l, err)
	}
	if lres.ProofOps == nil || len(lres.ProofOps.Ops) != 2 {
		t.Fatal("ledger query without proof")
	}
	n, err := api.DecodeNodeStake(h.query(api.QueryStakeNode, node[:], true).Value)
	if err != nil || *n != (api.NodeStake{Total: 250 * api.Unit, Stakers: 2}) {
		t.Fatalf("node stake %+v %v", n, err)
	}
	list, err := api.DecodeStakerList(h.query(api.QueryStakeStakers, node[:], false).Value)
	if err != nil || len(list) != 2 {
		t.Fatalf("stakers %+v %v", list, err)
	}
	for _, s := range list {
		if want := map[crypto.PublicKey]uint64{alice.Public(): 200 * api.Unit, bob.Public(): 50 * api.Unit}[s.Account]; s.Amount != want {
			t.Fatalf("staker %s: %d, want %d", s.Account, s.Amount, want)
		}
	}
	// The node's total after each allocation went into the queue.
	var totals []uint64
	for _, m := range h.messages(h.height).Messages {
		if m.Topic == api.TopicNodeStake {
			u, err := api.DecodeNodeStakeUpdate(m.Payload)
			if err != nil || u.Node != node || m.Origin != api.ModuleOrigin("staking") {
				t.Fatalf("node stake message %+v %v", u, err)
			}
			totals = append(totals, u.Total)
		}
	}
	if len(totals) != 2 || totals[0] != 200*api.Unit || totals[1] != 250*api.Unit {
		t.Fatalf("node stake messages %v", totals)
	}
	// Fees burned: balances + stake = issuance.
	iss, _ := api.DecodeIssuance(h.query(api.QueryIssuance, nil, true).Value)
	fees := uint64(len(res.TxResults)) * api.DefaultParams().MinFee(2048)
	sum := h.account(alice.Public()).Balance + h.account(bob.Public()).Balance + 300*api.Unit + 50*api.Unit
	if iss != 2000*api.Unit-fees || sum != iss {
		t.Fatalf("issuance %d, want %d; balances + stake %d", iss, 2000*api.Unit-fees, sum)
	}
}

// The contracts module ignores a grant (the key set's completed round and
// the worker's report) naming a worker below min_worker_stake; once the
// worker is staked, the same provisioning deploys.
func TestGrantNeedsWorkerStake(t *testing.T) {
	gk, w := newWorker(t), newWorker(t)
	g := genesis()
	g.Gatekeepers = []crypto.PublicKey{gk.identity.Public()}
	g.Params.MinWorkerStake = 100 * api.Unit
	h := newHarness(t, g)
	h.block()
	code := []byte("\x00asm\x01\x00\x00\x00")
	res := h.block(h.tx(bob, 0, h.register(h.cite(gk.info))), h.tx(bob, 1, h.register(h.cite(w.info))),
		h.tx(alice, 0, &api.UploadContract{Code: gzipped(t, code), Replicas: 1}))
	for i, r := range res.TxResults {
		if r.Code != 0 {
			t.Fatalf("tx %d: %s", i, r.Log)
		}
	}
	hash, err := contracts.CodeHash(gzipped(t, code))
	if err != nil || hash != sha256.Sum256(code) {
		t.Fatalf("code hash %x %v", hash, err)
	}
	upload := api.UploadID(alice.Public(), hash, 0)
	contract, _, _ := crypto.GenerateKeyPair()
	h.announceMasterKey(gk)
	grant := func() *abci.ExecTxResult {
		return h.provision(gk, upload, contract.Public(), contract.Public(), w)
	}
	deployed := func() bool {
		_, ok := h.deployedAs(upload)
		return ok
	}
	r := grant()
	if deployed() {
		t.Fatalf("grant to an unstaked worker deployed: %v", r.Events)
	}
	ignored := false
	for _, ev := range r.Events {
		for _, a := range ev.Attributes {
			ignored = ignored || (ev.Type == "contract_grant_ignored" && a.Key == "reason" && strings.Contains(a.Value, "below min_worker_stake"))
		}
	}
	if !ignored {
		t.Fatalf("no contract_grant_ignored event naming the stake: %v", r.Events)
	}
	res = h.block(h.tx(bob, h.nonce(bob), &api.StakeBond{Amount: 100 * api.Unit}), h.tx(bob, h.nonce(bob)+1, &api.StakeAllocate{Node: w.identity.Public(), Amount: 100 * api.Unit}))
	for i, r := range res.TxResults {
		if r.Code != 0 {
			t.Fatalf("stake tx %d: %s", i, r.Log)
		}
	}
	if r := grant(); !deployed() {
		t.Fatalf("grant to a staked worker not deployed: %v", r.Events)
	}
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}
