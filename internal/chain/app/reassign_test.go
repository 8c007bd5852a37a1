package app

import (
	"crypto/sha256"
	"slices"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/attestation"
	"github.com/phalago/phala/internal/chain/contracts"
)

// replicaChain is a chain with a gatekeeper and workers registered (Bob
// their operator) and, when min_worker_stake is not 0, each worker backed
// by Alice with exactly min_worker_stake.
type replicaChain struct {
	t       *testing.T
	h       *harness
	gk      *worker
	ws      []*worker
	uploads uint64 // Alice's accepted uploads
}

// deployment is one of Alice's uploads and the keys its grants carry.
type deployment struct {
	upload   [32]byte
	contract *crypto.KeyPair
	statuses uint64 // the contract's egress sequence
}

var replicaCode = []byte("\x00asm\x01\x00\x00\x00")

// newReplicaChain registers the gatekeeper gk (g's) and n workers at
// height 2 on h, a chain of genesis g, and has gk announce the MasterKey
// (height 3); register (nil: the default) makes a worker's registration.
func newReplicaChain(t *testing.T, g *api.GenesisState, h *harness, gk *worker, n int, register func(h *harness, w *worker) *api.RegisterWorker) *replicaChain {
	t.Helper()
	c := &replicaChain{t: t, h: h, gk: gk}
	if register == nil {
		register = func(h *harness, w *worker) *api.RegisterWorker { return h.register(h.cite(w.info)) }
	}
	h.block()
	txs := [][]byte{h.tx(bob, 0, h.register(h.cite(c.gk.info)))}
	for i := 0; i < n; i++ {
		w := newWorker(t)
		c.ws = append(c.ws, w)
		txs = append(txs, h.tx(bob, uint64(i+1), register(h, w)))
	}
	mustOK(t, h.block(txs...))
	h.announceMasterKey(gk)
	if stake := g.Params.MinWorkerStake; stake > 0 {
		txs = [][]byte{h.tx(alice, h.nonce(alice), &api.StakeBond{Amount: uint64(n) * stake})}
		for i, w := range c.ws {
			txs = append(txs, h.tx(alice, h.nonce(alice)+uint64(i+1), &api.StakeAllocate{Node: w.identity.Public(), Amount: stake}))
		}
		mustOK(t, h.block(txs...))
	}
	return c
}

// startReplicaChain is newReplicaChain on a fresh unit harness of g.
func startReplicaChain(t *testing.T, g *api.GenesisState, n int) *replicaChain {
	t.Helper()
	gk := newWorker(t)
	g.Gatekeepers = []crypto.PublicKey{gk.identity.Public()}
	return newReplicaChain(t, g, newHarness(t, g), gk, n, nil)
}

// upload is Alice's upload asking replicas.
func (c *replicaChain) upload(replicas uint8) *deployment {
	c.t.Helper()
	h := c.h
	mustOK(c.t, h.block(h.tx(alice, h.nonce(alice), &api.UploadContract{Code: gzipped(c.t, replicaCode), Replicas: replicas})))
	kp, _, err := crypto.GenerateKeyPair()
	if err != nil {
		c.t.Fatal(err)
	}
	d := &deployment{upload: api.UploadID(alice.Public(), sha256.Sum256(replicaCode), c.uploads), contract: kp}
	c.uploads++
	return d
}

// grant is the key set's provisioning of d's keys to ws (provision: the
// gatekeeper's partials and, for the first deployment, ws[0]'s report);
// it returns the result of the push in which the chain took or ignored
// the grant.
func (c *replicaChain) grant(d *deployment, ws ...*worker) *abci.ExecTxResult {
	c.t.Helper()
	return c.h.provision(c.gk, d.upload, d.contract.Public(), d.contract.Public(), ws...)
}

// record is d's contract record (nil before its deployment).
func (c *replicaChain) record(d *deployment) *api.ContractRecord {
	c.t.Helper()
	v := c.h.query(api.QueryContract, d.contract.Public().Bytes(), false).Value
	if v == nil {
		return nil
	}
	rec, err := api.DecodeContractRecord(v)
	if err != nil {
		c.t.Fatal(err)
	}
	return rec
}

// workersAre fails unless d's record names exactly ws, in order.
func (c *replicaChain) workersAre(d *deployment, ws ...*worker) {
	c.t.Helper()
	rec := c.record(d)
	if rec == nil {
		c.t.Fatal("contract not deployed")
	}
	want := keysOf(ws...)
	if !slices.Equal(rec.Workers, want) {
		c.t.Fatalf("at height %d the contract's workers are %s, want %s", c.h.height, shorts(rec.Workers), shorts(want))
	}
}

func keysOf(ws ...*worker) []crypto.PublicKey {
	out := make([]crypto.PublicKey, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.identity.Public())
	}
	return out
}

func shorts(ks []crypto.PublicKey) string {
	var s []string
	for _, k := range ks {
		s = append(s, k.Short())
	}
	return "[" + strings.Join(s, " ") + "]"
}

// announced returns the ContractDeployed messages of the last block.
func (c *replicaChain) announced() []*api.ContractDeployed {
	c.t.Helper()
	var out []*api.ContractDeployed
	for _, m := range c.h.messages(c.h.height).Messages {
		if m.Topic != api.TopicContractDeployed {
			continue
		}
		if m.Origin != api.ModuleOrigin("contracts") {
			c.t.Fatalf("%s from %v", m.Topic, m.Origin)
		}
		d, err := api.DecodeContractDeployed(m.Payload)
		if err != nil {
			c.t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// toCheck runs empty blocks up to the next replica check (a height that
// is a multiple of contracts.ReplicaCheckInterval) and returns its result;
// the blocks before it must announce nothing.
func (c *replicaChain) toCheck() *abci.ResponseFinalizeBlock {
	c.t.Helper()
	for {
		res := c.h.block()
		if c.h.height%contracts.ReplicaCheckInterval == 0 {
			return res
		}
		if a := c.announced(); len(a) != 0 {
			c.t.Fatalf("block %d, not a replica check, announced %+v", c.h.height, a[0])
		}
	}
}

// blockEvents returns the attribute key of the block-level events of type
// typ, in order.
func blockEvents(res *abci.ResponseFinalizeBlock, typ, key string) []string {
	var out []string
	for _, ev := range res.Events {
		if ev.Type != typ {
			continue
		}
		for _, a := range ev.Attributes {
			if a.Key == key {
				out = append(out, a.Value)
			}
		}
	}
	return out
}

// removedAt checks the replica check's result res: d's record lost
// exactly gone (an event each, with reason), one ContractDeployed for d
// names them as Removed with reason, and the record keeps kept.
func (c *replicaChain) removedAt(res *abci.ResponseFinalizeBlock, d *deployment, reason string, gone []*worker, kept ...*worker) {
	c.t.Helper()
	c.workersAre(d, kept...)
	if got, want := blockEvents(res, "contract_worker_removed", "worker"), hexes(keysOf(gone...)); !slices.Equal(got, want) {
		c.t.Fatalf("removed events name %v, want %v", got, want)
	}
	for _, why := range blockEvents(res, "contract_worker_removed", "reason") {
		if why != reason {
			c.t.Fatalf("removal reason %q, want %q", why, reason)
		}
	}
	var mine []*api.ContractDeployed
	for _, a := range c.announced() {
		if a.Contract == d.contract.Public() {
			mine = append(mine, a)
		}
	}
	if len(mine) != 1 {
		c.t.Fatalf("%d ContractDeployed for the contract in the check block, want 1", len(mine))
	}
	a := mine[0]
	if a.Reason != reason || !slices.Equal(a.Removed, keysOf(gone...)) || !slices.Equal(a.Workers, keysOf(kept...)) || len(a.Grant) != 0 || a.Upload != d.upload {
		c.t.Fatalf("announced %s removed %s workers %s grant %d bytes; want %q removed %s workers %s",
			a.Reason, shorts(a.Removed), shorts(a.Workers), len(a.Grant), reason, shorts(keysOf(gone...)), shorts(keysOf(kept...)))
	}
}

func hexes(ks []crypto.PublicKey) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.Hex())
	}
	return out
}

// fail makes d's contract report that it failed to start (its own signed
// status message).
func (c *replicaChain) fail(d *deployment) {
	c.t.Helper()
	rep := &api.ContractStatusReport{Status: api.ContractFailed, Reason: "init trapped"}
	m := api.SignMessage(chainID, api.Message{Origin: api.KeyOrigin(api.OriginContract, d.contract.Public()), Topic: api.TopicContractStatus, Seq: d.statuses, Payload: rep.Encode()}, d.contract)
	d.statuses++
	mustOK(c.t, c.h.block(c.h.tx(alice, c.h.nonce(alice), &api.PushMessage{Message: m})))
	if rec := c.record(d); rec.Status != api.ContractFailed {
		c.t.Fatalf("status %v after the failure report", rec.Status)
	}
}

// An expired registration: at the first replica check after it, the
// worker leaves every contract that has not failed (event, record,
// ContractDeployed with Removed and RemovedExpired); a worker that renewed
// stays; a failed contract keeps its workers.
func TestReplicaRemovedExpired(t *testing.T) {
	g := genesis()
	g.Params.RegistrationLifetime = 35
	c := startReplicaChain(t, g, 2)
	w1, w2 := c.ws[0], c.ws[1]
	live, failed := c.upload(2), c.upload(1)
	c.grant(live, w1, w2)
	c.grant(failed, w1)
	c.fail(failed)
	// w2 renews (expiring at 44); w1 (registered at height 2) expires at 37.
	mustOK(t, c.h.block(c.h.tx(bob, c.h.nonce(bob), c.h.register(c.h.cite(w2.info)))))
	if c.h.height >= 20 {
		t.Fatalf("setup took %d blocks", c.h.height)
	}
	for c.h.height < 30 {
		c.toCheck() // 30 included: w1 still registered
		c.workersAre(live, w1, w2)
	}
	res := c.toCheck() // 40
	c.removedAt(res, live, api.RemovedExpired, []*worker{w1}, w2)
	c.workersAre(failed, w1)
	// w2's renewal expires at 44: the check at 50 removes it (w1 is gone
	// already, so named once), and the contract runs nowhere, waiting
	// for a grant of the key set.
	res = c.toCheck()
	c.removedAt(res, live, api.RemovedExpired, []*worker{w2})
	c.workersAre(failed, w1)
}

// A measurement revoked by governance: its workers leave their contracts
// at the next replica check (RemovedExpired); a worker attested with
// another allowed measurement stays.
func TestReplicaRemovedRevokedMeasurement(t *testing.T) {
	other := [32]byte{7, 7, 7}
	g := govGenesis()
	g.Governance.Threshold = 1
	g.Attestation.Measurements = append(g.Attestation.Measurements, other[:])
	gk := newWorker(t)
	g.Gatekeepers = []crypto.PublicKey{gk.identity.Public()}
	h := newGovHarness(t, g)
	n := 0
	c := newReplicaChain(t, g, h, gk, 2, func(h *harness, w *worker) *api.RegisterWorker {
		n++
		if n == 2 { // the second worker runs the other measurement
			info := h.cite(w.info)
			return &api.RegisterWorker{Info: info, Report: *attestation.SignSimQuote(devAt, other, info.ReportData(), h.now)}
		}
		return h.register(h.cite(w.info))
	})
	w1, w2 := c.ws[0], c.ws[1]
	d := c.upload(2)
	c.grant(d, w1, w2)
	mustOK(t, h.block(h.tx(alice, h.nonce(alice), &api.GovPropose{Action: api.Action{Kind: api.ActionRevokeMeasurement, Measurement: measurement[:]}})))
	if m := h.motion(0); m.Status != api.MotionEnacted {
		t.Fatalf("motion %+v", m)
	}
	c.workersAre(d, w1, w2) // removal waits for the check
	res := c.toCheck()
	c.removedAt(res, d, api.RemovedExpired, []*worker{w1}, w2)
}

// Stake below min_worker_stake: the worker leaves its contracts at the
// next replica check (RemovedStake); a grant (a completed round) naming it is
// ignored with the stake in PHA and units.
func TestReplicaRemovedStake(t *testing.T) {
	g := genesis()
	c := startReplicaChain(t, g, 2)
	w1, w2 := c.ws[0], c.ws[1]
	d := c.upload(2)
	c.grant(d, w1, w2)
	mustOK(t, c.h.block(c.h.tx(alice, c.h.nonce(alice), &api.StakeUnbond{Node: w1.identity.Public(), Amount: 1})))
	c.workersAre(d, w1, w2)
	res := c.toCheck()
	c.removedAt(res, d, api.RemovedStake, []*worker{w1}, w2)
	r := c.grant(d, w1)
	want := "stake " + api.FormatAmountUnits(g.Params.MinWorkerStake-1) + ", below min_worker_stake " + api.FormatAmountUnits(g.Params.MinWorkerStake)
	if why := event(r, "contract_grant_ignored", "reason"); !strings.Contains(why, want) {
		t.Fatalf("grant to an understaked worker: %q, want it to say %q", why, want)
	}
	c.workersAre(d, w2)
}

// Found unresponsive at an era's end (no heartbeat answered while another
// node answered all): the worker leaves its contracts at the first
// replica check of the next era (RemovedUnresponsive), not before.
func TestReplicaRemovedUnresponsive(t *testing.T) {
	g := genesis()
	g.Params.EraLength = 20
	g.Params.HeartbeatsPerEra = 20 // every node, every block
	g.Params.HeartbeatWindow = 2
	g.Params.MinWorkerStake = 0 // no slash takes the stake under it first
	c := startReplicaChain(t, g, 2)
	h := c.h
	w1, w2 := c.ws[0], c.ws[1]
	d := c.upload(2)
	c.grant(d, w1, w2)
	beat := func(w *worker, height int64) []byte {
		hb := &api.Heartbeat{Height: height, Seed: blockHash(height - 1)}
		return h.tx(bob, h.nonce(bob), h.signed(w.identity, api.OriginWorker, api.TopicHeartbeat, hb.Encode()))
	}
	// Era 1 (blocks 21..40): w2 answers every challenge, w1 none.
	for h.height < 2*int64(g.Params.EraLength) {
		cur := h.height
		var res *abci.ResponseFinalizeBlock
		if cur > int64(g.Params.EraLength) {
			res = h.block(beat(w2, cur))
		} else {
			res = h.block()
		}
		mustOK(t, res)
		if h.height%contracts.ReplicaCheckInterval == 0 {
			c.workersAre(d, w1, w2)
		}
	}
	r, err := api.DecodeEraReport(h.query(api.QueryEraReport, []byte{0, 0, 0, 0, 0, 0, 0, 1}, false).Value)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range r.Nodes {
		if v.Node == w1.identity.Public() && !v.Unresponsive || v.Node == w2.identity.Public() && v.Unresponsive {
			t.Fatalf("era 1 verdicts %+v", r.Nodes)
		}
	}
	res := c.toCheck() // 50
	c.removedAt(res, d, api.RemovedUnresponsive, []*worker{w1}, w2)
}

// Grants after the deployment (completed rounds of partials) add workers
// only while they fit in the replicas and are eligible; a grant is ignored
// whole when it names too many, a worker already running the contract,
// one the deployer excluded or an ineligible one; a worker's report of
// other keys than the contract's is a contract_key_mismatch. The deployer's reassign removes a
// worker at once and excludes it; others' reassigns, and reassigns of a
// worker not running the contract, fail and change nothing.
func TestGrantReplicasAndReassign(t *testing.T) {
	g := genesis()
	c := startReplicaChain(t, g, 4)
	h := c.h
	w1, w2, w3, w4 := c.ws[0], c.ws[1], c.ws[2], c.ws[3]
	d := c.upload(2)
	ignored := func(r *abci.ExecTxResult, want string) {
		t.Helper()
		if why := event(r, "contract_grant_ignored", "reason"); !strings.Contains(why, want) {
			t.Fatalf("grant ignored for %q, want %q", why, want)
		}
		if a := c.announced(); len(a) != 0 {
			t.Fatalf("an ignored grant announced %+v", a[0])
		}
	}
	c.grant(d, w1) // deploys on one of two replicas
	if a := c.announced(); len(a) != 1 || a[0].Reason != api.DeployedFirst || !slices.Equal(a[0].Added(), keysOf(w1)) || !slices.Equal(a[0].Workers, keysOf(w1)) {
		t.Fatalf("deployment announced %+v", a)
	}
	ignored(c.grant(d, w2, w3), "2 worker(s) granted, the contract has 1 of its 2 replicas")
	ignored(c.grant(d, w1), "already runs the contract")
	// A worker's report of other keys than the deployed contract's says
	// so and changes nothing.
	other, _, _ := crypto.GenerateKeyPair()
	if r := h.reportKeys(w1, [32]byte{}, d.upload, other.Public(), other.Public()); event(r, "contract_key_mismatch", "worker") != w1.identity.Public().Hex() {
		t.Fatalf("report of other keys: %v", r.Events)
	}
	mustOK(t, h.block(h.tx(alice, h.nonce(alice), &api.StakeUnbond{Node: w4.identity.Public(), Amount: 1})))
	ignored(c.grant(d, w4), "below min_worker_stake")
	c.workersAre(d, w1)

	c.grant(d, w2) // the second replica
	if a := c.announced(); len(a) != 1 || a[0].Reason != api.DeployedAdded || !slices.Equal(a[0].Added(), keysOf(w2)) || !slices.Equal(a[0].Workers, keysOf(w1, w2)) || len(a[0].Removed) != 0 {
		t.Fatalf("replica added: announced %+v", a)
	}
	c.workersAre(d, w1, w2)
	ignored(c.grant(d, w3), "1 worker(s) granted, the contract has 2 of its 2 replicas")

	reassign := func(key *crypto.KeyPair, w *worker) *abci.ExecTxResult {
		return h.block(h.tx(key, h.nonce(key), &api.ContractReassign{Contract: d.contract.Public(), Worker: w.identity.Public()})).TxResults[0]
	}
	for _, tc := range []struct {
		name string
		key  *crypto.KeyPair
		w    *worker
		want string
	}{
		{"not the deployer", bob, w1, "only the contract's deployer"},
		{"worker not running it", alice, w3, "does not run contract"},
	} {
		r := reassign(tc.key, tc.w)
		if api.Code(r.Code) != api.CodeInvalidCall || !strings.Contains(r.Log, tc.want) {
			t.Fatalf("%s: %s %q", tc.name, api.Code(r.Code), r.Log)
		}
		if a := c.announced(); len(a) != 0 {
			t.Fatalf("%s: announced %+v", tc.name, a[0])
		}
		c.workersAre(d, w1, w2)
	}
	r := reassign(alice, w1)
	if r.Code != 0 {
		t.Fatal(r.Log)
	}
	if event(r, "contract_worker_removed", "worker") != w1.identity.Public().Hex() || event(r, "contract_worker_removed", "reason") != api.RemovedByDeployer {
		t.Fatalf("reassign events %v", r.Events)
	}
	if a := c.announced(); len(a) != 1 || a[0].Reason != api.RemovedByDeployer || !slices.Equal(a[0].Removed, keysOf(w1)) || !slices.Equal(a[0].Workers, keysOf(w2)) {
		t.Fatalf("reassign announced %+v", a)
	}
	c.workersAre(d, w2)
	if rec := c.record(d); !slices.Equal(rec.Excluded, keysOf(w1)) {
		t.Fatalf("excluded %s", shorts(rec.Excluded))
	}
	ignored(c.grant(d, w1), "excluded by the contract's deployer")
	c.grant(d, w3) // the replacement
	c.workersAre(d, w2, w3)
}
