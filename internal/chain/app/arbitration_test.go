package app

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/contracts"
)

// arbFixture is a chain with a gatekeeper (the genesis key set's one
// member), a contract deployed by Alice on two staked replicas (w1, w2)
// and two more workers (a1, a2) to arbitrate, driven by pushing the
// contract's, the workers' and the gatekeeper's messages directly.
type arbFixture struct {
	*harness
	gk, w1, w2, a1, a2 *worker
	contract           *crypto.KeyPair
	upload             [32]byte
}

const arbStake = 100 * api.Unit

func newArbFixture(t *testing.T, tune func(*api.Params)) *arbFixture {
	f := &arbFixture{gk: newWorker(t), w1: newWorker(t), w2: newWorker(t), a1: newWorker(t), a2: newWorker(t)}
	g := genesis()
	g.Gatekeepers = []crypto.PublicKey{f.gk.identity.Public()}
	g.Params.MinWorkerStake = 0
	if tune != nil {
		tune(&g.Params)
	}
	f.harness = newHarness(t, g)
	f.block()
	code := []byte("\x00asm\x01\x00\x00\x00")
	var txs [][]byte
	for i, w := range []*worker{f.gk, f.w1, f.w2, f.a1, f.a2} {
		txs = append(txs, f.tx(bob, uint64(i), f.register(f.cite(w.info))))
	}
	txs = append(txs, f.tx(alice, 0, &api.UploadContract{Code: gzipped(t, code), Replicas: 2}),
		f.tx(bob, 5, &api.StakeBond{Amount: 2 * arbStake}),
		f.tx(bob, 6, &api.StakeAllocate{Node: f.w1.identity.Public(), Amount: arbStake}),
		f.tx(bob, 7, &api.StakeAllocate{Node: f.w2.identity.Public(), Amount: arbStake}))
	f.ok(f.block(txs...))
	hash, err := contracts.CodeHash(gzipped(t, code))
	if err != nil {
		t.Fatal(err)
	}
	f.upload = api.UploadID(alice.Public(), hash, 0)
	f.contract, _, _ = crypto.GenerateKeyPair()
	f.announceMasterKey(f.gk)
	f.provision(f.gk, f.upload, f.contract.Public(), f.contract.Public(), f.w1, f.w2)
	if rec := f.record(); rec == nil || len(rec.Workers) != 2 {
		t.Fatalf("not deployed: %+v", rec)
	}
	return f
}

func (f *arbFixture) ok(res *abci.ResponseFinalizeBlock) *abci.ResponseFinalizeBlock {
	f.t.Helper()
	for i, r := range res.TxResults {
		if r.Code != 0 {
			f.t.Fatalf("tx %d: %s", i, r.Log)
		}
	}
	return res
}

// push is a push_message tx (paid by Alice) of a message of key's origin
// with its next sequence.
func (f *arbFixture) push(key *crypto.KeyPair, kind api.OriginKind, topic string, payload []byte) []byte {
	return f.pushN(f.nonce(alice), key, kind, topic, payload)
}

// pushN is push with Alice's nonce given (several pushes in one block).
func (f *arbFixture) pushN(nonce uint64, key *crypto.KeyPair, kind api.OriginKind, topic string, payload []byte) []byte {
	return f.tx(alice, nonce, f.signed(key, kind, topic, payload))
}

// pushBlock pushes one message in a block of its own.
func (f *arbFixture) pushBlock(key *crypto.KeyPair, kind api.OriginKind, topic string, payload []byte) *abci.ExecTxResult {
	f.t.Helper()
	return f.ok(f.block(f.push(key, kind, topic, payload))).TxResults[0]
}

// update pushes the contract's state update covering the last block,
// from root prev to root next, setting loc to val (nil: removing it).
func (f *arbFixture) update(prev, next [32]byte, seq uint64, changes ...api.StateChange) int64 {
	f.t.Helper()
	return f.updateAt(f.height, prev, next, seq, changes...)
}

func (f *arbFixture) updateAt(height int64, prev, next [32]byte, seq uint64, changes ...api.StateChange) int64 {
	f.t.Helper()
	u := &api.StateUpdate{Height: height, Seq: seq, Calls: seq, PrevRoot: prev, NewRoot: next, Changes: changes}
	r := f.pushBlock(f.contract, api.OriginContract, api.TopicContractState, u.Encode())
	if event(r, "state_update", "height") == "" {
		f.t.Fatalf("update refused: %v", r.Events)
	}
	return u.Height
}

// vote pushes w's vote for height: root computed from prev.
func (f *arbFixture) vote(w *worker, height int64, prev, root [32]byte) *abci.ExecTxResult {
	f.t.Helper()
	v := &api.StateVote{Contract: f.contract.Public(), Height: height, PrevRoot: prev, Root: root}
	return f.pushBlock(w.identity, api.OriginWorker, api.TopicStateVote, v.Encode())
}

// arbiters is the gatekeeper's partials of the contract's key for the
// arbiters ws of the dispute of the update at height (a round the one
// member completes).
func (f *arbFixture) arbiters(height int64, ws ...*worker) *abci.ExecTxResult {
	f.t.Helper()
	return f.sendPartials(f.gk, f.arbiterPartials(height, ws...))
}

func (f *arbFixture) arbiterPartials(height int64, ws ...*worker) *api.KeyPartials {
	return arbiterPartials(f.gk, f.upload, f.contract.Public(), height, ws...)
}

func (f *arbFixture) request(key *crypto.KeyPair, height int64) *abci.ExecTxResult {
	f.t.Helper()
	return f.block(f.tx(key, f.nonce(key), &api.ArbitrationRequest{Contract: f.contract.Public(), Height: height})).TxResults[0]
}

func (f *arbFixture) record() *api.ContractRecord {
	v := f.query(api.QueryContract, f.contract.Public().Bytes(), false).Value
	if v == nil {
		return nil
	}
	rec, err := api.DecodeContractRecord(v)
	if err != nil {
		f.t.Fatal(err)
	}
	return rec
}

func (f *arbFixture) arbitration() *api.Arbitration {
	f.t.Helper()
	res := f.query(api.QueryArbitration, f.contract.Public().Bytes(), true)
	if res.Value == nil {
		return nil
	}
	if res.ProofOps == nil {
		f.t.Fatal("arbitration query without proof")
	}
	a, err := api.DecodeArbitration(res.Value)
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

// snapshot is the contract's checkpoint record and entries page as stored.
func (f *arbFixture) snapshot() string {
	cp := f.query(api.QueryCheckpoint, f.contract.Public().Bytes(), false).Value
	entries := f.query(api.QueryContractEntries, f.contract.Public().Bytes(), false).Value
	return string(cp) + "|" + string(entries)
}

func (f *arbFixture) nodeStake(w *worker) uint64 {
	v := f.query(api.QueryStakeNode, w.identity.Public().Bytes(), false).Value
	if v == nil {
		return 0
	}
	n, err := api.DecodeNodeStake(v)
	if err != nil {
		f.t.Fatal(err)
	}
	return n.Total
}

// topic returns the payloads of the messages of topic in the last block.
func (f *arbFixture) topic(topic string) [][]byte {
	var out [][]byte
	for _, m := range f.messages(f.height).Messages {
		if m.Topic == topic && m.Origin == api.ModuleOrigin(contracts.Module) {
			out = append(out, m.Payload)
		}
	}
	return out
}

func (f *arbFixture) verdict() *api.ArbitrationVerdict {
	f.t.Helper()
	ps := f.topic(api.TopicArbitrationVerdict)
	if len(ps) != 1 {
		f.t.Fatalf("%d verdicts in block %d", len(ps), f.height)
	}
	v, err := api.DecodeArbitrationVerdict(ps[0])
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

func val(b byte) []byte { return bytes.Repeat([]byte{b}, 12) }

// An overturned update: three updates are applied; the 2nd is disputed
// by Bob (bond debited, ArbitrationOpened names the checkpoint before
// it and the block whose state holds its entries); the arbiters vote
// another root than the update's: every update from the 2nd on is
// undone (entries and checkpoint exactly as after the 1st), the replica
// that vouched for the wrong root is slashed, removed and excluded, the
// honest one stays, and the bond returns to Bob.
func TestArbitrationOverturned(t *testing.T) {
	f := newArbFixture(t, nil)
	r1, r2, r3, truth := [32]byte{1}, [32]byte{2}, [32]byte{3}, [32]byte{0xee}
	la, lb, lc := [32]byte{0xa}, [32]byte{0xb}, [32]byte{0xc}
	h1 := f.update(api.EmptyStateRoot, r1, 2, api.StateChange{Location: la, Value: val(1)}, api.StateChange{Location: lb, Value: val(2)})
	after1 := f.snapshot()
	h2 := f.update(r1, r2, 4, api.StateChange{Location: la, Value: val(3)}, api.StateChange{Location: lb}, api.StateChange{Location: lc, Value: val(4)})
	accepted2 := f.height
	f.vote(f.w1, h2, r1, r2) // the liar vouches for its update
	h3 := f.update(r2, r3, 5, api.StateChange{Location: la}, api.StateChange{Location: lc, Value: val(5)})
	f.vote(f.w1, h3, r2, r3)
	if after1 == f.snapshot() {
		t.Fatal("updates changed nothing")
	}
	// Bob disputes the 2nd update and posts the bond.
	before := f.account(bob.Public()).Balance
	if r := f.request(bob, h2); r.Code != 0 {
		t.Fatalf("request: %s", r.Log)
	}
	fee := api.DefaultParams().MinFee(2048)
	if got := f.account(bob.Public()).Balance; got != before-fee-api.DefaultParams().ArbitrationBond {
		t.Fatalf("bob's balance %d, want %d - fee - bond", got, before)
	}
	ps := f.topic(api.TopicArbitrationOpened)
	if len(ps) != 1 {
		t.Fatalf("%d ArbitrationOpened", len(ps))
	}
	o, err := api.DecodeArbitrationOpened(ps[0])
	if err != nil || o.Contract != f.contract.Public() || o.Height != h2 || o.Root != r2 || o.PrevHeight != h1 || o.PrevRoot != r1 || o.EntriesHeight != accepted2-1 || o.Requester != bob.Public() {
		t.Fatalf("opened %+v %v (h1 %d h2 %d accepted %d)", o, err, h1, h2, accepted2)
	}
	if a := f.arbitration(); a == nil || a.Height != h2 || a.Bond != api.DefaultParams().ArbitrationBond || a.Requester != bob.Public() || len(a.Arbiters) != 0 {
		t.Fatalf("record %+v", a)
	}
	// The entries at EntriesHeight are those after the 1st update.
	at, err := f.app.Query(context.Background(), &abci.RequestQuery{Path: api.QueryContractEntries, Data: f.contract.Public().Bytes(), Height: o.EntriesHeight})
	if err != nil || at.Code != 0 || !strings.HasSuffix(after1, "|"+string(at.Value)) {
		t.Fatalf("entries at %d are not those after the 1st update: %v %s", o.EntriesHeight, err, at.Log)
	}
	// The honest replica computed another root (its vote would have
	// opened the dispute by itself).
	f.vote(f.w2, h2, r1, truth)
	// A second request (of a later update) is refused while it is open.
	if r := f.request(alice, h3); api.Code(r.Code) != api.CodeInvalidCall || !strings.Contains(r.Log, "already open") {
		t.Fatalf("second request: %s %s", api.Code(r.Code), r.Log)
	}
	// Updates continue meanwhile.
	f.update(r3, [32]byte{4}, 6, api.StateChange{Location: lb, Value: val(6)})
	// Arbiters.
	f.arbiters(h2, f.a1, f.a2)
	as := f.topic(api.TopicArbitersAssigned)
	if len(as) != 1 {
		t.Fatalf("%d ArbitersAssigned", len(as))
	}
	// A stranger's vote does not count; one arbiter is not a majority of two.
	if r := f.vote(f.gk, h2, r1, truth); !strings.Contains(event(r, "state_vote_ignored", "reason"), "neither runs") {
		t.Fatalf("stranger's vote: %v", r.Events)
	}
	f.vote(f.a1, h2, r1, truth)
	if f.arbitration() == nil || len(f.topic(api.TopicArbitrationVerdict)) != 0 {
		t.Fatal("decided on one vote of two")
	}
	stake1, stake2 := f.nodeStake(f.w1), f.nodeStake(f.w2)
	before = f.account(bob.Public()).Balance
	staleSeq := f.nextSeq(api.KeyOrigin(api.OriginContract, f.contract.Public()))
	f.vote(f.a2, h2, r1, truth)
	v := f.verdict()
	if v.Outcome != api.ArbitrationOverturned || v.Root != truth || v.Height != h2 || v.RollbackHeight != h1 || v.RollbackRoot != r1 ||
		len(v.Slashed) != 1 || v.Slashed[0] != f.w1.identity.Public() {
		t.Fatalf("verdict %+v", v)
	}
	if f.snapshot() != after1 {
		t.Fatal("the rollback did not restore the entries and checkpoint after the 1st update")
	}
	if f.arbitration() != nil {
		t.Fatal("arbitration record kept")
	}
	want := stake1 - stake1*api.DefaultParams().ArbitrationSlashPPM/1_000_000
	if got := f.nodeStake(f.w1); got != want || f.nodeStake(f.w2) != stake2 {
		t.Fatalf("stakes %d %d, want %d %d", got, f.nodeStake(f.w2), want, stake2)
	}
	rec := f.record()
	if len(rec.Workers) != 1 || rec.Workers[0] != f.w2.identity.Public() || !slices.Contains(rec.Excluded, f.w1.identity.Public()) {
		t.Fatalf("record workers %v excluded %v", rec.Workers, rec.Excluded)
	}
	var removed bool
	for _, p := range f.topic(api.TopicContractDeployed) {
		d, err := api.DecodeContractDeployed(p)
		removed = removed || (err == nil && d.Reason == api.RemovedByArbitration && len(d.Removed) == 1 && d.Removed[0] == f.w1.identity.Public())
	}
	if !removed {
		t.Fatal("no ContractDeployed removing the liar")
	}
	if got := f.account(bob.Public()).Balance; got != before+api.DefaultParams().ArbitrationBond {
		t.Fatalf("bond not returned: %d, want %d", got, before+api.DefaultParams().ArbitrationBond)
	}
	// The contract's message sequence jumped: a message of the wrong
	// history still in flight is refused as stale; the rebuilt replicas
	// number theirs from ResumeSeq.
	if v.ResumeSeq != staleSeq+contracts.ResumeSeqGap {
		t.Fatalf("resume seq %d, want %d + 2^20", v.ResumeSeq, staleSeq)
	}
	late := &api.StateUpdate{Height: f.height, Seq: 6, Calls: 6, PrevRoot: r1, NewRoot: [32]byte{6}}
	m := api.SignMessage(chainID, api.Message{Origin: api.KeyOrigin(api.OriginContract, f.contract.Public()), Topic: api.TopicContractState, Seq: staleSeq, Payload: late.Encode()}, f.contract)
	if r := f.block(f.tx(alice, f.nonce(alice), &api.PushMessage{Message: m})).TxResults[0]; r.Code == 0 || !strings.Contains(r.Log, "next expected is "+strconv.FormatUint(v.ResumeSeq, 10)) {
		t.Fatalf("a message of the wrong history: %d %s", r.Code, r.Log)
	}
	// The chain goes on from the rolled-back checkpoint: the next update
	// links to r1; the undone heights cannot be disputed.
	f.update(r1, [32]byte{7}, 5, api.StateChange{Location: lc, Value: val(9)})
	if r := f.request(alice, h3); api.Code(r.Code) != api.CodeInvalidCall || !strings.Contains(r.Log, "no update of height") {
		t.Fatalf("request of an undone update: %s %s", api.Code(r.Code), r.Log)
	}
}

// An upheld update: the arbiters compute the disputed root, so the bond
// is paid to them (split evenly) and the update may not be disputed
// again; the replica that voted another root from the same previous root
// is slashed and removed.
func TestArbitrationUpheld(t *testing.T) {
	f := newArbFixture(t, func(p *api.Params) { p.ArbitrationBond = 11 })
	r1 := [32]byte{1}
	h1 := f.update(api.EmptyStateRoot, r1, 1, api.StateChange{Location: [32]byte{1}, Value: val(1)})
	f.vote(f.w1, h1, api.EmptyStateRoot, r1)
	after := f.snapshot()
	if r := f.request(bob, h1); r.Code != 0 {
		t.Fatalf("request: %s", r.Log)
	}
	f.vote(f.w2, h1, api.EmptyStateRoot, [32]byte{9})
	f.arbiters(h1, f.a1, f.a2)
	stake1, stake2 := f.nodeStake(f.w1), f.nodeStake(f.w2)
	f.vote(f.a1, h1, api.EmptyStateRoot, r1)
	f.vote(f.a2, h1, api.EmptyStateRoot, r1)
	v := f.verdict()
	if v.Outcome != api.ArbitrationUpheld || v.Root != r1 || v.RollbackHeight != h1 || v.RollbackRoot != r1 || len(v.Slashed) != 1 || v.Slashed[0] != f.w2.identity.Public() || v.ResumeSeq != 0 {
		t.Fatalf("verdict %+v", v)
	}
	if f.snapshot() != after {
		t.Fatal("an upheld update changed the state")
	}
	if a1, a2 := f.account(f.a1.identity.Public()).Balance, f.account(f.a2.identity.Public()).Balance; a1 != 6 || a2 != 5 {
		t.Fatalf("arbiters paid %d and %d, want 6 and 5", a1, a2)
	}
	if f.nodeStake(f.w1) != stake1 || f.nodeStake(f.w2) >= stake2 {
		t.Fatalf("stakes %d %d (before %d %d)", f.nodeStake(f.w1), f.nodeStake(f.w2), stake1, stake2)
	}
	if rec := f.record(); len(rec.Workers) != 1 || rec.Workers[0] != f.w1.identity.Public() {
		t.Fatalf("workers %v", rec.Workers)
	}
	if r := f.request(alice, h1); api.Code(r.Code) != api.CodeInvalidCall || !strings.Contains(r.Log, "already upheld") {
		t.Fatalf("re-request: %s %s", api.Code(r.Code), r.Log)
	}
}

// Requests: refused for an unknown contract or height, outside the
// window, and when the signer cannot post the bond (nothing changes);
// the deployer posts none; an open dispute without a verdict expires
// after arbitration_timeout blocks and returns the bond.
func TestArbitrationRequestAndExpiry(t *testing.T) {
	carol := crypto.MustKeyPairFromURI("//Carol")
	f := newArbFixture(t, func(p *api.Params) { p.ArbitrationWindow, p.ArbitrationTimeout = 20, 3 })
	f.ok(f.block(f.tx(alice, f.nonce(alice), &api.Transfer{To: carol.Public(), Amount: 1 * api.Unit})))
	r1 := [32]byte{1}
	h1 := f.update(api.EmptyStateRoot, r1, 1, api.StateChange{Location: [32]byte{1}, Value: val(1)})
	accepted := f.height
	for _, c := range []struct {
		name string
		key  *crypto.KeyPair
		req  *api.ArbitrationRequest
		want string
	}{
		{"unknown contract", bob, &api.ArbitrationRequest{Contract: alice.Public(), Height: h1}, "no contract"},
		{"unknown height", bob, &api.ArbitrationRequest{Contract: f.contract.Public(), Height: h1 - 1}, "no update of height"},
		{"no balance for the bond", carol, &api.ArbitrationRequest{Contract: f.contract.Public(), Height: h1}, "insufficient balance"},
	} {
		before := f.account(carol.Public()).Balance
		r := f.block(f.tx(c.key, f.nonce(c.key), c.req)).TxResults[0]
		if r.Code == 0 || !strings.Contains(r.Log, c.want) {
			t.Errorf("%s: %s %s", c.name, api.Code(r.Code), r.Log)
		}
		if f.arbitration() != nil || len(f.topic(api.TopicArbitrationOpened)) != 0 {
			t.Fatalf("%s: opened", c.name)
		}
		if c.name == "no balance for the bond" && f.account(carol.Public()).Balance != before-api.DefaultParams().MinFee(2048) {
			t.Fatalf("carol lost more than the fee")
		}
	}
	// The deployer posts nothing.
	before := f.account(alice.Public()).Balance
	if r := f.request(alice, h1); r.Code != 0 {
		t.Fatalf("deployer's request: %s", r.Log)
	}
	opened := f.height
	if a := f.arbitration(); a == nil || a.Bond != 0 || f.account(alice.Public()).Balance != before-api.DefaultParams().MinFee(2048) {
		t.Fatalf("deployer's record %+v", a)
	}
	// No verdict: it expires after the timeout, nothing changes.
	snap := f.snapshot()
	for f.height < opened+3 {
		f.block()
		if f.arbitration() == nil {
			t.Fatalf("expired at %d, opened at %d", f.height, opened)
		}
	}
	f.block()
	if v := f.verdict(); v.Outcome != api.ArbitrationExpired || v.RollbackHeight != h1 || len(v.Slashed) != 0 || f.arbitration() != nil || f.snapshot() != snap {
		t.Fatalf("expiry %+v", v)
	}
	// Bob's bond comes back at expiry too.
	before = f.account(bob.Public()).Balance
	if r := f.request(bob, h1); r.Code != 0 {
		t.Fatalf("request after expiry: %s", r.Log)
	}
	for f.arbitration() != nil {
		f.block()
	}
	if got := f.account(bob.Public()).Balance; got != before-api.DefaultParams().MinFee(2048) {
		t.Fatalf("bond not returned at expiry: %d, want %d", got, before-api.DefaultParams().MinFee(2048))
	}
	// Past the window the update cannot be disputed.
	for f.height <= accepted+20 {
		f.block()
	}
	if r := f.request(alice, h1); api.Code(r.Code) != api.CodeInvalidCall || !strings.Contains(r.Log, "arbitration_window") {
		t.Fatalf("late request: %s %s", api.Code(r.Code), r.Log)
	}
}

// Arbiter rounds: only the first completed round of partials for the
// open dispute assigns arbiters. Partials before the dispute opens, for
// another height, of another key epoch, naming no worker or one twice are
// ignored by the round count (key_partials_ignored); a completed round
// naming a worker of the contract or more than `arbiters` workers is
// ignored whole (arbiter_grant_ignored). Nothing is assigned meanwhile.
// The assignment carries the grant the chain built (the contract's keys,
// key era and epoch, the round, the arbiters); a later round is ignored.
func TestArbiterRounds(t *testing.T) {
	f := newArbFixture(t, nil)
	h1 := f.update(api.EmptyStateRoot, [32]byte{1}, 1, api.StateChange{Location: [32]byte{1}, Value: val(1)})
	if r := f.arbiters(h1, f.a1); !strings.Contains(event(r, "key_partials_ignored", "reason"), "no dispute") {
		t.Fatalf("partials without a dispute: %v", r.Events)
	}
	if r := f.request(alice, h1); r.Code != 0 {
		t.Fatal(r.Log)
	}
	epoch1 := f.arbiterPartials(h1, f.a1)
	epoch1.Epoch = 1
	for _, c := range []struct {
		name  string
		p     *api.KeyPartials
		event string
		want  string
	}{
		{"other height", f.arbiterPartials(h1+1, f.a1), "key_partials_ignored", "no dispute"},
		{"other epoch", epoch1, "key_partials_ignored", "the contract's key is of era 0 epoch 0"},
		{"none", f.arbiterPartials(h1), "key_partials_ignored", "0 workers"},
		{"twice", f.arbiterPartials(h1, f.a1, f.a1), "key_partials_ignored", "twice"},
		{"a replica", f.arbiterPartials(h1, f.a1, f.w1), "arbiter_grant_ignored", "already runs the contract"},
		{"too many", f.arbiterPartials(h1, f.a1, f.a2, f.gk), "arbiter_grant_ignored", "1 to 2 allowed"},
	} {
		if r := f.sendPartials(f.gk, c.p); !strings.Contains(event(r, c.event, "reason"), c.want) || len(f.topic(api.TopicArbitersAssigned)) != 0 {
			t.Errorf("%s: %v", c.name, r.Events)
		}
	}
	if a := f.arbitration(); len(a.Arbiters) != 0 {
		t.Fatalf("arbiters %v", a.Arbiters)
	}
	p := f.arbiterPartials(h1, f.a2)
	if r := f.sendPartials(f.gk, p); event(r, "key_round_complete", "members") != "1" || event(r, "arbiter_assigned", "worker") != f.a2.identity.Public().Hex() || event(r, "arbiter_assigned", "key_era") != "0" {
		t.Fatalf("arbiter round: %v", r.Events)
	}
	ps := f.topic(api.TopicArbitersAssigned)
	if len(ps) != 1 {
		t.Fatal("no ArbitersAssigned")
	}
	want := &api.ContractKeyGrant{Upload: f.upload, Identity: f.contract.Public(), Ecdh: f.contract.Public(), Era: 0, Epoch: 0, Round: p.Round(), Workers: keysOf(f.a2)}
	as, err := api.DecodeArbitersAssigned(ps[0])
	if err != nil || len(as.Arbiters) != 1 || as.Arbiters[0] != f.a2.identity.Public() || !bytes.Equal(as.Grant, want.Encode()) {
		t.Fatalf("assigned %+v %v", as, err)
	}
	if f.keyRound(p.Round()) != nil {
		t.Fatal("the accepted arbiter round is kept")
	}
	if r := f.arbiters(h1, f.a1); !strings.Contains(event(r, "key_partials_ignored", "reason"), "already assigned") {
		t.Fatalf("second round: %v", r.Events)
	}
	if a := f.arbitration(); len(a.Arbiters) != 1 || a.Arbiters[0] != f.a2.identity.Public() {
		t.Fatalf("arbiters %v", a.Arbiters)
	}
	// One arbiter of one is a majority.
	f.vote(f.a2, h1, api.EmptyStateRoot, [32]byte{1})
	if v := f.verdict(); v.Outcome != api.ArbitrationUpheld {
		t.Fatalf("verdict %+v", v)
	}
}

// Two updates of a contract accepted in one block: a dispute of the
// second names the checkpoint before the first (the one whose entries
// the state before that block holds), and an overturn undoes both (the
// arbiters replayed both from there).
func TestArbitrationSameBlockUpdates(t *testing.T) {
	f := newArbFixture(t, nil)
	r1, r2, r3 := [32]byte{1}, [32]byte{2}, [32]byte{3}
	h1 := f.update(api.EmptyStateRoot, r1, 1, api.StateChange{Location: [32]byte{1}, Value: val(1)})
	before := f.snapshot()
	f.block()
	h2, h3 := f.height-1, f.height
	u2 := &api.StateUpdate{Height: h2, Seq: 2, PrevRoot: r1, NewRoot: r2, Changes: []api.StateChange{{Location: [32]byte{2}, Value: val(2)}}}
	u3 := &api.StateUpdate{Height: h3, Seq: 3, PrevRoot: r2, NewRoot: r3, Changes: []api.StateChange{{Location: [32]byte{1}}}}
	n := f.nonce(alice)
	f.ok(f.block(f.pushN(n, f.contract, api.OriginContract, api.TopicContractState, u2.Encode()), f.pushN(n+1, f.contract, api.OriginContract, api.TopicContractState, u3.Encode())))
	accepted := f.height
	if cp, _ := api.DecodeCheckpoint(f.query(api.QueryCheckpoint, f.contract.Public().Bytes(), false).Value); cp == nil || cp.Root != r3 {
		t.Fatalf("checkpoint %+v", cp)
	}
	if r := f.request(alice, h3); r.Code != 0 {
		t.Fatal(r.Log)
	}
	o, err := api.DecodeArbitrationOpened(f.topic(api.TopicArbitrationOpened)[0])
	if err != nil || o.Height != h3 || o.Root != r3 || o.PrevHeight != h1 || o.PrevRoot != r1 || o.EntriesHeight != accepted-1 {
		t.Fatalf("opened %+v %v (h1 %d, accepted %d)", o, err, h1, accepted)
	}
	f.arbiters(h3, f.a1)
	f.vote(f.a1, h3, r1, [32]byte{8})
	if v := f.verdict(); v.Outcome != api.ArbitrationOverturned || v.RollbackHeight != h1 || v.RollbackRoot != r1 {
		t.Fatalf("verdict %+v", v)
	}
	if f.snapshot() != before {
		t.Fatal("not rolled back to the checkpoint before the block")
	}
}

// A vote computed from another previous root is no evidence: the liar's
// wrong update at h2 is accepted, its next at h3 builds on it; the honest
// replica votes h3 from its own (true) previous root. A dispute of h3 that
// the arbiters uphold (they replay from the chain's checkpoint, the
// liar's) slashes nobody.
func TestArbitrationVoteFromAnotherRoot(t *testing.T) {
	f := newArbFixture(t, nil)
	r1, r2, r3, t2, t3 := [32]byte{1}, [32]byte{2}, [32]byte{3}, [32]byte{0xe2}, [32]byte{0xe3}
	h1 := f.update(api.EmptyStateRoot, r1, 1, api.StateChange{Location: [32]byte{1}, Value: val(1)})
	f.vote(f.w1, h1, api.EmptyStateRoot, r1)
	f.vote(f.w2, h1, api.EmptyStateRoot, r1)
	h2 := f.update(r1, r2, 2, api.StateChange{Location: [32]byte{2}, Value: val(2)})
	f.vote(f.w1, h2, r1, r2)
	h3 := f.update(r2, r3, 3, api.StateChange{Location: [32]byte{3}, Value: val(3)})
	f.vote(f.w1, h3, r2, r3)
	f.vote(f.w2, h3, t2, t3) // from its true root after h2
	if f.arbitration() != nil {
		t.Fatal("a vote from another root opened a dispute")
	}
	if r := f.request(bob, h3); r.Code != 0 {
		t.Fatal(r.Log)
	}
	f.arbiters(h3, f.a1)
	stake2 := f.nodeStake(f.w2)
	f.vote(f.a1, h3, r2, r3)
	if v := f.verdict(); v.Outcome != api.ArbitrationUpheld || len(v.Slashed) != 0 {
		t.Fatalf("verdict %+v", v)
	}
	if f.nodeStake(f.w2) != stake2 || len(f.record().Workers) != 2 {
		t.Fatalf("honest replica slashed or removed: stake %d (was %d), workers %v", f.nodeStake(f.w2), stake2, f.record().Workers)
	}
}

// An overturn removes every replica that did not vouch for the
// arbiters' root from the update's previous root: the one that voted
// nothing (the update is signed by the contract's key: only votes
// attribute it) is removed but neither slashed nor excluded; the one that
// voted the arbiters' root stays.
func TestArbitrationOverturnRemovesSilentReplicas(t *testing.T) {
	f := newArbFixture(t, nil)
	r1, truth := [32]byte{1}, [32]byte{0xee}
	h1 := f.update(api.EmptyStateRoot, r1, 1, api.StateChange{Location: [32]byte{1}, Value: val(1)})
	if r := f.request(alice, h1); r.Code != 0 {
		t.Fatal(r.Log)
	}
	f.vote(f.w2, h1, api.EmptyStateRoot, truth)
	f.arbiters(h1, f.a1)
	stake1 := f.nodeStake(f.w1)
	f.vote(f.a1, h1, api.EmptyStateRoot, truth)
	v := f.verdict()
	if v.Outcome != api.ArbitrationOverturned || len(v.Slashed) != 0 || v.ResumeSeq == 0 {
		t.Fatalf("verdict %+v", v)
	}
	rec := f.record()
	if len(rec.Workers) != 1 || rec.Workers[0] != f.w2.identity.Public() || slices.Contains(rec.Excluded, f.w1.identity.Public()) {
		t.Fatalf("workers %v excluded %v", rec.Workers, rec.Excluded)
	}
	if f.nodeStake(f.w1) != stake1 {
		t.Fatalf("the silent replica was slashed: %d, was %d", f.nodeStake(f.w1), stake1)
	}
	var removed bool
	for _, p := range f.topic(api.TopicContractDeployed) {
		d, err := api.DecodeContractDeployed(p)
		removed = removed || (err == nil && d.Reason == api.RemovedByArbitration && len(d.Removed) == 1 && d.Removed[0] == f.w1.identity.Public())
	}
	if !removed {
		t.Fatal("no ContractDeployed removing the silent replica")
	}
}

// Disputes the chain opens by itself, and take-overs: a request of an
// earlier update than the open dispute's expires it (its bond returned)
// and opens its own; a replica's vote contradicting an accepted update
// (same previous root, another root) opens a dispute without requester
// or bond, taking over a later one too; so does a contradicting vote
// that reached the chain before the update.
func TestArbitrationAutomaticAndTakeover(t *testing.T) {
	f := newArbFixture(t, nil)
	r1, r2, r3 := [32]byte{1}, [32]byte{2}, [32]byte{3}
	h1 := f.update(api.EmptyStateRoot, r1, 1, api.StateChange{Location: [32]byte{1}, Value: val(1)})
	h2 := f.update(r1, r2, 2, api.StateChange{Location: [32]byte{2}, Value: val(2)})
	h3 := f.update(r2, r3, 3, api.StateChange{Location: [32]byte{3}, Value: val(3)})
	fee := api.DefaultParams().MinFee(2048)
	opened := func(height int64, requester crypto.PublicKey) {
		t.Helper()
		ps := f.topic(api.TopicArbitrationOpened)
		if len(ps) != 1 {
			t.Fatalf("%d ArbitrationOpened", len(ps))
		}
		o, err := api.DecodeArbitrationOpened(ps[0])
		if err != nil || o.Height != height || o.Requester != requester {
			t.Fatalf("opened %+v %v, want height %d", o, err, height)
		}
	}
	expired := func(height int64) {
		t.Helper()
		if v := f.verdict(); v.Outcome != api.ArbitrationExpired || v.Height != height || v.ResumeSeq != 0 {
			t.Fatalf("verdict %+v, want the dispute of %d expired", v, height)
		}
	}
	before := f.account(bob.Public()).Balance
	if r := f.request(bob, h3); r.Code != 0 {
		t.Fatal(r.Log)
	}
	// A vote contradicting a later update than the open dispute's does
	// not take over; neither does a request of a later or the same height.
	f.vote(f.w2, h3, r2, [32]byte{0xe3})
	if a := f.arbitration(); a == nil || a.Height != h3 || len(f.topic(api.TopicArbitrationOpened)) != 0 {
		t.Fatalf("dispute %+v", a)
	}
	if r := f.request(alice, h3); !strings.Contains(r.Log, "already open") {
		t.Fatalf("same height: %s", r.Log)
	}
	// Alice disputes an earlier update: Bob's dispute expires, his bond returns.
	if r := f.request(alice, h2); r.Code != 0 {
		t.Fatal(r.Log)
	}
	expired(h3)
	opened(h2, alice.Public())
	if got := f.account(bob.Public()).Balance; got != before-fee {
		t.Fatalf("bob's balance %d, want %d", got, before-fee)
	}
	// A replica's vote contradicting the first update opens its dispute.
	f.vote(f.w2, h1, api.EmptyStateRoot, [32]byte{0xe1})
	expired(h2)
	opened(h1, crypto.PublicKey{})
	if a := f.arbitration(); a == nil || a.Height != h1 || a.Bond != 0 || a.Requester != (crypto.PublicKey{}) {
		t.Fatalf("dispute %+v", a)
	}

	// A contradicting vote that reached the chain before its update.
	g := newArbFixture(t, nil)
	h := g.height
	g.vote(g.w2, h, api.EmptyStateRoot, [32]byte{0xe1})
	if g.arbitration() != nil {
		t.Fatal("a dispute before the update")
	}
	g.updateAt(h, api.EmptyStateRoot, r1, 1, api.StateChange{Location: [32]byte{1}, Value: val(1)})
	if a := g.arbitration(); a == nil || a.Height != h || a.Root != r1 || len(g.topic(api.TopicArbitrationOpened)) != 1 {
		t.Fatalf("dispute %+v", a)
	}
}

// Votes are accepted only for a height with a disputable update, or
// early (before the update reaches the chain) up to twice the contract's
// checkpoint interval after its checkpoint: a worker cannot fill the
// state with votes for arbitrary heights. A worker's first vote for a
// height stands.
func TestStateVoteBounds(t *testing.T) {
	f := newArbFixture(t, nil)
	limit := int64(2 * api.DefaultCheckpointInterval) // the checkpoint is at 0
	for f.height <= limit+1 {
		f.block()
	}
	for _, c := range []struct {
		height int64
		want   string
	}{
		{limit + 1, "no disputable update"},
		{-1, "no disputable update"}, // this very block (set below)
		{limit, ""},
		{limit, "already voted"},
	} {
		if c.height < 0 {
			c.height = f.height + 1
		}
		r := f.vote(f.w1, c.height, api.EmptyStateRoot, [32]byte{1})
		if got := event(r, "state_vote_ignored", "reason"); (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("vote for %d: ignored %q, want %q", c.height, got, c.want)
		}
	}
}
