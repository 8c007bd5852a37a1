package gatekeeper

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"go.dedis.ch/kyber/v3/group/edwards25519"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/mq"
	"github.com/phalago/phala/internal/chain/store"
)

// KeySetOf returns the key set of era (docs/keys.md), nil if none was
// adopted.
func KeySetOf(kv store.KV, era uint64) *api.KeySet {
	v := kv.Get(api.KeySetKey(era))
	if v == nil {
		return nil
	}
	s, err := api.DecodeKeySet(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt key set of era %d: %v", era, err))
	}
	return s
}

// ServingKeyEra returns the era of the serving key set (new contracts are
// derived under it); ok is false before the genesis MasterKey is
// announced.
func ServingKeyEra(kv store.KV) (era uint64, ok bool) {
	v := kv.Get(api.KeyServingKeyEra)
	if v == nil {
		return 0, false
	}
	era, n := binary.Uvarint(v)
	if n <= 0 {
		panic("corrupt serving key era")
	}
	return era, true
}

// validPoint reports whether b is the canonical encoding of an
// edwards25519 point of the prime-order subgroup other than the identity
// (a commitment of a key set, a DKG key). A 32-byte string does not say
// its key type: about half of all sr25519 public keys also decode as
// such points.
func validPoint(b [32]byte) bool {
	suite := edwards25519.NewBlakeSHA256Ed25519()
	p := suite.Point()
	if p.UnmarshalBinary(b[:]) != nil {
		return false
	}
	again, err := p.MarshalBinary()
	if err != nil || string(again) != string(b[:]) || p.Equal(suite.Point().Null()) {
		return false
	}
	lp := suite.Point().Add(suite.Point().Mul(suite.Scalar().SetInt64(-1), p), p) // L·P
	return lp.Equal(suite.Point().Null())
}

// adoptKeySet records s as the key set of its era and the block that
// adopted it (retire.go), and makes it the serving one; the master public key (api.KeyMasterKey) becomes s's; and
// announces it (api.TopicKeyRotationReady).
func adoptKeySet(ctx *block.Context, s *api.KeySet) {
	ctx.KV.Set(api.KeySetKey(s.Era), s.Encode())
	ctx.KV.Set(keySetAdoptedKey(s.Era), binary.AppendVarint(nil, ctx.Height))
	ctx.KV.Set(api.KeyServingKeyEra, binary.AppendUvarint(nil, s.Era))
	pub := s.Public()
	ctx.KV.Set(api.KeyMasterKey, pub[:])
	ctx.Event("key_set_adopted", "era", strconv.FormatUint(s.Era, 10), "threshold", strconv.FormatUint(uint64(s.T), 10),
		"members", strconv.Itoa(len(s.Members)), "master_public_key", fmt.Sprintf("%x", pub))
	if err := mq.Emit(ctx, api.ModuleOrigin(Name), api.TopicKeyRotationReady, s.Encode()); err != nil {
		panic(fmt.Sprintf("announce the key set of era %d: %v", s.Era, err)) // a module message of bounded size
	}
}

// PublishMasterKey adopts the genesis key set (era 0) from the MasterKey
// public key the first genesis gatekeeper announces (an edwards25519
// point; whitepaper 4.4): the genesis gatekeepers, threshold 1, that
// point as the only commitment. Only the first announcement counts; a
// malformed one, or one after a key set exists, is ignored.
func PublishMasterKey(ctx *block.Context, gatekeeper crypto.PublicKey, payload []byte) {
	if len(payload) != 32 || ctx.KV.Get(api.KeyMasterKey) != nil {
		return
	}
	pt := [32]byte(payload)
	if !validPoint(pt) {
		ctx.Event("master_key_ignored", "gatekeeper", gatekeeper.Hex(), "reason", "not an edwards25519 point")
		return
	}
	adoptKeySet(ctx, &api.KeySet{Era: 0, T: 1, Members: Gatekeepers(ctx.KV), Commits: [][32]byte{pt}})
	ctx.Event("master_key_published", "public_key", fmt.Sprintf("%x", pt), "gatekeeper", gatekeeper.Hex())
}
