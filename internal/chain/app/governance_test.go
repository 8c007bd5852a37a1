package app

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/ed25519"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

var charlie = crypto.MustKeyPairFromURI("//Charlie")

// govGenesis: Alice, Bob and Charlie funded; Alice and Bob on the council
// with threshold 2 (Charlie is funded but not a member); a voting period
// of 3 blocks.
func govGenesis() *api.GenesisState {
	g := genesis()
	g.Accounts = append(g.Accounts, api.GenesisAccount{Address: charlie.Public(), Balance: 1000 * api.Unit})
	g.Governance = api.GovernanceGenesis{Council: []crypto.PublicKey{alice.Public(), bob.Public()}, Threshold: 2}
	g.Params.GovVotingPeriod = 3
	return g
}

var validator0 = ed25519.GenPrivKeyFromSecret([]byte("validator 0")).PubKey().Bytes()

// newGovHarness starts a chain with one ed25519 genesis validator of power
// 10 (the harness's default InitChain has none).
func newGovHarness(t *testing.T, g *api.GenesisState) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), now: time.Unix(1_700_000_000, 0)}
	h.open()
	state, _ := json.Marshal(g)
	vals := []abci.ValidatorUpdate{abci.Ed25519ValidatorUpdate(validator0, 10)}
	if _, err := h.app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: chainID, AppStateBytes: state, Time: h.now, InitialHeight: 1, Validators: vals}); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) motion(id uint64) *api.Motion {
	h.t.Helper()
	res, _ := h.app.Query(context.Background(), &abci.RequestQuery{Path: api.QueryMotion, Data: binary.BigEndian.AppendUint64(nil, id)})
	if res.Code != 0 {
		h.t.Fatal(res.Log)
	}
	if res.Value == nil {
		return nil
	}
	m, err := api.DecodeMotion(res.Value)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

func (h *harness) state(path string) []byte {
	h.t.Helper()
	res, _ := h.app.Query(context.Background(), &abci.RequestQuery{Path: path})
	if res.Code != 0 {
		h.t.Fatal(res.Log)
	}
	return res.Value
}

// mustOK checks every transaction of a block succeeded.
func mustOK(t *testing.T, res *abci.ResponseFinalizeBlock) {
	t.Helper()
	for i, r := range res.TxResults {
		if r.Code != 0 {
			t.Fatalf("tx %d: %s", i, r.Log)
		}
	}
}

func govMessages(bm *api.BlockMessages) []api.Message {
	var out []api.Message
	for _, m := range bm.Messages {
		if m.Origin == api.ModuleOrigin("governance") {
			out = append(out, m)
		}
	}
	return out
}

var minVersion5 = &api.GovPropose{Action: api.Action{Kind: api.ActionSetMinRuntimeVersion, Version: 5}}

// A motion below threshold is never enacted: it expires after the voting
// period, takes no votes afterwards, and leaves no trace in state or queue.
func TestGovBelowThresholdNotEnacted(t *testing.T) {
	h := newGovHarness(t, govGenesis())
	mustOK(t, h.block(h.tx(alice, 0, minVersion5))) // height 1, expires at 4
	for i := 0; i < 2; i++ {
		if m := h.motion(0); m.Status != api.MotionOpen || len(m.Ayes) != 1 {
			t.Fatalf("height %d: motion %+v", h.height, m)
		}
		h.block()
	}
	// Height 3 was the last voting block: the motion expired at its end.
	m := h.motion(0)
	if m.Status != api.MotionExpired || m.DecidedAt != 3 {
		t.Fatalf("after the voting period: status %s decided at %d", m.Status, m.DecidedAt)
	}
	if v := h.state(api.QueryMinRuntimeVersion); v != nil {
		t.Fatalf("an expired motion set the minimum version: %x", v)
	}
	for ht := int64(1); ht <= h.height; ht++ {
		if msgs := govMessages(h.messages(ht)); len(msgs) != 0 {
			t.Fatalf("height %d: governance messages %+v", ht, msgs)
		}
	}
	// A late aye changes nothing.
	res := h.check(h.tx(bob, 0, &api.GovVote{Motion: 0, Aye: true}))
	if api.Code(res.Code) != api.CodeInvalidCall || !strings.Contains(res.Log, "motion is closed: motion 0 expired at height 3 (its voting period ended below the threshold)") {
		t.Fatalf("vote on an expired motion: %s", res.Log)
	}
	if r := h.block(h.tx(bob, 0, &api.GovVote{Motion: 0, Aye: true})); r.TxResults[0].Code == 0 {
		t.Fatal("vote on an expired motion accepted in a block")
	}
	if h.motion(0).Status != api.MotionExpired || h.state(api.QueryMinRuntimeVersion) != nil {
		t.Fatal("a late vote revived the motion")
	}
}

// An approved motion is enacted at the end of the block that approved it,
// and pRuntimes learn it through the queue.
func TestGovApprovedEnacted(t *testing.T) {
	h := newGovHarness(t, govGenesis())
	mustOK(t, h.block(h.tx(alice, 0, minVersion5)))
	if h.state(api.QueryMinRuntimeVersion) != nil {
		t.Fatal("enacted with one aye of two")
	}
	res := h.block(h.tx(bob, 0, &api.GovVote{Motion: 0, Aye: true}))
	mustOK(t, res)
	m := h.motion(0)
	if m.Status != api.MotionEnacted || m.DecidedAt != 2 {
		t.Fatalf("motion %+v", m)
	}
	if v, err := api.DecodeRuntimeVersion(h.state(api.QueryMinRuntimeVersion)); err != nil || v != 5 {
		t.Fatalf("min version %d %v", v, err)
	}
	msgs := govMessages(h.messages(2))
	if len(msgs) != 1 || msgs[0].Topic != api.TopicGovMinRuntimeVersion {
		t.Fatalf("queue %+v", msgs)
	}
	var enacted bool
	for _, ev := range res.Events {
		enacted = enacted || ev.Type == "gov_enacted"
	}
	if !enacted {
		t.Fatalf("no gov_enacted block event: %+v", res.Events)
	}
}

// Every refusal has a clear error and changes nothing.
func TestGovRefusals(t *testing.T) {
	g := govGenesis()
	g.Params.GovVotingPeriod = 100
	h := newGovHarness(t, g)
	mustOK(t, h.block(h.tx(alice, 0, minVersion5)))
	before := h.motion(0)
	tests := []struct {
		name string
		key  *crypto.KeyPair
		call api.Call
		want string
	}{
		{"non-member proposes", charlie, minVersion5, "not a council member"},
		{"non-member votes", charlie, &api.GovVote{Motion: 0, Aye: true}, "not a council member"},
		{"double vote", alice, &api.GovVote{Motion: 0, Aye: true}, "already voted"},
		{"double vote, changed mind", alice, &api.GovVote{Motion: 0, Aye: false}, "already voted"},
		{"unknown motion", bob, &api.GovVote{Motion: 7, Aye: true}, "unknown motion"},
		{"version zero", alice, &api.GovPropose{Action: api.Action{Kind: api.ActionSetMinRuntimeVersion}}, "invalid governance action"},
		{"invalid params", alice, &api.GovPropose{Action: api.Action{Kind: api.ActionSetParams, Params: api.Params{}}}, "invalid governance action"},
		{"empty council", alice, &api.GovPropose{Action: api.Action{Kind: api.ActionSetCouncil}}, "cannot be emptied"},
		{"threshold above members", alice, &api.GovPropose{Action: api.Action{Kind: api.ActionSetCouncil, Council: api.Council{Members: []crypto.PublicKey{alice.Public()}, Threshold: 2}}}, "threshold"},
		{"revoke unknown measurement", alice, &api.GovPropose{Action: api.Action{Kind: api.ActionRevokeMeasurement, Measurement: make([]byte, 32)}}, "not on the allowlist"},
		{"allow allowed measurement", alice, &api.GovPropose{Action: api.Action{Kind: api.ActionAllowMeasurement, Measurement: measurement[:]}}, "already allowed"},
		{"remove the last validator", alice, &api.GovPropose{Action: api.Action{Kind: api.ActionSetValidator, Validator: api.Validator{PubKey: [32]byte(validator0)}}}, "no voting power"},
		{"remove an unknown validator", alice, &api.GovPropose{Action: api.Action{Kind: api.ActionSetValidator, Validator: api.Validator{PubKey: [32]byte{1}}}}, "not in the set"},
		{"validator power too high", alice, &api.GovPropose{Action: api.Action{Kind: api.ActionSetValidator, Validator: api.Validator{PubKey: [32]byte{1}, Power: api.MaxValidatorPower + 1}}}, "exceeds"},
	}
	nonce := map[*crypto.KeyPair]uint64{alice: 1}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := h.block(h.tx(tc.key, nonce[tc.key], tc.call))
			nonce[tc.key]++ // the fee and nonce stay charged
			r := res.TxResults[0]
			if r.Code == 0 || !strings.Contains(r.Log, tc.want) {
				t.Fatalf("code %d log %q, want an error containing %q", r.Code, r.Log, tc.want)
			}
		})
	}
	if v := h.state(api.QueryNextMotion); binary.BigEndian.Uint64(v) != 1 {
		t.Fatalf("refused proposals created motions: next %x", v)
	}
	after := h.motion(0)
	if len(after.Ayes) != len(before.Ayes) || len(after.Nays) != 0 {
		t.Fatalf("refused votes were counted: %+v", after)
	}
}

// A revoked measurement expires the registrations made with it: the
// worker's messages are refused; an allowed-again measurement restores it.
func TestGovRevokeMeasurement(t *testing.T) {
	g := govGenesis()
	g.Governance.Threshold = 1
	h := newGovHarness(t, g)
	w := newWorker(t)
	mustOK(t, h.block()) // a block for the registration to cite
	mustOK(t, h.block(h.tx(bob, h.nonce(bob), h.register(h.cite(w.info)))))
	origin := api.KeyOrigin(api.OriginWorker, w.identity.Public())
	push := func(seq uint64) *api.PushMessage {
		return &api.PushMessage{Message: api.SignMessage(chainID, api.Message{Origin: origin, Topic: "egress", Seq: seq}, w.identity)}
	}
	mustOK(t, h.block(h.tx(bob, h.nonce(bob), push(0))))

	res := h.block(h.tx(alice, h.nonce(alice), &api.GovPropose{Action: api.Action{Kind: api.ActionRevokeMeasurement, Measurement: measurement[:]}}))
	mustOK(t, res)
	if m := h.motion(0); m.Status != api.MotionEnacted {
		t.Fatalf("threshold-1 motion: %+v", m)
	}
	msgs := govMessages(h.messages(h.height))
	if len(msgs) != 1 || msgs[0].Topic != api.TopicGovAllowlist {
		t.Fatalf("queue %+v", msgs)
	}
	if list, err := api.DecodeMeasurements(msgs[0].Payload); err != nil || len(list) != 0 {
		t.Fatalf("announced allowlist %v %v", list, err)
	}
	r := h.check(h.tx(bob, h.nonce(bob), push(1)))
	if api.Code(r.Code) != api.CodeUnknownOrigin || !strings.Contains(r.Log, "no longer allowed") {
		t.Fatalf("push of a revoked worker: %s", r.Log)
	}
	// The same measurement cannot register anew.
	w2 := newWorker(t)
	r = h.check(h.tx(bob, h.nonce(bob), h.register(h.cite(w2.info))))
	if api.Code(r.Code) != api.CodeMeasurementNotAllowed {
		t.Fatalf("registration with a revoked measurement: %s", r.Log)
	}
	mustOK(t, h.block(h.tx(alice, h.nonce(alice), &api.GovPropose{Action: api.Action{Kind: api.ActionAllowMeasurement, Measurement: measurement[:]}})))
	mustOK(t, h.block(h.tx(bob, h.nonce(bob), push(1))))
}

// Validator changes are returned to CometBFT from FinalizeBlock; the chain
// keeps the set it told CometBFT.
func TestGovValidatorUpdates(t *testing.T) {
	g := govGenesis()
	g.Governance.Threshold = 1
	h := newGovHarness(t, g)
	v1 := ed25519.GenPrivKeyFromSecret([]byte("validator 1")).PubKey().Bytes()
	res := h.block(h.tx(alice, 0, &api.GovPropose{Action: api.Action{Kind: api.ActionSetValidator, Validator: api.Validator{PubKey: [32]byte(v1), Power: 3}}}))
	mustOK(t, res)
	if len(res.ValidatorUpdates) != 1 || string(res.ValidatorUpdates[0].PubKey.GetEd25519()) != string(v1) || res.ValidatorUpdates[0].Power != 3 {
		t.Fatalf("validator updates %+v", res.ValidatorUpdates)
	}
	vs, err := api.DecodeValidatorSet(h.state(api.QueryValidators))
	if err != nil || len(vs) != 2 || vs.TotalPower() != 13 {
		t.Fatalf("validator set %+v %v", vs, err)
	}
	// Removing the genesis validator leaves v1: allowed.
	res = h.block(h.tx(alice, 1, &api.GovPropose{Action: api.Action{Kind: api.ActionSetValidator, Validator: api.Validator{PubKey: [32]byte(validator0)}}}))
	mustOK(t, res)
	if len(res.ValidatorUpdates) != 1 || res.ValidatorUpdates[0].Power != 0 {
		t.Fatalf("removal %+v", res.ValidatorUpdates)
	}
	// Now v1 is the last one.
	res = h.block(h.tx(alice, 2, &api.GovPropose{Action: api.Action{Kind: api.ActionSetValidator, Validator: api.Validator{PubKey: [32]byte(v1)}}}))
	if res.TxResults[0].Code == 0 || len(res.ValidatorUpdates) != 0 {
		t.Fatalf("removing the last validator: %+v", res)
	}
}

// Several validator motions on one key enacted in one block give CometBFT
// one update for it, from the set before the block to the set after it
// (CometBFT refuses a block's updates that name a key twice, or remove a
// key it does not hold): checked with CometBFT's own UpdateWithChangeSet.
func TestGovValidatorMotionsMergedPerBlock(t *testing.T) {
	h := newGovHarness(t, govGenesis()) // 2 of 3
	set := cmttypes.NewValidatorSet([]*cmttypes.Validator{cmttypes.NewValidator(ed25519.PubKey(validator0), 10)})
	apply := func(res *abci.ResponseFinalizeBlock) {
		t.Helper()
		updates, err := cmttypes.PB2TM.ValidatorUpdates(res.ValidatorUpdates)
		if err != nil {
			t.Fatal(err)
		}
		if err := set.UpdateWithChangeSet(updates); err != nil {
			t.Fatalf("CometBFT refuses the block's validator updates %+v: %v", res.ValidatorUpdates, err)
		}
	}
	v1 := ed25519.GenPrivKeyFromSecret([]byte("validator 1")).PubKey().Bytes()
	propose := func(power uint64) []byte {
		return h.tx(alice, h.nonce(alice), &api.GovPropose{Action: api.Action{Kind: api.ActionSetValidator, Validator: api.Validator{PubKey: [32]byte(v1), Power: power}}})
	}
	aye := func(id, nonce uint64) []byte { return h.tx(bob, nonce, &api.GovVote{Motion: id, Aye: true}) }
	// Two motions on v1 (power 3, then 5) approved in one block: one
	// update, the last power.
	mustOK(t, h.block(propose(3)))
	mustOK(t, h.block(propose(5)))
	res := h.block(aye(0, 0), aye(1, 1))
	mustOK(t, res)
	if m0, m1 := h.motion(0), h.motion(1); m0.Status != api.MotionEnacted || m1.Status != api.MotionEnacted {
		t.Fatalf("motions %s %s", m0.Status, m1.Status)
	}
	if len(res.ValidatorUpdates) != 1 || res.ValidatorUpdates[0].Power != 5 {
		t.Fatalf("updates %+v", res.ValidatorUpdates)
	}
	apply(res)
	// Removed and put back at the same power in one block: no update.
	mustOK(t, h.block(propose(0)))
	mustOK(t, h.block(propose(5)))
	res = h.block(aye(2, 2), aye(3, 3))
	mustOK(t, res)
	if m2, m3 := h.motion(2), h.motion(3); m2.Status != api.MotionEnacted || m3.Status != api.MotionEnacted {
		t.Fatalf("motions %s %s", m2.Status, m3.Status)
	}
	if len(res.ValidatorUpdates) != 0 {
		t.Fatalf("updates %+v", res.ValidatorUpdates)
	}
	apply(res)
	if set.Size() != 2 || set.TotalVotingPower() != 15 {
		t.Fatalf("CometBFT's set %v", set)
	}
}

// Two motions approved in one block that together would empty the
// validator set: the first is enacted, the second fails at enactment and
// changes nothing.
func TestGovEnactmentRechecks(t *testing.T) {
	g := govGenesis()
	h := newGovHarness(t, g)
	v1 := ed25519.GenPrivKeyFromSecret([]byte("validator 1")).PubKey().Bytes()
	add := &api.GovPropose{Action: api.Action{Kind: api.ActionSetValidator, Validator: api.Validator{PubKey: [32]byte(v1), Power: 1}}}
	mustOK(t, h.block(h.tx(alice, 0, add)))
	mustOK(t, h.block(h.tx(bob, 0, &api.GovVote{Motion: 0, Aye: true})))
	rm := func(pk []byte) *api.GovPropose {
		return &api.GovPropose{Action: api.Action{Kind: api.ActionSetValidator, Validator: api.Validator{PubKey: [32]byte(pk)}}}
	}
	mustOK(t, h.block(h.tx(alice, 1, rm(validator0)), h.tx(alice, 2, rm(v1))))
	res := h.block(h.tx(bob, 1, &api.GovVote{Motion: 1, Aye: true}), h.tx(bob, 2, &api.GovVote{Motion: 2, Aye: true}))
	mustOK(t, res)
	if m1, m2 := h.motion(1), h.motion(2); m1.Status != api.MotionEnacted || m2.Status != api.MotionFailed || !strings.Contains(m2.Reason, "no voting power") {
		t.Fatalf("motions %s, %s (%s)", m1.Status, m2.Status, m2.Reason)
	}
	if len(res.ValidatorUpdates) != 1 {
		t.Fatalf("updates %+v", res.ValidatorUpdates)
	}
	vs, _ := api.DecodeValidatorSet(h.state(api.QueryValidators))
	if len(vs) != 1 || string(vs[0].PubKey[:]) != string(v1) {
		t.Fatalf("set %+v", vs)
	}
}

// Params and the council itself change by motion.
// Two parameter motions proposed side by side, on different fields, do not
// undo each other when enacted in the other order: each changes only what
// its proposer changed.
func TestGovParamsMotionsCompose(t *testing.T) {
	h := newGovHarness(t, govGenesis()) // 2 of 3
	base := api.DefaultParams()
	voting, window := base, base
	voting.GovVotingPeriod = 100
	window.AttestationWindow = 300
	mustOK(t, h.block(h.tx(alice, 0, &api.GovPropose{Action: api.Action{Kind: api.ActionSetParams, Params: voting}}),
		h.tx(alice, 1, &api.GovPropose{Action: api.Action{Kind: api.ActionSetParams, Params: window}})))
	mustOK(t, h.block(h.tx(bob, 0, &api.GovVote{Motion: 1, Aye: true})))
	mustOK(t, h.block(h.tx(bob, 1, &api.GovVote{Motion: 0, Aye: true})))
	got, err := api.DecodeParams(h.state(api.QueryParams))
	want := base
	want.GovVotingPeriod, want.AttestationWindow = 100, 300
	if err != nil || got != want {
		t.Fatalf("params %+v (%v), want %+v", got, err, want)
	}
}

func TestGovParamsAndCouncil(t *testing.T) {
	g := govGenesis()
	g.Governance.Threshold = 1
	h := newGovHarness(t, g)
	p := api.DefaultParams()
	p.FeeBase *= 10
	mustOK(t, h.block(h.tx(alice, 0, &api.GovPropose{Action: api.Action{Kind: api.ActionSetParams, Params: p}})))
	got, err := api.DecodeParams(h.state(api.QueryParams))
	if err != nil || got != p {
		t.Fatalf("params %+v %v", got, err)
	}
	// pRuntimes learn the new parameters (they follow attestation_window).
	msgs := govMessages(h.messages(h.height))
	if len(msgs) != 1 || msgs[0].Topic != api.TopicGovParams || string(msgs[0].Payload) != string(p.Encode()) {
		t.Fatalf("queue %+v", msgs)
	}
	// The next transaction pays the new minimum fee (h.tx pays the old one).
	r := h.check(h.tx(alice, 1, &api.Transfer{To: bob.Public(), Amount: 1}))
	if api.Code(r.Code) != api.CodeFeeTooLow {
		t.Fatalf("old fee after the change: %s", r.Log)
	}
	tx := &api.Tx{ChainID: chainID, Signer: alice.Public(), Nonce: 1, Fee: p.MinFee(2048), Call: &api.GovPropose{Action: api.Action{Kind: api.ActionSetCouncil,
		Council: api.Council{Members: []crypto.PublicKey{charlie.Public()}, Threshold: 1}}}}
	tx.Signature = alice.Sign(api.ContextTx, tx.SignBytes())
	mustOK(t, h.block(tx.Encode()))
	c, err := api.DecodeCouncil(h.state(api.QueryCouncil))
	if err != nil || len(c.Members) != 1 || c.Members[0] != charlie.Public() {
		t.Fatalf("council %+v %v", c, err)
	}
	tx = &api.Tx{ChainID: chainID, Signer: alice.Public(), Nonce: 2, Fee: p.MinFee(2048), Call: minVersion5}
	tx.Signature = alice.Sign(api.ContextTx, tx.SignBytes())
	if r := h.check(tx.Encode()); !strings.Contains(r.Log, "not a council member") {
		t.Fatalf("removed member proposes: %s", r.Log)
	}
}

// The last block of the voting period still takes the approving aye: the
// motion is enacted, not expired.
func TestGovApprovedInLastVotingBlock(t *testing.T) {
	h := newGovHarness(t, govGenesis())             // voting period 3
	mustOK(t, h.block(h.tx(alice, 0, minVersion5))) // height 1: votes at 1..3
	h.block()
	mustOK(t, h.block(h.tx(bob, 0, &api.GovVote{Motion: 0, Aye: true}))) // height 3
	if m := h.motion(0); m.Status != api.MotionEnacted || m.DecidedAt != 3 {
		t.Fatalf("motion %+v", m)
	}
	if v, _ := api.DecodeRuntimeVersion(h.state(api.QueryMinRuntimeVersion)); v != 5 {
		t.Fatalf("min version %d", v)
	}
}
