// Package migration owns the chain's side of a runtime migration
// (docs/keys.md, "State migration"; the specification's "State Migration"
// improvement): the move of every contract and every gatekeeper seat to
// a new pRuntime build that governance approved by its measurement
// (api.ActionMigrateRuntime), and the revocation of the old builds once
// nothing depends on them.
//
// While a migration runs ("m/running", api.RuntimeMigration), only
// workers of the target build are assigned contracts (the contracts
// module asks Admits) and only its nodes stand in gatekeeper elections
// (the gatekeeper module asks Admits); the contracts module hands each
// contract from its old-build workers to new-build ones once those caught
// up (api.ReplicaReady). Every CheckInterval blocks the module counts
// what still depends on an old build (Progress, given by the
// application: contracts with an old-build worker, serving gatekeepers
// and members of unretired key sets on an old build) and records it in
// the migration's record; when both counts are zero it revokes the old
// measurements (registry), records the completion ("m/last",
// api.RuntimeMigrated) and announces it (api.TopicMigrationCompleted).
// Old-build pRuntimes then stop serving; every contract moves to a fresh
// key epoch (contracts' rekey rule), so keys an old build held protect
// nothing written after.
//
// A running migration can be cancelled (api.ActionCancelMigration, when
// its target build never comes, or was a mistake): Cancel ends it
// without revoking anything (the target stays allowed), records it in
// "m/last" (api.RuntimeMigrated, Cancelled) and announces it
// (api.TopicMigrationCancelled). From then on every allowed build is
// admitted again; what was handed over stays as it is.
package migration

import (
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/module"
	"github.com/phalago/phala/internal/chain/mq"
	"github.com/phalago/phala/internal/chain/registry"
	"github.com/phalago/phala/internal/chain/store"
)

// Name is the module's origin name in the queue.
const Name = api.MigrationModule

// CheckInterval is how often (blocks) a running migration counts what
// still depends on an old build.
const CheckInterval = 10

// Progress is what the migration needs of the other modules to know
// whether it is done. Each method counts under migration m.
type Progress interface {
	// ContractsOnOld counts the contracts (not failed) that have a
	// worker of an old build.
	ContractsOnOld(kv store.KV, m *api.RuntimeMigration) int
	// KeyHoldersOnOld counts the serving gatekeepers and the members of
	// unretired key sets that run an old build.
	KeyHoldersOnOld(kv store.KV, m *api.RuntimeMigration) int
}

// Running returns the running migration, nil if none runs.
func Running(kv store.KV) *api.RuntimeMigration {
	v := kv.Get(api.KeyRuntimeMigration)
	if v == nil {
		return nil
	}
	m, err := api.DecodeRuntimeMigration(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt runtime migration: %v", err))
	}
	return m
}

// Last returns the last ended (completed or cancelled) migration, nil if
// none ended.
func Last(kv store.KV) *api.RuntimeMigrated {
	v := kv.Get(api.KeyRuntimeMigrated)
	if v == nil {
		return nil
	}
	m, err := api.DecodeRuntimeMigrated(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt completed runtime migration: %v", err))
	}
	return m
}

// LastCompletedHeight is the height at which the last migration
// completed (revoked its old builds), 0 if none did: a cancelled
// migration's record carries the completion before it.
func LastCompletedHeight(kv store.KV) int64 {
	if m := Last(kv); m != nil {
		return m.LastCompleted()
	}
	return 0
}

// Admits reports whether a node of registration w may be given new work
// (a contract, a gatekeeper seat): always when no migration runs, else
// only if it runs the migration's target build.
func Admits(kv store.KV, w *api.WorkerRecord) bool {
	m := Running(kv)
	return m == nil || !m.IsOld(w.Measurement)
}

// OnOldBuild reports whether node's registration names a build the
// running migration retires (false when none runs or node is not
// registered).
func OnOldBuild(kv store.KV, m *api.RuntimeMigration, node crypto.PublicKey) bool {
	w := registry.Worker(kv, node)
	return m != nil && w != nil && m.IsOld(w.Measurement)
}

// Check says whether a migration to measurement may start now. Errors
// (api.ErrInvalidAction): a migration runs already; the allowlist is full
// and does not hold measurement.
func Check(kv store.KV, measurement []byte) error {
	if m := Running(kv); m != nil {
		return fmt.Errorf("%w: a migration to measurement %x runs since height %d; one at a time", api.ErrInvalidAction, []byte(m.Target), m.Start)
	}
	a := registry.Attestation(kv)
	if !a.MeasurementAllowed(measurement) && len(a.Measurements) >= api.MaxMeasurements {
		return fmt.Errorf("%w: the allowlist holds %d measurements already", api.ErrInvalidAction, api.MaxMeasurements)
	}
	return nil
}

// Start begins a migration to measurement (a checked motion's
// enactment): the measurement joins the allowlist if it is not on it,
// every other measurement on it will be revoked at the end. Event
// runtime_migration_started; announced as api.TopicMigrationStarted.
func Start(ctx *block.Context, measurement []byte) error {
	if err := Check(ctx.KV, measurement); err != nil {
		return err
	}
	list := registry.Attestation(ctx.KV).Measurements
	if !registry.Attestation(ctx.KV).MeasurementAllowed(measurement) {
		list = registry.SetMeasurementAllowed(ctx.KV, measurement, true)
	}
	m := &api.RuntimeMigration{Target: append(api.HexBytes(nil), measurement...), Start: ctx.Height}
	for _, x := range list {
		if m.IsOld(x) {
			m.From = append(m.From, x)
		}
	}
	ctx.KV.Set(api.KeyRuntimeMigration, m.Encode())
	ctx.Event("runtime_migration_started", "target", hex.EncodeToString(measurement), "old_builds", strconv.Itoa(len(m.From)))
	return mq.Emit(ctx, api.ModuleOrigin(Name), api.TopicMigrationStarted, m.Encode())
}

// CheckCancel says whether a running migration may be cancelled now
// (api.ErrInvalidAction when none runs).
func CheckCancel(kv store.KV) error {
	if Running(kv) == nil {
		return fmt.Errorf("%w: no runtime migration runs; nothing to cancel", api.ErrInvalidAction)
	}
	return nil
}

// Cancel ends the running migration (a checked cancel_migration motion's
// enactment) without revoking anything: the allowlist keeps every
// measurement, the target's included; from now on Admits admits every
// allowed build again (contracts and gatekeeper elections). What
// happened stays: contracts handed over keep their new-build workers, a
// contract that took new-build workers beside its old ones keeps both,
// a new-build gatekeeper elected keeps its seat. The migration is
// recorded as the last one (Cancelled, with the height) and announced
// (api.TopicMigrationCancelled) so pRuntimes stop restricting their
// grants; event runtime_migration_cancelled.
func Cancel(ctx *block.Context) error {
	if err := CheckCancel(ctx.KV); err != nil {
		return err
	}
	m := Running(ctx.KV)
	done := &api.RuntimeMigrated{Target: m.Target, Start: m.Start, Height: ctx.Height, Cancelled: true, PrevCompleted: LastCompletedHeight(ctx.KV)}
	ctx.KV.Delete(api.KeyRuntimeMigration)
	ctx.KV.Set(api.KeyRuntimeMigrated, done.Encode())
	ctx.Event("runtime_migration_cancelled", "target", hex.EncodeToString(m.Target), "start", strconv.FormatInt(m.Start, 10),
		"blocks", strconv.FormatInt(ctx.Height-m.Start, 10))
	return mq.Emit(ctx, api.ModuleOrigin(Name), api.TopicMigrationCancelled, done.Encode())
}

// endBlock checks a running migration every CheckInterval blocks and
// completes it when nothing depends on an old build.
func endBlock(ctx *block.Context, p Progress) error {
	m := Running(ctx.KV)
	if m == nil || ctx.Height%CheckInterval != 0 || ctx.Height <= m.Start {
		return nil
	}
	contracts, holders := p.ContractsOnOld(ctx.KV, m), p.KeyHoldersOnOld(ctx.KV, m)
	if contracts > 0 || holders > 0 {
		m.Checked, m.OldContracts, m.OldKeyHolders = ctx.Height, uint32(min(contracts, 1<<32-1)), uint32(min(holders, 1<<32-1))
		ctx.KV.Set(api.KeyRuntimeMigration, m.Encode())
		ctx.Event("runtime_migration_waiting", "target", hex.EncodeToString(m.Target), "contracts_on_old_builds", strconv.Itoa(contracts), "key_holders_on_old_builds", strconv.Itoa(holders))
		return nil
	}
	done := &api.RuntimeMigrated{Target: m.Target, Retired: m.From, Start: m.Start, Height: ctx.Height}
	for _, x := range m.From {
		if registry.Attestation(ctx.KV).MeasurementAllowed(x) {
			registry.SetMeasurementAllowed(ctx.KV, x, false)
		}
	}
	ctx.KV.Delete(api.KeyRuntimeMigration)
	ctx.KV.Set(api.KeyRuntimeMigrated, done.Encode())
	ctx.Event("runtime_migration_completed", "target", hex.EncodeToString(m.Target), "revoked", strconv.Itoa(len(m.From)), "blocks", strconv.FormatInt(ctx.Height-m.Start, 10))
	return mq.Emit(ctx, api.ModuleOrigin(Name), api.TopicMigrationCompleted, done.Encode())
}

// Spec is the module's table entry; p counts what still depends on an
// old build.
func Spec(p Progress) *module.Module {
	return &module.Module{
		Name:         Name,
		KeyPrefixes:  []string{"m/"},
		EndBlock:     func(ctx *block.Context) error { return endBlock(ctx, p) },
		StateQueries: []string{api.QueryMigration, api.QueryLastMigration},
	}
}
