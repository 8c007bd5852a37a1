package engine

// Runtime migration, the pRuntime's side (docs/keys.md, "State
// migration"). Every pRuntime follows the running migration
// (api.TopicMigrationStarted): a gatekeeper then assigns contracts only to
// workers of its target build, on top of the old-build workers a contract
// still has (the chain counts the same way). A worker of the target build
// added to a contract that ran before says when it has rebuilt the
// contract and runs in step (api.ReplicaReady, after Recover); the chain
// then removes the contract's old-build workers. When the chain completes
// the migration (api.TopicMigrationCompleted) the old measurements leave
// the allowlist, and a pRuntime of an old build retires: it drops every
// contract it still runs and every MasterKey share it holds (the sealed
// file rewritten without them), refuses queries (ErrRetired), and says
// so in its log and info; its registration is revoked with its
// measurement, so the chain accepts nothing more from it. When governance
// cancels the migration (api.TopicMigrationCancelled) nothing retires and
// every allowed build is assigned contracts again.

import (
	"errors"
	"fmt"
	"slices"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// ErrRetired is returned for queries to a pRuntime whose build a
// completed runtime migration retired.
var ErrRetired = errors.New("this pRuntime's build was retired by a runtime migration: it serves nothing; its operator runs the new build")

const migrationModule = api.MigrationModule

// onMigrationStarted follows the start of a runtime migration.
func (e *Engine) onMigrationStarted(_ *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin(migrationModule) {
		return fmt.Errorf("runtime migration from %s, not the migration module", m.Origin)
	}
	mig, err := api.DecodeRuntimeMigration(m.Payload)
	if err != nil {
		return err
	}
	e.st.migration = mig
	if mig.IsOld(e.cfg.Platform.Measurement()) {
		e.log.Warn("runtime migration started: this pRuntime's build is retired by it; it keeps serving until its contracts and key shares are handed over to the new build, then stops",
			"target", fmt.Sprintf("%x", []byte(mig.Target)), "this_build", fmt.Sprintf("%x", e.cfg.Platform.Measurement()))
	} else {
		e.log.Info("runtime migration started: this pRuntime runs its target build", "target", fmt.Sprintf("%x", []byte(mig.Target)))
	}
	return nil
}

// onMigrationCompleted follows the end of a runtime migration: its old
// measurements leave the allowlist, and this pRuntime retires if it runs
// one of them.
func (e *Engine) onMigrationCompleted(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin(migrationModule) {
		return fmt.Errorf("runtime migration completion from %s, not the migration module", m.Origin)
	}
	done, err := api.DecodeRuntimeMigrated(m.Payload)
	if err != nil {
		return err
	}
	e.st.migration = nil
	e.st.allowlist = slices.DeleteFunc(e.st.allowlist, func(x api.HexBytes) bool { return done.Retires(x) })
	if !done.Retires(e.cfg.Platform.Measurement()) {
		e.log.Info("runtime migration completed", "target", fmt.Sprintf("%x", []byte(done.Target)), "revoked", len(done.Retired))
		return nil
	}
	return e.retire(ctx, done)
}

// onMigrationCancelled follows a cancelled runtime migration: nothing
// was revoked; this pRuntime (a gatekeeper) grants contracts to workers
// of every allowed build again, as the chain admits them.
func (e *Engine) onMigrationCancelled(_ *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin(migrationModule) {
		return fmt.Errorf("runtime migration cancellation from %s, not the migration module", m.Origin)
	}
	done, err := api.DecodeRuntimeMigrated(m.Payload)
	if err != nil {
		return err
	}
	e.st.migration = nil
	e.log.Info("runtime migration cancelled: every allowed build runs contracts again", "target", fmt.Sprintf("%x", []byte(done.Target)))
	return nil
}

// retire stops this pRuntime serving: every contract it runs or recovers
// is dropped, every MasterKey share destroyed.
func (e *Engine) retire(ctx *Context, done *api.RuntimeMigrated) error {
	e.st.retiredAt = ctx.Height
	e.retired.Store(true)
	var ids []crypto.PublicKey
	for id := range e.running {
		ids = append(ids, id)
	}
	for id := range e.st.recovering {
		ids = append(ids, id)
	}
	for _, id := range ids {
		e.stopContract(id, "this pRuntime's build was retired by the runtime migration")
	}
	if e.gk != nil {
		for _, era := range e.gk.Eras() {
			if err := e.gk.Forget(era); err != nil {
				return err
			}
		}
	}
	e.log.Error("this pRuntime's build was retired by the chain's runtime migration: it serves nothing from now on (contracts dropped, key shares destroyed); run the new build with a new data directory",
		"height", ctx.Height, "target", fmt.Sprintf("%x", []byte(done.Target)), "this_build", fmt.Sprintf("%x", e.cfg.Platform.Measurement()))
	return nil
}

// leaving returns the workers among ws of a build the running migration
// retires (none when no migration runs): a gatekeeper does not count
// them against a contract's replicas.
func (e *Engine) leaving(ws []crypto.PublicKey) []crypto.PublicKey {
	if e.st.migration == nil {
		return nil
	}
	var out []crypto.PublicKey
	for _, w := range ws {
		if rec := e.st.workers[w]; rec != nil && e.st.migration.IsOld(rec.Measurement) {
			out = append(out, w)
		}
	}
	return out
}

// replicasShort reports whether deployed contract d has fewer workers
// than its upload's replicas, not counting those leaving with a
// migration.
func (e *Engine) replicasShort(d *deployment, u *upload) bool {
	return len(d.workers)-len(e.leaving(d.workers)) < int(u.replicas)
}

// admits reports whether the running migration (if any) admits rec's
// build to new work.
func (e *Engine) admits(rec *api.WorkerRecord) bool {
	return e.st.migration == nil || !e.st.migration.IsOld(rec.Measurement)
}

// encodeMigration writes the running migration (empty: none) and the
// height this pRuntime retired at (0: it serves).
func (s *state) encodeMigration(w *codec.Writer) {
	var b []byte
	if s.migration != nil {
		b = s.migration.Encode()
	}
	w.BytesField(b)
	w.Varint(s.retiredAt)
}

func (s *state) decodeMigration(r *codec.Reader) {
	b := r.BytesField(api.MaxPayloadBytes)
	s.retiredAt = r.Varint()
	if r.Err() != nil || len(b) == 0 {
		return
	}
	m, err := api.DecodeRuntimeMigration(b)
	if err != nil {
		r.Fail(err)
		return
	}
	s.migration = m
}
