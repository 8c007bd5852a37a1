// Package registry owns who the chain trusts off-chain: registered workers
// (WorkerInfo with the attestation that admitted them and its expiry), the
// gatekeeper list, the master public key and the attestation settings.
package registry

import (
	"fmt"
	"strconv"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/attestation"
	"github.com/phalago/phala/internal/chain/block"
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

// Gatekeepers returns the gatekeeper list.
func Gatekeepers(kv store.KV) []crypto.PublicKey {
	v := kv.Get(api.KeyGatekeepers)
	if v == nil {
		return nil
	}
	keys, err := api.DecodeKeys(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt gatekeeper list: %v", err))
	}
	return keys
}

// SetGatekeepers writes the gatekeeper list.
func SetGatekeepers(kv store.KV, keys []crypto.PublicKey) {
	kv.Set(api.KeyGatekeepers, api.EncodeKeys(keys))
}

// IsGatekeeper reports whether pk is on the gatekeeper list.
func IsGatekeeper(kv store.KV, pk crypto.PublicKey) bool {
	for _, k := range Gatekeepers(kv) {
		if k == pk {
			return true
		}
	}
	return false
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

// Authorize is the mq.Authorizer of off-chain origins: a worker must be
// registered and unexpired; a gatekeeper must be on the list.
func Authorize(kv store.KV, kind api.OriginKind, key crypto.PublicKey, height int64) error {
	switch kind {
	case api.OriginWorker:
		w := Worker(kv, key)
		if w == nil {
			return fmt.Errorf("%w: worker %s is not registered", api.ErrUnknownOrigin, key.Hex())
		}
		if !w.Active(height) {
			return fmt.Errorf("%w: registration of worker %s expired at height %d; renew it", api.ErrUnknownOrigin, key.Hex(), w.ExpiresAt)
		}
		if !Attestation(kv).MeasurementAllowed(w.Measurement) {
			return fmt.Errorf("%w: worker %s runs pRuntime measurement %x, which governance revoked; its registration has expired", api.ErrUnknownOrigin, key.Hex(), w.Measurement)
		}
		return nil
	case api.OriginGatekeeper:
		if !IsGatekeeper(kv, key) {
			return fmt.Errorf("%w: %s is not a gatekeeper", api.ErrUnknownOrigin, key.Hex())
		}
		return nil
	}
	return fmt.Errorf("%w: no %s with key %s is known to the chain", api.ErrUnknownOrigin, kind, key.Hex())
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

// RegisterWorker verifies the attestation of a worker and records it. A
// registration of an identity already present (expired or not) replaces the
// entry and restarts its lifetime.
func RegisterWorker(ctx *block.Context, c *api.RegisterWorker) error {
	info := &c.Info
	if info.ChainID != ctx.ChainID {
		return fmt.Errorf("%w: worker info is for chain %q, this is %q", api.ErrInvalidCall, info.ChainID, ctx.ChainID)
	}
	if !info.IdentityKey.Valid() || !info.EcdhKey.Valid() || !info.Operator.Valid() {
		return fmt.Errorf("%w: worker info holds an invalid public key", api.ErrInvalidCall)
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
	prev := Worker(ctx.KV, info.IdentityKey)
	if prev != nil && ev.IssuedAt.Unix() <= prev.AttestedAt {
		return fmt.Errorf("%w: worker %s is registered with a report issued at %s; a renewal needs a newer report (an old registration cannot be replayed)",
			api.ErrAttestation, info.IdentityKey.Hex(), time.Unix(prev.AttestedAt, 0).UTC().Format(time.RFC3339))
	}
	rec := &api.WorkerRecord{
		Info:         *info,
		Platform:     ev.Platform,
		Measurement:  ev.Measurement,
		RegisteredAt: ctx.Height,
		ExpiresAt:    ctx.Height + int64(ctx.Params.RegistrationLifetime),
		AttestedAt:   ev.IssuedAt.Unix(),
	}
	enc := rec.Encode()
	ctx.KV.Set(api.WorkerKey(info.IdentityKey), enc)
	ctx.Event("worker_registered",
		"identity", info.IdentityKey.Hex(), "operator", info.Operator.Address(),
		"endpoint", info.Endpoint, "expires_at", strconv.FormatInt(rec.ExpiresAt, 10),
		"renewal", strconv.FormatBool(prev != nil))
	return mq.Emit(ctx, api.ModuleOrigin(Module), api.TopicWorkerRegistered, enc)
}

// PublishMasterKey records the master public key announced by a
// gatekeeper, once: later announcements are ignored (rotation will be its
// own flow).
func PublishMasterKey(ctx *block.Context, gatekeeper crypto.PublicKey, payload []byte) {
	if len(payload) != crypto.PublicKeySize || ctx.KV.Get(api.KeyMasterKey) != nil {
		return
	}
	var pk crypto.PublicKey
	copy(pk[:], payload)
	if !pk.Valid() {
		return
	}
	ctx.KV.Set(api.KeyMasterKey, payload)
	ctx.Event("master_key_published", "public_key", pk.Hex(), "gatekeeper", gatekeeper.Hex())
}

// Spec returns the registry's entry in the chain's module table: it
// owns workers ("w/"), the gatekeeper list and master key ("g/") and the
// attestation settings; it executes register_worker, admits worker and
// gatekeeper origins into the queue, records the master key a gatekeeper
// announces, and serves the registry's proved reads and the worker listing.
func Spec() *module.Module {
	return &module.Module{
		Name:        Module,
		KeyPrefixes: []string{"w/", "g/", string(api.KeyAttestation)},
		Calls: map[api.CallKind]module.CallHandler{
			api.CallRegisterWorker: func(ctx *block.Context, _ crypto.PublicKey, c api.Call) error {
				return RegisterWorker(ctx, c.(*api.RegisterWorker))
			},
		},
		Origins: map[api.OriginKind]module.Authorizer{api.OriginWorker: Authorize, api.OriginGatekeeper: Authorize},
		Consumes: []module.Consumer{{Origin: api.OriginGatekeeper, Topic: api.TopicMasterKey, Handle: func(ctx *block.Context, m *api.Message) {
			PublishMasterKey(ctx, m.Origin.Key, m.Payload)
		}}},
		InitGenesis: func(kv store.KV, g *module.Genesis) error {
			SetAttestation(kv, &g.State.Attestation)
			SetGatekeepers(kv, g.State.Gatekeepers)
			return nil
		},
		StateQueries: []string{api.QueryWorker, api.QueryGatekeepers, api.QueryMasterKey, api.QueryAttestation},
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
