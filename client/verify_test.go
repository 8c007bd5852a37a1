package client

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cometbft/cometbft/crypto/tmhash"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	cmtversion "github.com/cometbft/cometbft/proto/tendermint/version"
	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/cometbft/cometbft/version"
)

// The verifier on synthetic chains: what a test network cannot do yet
// (change its validators) and the edge cases of trust.

// SignHeader signs header with vals (privs in the set's order) and returns
// the light block (exported to the external tests).
func SignHeader(t testing.TB, h *cmttypes.Header, vals *cmttypes.ValidatorSet, privs []cmttypes.PrivValidator) *cmttypes.LightBlock {
	t.Helper()
	id := cmttypes.BlockID{Hash: h.Hash(), PartSetHeader: cmttypes.PartSetHeader{Total: 1, Hash: tmhash.Sum([]byte("parts"))}}
	vs := cmttypes.NewVoteSet(h.ChainID, h.Height, 0, cmtproto.PrecommitType, vals)
	ext, err := cmttypes.MakeExtCommit(id, h.Height, 0, vs, privs, h.Time.Add(time.Millisecond), false)
	if err != nil {
		t.Fatal(err)
	}
	return &cmttypes.LightBlock{SignedHeader: &cmttypes.SignedHeader{Header: h, Commit: ext.ToCommit()}, ValidatorSet: vals}
}

type valSet struct {
	vals  *cmttypes.ValidatorSet
	privs []cmttypes.PrivValidator
}

func newValSet(n int) valSet {
	v, p := cmttypes.RandValidatorSet(n, 10)
	return valSet{v, p}
}

// synthChain makes headers 1..len(sets) where header h is signed by
// sets[h-1], each extending the previous one.
func synthChain(t testing.TB, chainID string, t0 time.Time, sets []valSet) map[int64]*cmttypes.LightBlock {
	chain := map[int64]*cmttypes.LightBlock{}
	var last cmttypes.BlockID
	for i, s := range sets {
		h := int64(i + 1)
		next := s
		if i+1 < len(sets) {
			next = sets[i+1]
		}
		hdr := &cmttypes.Header{
			Version: cmtversion.Consensus{Block: version.BlockProtocol}, ChainID: chainID, Height: h, Time: t0.Add(time.Duration(h) * time.Second),
			LastBlockID: last, LastCommitHash: tmhash.Sum([]byte("lc")), DataHash: tmhash.Sum([]byte("data")),
			ValidatorsHash: s.vals.Hash(), NextValidatorsHash: next.vals.Hash(), ConsensusHash: tmhash.Sum([]byte("cons")),
			AppHash: tmhash.Sum([]byte{byte(h)}), LastResultsHash: tmhash.Sum([]byte("res")), EvidenceHash: tmhash.Sum([]byte("ev")),
			ProposerAddress: s.vals.Validators[0].Address,
		}
		lb := SignHeader(t, hdr, s.vals, s.privs)
		chain[h] = lb
		last = lb.Commit.BlockID
	}
	return chain
}

type mapSource struct {
	chain   map[int64]*cmttypes.LightBlock
	fetched []int64
}

func (m *mapSource) lightBlock(_ context.Context, h int64) (*cmttypes.LightBlock, error) {
	m.fetched = append(m.fetched, h)
	lb := m.chain[h]
	if lb == nil {
		return nil, errNotYet
	}
	return lb, nil
}

func genesisOf(chainID string, t0 time.Time, s valSet) *cmttypes.GenesisDoc {
	doc := &cmttypes.GenesisDoc{ChainID: chainID, GenesisTime: t0, InitialHeight: 1}
	for _, v := range s.vals.Validators {
		doc.Validators = append(doc.Validators, cmttypes.GenesisValidator{PubKey: v.PubKey, Power: v.VotingPower})
	}
	return doc
}

// The verifier follows complete validator-set changes by bisection, and
// refuses a header whose signers the trusted validators never handed over
// to.
func TestVerifierFollowsValidatorChanges(t *testing.T) {
	const chainID = "synth"
	t0 := time.Now().Add(-time.Hour)
	a, b, c := newValSet(4), newValSet(4), newValSet(4)
	var sets []valSet
	for h := 1; h <= 30; h++ {
		sets = append(sets, [...]valSet{a, b, c}[(h-1)/10]) // a: 1-10, b: 11-20, c: 21-30
	}
	chain := synthChain(t, chainID, t0, sets)
	src := &mapSource{chain: chain}
	v, err := newVerifier(&Options{Genesis: genesisOf(chainID, t0, a)}, chainID, src)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := v.verified(context.Background(), 30, false)
	if err != nil {
		t.Fatalf("header 30 after two complete validator changes: %v", err)
	}
	if lb.Hash().String() != chain[30].Hash().String() || v.latest.Height != 30 {
		t.Fatalf("verified %d, latest %d", lb.Height, v.latest.Height)
	}
	if len(src.fetched) < 3 {
		t.Errorf("no bisection: fetched %v", src.fetched)
	}
	// Verified once: asking again fetches nothing.
	n := len(src.fetched)
	if _, err := v.verified(context.Background(), 30, false); err != nil || len(src.fetched) != n {
		t.Errorf("second verification of 30 fetched %v (%v)", src.fetched[n:], err)
	}
	// Backwards, by the hash chain.
	if lb, err := v.verified(context.Background(), 25, false); err != nil || lb.Hash().String() != chain[25].Hash().String() {
		t.Errorf("header 25 backwards: %v", err)
	}

	// A chain where set c appears without a handover from b: header 21
	// claims b's successor is c but is signed by a stranger set d.
	d := newValSet(4)
	dchain := synthChain(t, chainID, t0, append(append([]valSet{}, sets[:20]...), d, d, d))
	forged := map[int64]*cmttypes.LightBlock{}
	for h, lb := range chain {
		forged[h] = lb
	}
	for h := int64(21); h <= 23; h++ {
		forged[h] = dchain[h] // signed by d, but the trusted header 20 names c as next
	}
	v2, _ := newVerifier(&Options{Genesis: genesisOf(chainID, t0, a)}, chainID, &mapSource{chain: forged})
	for _, h := range []int64{23, 21} {
		if _, err := v2.verified(context.Background(), h, false); !errors.Is(err, ErrUntrustedHeader) {
			t.Errorf("header %d signed by validators never handed over to: %v", h, err)
		}
	}
}

// An adjacent header must extend the trusted one (LastBlockID), which
// light.VerifyAdjacent alone does not check.
func TestVerifierRefusesSplicedHeader(t *testing.T) {
	const chainID = "synth"
	t0 := time.Now().Add(-time.Hour)
	a := newValSet(3)
	chain := synthChain(t, chainID, t0, []valSet{a, a, a})
	other := synthChain(t, chainID, t0.Add(time.Millisecond), []valSet{a, a, a}) // same validators, another history
	spliced := map[int64]*cmttypes.LightBlock{1: chain[1], 2: chain[2], 3: other[3]}
	v, _ := newVerifier(&Options{Genesis: genesisOf(chainID, t0, a)}, chainID, &mapSource{chain: spliced})
	if _, err := v.verified(context.Background(), 2, false); err != nil {
		t.Fatal(err)
	}
	if _, err := v.verified(context.Background(), 3, false); !errors.Is(err, ErrUntrustedHeader) {
		t.Fatalf("a header of another history accepted: %v", err)
	}
}

// Trust expires with the trusting period (client clock); a first header
// not signed by the genesis validators is refused; the store resumes.
func TestVerifierTrustRoots(t *testing.T) {
	const chainID = "synth"
	t0 := time.Now().Add(-time.Hour)
	a := newValSet(3)
	chain := synthChain(t, chainID, t0, []valSet{a, a, a, a, a})
	late := func() time.Time { return t0.Add(DefaultTrustingPeriod + time.Hour) }
	v, _ := newVerifier(&Options{Genesis: genesisOf(chainID, t0, a), Now: late}, chainID, &mapSource{chain: chain})
	if _, err := v.verified(context.Background(), 5, false); !errors.Is(err, ErrTrustExpired) {
		t.Errorf("genesis older than the trusting period: %v", err)
	}
	v, _ = newVerifier(&Options{Genesis: genesisOf(chainID, t0, newValSet(3))}, chainID, &mapSource{chain: chain})
	if _, err := v.verified(context.Background(), 5, false); !errors.Is(err, ErrUntrustedHeader) {
		t.Errorf("chain not signed by the genesis validators: %v", err)
	}
	// A trusted header: right hash, wrong hash.
	good := &TrustHeader{Height: 2, Hash: chain[2].Hash()}
	v, _ = newVerifier(&Options{Trust: good}, chainID, &mapSource{chain: chain})
	if _, err := v.verified(context.Background(), 5, false); err != nil {
		t.Errorf("from a trusted header: %v", err)
	}
	bad := &TrustHeader{Height: 2, Hash: chain[3].Hash()}
	v, _ = newVerifier(&Options{Trust: bad}, chainID, &mapSource{chain: chain})
	if _, err := v.verified(context.Background(), 5, false); !errors.Is(err, ErrUntrustedHeader) {
		t.Errorf("wrong trusted hash: %v", err)
	}

	// The store: a second verifier resumes at the newest verified header.
	store := FileStore{Dir: t.TempDir()}
	opts := &Options{Genesis: genesisOf(chainID, t0, a), Store: store}
	v, _ = newVerifier(opts, chainID, &mapSource{chain: chain})
	if _, err := v.verified(context.Background(), 4, false); err != nil {
		t.Fatal(err)
	}
	src := &mapSource{chain: chain}
	v, _ = newVerifier(opts, chainID, src)
	if _, err := v.verified(context.Background(), 5, false); err != nil || len(src.fetched) != 1 || v.latest.Height != 5 {
		t.Errorf("resume from the store: fetched %v, %v", src.fetched, err)
	}
	// Another root does not use that store entry.
	src = &mapSource{chain: chain}
	v, _ = newVerifier(&Options{Trust: good, Store: store}, chainID, src)
	if _, err := v.verified(context.Background(), 5, false); err != nil || src.fetched[0] != 2 {
		t.Errorf("another root resumed from the store: fetched %v, %v", src.fetched, err)
	}
	// A corrupt store file is an error naming the file.
	id, _ := RootID(opts)
	if err := os.WriteFile(store.File(chainID, id), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	v, _ = newVerifier(opts, chainID, &mapSource{chain: chain})
	if _, err := v.verified(context.Background(), 5, false); err == nil || !strings.Contains(err.Error(), store.File(chainID, id)) {
		t.Errorf("corrupt store: %v", err)
	}
}

// FuzzDecodeTrusted: a stored light block never panics the decoder, and
// what it accepts is consistent.
func FuzzDecodeTrusted(f *testing.F) {
	a := newValSet(2)
	chain := synthChain(f, "synth", time.Unix(1e9, 0), []valSet{a, a})
	b, _ := EncodeTrusted(chain[2])
	f.Add(b)
	f.Add([]byte{})
	f.Add(b[:len(b)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		lb, err := DecodeTrusted("synth", b)
		if err == nil && (lb == nil || lb.ValidateBasic("synth") != nil) {
			t.Fatal("accepted an inconsistent light block")
		}
	})
}
