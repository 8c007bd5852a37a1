package engine

import (
	"errors"
	"fmt"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/enclave/keys"
)

// onMasterKeyAnnounced records the master public key the first gatekeeper
// announced (chain-derived; shares must match it).
func (e *Engine) onMasterKeyAnnounced(_ *Context, m *api.Message) error {
	if m.Origin.Kind != api.OriginGatekeeper || !slicesContains(e.genState.Gatekeepers, m.Origin.Key) {
		return fmt.Errorf("master key announced by %s, not a gatekeeper", m.Origin)
	}
	if e.st.masterPub != (crypto.PublicKey{}) || len(m.Payload) != crypto.PublicKeySize {
		return nil
	}
	copy(e.st.masterPub[:], m.Payload)
	return nil
}

// shareMaster (a gatekeeper holding the MasterKey) seals it to another
// gatekeeper that has just registered: to its attested ECDH key, so only
// that gatekeeper's pRuntime can open it.
func (e *Engine) shareMaster(ctx *Context, rec *api.WorkerRecord) {
	to := rec.Info.IdentityKey
	if e.master == nil || to == e.entity.Identity.Public() || !slicesContains(e.genState.Gatekeepers, to) || !e.workerActive(rec, ctx.Height) {
		return
	}
	ch, err := channel.New(e.entity.Ecdh, rec.Info.EcdhKey, api.ChannelPurposeMasterKey)
	if err != nil {
		return
	}
	s := &api.MasterKeyShare{To: to, ToEcdh: rec.Info.EcdhKey, FromEcdh: e.entity.Ecdh.Public(), Master: e.master.Public()}
	seed := e.master.Seed()
	s.Sealed = ch.Seal(seed[:], s.AD())
	ctx.Emit(api.OriginGatekeeper, api.TopicMasterKeyShare, s.Encode())
	e.log.Info("master key shared", "to", to.Short())
}

// onMasterKeyShare (a gatekeeper without the MasterKey) opens a share
// addressed to it, checks it is the announced master key, and seals it.
func (e *Engine) onMasterKeyShare(_ *Context, m *api.Message) error {
	if m.Origin.Kind != api.OriginGatekeeper || !slicesContains(e.genState.Gatekeepers, m.Origin.Key) {
		return fmt.Errorf("master key share from %s, not a gatekeeper", m.Origin)
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
	seed, err := ch.Open(s.Sealed, s.AD())
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
	if err := mk.Save(e.cfg.Platform, e.cfg.DataDir); err != nil {
		return fmt.Errorf("seal master key: %w", err)
	}
	e.master = mk
	e.log.Info("master key received", "from", m.Origin.Key.Short(), "public", mk.Public().Hex())
	return nil
}
