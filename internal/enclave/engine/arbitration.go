package engine

// State update arbitration, pRuntime's side (docs/availability.md,
// "Arbitration"). Every replica vouches for each update it cuts with its
// own identity (api.StateVote). Every pRuntime keeps, per contract, the
// checkpoints a dispute may roll back to and the input heights since the
// oldest, follows disputes and verdicts, and after an overturn rolls its
// followed checkpoint back: the contract's replicas then rebuild it from
// there like a recovering worker. An arbiter (a worker a gatekeeper sealed
// the contract key to for one dispute) rebuilds the contract at the
// checkpoint before the disputed update, replays the inputs the update
// covers and votes the root it computes.

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/contracts"
)

// histEntry is a checkpoint a dispute may roll a contract back to: the
// checkpoint, what is kept of its update besides, and the height that
// accepted the update that superseded it.
type histEntry struct {
	cp           api.Checkpoint
	meta         cpMeta
	supersededAt int64
}

// dispute is an open arbitration of a contract's update.
type dispute struct {
	height, prevHeight, entriesHeight int64
	root, prevRoot                    [32]byte
	assigned                          bool // the chain accepted its arbiters
}

// cutHook, when set, may alter an update the worker with identity
// worker cuts for contract id before it is signed (its root and vote
// follow). It is nil in every build: only tests set it (a worker made to
// lie, for arbitration tests).
var cutHook func(worker, id crypto.PublicKey, u *api.StateUpdate, st *contracts.Store)

// vote pushes this worker's api.StateVote for contract id's update at
// height from prev to root (when arbitration is on).
func (e *Engine) vote(id crypto.PublicKey, height int64, prev, root [32]byte) {
	if e.st.params.ArbitrationWindow == 0 {
		return
	}
	e.emit(api.OriginWorker, api.TopicStateVote, (&api.StateVote{Contract: id, Height: height, PrevRoot: prev, Root: root}).Encode())
}

// accepted records contract id's update accepted at height: the
// checkpoint it supersedes goes to the history, which keeps what a
// dispute within the arbitration window may roll back to (everything
// while a dispute is open), and the input heights since the oldest kept
// checkpoint.
func (e *Engine) accepted(height int64, id crypto.PublicKey, cp api.Checkpoint, meta cpMeta) {
	d := e.st.deployed[id]
	prev, ok := e.st.checkpoints[id]
	if !ok {
		prev = api.Checkpoint{Root: api.EmptyStateRoot}
	}
	e.st.checkpoints[id] = cp
	pm := e.st.cpMeta[id]
	e.st.cpMeta[id] = meta
	if d == nil {
		e.dropInputs(id, cp.Height+1)
		return
	}
	d.noCutUntil = 0
	d.hist = append(d.hist, histEntry{cp: prev, meta: pm, supersededAt: height})
	if d.dispute == nil {
		w := int64(e.st.params.ArbitrationWindow)
		i := 0
		for i < len(d.hist) && d.hist[i].supersededAt < height-w {
			i++
		}
		if w == 0 {
			i = len(d.hist)
		}
		d.hist = slices.Clone(d.hist[i:])
	}
	oldest := cp.Height
	if len(d.hist) > 0 {
		oldest = d.hist[0].cp.Height
	}
	e.dropInputs(id, oldest+1)
}

// onArbitrationOpened (every pRuntime) follows a dispute; a gatekeeper
// assigns its arbiters.
func (e *Engine) onArbitrationOpened(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin("contracts") {
		return fmt.Errorf("arbitration from %s", m.Origin)
	}
	o, err := api.DecodeArbitrationOpened(m.Payload)
	if err != nil {
		return err
	}
	d := e.st.deployed[o.Contract]
	if d == nil {
		return fmt.Errorf("arbitration of unknown contract %s", o.Contract.Short())
	}
	d.dispute = &dispute{height: o.Height, root: o.Root, prevHeight: o.PrevHeight, prevRoot: o.PrevRoot, entriesHeight: o.EntriesHeight}
	if e.gk != nil {
		e.gk.Arbiters(ctx.Height, e.gkUpload(d.upload, d), o.Contract, o.Height, int(e.st.params.Arbiters))
	}
	return nil
}

// onArbitersAssigned: an arbiter named opens its key and waits for its
// relayer to bring the rebuild's data (Info: a recovery need of purpose
// arbitration).
func (e *Engine) onArbitersAssigned(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin("contracts") {
		return fmt.Errorf("arbiters from %s", m.Origin)
	}
	a, err := api.DecodeArbitersAssigned(m.Payload)
	if err != nil {
		return err
	}
	if d := e.st.deployed[a.Contract]; d != nil && d.dispute != nil && d.dispute.height == a.Height {
		d.dispute.assigned = true
	}
	me := e.entity.Identity.Public()
	if !slices.Contains(a.Arbiters, me) {
		return nil
	}
	g, err := api.DecodeContractKeyGrant(a.Grant)
	if err != nil {
		return err
	}
	if !slices.Contains(g.Workers, me) {
		return nil
	}
	ck, err := e.takeRoundKey(g)
	if errors.Is(err, errNoRoundKey) {
		e.await(g.Round, awaitArbiter, a.Grant, a.Height)
		return nil
	}
	if err != nil {
		return err
	}
	e.st.arbitrating[a.Contract] = &heldKey{upload: g.Upload, seed: ck.Seed, height: a.Height}
	e.log.Info("assigned to arbitrate a disputed state update", "contract", a.Contract.Short(), "height", a.Height)
	return nil
}

// onVerdict (every pRuntime) closes a dispute. After an overturn the
// followed checkpoint is the rolled-back one, and a replica of the
// contract rebuilds it from there (it becomes recovering): its next
// update carries every change since, with that checkpoint's root as
// previous root.
func (e *Engine) onVerdict(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin("contracts") {
		return fmt.Errorf("verdict from %s", m.Origin)
	}
	v, err := api.DecodeArbitrationVerdict(m.Payload)
	if err != nil {
		return err
	}
	d := e.st.deployed[v.Contract]
	if d == nil {
		return nil
	}
	d.dispute = nil
	delete(e.st.arbitrating, v.Contract)
	if v.Outcome != api.ArbitrationOverturned {
		return nil
	}
	i := slices.IndexFunc(d.hist, func(h histEntry) bool { return h.cp.Height == v.RollbackHeight && h.cp.Root == v.RollbackRoot })
	if i < 0 {
		e.log.Error("the chain rolled a contract back to a checkpoint this pRuntime did not keep", "contract", v.Contract.Short(), "height", v.RollbackHeight)
		return nil
	}
	h := d.hist[i]
	if h.cp.Height == 0 {
		delete(e.st.checkpoints, v.Contract)
		delete(e.st.cpMeta, v.Contract)
	} else {
		e.st.checkpoints[v.Contract], e.st.cpMeta[v.Contract] = h.cp, h.meta
	}
	d.hist = slices.Clone(d.hist[:i])
	d.noCutUntil = ctx.Height
	// The chain moved the contract's message sequence past the wrong
	// history (its messages in flight are refused as stale).
	okey := string(api.KeyOrigin(api.OriginContract, v.Contract).Encode())
	if v.ResumeSeq > e.st.nextSeq[okey] {
		e.st.nextSeq[okey] = v.ResumeSeq
	}
	d.resumeSeq = e.st.nextSeq[okey]
	if r := e.running[v.Contract]; r != nil {
		seed := r.c.Keys().Seed
		delete(e.running, v.Contract)
		o := api.KeyOrigin(api.OriginContract, v.Contract)
		e.st.egress = slices.DeleteFunc(e.st.egress, func(s api.SignedMessage) bool { return s.Message.Origin == o })
		e.st.recovering[v.Contract] = &heldKey{upload: r.upload, seed: seed, height: ctx.Height}
		e.publish()
		e.log.Warn("a state update of this contract was overturned by arbitration: rebuilding it from the rolled-back checkpoint", "contract", v.Contract.Short(), "checkpoint_height", h.cp.Height)
	}
	return nil
}

// assignArbiters (a gatekeeper) retries the arbiters of the open
// disputes the chain has not accepted any for (none was eligible, or a
// round was refused), unless its own partials wait in its egress; called
// with grantWaiting.
func (e *Engine) assignArbiters(height int64) {
	if e.gk == nil {
		return
	}
	pending := map[crypto.PublicKey]bool{}
	for i := range e.st.egress {
		if m := &e.st.egress[i].Message; m.Topic == api.TopicKeyPartials {
			if p, err := api.DecodeKeyPartials(m.Payload); err == nil && p.Purpose == api.KeyForArbiters {
				pending[p.Contract] = true
			}
		}
	}
	ids := make([]crypto.PublicKey, 0)
	for id, d := range e.st.deployed {
		if d.dispute != nil && !d.dispute.assigned && !pending[id] {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b crypto.PublicKey) int { return bytes.Compare(a[:], b[:]) })
	for _, id := range ids {
		d := e.st.deployed[id]
		e.gk.Arbiters(height, e.gkUpload(d.upload, d), id, d.dispute.height, int(e.st.params.Arbiters))
	}
}

// arbitrationNeed is what this worker needs to arbitrate the dispute of
// contract id (ok false if it cannot: the dispute closed).
func (e *Engine) arbitrationNeed(id crypto.PublicKey) (api.RecoveryNeed, bool) {
	d := e.st.deployed[id]
	if d == nil || d.dispute == nil {
		return api.RecoveryNeed{}, false
	}
	ds := d.dispute
	var hs []int64
	for _, h := range e.inputsAfter(id, ds.prevHeight) {
		if h <= ds.height {
			hs = append(hs, h)
		}
	}
	entries := ds.entriesHeight
	if ds.prevHeight == 0 {
		entries = 0
	}
	return api.RecoveryNeed{Purpose: api.RecoverPurposeName(api.RecoverArbitration), Contract: id.Hex(), CheckpointHeight: ds.prevHeight, EntriesHeight: entries, Heights: hs}, true
}

// arbitrate (an arbiter) rebuilds the contract at the checkpoint before
// the disputed update from req, replays the inputs the update covers,
// votes the root it computed, and forgets the contract's key. What the
// replay emits is dropped: the replicas sent it.
func (e *Engine) arbitrate(req *api.RecoverRequest) (*RecoverResult, error) {
	id := req.Contract
	a, ok := e.st.arbitrating[id]
	if !ok {
		return nil, fmt.Errorf("%w %s (as arbiter)", ErrNotRecovering, id.Hex())
	}
	need, ok := e.arbitrationNeed(id)
	if !ok {
		delete(e.st.arbitrating, id)
		return nil, fmt.Errorf("%w %s: the dispute is closed", ErrNotRecovering, id.Hex())
	}
	d := e.st.deployed[id]
	cp := api.Checkpoint{Root: api.EmptyStateRoot}
	if need.CheckpointHeight > 0 {
		i := slices.IndexFunc(d.hist, func(h histEntry) bool {
			return h.cp.Height == d.dispute.prevHeight && h.cp.Root == d.dispute.prevRoot
		})
		if i < 0 {
			return nil, fmt.Errorf("%w: the checkpoint before the disputed update (height %d) is not kept here", ErrBadInput, d.dispute.prevHeight)
		}
		cp = d.hist[i].cp
	}
	r, err := e.rebuild(id, a.upload, a.seed, cp, req, need.Heights)
	if err != nil {
		return nil, err
	}
	// The replay's messages are the replicas' (sent long ago): numbered
	// as theirs were, then dropped with everything it changed.
	egress, seqs := slices.Clone(e.st.egress), cloneSeqs(e.st.egressSeq)
	o := api.KeyOrigin(api.OriginContract, id)
	e.st.egress = slices.DeleteFunc(e.st.egress, func(s api.SignedMessage) bool { return s.Message.Origin == o })
	e.st.egressSeq[string(o.Encode())] = 0
	if i := slices.IndexFunc(d.hist, func(h histEntry) bool { return h.cp == cp }); i >= 0 {
		e.st.egressSeq[string(o.Encode())] = d.hist[i].meta.egressSeq
	}
	err = e.replay(id, r, req.Blocks, cp.Height > 0, cp.Height, d.dispute.height, d.dispute.height)
	e.st.egress, e.st.egressSeq = egress, seqs
	clear(e.toAck)
	if err != nil {
		return nil, err
	}
	root := r.c.StateRoot()
	delete(e.st.arbitrating, id)
	e.emit(api.OriginWorker, api.TopicStateVote, (&api.StateVote{Contract: id, Height: d.dispute.height, PrevRoot: cp.Root, Root: root}).Encode())
	res := &RecoverResult{Entries: len(req.Entries), Replayed: len(req.Blocks), Root: root}
	if err := e.checkpoint(); err != nil {
		return res, err
	}
	e.log.Info("arbitration vote cast", "contract", id.Short(), "height", d.dispute.height, "agrees", root == d.dispute.root)
	return res, nil
}

func cloneSeqs(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// encodeArbitration writes a deployment's arbitration part.
func (d *deployment) encodeArbitration(w *codec.Writer) {
	w.Uvarint(uint64(len(d.hist)))
	for _, h := range d.hist {
		w.Varint(h.cp.Height)
		w.Uvarint(h.cp.Seq)
		w.Uvarint(h.cp.Calls)
		w.Fixed(h.cp.Root[:])
		w.Uvarint(h.meta.egressSeq)
		w.Varint(h.meta.acceptedAt)
		w.Varint(h.supersededAt)
	}
	w.Bool(d.dispute != nil)
	if ds := d.dispute; ds != nil {
		w.Varint(ds.height)
		w.Fixed(ds.root[:])
		w.Varint(ds.prevHeight)
		w.Fixed(ds.prevRoot[:])
		w.Varint(ds.entriesHeight)
		w.Bool(ds.assigned)
	}
	w.Varint(d.noCutUntil)
	w.Uvarint(d.resumeSeq)
}

func (d *deployment) decodeArbitration(r *codec.Reader) {
	n := r.Uvarint()
	if n > uint64(r.Remaining()/36) {
		r.Fail(codec.ErrTooLong)
	}
	for ; r.Err() == nil && n > 0; n-- {
		var h histEntry
		h.cp.Height = r.Varint()
		h.cp.Seq = r.Uvarint()
		h.cp.Calls = r.Uvarint()
		r.Fixed(h.cp.Root[:])
		h.meta.egressSeq = r.Uvarint()
		h.meta.acceptedAt = r.Varint()
		h.supersededAt = r.Varint()
		d.hist = append(d.hist, h)
	}
	if r.Bool() {
		ds := &dispute{}
		ds.height = r.Varint()
		r.Fixed(ds.root[:])
		ds.prevHeight = r.Varint()
		r.Fixed(ds.prevRoot[:])
		ds.entriesHeight = r.Varint()
		ds.assigned = r.Bool()
		d.dispute = ds
	}
	d.noCutUntil = r.Varint()
	d.resumeSeq = r.Uvarint()
}
