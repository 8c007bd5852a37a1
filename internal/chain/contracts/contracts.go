// Package contracts owns the chain's side of confidential contracts: code
// uploads (ContractUploaded), the contract → workers map built from the
// gatekeepers' key grants (ContractDeployed), and queuing encrypted
// commands in chain order. The chain never sees a contract's keys, state
// or inputs in plaintext.
package contracts

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/computation"
	"github.com/phalago/phala/internal/chain/eras"
	"github.com/phalago/phala/internal/chain/gatekeeper"
	"github.com/phalago/phala/internal/chain/migration"
	"github.com/phalago/phala/internal/chain/module"
	"github.com/phalago/phala/internal/chain/mq"
	"github.com/phalago/phala/internal/chain/registry"
	"github.com/phalago/phala/internal/chain/staking"
	"github.com/phalago/phala/internal/chain/store"
	"github.com/phalago/phala/internal/chain/subnet"
)

// Module is the module's origin name in the queue.
const Module = "contracts"

// MaxCodeBytes bounds decompressed code.
const MaxCodeBytes = 32 << 20

// CodeHash returns the SHA-256 of the decompressed code.
func CodeHash(gz []byte) ([32]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return [32]byte{}, fmt.Errorf("%w: code is not gzip: %v", api.ErrInvalidCall, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(zr, MaxCodeBytes+1))
	if err != nil {
		return [32]byte{}, fmt.Errorf("%w: code does not decompress: %v", api.ErrInvalidCall, err)
	}
	if n > MaxCodeBytes {
		return [32]byte{}, fmt.Errorf("%w: code over %d bytes decompressed", api.ErrTooLarge, MaxCodeBytes)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out, nil
}

// Upload records an upload and announces it to the gatekeepers.
func Upload(ctx *block.Context, deployer crypto.PublicKey, c *api.UploadContract) error {
	if len(c.Code) == 0 {
		return fmt.Errorf("%w: empty code", api.ErrInvalidCall)
	}
	replicas := c.Replicas
	if replicas == 0 {
		replicas = 1
	}
	if replicas > api.MaxReplicas {
		return fmt.Errorf("%w: at most %d replicas", api.ErrInvalidCall, api.MaxReplicas)
	}
	if c.CheckpointInterval > api.MaxCheckpointInterval {
		return fmt.Errorf("%w: checkpoint interval %d blocks, at most %d", api.ErrInvalidCall, c.CheckpointInterval, api.MaxCheckpointInterval)
	}
	if c.ExecTimeout > api.MaxExecTimeout {
		return fmt.Errorf("%w: execution timeout %d blocks, at most %d", api.ErrInvalidCall, c.ExecTimeout, api.MaxExecTimeout)
	}
	req := c.Requirements
	if req.Subnet != ([32]byte{}) && subnet.Get(ctx.KV, req.Subnet) == nil {
		return fmt.Errorf("%w: %x (create it with `phala subnet create` first)", api.ErrNoSuchSubnet, req.Subnet)
	}
	hash, err := CodeHash(c.Code)
	if err != nil {
		return err
	}
	seq := uint64(0)
	if v := ctx.KV.Get(api.DeployerSeqKey(deployer)); len(v) == 8 {
		seq = binary.BigEndian.Uint64(v)
	}
	ctx.KV.Set(api.DeployerSeqKey(deployer), binary.BigEndian.AppendUint64(nil, seq+1))
	id := api.UploadID(deployer, hash, seq)
	p := &api.UploadPending{Deployer: deployer, CodeHash: hash, Sequence: seq, Replicas: replicas, Height: ctx.Height, ExecTimeout: c.ExecTimeout, Requirements: req, CheckpointInterval: c.CheckpointInterval}
	ctx.KV.Set(api.UploadPendingKey(id), p.Encode())
	ctx.Event("contract_uploaded", "deployer", deployer.Address(), "code_hash", hex.EncodeToString(hash[:]),
		"sequence", strconv.FormatUint(seq, 10), "upload_id", hex.EncodeToString(id[:]), "requirements", req.String())
	if !req.IsZero() {
		if why := Unsatisfied(ctx.KV, &req, ctx.Height, ctx.Params); why != "" {
			ctx.Event("contract_unsatisfied", "upload_id", hex.EncodeToString(id[:]), "reason", why)
		}
	}
	u := &api.ContractUploaded{Deployer: deployer, CodeHash: hash, Sequence: seq, Replicas: replicas, Code: c.Code, InitInput: c.InitInput, ExecTimeout: c.ExecTimeout, Requirements: req, CheckpointInterval: c.CheckpointInterval}
	return mq.Emit(ctx, api.ModuleOrigin(Module), api.TopicContractUploaded, u.Encode())
}

func loadPending(kv store.KV, id [32]byte) *api.UploadPending {
	v := kv.Get(api.UploadPendingKey(id))
	if v == nil {
		return nil
	}
	p, err := api.DecodeUploadPending(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt pending upload %x: %v", id, err))
	}
	return p
}

// Record returns a deployed contract's record, or nil.
func Record(kv store.KV, id crypto.PublicKey) *api.ContractRecord {
	v := kv.Get(api.ContractKey(id))
	if v == nil {
		return nil
	}
	r, err := api.DecodeContractRecord(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt contract record %s: %v", id.Hex(), err))
	}
	return r
}

// ErrContractFailed: the contract failed to start (its record's Reason
// says why); it takes no command.
var ErrContractFailed = fmt.Errorf("%w: the contract failed to start", api.ErrInvalidCall)

// live returns the record of a deployed contract that has not failed.
func live(kv store.KV, id crypto.PublicKey) (*api.ContractRecord, error) {
	rec := Record(kv, id)
	if rec == nil {
		return nil, fmt.Errorf("%w: no contract %s is deployed", api.ErrInvalidCall, id.Hex())
	}
	if rec.Status == api.ContractFailed {
		return nil, fmt.Errorf("%w at height %d (%s): contract %s runs nowhere", ErrContractFailed, rec.StatusHeight, rec.Reason, id.Hex())
	}
	return rec, nil
}

// Command queues an encrypted command for a deployed contract that has
// not failed (ErrContractFailed), with its declared gas limit (already
// admitted and paid for: AdmitGas).
func Command(ctx *block.Context, from crypto.PublicKey, c *api.ContractCommand) error {
	if err := ctx.Params.CheckGasLimit(c.GasLimit); err != nil {
		return err
	}
	rec, err := live(ctx.KV, c.Contract)
	if err != nil {
		return err
	}
	if rec.ExecTimeout > 0 {
		computation.ScheduleTimeout(ctx, c.Contract, rec.ExecTimeout)
	}
	if len(c.Sealed) == 0 {
		return fmt.Errorf("%w: empty command", api.ErrInvalidCall)
	}
	m := &api.ContractCommandMessage{Contract: c.Contract, From: from, Nonce: c.Nonce, GasLimit: c.GasLimit, Sealed: c.Sealed}
	return mq.Emit(ctx, api.ModuleOrigin(Module), api.TopicContractCommand, m.Encode())
}

// AdmitGas is a command's admission, run by the application with the fee
// (docs/economy.md, "Execution is paid for"): it refuses a gas limit of 0
// or over Params.MaxCommandGas (api.ErrInvalidCall), and one that would
// take any of the contract's workers over Params.MaxWorkerGasPerBlock of
// declared gas in this block (api.ErrWorkerBlockFull: send it again in a
// later block); otherwise it adds the limit to each worker's count for
// this block (api.WorkerGasKey). A command to a contract that is not
// deployed is left to Command to refuse (it reserves nothing). The caller
// discards these writes with the fee's if either fails, so a refused
// command changes nothing.
func AdmitGas(ctx *block.Context, c *api.ContractCommand) error {
	if err := ctx.Params.CheckGasLimit(c.GasLimit); err != nil {
		return err
	}
	rec := Record(ctx.KV, c.Contract)
	max := ctx.Params.MaxWorkerGasPerBlock
	if rec == nil || max == 0 {
		return nil
	}
	used := make([]uint64, len(rec.Workers))
	for i, w := range rec.Workers {
		used[i] = workerGas(ctx.KV, w, ctx.Height)
		if used[i] > max || c.GasLimit > max-used[i] {
			return fmt.Errorf("%w: the commands of block %d already declare %d gas for worker %s, which runs contract %s; with this command's %d it would exceed max_worker_gas_per_block %d: send it again in a later block (or declare less gas)",
				api.ErrWorkerBlockFull, ctx.Height, used[i], w.Short(), c.Contract.Short(), c.GasLimit, max)
		}
	}
	for i, w := range rec.Workers {
		v := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(ctx.Height)), used[i]+c.GasLimit)
		ctx.KV.Set(api.WorkerGasKey(w), v)
	}
	return nil
}

// workerGas is the gas the commands of block height declared so far for
// worker.
func workerGas(kv store.KV, worker crypto.PublicKey, height int64) uint64 {
	v := kv.Get(api.WorkerGasKey(worker))
	if len(v) != 16 || int64(binary.BigEndian.Uint64(v)) != height {
		return 0
	}
	return binary.BigEndian.Uint64(v[8:])
}

// OnGrant accepts a grant the chain built from a completed round of
// partials (keys.go). The first grant of an upload deploys the contract
// (its record takes the contract's public keys, key era and epoch, and the
// granted workers); a later grant for a deployed contract adds its
// workers while the contract has fewer than the replicas asked for (a
// replacement, docs/availability.md "Reassignment"). Either way the change
// is announced as one api.ContractDeployed carrying the grant, so the
// added workers take the keys they combined from the round. A grant is
// ignored whole (an event says why) if its upload is unknown, if it names
// more workers than the contract may still take, a worker twice or one
// already running it or excluded by its deployer, a worker that is not
// registry.Attested, not staking.Assignable, found unresponsive
// (computation.Responsive) or short of the deployment's requirements
// (Unmet), or if it carries other keys than the deployed contract's.
func OnGrant(ctx *block.Context, g *api.ContractKeyGrant) {
	ignore := func(why string) {
		ctx.Event("contract_grant_ignored", "upload_id", hex.EncodeToString(g.Upload[:]), "reason", why)
	}
	p := loadPending(ctx.KV, g.Upload)
	if p == nil {
		ignore("unknown upload")
		return
	}
	var rec *api.ContractRecord
	if v := ctx.KV.Get(api.ContractUploadKey(g.Upload)); v != nil {
		rec = Record(ctx.KV, crypto.PublicKey(v))
		switch {
		case rec.Identity != g.Identity || rec.Ecdh != g.Ecdh:
			ignore("the grant's keys are not the deployed contract's")
			return
		case rec.Status == api.ContractFailed:
			ignore("the contract failed to start")
			return
		}
	} else if Record(ctx.KV, g.Identity) != nil {
		ignore("contract key already in use")
		return
	}
	current := 0
	if rec != nil {
		current = len(admitted(ctx.KV, rec.Workers))
	}
	if len(g.Workers) == 0 || current+len(g.Workers) > int(p.Replicas) {
		ignore(fmt.Sprintf("%d worker(s) granted, the contract has %d of its %d replicas", len(g.Workers), current, p.Replicas))
		return
	}
	var added []crypto.PublicKey
	for _, k := range g.Workers {
		if why := ineligible(ctx, p, rec, k); why != "" {
			ignore(fmt.Sprintf("worker %s: %s", k.Hex(), why))
			return
		}
		if slices.Contains(added, k) {
			ignore(fmt.Sprintf("worker %s granted twice", k.Hex()))
			return
		}
		added = append(added, k)
	}
	reason := api.DeployedAdded
	if rec == nil {
		reason = api.DeployedFirst
		rec = &api.ContractRecord{Upload: g.Upload, Deployer: p.Deployer, CodeHash: p.CodeHash, Sequence: p.Sequence, Identity: g.Identity, Ecdh: g.Ecdh,
			Status: api.ContractStarting, StatusHeight: ctx.Height, ExecTimeout: p.ExecTimeout, Requirements: p.Requirements, CheckpointInterval: p.CheckpointInterval, KeyEra: g.Era, KeyEpoch: g.Epoch, EpochHeight: ctx.Height}
		ctx.KV.Set(api.ContractUploadKey(g.Upload), g.Identity[:])
		recordEscrow(ctx.KV, g.Identity)
	}
	rec.Workers = append(rec.Workers, added...)
	ctx.KV.Set(api.ContractKey(g.Identity), rec.Encode())
	for _, w := range added {
		ctx.Event("contract_deployed", "contract", g.Identity.Hex(), "worker", w.Hex(), "key_era", strconv.FormatUint(g.Era, 10), "reason", reason)
	}
	announce(ctx, rec, nil, reason, g.Encode())
}

// ineligible says why worker may not be assigned the contract of upload p
// (rec: its record, nil before the deployment), "" if it may.
func ineligible(ctx *block.Context, p *api.UploadPending, rec *api.ContractRecord, worker crypto.PublicKey) string {
	if rec != nil && slices.Contains(rec.Workers, worker) {
		return "already runs the contract"
	}
	if rec != nil && slices.Contains(rec.Excluded, worker) {
		return "excluded by the contract's deployer"
	}
	wr, err := registry.Attested(ctx.KV, worker, ctx.Height)
	if err != nil {
		return "not attested (unregistered, expired or measurement no longer allowed)"
	}
	if gatekeeper.IsGatekeeper(ctx.KV, worker) {
		return "a gatekeeper (gatekeepers run no contract)"
	}
	if m := migration.Running(ctx.KV); m != nil && m.IsOld(wr.Measurement) {
		return fmt.Sprintf("runs pRuntime build %x, which the runtime migration to %x retires", wr.Measurement, []byte(m.Target))
	}
	if why := Unmet(ctx.KV, &p.Requirements, wr); why != "" {
		return "does not satisfy the deployment's requirements: " + why
	}
	if !staking.Assignable(ctx.KV, worker, ctx.Params) {
		return fmt.Sprintf("stake %s, below min_worker_stake %s", api.FormatAmountUnits(staking.NodeStake(ctx.KV, worker)), api.FormatAmountUnits(ctx.Params.MinWorkerStake))
	}
	if !computation.Responsive(ctx.KV, worker, ctx.Height, eras.Of(ctx)) {
		return "found unresponsive at the last era end: not assignable this era"
	}
	return ""
}

// announce emits the api.ContractDeployed of a change of rec's workers.
func announce(ctx *block.Context, rec *api.ContractRecord, removed []crypto.PublicKey, reason string, grant []byte) {
	d := &api.ContractDeployed{Contract: rec.Identity, Upload: rec.Upload, Workers: rec.Workers, Removed: removed, Reason: reason, Grant: grant}
	if err := mq.Emit(ctx, api.ModuleOrigin(Module), api.TopicContractDeployed, d.Encode()); err != nil {
		panic(fmt.Sprintf("announce the workers of %s: %v", rec.Identity.Hex(), err)) // a module message of bounded size
	}
}

// removeWorkers takes workers out of rec (saved), with an event each and
// one api.ContractDeployed; a gatekeeper then grants replacements.
func removeWorkers(ctx *block.Context, rec *api.ContractRecord, workers []crypto.PublicKey, reason string) {
	rec.Workers = slices.DeleteFunc(rec.Workers, func(w crypto.PublicKey) bool { return slices.Contains(workers, w) })
	ctx.KV.Set(api.ContractKey(rec.Identity), rec.Encode())
	if len(rec.Workers) == 0 && rec.Status != api.ContractFailed {
		ctx.KV.Set(orphanKey(rec.Identity), binary.AppendVarint(nil, ctx.Height))
	}
	for _, w := range workers {
		ctx.KV.Delete(readyKey(rec.Identity, w))
		ctx.Event("contract_worker_removed", "contract", rec.Identity.Hex(), "worker", w.Hex(), "reason", reason)
	}
	announce(ctx, rec, workers, reason, nil)
}

// ReplicaCheckInterval is how often (blocks) the contracts module checks
// every contract's workers and removes those no longer fit to run it
// (checkReplicas).
const ReplicaCheckInterval = 10

// checkContracts (end of every ReplicaCheckInterval-th block) is one pass
// over the records: the replica check (checkReplicas), then the key
// epochs and key eras (checkEpochs, epochs.go).
func checkContracts(ctx *block.Context) {
	if ctx.Height%ReplicaCheckInterval != 0 {
		return
	}
	ids := checkReplicas(ctx)
	handOver(ctx, ids)
	checkEpochs(ctx, ids)
}

// checkReplicas removes from each contract that has not failed the
// workers whose registration expired or whose measurement was revoked
// (api.RemovedExpired), whose stake fell below min_worker_stake
// (api.RemovedStake), that the chain found unresponsive at the last
// era end (api.RemovedUnresponsive), or that became gatekeepers
// (api.RemovedGatekeeper). It returns every contract's id, in
// record order.
func checkReplicas(ctx *block.Context) []crypto.PublicKey {
	var ids []crypto.PublicKey
	type removal struct {
		rec     *api.ContractRecord
		why     string
		workers []crypto.PublicKey
	}
	var rs []removal
	store.Iterate(ctx.KV, []byte("c/"), func(_, v []byte) bool {
		rec, err := api.DecodeContractRecord(v)
		if err != nil {
			panic(fmt.Sprintf("corrupt contract record: %v", err))
		}
		ids = append(ids, rec.Identity)
		if rec.Status == api.ContractFailed {
			return true
		}
		byWhy := map[string][]crypto.PublicKey{}
		var whys []string
		sched := eras.Of(ctx)
		for _, w := range rec.Workers {
			why := ""
			switch {
			case !attested(ctx.KV, w, ctx.Height):
				why = api.RemovedExpired
			case !staking.Assignable(ctx.KV, w, ctx.Params):
				why = api.RemovedStake
			case !computation.Responsive(ctx.KV, w, ctx.Height, sched):
				why = api.RemovedUnresponsive
			case gatekeeper.IsGatekeeper(ctx.KV, w):
				why = api.RemovedGatekeeper
			}
			if why != "" {
				if byWhy[why] == nil {
					whys = append(whys, why)
				}
				byWhy[why] = append(byWhy[why], w)
			}
		}
		for _, why := range whys {
			rs = append(rs, removal{rec, why, byWhy[why]})
		}
		return true
	})
	for _, r := range rs {
		removeWorkers(ctx, Record(ctx.KV, r.rec.Identity), r.workers, r.why)
	}
	return ids
}

// attested reports whether worker has an attested registration at height.
func attested(kv store.KV, worker crypto.PublicKey, height int64) bool {
	_, err := registry.Attested(kv, worker, height)
	return err == nil
}

// Reassign removes a worker from a contract at its deployer's request
// (api.ContractReassign) and excludes it from the contract from then on
// (the record keeps the last api.MaxExcludedWorkers). Errors
// (api.ErrInvalidCall): no such contract, not its deployer, the worker
// does not run it.
func Reassign(ctx *block.Context, signer crypto.PublicKey, c *api.ContractReassign) error {
	rec := Record(ctx.KV, c.Contract)
	switch {
	case rec == nil:
		return fmt.Errorf("%w: no contract %s is deployed", api.ErrInvalidCall, c.Contract.Hex())
	case rec.Deployer != signer:
		return fmt.Errorf("%w: only the contract's deployer %s may reassign it", api.ErrInvalidCall, rec.Deployer.Address())
	case !slices.Contains(rec.Workers, c.Worker):
		return fmt.Errorf("%w: worker %s does not run contract %s (its workers: %d)", api.ErrInvalidCall, c.Worker.Hex(), c.Contract.Hex(), len(rec.Workers))
	}
	rec.Excluded = append(rec.Excluded, c.Worker)
	if n := len(rec.Excluded); n > api.MaxExcludedWorkers {
		rec.Excluded = rec.Excluded[n-api.MaxExcludedWorkers:]
	}
	removeWorkers(ctx, rec, []crypto.PublicKey{c.Worker}, api.RemovedByDeployer)
	return nil
}

// Unmet says why the attested worker wr does not satisfy the deployment
// requirements q ("" if it does): not a member of q.Subnet, or short of
// its hardware requirements (api.Requirements.Unmet). The pRuntime
// gatekeeper applies the same rule when it picks workers.
func Unmet(kv store.KV, q *api.Requirements, wr *api.WorkerRecord) string {
	var why []string
	if q.Subnet != ([32]byte{}) && !subnet.Member(kv, q.Subnet, wr.Info.IdentityKey) {
		why = append(why, fmt.Sprintf("not a member of subnet %x", q.Subnet))
	}
	if hw := q.Unmet(wr); hw != "" {
		why = append(why, hw)
	}
	return strings.Join(why, "; ")
}

// Unsatisfied says why no worker (gatekeepers run no contract) can currently run a deployment with
// requirements q ("" if at least one can): "no worker satisfies the
// requirements: ..." naming the subnet with no attested staked worker, or
// how many attested staked workers fall short of which requirement. It
// reads the subnet's members (at most api.MaxSubnetMembers) when q names
// one, every registered worker otherwise.
func Unsatisfied(kv store.KV, q *api.Requirements, height int64, params api.Params) string {
	gks := gatekeeper.Gatekeepers(kv)
	sched := eras.Schedule(kv, params)
	eligible := func(w *api.WorkerRecord) bool {
		return !slices.Contains(gks, w.Info.IdentityKey) && registry.WorkerActive(kv, w, height) && staking.Assignable(kv, w.Info.IdentityKey, params) && computation.Responsive(kv, w.Info.IdentityKey, height, sched)
	}
	attested, short := 0, ""
	check := func(w *api.WorkerRecord) bool {
		if !eligible(w) {
			return true
		}
		attested++
		why := q.Unmet(w)
		if why == "" {
			return false
		}
		if short == "" {
			short = fmt.Sprintf("worker %s has %s", w.Info.IdentityKey.Short(), why)
		}
		return true
	}
	found := false
	if q.Subnet != ([32]byte{}) {
		s := subnet.Get(kv, q.Subnet)
		if s == nil {
			return fmt.Sprintf("no worker satisfies the requirements: subnet %x does not exist", q.Subnet)
		}
		for _, m := range s.Members {
			if w := registry.Worker(kv, m); w != nil && !check(w) {
				found = true
				break
			}
		}
		if !found && attested == 0 {
			return fmt.Sprintf("no worker satisfies the requirements: subnet %x has no attested staked worker (%d member(s))", q.Subnet, len(s.Members))
		}
	} else {
		registry.ForEachWorker(kv, func(w *api.WorkerRecord) bool {
			found = !check(w)
			return !found
		})
		if !found && attested == 0 {
			return "no worker satisfies the requirements: no attested staked worker is registered"
		}
	}
	if found {
		return ""
	}
	return fmt.Sprintf("no worker satisfies the requirements (%s): none of the %d attested staked candidate(s) does (%s)", q.String(), attested, short)
}

// OnStatus records a contract's start report (api.ContractStatusReport,
// emitted by pRuntime on a worker running it, signed with the contract's
// key: only an enclave holding it can). The first report wins: replicas
// report the same (validation, instantiation and init are deterministic),
// and a contract that ran commands does not become failed. Malformed or
// later reports are ignored (an event says so).
func OnStatus(ctx *block.Context, contract crypto.PublicKey, payload []byte) {
	rec := Record(ctx.KV, contract)
	rep, err := api.DecodeContractStatusReport(payload)
	switch {
	case rec == nil:
		return
	case err != nil:
		ctx.Event("contract_status_ignored", "contract", contract.Hex(), "reason", "malformed report")
		return
	case rec.Status != api.ContractStarting:
		return
	}
	rec.Status, rec.Reason, rec.StatusHeight = rep.Status, rep.Reason, ctx.Height
	if rep.Status == api.ContractRunning {
		rec.Reason = ""
	}
	ctx.KV.Set(api.ContractKey(contract), rec.Encode())
	if rec.Status == api.ContractFailed {
		ctx.Event("contract_failed", "contract", contract.Hex(), "reason", rec.Reason)
		return
	}
	ctx.Event("contract_running", "contract", contract.Hex())
}

// OnState applies a contract's state update (api.StateUpdate, pushed as
// the contract's own message: only an enclave holding its key signs it;
// the queue keeps the first replica's and refuses the identical others by
// sequence). It is refused (an event says why, the state stays) unless its
// previous root is the root of the contract's last update (api.EmptyStateRoot
// before the first) and it covers a later height; then its changes are
// written to the contract's entries ("ck/<contract>/<location>") and the
// checkpoint record ("cc/<contract>") takes its height, counter and root;
// its undo record is kept for arbitration (keepUndo, arbitration.go).
// The chain does not recompute roots: a recovering worker checks the
// entries against the root (docs/availability.md).
func OnState(ctx *block.Context, contract crypto.PublicKey, payload []byte) {
	refuse := func(why string) {
		ctx.Event("state_update_refused", "contract", contract.Hex(), "reason", why)
	}
	if Record(ctx.KV, contract) == nil {
		return
	}
	u, err := api.DecodeStateUpdate(payload)
	if err != nil {
		refuse("malformed: " + err.Error())
		return
	}
	cp := &api.Checkpoint{Root: api.EmptyStateRoot}
	if v := ctx.KV.Get(api.CheckpointKey(contract)); v != nil {
		if cp, err = api.DecodeCheckpoint(v); err != nil {
			panic(fmt.Sprintf("corrupt checkpoint of %s: %v", contract.Hex(), err))
		}
	}
	switch {
	case u.PrevRoot != cp.Root:
		refuse(fmt.Sprintf("previous root %x is not the contract's root %x (height %d)", u.PrevRoot[:8], cp.Root[:8], cp.Height))
		return
	case u.Height <= cp.Height || u.Height >= ctx.Height:
		refuse(fmt.Sprintf("height %d is not after the last update's %d and before this block", u.Height, cp.Height))
		return
	}
	undo := captureUndo(ctx, contract, u)
	for _, c := range u.Changes {
		k := api.StateEntryKey(contract, c.Location)
		if old := ctx.KV.Get(k); old != nil {
			cp.Entries--
			cp.Bytes -= uint64(api.StateLocationSize + len(old))
		}
		if c.Value == nil {
			ctx.KV.Delete(k)
			continue
		}
		ctx.KV.Set(k, c.Value)
		cp.Entries++
		cp.Bytes += uint64(api.StateLocationSize + len(c.Value))
	}
	cp.Height, cp.Seq, cp.Calls, cp.Root = u.Height, u.Seq, u.Calls, u.NewRoot
	ctx.KV.Set(api.CheckpointKey(contract), cp.Encode())
	keepUndo(ctx, contract, u.Height, undo)
	ctx.Event("state_update", "contract", contract.Hex(), "height", strconv.FormatInt(u.Height, 10), "changes", strconv.Itoa(len(u.Changes)))
	if rec := Record(ctx.KV, contract); endMigration(ctx, rec, u) {
		ctx.KV.Set(api.ContractKey(contract), rec.Encode())
	}
}

// Query queues an on-chain query for a deployed contract. A query that
// names a worker is off-chain only (api.ContractQuery) and refused.
func Query(ctx *block.Context, c *api.ContractQueryCall) error {
	if c.Query.Worker != (crypto.PublicKey{}) {
		return fmt.Errorf("%w: the query names worker %s: it is for that worker's endpoint, on-chain queries name no worker", api.ErrInvalidCall, c.Query.Worker.Hex())
	}
	if _, err := live(ctx.KV, c.Query.Contract); err != nil {
		return err
	}
	return mq.Emit(ctx, api.ModuleOrigin(Module), api.TopicContractQuery, c.Query.Encode())
}

// OnReturn stores a contract's answer to an on-chain query under (that
// contract, query hash) if the contract signed it (the first replica's
// answer wins). A contract cannot answer for another.
func OnReturn(ctx *block.Context, contract crypto.PublicKey, payload []byte) {
	resp, err := api.DecodeContractQueryResponse(payload)
	if err != nil || !contract.Verify(api.ContextQueryResponse, resp.SignBytes(), resp.Signature) {
		return
	}
	key := api.ContractReturnKey(contract, resp.Query)
	if ctx.KV.Get(key) != nil {
		return
	}
	ctx.KV.Set(key, payload)
	ctx.Event("contract_return", "contract", contract.Hex(), "query", hex.EncodeToString(resp.Query[:]))
}

// Spec returns the contracts module's entry in the chain's module table:
// it owns the "c" keys (records "c/", uploads "cu/", deployer sequences
// "cs/", pending uploads "cp/", on-chain query answers "cr/", the block's
// declared gas per worker "cg/", checkpoints "cc/" and entries "ck/",
// arbitrations "ca/", state votes "cv/", undo records "cx/", rounds of
// key partials "kr/", pending rekeys "ce/", replicas ready "cy/", escrow
// accounts' owners "cw/", payout results "co/" and contracts that lost
// every worker "cz/"); it executes uploads,
// commands, on-chain queries and arbitration requests, admits contract
// origins (deployed contracts) into the queue, consumes key-set members'
// partials, workers' reports of derived contract keys, contracts' query
// answers, start reports, state updates, calls to other contracts and
// payout requests (interop.go), workers' state votes, and serves the
// contracts' proved reads. The accounts module tells it of transfers
// (Credited: deposits to escrow accounts).
func Spec() *module.Module {
	return &module.Module{
		Name:        Module,
		KeyPrefixes: []string{"c/", "cu/", "cs/", "cp/", "cr/", "cc/", "ck/", "cg/", "ca/", "cv/", "cx/", "kr/", "ce/", "cy/", "cq/", "cw/", "co/", "cz/"},
		Calls: map[api.CallKind]module.CallHandler{
			api.CallUploadContract: func(ctx *block.Context, signer crypto.PublicKey, c api.Call) error {
				return Upload(ctx, signer, c.(*api.UploadContract))
			},
			api.CallContractCommand: func(ctx *block.Context, signer crypto.PublicKey, c api.Call) error {
				return Command(ctx, signer, c.(*api.ContractCommand))
			},
			api.CallContractQuery: func(ctx *block.Context, _ crypto.PublicKey, c api.Call) error {
				return Query(ctx, c.(*api.ContractQueryCall))
			},
			api.CallContractReassign: func(ctx *block.Context, signer crypto.PublicKey, c api.Call) error {
				return Reassign(ctx, signer, c.(*api.ContractReassign))
			},
			api.CallArbitrationRequest: func(ctx *block.Context, signer crypto.PublicKey, c api.Call) error {
				return Request(ctx, signer, c.(*api.ArbitrationRequest))
			},
		},
		Origins: map[api.OriginKind]module.Authorizer{api.OriginContract: authorize},
		Consumes: []module.Consumer{
			{Origin: api.OriginContract, Topic: api.TopicContractReturn, Handle: func(ctx *block.Context, m *api.Message) {
				OnReturn(ctx, m.Origin.Key, m.Payload)
			}},
			{Origin: api.OriginContract, Topic: api.TopicContractStatus, Handle: func(ctx *block.Context, m *api.Message) {
				OnStatus(ctx, m.Origin.Key, m.Payload)
			}},
			{Origin: api.OriginContract, Topic: api.TopicContractState, Handle: func(ctx *block.Context, m *api.Message) {
				OnState(ctx, m.Origin.Key, m.Payload)
			}},
			{Origin: api.OriginContract, Topic: api.TopicContractCall, Handle: func(ctx *block.Context, m *api.Message) {
				OnCall(ctx, m.Origin.Key, m.Payload)
			}},
			{Origin: api.OriginContract, Topic: api.TopicPayout, Handle: func(ctx *block.Context, m *api.Message) {
				OnPayout(ctx, m.Origin.Key, m.Payload)
			}},
			{Origin: api.OriginWorker, Topic: api.TopicKeyPartials, Handle: func(ctx *block.Context, m *api.Message) {
				OnPartials(ctx, m.Origin.Key, m.Payload)
			}},
			{Origin: api.OriginWorker, Topic: api.TopicContractKeyed, Handle: func(ctx *block.Context, m *api.Message) {
				OnKeyed(ctx, m.Origin.Key, m.Payload)
			}},
			{Origin: api.OriginWorker, Topic: api.TopicStateVote, Handle: func(ctx *block.Context, m *api.Message) {
				OnVote(ctx, m.Origin.Key, m.Payload)
			}},
			{Origin: api.OriginWorker, Topic: api.TopicReplicaReady, Handle: func(ctx *block.Context, m *api.Message) {
				OnReady(ctx, m.Origin.Key, m.Payload)
			}},
		},
		EndBlock: func(ctx *block.Context) error {
			checkContracts(ctx)
			pruneRounds(ctx)
			expireArbitrations(ctx)
			return nil
		},
		Queries:      map[string]module.Querier{api.QueryContractEntries: queryEntries},
		StateQueries: []string{api.QueryContract, api.QueryContractUpload, api.QueryDeployerSeq, api.QueryContractReturn, api.QueryUploadPending, api.QueryCheckpoint, api.QueryArbitration, api.QueryContractPayout, api.QueryEscrowOwner},
	}
}

// authorize admits messages of deployed contracts.
func authorize(kv store.KV, _ api.OriginKind, key crypto.PublicKey, _ int64) error {
	if Record(kv, key) == nil {
		return fmt.Errorf("%w: no contract %s is deployed", api.ErrUnknownOrigin, key.Hex())
	}
	return nil
}
