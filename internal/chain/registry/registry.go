// Package registry owns who the chain trusts off-chain: registered workers
// (WorkerInfo with the attestation that admitted them and its expiry; a
// gatekeeper's pRuntime registers the same way), the attestation settings,
// and the hashes of the recent blocks a registration's report must cite.
// The gatekeeper list and the master public key are package gatekeeper's.
package registry

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/attestation"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/eras"
	"github.com/phalago/phala/internal/chain/module"
	"github.com/phalago/phala/internal/chain/mq"
	"github.com/phalago/phala/internal/chain/store"
)

// Module is the registry's origin name in the message queue.
const Module = "registry"

// Worker returns the record of identity key pk, or nil.
func Worker(kv store.KV, pk crypto.PublicKey) *api.WorkerRecord {
	v := kv.Get(api.WorkerKey(pk))
	if v == nil {
		return nil
	}
	w, err := api.DecodeWorkerRecord(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt worker record %s: %v", pk, err))
	}
	return w
}

// Attestation returns the attestation settings.
func Attestation(kv store.KV) *api.AttestationSettings {
	a, err := api.DecodeAttestationSettings(kv.Get(api.KeyAttestation))
	if err != nil {
		panic(fmt.Sprintf("corrupt attestation settings: %v", err))
	}
	return a
}

// SetAttestation writes the attestation settings.
func SetAttestation(kv store.KV, a *api.AttestationSettings) { kv.Set(api.KeyAttestation, a.Encode()) }

// Attested returns the record of identity pk if it is admitted now (at
// height): registered, unexpired, and with a measurement the attestation
// settings still allow. Errors wrap api.ErrUnknownOrigin and say which
// condition failed.
func Attested(kv store.KV, pk crypto.PublicKey, height int64) (*api.WorkerRecord, error) {
	w := Worker(kv, pk)
	if w == nil {
		return nil, fmt.Errorf("%w: %s has no attested registration; its pRuntime must register (register_worker) first", api.ErrUnknownOrigin, pk.Hex())
	}
	if !w.Active(height) {
		return nil, fmt.Errorf("%w: registration of %s expired at height %d; renew it", api.ErrUnknownOrigin, pk.Hex(), w.ExpiresAt)
	}
	if !Attestation(kv).MeasurementAllowed(w.Measurement) {
		return nil, fmt.Errorf("%w: %s is registered with measurement %x, which is no longer allowed", api.ErrUnknownOrigin, pk.Hex(), w.Measurement)
	}
	return w, nil
}

// Authorize is the mq.Authorizer of the worker origin: a worker must be
// Attested. (The gatekeeper origin is the gatekeeper module's.)
func Authorize(kv store.KV, kind api.OriginKind, key crypto.PublicKey, height int64) error {
	if kind != api.OriginWorker {
		return fmt.Errorf("%w: no %s with key %s is known to the chain", api.ErrUnknownOrigin, kind, key.Hex())
	}
	_, err := Attested(kv, key, height)
	return err
}

// WorkerActive reports whether w may act as a worker at height h: its
// registration is unexpired and its measurement is still allowed (a
// measurement revoked by governance expires every registration made with
// it).
func WorkerActive(kv store.KV, w *api.WorkerRecord, h int64) bool {
	return w.Active(h) && Attestation(kv).MeasurementAllowed(w.Measurement)
}

// SetMeasurementAllowed adds m to the allowlist (allowed) or removes it,
// and returns the allowlist after the change.
func SetMeasurementAllowed(kv store.KV, m []byte, allowed bool) []api.HexBytes {
	a := Attestation(kv)
	var out []api.HexBytes
	for _, x := range a.Measurements {
		if string(x) != string(m) {
			out = append(out, x)
		}
	}
	if allowed {
		out = append(out, append(api.HexBytes(nil), m...))
	}
	a.Measurements = out
	SetAttestation(kv, a)
	return out
}

// RegisterWorker verifies the attestation of a worker (or gatekeeper)
// pRuntime and records it. It is accepted only when signer, the
// transaction's signer, is info.Operator, and only when the report is
// fresh: info names a block of this chain within the last
// attestation_window blocks by its hash (see CheckFresh). A registration of
// an identity already present replaces the entry and restarts its lifetime
// if it cites a strictly newer block than the one it replaces (an old
// registration cannot be replayed) and, while the entry is active, comes
// from the same operator (nobody re-registers someone else's worker).
// Errors: api.ErrInvalidCall (chain, keys, operator), api.ErrAttestation
// (report, freshness, replay), api.ErrMeasurementNotAllowed. It emits
// api.WorkerRegistered (the record and the report) on
// api.TopicWorkerRegistered.
func RegisterWorker(ctx *block.Context, signer crypto.PublicKey, c *api.RegisterWorker) error {
	info := &c.Info
	if info.ChainID != ctx.ChainID {
		return fmt.Errorf("%w: worker info is for chain %q, this is %q", api.ErrInvalidCall, info.ChainID, ctx.ChainID)
	}
	if !info.IdentityKey.Valid() || !info.EcdhKey.Valid() || !info.Operator.Valid() {
		return fmt.Errorf("%w: worker info holds an invalid public key", api.ErrInvalidCall)
	}
	if signer != info.Operator {
		return fmt.Errorf("%w: register_worker must be signed by the worker's operator %s, not %s", api.ErrInvalidCall, info.Operator.Address(), signer.Address())
	}
	prev := Worker(ctx.KV, info.IdentityKey)
	if prev != nil && prev.Active(ctx.Height) && prev.Info.Operator != info.Operator {
		return fmt.Errorf("%w: worker %s is registered to operator %s until height %d; only that operator can renew it",
			api.ErrInvalidCall, info.IdentityKey.Hex(), prev.Info.Operator.Address(), prev.ExpiresAt)
	}
	settings := Attestation(ctx.KV)
	ev, err := attestation.Verify(settings, &c.Report, ctx.Time)
	if err != nil {
		return err
	}
	if ev.ReportData != info.ReportData() {
		return fmt.Errorf("%w: the report's data does not commit to the submitted worker info", api.ErrAttestation)
	}
	if !settings.MeasurementAllowed(ev.Measurement) {
		return fmt.Errorf("%w: pRuntime measurement %x is not in the genesis allowlist", api.ErrMeasurementNotAllowed, ev.Measurement)
	}
	if err := CheckFresh(ctx, info); err != nil {
		return err
	}
	if prev != nil && info.BlockHeight <= prev.Info.BlockHeight {
		return fmt.Errorf("%w: worker %s is registered with a report citing block %d; a renewal must cite a newer block (an old registration cannot be replayed)",
			api.ErrAttestation, info.IdentityKey.Hex(), prev.Info.BlockHeight)
	}
	rec := &api.WorkerRecord{
		Info:         *info,
		Platform:     ev.Platform,
		Measurement:  ev.Measurement,
		RegisteredAt: ctx.Height,
		ExpiresAt:    ctx.Height + int64(ctx.Params.RegistrationLifetime),
		AttestedAt:   ev.IssuedAt.Unix(),
		ActiveSince:  ctx.Height,
	}
	if sched := eras.Of(ctx); prev != nil && prev.ExpiresAt > sched.Start(sched.EraOf(ctx.Height)) {
		// Renewed without a lapse, or after one that began in this very
		// era: the node was registered at some point of the era already,
		// so the era's verdict judges it (re-registering right at the
		// expiry does not make it a newcomer that the verdict exempts).
		rec.ActiveSince = prev.ActiveSince
	}
	enc := rec.Encode()
	ctx.KV.Set(api.WorkerKey(info.IdentityKey), enc)
	ctx.Event("worker_registered",
		"identity", info.IdentityKey.Hex(), "operator", info.Operator.Address(),
		"endpoint", info.Endpoint, "expires_at", strconv.FormatInt(rec.ExpiresAt, 10),
		"renewal", strconv.FormatBool(prev != nil))
	// The report travels with the record: every pRuntime verifies it
	// itself before it seals any key to this worker.
	msg := &api.WorkerRegistered{Record: *rec, Report: c.Report}
	return mq.Emit(ctx, api.ModuleOrigin(Module), api.TopicWorkerRegistered, msg.Encode())
}

// CheckFresh checks that info cites a block of this chain (by height and
// hash) at most attestation_window blocks before the current height.
// Errors wrap api.ErrAttestation.
func CheckFresh(ctx *block.Context, info *api.WorkerInfo) error {
	b, window := info.BlockHeight, int64(ctx.Params.AttestationWindow)
	if b >= ctx.Height {
		return fmt.Errorf("%w: report cites block %d, not below the current height %d", api.ErrAttestation, b, ctx.Height)
	}
	if ctx.Height-b > window {
		return fmt.Errorf("%w: report cites block %d, %d blocks before height %d; reports must cite one of the last %d blocks (attestation_window): request a fresh report",
			api.ErrAttestation, b, ctx.Height-b, ctx.Height, window)
	}
	have := ctx.KV.Get(api.BlockHashKey(b))
	if have == nil {
		return fmt.Errorf("%w: report cites block %d, whose hash this chain does not know", api.ErrAttestation, b)
	}
	if !bytes.Equal(have, info.BlockHash[:]) {
		return fmt.Errorf("%w: report cites block %d with hash %X, but this chain's block %d has hash %X: it was made on another chain or fork",
			api.ErrAttestation, b, info.BlockHash, b, have)
	}
	return nil
}

// RecordBlockHash keeps hash as the hash of the block at ctx.Height (the
// block being finalized) and deletes the hashes no registration can cite
// any more: those below ctx.Height+1-attestation_window. Deterministic: it
// depends on the state and the block only. A hash of another size than
// api.BlockHashSize is not recorded.
func RecordBlockHash(ctx *block.Context, hash []byte) {
	if len(hash) == api.BlockHashSize {
		ctx.KV.Set(api.BlockHashKey(ctx.Height), hash)
	}
	keep := ctx.Height + 1 - int64(ctx.Params.AttestationWindow)
	floor := ctx.Height
	if v := ctx.KV.Get(api.KeyBlockHashFloor); v != nil {
		f, n := binary.Uvarint(v)
		if n <= 0 || n != len(v) {
			panic(fmt.Sprintf("corrupt block hash floor %x", v))
		}
		floor = int64(f)
	}
	for h := floor; h < keep; h++ {
		ctx.KV.Delete(api.BlockHashKey(h))
	}
	if keep > floor {
		floor = keep
	}
	ctx.KV.Set(api.KeyBlockHashFloor, binary.AppendUvarint(nil, uint64(floor)))
}

// Spec returns the registry's entry in the chain's module table: it
// owns workers ("w/"), the recent block hashes registrations cite ("b/")
// and the attestation settings; it executes register_worker, admits the
// worker origin into the queue, and serves the registry's proved reads and
// the worker listing. (The gatekeeper list, the gatekeeper origin and the
// master key are the gatekeeper module's.)
func Spec() *module.Module {
	return &module.Module{
		Name:        Module,
		KeyPrefixes: []string{"w/", "b/", string(api.KeyAttestation)},
		Calls: map[api.CallKind]module.CallHandler{
			api.CallRegisterWorker: func(ctx *block.Context, signer crypto.PublicKey, c api.Call) error {
				return RegisterWorker(ctx, signer, c.(*api.RegisterWorker))
			},
		},
		// Registrations cite recent blocks by hash (CheckFresh).
		EndBlock: func(ctx *block.Context) error {
			RecordBlockHash(ctx, ctx.BlockHash)
			return nil
		},
		Origins: map[api.OriginKind]module.Authorizer{api.OriginWorker: Authorize},
		InitGenesis: func(kv store.KV, g *module.Genesis) error {
			SetAttestation(kv, &g.State.Attestation)
			return nil
		},
		StateQueries: []string{api.QueryWorker, api.QueryAttestation},
		Queries:      map[string]module.Querier{api.QueryWorkers: queryWorkers},
	}
}

// maxListing bounds listings.
const maxListing = 10_000

// queryWorkers lists the identities of registered workers (unproved; prove
// each with /worker).
func queryWorkers(st *store.Store, req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	snap, err := st.Snapshot(req.Height)
	if err != nil {
		return nil, err
	}
	var ids []crypto.PublicKey
	err = snap.Prefix([]byte("w/"), maxListing, func(k, _ []byte) bool {
		var pk crypto.PublicKey
		copy(pk[:], k[2:])
		ids = append(ids, pk)
		return true
	})
	if err != nil {
		return nil, err
	}
	return &abci.ResponseQuery{Height: snap.Height(), Value: api.EncodeKeys(ids)}, nil
}

// ForEachWorker calls fn with every registered worker's record (expired
// ones too), in identity key order, until fn returns false.
func ForEachWorker(kv store.KV, fn func(w *api.WorkerRecord) bool) {
	store.Iterate(kv, []byte("w/"), func(k, v []byte) bool {
		w, err := api.DecodeWorkerRecord(v)
		if err != nil {
			panic(fmt.Sprintf("corrupt worker record %x: %v", k, err))
		}
		return fn(w)
	})
}
