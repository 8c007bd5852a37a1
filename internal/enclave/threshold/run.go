package threshold

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/group/edwards25519"
	"go.dedis.ch/kyber/v3/proof/dleq"
	"go.dedis.ch/kyber/v3/share"
	dkg "go.dedis.ch/kyber/v3/share/dkg/pedersen"
	vss "go.dedis.ch/kyber/v3/share/vss/pedersen"
	"go.dedis.ch/kyber/v3/sign/schnorr"
	"go.dedis.ch/kyber/v3/xof/blake2xb"
)

// One gatekeeper member's side of an era's Pedersen DKG (docs/keys.md,
// "Rotation per era", "As built: the DKG run"): a deterministic state
// machine over kyber's DistKeyGenerator, fed the DKG messages of the
// chain's queue in the queue's order. Every random choice kyber makes
// (the secret, the polynomial, the deals' ephemeral keys, Schnorr and
// DLEQ nonces) comes from a stream derived from the member's sealed seed
// and the operation's input, so a Run rebuilt from (seed, members, t) and
// fed the same calls in the same order is byte-for-byte the same Run.
//
// Replay: NewRun, then Deals() if it was called, then every OnDeals,
// OnResponse, OnJustification and Timeout call in the order first made
// (calls that failed may be replayed or skipped: a failed call changes
// nothing, randomness included).

// Errors callers branch on.
var (
	ErrBadRun         = errors.New("invalid DKG run parameters")
	ErrNotMember      = errors.New("not a member of the DKG")
	ErrReplay         = errors.New("DKG message already processed")
	ErrUnknownDealer  = errors.New("DKG message about a dealer whose deals were not processed")
	ErrDisqualified   = errors.New("DKG dealer disqualified")
	ErrFalseComplaint = errors.New("DKG complaint about a deal that opens and verifies")
	ErrClosed         = errors.New("DKG phase closed by the timeout")
	ErrNotCertified   = errors.New("DKG not certified")
)

var (
	errNotOurs      = errors.New("a message in our name that is not the one we made")
	minusOne        = Suite.Scalar().SetInt64(-1)
	dkgKeyDomain    = []byte("phala/dkg-key v1")
	dkgRandomDomain = []byte("phala/dkg-random v1")
)

// DKGKey is the member's long-term DKG key pair for the era whose sealed
// seed is seed: secret = Pick(BLAKE2Xb("phala/dkg-key v1" ‖ seed)),
// public = secret·G. The public key is what the member announces
// (DkgKey) and what NewRun's member list holds. The seed must be fresh
// per era (sealed with the era's DKG state): it is the era's DKG key and
// the source of all the run's randomness.
func DKGKey(seed [32]byte) (kyber.Scalar, kyber.Point) {
	x := Suite.Scalar().Pick(blake2xb.New(append(append([]byte{}, dkgKeyDomain...), seed[:]...)))
	return x, Suite.Point().Mul(x, nil)
}

// opStream is the suite's RandomStream: BLAKE2Xb (kyber's xof/blake2xb)
// keyed, before each operation, by SHA-256("phala/dkg-random v1" ‖ seed ‖
// label ‖ from ‖ SHA-256(input)). Randomness therefore depends on the
// seed and the operation's input only, not on what failed before.
type opStream struct {
	seed [32]byte
	x    kyber.XOF
}

func (s *opStream) XORKeyStream(dst, src []byte) { s.x.XORKeyStream(dst, src) }

// Read lets the stream be kyber's Config.Reader (the DKG's secret).
func (s *opStream) Read(p []byte) (int, error) { return s.x.Read(p) }

func (s *opStream) rekey(label string, from int, input []byte) {
	in := sha256.Sum256(input)
	h := sha256.New()
	h.Write(dkgRandomDomain)
	h.Write(s.seed[:])
	h.Write([]byte(label))
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(from)))
	h.Write(in[:])
	s.x = blake2xb.New(h.Sum(nil))
}

// Run is one member's state in one DKG. Not safe for concurrent use.
type Run struct {
	members []kyber.Point
	n, t    int
	me      int
	long    kyber.Scalar
	rand    *opStream
	suite   *edwards25519.SuiteEd25519
	gen     *dkg.DistKeyGenerator

	dealsMsg  []byte            // our deals message, once made
	dealt     []bool            // deals message of member i processed
	deals     [][]*dkg.Deal     // [dealer][recipient], kept for complaints
	disq      []bool            // dealer disqualified (proven complaint, bad justification)
	ownResp   map[int][]byte    // our response message per dealer
	ownJust   map[int][]byte    // our justification per complainer
	justified map[int]*vss.Deal // our deal from a dealer, as its justification revealed it
	seenJust  map[[32]byte]bool // justifications processed
	closed    bool
}

// NewRun starts member seed's run of a DKG among members (every member's
// DKG public key, DKGKey's; member order is the share index, 0-based)
// with threshold t. Errors (ErrBadRun): the seed's key is not among
// members, a repeated or non-prime-order key, n > MaxMembers, t outside
// [2, n] (kyber's VSS refuses t = 1, so a single member cannot run one).
func NewRun(seed [32]byte, members []kyber.Point, t int) (*Run, error) {
	n := len(members)
	if n > MaxMembers {
		return nil, fmt.Errorf("%w: %d members, at most %d", ErrBadRun, n, MaxMembers)
	}
	if t < 2 || t > n {
		return nil, fmt.Errorf("%w: threshold %d of %d members (kyber needs 2 <= t <= n)", ErrBadRun, t, n)
	}
	long, pub := DKGKey(seed)
	me := -1
	for i, m := range members {
		if m == nil || !primeOrder(m) {
			return nil, fmt.Errorf("%w: member %d's key is not a prime-order point", ErrBadRun, i)
		}
		if m.Equal(pub) {
			me = i
		}
	}
	if me < 0 {
		return nil, fmt.Errorf("%w: this seed's DKG key is not a member", ErrBadRun)
	}
	r := &Run{
		members:   slices.Clone(members),
		n:         n,
		t:         t,
		me:        me,
		long:      long,
		rand:      &opStream{seed: seed},
		dealt:     make([]bool, n),
		deals:     make([][]*dkg.Deal, n),
		disq:      make([]bool, n),
		ownResp:   map[int][]byte{},
		ownJust:   map[int][]byte{},
		justified: map[int]*vss.Deal{},
		seenJust:  map[[32]byte]bool{},
	}
	r.suite = edwards25519.NewBlakeSHA256Ed25519WithRand(r.rand)
	r.rand.rekey("init", me, nil)
	// Reader + UserReaderOnly: kyber would otherwise mix crypto/rand into
	// the secret coefficient (random.New() in NewDistKeyHandler).
	gen, err := dkg.NewDistKeyHandler(&dkg.Config{
		Suite:          r.suite,
		Longterm:       long,
		NewNodes:       r.members,
		Threshold:      t,
		Reader:         r.rand,
		UserReaderOnly: true,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRun, err)
	}
	r.gen = gen
	return r, nil
}

// Index is this member's share index.
func (r *Run) Index() int { return r.me }

// Deals returns this member's deals message: one deal for every other
// member (kyber's, encrypted to the recipient's DKG key, in EncodeDeals'
// list form). The first call makes it (and processes the member's own
// deal); later calls return the same bytes.
func (r *Run) Deals() ([]byte, error) {
	if r.dealsMsg != nil {
		return slices.Clone(r.dealsMsg), nil
	}
	if r.closed {
		return nil, ErrClosed
	}
	r.rand.rekey("deals", r.me, nil)
	deals, err := r.gen.Deals()
	if err != nil {
		return nil, fmt.Errorf("dkg deals: %w", err)
	}
	list := make([]AddressedDeal, 0, len(deals))
	byTo := make([]*dkg.Deal, r.n)
	for to := 0; to < r.n; to++ {
		if d, ok := deals[to]; ok {
			list = append(list, AddressedDeal{To: to, Deal: d})
			byTo[to] = d
		}
	}
	r.dealsMsg = EncodeDeals(list)
	r.deals[r.me] = byTo
	r.dealt[r.me] = true
	return slices.Clone(r.dealsMsg), nil
}

// OnDeals processes member from's deals message (from is the sender the
// chain authenticated). The message's form is checked the same way at
// every member (so all accept or refuse it alike): exactly one deal for
// every member but from, in recipient order, each with from's index and a
// GCM nonce. Then the deal addressed to this member is processed; the
// returned response message (for OnResponse, to broadcast) is kyber's
// approval or complaint, or, when the deal is not usable (a signature of
// from's does not verify, the ephemeral key is not of prime order, or the
// cipher does not decrypt and decode to our share: cases where kyber only
// returns an error, and this member's view of QUAL would silently differ
// from the others'), a complaint with proof (see OnResponse). Our own
// deals message coming back gives (nil, nil). Errors: ErrNotMember,
// ErrReplay, ErrClosed, ErrBadDKGMessage; the Run is then unchanged.
func (r *Run) OnDeals(from int, msg []byte) ([]byte, error) {
	if r.closed {
		return nil, ErrClosed
	}
	if from < 0 || from >= r.n {
		return nil, fmt.Errorf("%w: deals from member %d of %d", ErrNotMember, from, r.n)
	}
	if from == r.me {
		if r.dealsMsg != nil && bytes.Equal(msg, r.dealsMsg) {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: deals: %v", ErrBadDKGMessage, errNotOurs)
	}
	if r.dealt[from] {
		return nil, fmt.Errorf("%w: deals of member %d", ErrReplay, from)
	}
	list, err := DecodeDeals(msg)
	if err != nil {
		return nil, err
	}
	byTo, err := r.checkDeals(from, list)
	if err != nil {
		return nil, err
	}
	mine := byTo[r.me]
	dh := pointOf(mine.Deal.DHKey)
	pre := Suite.Point().Mul(r.long, dh)
	if r.entryBad(from, mine) != nil || !openable(r.members, from, r.me, pre, mine) {
		// The deal is not ours to use: complain with the DH secret and a
		// proof that it is ours, so that every member can check it.
		r.rand.rekey("complaint", from, msg)
		proof, _, _, err := dleq.NewDLEQProof(r.suite, Suite.Point().Base(), dh, r.long)
		if err != nil {
			return nil, fmt.Errorf("dkg complaint: %w", err)
		}
		c := &Complaint{Dealer: from, Complainer: r.me, Pre: pre, Proof: proof}
		out, err := EncodeComplaintMessage(c)
		if err != nil {
			return nil, err
		}
		r.applyComplaint(c)
		r.dealt[from], r.deals[from], r.ownResp[from] = true, byTo, out
		return slices.Clone(out), nil
	}
	r.rand.rekey("deal", from, msg)
	resp, err := r.gen.ProcessDeal(mine)
	if err != nil {
		return nil, fmt.Errorf("%w: deal of member %d: %v", ErrBadDKGMessage, from, err)
	}
	out := EncodeResponseMessage(resp)
	r.dealt[from], r.deals[from], r.ownResp[from] = true, byTo, out
	return slices.Clone(out), nil
}

// checkDeals is OnDeals' check of the message's form (the same at every
// member, cheap); it returns the deals by recipient. What only the
// recipient can check (signatures, ephemeral key, opening) it checks on
// its own deal, and proves to the others when it complains.
func (r *Run) checkDeals(from int, list []AddressedDeal) ([]*dkg.Deal, error) {
	if len(list) != r.n-1 {
		return nil, fmt.Errorf("%w: %d deals from member %d, want %d", ErrBadDKGMessage, len(list), from, r.n-1)
	}
	byTo := make([]*dkg.Deal, r.n)
	want := 0
	for _, d := range list {
		if want == from {
			want++
		}
		if d.To != want {
			return nil, fmt.Errorf("%w: deals of member %d: a deal to %d where one to %d is due", ErrBadDKGMessage, from, d.To, want)
		}
		want++
		if int(d.Deal.Index) != from {
			return nil, fmt.Errorf("%w: member %d sent a deal of dealer %d", ErrBadDKGMessage, from, d.Deal.Index)
		}
		if len(d.Deal.Deal.Nonce) != gcmNonceSize {
			return nil, fmt.Errorf("%w: deal of member %d to %d: a nonce of %d bytes", ErrBadDKGMessage, from, d.To, len(d.Deal.Deal.Nonce))
		}
		byTo[d.To] = d.Deal
	}
	return byTo, nil
}

// entryBad checks, publicly, what makes a dealer's deal unusable before
// opening it: its two signatures (kyber's) and a prime-order ephemeral
// key.
func (r *Run) entryBad(dealer int, d *dkg.Deal) error {
	signed, _ := d.MarshalBinary()
	if err := schnorr.Verify(Suite, r.members[dealer], signed, d.Signature); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	if err := schnorr.Verify(Suite, r.members[dealer], d.Deal.DHKey, d.Deal.Signature); err != nil {
		return fmt.Errorf("ephemeral key signature: %w", err)
	}
	if !primeOrder(pointOf(d.Deal.DHKey)) {
		return errors.New("ephemeral key not of prime order")
	}
	return nil
}

// openable reports whether the deal opens with pre to its recipient's
// share.
func openable(members []kyber.Point, dealer, to int, pre kyber.Point, d *dkg.Deal) bool {
	_, err := openDeal(members, dealer, to, pre, d.Deal)
	return err == nil
}

// OnResponse processes a response message (what OnDeals returned, from
// any member, in queue order; every member processes every one). Two
// kinds: kyber's signed approval or complaint about dealer D's deal to
// verifier V; and a complaint with proof (a deal V cannot use), which
// every member checks (the DLEQ proof that Pre = x_V·DHKey, then the
// deal's signatures and ephemeral key, then opening it with Pre) and
// which, when it holds, disqualifies D.
// When the message is a kyber complaint about our own deal, the returned
// justification (for OnJustification, to broadcast) reveals that deal.
// Our own response coming back gives (nil, nil). Errors: ErrNotMember,
// ErrUnknownDealer (D's deals not processed), ErrDisqualified, ErrReplay,
// ErrFalseComplaint, ErrClosed, ErrBadDKGMessage (malformed, bad
// signature or session); the Run is then unchanged.
func (r *Run) OnResponse(msg []byte) ([]byte, error) {
	if r.closed {
		return nil, ErrClosed
	}
	resp, c, err := DecodeResponseMessage(msg)
	if err != nil {
		return nil, err
	}
	dealer, verifier := 0, 0
	if resp != nil {
		dealer, verifier = int(resp.Index), int(resp.Response.Index)
	} else {
		dealer, verifier = c.Dealer, c.Complainer
	}
	if dealer >= r.n || verifier >= r.n {
		return nil, fmt.Errorf("%w: response of member %d on dealer %d, of %d members", ErrNotMember, verifier, dealer, r.n)
	}
	if verifier == r.me {
		if own, ok := r.ownResp[dealer]; ok && bytes.Equal(own, msg) {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: response: %v", ErrBadDKGMessage, errNotOurs)
	}
	if verifier == dealer {
		return nil, fmt.Errorf("%w: member %d responded to its own deal", ErrBadDKGMessage, dealer)
	}
	if !r.dealt[dealer] {
		return nil, fmt.Errorf("%w: %d", ErrUnknownDealer, dealer)
	}
	if r.disq[dealer] {
		return nil, fmt.Errorf("%w: %d", ErrDisqualified, dealer)
	}
	if _, done := r.gen.Verifiers()[uint32(dealer)].Responses()[uint32(verifier)]; done {
		return nil, fmt.Errorf("%w: response of member %d on dealer %d", ErrReplay, verifier, dealer)
	}
	if c != nil {
		if err := r.checkComplaint(c); err != nil {
			return nil, err
		}
		r.applyComplaint(c)
		return nil, nil
	}
	r.rand.rekey("response", dealer, msg)
	j, err := r.gen.ProcessResponse(resp)
	if err != nil {
		return nil, fmt.Errorf("%w: response of member %d on dealer %d: %v", ErrBadDKGMessage, verifier, dealer, err)
	}
	if j == nil {
		return nil, nil
	}
	out, err := EncodeJustification(j)
	if err != nil {
		return nil, err
	}
	r.ownJust[verifier] = out
	r.seenJust[sha256.Sum256(out)] = true
	return slices.Clone(out), nil
}

// checkComplaint verifies a complaint with proof: Pre is the complainer's
// DH secret with the deal's ephemeral key (DLEQ against its DKG key) and
// the deal does not open with it; or the deal is publicly bad (entryBad),
// whoever says so.
func (r *Run) checkComplaint(c *Complaint) error {
	d := r.deals[c.Dealer][c.Complainer]
	if r.entryBad(c.Dealer, d) != nil {
		// Publicly bad (and a DLEQ proof on a base with a torsion part
		// would not verify): the proof is not needed.
		return nil
	}
	if err := verifyDLEQ(Suite.Point().Base(), pointOf(d.Deal.DHKey), r.members[c.Complainer], c.Pre, c.Proof); err != nil {
		return fmt.Errorf("%w: complaint of member %d: %v", ErrBadDKGMessage, c.Complainer, err)
	}
	if !primeOrder(c.Pre) {
		return fmt.Errorf("%w: complaint: DH secret not of prime order", ErrBadDKGMessage)
	}
	if openable(r.members, c.Dealer, c.Complainer, c.Pre, d) {
		return fmt.Errorf("%w: member %d about dealer %d", ErrFalseComplaint, c.Complainer, c.Dealer)
	}
	return nil
}

// applyComplaint records a proven complaint: the complainer's response on
// the dealer's deal is a complaint no justification can answer.
func (r *Run) applyComplaint(c *Complaint) {
	v := r.gen.Verifiers()[uint32(c.Dealer)]
	v.UnsafeSetResponseDKG(uint32(c.Complainer), vss.StatusComplaint)
	r.disq[c.Dealer] = true
}

// OnJustification processes a justification (a dealer's answer to a
// complaint, revealing the deal in clear; every member processes every
// one). It must be signed by the dealer (kyber does not check that) and
// reveal the complainer's own share (kyber does not check that either). A
// validly signed justification whose deal does not verify disqualifies
// the dealer (kyber's rule) and is not an error. Our own coming back is a
// no-op. Errors: ErrNotMember, ErrUnknownDealer, ErrDisqualified,
// ErrReplay, ErrClosed, ErrBadDKGMessage (malformed, bad signature, no
// complaint to answer); the Run is then unchanged.
func (r *Run) OnJustification(msg []byte) error {
	if r.closed {
		return ErrClosed
	}
	j, err := DecodeJustification(msg)
	if err != nil {
		return err
	}
	dealer, complainer := int(j.Index), int(j.Justification.Index)
	if dealer >= r.n || complainer >= r.n {
		return fmt.Errorf("%w: justification of dealer %d for member %d, of %d members", ErrNotMember, dealer, complainer, r.n)
	}
	if dealer == r.me {
		if own, ok := r.ownJust[complainer]; ok && bytes.Equal(own, msg) {
			return nil
		}
		return fmt.Errorf("%w: justification: %v", ErrBadDKGMessage, errNotOurs)
	}
	if !r.dealt[dealer] {
		return fmt.Errorf("%w: %d", ErrUnknownDealer, dealer)
	}
	if r.disq[dealer] {
		return fmt.Errorf("%w: %d", ErrDisqualified, dealer)
	}
	if r.seenJust[sha256.Sum256(msg)] {
		return fmt.Errorf("%w: justification of dealer %d for member %d", ErrReplay, dealer, complainer)
	}
	v := j.Justification
	if v.Deal.SecShare.I != complainer {
		return fmt.Errorf("%w: justification for member %d reveals member %d's share", ErrBadDKGMessage, complainer, v.Deal.SecShare.I)
	}
	if err := schnorr.Verify(Suite, r.members[dealer], v.Hash(Suite), v.Signature); err != nil {
		return fmt.Errorf("%w: justification of dealer %d: signature: %v", ErrBadDKGMessage, dealer, err)
	}
	ver := r.gen.Verifiers()[uint32(dealer)]
	if got, ok := ver.Responses()[uint32(complainer)]; !ok || got.Status != vss.StatusComplaint {
		return fmt.Errorf("%w: justification of dealer %d for member %d, who did not complain", ErrBadDKGMessage, dealer, complainer)
	}
	if !bytes.Equal(v.SessionID, ver.SessionID()) || !bytes.Equal(v.Deal.SessionID, ver.SessionID()) {
		return fmt.Errorf("%w: justification of dealer %d: another session", ErrBadDKGMessage, dealer)
	}
	r.seenJust[sha256.Sum256(msg)] = true
	if err := r.gen.ProcessJustification(j); err != nil {
		// Signed by the dealer and checked: a deal that does not verify.
		r.disq[dealer] = true
		return nil
	}
	if complainer == r.me {
		r.justified[dealer] = v.Deal
	}
	return nil
}

// Timeout closes the phase (the chain's deadline, counted in blocks,
// passed): kyber's SetTimeout (a deal missing at most n-t responses can
// still be certified); every later On* call fails with ErrClosed.
func (r *Run) Timeout() {
	if r.closed {
		return
	}
	r.closed = true
	r.gen.SetTimeout()
}

// Certified reports whether the run has its result: before the timeout,
// every member's deal is certified (all responses in, no open
// complaint); after it, at least t deals are (kyber's
// ThresholdCertified).
func (r *Run) Certified() bool {
	if r.closed {
		return r.gen.ThresholdCertified()
	}
	return r.gen.Certified()
}

// QUAL is the qualified dealers' indices, ascending: the deals certified
// so far (final once Certified).
func (r *Run) QUAL() []int {
	q := slices.Clone(r.gen.QUAL())
	slices.Sort(q)
	return q
}

// Disqualified is the dealers disqualified by a proven complaint or a bad
// justification, ascending (for the chain's slashing).
func (r *Run) Disqualified() []int {
	var out []int
	for i, d := range r.disq {
		if d {
			out = append(out, i)
		}
	}
	return out
}

// Result is this member's share: the sum of the QUAL dealers' shares to
// it (a justified share where a justification revealed it) and the sum of
// their public polynomials. Errors: ErrNotCertified.
func (r *Run) Result() (*Share, error) {
	if !r.Certified() {
		return nil, ErrNotCertified
	}
	qual := r.QUAL()
	v := Suite.Scalar().Zero()
	var pub *share.PubPoly
	for _, i := range qual {
		d := r.justified[i]
		if d == nil {
			d = r.gen.Verifiers()[uint32(i)].Deal()
		}
		if d == nil {
			return nil, fmt.Errorf("%w: no deal of qualified dealer %d", ErrNotCertified, i)
		}
		v.Add(v, d.SecShare.V)
		p := share.NewPubPoly(Suite, Suite.Point().Base(), d.Commitments)
		if pub == nil {
			pub = p
			continue
		}
		var err error
		if pub, err = pub.Add(p); err != nil {
			return nil, fmt.Errorf("dkg result: %w", err)
		}
	}
	_, commits := pub.Info()
	s := &Share{Index: r.me, T: r.t, N: r.n, V: v, Commits: commits}
	if !s.Commitment(r.me).Equal(Suite.Point().Mul(v, nil)) {
		return nil, fmt.Errorf("dkg result: the share does not match the public polynomial")
	}
	return s, nil
}

// Share is a member's share of an era's MasterKey with the public
// polynomial's commitments (Commits[0] is the MasterKey's public key, T
// commitments). The era is the caller's.
type Share struct {
	Index   int // share index (0-based, as kyber's)
	T, N    int
	V       kyber.Scalar
	Commits []kyber.Point
}

// PriShare is the share in kyber's form (for Evaluate).
func (s *Share) PriShare() *share.PriShare { return &share.PriShare{I: s.Index, V: s.V} }

// Public is the MasterKey's public key (Commits[0]).
func (s *Share) Public() kyber.Point { return s.Commits[0] }

// Commitment is member i's public commitment X_i (MemberCommitment).
func (s *Share) Commitment(i int) kyber.Point { return MemberCommitment(s.Commits, i) }

// primeOrder reports whether p is in the prime-order subgroup:
// (l-1)·p = -p exactly when l·p is the identity.
func primeOrder(p kyber.Point) bool {
	return Suite.Point().Mul(minusOne, p).Equal(Suite.Point().Neg(p))
}

// mustPoint decodes a point already checked by DecodeDeal.
func pointOf(b []byte) kyber.Point {
	p := Suite.Point()
	if err := p.UnmarshalBinary(b); err != nil {
		return Suite.Point().Null()
	}
	return p
}

// verifyDLEQ checks a DLEQ proof that log_g(xg) = log_h(xh), recomputing
// the Fiat-Shamir challenge (kyber's Proof.Verify takes it from the
// proof).
func verifyDLEQ(g, h, xg, xh kyber.Point, p *dleq.Proof) error {
	if p == nil || p.C == nil || p.R == nil || p.VG == nil || p.VH == nil {
		return errors.New("incomplete proof")
	}
	hs := Suite.Hash()
	xg.MarshalTo(hs)
	xh.MarshalTo(hs)
	p.VG.MarshalTo(hs)
	p.VH.MarshalTo(hs)
	if c := Suite.Scalar().Pick(Suite.XOF(hs.Sum(nil))); !c.Equal(p.C) {
		return errors.New("the proof's challenge is not its transcript's")
	}
	return p.Verify(Suite, g, h, xg, xh)
}
