package engine

// Deployments, reassignment and recovery (docs/availability.md). Every
// pRuntime follows, from the queue, which workers run each contract (the
// contracts module's api.ContractDeployed) and, since each contract's
// latest on-chain checkpoint, the heights of the blocks that carried an
// input for it (its start, commands, on-chain queries) with their app
// hashes and times. A worker added to a contract that already ran cannot
// replay those blocks from its own past (it did not hold the key when it
// dispatched them): it marks the contract recovering, says in its info
// what it needs (api.RecoveryNeed), and rebuilds it from what its relayer
// posts (Recover): the checkpoint's entries, checked against the root the
// queue announced, and the blocks since, checked against the kept app
// hashes. It then replays the contract's inputs and cuts exactly as the
// other replicas did, so it runs in step with them.

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/contract"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/enclave/keys"
)

// deployment is a deployed contract as the queue announced it.
type deployment struct {
	upload [32]byte
	// keyEra, keyEpoch: the key set and epoch its key is derived under;
	// migrating: since epochHeight, entries may still be under the
	// epoch before (docs/keys.md, "The epoch protocol").
	keyEra, keyEpoch uint64
	migrating        bool
	epochHeight      int64
	workers          []crypto.PublicKey
	excluded         []crypto.PublicKey // removed by the deployer, not assigned again
	// reported: its first status report was seen; failed: it said
	// failed (the chain keeps the first report).
	reported, failed bool
	// droppedUpTo: the highest input height forgotten because the
	// contract had more than api.MaxRecoverBlocks of them since its
	// checkpoint (0: none). A rebuild from a checkpoint below it cannot
	// replay them; a newer checkpoint makes the contract recoverable
	// again.
	droppedUpTo int64
	// Arbitration (arbitration.go): the checkpoints before the current
	// one that a dispute may roll back to, oldest first; the open
	// dispute, if any; and the height of the last overturn, up to which a
	// rebuild cuts no update (0: none since the last accepted update).
	hist       []histEntry
	dispute    *dispute
	noCutUntil int64
	// resumeSeq: the contract's egress sequence at the overturn at
	// noCutUntil; a rebuild numbers its messages after it from there.
	resumeSeq uint64
	// Interoperability (interop.go): the contract's current ECDH public
	// key (its grant's, then each rekey's), which calls to it are sealed
	// to; the height of its deployment and of its failed status report
	// (0: none), which decide whether calls made at a height may go to it.
	ecdh       crypto.PublicKey
	deployedAt int64
	failedAt   int64
}

// blockRef is what is kept of a dispatched block that carries an input of
// a contract after its checkpoint: its app hash (to verify its messages
// when a recovery replays them), its header time, and how many contracts
// refer to it.
type blockRef struct {
	appHash []byte
	time    int64
	refs    int
}

// cpMeta is what pRuntime keeps of a contract's latest accepted state
// update besides the api.Checkpoint: the contract's egress sequence after
// it (the update's own sequence plus one) and the block that accepted it
// (whose state holds the checkpoint's entries).
type cpMeta struct {
	egressSeq  uint64
	acceptedAt int64
}

// heldKey is a contract key this worker holds for a rebuild it waits to
// do: a contract it was assigned and is recovering (height: the block that
// added it), or a dispute it arbitrates (height: the disputed update's).
// Sealed only inside the runtime core.
type heldKey struct {
	upload [32]byte
	seed   [crypto.SeedSize]byte
	height int64
}

// onDeployed follows a change of a contract's workers (every pRuntime):
// a worker it adds opens its key and starts the contract (its deployment)
// or recovers it (a contract that ran before); a worker it removes stops
// it; a gatekeeper grants more workers while the contract has fewer than
// its replicas.
func (e *Engine) onDeployed(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin("contracts") {
		return fmt.Errorf("contract deployment from %s", m.Origin)
	}
	d, err := api.DecodeContractDeployed(m.Payload)
	if err != nil {
		return err
	}
	u, ok := e.st.uploads[d.Upload]
	if !ok {
		return fmt.Errorf("deployment of unknown upload %x", d.Upload[:4])
	}
	dep, existed := e.st.deployed[d.Contract]
	if !existed {
		dep = &deployment{upload: d.Upload, deployedAt: ctx.Height}
		if g, err := api.DecodeContractKeyGrant(d.Grant); err == nil {
			dep.keyEra, dep.keyEpoch, dep.ecdh = g.Era, g.Epoch, g.Ecdh
		}
		e.st.deployed[d.Contract] = dep
		u.granted = true
		e.noteInput(ctx, d.Contract) // its start: init runs at this height
	}
	dep.workers = d.Workers
	if d.Reason == api.RemovedByDeployer || d.Reason == api.RemovedByArbitration { // the chain excludes them too
		dep.excluded = append(dep.excluded, d.Removed...)
		if n := len(dep.excluded); n > api.MaxExcludedWorkers {
			dep.excluded = dep.excluded[n-api.MaxExcludedWorkers:]
		}
	}
	me := e.entity.Identity.Public()
	if slices.Contains(d.Removed, me) {
		e.stopContract(d.Contract, d.Reason)
	}
	if len(d.Grant) > 0 {
		if err := e.takeGrant(ctx, d, existed); err != nil {
			return err
		}
	}
	if e.gk != nil && !dep.failed && e.replicasShort(dep, u) {
		e.gk.Grant(ctx.Height, e.gkUpload(dep.upload, dep))
	}
	return nil
}

// takeGrant takes this worker's key from the round an accepted grant
// names, if it names this worker, and starts the contract: afresh at its
// deployment (!existed), or as a recovery.
func (e *Engine) takeGrant(ctx *Context, d *api.ContractDeployed, existed bool) error {
	g, err := api.DecodeContractKeyGrant(d.Grant)
	if err != nil {
		return err
	}
	if !slices.Contains(g.Workers, e.entity.Identity.Public()) {
		return nil
	}
	if _, ok := e.running[g.Identity]; ok {
		return nil
	}
	ck, err := e.takeRoundKey(g)
	if errors.Is(err, errNoRoundKey) {
		// Fewer than T valid partials yet (one of those the chain counted
		// did not verify): the other members' partials follow in the
		// queue; the contract is recovered once the key combines.
		e.await(g.Round, awaitDeploy, d.Grant, ctx.Height)
		return nil
	}
	if err != nil {
		return err
	}
	if !existed {
		return e.startFresh(ctx, g.Upload, ck)
	}
	e.st.recovering[g.Identity] = &heldKey{upload: g.Upload, seed: ck.Seed, height: ctx.Height}
	cp := e.st.checkpoints[g.Identity]
	e.log.Info("contract assigned to this worker: recovering it from its on-chain checkpoint", "contract", g.Identity.Short(),
		"checkpoint_height", cp.Height, "blocks_to_replay", len(e.st.inputs[g.Identity]), "reason", d.Reason)
	return nil
}

// stopContract stops running (or recovering) contract id on this worker,
// removed from it by the chain: its keys, state and pending egress are
// dropped (the other replicas emit the same messages).
func (e *Engine) stopContract(id crypto.PublicKey, why string) {
	_, ran := e.running[id]
	_, rec := e.st.recovering[id]
	if !ran && !rec {
		return
	}
	delete(e.running, id)
	delete(e.st.recovering, id)
	o := api.KeyOrigin(api.OriginContract, id)
	e.st.egress = slices.DeleteFunc(e.st.egress, func(s api.SignedMessage) bool { return s.Message.Origin == o })
	delete(e.st.egressSeq, string(o.Encode()))
	e.publish()
	e.log.Info("contract removed from this worker", "contract", id.Short(), "reason", why)
}

// onContractStatus follows a contract's first status report (the one the
// chain keeps): a contract that failed to start gets no replacement.
func (e *Engine) onContractStatus(ctx *Context, m *api.Message) error {
	if m.Origin.Kind != api.OriginContract {
		return nil
	}
	d := e.st.deployed[m.Origin.Key]
	if d == nil || d.reported {
		return nil
	}
	rep, err := api.DecodeContractStatusReport(m.Payload)
	if err != nil {
		return nil // ignored on chain too
	}
	d.reported, d.failed = true, rep.Status == api.ContractFailed
	if d.failed {
		d.failedAt = ctx.Height
	}
	return nil
}

// noteInput records that the block being dispatched carries an input of
// contract id (its start, a command, an on-chain query): a recovery
// replays it unless a checkpoint covers it first.
func (e *Engine) noteInput(ctx *Context, id crypto.PublicKey) {
	d := e.st.deployed[id]
	if d == nil {
		return
	}
	hs := e.st.inputs[id]
	if n := len(hs); n > 0 && hs[n-1] == ctx.Height {
		return
	}
	if len(hs) >= api.MaxRecoverBlocks {
		// The oldest goes: recovering from the current checkpoint is
		// impossible until the contract writes a newer one.
		if d.droppedUpTo < e.st.checkpoints[id].Height+1 {
			e.log.Warn("contract without a checkpoint for too many blocks: a worker assigned it cannot recover it until it writes a newer one", "contract", id.Short(), "blocks", api.MaxRecoverBlocks)
		}
		d.droppedUpTo = hs[0]
		e.dropInputs(id, hs[0]+1)
		hs = e.st.inputs[id]
	}
	e.st.inputs[id] = append(hs, ctx.Height)
	ref := e.st.blockRefs[ctx.Height]
	if ref == nil {
		ref = &blockRef{appHash: ctx.appHash, time: ctx.Time.UnixNano()}
		e.st.blockRefs[ctx.Height] = ref
	}
	ref.refs++
}

// dropInputs forgets contract id's input heights below upTo (covered by a
// checkpoint) and the blocks no contract refers to any more.
func (e *Engine) dropInputs(id crypto.PublicKey, upTo int64) {
	hs := e.st.inputs[id]
	i := sort.Search(len(hs), func(i int) bool { return hs[i] >= upTo })
	for _, h := range hs[:i] {
		if ref := e.st.blockRefs[h]; ref != nil {
			if ref.refs--; ref.refs <= 0 {
				delete(e.st.blockRefs, h)
			}
		}
	}
	if i == len(hs) {
		delete(e.st.inputs, id)
		return
	}
	e.st.inputs[id] = slices.Clone(hs[i:])
}

// recoveryNeeds lists what each recovering contract needs, by contract id.
func (e *Engine) recoveryNeeds() []api.RecoveryNeed {
	ids := make([]crypto.PublicKey, 0, len(e.st.recovering))
	for id := range e.st.recovering {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	out := make([]api.RecoveryNeed, 0, len(ids))
	for _, id := range ids {
		cp := e.st.checkpoints[id]
		out = append(out, api.RecoveryNeed{Purpose: api.RecoverPurposeName(api.RecoverContract), Contract: id.Hex(), CheckpointHeight: cp.Height,
			EntriesHeight: e.st.cpMeta[id].acceptedAt, Heights: slices.Clone(e.inputsAfter(id, cp.Height))})
	}
	ids = ids[:0]
	for id := range e.st.arbitrating {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	for _, id := range ids {
		if need, ok := e.arbitrationNeed(id); ok {
			out = append(out, need)
		}
	}
	return out
}

// ErrNotRecovering: Recover was called for a contract this worker is not
// recovering.
var ErrNotRecovering = errors.New("not recovering this contract")

// RecoverResult says what a recovery did.
type RecoverResult struct {
	Entries  int      // the checkpoint's entries restored
	Replayed int      // blocks replayed after the checkpoint
	Root     [32]byte // the contract's state root after the replay
}

// Recover rebuilds a contract from req (what its api.RecoveryNeed asked):
// a contract this worker is recovering (api.RecoverContract), or a
// disputed update it arbitrates (api.RecoverArbitration: arbitrate). The
// checkpoint's entries must give the root of the checkpoint followed in
// the queue, and the blocks must be exactly those at the needed heights,
// each matching the app hash kept for it. The contract's inputs in them
// are then replayed in chain order with the state updates the replicas
// cut (none up to the height of an overturn that rolled the contract
// back: its first update after carries every change since), and the
// contract runs. Nothing changes on error. Errors: ErrNotRecovering;
// ErrBadInput wrapping why the request does not match
// (contracts.ErrRootMismatch for entries that are not the checkpoint's);
// the contract's code cache.
func (e *Engine) Recover(req *api.RecoverRequest) (*RecoverResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if req.Purpose == api.RecoverArbitration {
		return e.arbitrate(req)
	}
	id := req.Contract
	rc, ok := e.st.recovering[id]
	if !ok {
		return nil, fmt.Errorf("%w %s", ErrNotRecovering, id.Hex())
	}
	cp, hasCp := e.st.checkpoints[id]
	if !hasCp {
		cp.Root = api.EmptyStateRoot
	}
	r, err := e.rebuild(id, rc.upload, rc.seed, cp, req, e.inputsAfter(id, cp.Height))
	if err != nil {
		return nil, err
	}
	o := api.KeyOrigin(api.OriginContract, id)
	okey := string(o.Encode())
	keepEgress, keepSeqs := slices.Clone(e.st.egress), cloneSeqs(e.st.egressSeq)
	fail := func(err error) (*RecoverResult, error) {
		if errors.Is(err, errCodeCache) {
			// This host's problem (a cache file): nothing changed, the
			// recovery stays, to be retried.
			e.st.egress, e.st.egressSeq = keepEgress, keepSeqs
			clear(e.toAck)
			return nil, err
		}
		e.dropRecovered(id, o)
		return nil, err
	}
	e.st.egress = slices.DeleteFunc(e.st.egress, func(s api.SignedMessage) bool { return s.Message.Origin == o })
	e.st.egressSeq[okey] = e.st.cpMeta[id].egressSeq
	blocks, from := req.Blocks, cp.Height
	if d := e.st.deployed[id]; d.noCutUntil > 0 {
		// After an overturn: the inputs up to it rebuild the state only
		// (what they emitted is on chain, numbered as it was, or was the
		// liar's); its messages from then on are numbered from the
		// contract's sequence at the overturn, as on every replica.
		i := sort.Search(len(blocks), func(i int) bool { return blocks[i].Height > d.noCutUntil })
		egress, seqs := slices.Clone(e.st.egress), cloneSeqs(e.st.egressSeq)
		err := e.replay(id, r, blocks[:i], hasCp, from, d.noCutUntil, d.noCutUntil)
		e.st.egress, e.st.egressSeq = egress, seqs
		if err != nil {
			return fail(err)
		}
		e.st.egressSeq[okey] = d.resumeSeq
		blocks, from, hasCp = blocks[i:], d.noCutUntil, true
	}
	if err := e.replay(id, r, blocks, hasCp, from, 0, e.st.dispatched); err != nil {
		return fail(err)
	}
	clear(e.toAck) // the blocks' acknowledgements were due long ago
	// What the replay emitted that the chain already holds (the other
	// replicas sent it) is dropped; the rest is new.
	next := e.st.nextSeq[okey]
	e.st.egress = slices.DeleteFunc(e.st.egress, func(s api.SignedMessage) bool { return s.Message.Origin == o && s.Message.Seq < next })
	if e.st.egressSeq[okey] < next {
		e.st.egressSeq[okey] = next
	}
	delete(e.st.recovering, id)
	e.running[id] = r
	e.publish()
	// The chain learns it runs in step (a migration hands the contract
	// over on it).
	e.emit(api.OriginWorker, api.TopicReplicaReady, (&api.ReplicaReady{Contract: id, Height: e.st.dispatched}).Encode())
	res := &RecoverResult{Entries: len(req.Entries), Replayed: len(req.Blocks), Root: r.c.StateRoot()}
	if err := e.checkpoint(); err != nil {
		return res, err
	}
	e.log.Info("contract recovered from its on-chain checkpoint", "contract", id.Short(), "checkpoint_height", cp.Height,
		"entries", res.Entries, "blocks_replayed", res.Replayed, "dispatched", e.st.dispatched)
	return res, nil
}

// inputsAfter returns contract id's input heights after height.
func (e *Engine) inputsAfter(id crypto.PublicKey, height int64) []int64 {
	hs := e.st.inputs[id]
	return hs[sort.Search(len(hs), func(i int) bool { return hs[i] > height }):]
}

// rebuild checks req against what a rebuild of contract id from
// checkpoint cp needs (the blocks at heights, the entries of cp) and
// returns the contract at cp, not yet replayed.
func (e *Engine) rebuild(id crypto.PublicKey, upload [32]byte, seed [crypto.SeedSize]byte, cp api.Checkpoint, req *api.RecoverRequest, heights []int64) (*running, error) {
	if dep := e.st.deployed[id]; dep == nil || dep.droppedUpTo > cp.Height {
		return nil, fmt.Errorf("%w: contract %s has had inputs in more than %d blocks since its checkpoint at height %d: they cannot be replayed until it writes a newer one", ErrBadInput, id.Short(), api.MaxRecoverBlocks, cp.Height)
	}
	if len(req.Blocks) != len(heights) {
		return nil, fmt.Errorf("%w: %d blocks posted, the recovery needs the %d at heights %v", ErrBadInput, len(req.Blocks), len(heights), heights)
	}
	for i := range req.Blocks {
		b := &req.Blocks[i]
		ref := e.st.blockRefs[heights[i]]
		if b.Height != heights[i] || ref == nil {
			return nil, fmt.Errorf("%w: block %d of the request is height %d, the recovery needs %d", ErrBadInput, i, b.Height, heights[i])
		}
		if err := b.Verify(ref.appHash); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
		}
	}
	u := e.st.uploads[upload]
	ck, err := keys.ContractKeysFromSeed(seed)
	if err != nil {
		return nil, err
	}
	var c *contracts.Contract
	if cp.Height > 0 {
		// The checkpoint's entries are under the contract's current key
		// epoch (a new worker is provisioned only outside a migration).
		epoch := e.st.deployed[id].keyEpoch
		st, err := contracts.OpenStore([]contracts.EpochKey{{Epoch: epoch, Key: ck.Storage}}, cp.Seq, req.Entries, cp.Root)
		if err != nil {
			return nil, fmt.Errorf("%w: checkpoint of %s at height %d: %w", ErrBadInput, id.Short(), cp.Height, err)
		}
		if epoch > 0 {
			x, err := st.Secrets()
			if err != nil {
				return nil, fmt.Errorf("%w: checkpoint of %s at height %d: %w", ErrBadInput, id.Short(), cp.Height, err)
			}
			if ck, err = contracts.KeysWithSecrets(ck, &x); err != nil {
				return nil, err
			}
			if ck.Identity.Public() != id {
				return nil, fmt.Errorf("%w: the checkpoint of %s holds another contract's secrets", ErrBadInput, id.Short())
			}
		}
		if c, err = e.startContractWith(ck, u.codeHash, st, cp.Calls); err != nil {
			return nil, err
		}
	} else {
		if len(req.Entries) > 0 {
			return nil, fmt.Errorf("%w: contract %s has no checkpoint; %d entries posted", ErrBadInput, id.Short(), len(req.Entries))
		}
		if c, err = e.startContract(ck, u.codeHash, nil, nil, [32]byte{}, 0); err != nil {
			return nil, err
		}
	}
	return &running{upload: upload, c: c, lastNonce: map[crypto.PublicKey]uint64{}, dirty: true, cutRoot: cp.Root, cutHeight: cp.Height}, nil
}

// replay runs contract id's inputs in blocks (verified, ascending) on r,
// as live dispatch did: its start if !started (the deployment's init),
// commands, calls from contracts, deposits, payout results and on-chain
// queries, each block followed by its state cut,
// and the periodic cuts between them from the checkpoint height from up
// to height to; no cut at heights up to noCut (0: none skipped).
func (e *Engine) replay(id crypto.PublicKey, r *running, blocks []api.BlockMessages, started bool, from, noCut, to int64) error {
	interval := e.checkpointInterval(r)
	cutAt := func(h int64) {
		if h > noCut && started {
			e.cutState(h, id, r)
		}
	}
	cut := func(from, to int64) { // the periodic cuts in (from, to]
		if !started {
			// Before its deployment the contract ran nowhere: no cut
			// (its new store's own entries go with the init's, after it,
			// as on the replicas).
			return
		}
		for h := nextCut(id, interval, from); h <= to; h = nextCut(id, interval, h) {
			if !r.c.Store().HasChanges() && !r.cmdSinceCut {
				return
			}
			cutAt(h)
		}
	}
	// The contract's messages emitted before the checkpoint's cut and
	// seen on chain only after it were pending then: they count in its
	// egress budget until their acknowledgement is replayed.
	o := api.KeyOrigin(api.OriginContract, id)
	start := e.st.egressSeq[string(o.Encode())]
	var before []api.SignedMessage
	for i := range blocks {
		for _, m := range blocks[i].Messages {
			if m.Origin == o && m.Seq < start {
				before = append(before, api.SignedMessage{Message: m})
			}
		}
	}
	e.st.egress = append(before, e.st.egress...)
	last := from
	for i := range blocks {
		b := &blocks[i]
		cut(last, b.Height-1)
		ctx := &Context{e: e, Height: b.Height, Time: time.Unix(0, e.st.blockRefs[b.Height].time).UTC()}
		for j := range b.Messages {
			m := &b.Messages[j]
			if m.Origin == o {
				e.ack(m) // as dispatch did
				if m.Topic != api.TopicContractCall {
					continue // (a call to itself is also its input)
				}
			}
			if m.Topic == api.TopicContractCall {
				if call, ok := e.acceptedCall(m); ok && call.To == id && started {
					e.runCall(ctx, r, m.Origin.Key, call)
				}
				continue
			}
			if m.Origin != api.ModuleOrigin("contracts") {
				continue
			}
			switch m.Topic {
			case api.TopicContractDeposit:
				if d, err := api.DecodeDeposit(m.Payload); err == nil && d.Contract == id && started {
					e.runDeposit(ctx, r, m.Seq, d)
				}
			case api.TopicPayoutResult:
				if p, err := api.DecodePayoutResult(m.Payload); err == nil && p.Contract == id && p.ID < contract.RefundIDBase && started {
					e.runPayoutResult(ctx, r, p)
				}
			case api.TopicContractDeployed:
				if d, err := api.DecodeContractDeployed(m.Payload); err == nil && d.Contract == id && d.Reason == api.DeployedFirst && !started {
					started = true
					ok, err := e.initContract(ctx, r)
					if err != nil {
						return err // this host's: retried
					}
					if !ok {
						return fmt.Errorf("contract %s failed to start when its deployment was replayed", id.Short())
					}
				}
			case api.TopicContractCommand:
				if cm, err := api.DecodeContractCommandMessage(m.Payload); err == nil && cm.Contract == id && started {
					if err := e.runCommand(ctx, r, cm); err != nil {
						e.log.Warn("replayed command refused", "contract", id.Short(), "height", b.Height, "err", err)
					}
				}
			case api.TopicContractQuery:
				if q, err := api.DecodeContractQuery(m.Payload); err == nil && q.Contract == id && started {
					if err := e.runChainQuery(ctx, r, q); err != nil {
						e.log.Warn("replayed on-chain query refused", "contract", id.Short(), "height", b.Height, "err", err)
					}
				}
			}
		}
		cutAt(b.Height)
		last = b.Height
	}
	cut(last, to)
	return nil
}

// dropRecovered gives up a recovery whose replayed start failed (as it
// failed on the replicas): the status report it emitted stays.
func (e *Engine) dropRecovered(id crypto.PublicKey, o api.Origin) {
	delete(e.st.recovering, id)
	next := e.st.nextSeq[string(o.Encode())]
	e.st.egress = slices.DeleteFunc(e.st.egress, func(s api.SignedMessage) bool { return s.Message.Origin == o && s.Message.Seq < next })
}

// nextCut is contract id's first periodic cut height after h.
func nextCut(id crypto.PublicKey, interval uint64, h int64) int64 {
	rem := (uint64(h) + api.CheckpointPhase(id, interval)) % interval
	return h + int64(interval-rem)
}

// encodeDeployments writes the followed deployments, input heights and
// kept blocks (chain-derived), by ascending contract id and height.
func (s *state) encodeDeployments(w *codec.Writer) {
	ids := make([]crypto.PublicKey, 0, len(s.deployed))
	for id := range s.deployed {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	w.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		d := s.deployed[id]
		w.Fixed(id[:])
		w.Fixed(d.upload[:])
		w.Uvarint(d.keyEra)
		w.Uvarint(d.keyEpoch)
		w.Bool(d.migrating)
		w.Varint(d.epochHeight)
		w.BytesField(api.EncodeKeys(d.workers))
		w.BytesField(api.EncodeKeys(d.excluded))
		w.Bool(d.reported)
		w.Bool(d.failed)
		w.Varint(d.droppedUpTo)
		hs := s.inputs[id]
		w.Uvarint(uint64(len(hs)))
		for _, h := range hs {
			w.Varint(h)
		}
		m := s.cpMeta[id]
		w.Uvarint(m.egressSeq)
		w.Varint(m.acceptedAt)
		d.encodeArbitration(w)
		w.Fixed(d.ecdh[:])
		w.Varint(d.deployedAt)
		w.Varint(d.failedAt)
	}
	hs := make([]int64, 0, len(s.blockRefs))
	for h := range s.blockRefs {
		hs = append(hs, h)
	}
	slices.Sort(hs)
	w.Uvarint(uint64(len(hs)))
	for _, h := range hs {
		ref := s.blockRefs[h]
		w.Varint(h)
		w.BytesField(ref.appHash)
		w.Varint(ref.time)
		w.Uvarint(uint64(ref.refs))
	}
}

func (s *state) decodeDeployments(r *codec.Reader) {
	n := r.Uvarint()
	if n > uint64(r.Remaining()/(64+6)) {
		r.Fail(codec.ErrTooLong)
	}
	for ; r.Err() == nil && n > 0; n-- {
		var id crypto.PublicKey
		d := &deployment{}
		r.Fixed(id[:])
		r.Fixed(d.upload[:])
		d.keyEra, d.keyEpoch = r.Uvarint(), r.Uvarint()
		d.migrating, d.epochHeight = r.Bool(), r.Varint()
		ws := r.BytesField(8 + 32*api.MaxReplicas)
		xs := r.BytesField(8 + 32*api.MaxExcludedWorkers)
		d.reported, d.failed, d.droppedUpTo = r.Bool(), r.Bool(), r.Varint()
		k := r.Uvarint()
		if k > api.MaxRecoverBlocks {
			r.Fail(codec.ErrTooLong)
		}
		var hs []int64
		for ; r.Err() == nil && k > 0; k-- {
			hs = append(hs, r.Varint())
		}
		var m cpMeta
		m.egressSeq = r.Uvarint()
		m.acceptedAt = r.Varint()
		d.decodeArbitration(r)
		r.Fixed(d.ecdh[:])
		d.deployedAt, d.failedAt = r.Varint(), r.Varint()
		if r.Err() != nil {
			return
		}
		var err error
		if d.workers, err = api.DecodeKeys(ws); err == nil {
			d.excluded, err = api.DecodeKeys(xs)
		}
		if err != nil {
			r.Fail(err)
			return
		}
		s.deployed[id] = d
		if len(hs) > 0 {
			s.inputs[id] = hs
		}
		if m != (cpMeta{}) {
			s.cpMeta[id] = m
		}
	}
	k := r.Uvarint()
	if k > uint64(r.Remaining()/4) {
		r.Fail(codec.ErrTooLong)
	}
	for ; r.Err() == nil && k > 0; k-- {
		h := r.Varint()
		ref := &blockRef{appHash: r.BytesField(64), time: r.Varint(), refs: int(r.Uvarint())}
		s.blockRefs[h] = ref
	}
}

// encodeHeldKeys writes held contract keys by ascending contract id
// (their seeds: only into the sealed core).
func encodeHeldKeys(w *codec.Writer, m map[crypto.PublicKey]*heldKey) {
	ids := make([]crypto.PublicKey, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	w.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		k := m[id]
		w.Fixed(id[:])
		w.Fixed(k.upload[:])
		w.Fixed(k.seed[:])
		w.Varint(k.height)
	}
}

func decodeHeldKeys(r *codec.Reader, m map[crypto.PublicKey]*heldKey) {
	n := r.Uvarint()
	if n > uint64(r.Remaining()/(64+crypto.SeedSize)) {
		r.Fail(codec.ErrTooLong)
	}
	for ; r.Err() == nil && n > 0; n-- {
		var id crypto.PublicKey
		k := &heldKey{}
		r.Fixed(id[:])
		r.Fixed(k.upload[:])
		r.Fixed(k.seed[:])
		k.height = r.Varint()
		m[id] = k
	}
}
