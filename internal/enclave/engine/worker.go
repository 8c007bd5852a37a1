package engine

// The worker's role: the contract keys a gatekeeper grants this pRuntime
// (opened in onGrant), the contracts it runs with them, their commands and
// queries. The contract code cache and the uploads (chain-derived) are kept
// by every pRuntime; the gatekeeper's side of an upload (deriving and
// granting the keys) is internal/enclave/gatekeeper.

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/enclave/gatekeeper"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/sealing"
	"github.com/phalago/phala/internal/enclave/vm"
)

// upload is what pRuntime keeps of a ContractUploaded message. The code
// and the init input are public: they are cached in plain files under
// DataDir/code (by code hash, and by upload id), checked against the
// hashes kept here when read back, so the sealed checkpoint holds 32
// bytes for them, whatever their size.
type upload struct {
	deployer crypto.PublicKey
	codeHash [32]byte
	seq      uint64
	replicas uint8
	initHash [32]byte // SHA-256 of the init input
	// granted: a gatekeeper's grant for it reached the queue. A
	// gatekeeper grants the uploads still without one when a worker
	// registers (no worker could run them before).
	granted bool
	// execTimeout: the contract's execution timeout (blocks; 0: none):
	// its workers acknowledge the blocks whose commands they executed.
	execTimeout uint64
	// req: the deployment's requirements on its workers.
	req api.Requirements
	// checkpointInterval: blocks between the contract's state updates (0:
	// api.DefaultCheckpointInterval).
	checkpointInterval uint64
}

// running is a contract this worker was granted.
type running struct {
	upload    [32]byte
	c         *contracts.Contract
	lastNonce map[crypto.PublicKey]uint64
	receipts  *receiptLog // nil until the first command
	// The last state update (api.StateUpdate) this worker cut: its
	// height and new root; cmdSinceCut: commands ran since (an update is
	// due at the next cut height even without changes).
	cutHeight   int64
	cutRoot     [32]byte
	cmdSinceCut bool
	// dirty: changed since its checkpoint part was written.
	dirty bool
	// Bytes emitted at blockHeight (MaxContractEgressPerBlock). Not
	// checkpointed: checkpoints fall between blocks.
	blockHeight int64
	blockBytes  int
	blockState  int // state change bytes at blockHeight (MaxStateChangePerBlock)
	// prevSeed: the previous key epoch's seed while the contract migrates
	// (keys.go, onRekeyed), nil otherwise.
	prevSeed *[crypto.SeedSize]byte
}

const maxCodeBytes = 32 << 20

func (e *Engine) codePath(hash [32]byte) string {
	return filepath.Join(e.cfg.DataDir, "code", hex.EncodeToString(hash[:])+".wasm")
}

func (e *Engine) initPath(upload [32]byte) string {
	return filepath.Join(e.cfg.DataDir, "code", hex.EncodeToString(upload[:])+".init")
}

// initInput reads back an upload's (public) init input from its cache
// file, checked against its hash.
func (e *Engine) initInput(id [32]byte, u *upload) ([]byte, error) {
	b, err := os.ReadFile(e.initPath(id))
	if err != nil {
		return nil, fmt.Errorf("init input of upload %x: %w", id[:4], err)
	}
	if sha256.Sum256(b) != u.initHash {
		return nil, fmt.Errorf("init input of upload %x in %s was altered", id[:4], e.initPath(id))
	}
	return b, nil
}

func (e *Engine) onUploaded(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin("contracts") {
		return fmt.Errorf("contract upload from %s", m.Origin)
	}
	u, err := api.DecodeContractUploaded(m.Payload)
	if err != nil {
		return err
	}
	code, err := gunzip(u.Code)
	if err != nil {
		return err
	}
	if sha256.Sum256(code) != u.CodeHash {
		return errors.New("code does not match its hash")
	}
	if err := os.MkdirAll(filepath.Dir(e.codePath(u.CodeHash)), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(e.codePath(u.CodeHash), code, 0o600); err != nil {
		return err
	}
	id := api.UploadID(u.Deployer, u.CodeHash, u.Sequence)
	if err := sealing.WriteAtomic(e.initPath(id), u.InitInput); err != nil {
		return err
	}
	e.st.uploads[id] = &upload{deployer: u.Deployer, codeHash: u.CodeHash, seq: u.Sequence, replicas: u.Replicas, initHash: sha256.Sum256(u.InitInput), execTimeout: u.ExecTimeout, req: u.Requirements, checkpointInterval: u.CheckpointInterval}
	if e.gk != nil {
		e.gk.Grant(ctx.Height, e.gkUpload(id, nil))
	}
	return nil
}

// grantWaiting (a gatekeeper) grants the uploads no deployment reached
// the queue for, in upload id order, then workers to the deployed
// contracts that have fewer than their replicas (replacements), in
// contract id order: called when a worker registers or joins a subnet,
// and every regrantInterval blocks, so an upload made while no worker
// could run it is provisioned when one can, and a contract that lost a
// worker gets another. Another gatekeeper may grant the same: the chain
// keeps what fits.
func (e *Engine) grantWaiting(height int64) {
	if e.gk == nil {
		return
	}
	ids := make([][32]byte, 0)
	for id, u := range e.st.uploads {
		if !u.granted {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	for _, id := range ids {
		if !e.grantPending(id) {
			e.gk.Grant(height, e.gkUpload(id, nil))
		}
	}
	cs := make([]crypto.PublicKey, 0)
	for id, d := range e.st.deployed {
		if u := e.st.uploads[d.upload]; u != nil && !d.failed && e.replicasShort(d, u) {
			cs = append(cs, id)
		}
	}
	sort.Slice(cs, func(i, j int) bool { return bytes.Compare(cs[i][:], cs[j][:]) < 0 })
	for _, id := range cs {
		if d := e.st.deployed[id]; !e.grantPending(d.upload) {
			e.gk.Grant(height, e.gkUpload(d.upload, d))
		}
	}
	e.assignArbiters(height)
}

// grantPending reports whether a grant of this gatekeeper for upload
// waits in its egress (not yet in the queue): a retry would only
// duplicate it.
func (e *Engine) grantPending(upload [32]byte) bool {
	for i := range e.st.egress {
		m := &e.st.egress[i].Message
		if m.Topic != api.TopicKeyPartials {
			continue
		}
		if p, err := api.DecodeKeyPartials(m.Payload); err == nil && p.Purpose == api.KeyForWorkers && p.Upload == upload {
			return true
		}
	}
	return false
}

// regrantInterval is how often (blocks) a gatekeeper retries the grants
// still missing (grantWaiting), in case one it sent was refused.
const regrantInterval = 10

// gkUpload is what the gatekeeper role grants from: upload id, and for a
// deployed contract d its current and excluded workers.
func (e *Engine) gkUpload(id [32]byte, d *deployment) gatekeeper.Upload {
	u := e.st.uploads[id]
	g := gatekeeper.Upload{ID: id, Deployer: u.deployer, CodeHash: u.codeHash, Seq: u.seq, Replicas: u.replicas, Requirements: u.req, KeyEra: e.st.servingKeyEra}
	if d != nil {
		g.Current, g.Exclude, g.Leaving = d.workers, d.excluded, e.leaving(d.workers)
		g.KeyEra, g.KeyEpoch, g.Deployed = d.keyEra, d.keyEpoch, true
	}
	return g
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	code, err := io.ReadAll(io.LimitReader(zr, maxCodeBytes+1))
	if err != nil {
		return nil, err
	}
	if len(code) > maxCodeBytes {
		return nil, errors.New("code too large")
	}
	return code, nil
}

// startFresh starts a contract at its deployment (height of ctx): it
// instantiates it and runs its init. A contract whose code or init fails
// is reported failed (its own signed status report) and not kept.
func (e *Engine) startFresh(ctx *Context, upload [32]byte, ck *keys.ContractKeys) error {
	u, ok := e.st.uploads[upload]
	if !ok {
		return errors.New("grant for an unknown upload")
	}
	c, err := e.startContract(ck, u.codeHash, nil, nil, [32]byte{}, 0)
	if err != nil {
		if errors.Is(err, errCodeCache) {
			return err // this host's problem, not the contract's
		}
		e.reportStatus(ck, api.ContractFailed, "invalid module: "+err.Error())
		return nil
	}
	r := &running{upload: upload, c: c, lastNonce: map[crypto.PublicKey]uint64{}, dirty: true, cutRoot: api.EmptyStateRoot}
	started, err := e.initContract(ctx, r)
	if err != nil {
		return err
	}
	if started {
		e.running[ck.Identity.Public()] = r
		e.log.Info("contract started", "contract", ck.Identity.Public().Short())
	}
	return nil
}

// initContract runs r's init at ctx's block and reports the outcome as
// the contract's status; it reports whether the contract runs. An error
// is this host's (the init input's cache file: errCodeCache), not the
// contract's: nothing was run or reported.
func (e *Engine) initContract(ctx *Context, r *running) (bool, error) {
	u := e.st.uploads[r.upload]
	ck := r.c.Keys()
	input, err := e.initInput(r.upload, u)
	if err != nil {
		e.log.Error("contract not started", "contract", ck.Identity.Public().Short(), "err", err)
		return false, fmt.Errorf("%w: %w", errCodeCache, err)
	}
	r.c.SetStateBudget(r.stateBudget(ctx.Height))
	res, err := r.c.InitWithin(context.Background(), u.deployer, input, ctx.Height, ctx.Time, e.egressBudget(ck.Identity.Public(), r, ctx.Height))
	if err == nil {
		r.blockState += res.StateBytes
	}
	if err != nil {
		// Code and init input are public: so is why init failed.
		reason := "init failed: " + err.Error()
		if errors.Is(err, vm.ErrFailed) && res != nil {
			reason = "init returned an error: " + string(res.Output)
		}
		e.reportStatus(ck, api.ContractFailed, reason)
		return false, nil
	}
	e.reportStatus(ck, api.ContractRunning, "")
	e.emitContract(r, res)
	return true, nil
}

// errCodeCache marks a contract that cannot start because of this host's
// code cache (missing, altered file), not because of its code.
var errCodeCache = errors.New("contract code cache")

// emitAsContract queues a message of pRuntime's own in a contract's name:
// the contract's signed egress, sequenced with the contract's messages.
func (e *Engine) emitAsContract(ck *keys.ContractKeys, topic string, payload []byte) {
	o := api.KeyOrigin(api.OriginContract, ck.Identity.Public())
	key := string(o.Encode())
	seq := e.st.egressSeq[key]
	e.st.egressSeq[key] = seq + 1
	e.st.egress = append(e.st.egress, api.SignMessage(e.chainID, api.Message{Origin: o, Topic: topic, Seq: seq, Payload: payload}, ck.Identity))
}

// stateCutBytes cuts a state update early, whatever the cadence, once a
// contract's pending changes reach it (an update must fit in one
// transaction).
const stateCutBytes = 512 << 10

// cutStates emits, after block height, the state update of each running
// contract due at that height (cutState), in contract id order.
func (e *Engine) cutStates(height int64) {
	ids := make([]crypto.PublicKey, 0, len(e.running))
	for id := range e.running {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	for _, id := range ids {
		e.cutState(height, id, e.running[id])
	}
}

// checkpointInterval is contract r's interval between state updates
// (blocks): its deployer's, or api.DefaultCheckpointInterval.
func (e *Engine) checkpointInterval(r *running) uint64 {
	if u := e.st.uploads[r.upload]; u != nil && u.checkpointInterval > 0 {
		return u.checkpointInterval
	}
	return api.DefaultCheckpointInterval
}

// cutDue reports whether height is one of contract id's periodic cut
// heights: (height + phase) mod interval = 0.
func cutDue(id crypto.PublicKey, interval uint64, height int64) bool {
	return (uint64(height)+api.CheckpointPhase(id, interval))%interval == 0
}

// cutState emits, after block height, contract id's state update if one
// is due (docs/availability.md, "Cadence"): at its periodic cut heights,
// or once its changes reach stateCutBytes, if it changed or ran commands
// since its last update. Every replica cuts at the same heights from the
// same commands, so their updates are identical (and carry the same
// origin sequence); a recovering worker replays the same cuts.
func (e *Engine) cutState(height int64, id crypto.PublicKey, r *running) {
	st := r.c.Store()
	periodic := cutDue(id, e.checkpointInterval(r), height)
	if periodic && st.OldEntries() > 0 {
		// A migrating contract's rolling re-encryption (docs/keys.md, "The
		// epoch protocol"): at each periodic cut, reencrypt_per_block
		// entries per block of the interval, as ordinary changes.
		max := int(min(e.st.params.ReencryptPerBlock*e.checkpointInterval(r), 1<<20))
		if _, _, err := r.c.Reencrypt(max); err != nil {
			e.log.Error("re-encrypt the contract's state", "contract", id.Short(), "err", err)
		}
	}
	due := periodic || st.ChangedBytes() >= stateCutBytes
	if !due || (!st.HasChanges() && !r.cmdSinceCut) {
		return
	}
	u := &api.StateUpdate{Height: height, Seq: st.Seq(), Calls: r.c.Calls(), PrevRoot: r.cutRoot, NewRoot: r.c.StateRoot(), Changes: st.TakeChanges(), OldEntries: uint64(st.OldEntries())}
	if cutHook != nil {
		cutHook(e.entity.Identity.Public(), id, u, st)
	}
	b := u.Encode()
	if len(b) > api.MaxStateUpdateBytes {
		e.log.Error("state update over the size a transaction carries: not written to the chain", "contract", id.Short(), "bytes", len(b))
	}
	e.emitAsContract(r.c.Keys(), api.TopicContractState, b)
	e.vote(id, height, u.PrevRoot, u.NewRoot)
	r.cutHeight, r.cutRoot, r.cmdSinceCut, r.dirty = height, u.NewRoot, false, true
}

// reportStatus emits a contract's start report (api.TopicContractStatus)
// as the contract's own egress, so the chain records it (the first
// replica's wins). The reason is cut to api.MaxStatusReasonBytes.
func (e *Engine) reportStatus(ck *keys.ContractKeys, status api.ContractStatus, reason string) {
	if len(reason) > api.MaxStatusReasonBytes {
		reason = reason[:api.MaxStatusReasonBytes-3] + "..."
	}
	if status == api.ContractFailed {
		e.log.Info("contract failed to start", "contract", ck.Identity.Public().Short(), "reason", reason)
	}
	rep := &api.ContractStatusReport{Status: status, Reason: reason}
	e.emitAsContract(ck, api.TopicContractStatus, rep.Encode())
}

func (e *Engine) startContract(ck *keys.ContractKeys, codeHash [32]byte, epochs []contracts.EpochKey, snapshot []byte, root [32]byte, calls uint64) (*contracts.Contract, error) {
	ctx := context.Background()
	if e.vm == nil {
		// No on-disk compilation cache: it would hold native code outside
		// the enclave's protection, loaded back without authentication.
		v, err := vm.New(ctx, vm.Config{})
		if err != nil {
			return nil, err
		}
		e.vm = v
	}
	code, err := os.ReadFile(e.codePath(codeHash))
	if err != nil {
		return nil, fmt.Errorf("%w: contract code %x: %w", errCodeCache, codeHash[:4], err)
	}
	// The code cache is outside the enclave: check it is the code the
	// chain committed to.
	if sha256.Sum256(code) != codeHash {
		return nil, fmt.Errorf("%w: contract code %x in %s was altered", errCodeCache, codeHash[:4], e.codePath(codeHash))
	}
	m, err := e.vm.Compile(ctx, code)
	if err != nil {
		return nil, err
	}
	// Queries run on a second compilation (vm.InstantiateQuery): made in
	// the background, so the first query does not wait for it.
	go e.vm.PrepareQuery(ctx, m)
	var c *contracts.Contract
	if snapshot == nil {
		c, err = contracts.New(ctx, e.vm, ck, m)
	} else {
		c, err = contracts.Restore(ctx, e.vm, ck, m, epochs, snapshot, root, calls)
	}
	if err != nil {
		return nil, err
	}
	c.SetPeers(e.peer)
	return c, nil
}

// startContractWith instantiates a contract over an existing store (a
// recovery) with its call counter.
func (e *Engine) startContractWith(ck *keys.ContractKeys, codeHash [32]byte, st *contracts.Store, calls uint64) (*contracts.Contract, error) {
	c, err := e.startContract(ck, codeHash, nil, nil, [32]byte{}, 0)
	if err != nil {
		return nil, err
	}
	c.Adopt(st, calls)
	return c, nil
}

// emitContract queues a contract's messages as its own signed egress.
func (e *Engine) emitContract(r *running, res *contracts.Result) {
	if res == nil {
		return
	}
	for _, m := range res.Messages {
		r.blockBytes += len(m.Topic) + len(m.Payload)
		e.emitAsContract(r.c.Keys(), m.Topic, m.Payload)
	}
}

// onCommand executes a command for a contract this worker runs.
func (e *Engine) onCommand(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin("contracts") {
		return fmt.Errorf("contract command from %s", m.Origin)
	}
	cm, err := api.DecodeContractCommandMessage(m.Payload)
	if err != nil {
		return err
	}
	e.st.lastCommand[cm.Contract] = ctx.Height
	e.noteInput(ctx, cm.Contract)
	r, ok := e.running[cm.Contract]
	if !ok {
		return nil // not ours
	}
	return e.runCommand(ctx, r, cm)
}

// runCommand executes command cm of contract r at ctx's block: live, or
// replayed by a recovery.
func (e *Engine) runCommand(ctx *Context, r *running, cm *api.ContractCommandMessage) error {
	if last, seen := r.lastNonce[cm.From]; seen && cm.Nonce <= last {
		e.noteCommand(ResultRejected, 0)
		return fmt.Errorf("replayed command (nonce %d, last %d)", cm.Nonce, last)
	}
	ch, err := r.c.Channel(cm.From, api.ChannelPurposeCommand)
	if err != nil {
		return err
	}
	r.lastNonce[cm.From] = cm.Nonce
	input, err := ch.Open(cm.Sealed, api.CommandAD(cm.Contract, cm.From, cm.Nonce))
	if prev := r.c.PrevEcdh(); err != nil && prev != nil {
		// Sealed to the previous key epoch's ECDH key: accepted until the
		// migration ends (docs/keys.md, "EcdhKey rotation").
		if old, oerr := channel.New(prev, cm.From, api.ChannelPurposeCommand); oerr == nil {
			if in, oerr := old.Open(cm.Sealed, api.CommandAD(cm.Contract, cm.From, cm.Nonce)); oerr == nil {
				input, ch, err = in, old, nil
			}
		}
	}
	why := "the input does not open with CommKey(sender, contract): sealed to another contract's key, or altered"
	if err == nil {
		if input, err = api.Unpad(input); err != nil {
			why = "the input is not padded (api.Pad) before sealing"
		}
	}
	if err != nil {
		e.executed(r, cm.Contract)
		e.noteCommand(ResultRejected, 0)
		r.recordReceipt(cm.From, cm.Nonce, ctx.Height, api.ReceiptBody{Status: api.ReceiptRejected, Output: []byte(why)})
		return nil
	}
	e.executed(r, cm.Contract)
	r.cmdSinceCut = true
	r.c.SetStateBudget(r.stateBudget(ctx.Height))
	res, err := r.c.CommandWithin(context.Background(), cm.From, input, ctx.Height, ctx.Time, e.egressBudget(cm.Contract, r, ctx.Height), cm.GasLimit)
	if err == nil {
		r.blockState += res.StateBytes
	}
	// What became of the command goes to its sender only, in the receipt:
	// not to the log, which the host reads.
	r.recordReceipt(cm.From, cm.Nonce, ctx.Height, receiptBody(res, err))
	var gas uint64
	if res != nil {
		gas = res.GasUsed
	}
	if err == nil {
		e.noteCommand(ResultOK, gas)
	} else {
		e.noteCommand(ResultFailed, gas)
	}
	if err == nil {
		e.emitContract(r, res)
	}
	return nil
}

// executed notes that this worker executed a command of contract id in
// the block being dispatched, if the contract has an execution timeout: the block's
// acknowledgement (api.Executed) goes out after the block (ackExecuted).
func (e *Engine) executed(r *running, id crypto.PublicKey) {
	if u := e.st.uploads[r.upload]; u != nil && u.execTimeout > 0 {
		if e.toAck == nil {
			e.toAck = map[crypto.PublicKey]bool{}
		}
		e.toAck[id] = true
	}
}

// ackExecuted emits, after block height, one api.Executed per contract
// with an execution timeout whose commands this worker executed in it, in
// contract id order.
func (e *Engine) ackExecuted(height int64) {
	if len(e.toAck) == 0 {
		return
	}
	ids := make([]crypto.PublicKey, 0, len(e.toAck))
	for id := range e.toAck {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	for _, id := range ids {
		e.emit(api.OriginWorker, api.TopicExecuted, (&api.Executed{Contract: id, Height: height}).Encode())
	}
	clear(e.toAck)
}

// receiptBody is a command's receipt content: the contract's output, or
// its error message (vm.ErrFailed), or what stopped the call.
func receiptBody(res *contracts.Result, err error) api.ReceiptBody {
	var b api.ReceiptBody
	if res != nil {
		b.GasUsed = res.GasUsed
		b.Output = res.Output
	}
	if err != nil {
		b.Status = api.ReceiptFailed
		if !errors.Is(err, vm.ErrFailed) {
			b.Output = []byte(err.Error())
		}
	}
	return b
}

// Query answers an off-chain contract query at the last block whose
// dispatch finished.
//
// It never takes the engine's lock: it reads the contract's view that
// dispatch published after that block (publish: the state after all of
// the block's messages, and the block's height and time, which the answer
// states), so a query waits neither for a block being dispatched (however
// long its commands run, up to the chain's per-worker gas per block) nor
// for sync, and dispatch and Info never wait for a query. At most MaxConcurrentQueries run at once; a query waits at most
// QueryTimeout for a slot, its contract call runs at most QueryTimeout
// (the contract's first query also compiles it, not counted), and both
// stop when ctx ends (the HTTP handler passes the request's context,
// which ends when the client goes away). Errors:
// ErrBadInput (not our contract; refused query), ErrBusy (no slot before
// the deadline). A query that runs out of time gets an answer with an
// error status, like one that runs out of gas.
func (e *Engine) Query(ctx context.Context, q *api.ContractQuery) (_ *api.ContractQueryResponse, err error) {
	start := time.Now()
	var callFailed bool
	defer func() { e.noteQuery(time.Since(start), err, callFailed) }()
	if e.retired.Load() {
		return nil, ErrRetired
	}
	// The replay guard is this worker's: a query for another replica (or
	// for the chain, zero) would be fresh here. Checked first: a client
	// whose record names another identity at this endpoint (this
	// pRuntime's data was wiped) learns that, not "not running".
	if err := e.addressedToMe(q.Worker); err != nil {
		return nil, err
	}
	p, height, at, err := e.queryTarget(q.Contract)
	if err != nil {
		return nil, err
	}
	// The slot first: a query turned away busy has not used up its nonce
	// in the replay guard, so its client may send it again.
	release, err := e.querySlot(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	input, ch, err := p.c.OpenQuery(e.guard, q, at)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	res, qerr := p.c.QueryView(ctx, p.view, q.From, input, height, at, QueryTimeout)
	callFailed = qerr != nil
	return p.c.Answer(ch, q, height, res, qerr), nil
}

// recoveringNow reports whether this worker is recovering contract id (a
// query's rare path: it takes the engine's lock).
func (e *Engine) recoveringNow(id crypto.PublicKey) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.st.recovering[id]
	return ok
}

// ContractRoots returns the state root of every contract this worker runs.
func (e *Engine) ContractRoots() map[crypto.PublicKey][32]byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[crypto.PublicKey][32]byte{}
	for id, r := range e.running {
		out[id] = r.c.StateRoot()
	}
	return out
}

func (s *state) encodeUploads(w *codec.Writer) {
	ids := make([][32]byte, 0, len(s.uploads))
	for id := range s.uploads {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	w.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		u := s.uploads[id]
		w.Fixed(id[:])
		w.Fixed(u.deployer[:])
		w.Fixed(u.codeHash[:])
		w.Uvarint(u.seq)
		w.U8(u.replicas)
		w.Fixed(u.initHash[:])
		w.Bool(u.granted)
		w.Uvarint(u.execTimeout)
		w.BytesField(u.req.Encode())
		w.Uvarint(u.checkpointInterval)
	}
}

func (s *state) decodeUploads(r *codec.Reader) {
	for n := r.Uvarint(); r.Err() == nil && n > 0; n-- {
		var id [32]byte
		u := &upload{}
		r.Fixed(id[:])
		r.Fixed(u.deployer[:])
		r.Fixed(u.codeHash[:])
		u.seq = r.Uvarint()
		u.replicas = r.U8()
		r.Fixed(u.initHash[:])
		u.granted = r.Bool()
		u.execTimeout = r.Uvarint()
		q, err := api.DecodeRequirements(r.BytesField(128))
		if err != nil {
			r.Fail(err)
			return
		}
		u.req = *q
		u.checkpointInterval = r.Uvarint()
		s.uploads[id] = u
	}
}

// onChainQuery answers a query put on chain: the answer goes back through
// the chain as the contract's ContractReturn message. Only expiry is
// checked here (by block time, the same on every replica), with no replay
// guard: every replica answers every on-chain query in the chain's order,
// deterministically in all but its random sealing, and the chain keeps the
// first replica's answer; a replayed transaction is the chain's to refuse
// (account nonces), and a copy with a new nonce is a new paid query whose
// answer is sealed to its client. A query addressed to a worker (off-chain
// only) is refused here, so a captured off-chain query cannot be put on
// chain to reach the replicas whose guards never saw it.
func (e *Engine) onChainQuery(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin("contracts") {
		return fmt.Errorf("contract query from %s", m.Origin)
	}
	q, err := api.DecodeContractQuery(m.Payload)
	if err != nil {
		return err
	}
	e.noteInput(ctx, q.Contract)
	r, ok := e.running[q.Contract]
	if !ok {
		return nil
	}
	return e.runChainQuery(ctx, r, q)
}

// runChainQuery answers on-chain query q of contract r at ctx's block:
// live, or replayed by a recovery.
func (e *Engine) runChainQuery(ctx *Context, r *running, q *api.ContractQuery) error {
	if q.Worker != (crypto.PublicKey{}) {
		return fmt.Errorf("%w: on-chain query addressed to worker %s (off-chain only)", contracts.ErrQueryRefused, q.Worker.Short())
	}
	input, ch, err := r.c.OpenQuery(contracts.NewQueryGuard(), q, ctx.Time)
	if err != nil {
		return err
	}
	res, qerr := r.c.ChainQuery(context.Background(), q.From, input, ctx.Height, ctx.Time)
	resp := r.c.Answer(ch, q, ctx.Height, res, qerr)
	ret := contracts.Message{Topic: api.TopicContractReturn, Payload: resp.Encode()}
	if n := len(ret.Topic) + len(ret.Payload); n > e.egressBudget(q.Contract, r, ctx.Height) {
		return fmt.Errorf("%w: the answer (%d bytes) exceeds what the contract may still emit", contracts.ErrEgressBudget, n)
	}
	e.emitContract(r, &contracts.Result{Messages: []contracts.Message{ret}})
	return nil
}
