package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cometbft/cometbft/light"
	cmttypes "github.com/cometbft/cometbft/types"
)

// Trust: what the client believes before it has verified anything (the
// trust root), and the verification of every header it uses from there
// with CometBFT's light-client verifier (light.VerifyAdjacent and
// light.VerifyNonAdjacent with trust level 1/3, bisecting when the
// validator set changed too much, as CometBFT's light.Client does). The
// node supplies headers and validator sets; it never chooses what is
// trusted. light.Client itself is not used: it requires witness nodes and
// cannot start from a genesis validator set.

// Errors of header verification.
var (
	// ErrNoTrustRoot: the client was dialed without Options.Genesis or
	// Options.Trust, so it cannot verify proved reads.
	ErrNoTrustRoot = errors.New("no trust root: give the chain's genesis or a trusted header (height and hash) to verify proved reads")
	// ErrUntrustedHeader: a header (or validator set) the node sent does
	// not verify from the trust root.
	ErrUntrustedHeader = errors.New("header does not verify from the trust root")
	// ErrTrustExpired: the newest trusted header is older than the
	// trusting period; trust must be renewed out of band.
	ErrTrustExpired = errors.New("trusted header is older than the trusting period")
)

// Defaults of Options.
const (
	// DefaultTrustingPeriod is how long a verified header is trusted to
	// verify newer ones (CometBFT's light client default is 2 weeks;
	// the chain has no unbonding, so it bounds how long retired validator
	// keys could forge a history).
	DefaultTrustingPeriod = 14 * 24 * time.Hour
	// DefaultMaxClockDrift is how far in the future of the client's clock
	// a header's time may be.
	DefaultMaxClockDrift = 10 * time.Second
)

const (
	maxBackwards  = 1000 // headers walked back from a trusted one by hash linkage
	maxBisections = 64   // pivots fetched to verify one header
	cachedHeaders = 64   // verified headers kept in memory
	maxValidators = 10_000
)

// TrustHeader is a header the user trusts, learned out of band (from a
// block explorer, another node, a colleague): its height and its hash
// (the block hash, 32 bytes).
type TrustHeader struct {
	Height int64
	Hash   []byte
}

// ParseTrustHash parses a header hash given in hex (64 digits, optional
// 0x prefix).
func ParseTrustHash(s string) ([]byte, error) {
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		s = s[2:]
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("header hash %q: want %d hex digits", s, 2*sha256.Size)
	}
	return b, nil
}

// Options of DialOptions. Exactly one trust root, Genesis or Trust, makes
// the client verify proved reads; with neither, proved reads fail with
// ErrNoTrustRoot (transactions and unproved reads still work).
type Options struct {
	// ChainID, if set, refuses a node of another chain (the trust root's
	// chain id is always enforced).
	ChainID string
	// Genesis: trust the chain's genesis validators; the first header
	// (InitialHeight) must be signed by them, and everything else follows
	// from it. Only valid while the first header is within TrustingPeriod.
	Genesis *cmttypes.GenesisDoc
	// Trust: trust this header; its height must be one the node still has.
	Trust *TrustHeader
	// Store, if set, keeps the newest verified header across clients (the
	// CLI's data directory), so a new client resumes from it instead of
	// from the root.
	Store TrustStore
	// TrustingPeriod (default DefaultTrustingPeriod) and MaxClockDrift
	// (default DefaultMaxClockDrift) as CometBFT's light client defines
	// them; both are measured with the client's clock.
	TrustingPeriod time.Duration
	MaxClockDrift  time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// HasRoot reports whether o has a trust root.
func (o *Options) HasRoot() bool { return o != nil && (o.Genesis != nil || o.Trust != nil) }

// TrustStore keeps the newest verified header of a chain, per trust root
// (root is RootID of the options: a header verified from one root is never
// used with another).
type TrustStore interface {
	// Load returns the stored light block, or nil and no error if none.
	Load(chainID, root string) (*cmttypes.LightBlock, error)
	// Save replaces the stored light block.
	Save(chainID, root string, lb *cmttypes.LightBlock) error
}

// RootID names a trust root (hex, 64 digits): a hash of the genesis'
// chain id, initial height, time and validator set, or of the trusted
// header's height and hash.
func RootID(o *Options) (string, error) {
	h := sha256.New()
	switch {
	case o.Genesis != nil && o.Trust != nil:
		return "", errors.New("give either a genesis or a trusted header, not both")
	case o.Genesis != nil:
		g, err := genesisRoot(o.Genesis)
		if err != nil {
			return "", err
		}
		h.Write([]byte("phala/trust-root/genesis\x00" + g.chainID + "\x00"))
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(g.initialHeight)))
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(g.time.UnixNano())))
		h.Write(g.vals.Hash())
	case o.Trust != nil:
		if o.Trust.Height < 1 || len(o.Trust.Hash) != sha256.Size {
			return "", fmt.Errorf("trusted header: height %d must be positive and the hash %d bytes", o.Trust.Height, sha256.Size)
		}
		h.Write([]byte("phala/trust-root/header\x00"))
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(o.Trust.Height)))
		h.Write(o.Trust.Hash)
	default:
		return "", ErrNoTrustRoot
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

type genesis struct {
	chainID       string
	initialHeight int64
	time          time.Time
	vals          *cmttypes.ValidatorSet
}

// genesisRoot extracts the genesis validators as CometBFT validates the
// document (as pRuntime's light client does).
func genesisRoot(doc *cmttypes.GenesisDoc) (*genesis, error) {
	d := *doc
	if err := d.ValidateAndComplete(); err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	if len(d.Validators) == 0 {
		return nil, errors.New("genesis: no validators (a chain whose validators come from the application cannot be trusted from its genesis file; use a trusted header)")
	}
	vals := make([]*cmttypes.Validator, len(d.Validators))
	for i, v := range d.Validators {
		vals[i] = cmttypes.NewValidator(v.PubKey, v.Power)
	}
	return &genesis{chainID: d.ChainID, initialHeight: d.InitialHeight, time: d.GenesisTime, vals: cmttypes.NewValidatorSet(vals)}, nil
}

// lightSource gives the node's (unverified) light block of a height;
// errNotYet when the node has not committed it.
type lightSource interface {
	lightBlock(ctx context.Context, height int64) (*cmttypes.LightBlock, error)
}

var errNotYet = errors.New("height not committed yet")

// verifier keeps the newest verified header and verifies others from it.
type verifier struct {
	chainID string
	gen     *genesis
	trust   *TrustHeader
	rootID  string
	period  time.Duration
	drift   time.Duration
	now     func() time.Time
	store   TrustStore
	src     lightSource

	mu     sync.Mutex
	latest *cmttypes.LightBlock
	cache  map[int64]*cmttypes.LightBlock
}

func newVerifier(o *Options, chainID string, src lightSource) (*verifier, error) {
	id, err := RootID(o)
	if err != nil {
		return nil, err
	}
	v := &verifier{chainID: chainID, trust: o.Trust, rootID: id, period: o.TrustingPeriod, drift: o.MaxClockDrift,
		now: o.Now, store: o.Store, src: src, cache: map[int64]*cmttypes.LightBlock{}}
	if o.Genesis != nil {
		if v.gen, err = genesisRoot(o.Genesis); err != nil {
			return nil, err
		}
		if v.gen.chainID != chainID {
			return nil, fmt.Errorf("the node runs chain %q but the genesis is of chain %q", chainID, v.gen.chainID)
		}
	}
	if v.period <= 0 {
		v.period = DefaultTrustingPeriod
	}
	if v.drift <= 0 {
		v.drift = DefaultMaxClockDrift
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// newest returns the newest verified header if its height is within
// [lo, hi], else nil.
func (v *verifier) newest(lo, hi int64) *cmttypes.LightBlock {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.latest != nil && v.latest.Height >= lo && v.latest.Height <= hi {
		return v.latest
	}
	return nil
}

// verified returns the light block of height, verified from the trust
// root. With wait, it waits (until ctx ends) for the height to be
// committed.
func (v *verifier) verified(ctx context.Context, height int64, wait bool) (*cmttypes.LightBlock, error) {
	v.mu.Lock()
	lb := v.cache[height]
	v.mu.Unlock()
	if lb != nil {
		return lb, nil
	}
	var target *cmttypes.LightBlock
	if wait { // wait for the height without holding the lock
		var err error
		if target, err = v.fetch(ctx, height, true); err != nil {
			return nil, err
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.init(ctx); err != nil {
		return nil, err
	}
	if lb := v.cache[height]; lb != nil {
		return lb, nil
	}
	if target == nil {
		var err error
		if target, err = v.fetch(ctx, height, false); err != nil {
			return nil, err
		}
	}
	var err error
	if height > v.latest.Height {
		err = v.forward(ctx, target)
	} else {
		err = v.backward(ctx, target)
	}
	if err != nil {
		return nil, err
	}
	return target, nil
}

func (v *verifier) fetch(ctx context.Context, height int64, wait bool) (*cmttypes.LightBlock, error) {
	for {
		lb, err := v.src.lightBlock(ctx, height)
		if err == nil {
			if lb.Height != height {
				return nil, fmt.Errorf("%w: asked for header %d, node sent %d", ErrUntrustedHeader, height, lb.Height)
			}
			return lb, nil
		}
		if !wait || !errors.Is(err, errNotYet) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for header %d: %w", height, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// init sets the first trusted header: the stored one, else the root.
func (v *verifier) init(ctx context.Context) error {
	if v.latest != nil {
		return nil
	}
	if v.store != nil {
		lb, err := v.store.Load(v.chainID, v.rootID)
		if err != nil {
			return fmt.Errorf("load the trusted header: %w", err)
		}
		if lb != nil && !light.HeaderExpired(lb.SignedHeader, v.period, v.now()) {
			v.remember(lb)
			return nil
		}
	}
	var lb *cmttypes.LightBlock
	var err error
	if v.gen != nil {
		lb, err = v.fetch(ctx, v.gen.initialHeight, true)
		if err == nil {
			err = v.verifyFirst(lb)
		}
	} else {
		lb, err = v.fetch(ctx, v.trust.Height, false)
		if err == nil {
			err = v.verifyTrusted(lb)
		}
	}
	if err != nil {
		return err
	}
	if light.HeaderExpired(lb.SignedHeader, v.period, v.now()) {
		what := "the genesis"
		if v.gen == nil {
			what = fmt.Sprintf("the trusted header %d", lb.Height)
		}
		return fmt.Errorf("%w: %s is from %s, more than the trusting period %s ago: trust a recent header (its height and hash, from a source you trust) instead",
			ErrTrustExpired, what, lb.Time.UTC().Format(time.RFC3339), v.period)
	}
	v.remember(lb)
	v.save()
	return nil
}

// verifyFirst checks the first header against the genesis validators.
func (v *verifier) verifyFirst(lb *cmttypes.LightBlock) error {
	g := v.gen
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%w: first header %d: %s", ErrUntrustedHeader, lb.Height, fmt.Sprintf(format, a...))
	}
	if err := lb.ValidateBasic(g.chainID); err != nil {
		return fail("%v", err)
	}
	if !bytes.Equal(lb.ValidatorsHash, g.vals.Hash()) {
		return fail("not signed by the genesis validators (the node runs another chain with this chain id, or lies)")
	}
	if lb.Time.Before(g.time) {
		return fail("predates the genesis")
	}
	if err := g.vals.VerifyCommitLight(g.chainID, lb.Commit.BlockID, lb.Height, lb.Commit); err != nil {
		return fail("%v", err)
	}
	lb.ValidatorSet = g.vals
	return nil
}

// verifyTrusted checks the header of the trusted height against the
// trusted hash, and its commit (as CometBFT's light client does).
func (v *verifier) verifyTrusted(lb *cmttypes.LightBlock) error {
	if err := lb.ValidateBasic(v.chainID); err != nil {
		return fmt.Errorf("%w: trusted header %d: %v", ErrUntrustedHeader, lb.Height, err)
	}
	if !bytes.Equal(lb.Hash(), v.trust.Hash) {
		return fmt.Errorf("%w: the node's header %d has hash %X, not the trusted %X (a wrong --trust-hash, or a node on another chain)",
			ErrUntrustedHeader, lb.Height, lb.Hash(), v.trust.Hash)
	}
	if err := lb.ValidatorSet.VerifyCommitLight(v.chainID, lb.Commit.BlockID, lb.Height, lb.Commit); err != nil {
		return fmt.Errorf("%w: trusted header %d: %v", ErrUntrustedHeader, lb.Height, err)
	}
	return nil
}

// forward verifies target (above latest) by skipping verification,
// bisecting where the validator set changed by more than 2/3.
func (v *verifier) forward(ctx context.Context, target *cmttypes.LightBlock) error {
	trusted := v.latest
	pending := []*cmttypes.LightBlock{target}
	for pivots := 0; len(pending) > 0; {
		next := pending[len(pending)-1]
		err := v.step(trusted, next)
		var cant light.ErrNewValSetCantBeTrusted
		switch {
		case err == nil:
			trusted = next
			v.remember(next)
			pending = pending[:len(pending)-1]
		case errors.As(err, &cant) && next.Height > trusted.Height+1 && pivots < maxBisections:
			pivots++
			lb, ferr := v.fetch(ctx, trusted.Height+(next.Height-trusted.Height)/2, false)
			if ferr != nil {
				return fmt.Errorf("verify header %d: %w", target.Height, ferr)
			}
			pending = append(pending, lb)
		default:
			if errors.As(err, new(light.ErrOldHeaderExpired)) {
				return fmt.Errorf("%w: header %d from %s: trust a recent header (its height and hash, from a source you trust) instead",
					ErrTrustExpired, trusted.Height, trusted.Time.UTC().Format(time.RFC3339))
			}
			return fmt.Errorf("%w: header %d (from trusted header %d): %v", ErrUntrustedHeader, next.Height, trusted.Height, err)
		}
	}
	v.save()
	return nil
}

// step verifies untrusted from trusted with CometBFT's verifier; an
// adjacent header must also extend the trusted one (LastBlockID), which
// light.VerifyAdjacent does not check.
func (v *verifier) step(trusted, untrusted *cmttypes.LightBlock) error {
	if err := untrusted.ValidateBasic(v.chainID); err != nil {
		return err
	}
	now := v.now()
	if untrusted.Height == trusted.Height+1 {
		if err := light.VerifyAdjacent(trusted.SignedHeader, untrusted.SignedHeader, untrusted.ValidatorSet, v.period, now, v.drift); err != nil {
			return err
		}
		if !bytes.Equal(untrusted.LastBlockID.Hash, trusted.Hash()) {
			return fmt.Errorf("header %d does not extend the trusted header %d (last block %X, trusted %X)", untrusted.Height, trusted.Height, untrusted.LastBlockID.Hash, trusted.Hash())
		}
		return nil
	}
	return light.VerifyNonAdjacent(trusted.SignedHeader, trusted.ValidatorSet, untrusted.SignedHeader, untrusted.ValidatorSet,
		v.period, now, v.drift, light.DefaultTrustLevel)
}

// backward verifies target (below latest) by the hash chain down from the
// lowest verified header above it.
func (v *verifier) backward(ctx context.Context, target *cmttypes.LightBlock) error {
	if v.gen != nil && target.Height < v.gen.initialHeight {
		return fmt.Errorf("header %d predates the chain's first block %d", target.Height, v.gen.initialHeight)
	}
	cur := v.latest
	for h, lb := range v.cache {
		if h > target.Height && h < cur.Height {
			cur = lb
		}
	}
	if cur.Height-target.Height > maxBackwards {
		return fmt.Errorf("header %d is %d blocks below the newest trusted header %d (at most %d are verified backwards)", target.Height, cur.Height-target.Height, cur.Height, maxBackwards)
	}
	for cur.Height > target.Height+1 {
		lb, err := v.fetch(ctx, cur.Height-1, false)
		if err != nil {
			return err
		}
		if err := v.back(lb, cur); err != nil {
			return err
		}
		cur = lb
	}
	return v.back(target, cur)
}

func (v *verifier) back(lb, trusted *cmttypes.LightBlock) error {
	if err := lb.ValidateBasic(v.chainID); err != nil {
		return fmt.Errorf("%w: header %d: %v", ErrUntrustedHeader, lb.Height, err)
	}
	if err := light.VerifyBackwards(lb.Header, trusted.Header); err != nil {
		return fmt.Errorf("%w: header %d (below trusted header %d): %v", ErrUntrustedHeader, lb.Height, trusted.Height, err)
	}
	v.remember(lb)
	return nil
}

// remember caches a verified light block (and makes it latest if newest).
func (v *verifier) remember(lb *cmttypes.LightBlock) {
	if v.latest == nil || lb.Height > v.latest.Height {
		v.latest = lb
	}
	v.cache[lb.Height] = lb
	for len(v.cache) > cachedHeaders {
		low := v.latest.Height
		for h := range v.cache {
			low = min(low, h)
		}
		delete(v.cache, low)
	}
}

// save stores the newest verified header; a failure only costs
// re-verification later.
func (v *verifier) save() {
	if v.store != nil && v.latest != nil {
		_ = v.store.Save(v.chainID, v.rootID, v.latest)
	}
}
