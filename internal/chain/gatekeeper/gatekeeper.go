// Package gatekeeper owns the chain's gatekeepers (DESIGN.md: the
// gatekeeper list and the master key lifecycle): the list of serving
// gatekeepers ("g/list", the genesis list until an elected set is active),
// the gatekeeper origin in the queue, the master public key the first
// gatekeeper announces ("g/master").
package gatekeeper

import (
	"fmt"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/module"
	"github.com/phalago/phala/internal/chain/registry"
	"github.com/phalago/phala/internal/chain/store"
)

// Name is the module's name: its origin in the queue.
const Name = "gatekeeper"

// Gatekeepers returns the list of serving gatekeepers.
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

// SetGatekeepers writes the list of serving gatekeepers.
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

// Authorize is the mq.Authorizer of the gatekeeper origin: the key must be
// on the gatekeeper list AND Attested (registry): its pRuntime registers
// with an attestation report like a worker's (whitepaper 4.4: the genesis
// names the gatekeeper's identity, which registers before its MasterKey
// announcement counts). Every gatekeeper message (master key announcement
// and shares, contract key grants) passes here, so the chain acts on none
// from a key merely named in the genesis. Errors wrap api.ErrUnknownOrigin.
func Authorize(kv store.KV, kind api.OriginKind, key crypto.PublicKey, height int64) error {
	if kind != api.OriginGatekeeper {
		return fmt.Errorf("%w: no %s with key %s is known to the chain", api.ErrUnknownOrigin, kind, key.Hex())
	}
	if !IsGatekeeper(kv, key) {
		return fmt.Errorf("%w: %s is not a gatekeeper", api.ErrUnknownOrigin, key.Hex())
	}
	if _, err := registry.Attested(kv, key, height); err != nil {
		return fmt.Errorf("gatekeeper: %w", err)
	}
	return nil
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

// Spec returns the gatekeeper module's entry in the chain's module table:
// it owns the gatekeeper list and the master key ("g/"), admits the
// gatekeeper origin into the queue, records the master key a gatekeeper
// announces, and serves their proved reads.
func Spec() *module.Module {
	return &module.Module{
		Name:        Name,
		KeyPrefixes: []string{"g/"},
		Origins:     map[api.OriginKind]module.Authorizer{api.OriginGatekeeper: Authorize},
		Consumes: []module.Consumer{{Origin: api.OriginGatekeeper, Topic: api.TopicMasterKey, Handle: func(ctx *block.Context, m *api.Message) {
			PublishMasterKey(ctx, m.Origin.Key, m.Payload)
		}}},
		InitGenesis: func(kv store.KV, g *module.Genesis) error {
			SetGatekeepers(kv, g.State.Gatekeepers)
			return nil
		},
		StateQueries: []string{api.QueryGatekeepers, api.QueryMasterKey},
	}
}
