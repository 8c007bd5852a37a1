package gatekeeper

import (
	"bytes"
	"slices"
	"testing"

	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/group/edwards25519"
	"go.dedis.ch/kyber/v3/share"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/gatekeeper/dkgplay"
	"github.com/phalago/phala/internal/enclave/threshold"
)

// The genesis announcement adopts the key set of era 0 once (T 1, the
// genesis gatekeepers, the point); a point announced later changes
// nothing. The elected set's DKG adopts the key set of era 1: T =
// DkgThreshold(2) = 2, its participants, the commitments the members'
// shares match (two shares recover its secret); it serves, its public key
// becomes the MasterKey, it is announced (phala/keys/rotation_ready), and
// the key set of era 0 stays.
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

	e.players = dkgplay.New(t, e.p, node(1), node(2))
	e.run(10)
	if KeySetOf(e.kv, 1) != nil {
		t.Fatal("key set adopted before the elected set's DKG")
	}
	ctx = e.until(20, "key set of era 1", func(c *block.Context) bool { return KeySetOf(e.kv, 1) != nil })
	members := Election(e.kv, 1).Members
	s1 := KeySetOf(e.kv, 1)
	if s1.Era != 1 || s1.T != 2 || !slices.Equal(s1.Members, members) || len(s1.Commits) != 2 || s1.Public() == mk {
		t.Fatalf("key set of era 1 %+v", s1)
	}
	// The commitments are the members' DKG's: each member's share is its
	// commitment's scalar, and two shares recover the secret of the
	// public key.
	var shares []*share.PriShare
	for i, m := range members {
		sh := e.players.Player(m).Share
		b, err := threshold.MemberCommitment(pointsOf(t, s1.Commits), i).MarshalBinary()
		if err != nil || sh.Index != i || [32]byte(b) != pointBytes(t, threshold.Suite.Point().Mul(sh.V, nil)) {
			t.Fatalf("share of member %d does not match the key set's commitments", i)
		}
		shares = append(shares, sh.PriShare())
	}
	secret, err := share.RecoverSecret(threshold.Suite, shares, 2, 2)
	if err != nil || pointBytes(t, threshold.Suite.Point().Mul(secret, nil)) != s1.Public() {
		t.Fatalf("the shares do not recover the key set's secret: %v", err)
	}
	if era, ok := ServingKeyEra(e.kv); !ok || era != 1 {
		t.Fatalf("serving key era %d %v", era, ok)
	}
	if r := ready(ctx.Messages); len(r) != 1 || !bytes.Equal(r[0].Encode(), s1.Encode()) || !hasEvent(ctx, "key_set_adopted") {
		t.Fatalf("rotation ready %+v", r)
	}
	if !bytes.Equal(e.kv.Get(api.KeyMasterKey), s1.Commits[0][:]) || KeySetOf(e.kv, 0).Public() != mk {
		t.Fatal("the MasterKey is not the era-1 key set's, or the key set of era 0 changed")
	}
}

func pointsOf(t *testing.T, bs [][32]byte) []kyber.Point {
	t.Helper()
	out := make([]kyber.Point, len(bs))
	for i, b := range bs {
		out[i] = threshold.Suite.Point()
		if err := out[i].UnmarshalBinary(b[:]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func pointBytes(t *testing.T, p kyber.Point) [32]byte {
	t.Helper()
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(b)
}

// Without a genesis MasterKey the elected set's DKG still makes a key
// set (a single member: a result it made alone, T 1); it serves and is
// the MasterKey, and a genesis gatekeeper's announcement after it is
// ignored.
func TestDkgKeySetWithoutGenesisMasterKey(t *testing.T) {
	e := newEnv(t)
	e.h = 1
	if err := e.declare(opA, node(1), true); err != nil {
		t.Fatal(err)
	}
	e.src.stake = map[crypto.PublicKey]uint64{node(1): 500}
	e.players = dkgplay.New(t, e.p, node(1))
	e.run(10)
	// Key at 11, the dealing among one participant at 11, its result at 12.
	e.run(12)
	if r := Election(e.kv, 1); r == nil || r.Status != api.ElectionActive || r.StatusHeight != 12 || !slices.Equal(r.Confirmed, []crypto.PublicKey{node(1)}) {
		t.Fatalf("not active: %+v", r)
	}
	s1, p := KeySetOf(e.kv, 1), e.players.Player(node(1))
	if s1 == nil || s1.T != 1 || !slices.Equal(s1.Members, []crypto.PublicKey{node(1)}) || len(s1.Commits) != 1 ||
		s1.Public() != pointBytes(t, threshold.Suite.Point().Mul(p.Share.V, nil)) {
		t.Fatalf("key set %+v", s1)
	}
	if era, ok := ServingKeyEra(e.kv); !ok || era != 1 || KeySetOf(e.kv, 0) != nil || !bytes.Equal(e.kv.Get(api.KeyMasterKey), s1.Commits[0][:]) {
		t.Fatal("the era-1 key set does not serve")
	}
	late := pointBytes(t, threshold.Suite.Point().Pick(threshold.Suite.RandomStream()))
	PublishMasterKey(e.ctx(), node(9), late[:])
	if KeySetOf(e.kv, 0) != nil || !bytes.Equal(e.kv.Get(api.KeyMasterKey), s1.Commits[0][:]) {
		t.Fatal("a genesis announcement after the DKG's key set was adopted")
	}
}
