package gatekeeper

import (
	"bytes"
	"slices"
	"testing"

	"go.dedis.ch/kyber/v3/group/edwards25519"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// An elected set that becomes active adopts the key set of its era (T 1,
// its members, the serving MasterKey's commitment), serves it and
// announces it; before a MasterKey exists no key set is adopted. The
// genesis announcement adopts era 0 once; a point announced later changes
// nothing.
func TestKeySetsPerEra(t *testing.T) {
	suite := edwards25519.NewBlakeSHA256Ed25519()
	point := func() [32]byte {
		b, err := suite.Point().Pick(suite.RandomStream()).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return [32]byte(b)
	}
	ready := func(msgs []api.Message) []*api.KeySet {
		var out []*api.KeySet
		for _, m := range msgs {
			if m.Topic == api.TopicKeyRotationReady && m.Origin == api.ModuleOrigin(Name) {
				s, err := api.DecodeKeySet(m.Payload)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, s)
			}
		}
		return out
	}
	e := newEnv(t)
	e.h = 1
	for _, n := range []byte{1, 2} {
		if err := e.declare(opA, node(n), true); err != nil {
			t.Fatal(err)
		}
	}
	e.src.stake = map[crypto.PublicKey]uint64{node(1): 500, node(2): 400}
	if _, ok := ServingKeyEra(e.kv); ok || KeySetOf(e.kv, 0) != nil {
		t.Fatal("a key set before the MasterKey")
	}
	mk := point()
	ctx := e.ctx()
	PublishMasterKey(ctx, node(9), mk[:])
	s0 := KeySetOf(e.kv, 0)
	if s0 == nil || s0.T != 1 || !slices.Equal(s0.Members, []crypto.PublicKey{node(9)}) || s0.Public() != mk {
		t.Fatalf("genesis key set %+v", s0)
	}
	if r := ready(ctx.Messages); len(r) != 1 || r[0].Era != 0 || r[0].Public() != mk {
		t.Fatalf("rotation ready %+v", r)
	}
	later := point()
	ctx = e.ctx()
	PublishMasterKey(ctx, node(9), later[:])
	if KeySetOf(e.kv, 0).Public() != mk || len(ready(ctx.Messages)) != 0 {
		t.Fatal("a later announcement changed the key set")
	}

	e.run(10)
	if KeySetOf(e.kv, 1) != nil {
		t.Fatal("key set adopted before the elected set is active")
	}
	e.h++
	ctx = e.ctx()
	OnReady(ctx, node(1), (&api.GatekeeperReady{Era: 1}).Encode())
	OnReady(ctx, node(2), (&api.GatekeeperReady{Era: 1}).Encode())
	members := Election(e.kv, 1).Members
	s1 := KeySetOf(e.kv, 1)
	if s1 == nil || s1.Era != 1 || s1.T != 1 || !slices.Equal(s1.Members, members) || len(s1.Commits) != 1 || s1.Public() != mk {
		t.Fatalf("key set of era 1 %+v", s1)
	}
	if era, ok := ServingKeyEra(e.kv); !ok || era != 1 {
		t.Fatalf("serving key era %d %v", era, ok)
	}
	if r := ready(ctx.Messages); len(r) != 1 || r[0].Era != 1 || !slices.Equal(r[0].Members, members) {
		t.Fatalf("rotation ready %+v", r)
	}
	if !bytes.Equal(e.kv.Get(api.KeyMasterKey), mk[:]) || KeySetOf(e.kv, 0).Public() != mk {
		t.Fatal("the MasterKey or the key set of era 0 changed")
	}
}

// Without a MasterKey an activated set adopts no key set.
func TestNoKeySetWithoutMasterKey(t *testing.T) {
	e := newEnv(t)
	e.h = 1
	if err := e.declare(opA, node(1), true); err != nil {
		t.Fatal(err)
	}
	e.src.stake = map[crypto.PublicKey]uint64{node(1): 500}
	e.run(10)
	e.h++
	ctx := e.ctx()
	OnReady(ctx, node(1), (&api.GatekeeperReady{Era: 1}).Encode())
	if r := Election(e.kv, 1); r == nil || r.Status != api.ElectionActive {
		t.Fatalf("not active: %+v", r)
	}
	if _, ok := ServingKeyEra(e.kv); ok || KeySetOf(e.kv, 1) != nil {
		t.Fatal("a key set without a MasterKey")
	}
}
