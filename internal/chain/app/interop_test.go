package app

// Interoperability through the app (docs/interop.md): deposits into a
// contract's escrow account, payouts out of it, contract → contract calls
// checked, forged contract messages refused. The contracts are deployed
// through the real grant path (the genesis gatekeeper's partials and the
// worker's key report) and driven by pushing their messages directly.

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/contracts"
)

// interopFixture: a gatekeeper and one worker running four contracts of
// Alice's: a and b running, failed (its start failed) and starting (no
// start report yet).
type interopFixture struct {
	*harness
	gk, w                     *worker
	a, b, failed, starting    *crypto.KeyPair
	fee                       uint64 // every harness transaction's fee
	escrowA, escrowB, escrowF crypto.PublicKey
	escrowS                   crypto.PublicKey
}

func newInteropFixture(t *testing.T) *interopFixture {
	f := &interopFixture{gk: newWorker(t), w: newWorker(t), fee: api.DefaultParams().MinFee(2048),
		a: crypto.MustKeyPairFromURI("//ContractA"), b: crypto.MustKeyPairFromURI("//ContractB"),
		failed: crypto.MustKeyPairFromURI("//ContractFailed"), starting: crypto.MustKeyPairFromURI("//ContractStarting")}
	g := genesis()
	g.Gatekeepers = []crypto.PublicKey{f.gk.identity.Public()}
	g.Params.MinWorkerStake = 0
	f.harness = newHarness(t, g)
	f.block()
	code := gzipped(t, []byte("\x00asm\x01\x00\x00\x00"))
	cs := []*crypto.KeyPair{f.a, f.b, f.failed, f.starting}
	txs := [][]byte{f.tx(bob, 0, f.register(f.cite(f.gk.info))), f.tx(bob, 1, f.register(f.cite(f.w.info)))}
	for i := range cs {
		txs = append(txs, f.tx(alice, uint64(i), &api.UploadContract{Code: code}))
	}
	f.mustOK(f.block(txs...))
	hash, err := contracts.CodeHash(code)
	if err != nil {
		t.Fatal(err)
	}
	f.announceMasterKey(f.gk)
	for i, c := range cs {
		f.provision(f.gk, api.UploadID(alice.Public(), hash, uint64(i)), c.Public(), c.Public(), f.w)
		if rec := f.contractRecord(c.Public()); rec == nil {
			t.Fatalf("contract %d not deployed", i)
		}
	}
	f.pushed(f.a, api.OriginContract, api.TopicContractStatus, (&api.ContractStatusReport{Status: api.ContractRunning}).Encode())
	f.pushed(f.b, api.OriginContract, api.TopicContractStatus, (&api.ContractStatusReport{Status: api.ContractRunning}).Encode())
	f.pushed(f.failed, api.OriginContract, api.TopicContractStatus, (&api.ContractStatusReport{Status: api.ContractFailed, Reason: "init trapped"}).Encode())
	f.escrowA, f.escrowB = api.EscrowAccount(f.a.Public()), api.EscrowAccount(f.b.Public())
	f.escrowF, f.escrowS = api.EscrowAccount(f.failed.Public()), api.EscrowAccount(f.starting.Public())
	return f
}

func (f *interopFixture) mustOK(res *abci.ResponseFinalizeBlock) *abci.ResponseFinalizeBlock {
	f.t.Helper()
	for i, r := range res.TxResults {
		if r.Code != 0 {
			f.t.Fatalf("tx %d: %s", i, r.Log)
		}
	}
	return res
}

func (f *interopFixture) balance(pk crypto.PublicKey) uint64 { return f.account(pk).Balance }

// deposits are the api.Deposit messages of the last block.
func (f *interopFixture) deposits() []*api.Deposit {
	f.t.Helper()
	var out []*api.Deposit
	for _, p := range f.moduleMessages(contracts.Module, api.TopicContractDeposit) {
		d, err := api.DecodeDeposit(p)
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// payoutResults are the api.PayoutResult messages of the last block.
func (f *interopFixture) payoutResults() []*api.PayoutResult {
	f.t.Helper()
	var out []*api.PayoutResult
	for _, p := range f.moduleMessages(contracts.Module, api.TopicPayoutResult) {
		r, err := api.DecodePayoutResult(p)
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// payout pushes c's payout request in a block of its own and returns the
// one result the chain sent back.
func (f *interopFixture) payout(c *crypto.KeyPair, id uint64, to crypto.PublicKey, amount uint64) *api.PayoutResult {
	f.t.Helper()
	f.pushed(c, api.OriginContract, api.TopicPayout, (&api.PayoutRequest{ID: id, To: to, Amount: amount}).Encode())
	rs := f.payoutResults()
	if len(rs) != 1 || rs[0].Contract != c.Public() || rs[0].ID != id || rs[0].Height != f.height {
		f.t.Fatalf("payout results of block %d: %+v", f.height, rs)
	}
	return rs[0]
}

// stored is the result the chain keeps for c's payout id (proved), nil if
// none.
func (f *interopFixture) stored(c *crypto.KeyPair, id uint64) *api.PayoutResult {
	f.t.Helper()
	data := append(c.Public().Bytes(), 0, 0, 0, 0, 0, 0, 0, 0)
	for i := 0; i < 8; i++ {
		data[32+7-i] = byte(id >> (8 * i))
	}
	res := f.query(api.QueryContractPayout, data, true)
	if res.Value == nil {
		return nil
	}
	if res.ProofOps == nil {
		f.t.Fatal("payout result without proof")
	}
	r, err := api.DecodePayoutResult(res.Value)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// A transfer to a running contract's escrow account moves the PHA and
// reaches the contract as a Deposit in the same block (with an event); a
// transfer to any other account in that block is no deposit. A transfer to
// the escrow of a failed contract, or of one not running yet, is refused:
// the sender pays the fee, nothing moves, no deposit.
func TestEscrowDeposits(t *testing.T) {
	f := newInteropFixture(t)
	// The escrow account names its contract (proved); another account
	// names none.
	if res := f.query(api.QueryEscrowOwner, f.escrowA[:], true); !bytes.Equal(res.Value, f.a.Public().Bytes()) || res.ProofOps == nil {
		t.Fatalf("escrow owner of escrowA: %x", res.Value)
	}
	if res := f.query(api.QueryEscrowOwner, dave.Public().Bytes(), true); res.Value != nil {
		t.Fatalf("escrow owner of dave's account: %x", res.Value)
	}
	bobBefore, daveBefore := f.balance(bob.Public()), f.balance(dave.Public())
	res := f.mustOK(f.block(f.tx(bob, f.nonce(bob), &api.Transfer{To: f.escrowA, Amount: 10 * api.Unit}),
		f.tx(bob, f.nonce(bob)+1, &api.Transfer{To: dave.Public(), Amount: 3 * api.Unit})))
	if got := f.balance(f.escrowA); got != 10*api.Unit {
		t.Fatalf("escrow holds %d", got)
	}
	if got := f.balance(bob.Public()); got != bobBefore-13*api.Unit-2*f.fee {
		t.Fatalf("bob has %d", got)
	}
	if got := f.balance(dave.Public()); got != daveBefore+3*api.Unit {
		t.Fatalf("dave has %d", got)
	}
	ds := f.deposits()
	if len(ds) != 1 || *ds[0] != (api.Deposit{Contract: f.a.Public(), From: bob.Public(), Amount: 10 * api.Unit}) {
		t.Fatalf("deposits %+v", ds)
	}
	if event(res.TxResults[0], "contract_deposit", "contract") != f.a.Public().Hex() || event(res.TxResults[1], "contract_deposit", "contract") != "" {
		t.Fatalf("deposit events: %v / %v", res.TxResults[0].Events, res.TxResults[1].Events)
	}

	for _, tc := range []struct {
		name   string
		escrow crypto.PublicKey
		log    string
	}{
		{"failed", f.escrowF, "failed: its escrow takes no deposit"},
		{"starting", f.escrowS, "is not running yet"},
	} {
		before := f.balance(bob.Public())
		tx := f.tx(bob, f.nonce(bob), &api.Transfer{To: tc.escrow, Amount: 5 * api.Unit})
		if c := f.check(tx); c.Code != uint32(api.CodeInvalidCall) {
			t.Fatalf("%s: CheckTx code %d %s", tc.name, c.Code, c.Log)
		}
		r := f.block(tx).TxResults[0]
		if r.Code != uint32(api.CodeInvalidCall) || !strings.Contains(r.Log, tc.log) {
			t.Fatalf("%s: code %d %s", tc.name, r.Code, r.Log)
		}
		if f.balance(tc.escrow) != 0 || f.balance(bob.Public()) != before-f.fee || len(f.deposits()) != 0 {
			t.Fatalf("%s: something moved: escrow %d, bob %d→%d, deposits %v", tc.name, f.balance(tc.escrow), before, f.balance(bob.Public()), f.deposits())
		}
	}
}

// A payout within the escrow's balance is paid once: the PHA moves, the
// result is kept (proved query) and sent back to the contract. The same
// signed message pushed again is refused by the queue (by sequence); a new
// message with the same id is refused (answered, nothing recorded, nothing
// paid). A payout beyond the balance, to an invalid account, of zero, to
// a contract's escrow account (its own or another's) is refused with the
// reason recorded and nothing moves.
func TestEscrowPayouts(t *testing.T) {
	f := newInteropFixture(t)
	f.mustOK(f.block(f.tx(bob, f.nonce(bob), &api.Transfer{To: f.escrowA, Amount: 10 * api.Unit})))
	daveBefore := f.balance(dave.Public())

	// Paid once.
	msg := f.signed(f.a, api.OriginContract, api.TopicPayout, (&api.PayoutRequest{ID: 1, To: dave.Public(), Amount: 4 * api.Unit}).Encode())
	r := f.mustOK(f.block(f.tx(alice, f.nonce(alice), msg))).TxResults[0]
	paidAt := f.height
	rs := f.payoutResults()
	want := api.PayoutResult{Contract: f.a.Public(), ID: 1, To: dave.Public(), Amount: 4 * api.Unit, Paid: true, Height: paidAt}
	if len(rs) != 1 || *rs[0] != want {
		t.Fatalf("results %+v", rs)
	}
	if s := f.stored(f.a, 1); s == nil || *s != want {
		t.Fatalf("stored %+v", s)
	}
	if event(r, "contract_payout", "paid") != "true" {
		t.Fatalf("events %v", r.Events)
	}
	if f.balance(dave.Public()) != daveBefore+4*api.Unit || f.balance(f.escrowA) != 6*api.Unit {
		t.Fatalf("dave %d, escrow %d", f.balance(dave.Public()), f.balance(f.escrowA))
	}

	// The same message again (another replica's push): refused by the queue.
	r = f.block(f.tx(alice, f.nonce(alice), msg)).TxResults[0]
	if r.Code != uint32(api.CodeAlreadyAccepted) || len(f.payoutResults()) != 0 {
		t.Fatalf("second push: code %d %s", r.Code, r.Log)
	}
	// A new message with the same id: answered refused, nothing paid, the
	// first result kept.
	dup := f.payout(f.a, 1, dave.Public(), 1*api.Unit)
	if dup.Paid || dup.Reason != "payout id 1 was used at height "+strconv.FormatInt(paidAt, 10) {
		t.Fatalf("duplicate id: %+v", dup)
	}
	if s := f.stored(f.a, 1); s == nil || *s != want {
		t.Fatalf("stored after the duplicate %+v", s)
	}
	if f.balance(dave.Public()) != daveBefore+4*api.Unit || f.balance(f.escrowA) != 6*api.Unit {
		t.Fatalf("the duplicate moved PHA: dave %d, escrow %d", f.balance(dave.Public()), f.balance(f.escrowA))
	}

	// Refusals: reason recorded, nothing moves.
	invalid := crypto.PublicKey{}
	for i := range invalid {
		invalid[i] = 0xff
	}
	for _, tc := range []struct {
		name   string
		id     uint64
		to     crypto.PublicKey
		amount uint64
		reason string
	}{
		{"beyond the balance", 2, dave.Public(), 7 * api.Unit, "escrow holds 6 PHA (6000000000000 units), the payout asks 7 PHA"},
		{"zero account", 3, crypto.PublicKey{}, 1, "is not a valid account"},
		{"invalid point", 4, invalid, 1, "is not a valid account"},
		{"zero amount", 5, dave.Public(), 0, "a payout of zero"},
		{"own escrow", 6, f.escrowA, 1, "is the escrow account of contract " + f.a.Public().Hex()},
		{"another contract's escrow", 7, f.escrowB, 1, "is the escrow account of contract " + f.b.Public().Hex()},
		{"failed contract's escrow", 8, f.escrowF, 1, "payouts do not pay contracts"},
	} {
		res := f.payout(f.a, tc.id, tc.to, tc.amount)
		if res.Paid || !strings.Contains(res.Reason, tc.reason) {
			t.Fatalf("%s: %+v", tc.name, res)
		}
		if s := f.stored(f.a, tc.id); s == nil || *s != *res {
			t.Fatalf("%s: stored %+v, sent %+v", tc.name, s, res)
		}
		if f.balance(f.escrowA) != 6*api.Unit || f.balance(dave.Public()) != daveBefore+4*api.Unit || f.balance(f.escrowB) != 0 || f.balance(f.escrowF) != 0 || len(f.deposits()) != 0 {
			t.Fatalf("%s moved PHA", tc.name)
		}
	}

	// The rest of the balance, exactly: paid.
	if res := f.payout(f.a, 9, bob.Public(), 6*api.Unit); !res.Paid || f.balance(f.escrowA) != 0 {
		t.Fatalf("payout of the whole balance: %+v, escrow %d", res, f.balance(f.escrowA))
	}

	// Malformed: an event, no result, nothing recorded.
	r = f.pushed(f.a, api.OriginContract, api.TopicPayout, []byte{1, 2, 3})
	if !strings.HasPrefix(event(r, "contract_payout_refused", "reason"), "malformed") || len(f.payoutResults()) != 0 {
		t.Fatalf("malformed: %v", r.Events)
	}
	if f.stored(f.a, 1) == nil || f.stored(f.a, 10) != nil || f.stored(f.b, 1) != nil {
		t.Fatal("unexpected stored results")
	}
}

// A contract → contract call is checked by the chain: to a running
// contract within max_command_gas it is recorded (event contract_call);
// to an unknown or failed contract, over max_command_gas, or malformed,
// it is refused with an event (the message stays in the queue either way).
func TestContractCallsChecked(t *testing.T) {
	f := newInteropFixture(t)
	max := f.params().MaxCommandGas
	unknown := crypto.MustKeyPairFromURI("//Nobody").Public()
	ok := f.pushed(f.a, api.OriginContract, api.TopicContractCall,
		(&api.ContractCall{To: f.b.Public(), Gas: max, SenderEcdh: f.a.Public(), Payload: []byte("sealed bytes")}).Encode())
	if event(ok, "contract_call", "to") != f.b.Public().Hex() || event(ok, "contract_call", "sealed") != "true" ||
		event(ok, "contract_call", "size") != "12" || event(ok, "contract_call_refused", "reason") != "" {
		t.Fatalf("call: %v", ok.Events)
	}
	for _, tc := range []struct {
		name    string
		payload []byte
		reason  string
	}{
		{"unknown receiver", (&api.ContractCall{To: unknown, Gas: 1}).Encode(), "no contract"},
		{"failed receiver", (&api.ContractCall{To: f.failed.Public(), Gas: 1}).Encode(), "failed to start"},
		{"over max_command_gas", (&api.ContractCall{To: f.b.Public(), Gas: max + 1}).Encode(), "exceeds the chain's max_command_gas"},
		{"malformed", []byte("no call"), "malformed"},
	} {
		r := f.pushed(f.a, api.OriginContract, api.TopicContractCall, tc.payload)
		if !strings.Contains(event(r, "contract_call_refused", "reason"), tc.reason) || event(r, "contract_call", "to") != "" {
			t.Fatalf("%s: %v", tc.name, r.Events)
		}
		found := false
		for _, m := range f.messages(f.height).Messages {
			found = found || (m.Topic == api.TopicContractCall && bytes.Equal(m.Payload, tc.payload))
		}
		if !found {
			t.Fatalf("%s: the call is not in the queue", tc.name)
		}
	}
}

// A call or a payout claiming to come from a contract but signed by
// another key is refused by the queue: nothing is queued, nothing paid,
// the contract's sequence does not move.
func TestForgedContractMessagesRefused(t *testing.T) {
	f := newInteropFixture(t)
	f.mustOK(f.block(f.tx(bob, f.nonce(bob), &api.Transfer{To: f.escrowA, Amount: 10 * api.Unit})))
	o := api.KeyOrigin(api.OriginContract, f.a.Public())
	for _, tc := range []struct {
		name    string
		signer  *crypto.KeyPair
		topic   string
		payload []byte
	}{
		{"payout signed by b", f.b, api.TopicPayout, (&api.PayoutRequest{ID: 1, To: dave.Public(), Amount: api.Unit}).Encode()},
		{"payout signed by bob", bob, api.TopicPayout, (&api.PayoutRequest{ID: 1, To: bob.Public(), Amount: api.Unit}).Encode()},
		{"call signed by b", f.b, api.TopicContractCall, (&api.ContractCall{To: f.b.Public(), Gas: 1}).Encode()},
	} {
		seq := f.nextSeq(o)
		m := api.SignMessage(chainID, api.Message{Origin: o, Topic: tc.topic, Seq: seq, Payload: tc.payload}, tc.signer)
		r := f.block(f.tx(alice, f.nonce(alice), &api.PushMessage{Message: m})).TxResults[0]
		if r.Code != uint32(api.CodeBadSignature) {
			t.Fatalf("%s: code %d %s", tc.name, r.Code, r.Log)
		}
		for _, m := range f.messages(f.height).Messages {
			if m.Origin == o || m.Topic == api.TopicPayoutResult {
				t.Fatalf("%s: queued %s from %s", tc.name, m.Topic, m.Origin)
			}
		}
		if f.nextSeq(o) != seq || f.balance(f.escrowA) != 10*api.Unit || f.stored(f.a, 1) != nil {
			t.Fatalf("%s: the forged message had an effect", tc.name)
		}
	}
}
