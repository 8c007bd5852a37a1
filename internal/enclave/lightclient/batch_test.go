package lightclient

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cometbft/cometbft/crypto/tmhash"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	cmtversion "github.com/cometbft/cometbft/proto/tendermint/version"
	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/cometbft/cometbft/version"
)

// testKeys are five validator keys: sets are made of some of them.
type testKeys struct {
	pvs    []cmttypes.PrivValidator
	byAddr map[string]cmttypes.PrivValidator
}

func newTestKeys(t *testing.T, n int) *testKeys {
	k := &testKeys{byAddr: map[string]cmttypes.PrivValidator{}}
	for range n {
		pv := cmttypes.NewMockPV()
		pub, err := pv.GetPubKey()
		if err != nil {
			t.Fatal(err)
		}
		k.pvs = append(k.pvs, pv)
		k.byAddr[string(pub.Address())] = pv
	}
	return k
}

// set is the validator set of keys[idx...], each with power 10.
func (k *testKeys) set(t *testing.T, idx ...int) *cmttypes.ValidatorSet {
	var vs []*cmttypes.Validator
	for _, i := range idx {
		pub, err := k.pvs[i].GetPubKey()
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, cmttypes.NewValidator(pub, 10))
	}
	return cmttypes.NewValidatorSet(vs)
}

// sign makes the commit of block id at height h by the validators of vals
// at the positions where signs is true (all when signs is nil).
func (k *testKeys) sign(t *testing.T, chainID string, vals *cmttypes.ValidatorSet, id cmttypes.BlockID, h int64, at time.Time, signs []bool) *cmttypes.Commit {
	t.Helper()
	vs := cmttypes.NewVoteSet(chainID, h, 0, cmtproto.PrecommitType, vals)
	for i, v := range vals.Validators {
		if signs != nil && !signs[i] {
			continue
		}
		vote := &cmttypes.Vote{Type: cmtproto.PrecommitType, Height: h, BlockID: id, Timestamp: at, ValidatorAddress: v.Address, ValidatorIndex: int32(i)}
		p := vote.ToProto()
		if err := k.byAddr[string(v.Address)].SignVote(chainID, p); err != nil {
			t.Fatal(err)
		}
		vote.Signature = p.Signature
		if _, err := vs.AddVote(vote); err != nil {
			t.Fatal(err)
		}
	}
	return vs.MakeExtendedCommit(cmttypes.ABCIParams{}).ToCommit()
}

// valChain makes headers 1..n of a chain from g whose validators at
// height h are setAt(h); salt makes its app hashes (two salts, two forks
// from the same genesis with the same keys).
func valChain(t *testing.T, k *testKeys, g *Genesis, setAt func(int64) *cmttypes.ValidatorSet, n int, salt byte) []Signed {
	t.Helper()
	var out []Signed
	var last cmttypes.BlockID
	for h := int64(1); h <= int64(n); h++ {
		vals, next := setAt(h), setAt(h+1)
		hdr := &cmttypes.Header{
			Version: cmtversion.Consensus{Block: version.BlockProtocol}, ChainID: g.ChainID, Height: h,
			Time: g.Time.Add(time.Duration(h) * time.Second), LastBlockID: last,
			ValidatorsHash: vals.Hash(), NextValidatorsHash: next.Hash(),
			AppHash: []byte{salt, byte(h)}, ProposerAddress: vals.Validators[0].Address,
		}
		id := cmttypes.BlockID{Hash: hdr.Hash(), PartSetHeader: cmttypes.PartSetHeader{Total: 1, Hash: tmhash.Sum([]byte{salt, byte(h)})}}
		out = append(out, Signed{Header: &cmttypes.SignedHeader{Header: hdr, Commit: k.sign(t, g.ChainID, vals, id, h, hdr.Time, nil)}, Validators: vals})
		last = id
	}
	return out
}

// VerifyBatch accepts exactly the headers that Verify one by one accepts,
// and refuses the same one with the same kind of error: honest chains
// (with a validator-set change in the middle), and each way a lying
// relayer could try to pass a header, placed in the first or a later
// range of the batch, from a fresh and a resumed client.
func TestVerifyBatchAsVerify(t *testing.T) {
	const n = 200
	k := newTestKeys(t, 5)
	setA, setB := k.set(t, 0, 1, 2, 3), k.set(t, 1, 2, 3, 4)
	changing := func(h int64) *cmttypes.ValidatorSet {
		if h >= 30 {
			return setB
		}
		return setA
	}
	g := &Genesis{ChainID: "phala-batch", InitialHeight: 1, Time: time.Unix(1_700_000_000, 0).UTC(), Validators: setA}
	ours := valChain(t, k, g, changing, n, 1)
	theirs := valChain(t, k, g, changing, n, 2)
	clone := func() []Signed {
		out := make([]Signed, len(ours))
		for i, h := range ours {
			c := *h.Header.Commit
			c.Signatures = append([]cmttypes.CommitSig(nil), c.Signatures...)
			for j := range c.Signatures {
				c.Signatures[j].Signature = append([]byte(nil), c.Signatures[j].Signature...)
			}
			out[i] = Signed{Header: &cmttypes.SignedHeader{Header: h.Header.Header, Commit: &c}, Validators: h.Validators}
		}
		return out
	}
	// resign replaces header i's commit by one signed by the validators
	// at the positions where signs is true.
	resign := func(hs []Signed, i int, signs []bool) {
		sh := hs[i].Header
		hs[i].Header = &cmttypes.SignedHeader{Header: sh.Header, Commit: k.sign(t, g.ChainID, hs[i].Validators, sh.Commit.BlockID, sh.Height, sh.Time, signs)}
	}
	cases := []struct {
		name   string
		mutate func(hs []Signed) []Signed
		want   int // headers accepted
		is     error
	}{
		{"honest, with a validator-set change", func(hs []Signed) []Signed { return hs }, n, nil},
		{"bad signature in header 1", func(hs []Signed) []Signed { hs[0].Header.Commit.Signatures[0].Signature[0] ^= 1; return hs }, 0, ErrUntrusted},
		{"bad signature early", func(hs []Signed) []Signed { hs[5].Header.Commit.Signatures[1].Signature[5] ^= 1; return hs }, 5, ErrUntrusted},
		{"bad signature in a later range", func(hs []Signed) []Signed { hs[170].Header.Commit.Signatures[2].Signature[9] ^= 1; return hs }, 170, ErrUntrusted},
		{"bad signature at the end", func(hs []Signed) []Signed { hs[n-1].Header.Commit.Signatures[0].Signature[9] ^= 1; return hs }, n - 1, ErrUntrusted},
		// VerifyCommitLight stops counting at more than 2/3 (3 of 4): a
		// bad 4th signature is not looked at, by either.
		{"bad signature beyond 2/3", func(hs []Signed) []Signed { hs[120].Header.Commit.Signatures[3].Signature[9] ^= 1; return hs }, n, nil},
		{"2 of 4 signed", func(hs []Signed) []Signed {
			hs[110].Header.Commit.Signatures[1] = cmttypes.NewCommitSigAbsent()
			hs[110].Header.Commit.Signatures[3] = cmttypes.NewCommitSigAbsent()
			return hs
		}, 110, ErrUntrusted},
		{"3 of 4 signed", func(hs []Signed) []Signed { resign(hs, 110, []bool{true, true, false, true}); return hs }, n, nil},
		{"wrong validator set supplied", func(hs []Signed) []Signed { hs[10].Validators = setB; return hs }, 10, ErrUntrusted},
		{"old validator set after the change", func(hs []Signed) []Signed { hs[140].Validators = setA; return hs }, 140, ErrUntrusted},
		{"gap", func(hs []Signed) []Signed { return append(hs[:150:150], hs[151:]...) }, 150, ErrNotNext},
		{"replayed header", func(hs []Signed) []Signed { return append(hs[:150:150], hs[149:]...) }, 150, ErrNotNext},
		{"spliced fork", func(hs []Signed) []Signed { return append(hs[:130:130], theirs[130:]...) }, 130, ErrFork},
		{"incomplete header", func(hs []Signed) []Signed {
			hs[160].Header = &cmttypes.SignedHeader{Header: hs[160].Header.Header}
			return hs
		}, 160, ErrUntrusted},
		{"nil validators", func(hs []Signed) []Signed { hs[60].Validators = nil; return hs }, 60, ErrUntrusted},
	}
	for _, tc := range cases {
		for _, resumeAt := range []int{0, 3} {
			t.Run(fmt.Sprintf("%s/resumed at %d", tc.name, resumeAt), func(t *testing.T) {
				hs := tc.mutate(clone())
				start := func() (*Client, []Signed) {
					c := New(g, nil)
					for _, h := range hs[:resumeAt] {
						if err := c.Verify(h.Header, h.Validators); err != nil {
							t.Fatal(err)
						}
					}
					return New(g, c.Trusted()), hs[resumeAt:]
				}
				if resumeAt > tc.want {
					t.Skip("refused before the resume point")
				}
				one, rest := start()
				seq, seqErr := 0, error(nil)
				for _, h := range rest {
					if seqErr = one.Verify(h.Header, h.Validators); seqErr != nil {
						break
					}
					seq++
				}
				batch, rest := start()
				got, err := batch.VerifyBatch(rest)
				if seq+resumeAt != tc.want || got != seq {
					t.Fatalf("accepted: one by one %d, batch %d, want %d", seq+resumeAt, got+resumeAt, tc.want)
				}
				if (err == nil) != (seqErr == nil) || (tc.is != nil && (!errors.Is(err, tc.is) && !errorsContain(err, tc.is))) {
					t.Fatalf("batch error %v, one by one %v, want %v", err, seqErr, tc.is)
				}
				if batch.Height() != one.Height() || (batch.Trusted() != nil && batch.Trusted().Hash().String() != one.Trusted().Hash().String()) {
					t.Fatalf("batch at %d, one by one at %d", batch.Height(), one.Height())
				}
				if err != nil && err.Error() != seqErr.Error() {
					t.Fatalf("batch error %q, one by one %q", err, seqErr)
				}
				if resumeAt > 0 && err == nil {
					// An accepted chain takes the fast path all the way.
					c, rest := start()
					if acc, slow := c.fastVerify(rest); acc != len(rest) || slow != 0 {
						t.Fatalf("fast path accepted %d of %d (then %d one by one)", acc, len(rest), slow)
					}
				}
			})
		}
	}
}

// errorsContain: ErrFork is reported in the text of an ErrUntrusted.
func errorsContain(err, target error) bool {
	return err != nil && target != nil && errors.Is(err, ErrUntrusted) && strings.Contains(err.Error(), target.Error())
}

// The validator-set hash cache serves a hash only for a set with the same
// keys and powers in the same order: any change is hashed anew.
func TestValsHashCacheChangedSet(t *testing.T) {
	k := newTestKeys(t, 5)
	a := k.set(t, 0, 1, 2, 3)
	power := a.Copy()
	power.Validators[2].VotingPower++
	reordered := a.Copy()
	reordered.Validators[0], reordered.Validators[1] = reordered.Validators[1], reordered.Validators[0]
	key := a.Copy()
	pub, err := k.pvs[4].GetPubKey()
	if err != nil {
		t.Fatal(err)
	}
	key.Validators[1] = cmttypes.NewValidator(pub, key.Validators[1].VotingPower)
	cases := []struct {
		name string
		vals *cmttypes.ValidatorSet
		same bool
	}{
		{"same set again", a, true},
		{"a copy (new proposer priorities)", func() *cmttypes.ValidatorSet { c := a.Copy(); c.IncrementProposerPriority(1); return c }(), true},
		{"one power changed", power, false},
		{"reordered", reordered, false},
		{"one key changed", key, false},
		{"one validator fewer", k.set(t, 0, 1, 2), false},
		{"one validator more", k.set(t, 0, 1, 2, 3, 4), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c valsHashCache
			if got := c.hash(a); string(got) != string(a.Hash()) {
				t.Fatal("first hash wrong")
			}
			got := c.hash(tc.vals)
			if string(got) != string(tc.vals.Hash()) {
				t.Fatalf("served %X, the set's hash is %X", got, tc.vals.Hash())
			}
			if (string(got) == string(a.Hash())) != tc.same {
				t.Fatalf("same hash as the cached set: %v, want %v", !tc.same, tc.same)
			}
		})
	}
}
