package lightclient

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cometbft/cometbft/crypto/tmhash"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	cmtversion "github.com/cometbft/cometbft/proto/tendermint/version"
	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/cometbft/cometbft/version"
)

// FuzzDecodeHeader: untrusted protobuf never panics the decoder.
func FuzzDecodeHeader(f *testing.F) {
	vals, _ := cmttypes.RandValidatorSet(2, 10)
	vp, _ := vals.ToProto()
	vb, _ := vp.Marshal()
	f.Add([]byte{}, vb)
	f.Add([]byte{0x0a, 0x02, 0x08, 0x01}, vb)
	f.Fuzz(func(t *testing.T, shb, vb []byte) {
		sh, v, err := DecodeHeader(shb, vb)
		if err == nil && (sh == nil || v == nil) {
			t.Fatal("nil result without error")
		}
	})
}

func TestVerifyRefusesIncomplete(t *testing.T) {
	vals, _ := cmttypes.RandValidatorSet(1, 10)
	c := New(&Genesis{ChainID: "c", InitialHeight: 1, Validators: vals}, nil)
	if err := c.Verify(nil, vals); err == nil {
		t.Fatal("nil header accepted")
	}
	if err := c.Verify(&cmttypes.SignedHeader{Header: &cmttypes.Header{Height: 1}}, vals); err == nil {
		t.Fatal("header without commit accepted")
	}
	if c.Height() != 0 {
		t.Fatal("height moved")
	}
}

// forkChain makes n signed headers from genesis g, all signed by pv (the
// genesis validator); salt makes the chain's app hashes, so two salts are
// two chains from the same genesis with the same validator key.
func forkChain(t *testing.T, g *Genesis, pv cmttypes.PrivValidator, n int, salt byte) []*cmttypes.SignedHeader {
	t.Helper()
	var out []*cmttypes.SignedHeader
	var last cmttypes.BlockID
	for h := int64(1); h <= int64(n); h++ {
		hdr := &cmttypes.Header{
			Version: cmtversion.Consensus{Block: version.BlockProtocol}, ChainID: g.ChainID, Height: h,
			Time: g.Time.Add(time.Duration(h) * time.Second), LastBlockID: last,
			ValidatorsHash: g.Validators.Hash(), NextValidatorsHash: g.Validators.Hash(),
			AppHash: []byte{salt, byte(h)}, ProposerAddress: g.Validators.Validators[0].Address,
		}
		id := cmttypes.BlockID{Hash: hdr.Hash(), PartSetHeader: cmttypes.PartSetHeader{Total: 1, Hash: tmhash.Sum([]byte{salt, byte(h)})}}
		vs := cmttypes.NewVoteSet(g.ChainID, h, 0, cmtproto.PrecommitType, g.Validators)
		ec, err := cmttypes.MakeExtCommit(id, h, 0, vs, []cmttypes.PrivValidator{pv}, hdr.Time, false)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &cmttypes.SignedHeader{Header: hdr, Commit: ec.ToCommit()})
		last = id
	}
	return out
}

// A client synced to height 3 of one chain refuses height 4 of another
// chain run from the same genesis by the same validator key (a spliced
// fork): every signature and validator hand-over verifies, only the
// linkage (LastBlockID) does not. Resumed from its checkpointed header, the
// same.
func TestSplicedForkRefused(t *testing.T) {
	pv := cmttypes.NewMockPV()
	pub, err := pv.GetPubKey()
	if err != nil {
		t.Fatal(err)
	}
	vals := cmttypes.NewValidatorSet([]*cmttypes.Validator{cmttypes.NewValidator(pub, 10)})
	g := &Genesis{ChainID: "phala-fork", InitialHeight: 1, Time: time.Unix(1_700_000_000, 0).UTC(), Validators: vals}
	ours, theirs := forkChain(t, g, pv, 5, 1), forkChain(t, g, pv, 5, 2)
	// Each chain verifies on its own.
	for _, ch := range [][]*cmttypes.SignedHeader{ours, theirs} {
		c := New(g, nil)
		for _, sh := range ch {
			if err := c.Verify(sh, vals); err != nil {
				t.Fatalf("honest chain: %v", err)
			}
		}
	}
	c := New(g, nil)
	for _, sh := range ours[:3] {
		if err := c.Verify(sh, vals); err != nil {
			t.Fatal(err)
		}
	}
	for name, cl := range map[string]*Client{"live": c, "resumed": New(g, c.Trusted())} {
		if err := cl.Verify(theirs[3], vals); !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), ErrFork.Error()) {
			t.Fatalf("%s: spliced header 4: %v", name, err)
		}
		if cl.Height() != 3 {
			t.Fatalf("%s: height moved to %d", name, cl.Height())
		}
		if err := cl.Verify(ours[3], vals); err != nil {
			t.Fatalf("%s: our header 4 after the refusal: %v", name, err)
		}
	}
}

// The genesis hash covers every field that makes a chain, and not the
// document's formatting.
func TestGenesisHash(t *testing.T) {
	pv := cmttypes.NewMockPV()
	pub, _ := pv.GetPubKey()
	base := func() *cmttypes.GenesisDoc {
		return &cmttypes.GenesisDoc{
			ChainID: "phala-a", GenesisTime: time.Unix(1_700_000_000, 0).UTC(), InitialHeight: 1,
			Validators: []cmttypes.GenesisValidator{{PubKey: pub, Power: 10, Name: "v0"}},
			AppState:   []byte(`{"a": 1}`),
		}
	}
	h0, err := GenesisHash(base())
	if err != nil {
		t.Fatal(err)
	}
	other := cmttypes.NewMockPV()
	opub, _ := other.GetPubKey()
	for name, mod := range map[string]func(d *cmttypes.GenesisDoc){
		"chain id":        func(d *cmttypes.GenesisDoc) { d.ChainID = "phala-b" },
		"initial height":  func(d *cmttypes.GenesisDoc) { d.InitialHeight = 2 },
		"time":            func(d *cmttypes.GenesisDoc) { d.GenesisTime = d.GenesisTime.Add(time.Second) },
		"validator key":   func(d *cmttypes.GenesisDoc) { d.Validators[0].PubKey = opub },
		"validator power": func(d *cmttypes.GenesisDoc) { d.Validators[0].Power = 11 },
		"second validator": func(d *cmttypes.GenesisDoc) {
			d.Validators = append(d.Validators, cmttypes.GenesisValidator{PubKey: opub, Power: 1})
		},
		"app state": func(d *cmttypes.GenesisDoc) { d.AppState = []byte(`{"a": 2}`) },
		"app hash":  func(d *cmttypes.GenesisDoc) { d.AppHash = []byte{1} },
		"consensus params": func(d *cmttypes.GenesisDoc) {
			d.ConsensusParams = cmttypes.DefaultConsensusParams()
			d.ConsensusParams.Block.MaxGas = 12345
		},
	} {
		d := base()
		mod(d)
		if h, err := GenesisHash(d); err != nil || h == h0 {
			t.Errorf("%s: same hash (%v)", name, err)
		}
	}
	d := base()
	d.AppState = []byte("{\n  \"a\":   1\n}")
	d.Validators[0].Name = "renamed"
	if h, err := GenesisHash(d); err != nil || h != h0 {
		t.Errorf("formatting or validator name changed the hash: %v", err)
	}
	d.ChainID = ""
	if _, err := GenesisHash(d); err == nil {
		t.Error("invalid genesis hashed")
	}
}
