package engine

import (
	"errors"
	"fmt"
	"slices"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/enclave/keys"
)

// attested reports whether rec admits its pRuntime at height: registered
// (its record came from the registry in the queue), unexpired, and with a
// measurement the allowlist holds (the genesis one, as governance changed
// it since: a revoked measurement expires every registration made with
// it). The chain's registry.Attested applies the same rule.
func (e *Engine) attested(rec *api.WorkerRecord, height int64) bool {
	return rec != nil && rec.Active(height) && slices.ContainsFunc(e.st.allowlist, func(m api.HexBytes) bool { return string(m) == string(rec.Measurement) })
}

// attestedGatekeeper checks that key is a gatekeeper pRuntime this one may
// act on: named in the genesis AND attested at height. A key merely named
// in the genesis is not enough (whitepaper 4.4: the genesis gatekeeper
// registers with attestation before its MasterKey announcement counts).
func (e *Engine) attestedGatekeeper(key crypto.PublicKey, height int64) error {
	if !slicesContains(e.genState.Gatekeepers, key) {
		return fmt.Errorf("%s is not a gatekeeper", key.Hex())
	}
	if !e.attested(e.st.workers[key], height) {
		return fmt.Errorf("gatekeeper %s has no active attested registration at height %d", key.Hex(), height)
	}
	return nil
}

// announceMaster (the genesis gatekeeper holding the MasterKey) emits the
// master public key announcement once its own attested registration is in
// the queue (the chain refuses the announcement of an unregistered
// gatekeeper), unless the key is already announced on chain or the
// announcement waits in the egress. Called when the registration arrives
// and at start (a crash between sealing the key and checkpointing the
// announcement).
func (e *Engine) announceMaster(height int64) {
	me := e.entity.Identity.Public()
	if e.master == nil || e.genState.Gatekeepers[0] != me || e.st.masterPub != (crypto.PublicKey{}) || !e.attested(e.st.workers[me], height) {
		return
	}
	for _, m := range e.st.egress {
		if m.Message.Topic == api.TopicMasterKey {
			return
		}
	}
	pub := e.master.Public()
	e.emit(api.OriginGatekeeper, api.TopicMasterKey, pub[:])
	e.log.Info("master key announced", "public", pub.Hex(), "height", height)
}

// onMasterKeyAnnounced records the master public key the first attested
// gatekeeper announced (chain-derived; shares must match it).
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
	if e.master != nil && e.master.Public() != e.st.masterPub {
		// Only a host rolling back sealed files gets here: a MasterKey the
		// chain did not adopt is never used.
		e.log.Error("the chain announced another master key than this gatekeeper's: not using it", "own", e.master.Public().Hex(), "chain", e.st.masterPub.Hex())
		e.master = nil
	}
	return nil
}

// shareMaster (a gatekeeper holding the MasterKey) seals it to another
// gatekeeper that has just registered: to its attested ECDH key, so only
// that gatekeeper's pRuntime can open it. Only a genesis gatekeeper whose
// registration is attested (active, allowed measurement) receives it.
func (e *Engine) shareMaster(ctx *Context, rec *api.WorkerRecord) {
	to := rec.Info.IdentityKey
	if e.master == nil || to == e.entity.Identity.Public() || !slicesContains(e.genState.Gatekeepers, to) || !e.attested(rec, ctx.Height) {
		return
	}
	ch, err := channel.New(e.entity.Ecdh, rec.Info.EcdhKey, api.ChannelPurposeMasterKey)
	if err != nil {
		return
	}
	s := &api.MasterKeyShare{To: to, ToEcdh: rec.Info.EcdhKey, FromEcdh: e.entity.Ecdh.Public(), Master: e.master.Public()}
	seed := e.master.Seed()
	s.Sealed = ch.Seal(seed[:], e.shareAD(s))
	ctx.Emit(api.OriginGatekeeper, api.TopicMasterKeyShare, s.Encode())
	e.log.Info("master key shared", "to", to.Short())
}

// onMasterKeyShare (a gatekeeper without the MasterKey) opens a share
// addressed to it from an attested gatekeeper, checks it is the announced
// master key, and seals it.
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
	if s.To != e.entity.Identity.Public() || e.master != nil || e.role != RoleGatekeeper {
		return nil
	}
	if s.ToEcdh != e.entity.Ecdh.Public() {
		return errors.New("share sealed to another ECDH key")
	}
	ch, err := channel.New(e.entity.Ecdh, s.FromEcdh, api.ChannelPurposeMasterKey)
	if err != nil {
		return err
	}
	seed, err := ch.Open(s.Sealed, e.shareAD(s))
	if err != nil || len(seed) != crypto.SeedSize {
		return fmt.Errorf("cannot open the master key share: %v", err)
	}
	mk, err := keys.MasterFromSeed([crypto.SeedSize]byte(seed))
	if err != nil {
		return err
	}
	if mk.Public() != s.Master || (e.st.masterPub != (crypto.PublicKey{}) && mk.Public() != e.st.masterPub) {
		return errors.New("shared key is not the announced master key")
	}
	if err := mk.Save(e.sealer, e.cfg.DataDir); err != nil {
		return fmt.Errorf("seal master key: %w", err)
	}
	e.master = mk
	e.log.Info("master key received", "from", m.Origin.Key.Short(), "public", mk.Public().Hex())
	return nil
}

// shareAD is the additional data of a MasterKey share: the share's own
// (api.MasterKeyShare.AD) and this chain's genesis hash, so a share
// replayed into the queue of another chain (one whose validators are the
// host) does not open there, even for the same gatekeeper identity (a copy
// of its pre-genesis entity keys claimed on that chain).
func (e *Engine) shareAD(s *api.MasterKeyShare) []byte {
	h := e.sealer.Binding().GenesisHash
	return append(s.AD(), h[:]...)
}
