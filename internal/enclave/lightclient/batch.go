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
// batch-verified at once. The headers are split in contiguous ranges, one
// per CPU, each checked so on a goroutine of its own (a range counts only
// if every range before it passed, and it checks its first header's
// linkage to the last header of the range before). Batch and single
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
		k, slow := c.fastVerify(hs[n:])
		if k > 0 {
			last := hs[n+k-1].Header
			c.trusted, c.trustedHash = last, last.Commit.BlockID.Hash
			n += k
		}
		// The fast path stopped: Verify the next slow headers one by one;
		// it names the refused one and its reason (or accepts one the
		// fast path was only more cautious about).
		for _, h := range hs[n:min(len(hs), n+slow)] {
			if err := c.Verify(h.Header, h.Validators); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// minPerWorker is the fewest headers worth a goroutine of their own: below
// it, batch verification of their signatures loses most of its advantage.
const minPerWorker = 48

// fastVerify checks hs on top of the trusted header in contiguous ranges,
// one per CPU, each range checked in order without signatures (precheck)
// and then its signatures batch-verified. It returns how many headers at
// the start of hs passed (every range before them fully passed), and how
// many after those the caller must verify one by one: 1 if a header failed
// precheck, its whole range if a range's batch failed (batch verification
// does not say which signature is bad). It changes nothing.
func (c *Client) fastVerify(hs []Signed) (accepted, slow int) {
	if c.trustedHash == nil {
		c.trustedHash = c.trusted.Hash()
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), len(hs)/minPerWorker))
	per := (len(hs) + workers - 1) / workers
	// Rounding per up can leave fewer ranges than workers (51 of 49 for
	// 2,449 headers would start the last past the end).
	workers = (len(hs) + per - 1) / per
	type result struct {
		passed int  // headers at the start of the range that passed precheck
		ok     bool // their signatures verified
	}
	res := make([]result, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*per, min(len(hs), (w+1)*per)
		prev, prevHash := c.trusted, c.trustedHash
		if lo > 0 {
			// Linkage to hs[lo-1] is checked here; hs[lo-1] itself by the
			// range before (a range counts only if all before it passed).
			// It may be incomplete (the range before refuses it): a
			// SignedHeader decoded without its header has a nil Header.
			prev = hs[lo-1].Header
			if prev == nil || prev.Header == nil || prev.Commit == nil {
				res[w] = result{}
				continue
			}
			prevHash = prev.Commit.BlockID.Hash
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cache valsHashCache
			passed, sigs := precheck(prev, prevHash, hs[lo:hi], &cache)
			res[w] = result{passed: passed, ok: verifySigs(sigs)}
		}()
	}
	wg.Wait()
	for w, r := range res {
		lo, hi := w*per, min(len(hs), (w+1)*per)
		switch {
		case !r.ok:
			return accepted, hi - lo
		case r.passed < hi-lo:
			return accepted + r.passed, 1
		}
		accepted += hi - lo
	}
	return accepted, 0
}

// sig is one signature a commit's verification needs.
type sig struct {
	key      cmted25519.PubKey
	msg, sig []byte
}

// precheck runs every check of Verify except the signatures' cryptography
// on hs in order, on top of prev (whose header hash is prevHash), and
// returns how many passed and the signatures they need (for each header,
// those VerifyCommitLight would verify: the commit votes for the block, in
// order, until more than 2/3 of the voting power).
func precheck(prev *cmttypes.SignedHeader, prevHash []byte, hs []Signed, cache *valsHashCache) (int, []sig) {
	var sigs []sig
	for k, h := range hs {
		s, err := precheckOne(prev, prevHash, h.Header, h.Validators, cache)
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
func precheckOne(prev *cmttypes.SignedHeader, prevHash []byte, sh *cmttypes.SignedHeader, vals *cmttypes.ValidatorSet, cache *valsHashCache) ([]sig, error) {
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
	if !bytes.Equal(sh.ValidatorsHash, cache.hash(vals)) {
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

// valsHashCache remembers the hash of the last validator set it hashed.
type valsHashCache struct {
	vals *cmttypes.ValidatorSet
	sum  []byte
}

// hash returns vals.Hash(), reusing the last one computed when vals has
// the same validators (public keys and voting powers, in order: all the
// hash covers) as the set it was computed for.
func (c *valsHashCache) hash(vals *cmttypes.ValidatorSet) []byte {
	if c.vals != nil && sameValidators(c.vals, vals) {
		return c.sum
	}
	c.vals, c.sum = vals, vals.Hash()
	return c.sum
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

// verifySigs batch-verifies sigs and reports whether every one is valid.
func verifySigs(sigs []sig) bool {
	return verifyPart(sigs)
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
