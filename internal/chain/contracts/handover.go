package contracts

// The contracts' side of a runtime migration (docs/keys.md, "State
// migration"): while one runs, only workers of its target build are
// assigned (ineligible), a contract takes up to its replicas of them on
// top of its old-build workers (OnGrant counts admitted workers only),
// and once its new-build workers caught up (api.ReplicaReady) its
// old-build ones are removed (handOver).

import (
	"encoding/binary"
	"slices"
	"strconv"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/gatekeeper"
	"github.com/phalago/phala/internal/chain/migration"
	"github.com/phalago/phala/internal/chain/registry"
	"github.com/phalago/phala/internal/chain/store"
)

// readyKey is the state key of worker's api.ReplicaReady for contract
// ("cy/" ‖ contract ‖ worker; value: varint height it reported).
func readyKey(contract, worker crypto.PublicKey) []byte {
	k := append([]byte("cy/"), contract[:]...)
	return append(k, worker[:]...)
}

// ready reports whether worker said it caught up with contract since it
// was last added to it.
func ready(kv store.KV, contract, worker crypto.PublicKey) bool {
	return kv.Get(readyKey(contract, worker)) != nil
}

// admitted returns the workers the running migration admits (all of them
// when none runs), in order.
func admitted(kv store.KV, workers []crypto.PublicKey) []crypto.PublicKey {
	m := migration.Running(kv)
	if m == nil {
		return workers
	}
	return slices.DeleteFunc(slices.Clone(workers), func(w crypto.PublicKey) bool { return migration.OnOldBuild(kv, m, w) })
}

// OnReady records a worker's api.ReplicaReady (pushed as the worker's own
// message) if the worker runs the contract: its state is rebuilt and in
// step with the chain. Anything else is ignored with a
// replica_ready_ignored event.
func OnReady(ctx *block.Context, worker crypto.PublicKey, payload []byte) {
	r, err := api.DecodeReplicaReady(payload)
	if err != nil {
		ctx.Event("replica_ready_ignored", "worker", worker.Hex(), "reason", "malformed: "+err.Error())
		return
	}
	rec := Record(ctx.KV, r.Contract)
	if rec == nil || !slices.Contains(rec.Workers, worker) {
		ctx.Event("replica_ready_ignored", "contract", r.Contract.Hex(), "worker", worker.Hex(), "reason", "the worker does not run the contract")
		return
	}
	ctx.KV.Set(readyKey(r.Contract, worker), binary.AppendVarint(nil, r.Height))
	ctx.Event("replica_ready", "contract", r.Contract.Hex(), "worker", worker.Hex(), "height", strconv.FormatInt(r.Height, 10))
}

// handOver (every ReplicaCheckInterval blocks while a migration runs)
// removes the old-build workers (api.RemovedMigrated) of every contract
// among ids, not failed and not in arbitration, whose new-build workers
// all caught up (api.ReplicaReady) and are its replicas' count, or fewer
// when no other new-build worker may be assigned to it.
func handOver(ctx *block.Context, ids []crypto.PublicKey) {
	m := migration.Running(ctx.KV)
	if m == nil {
		return
	}
	for _, id := range ids {
		rec := Record(ctx.KV, id)
		if rec == nil || rec.Status == api.ContractFailed || loadArbitration(ctx.KV, id) != nil {
			continue
		}
		var old, fresh []crypto.PublicKey
		for _, w := range rec.Workers {
			if migration.OnOldBuild(ctx.KV, m, w) {
				old = append(old, w)
			} else {
				fresh = append(fresh, w)
			}
		}
		if len(old) == 0 || len(fresh) == 0 || slices.ContainsFunc(fresh, func(w crypto.PublicKey) bool { return !ready(ctx.KV, id, w) }) {
			continue
		}
		p := loadPending(ctx.KV, rec.Upload)
		if p == nil || (len(fresh) < int(p.Replicas) && anyAssignable(ctx, p, rec)) {
			continue
		}
		removeWorkers(ctx, rec, old, api.RemovedMigrated)
	}
}

// anyAssignable reports whether some registered worker may still be
// assigned contract rec of upload p (ineligible gives no reason).
func anyAssignable(ctx *block.Context, p *api.UploadPending, rec *api.ContractRecord) bool {
	found := false
	registry.ForEachWorker(ctx.KV, func(w *api.WorkerRecord) bool {
		k := w.Info.IdentityKey
		if !gatekeeper.IsGatekeeper(ctx.KV, k) && ineligible(ctx, p, rec, k) == "" {
			found = true
		}
		return !found
	})
	return found
}

// ContractsOnOld counts the contracts (not failed) with a worker of a
// build migration m retires: migration.Progress.
func ContractsOnOld(kv store.KV, m *api.RuntimeMigration) int {
	n := 0
	store.Iterate(kv, []byte("c/"), func(_, v []byte) bool {
		rec, err := api.DecodeContractRecord(v)
		if err != nil {
			panic("corrupt contract record: " + err.Error())
		}
		if rec.Status != api.ContractFailed && slices.ContainsFunc(rec.Workers, func(w crypto.PublicKey) bool { return migration.OnOldBuild(kv, m, w) }) {
			n++
		}
		return true
	})
	return n
}
