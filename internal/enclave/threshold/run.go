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
	ErrBadRun        = errors.New("invalid DKG run parameters")
	ErrNotMember     = errors.New("not a member of the DKG")
	ErrReplay        = errors.New("DKG message already processed")
	ErrUnknownDealer = errors.New("DKG message about a dealer whose deals were not processed")
	ErrDisqualified  = errors.New("DKG dealer disqualified")
	ErrClosed        = errors.New("DKG phase closed by the timeout")
	ErrNotCertified  = errors.New("DKG not certified")
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
	deals     [][]*dkg.Deal     // [dealer][recipient]
	commits   [][]kyber.Point   // [dealer] its public commitments
	sids      [][]byte          // [dealer] its kyber session ID (from commits)
	disq      []bool            // dealer disqualified (a justification that does not verify)
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
		commits:   make([][]kyber.Point, n),
		sids:      make([][]byte, n),
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

// Deals returns this member's deals message (EncodeDeals): its public
// commitments and one deal for every other member (kyber's, encrypted to
// the recipient's DKG key). The first call makes it (and processes the
// member's own deal); later calls return the same bytes.
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
	own := r.gen.Verifiers()[uint32(r.me)]
	commits := slices.Clone(own.Commits())
	r.dealsMsg = EncodeDeals(&DealsMessage{Commits: commits, Deals: list})
	r.deals[r.me], r.commits[r.me], r.sids[r.me] = byTo, commits, own.SessionID()
	r.dealt[r.me] = true
	return slices.Clone(r.dealsMsg), nil
}

// OnDeals processes member from's deals message (from is the sender the
// chain authenticated). The message's form is checked the same way at
// every member (so all accept or refuse it alike): exactly t prime-order
// commitments, exactly one deal for every member but from, in recipient
// order, each with from's index and a GCM nonce. Then the deal addressed
// to this member is processed; the returned response message (for
// OnResponse, to broadcast) is kyber's approval or complaint. A deal this
// member cannot use (a signature of from's does not verify, the
// ephemeral key is not of prime order, the cipher does not open with our
// DH secret, or what it holds is not our share of the announced
// commitments: cases where kyber only returns an error) gets a plain
// kyber complaint too: signed with our DKG key, under the session ID of
// the announced commitments, revealing nothing (the DH secret stays
// ours). The dealer must answer it with a justification revealing our
// deal in clear, or it is left out of QUAL at the timeout. Our own deals
// message coming back gives (nil, nil). Errors: ErrNotMember, ErrReplay,
// ErrClosed, ErrBadDKGMessage; the Run is then unchanged.
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
	dm, err := DecodeDeals(msg)
	if err != nil {
		return nil, err
	}
	byTo, err := r.checkDeals(from, dm)
	if err != nil {
		return nil, err
	}
	sid := sessionID(r.members, from, dm.Commits, r.t)
	mine := byTo[r.me]
	if r.unusable(from, sid, dm.Commits, mine) != nil {
		r.rand.rekey("complaint", from, msg)
		resp := &vss.Response{SessionID: sid, Index: uint32(r.me), Status: vss.StatusComplaint}
		sig, err := schnorr.Sign(r.suite, r.long, resp.Hash(Suite))
		if err != nil {
			return nil, fmt.Errorf("dkg complaint: %w", err)
		}
		resp.Signature = sig
		ver := r.gen.Verifiers()[uint32(from)]
		// What kyber's ProcessDeal records: the dealer's approval of its
		// own deal, and our complaint.
		ver.UnsafeSetResponseDKG(uint32(from), vss.StatusApproval)
		if err := ver.Aggregator.ProcessResponse(resp); err != nil {
			return nil, fmt.Errorf("dkg complaint: %w", err)
		}
		out := EncodeResponseMessage(&dkg.Response{Index: uint32(from), Response: resp})
		r.record(from, byTo, dm.Commits, sid, out)
		return slices.Clone(out), nil
	}
	r.rand.rekey("deal", from, msg)
	resp, err := r.gen.ProcessDeal(mine)
	if err != nil {
		return nil, fmt.Errorf("%w: deal of member %d: %v", ErrBadDKGMessage, from, err)
	}
	out := EncodeResponseMessage(resp)
	r.record(from, byTo, dm.Commits, sid, out)
	return slices.Clone(out), nil
}

func (r *Run) record(from int, byTo []*dkg.Deal, commits []kyber.Point, sid, resp []byte) {
	r.dealt[from], r.deals[from], r.commits[from], r.sids[from], r.ownResp[from] = true, byTo, commits, sid, resp
}

// checkDeals is OnDeals' check of the message's form (the same at every
// member, cheap); it returns the deals by recipient. What only the
// recipient can check (signatures, ephemeral key, opening) it checks on
// its own deal, and complains about in kyber's form.
func (r *Run) checkDeals(from int, dm *DealsMessage) ([]*dkg.Deal, error) {
	if len(dm.Commits) != r.t {
		return nil, fmt.Errorf("%w: %d commitments from member %d, want %d", ErrBadDKGMessage, len(dm.Commits), from, r.t)
	}
	for k, c := range dm.Commits {
		if !primeOrder(c) {
			return nil, fmt.Errorf("%w: member %d's commitment %d is not of prime order", ErrBadDKGMessage, from, k)
		}
	}
	list := dm.Deals
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

// unusable reports why dealer's deal to this member cannot be processed
// by kyber as our share of the announced commitments: a bad signature or
// ephemeral key, a cipher that does not open with our DH secret (which
// never leaves the Run), or a deal whose session, threshold, commitments
// or share index are not the announced ones.
func (r *Run) unusable(dealer int, sid []byte, commits []kyber.Point, d *dkg.Deal) error {
	if err := r.entryBad(dealer, d); err != nil {
		return err
	}
	pre := Suite.Point().Mul(r.long, pointOf(d.Deal.DHKey))
	plain, err := openDeal(r.members, dealer, r.me, pre, d.Deal)
	if err != nil {
		return err
	}
	return dealMatches(plain, sid, commits, r.t)
}

// dealMatches checks that a plaintext deal is of the announced session,
// threshold and commitments.
func dealMatches(d *vss.Deal, sid []byte, commits []kyber.Point, t int) error {
	if !bytes.Equal(d.SessionID, sid) || int(d.T) != t || len(d.Commitments) != len(commits) {
		return errors.New("the deal is not of the announced commitments")
	}
	for k, c := range d.Commitments {
		if !c.Equal(commits[k]) {
			return errors.New("the deal is not of the announced commitments")
		}
	}
	return nil
}

// sessionID is kyber's VSS session ID of dealer's deals with commitments
// (vss/pedersen's sessionID: the suite's hash of the dealer's key, the
// verifiers' keys, the commitments and t as a little-endian uint32).
func sessionID(members []kyber.Point, dealer int, commits []kyber.Point, t int) []byte {
	h := Suite.Hash()
	members[dealer].MarshalTo(h)
	for _, m := range members {
		m.MarshalTo(h)
	}
	for _, c := range commits {
		c.MarshalTo(h)
	}
	h.Write(binary.LittleEndian.AppendUint32(nil, uint32(t)))
	return h.Sum(nil)
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

// OnResponse processes a response message (what OnDeals returned, from
// any member, in queue order; every member processes every one): kyber's
// signed approval or complaint about dealer D's deal by verifier V, under
// D's session ID (the one its announced commitments give, checked here
// alike at every member). A member that complained about D's deal itself
// (and so holds no deal of D's yet) records it in D's aggregator all the
// same, so that every member's view of D's responses is the same.
// When the message is a complaint about our own deal, the returned
// justification (for OnJustification, to broadcast) reveals that deal.
// Our own response coming back gives (nil, nil). Errors: ErrNotMember,
// ErrUnknownDealer (D's deals not processed), ErrDisqualified, ErrReplay,
// ErrClosed, ErrBadDKGMessage (malformed, bad signature or session); the
// Run is then unchanged.
func (r *Run) OnResponse(msg []byte) ([]byte, error) {
	if r.closed {
		return nil, ErrClosed
	}
	resp, err := DecodeResponseMessage(msg)
	if err != nil {
		return nil, err
	}
	dealer, verifier := int(resp.Index), int(resp.Response.Index)
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
	ver := r.gen.Verifiers()[uint32(dealer)]
	if _, done := ver.Responses()[uint32(verifier)]; done {
		return nil, fmt.Errorf("%w: response of member %d on dealer %d", ErrReplay, verifier, dealer)
	}
	if !bytes.Equal(resp.Response.SessionID, r.sids[dealer]) {
		return nil, fmt.Errorf("%w: response of member %d on dealer %d: another session", ErrBadDKGMessage, verifier, dealer)
	}
	if ver.SessionID() == nil {
		// We complained about this deal and hold none of it yet.
		if err := ver.Aggregator.ProcessResponse(resp.Response); err != nil {
			return nil, fmt.Errorf("%w: response of member %d on dealer %d: %v", ErrBadDKGMessage, verifier, dealer, err)
		}
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

// OnJustification processes a justification (a dealer's answer to a
// complaint, revealing the deal in clear; every member processes every
// one). It must be signed by the dealer (kyber does not check that),
// reveal the complainer's own share (nor that) and be a deal of the
// dealer's announced session, threshold and commitments (kyber checks
// the session ID only). The complainer takes its share from it. A
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
	if !bytes.Equal(v.SessionID, r.sids[dealer]) {
		return fmt.Errorf("%w: justification of dealer %d: another session", ErrBadDKGMessage, dealer)
	}
	if err := dealMatches(v.Deal, r.sids[dealer], r.commits[dealer], r.t); err != nil {
		return fmt.Errorf("%w: justification of dealer %d: %v", ErrBadDKGMessage, dealer, err)
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

// Disqualified is the dealers that dealt and are disqualified,
// ascending: a justification whose deal does not verify, or, once the
// timeout closed the phase, a complaint left unanswered.
func (r *Run) Disqualified() []int {
	var out []int
	for i, d := range r.disq {
		if d || (r.closed && r.dealt[i] && r.openComplaint(i)) {
			out = append(out, i)
		}
	}
	return out
}

// openComplaint reports whether dealer's deal has a complaint no valid
// justification answered.
func (r *Run) openComplaint(dealer int) bool {
	for _, resp := range r.gen.Verifiers()[uint32(dealer)].Responses() {
		if resp.Status == vss.StatusComplaint {
			return true
		}
	}
	return false
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
