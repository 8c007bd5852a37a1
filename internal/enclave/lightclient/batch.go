package lightclient

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/light"
	cmttypes "github.com/cometbft/cometbft/types"
)

// Signed is a decoded header with the validator set the relayer says
// signed it (checked against the header by verification).
type Signed struct {
	Header     *cmttypes.SignedHeader
	Validators *cmttypes.ValidatorSet
}

// minBatchPerWorker is the fewest signatures worth a goroutine of their
// own: below it, batch verification loses most of its advantage.
const minBatchPerWorker = 64

// VerifyBatch accepts hs in order as the next headers, exactly as calling
// Verify on each would, and returns how many it accepted and the error
// that refused the next one (nil if all were accepted). Those accepted stay
// accepted; the refused header and those after it change nothing.
//
// It is faster than Verify in a loop because the ed25519 signatures of all
// the headers are checked together: first every check of Verify except the
// signatures runs on each header in order (height, linkage to the previous
// header, CometBFT's header and commit validation, time, the validator
// set's hash and its hand-over from the previous header, the validator
// addresses, and the 2/3 voting-power tally over exactly the signatures
// that VerifyCommitLight would check); then all those signatures are
// batch-verified at once, split over the CPUs. Batch and single
// verification agree (ZIP-215, as CometBFT's own VerifyCommitLight batches
// them too). If the batch fails, or a header needs something this path does
// not handle (the first header after genesis, a non-ed25519 key), the
// headers are verified one by one with Verify, which names the refused
// header and its reason.
func (c *Client) VerifyBatch(hs []Signed) (int, error) {
	n := 0
	for n < len(hs) {
		if c.trusted == nil {
			if err := c.Verify(hs[n].Header, hs[n].Validators); err != nil {
				return n, err
			}
			n++
			continue
		}
		k, sigs := c.precheck(hs[n:])
		if k > 0 && verifySigs(sigs) {
			last := hs[n+k-1].Header
			c.trusted, c.trustedHash = last, last.Commit.BlockID.Hash
			n += k
		} else {
			// Verify them one by one: it finds the refused header.
			if k == 0 {
				k = 1
			}
			for _, h := range hs[n : n+k] {
				if err := c.Verify(h.Header, h.Validators); err != nil {
					return n, err
				}
				n++
			}
			continue
		}
		if n < len(hs) {
			// precheck stopped at hs[n]: Verify gives its reason (or
			// accepts it, if precheck was only more cautious).
			if err := c.Verify(hs[n].Header, hs[n].Validators); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// sig is one signature a commit's verification needs.
type sig struct {
	key      cmted25519.PubKey
	msg, sig []byte
}

// precheck runs every check of Verify except the signatures' cryptography
// on the headers in order, from the trusted one, and returns how many
// passed and the signatures they need (for each header, those
// VerifyCommitLight would verify: the commit votes for the block, in
// order, until more than 2/3 of the voting power).
func (c *Client) precheck(hs []Signed) (int, []sig) {
	prev := c.trusted
	prevHash := c.trustedHash
	if prevHash == nil {
		prevHash = prev.Hash()
		c.trustedHash = prevHash
	}
	var sigs []sig
	for k, h := range hs {
		s, err := c.precheckOne(prev, prevHash, h.Header, h.Validators)
		if err != nil {
			return k, sigs
		}
		sigs = append(sigs, s...)
		// ValidateBasic checked that the commit is for this header's hash.
		prev, prevHash = h.Header, h.Header.Commit.BlockID.Hash
	}
	return len(hs), sigs
}

// precheckOne mirrors Verify, light.VerifyAdjacent and
// ValidatorSet.VerifyCommitLight (CometBFT v0.38) for sh on top of prev
// (whose header hash is prevHash) without verifying the signatures, which
// it returns.
func (c *Client) precheckOne(prev *cmttypes.SignedHeader, prevHash []byte, sh *cmttypes.SignedHeader, vals *cmttypes.ValidatorSet) ([]sig, error) {
	// Verify.
	if sh == nil || sh.Header == nil || sh.Commit == nil || vals == nil {
		return nil, errors.New("incomplete header")
	}
	if sh.Height != prev.Height+1 {
		return nil, errors.New("not the next height")
	}
	if !bytes.Equal(sh.LastBlockID.Hash, prevHash) {
		return nil, ErrFork
	}
	// light.VerifyAdjacent (now is the header's own time, as in Verify).
	now := sh.Time
	if light.HeaderExpired(prev, trustingPeriod, now) {
		return nil, errors.New("trusted header expired")
	}
	if err := sh.ValidateBasic(prev.ChainID); err != nil {
		return nil, err
	}
	if !sh.Time.After(prev.Time) || !sh.Time.Before(now.Add(time.Second)) {
		return nil, errors.New("header time")
	}
	if !bytes.Equal(sh.ValidatorsHash, c.valsHash(vals)) {
		return nil, errors.New("validators do not match the header")
	}
	if !bytes.Equal(sh.ValidatorsHash, prev.NextValidatorsHash) {
		return nil, errors.New("validators are not the previous header's next validators")
	}
	// VerifyCommitLight(prev.ChainID, sh.Commit.BlockID, sh.Height, sh.Commit).
	commit := sh.Commit
	if vals.Size() != len(commit.Signatures) || commit.Height != sh.Height {
		return nil, errors.New("commit does not match the validators")
	}
	needed := vals.TotalVotingPower() * 2 / 3
	var tallied int64
	var out []sig
	for idx, cs := range commit.Signatures {
		if cs.BlockIDFlag != cmttypes.BlockIDFlagCommit {
			continue
		}
		if err := cs.ValidateBasic(); err != nil {
			return nil, err
		}
		val := vals.Validators[idx]
		if !bytes.Equal(val.Address, cs.ValidatorAddress) {
			return nil, errors.New("validator address mismatch")
		}
		key, ok := val.PubKey.(cmted25519.PubKey)
		if !ok || len(key) != cmted25519.PubKeySize || len(cs.Signature) != cmted25519.SignatureSize {
			return nil, errors.New("not an ed25519 signature")
		}
		out = append(out, sig{key: key, msg: commit.VoteSignBytes(prev.ChainID, int32(idx)), sig: cs.Signature})
		tallied += val.VotingPower
		if tallied > needed {
			return out, nil
		}
	}
	return nil, fmt.Errorf("not enough voting power signed: %d, needed more than %d", tallied, needed)
}

// valsHash returns vals.Hash(), reusing the last one computed when vals
// has the same validators (public keys and voting powers, in order: all
// the hash covers) as the set it was computed for.
func (c *Client) valsHash(vals *cmttypes.ValidatorSet) []byte {
	if c.hashedVals != nil && sameValidators(c.hashedVals, vals) {
		return c.hashedValsHash
	}
	h := vals.Hash()
	c.hashedVals, c.hashedValsHash = vals, h
	return h
}

// sameValidators reports whether a and b have the same validators' keys
// and voting powers in the same order.
func sameValidators(a, b *cmttypes.ValidatorSet) bool {
	if len(a.Validators) != len(b.Validators) {
		return false
	}
	for i, va := range a.Validators {
		vb := b.Validators[i]
		if va.VotingPower != vb.VotingPower || va.PubKey == nil || vb.PubKey == nil ||
			va.PubKey.Type() != vb.PubKey.Type() || !bytes.Equal(va.PubKey.Bytes(), vb.PubKey.Bytes()) {
			return false
		}
	}
	return true
}

// verifySigs batch-verifies sigs, split over the CPUs, and reports
// whether every one is valid.
func verifySigs(sigs []sig) bool {
	workers := min(runtime.GOMAXPROCS(0), len(sigs)/minBatchPerWorker)
	if workers < 1 {
		workers = 1
	}
	per := (len(sigs) + workers - 1) / workers
	oks := make([]bool, workers)
	var wg sync.WaitGroup
	for w := range workers {
		part := sigs[w*per : min(len(sigs), (w+1)*per)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			oks[w] = verifyPart(part)
		}()
	}
	wg.Wait()
	for _, ok := range oks {
		if !ok {
			return false
		}
	}
	return true
}

func verifyPart(sigs []sig) bool {
	if len(sigs) == 0 {
		return true
	}
	bv := cmted25519.NewBatchVerifier()
	for _, s := range sigs {
		if err := bv.Add(s.key, s.msg, s.sig); err != nil {
			return false
		}
	}
	ok, _ := bv.Verify()
	return ok
}
