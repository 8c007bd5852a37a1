package engine

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/internal/attestation"
)

// ErrNotAttested marks a worker registration from the queue whose
// attestation report does not verify in this pRuntime. Such a record is
// not stored: no key (MasterKey share, contract key) is ever sealed to it,
// and its messages are not acted on.
var ErrNotAttested = errors.New("registration not attested")

// maxKeptBlockHashes bounds the block hashes a checkpoint may hold:
// api.MaxAttestationWindow behind the last dispatched block plus the
// verified headers that may wait for their blocks (maxAhead).
const maxKeptBlockHashes = api.MaxAttestationWindow + maxAhead

// onWorkerRegistered stores a registration the registry announced, once
// this pRuntime has verified the attestation report that admitted it
// (verifyRegistration): the validators' word is not enough, since whoever
// holds 2/3 of the voting power can put any record in a block they sign.
// A registration that fails is logged (by dispatch, with the reason; it
// holds no secret) and changes nothing. For this pRuntime's own record it
// announces the MasterKey (genesis gatekeeper); for another gatekeeper's it
// shares it.
func (e *Engine) onWorkerRegistered(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin("registry") {
		return fmt.Errorf("worker registration from %s, not the registry", m.Origin)
	}
	reg, err := api.DecodeWorkerRegistered(m.Payload)
	if err != nil {
		return err
	}
	rec := &reg.Record
	if err := e.verifyRegistration(ctx, reg); err != nil {
		return fmt.Errorf("%w: worker %s ignored (no key is sealed to it): %v", ErrNotAttested, rec.Info.IdentityKey.Hex(), err)
	}
	e.st.workers[rec.Info.IdentityKey] = rec
	if me := e.entity.Identity.Public(); rec.Info.IdentityKey == me && e.entity.Pending != nil && rec.Info.EcdhKey == e.entity.Pending.Public() {
		// The chain adopted the rotated EcdhKey: the old secret goes.
		if err := e.entity.FinishRotation(e.entitySealer, e.cfg.DataDir); err != nil {
			e.log.Error("rotate the ECDH key", "err", err)
		} else {
			e.log.Info("ECDH key rotated: the renewed registration carries the new one, the old secret is destroyed", "ecdh", rec.Info.EcdhKey.Short())
		}
	}
	if e.gk != nil {
		if rec.Info.IdentityKey == e.entity.Identity.Public() {
			e.gk.Announce(ctx.Height)
		}
		if e.st.servingKeyEra == 0 { // the genesis key set: shared whole
			e.gk.Share(ctx.Height, rec, 0)
		}
		if !e.isGatekeeper(rec.Info.IdentityKey) && !e.isElected(rec.Info.IdentityKey) {
			e.grantWaiting(ctx.Height)
		}
	}
	return nil
}

// attestationSettings are the settings this pRuntime verifies reports
// against: the genesis ones (sim allowed or not, the development key, the
// maximum report age) with the allowlist as governance changed it.
func (e *Engine) attestationSettings() *api.AttestationSettings {
	a := e.genState.Attestation
	a.Measurements = e.st.allowlist
	return &a
}

// verifyRegistration checks, as the registry did, the report behind a
// registration in the block at ctx: it verifies (attestation.Verify, at the
// verified block time, never the host clock) against attestationSettings;
// its report data commits to the record's WorkerInfo; its measurement is
// allowed and its platform and measurement are the record's; the info is
// for this chain and cites a block this pRuntime verified (by the hash its
// successor header committed to, LastBlockID) before ctx.Height.
func (e *Engine) verifyRegistration(ctx *Context, reg *api.WorkerRegistered) error {
	rec := &reg.Record
	info := &rec.Info
	if info.ChainID != e.chainID {
		return fmt.Errorf("worker info is for chain %q, this is %q", info.ChainID, e.chainID)
	}
	settings := e.attestationSettings()
	ev, err := attestation.Verify(settings, &reg.Report, ctx.Time)
	if err != nil {
		return err
	}
	if ev.ReportData != info.ReportData() {
		return errors.New("the report's data does not commit to the registered worker info")
	}
	if !settings.MeasurementAllowed(ev.Measurement) {
		return fmt.Errorf("%w: measurement %x", api.ErrMeasurementNotAllowed, ev.Measurement)
	}
	if ev.Platform != rec.Platform || !bytes.Equal(ev.Measurement, rec.Measurement) {
		return fmt.Errorf("the record states platform %q measurement %x, the report proves %q %x", rec.Platform, rec.Measurement, ev.Platform, ev.Measurement)
	}
	b := info.BlockHeight
	if b >= ctx.Height {
		return fmt.Errorf("the report cites block %d, not below the registration's block %d", b, ctx.Height)
	}
	have, ok := e.st.blockHashes[b]
	if !ok {
		return fmt.Errorf("the report cites block %d, which is not a recent block this pRuntime verified (attestation_window %d)", b, e.st.params.AttestationWindow)
	}
	if have != info.BlockHash {
		return fmt.Errorf("the report cites block %d with hash %X, but the block %d this pRuntime verified has hash %X: it was made on another chain or fork", b, info.BlockHash, b, have)
	}
	return nil
}

// rememberBlockHash keeps the hash of block sh.Height-1 that the verified
// header sh commits to (LastBlockID), for the registrations that cite it.
func (e *Engine) rememberBlockHash(sh *cmttypes.SignedHeader) {
	if h := sh.Height - 1; h >= e.st.hashFloor && len(sh.LastBlockID.Hash) == api.BlockHashSize {
		e.st.blockHashes[h] = [api.BlockHashSize]byte(sh.LastBlockID.Hash)
	}
}

// pruneBlockHashes, after block height is dispatched, forgets the hashes no
// registration can cite any more: those below height+1-attestation_window,
// as the registry does (so this pRuntime keeps at least the hashes the
// chain accepts citations of). Cost proportional to what it deletes.
func (e *Engine) pruneBlockHashes(height int64) {
	keep := height + 1 - int64(e.st.params.AttestationWindow)
	for h := e.st.hashFloor; h < keep; h++ {
		delete(e.st.blockHashes, h)
	}
	if keep > e.st.hashFloor {
		e.st.hashFloor = keep
	}
}

// onParams follows the chain parameters governance set: pRuntime uses
// attestation_window (how many recent block hashes it keeps) and
// min_worker_stake (which workers its gatekeeper may assign contracts).
func (e *Engine) onParams(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin(governanceModule) {
		return fmt.Errorf("params from %s, not governance", m.Origin)
	}
	p, err := api.DecodeParams(m.Payload)
	if err != nil {
		return err
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("params: %w", err)
	}
	lowered := p.MinWorkerStake < e.st.params.MinWorkerStake
	e.st.params = p
	if lowered && ctx != nil {
		e.grantWaiting(ctx.Height) // workers may have become assignable
	}
	return nil
}

// encodeAttest writes the attestation part of the chain-derived state: the
// floor below which no block hash is kept, and the kept hashes by height
// (the window is params.AttestationWindow).
func (s *state) encodeAttest(w *codec.Writer) {
	w.Uvarint(uint64(s.hashFloor))
	hs := sortedHeights(s.blockHashes)
	w.Uvarint(uint64(len(hs)))
	for _, h := range hs {
		w.Uvarint(uint64(h))
		hash := s.blockHashes[h]
		w.Fixed(hash[:])
	}
}

func (s *state) decodeAttest(r *codec.Reader) {
	s.hashFloor = int64(r.Uvarint())
	n := r.Uvarint()
	if n > maxKeptBlockHashes {
		r.Fail(fmt.Errorf("%d block hashes", n))
	}
	for ; r.Err() == nil && n > 0; n-- {
		h := int64(r.Uvarint())
		var hash [api.BlockHashSize]byte
		r.Fixed(hash[:])
		s.blockHashes[h] = hash
	}
}

func sortedHeights[V any](m map[int64]V) []int64 {
	hs := make([]int64, 0, len(m))
	for h := range m {
		hs = append(hs, h)
	}
	slices.Sort(hs)
	return hs
}
