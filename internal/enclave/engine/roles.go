package engine

import (
	"fmt"

	"go.dedis.ch/kyber/v3"

	"slices"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/gatekeeper"
)

// gatekeeperRole is what the engine asks of a gatekeeper pRuntime's role,
// implemented by internal/enclave/gatekeeper (which holds the MasterKey).
// The engine keeps the chain-derived state and the checks every pRuntime
// makes on a gatekeeper's messages (attestedGatekeeper); the role keeps
// the key and the decisions made with it. Called under the engine's lock.
type gatekeeperRole interface {
	// Holds reports whether a share of era's MasterKey is held.
	Holds(era uint64) bool
	// Keep seals a share of era's MasterKey made by the DKG.
	Keep(era uint64, x kyber.Scalar) error
	// Eras returns the key eras whose shares are held, ascending.
	Eras() []uint64
	// Public returns the held share's public commitment of era.
	Public(era uint64) (pub [32]byte, ok bool)
	// Announce emits the genesis master public key once this
	// gatekeeper's own attested registration is in the queue at height.
	Announce(height int64)
	// Adopted reports a key set the chain adopted.
	Adopted(set *api.KeySet)
	// Share seals the serving MasterKey (threshold 1) to the attested
	// gatekeeper rec, for key era era.
	Share(height int64, rec *api.WorkerRecord, era uint64)
	// Receive opens and seals a MasterKey share from gatekeeper from.
	Receive(from crypto.PublicKey, s *api.MasterKeyShare) error
	// Grant sends this member's partials of an upload's contract key to
	// its workers.
	Grant(height int64, u gatekeeper.Upload)
	// Rekey sends this member's partials of a contract's next key epoch
	// to its current workers.
	Rekey(height int64, u gatekeeper.Upload, contract crypto.PublicKey, era, epoch uint64)
	// Forget destroys the share of a retired key era.
	Forget(era uint64) error
	// Arbiters sends this member's partials of a contract's key to n
	// arbiters of the dispute of its update at disputed.
	Arbiters(height int64, u gatekeeper.Upload, contract crypto.PublicKey, disputed int64, n int)
}

// startGatekeeper gives this pRuntime, named a gatekeeper in the genesis,
// its role: it loads the MasterKey, or creates it on the first start of the
// first genesis gatekeeper (firstStart: its pre-genesis entity keys are
// being bound to this chain now), and announces it if it is due (a crash
// between sealing the key and checkpointing the announcement).
func (e *Engine) startGatekeeper(firstStart bool) error {
	gk, err := gatekeeper.New(gatekeeper.Config{
		Entity:      e.entity,
		Gatekeepers: e.genState.Gatekeepers,
		Sealer:      e.sealer,
		DataDir:     e.cfg.DataDir,
		Chain:       chainView{e},
		Emit:        e.emit,
		Log:         e.log,
	}, firstStart)
	if err != nil {
		return err
	}
	e.gk = gk
	e.gk.Announce(e.st.dispatched)
	return nil
}

// chainView is the gatekeeper's read-only view of the engine's
// chain-derived state (gatekeeper.Chain). Used under the engine's lock.
type chainView struct{ e *Engine }

func (v chainView) Attested(rec *api.WorkerRecord, height int64) bool {
	return v.e.attested(rec, height)
}

func (v chainView) Assignable(key crypto.PublicKey) bool { return v.e.assignable(key) }

func (v chainView) Admits(rec *api.WorkerRecord) bool { return v.e.admits(rec) }

func (v chainView) Worker(key crypto.PublicKey) *api.WorkerRecord { return v.e.st.workers[key] }

func (v chainView) Workers() []*api.WorkerRecord {
	ws := make([]*api.WorkerRecord, 0, len(v.e.st.workers))
	for _, w := range v.e.st.workers {
		ws = append(ws, w)
	}
	return ws
}

func (v chainView) SubnetMember(subnet [32]byte, key crypto.PublicKey) bool {
	return v.e.subnetMember(subnet, key)
}

func (v chainView) KeySet(era uint64) *api.KeySet { return v.e.st.keySets[era] }

func (v chainView) ServingKeyEra() (uint64, bool) { return v.e.st.servingKeyEra, v.e.st.hasKeySet }

func (v chainView) Rotating() bool { return v.e.st.dkgPhase != nil }

func (v chainView) IsGatekeeper(key crypto.PublicKey) bool {
	return v.e.isGatekeeper(key) || v.e.isElected(key)
}

func (v chainView) Pending(topic string) bool {
	return slices.ContainsFunc(v.e.st.egress, func(m api.SignedMessage) bool { return m.Message.Topic == topic })
}

// attested reports whether rec admits its pRuntime at height: registered
// (its record came from the registry in the queue), unexpired, and with a
// measurement the allowlist holds (the genesis one, as governance changed
// it since: a revoked measurement expires every registration made with
// it). The chain's registry.Attested applies the same rule.
func (e *Engine) attested(rec *api.WorkerRecord, height int64) bool {
	return rec != nil && rec.Active(height) && slices.ContainsFunc(e.st.allowlist, func(m api.HexBytes) bool { return string(m) == string(rec.Measurement) })
}

// attestedGatekeeper checks that key is a gatekeeper pRuntime this one may
// act on: in the serving set (the genesis list until an elected set is
// active) AND attested at height. A key merely named
// in the genesis is not enough (whitepaper 4.4: the genesis gatekeeper
// registers with attestation before its MasterKey announcement counts).
func (e *Engine) attestedGatekeeper(key crypto.PublicKey, height int64) error {
	if !e.isGatekeeper(key) {
		return fmt.Errorf("%s is not a serving gatekeeper", key.Hex())
	}
	if !e.attested(e.st.workers[key], height) {
		return fmt.Errorf("gatekeeper %s has no active attested registration at height %d", key.Hex(), height)
	}
	return nil
}

// onMasterKeyAnnounced (every pRuntime) checks the genesis master key
// announcement comes from an attested gatekeeper; the key set it makes is
// adopted from the gatekeeper module's api.TopicKeyRotationReady
// (onKeyRotationReady).
func (e *Engine) onMasterKeyAnnounced(ctx *Context, m *api.Message) error {
	if m.Origin.Kind != api.OriginGatekeeper {
		return fmt.Errorf("master key announced by %s, not a gatekeeper", m.Origin)
	}
	if err := e.attestedGatekeeper(m.Origin.Key, ctx.Height); err != nil {
		return fmt.Errorf("master key announcement ignored: %w", err)
	}
	return nil
}

// onMasterKeyShare checks a MasterKey share comes from an attested
// gatekeeper and decodes it; a gatekeeper's role opens it (gatekeeper.Receive),
// a worker ignores it.
func (e *Engine) onMasterKeyShare(ctx *Context, m *api.Message) error {
	if m.Origin.Kind != api.OriginGatekeeper {
		return fmt.Errorf("master key share from %s, not a gatekeeper", m.Origin)
	}
	if err := e.attestedGatekeeper(m.Origin.Key, ctx.Height); err != nil {
		return fmt.Errorf("master key share ignored: %w", err)
	}
	s, err := api.DecodeMasterKeyShare(m.Payload)
	if err != nil {
		return err
	}
	if e.gk == nil {
		return nil
	}
	had := e.gk.Holds(s.Era)
	if err := e.gk.Receive(m.Origin.Key, s); err != nil {
		return err
	}
	if !had && e.gk.Holds(s.Era) {
		if e.isGatekeeper(e.entity.Identity.Public()) {
			e.grantWaiting(ctx.Height) // uploads made while no gatekeeper could grant
		}
	}
	return nil
}
