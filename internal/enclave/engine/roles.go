package engine

import (
	"fmt"
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
	// MasterPublic returns the held MasterKey's public key (ok false
	// while none is held).
	MasterPublic() (pub crypto.PublicKey, ok bool)
	// Announce emits the master public key once this gatekeeper's own
	// attested registration is in the queue at height.
	Announce(height int64)
	// Adopted reports the master public key the chain adopted.
	Adopted(chainPub crypto.PublicKey)
	// Share seals the MasterKey to the attested genesis gatekeeper rec.
	Share(height int64, rec *api.WorkerRecord)
	// Receive opens and seals a MasterKey share from gatekeeper from.
	Receive(from crypto.PublicKey, s *api.MasterKeyShare) error
	// Grant derives an upload's contract keys and seals them to its
	// workers.
	Grant(height int64, u gatekeeper.Upload)
	// Arbiters seals a contract's key to n arbiters of the dispute of
	// its update at disputed.
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
		Emit:        func(topic string, payload []byte) { e.emit(api.OriginGatekeeper, topic, payload) },
		Log:         e.log,
	}, firstStart)
	if err != nil {
		return err
	}
	e.gk = gk
	e.gk.Announce(e.st.dispatched)
	return nil
}

// masterPublic returns the public key of the MasterKey this pRuntime holds
// as gatekeeper (ok false for a worker, or a gatekeeper still without it).
func (e *Engine) masterPublic() (crypto.PublicKey, bool) {
	if e.gk == nil {
		return crypto.PublicKey{}, false
	}
	return e.gk.MasterPublic()
}

// chainView is the gatekeeper's read-only view of the engine's
// chain-derived state (gatekeeper.Chain). Used under the engine's lock.
type chainView struct{ e *Engine }

func (v chainView) Attested(rec *api.WorkerRecord, height int64) bool {
	return v.e.attested(rec, height)
}

func (v chainView) Assignable(key crypto.PublicKey) bool { return v.e.assignable(key) }

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

func (v chainView) MasterPublic() crypto.PublicKey { return v.e.st.masterPub }

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

// onMasterKeyAnnounced (every pRuntime) records the master public key the
// first attested gatekeeper announced (chain-derived; shares must match
// it) and tells this pRuntime's gatekeeper role, if any.
func (e *Engine) onMasterKeyAnnounced(ctx *Context, m *api.Message) error {
	if m.Origin.Kind != api.OriginGatekeeper {
		return fmt.Errorf("master key announced by %s, not a gatekeeper", m.Origin)
	}
	if err := e.attestedGatekeeper(m.Origin.Key, ctx.Height); err != nil {
		return fmt.Errorf("master key announcement ignored: %w", err)
	}
	if e.st.masterPub != (crypto.PublicKey{}) || len(m.Payload) != crypto.PublicKeySize {
		return nil
	}
	copy(e.st.masterPub[:], m.Payload)
	if e.gk != nil {
		e.gk.Adopted(e.st.masterPub)
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
	_, had := e.gk.MasterPublic()
	if err := e.gk.Receive(m.Origin.Key, s); err != nil {
		return err
	}
	if _, has := e.gk.MasterPublic(); has && !had {
		if e.isGatekeeper(e.entity.Identity.Public()) {
			e.grantWaiting(ctx.Height) // uploads made while no gatekeeper could grant
		}
		e.confirmIfReady() // an elected member confirms its set
	}
	return nil
}
