package threshold

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"testing"

	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/share"
	dkg "go.dedis.ch/kyber/v3/share/dkg/pedersen"
	vss "go.dedis.ch/kyber/v3/share/vss/pedersen"
	"go.dedis.ch/kyber/v3/sign/schnorr"
)

// A DKG message as the chain's queue carries it.
type qmsg struct {
	kind byte // 'd' deals, 'r' response, 'j' justification
	from int
	body []byte
}

// A call made on a Run (for replay): kind 'D' Deals, 'T' Timeout, or a
// message delivered; its output and whether it failed.
type rcall struct {
	kind byte
	m    qmsg
	out  []byte
	err  error
}

// harness runs an in-process DKG: every active member's messages go
// through one FIFO queue that every active member processes in order.
type harness struct {
	seeds   [][32]byte
	members []kyber.Point
	t       int
	runs    []*Run
	active  []bool
	mutate  func(m qmsg) qmsg           // applied to a member's output before it is queued (a nil body drops it)
	before  func(i int, r *Run, m qmsg) // called before m is delivered to member i
	inject  func(m qmsg) []qmsg         // queued right after m
	logs    [][]rcall
	errs    [][]error
	queue   []qmsg // everything queued, in order
}

func testSeeds(tag string, n int) [][32]byte {
	s := make([][32]byte, n)
	for i := range s {
		s[i] = sha256.Sum256([]byte(fmt.Sprintf("%s/%d", tag, i)))
	}
	return s
}

func newHarness(tb testing.TB, tag string, n, t int) *harness {
	tb.Helper()
	h := &harness{seeds: testSeeds(tag, n), t: t, runs: make([]*Run, n), active: make([]bool, n), logs: make([][]rcall, n), errs: make([][]error, n)}
	for _, s := range h.seeds {
		_, p := DKGKey(s)
		h.members = append(h.members, p)
	}
	for i, s := range h.seeds {
		r, err := NewRun(s, h.members, t)
		if err != nil {
			tb.Fatal(err)
		}
		if r.Index() != i {
			tb.Fatalf("member %d got index %d", i, r.Index())
		}
		h.runs[i], h.active[i] = r, true
	}
	return h
}

func (h *harness) deliver(i int, m qmsg) ([]byte, error) {
	r := h.runs[i]
	switch m.kind {
	case 'd':
		return r.OnDeals(m.from, m.body)
	case 'r':
		return r.OnResponse(m.body)
	default:
		return nil, r.OnJustification(m.body)
	}
}

// run makes every active member's deals, processes the queue to the end,
// and calls Timeout on every member not certified by then.
func (h *harness) run(tb testing.TB) {
	tb.Helper()
	var q []qmsg
	push := func(m qmsg) {
		if h.mutate != nil {
			if m = h.mutate(m); m.body == nil {
				return // dropped
			}
		}
		q = append(q, m)
		h.queue = append(h.queue, m)
		if h.inject != nil {
			for _, x := range h.inject(m) {
				q = append(q, x)
				h.queue = append(h.queue, x)
			}
		}
	}
	for i, r := range h.runs {
		if !h.active[i] {
			continue
		}
		b, err := r.Deals()
		if err != nil {
			tb.Fatal(err)
		}
		h.logs[i] = append(h.logs[i], rcall{kind: 'D', out: b})
		push(qmsg{'d', i, b})
	}
	for len(q) > 0 {
		m := q[0]
		q = q[1:]
		for i := range h.runs {
			if !h.active[i] {
				continue
			}
			if h.before != nil {
				h.before(i, h.runs[i], m)
			}
			out, err := h.deliver(i, m)
			h.logs[i] = append(h.logs[i], rcall{kind: m.kind, m: m, out: out, err: err})
			if err != nil {
				h.errs[i] = append(h.errs[i], err)
				continue
			}
			if out != nil {
				kind := byte('r')
				if m.kind == 'r' {
					kind = 'j'
				}
				push(qmsg{kind, i, out})
			}
		}
	}
	for i, r := range h.runs {
		if h.active[i] && !r.Certified() {
			for k, r := range h.runs {
				if h.active[k] {
					r.Timeout()
					h.logs[k] = append(h.logs[k], rcall{kind: 'T'})
				}
			}
			return
		}
	}
}

// shares returns the listed members' results, checking that they agree
// on QUAL and the public polynomial (byte-for-byte, as the chain compares
// them).
func (h *harness) shares(tb testing.TB, who []int) ([]*Share, []int) {
	tb.Helper()
	var out []*Share
	var want []byte
	var qual []int
	for _, i := range who {
		r := h.runs[i]
		if !r.Certified() {
			tb.Fatalf("member %d not certified", i)
		}
		s, err := r.Result()
		if err != nil {
			tb.Fatalf("member %d: %v", i, err)
		}
		res, err := EncodeResult(r.QUAL(), s.Commits)
		if err != nil {
			tb.Fatal(err)
		}
		if want == nil {
			want, qual = res, r.QUAL()
		} else if !bytes.Equal(res, want) {
			tb.Fatalf("member %d's result differs", i)
		}
		out = append(out, s)
	}
	return out, qual
}

func honestExcept(n int, bad ...int) []int {
	var out []int
	for i := 0; i < n; i++ {
		if !slices.Contains(bad, i) {
			out = append(out, i)
		}
	}
	return out
}

// checkThreshold: any t verified partials of the shares give the point
// the (reassembled, tests only) secret gives; t-1 give ErrTooFew.
func checkThreshold(t *testing.T, shares []*Share, th, n int) {
	t.Helper()
	h := ContractPoint([32]byte{9}, 1, 2)
	var ps []*Partial
	var pri []*share.PriShare
	for _, s := range shares {
		p, err := Evaluate(s.PriShare(), h)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(shares[0].Commitment(s.Index), h, p); err != nil {
			t.Fatalf("member %d's partial: %v", s.Index, err)
		}
		ps, pri = append(ps, p), append(pri, s.PriShare())
	}
	x, err := share.RecoverSecret(Suite, pri[:th], th, n)
	if err != nil {
		t.Fatal(err)
	}
	if !Suite.Point().Mul(x, nil).Equal(shares[0].Public()) {
		t.Fatal("the shares do not interpolate to the public key's secret")
	}
	want := Suite.Point().Mul(x, h)
	for _, sub := range [][]*Partial{ps[:th], ps[len(ps)-th:]} {
		got, err := Combine(sub, th, n)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(want) {
			t.Fatal("t partials give another point")
		}
	}
	if _, err := Combine(ps[:th-1], th, n); !errors.Is(err, ErrTooFew) {
		t.Fatalf("t-1 partials: %v", err)
	}
}

// All honest: every member certified without a timeout, full QUAL, one
// public key, the threshold works.
func TestRunAllHonest(t *testing.T) {
	const n, th = 5, 4
	h := newHarness(t, "honest", n, th)
	h.run(t)
	for i, e := range h.errs {
		if len(e) > 0 {
			t.Fatalf("member %d: %v", i, e)
		}
	}
	for i, l := range h.logs {
		if l[len(l)-1].kind == 'T' {
			t.Fatalf("member %d needed the timeout", i)
		}
	}
	shares, qual := h.shares(t, honestExcept(n))
	if !slices.Equal(qual, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("QUAL %v", qual)
	}
	checkThreshold(t, shares, th, n)
}

// One member silent (sends nothing): not certified until the timeout;
// then the others are, with QUAL of the four, and the key works.
func TestRunSilentMember(t *testing.T) {
	const n, th = 5, 4
	h := newHarness(t, "silent", n, th)
	h.active[2] = false
	h.run(t)
	for _, i := range honestExcept(n, 2) {
		if len(h.errs[i]) > 0 {
			t.Fatalf("member %d: %v", i, h.errs[i])
		}
		if l := h.logs[i]; l[len(l)-1].kind != 'T' {
			t.Fatalf("member %d certified without the timeout", i)
		}
	}
	shares, qual := h.shares(t, honestExcept(n, 2))
	if !slices.Equal(qual, []int{0, 1, 3, 4}) {
		t.Fatalf("QUAL %v", qual)
	}
	checkThreshold(t, shares, th, n)
	if _, err := h.runs[0].OnResponse([]byte{msgResponse}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after the timeout: %v", err)
	}
}

// resign re-signs a member's deal after a change (the dealer is the
// malicious one, so its signature is valid).
func resign(tb testing.TB, seed [32]byte, d *AddressedDeal) {
	sec, _ := DKGKey(seed)
	b, _ := d.Deal.MarshalBinary()
	sig, err := schnorr.Sign(Suite, sec, b)
	if err != nil {
		tb.Fatal(err)
	}
	d.Deal.Signature = sig
}

// A dealer whose deal to one member is unusable (it does not open, a
// signature is bad, the ephemeral key has a torsion part, or it opens to
// a deal of other commitments than the announced ones): kyber would only
// return an error there; the victim posts a plain kyber complaint
// (signed, under the announced session, revealing nothing), the dealer
// justifies with the victim's deal in clear, every member checks it and
// the victim takes its share from it: everyone certifies without the
// timeout, full QUAL, a working key with the victim's share in it. When
// the dealer does not justify, the complaint stays open: at the timeout
// the dealer is out of QUAL and disqualified at every member alike.
func TestRunUnusableDeal(t *testing.T) {
	torsion := Suite.Point()
	if err := torsion.UnmarshalBinary(append([]byte{0xec}, append(bytes.Repeat([]byte{0xff}, 30), 0x7f)...)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		tamper func(tb testing.TB, seed [32]byte, d *AddressedDeal)
	}{
		{"cipher altered and re-signed", func(tb testing.TB, seed [32]byte, d *AddressedDeal) {
			d.Deal.Deal.Cipher[0] ^= 1
			resign(tb, seed, d)
		}},
		{"signature broken", func(tb testing.TB, seed [32]byte, d *AddressedDeal) {
			d.Deal.Signature[0] ^= 1
		}},
		{"ephemeral key with torsion, signed", func(tb testing.TB, seed [32]byte, d *AddressedDeal) {
			d.Deal.Deal.DHKey, _ = Suite.Point().Add(pointOf(d.Deal.Deal.DHKey), torsion).MarshalBinary()
			sec, _ := DKGKey(seed)
			d.Deal.Deal.Signature, _ = schnorr.Sign(Suite, sec, d.Deal.Deal.DHKey)
			resign(tb, seed, d)
		}},
	} {
		for _, justify := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/justified=%v", c.name, justify), func(t *testing.T) { testUnusableDeal(t, c.tamper, justify) })
		}
	}
}

// tamperDeals applies tamper to dealer bad's deal to victim in its deals
// message, and to nothing else.
func tamperDeals(t *testing.T, h *harness, bad, victim int, tamper func(tb testing.TB, seed [32]byte, d *AddressedDeal)) func(qmsg) qmsg {
	return func(m qmsg) qmsg {
		if m.kind != 'd' || m.from != bad {
			return m
		}
		dm, err := DecodeDeals(m.body)
		if err != nil {
			t.Fatal(err)
		}
		for k := range dm.Deals {
			if dm.Deals[k].To == victim {
				tamper(t, h.seeds[bad], &dm.Deals[k])
			}
		}
		m.body = EncodeDeals(dm)
		return m
	}
}

func testUnusableDeal(t *testing.T, tamper func(tb testing.TB, seed [32]byte, d *AddressedDeal), justify bool) {
	const n, th, bad, victim = 5, 4, 1, 3
	h := newHarness(t, "tamper", n, th)
	deals := tamperDeals(t, h, bad, victim, tamper)
	h.mutate = func(m qmsg) qmsg {
		if m.kind == 'j' && m.from == bad && !justify {
			return qmsg{} // dropped
		}
		return deals(m)
	}
	h.run(t)
	checkComplained(t, h, bad, victim)
	honest := honestExcept(n, bad)
	checkReplay(t, h, victim, nil)
	checkReplay(t, h, 0, nil)
	for _, i := range honest {
		for _, err := range h.errs[i] {
			if !errors.Is(err, ErrDisqualified) {
				t.Fatalf("member %d: %v", i, err)
			}
		}
	}
	if justify {
		if got := countKind(h, 'j'); got != 1 {
			t.Fatalf("%d justifications", got)
		}
		for _, i := range honest {
			if l := h.logs[i]; l[len(l)-1].kind == 'T' {
				t.Fatalf("member %d needed the timeout", i)
			}
			if d := h.runs[i].Disqualified(); d != nil {
				t.Fatalf("member %d disqualified %v", i, d)
			}
		}
		shares, qual := h.shares(t, honestExcept(n))
		if len(qual) != n {
			t.Fatalf("QUAL %v", qual)
		}
		checkThreshold(t, shares, th, n)
		return
	}
	for _, i := range honest {
		if got := h.runs[i].Disqualified(); !slices.Equal(got, []int{bad}) {
			t.Fatalf("member %d disqualified %v", i, got)
		}
	}
	shares, qual := h.shares(t, honest)
	if !slices.Equal(qual, []int{0, 2, 3, 4}) {
		t.Fatalf("QUAL %v", qual)
	}
	checkThreshold(t, shares, th, n)
}

// A dealer whose announced commitments are not those of its deals: every
// member's deal from it opens to other commitments, so every member
// complains; a justification with its true deal is refused alike
// everywhere (not the announced commitments), the complaints stay
// open, and at the timeout the dealer is out of QUAL and disqualified at
// every member, the others' key working.
func TestRunAnnouncedCommitmentsDiffer(t *testing.T) {
	const n, th, bad = 5, 4, 2
	h := newHarness(t, "announce", n, th)
	h.mutate = func(m qmsg) qmsg {
		if m.kind != 'd' || m.from != bad {
			return m
		}
		dm, err := DecodeDeals(m.body)
		if err != nil {
			t.Fatal(err)
		}
		dm.Commits[0] = Suite.Point().Add(dm.Commits[0], Suite.Point().Base())
		m.body = EncodeDeals(dm)
		return m
	}
	// The dealer's own Run refuses the complaints (another session than
	// its own): its true deal to member 0, signed, is injected as the
	// justification a dealer would make.
	const victim = 0
	h.inject = func(m qmsg) []qmsg {
		if m.kind != 'r' || m.from != victim {
			return nil
		}
		p, err := DecodeResponseMessage(m.body)
		if err != nil || int(p.Index) != bad {
			return nil
		}
		xV, _ := DKGKey(h.seeds[victim])
		d := h.runs[victim].deals[bad][victim]
		plain, err := openDeal(h.members, bad, victim, Suite.Point().Mul(xV, pointOf(d.Deal.DHKey)), d.Deal)
		if err != nil {
			t.Fatal(err)
		}
		j := &vss.Justification{SessionID: p.Response.SessionID, Index: victim, Deal: plain}
		resignJustification(t, h.seeds[bad], j)
		b, err := EncodeJustification(&dkg.Justification{Index: bad, Justification: j})
		if err != nil {
			t.Fatal(err)
		}
		return []qmsg{{'j', bad, b}}
	}
	h.run(t)
	honest := honestExcept(n, bad)
	for _, v := range honest {
		checkComplained(t, h, bad, v)
	}
	if got := countKind(h, 'j'); got != 1 {
		t.Fatalf("%d justifications", got)
	}
	for _, i := range honest {
		for _, err := range h.errs[i] {
			if !errors.Is(err, ErrBadDKGMessage) {
				t.Fatalf("member %d: %v", i, err)
			}
		}
		if got := h.runs[i].Disqualified(); !slices.Equal(got, []int{bad}) {
			t.Fatalf("member %d disqualified %v", i, got)
		}
	}
	shares, qual := h.shares(t, honest)
	if !slices.Equal(qual, honest) {
		t.Fatalf("QUAL %v", qual)
	}
	checkThreshold(t, shares, th, n)
	checkReplay(t, h, 0, nil)
}

// checkComplained: the victim's response on the dealer's deal is a plain
// kyber complaint, signed by the victim, under the dealer's announced
// session.
func checkComplained(t *testing.T, h *harness, dealer, victim int) {
	t.Helper()
	for _, m := range h.queue {
		if m.kind != 'r' || m.from != victim {
			continue
		}
		p, err := DecodeResponseMessage(m.body)
		if err != nil {
			t.Fatal(err)
		}
		if int(p.Index) != dealer {
			continue
		}
		if p.Response.Status != vss.StatusComplaint {
			t.Fatal("the victim approved the deal")
		}
		if err := schnorr.Verify(Suite, h.members[victim], p.Response.Hash(Suite), p.Response.Signature); err != nil {
			t.Fatalf("the complaint's signature: %v", err)
		}
		if !bytes.Equal(p.Response.SessionID, h.runs[0].sids[dealer]) {
			t.Fatal("the complaint is not under the dealer's session")
		}
		return
	}
	t.Fatal("the victim did not complain")
}

func countKind(h *harness, kind byte) int {
	k := 0
	for _, m := range h.queue {
		if m.kind == kind {
			k++
		}
	}
	return k
}

// The reviewer's attack on the first version's complaint with proof (it
// revealed Pre = x_V·DHKey for a DHKey the dealer chose): dealer D sets
// its ephemeral key to V as DHKey_E + r·G, E's ephemeral key in E's deal
// to V plus a known offset, so that V's complaint would have revealed
// x_V·DHKey_E = Pre - r·X_V and opened E's deal to V from public data.
// Now V's complaint reveals no DH secret: no 32-byte string anywhere on
// the transcript (deals, responses, justifications), taken as a point P,
// opens E's deal to V as P or as P - r·X_V; the scan does find what the
// old complaint would have revealed. D justifies, V gets its share.
func TestRunComplaintRevealsNoDHSecret(t *testing.T) {
	const n, th, honestE, bad, victim = 5, 4, 1, 2, 3
	h := newHarness(t, "attack", n, th)
	off := Suite.Scalar().SetInt64(7777)
	var dealE *dkg.Deal
	var crafted kyber.Point
	h.mutate = tamperDeals(t, h, bad, victim, func(tb testing.TB, seed [32]byte, d *AddressedDeal) {
		dm, err := DecodeDeals(h.queue[honestE].body)
		if err != nil {
			tb.Fatal(err)
		}
		for _, e := range dm.Deals {
			if e.To == victim {
				dealE = e.Deal
			}
		}
		crafted = Suite.Point().Add(pointOf(dealE.Deal.DHKey), Suite.Point().Mul(off, nil))
		d.Deal.Deal.DHKey, _ = crafted.MarshalBinary()
		sec, _ := DKGKey(seed)
		d.Deal.Deal.Signature, _ = schnorr.Sign(Suite, sec, d.Deal.Deal.DHKey)
		resign(tb, seed, d)
	})
	h.run(t)
	if dealE == nil {
		t.Fatal("E's deal to V not found")
	}
	checkComplained(t, h, bad, victim)
	rXV := Suite.Point().Mul(off, h.members[victim])
	opens := func(p kyber.Point) bool {
		for _, c := range []kyber.Point{p, Suite.Point().Sub(p, rXV)} {
			if _, err := openDeal(h.members, honestE, victim, c, dealE.Deal); err == nil {
				return true
			}
		}
		return false
	}
	xV, _ := DKGKey(h.seeds[victim])
	if !opens(Suite.Point().Mul(xV, crafted)) {
		t.Fatal("the scan would not catch the old complaint's Pre")
	}
	p := Suite.Point()
	for k, m := range h.queue {
		for o := 0; o+pointSize <= len(m.body); o++ {
			if p.UnmarshalBinary(m.body[o:o+pointSize]) == nil && opens(p) {
				t.Fatalf("message %d (%c from %d) at %d opens E's deal to V", k, m.kind, m.from, o)
			}
		}
	}
	if got := countKind(h, 'j'); got != 1 {
		t.Fatalf("%d justifications", got)
	}
	shares, qual := h.shares(t, honestExcept(n, bad))
	if len(qual) != n {
		t.Fatalf("QUAL %v", qual)
	}
	checkThreshold(t, shares, th, n)
}

// A false complaint (member 4 complains about a good deal of member 0):
// the dealer justifies, every member checks the justification, the
// complaint is resolved and everyone certifies with a full QUAL.
func TestRunFalseComplaintJustified(t *testing.T) {
	const n, th, dealer, liar = 5, 4, 0, 4
	h := newHarness(t, "justify", n, th)
	h.mutate = falseComplaint(t, h, dealer, liar)
	var justification []byte
	h.before = func(i int, r *Run, m qmsg) {
		if i != 1 || m.kind != 'j' {
			return
		}
		justification = m.body
		j, err := DecodeJustification(m.body)
		if err != nil {
			t.Fatal(err)
		}
		// Another member's share revealed (signed), a broken signature,
		// a dealer outside the set: refused, nothing changed.
		other := *j.Justification
		d := *other.Deal
		s2 := *d.SecShare
		s2.I = 2
		d.SecShare, other.Deal = &s2, &d
		resignJustification(t, h.seeds[dealer], &other)
		broken := *j.Justification
		broken.Signature = slices.Clone(broken.Signature)
		broken.Signature[0] ^= 1
		for name, v := range map[string]*dkg.Justification{
			"another's share":  {Index: j.Index, Justification: &other},
			"broken signature": {Index: j.Index, Justification: &broken},
			"dealer outside":   {Index: n, Justification: j.Justification},
		} {
			b, err := EncodeJustification(v)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.OnJustification(b); !errors.Is(err, ErrBadDKGMessage) && !errors.Is(err, ErrNotMember) {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	h.run(t)
	var just int
	for _, m := range h.queue {
		if m.kind == 'j' {
			just++
			if m.from != dealer {
				t.Fatalf("justification from %d", m.from)
			}
		}
	}
	if just != 1 || justification == nil {
		t.Fatalf("%d justifications", just)
	}
	for _, i := range honestExcept(n, liar) {
		if len(h.errs[i]) > 0 {
			t.Fatalf("member %d: %v", i, h.errs[i])
		}
		if l := h.logs[i]; l[len(l)-1].kind == 'T' {
			t.Fatalf("member %d needed the timeout", i)
		}
	}
	if err := h.runs[1].OnJustification(justification); !errors.Is(err, ErrReplay) {
		t.Fatalf("a justification replayed: %v", err)
	}
	shares, qual := h.shares(t, honestExcept(n))
	if len(qual) != n {
		t.Fatalf("QUAL %v", qual)
	}
	checkThreshold(t, shares, th, n)
}

// A justification, signed by the dealer, whose revealed share does not
// verify: the dealer is disqualified everywhere (kyber's rule), the rest
// certify at the timeout without it.
func TestRunBadJustification(t *testing.T) {
	const n, th, dealer, liar = 5, 4, 0, 4
	h := newHarness(t, "badjust", n, th)
	lie := falseComplaint(t, h, dealer, liar)
	h.mutate = func(m qmsg) qmsg {
		if m.kind != 'j' {
			return lie(m)
		}
		j, err := DecodeJustification(m.body)
		if err != nil {
			t.Fatal(err)
		}
		d := *j.Justification.Deal
		s := *d.SecShare
		s.V = Suite.Scalar().Add(s.V, Suite.Scalar().One())
		d.SecShare, j.Justification.Deal = &s, &d
		resignJustification(t, h.seeds[dealer], j.Justification)
		if m.body, err = EncodeJustification(j); err != nil {
			t.Fatal(err)
		}
		return m
	}
	h.run(t)
	honest := []int{1, 2, 3} // the dealer and the liar each keep their own view
	for _, i := range honest {
		for _, err := range h.errs[i] {
			if !errors.Is(err, ErrDisqualified) {
				t.Fatalf("member %d: %v", i, err)
			}
		}
		if got := h.runs[i].Disqualified(); !slices.Equal(got, []int{dealer}) {
			t.Fatalf("member %d disqualified %v", i, got)
		}
	}
	if _, qual := h.shares(t, honest); !slices.Equal(qual, []int{1, 2, 3, 4}) {
		t.Fatalf("QUAL %v", qual)
	}
}

// falseComplaint turns liar's response on dealer's deal into a (signed)
// complaint.
func falseComplaint(t *testing.T, h *harness, dealer, liar int) func(qmsg) qmsg {
	return func(m qmsg) qmsg {
		if m.kind != 'r' || m.from != liar {
			return m
		}
		p, err := DecodeResponseMessage(m.body)
		if err != nil || int(p.Index) != dealer {
			return m
		}
		sec, _ := DKGKey(h.seeds[liar])
		p.Response.Status = false
		if p.Response.Signature, err = schnorr.Sign(Suite, sec, p.Response.Hash(Suite)); err != nil {
			t.Fatal(err)
		}
		m.body = EncodeResponseMessage(p)
		return m
	}
}

func resignJustification(tb testing.TB, seed [32]byte, j *vss.Justification) {
	sec, _ := DKGKey(seed)
	sig, err := schnorr.Sign(Suite, sec, j.Hash(Suite))
	if err != nil {
		tb.Fatal(err)
	}
	j.Signature = sig
}

// Determinism and replay: two networks from the same seeds produce the
// same queue byte for byte and the same shares; a member rebuilt from its
// seed and the calls it made (failed ones included) gives the same
// outputs and share; another seed gives other deals.
func TestRunDeterministicReplay(t *testing.T) {
	const n, th = 5, 4
	var queues [2][][]byte
	var shareBytes [2][][]byte
	var hs [2]*harness
	for k := range hs {
		h := newHarness(t, "replay", n, th)
		h.active[4] = false // a timeout in the transcript too
		h.run(t)
		for _, m := range h.queue {
			queues[k] = append(queues[k], m.body)
		}
		shares, _ := h.shares(t, honestExcept(n, 4))
		for _, s := range shares {
			b, err := s.Encode()
			if err != nil {
				t.Fatal(err)
			}
			shareBytes[k] = append(shareBytes[k], b)
		}
		hs[k] = h
	}
	if !slices.EqualFunc(queues[0], queues[1], bytes.Equal) {
		t.Fatal("two runs from the same seeds queued different messages")
	}
	if !slices.EqualFunc(shareBytes[0], shareBytes[1], bytes.Equal) {
		t.Fatal("two runs from the same seeds gave different shares")
	}
	h := hs[0]
	for _, i := range honestExcept(n, 4) {
		checkReplay(t, h, i, shareBytes[0][slices.Index(honestExcept(n, 4), i)])
	}
	other := newHarness(t, "replay-other", n, th)
	d0, _ := other.runs[0].Deals()
	if bytes.Equal(d0, queues[0][0]) {
		t.Fatal("another seed made the same deals")
	}
}

// checkReplay rebuilds member i's Run from its seed and replays the calls
// it made (failed ones included): the same outputs, failures and share.
func checkReplay(t *testing.T, h *harness, i int, want []byte) {
	t.Helper()
	r, err := NewRun(h.seeds[i], h.members, h.t)
	if err != nil {
		t.Fatal(err)
	}
	for k, c := range h.logs[i] {
		var out []byte
		var err error
		switch c.kind {
		case 'D':
			out, err = r.Deals()
		case 'T':
			r.Timeout()
		case 'd':
			out, err = r.OnDeals(c.m.from, c.m.body)
		case 'r':
			out, err = r.OnResponse(c.m.body)
		case 'j':
			err = r.OnJustification(c.m.body)
		}
		if !bytes.Equal(out, c.out) || (err == nil) != (c.err == nil) {
			t.Fatalf("member %d call %d: replay differs", i, k)
		}
	}
	s, err := r.Result()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Encode()
	if want == nil {
		want, _ = h.runs[i].mustResult(t).Encode()
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("member %d: the replayed share differs", i)
	}
}

func (r *Run) mustResult(t *testing.T) *Share {
	s, err := r.Result()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Bad messages get a clear error and change nothing: member 0 is fed
// every bad variant along the way, and its final share is byte-for-byte
// the share of the same member in an undisturbed network (randomness
// included).
func TestRunErrorsChangeNothing(t *testing.T) {
	const n, th = 5, 4
	base := newHarness(t, "errors", n, th)
	base.run(t)
	want, _ := base.runs[0].Result()
	wantB, _ := want.Encode()

	h := newHarness(t, "errors", n, th)
	if _, err := h.runs[0].Result(); !errors.Is(err, ErrNotCertified) {
		t.Fatalf("result before the run: %v", err)
	}
	if _, err := h.runs[0].OnResponse(base.queue[n].body); !errors.Is(err, ErrUnknownDealer) {
		t.Fatalf("a response before its dealer's deals: %v", err)
	}
	if err := h.runs[0].OnJustification([]byte{1}); !errors.Is(err, ErrBadDKGMessage) {
		t.Fatalf("a malformed justification: %v", err)
	}
	var checked = map[string]bool{}
	h.before = func(i int, r *Run, m qmsg) {
		if i != 0 {
			return
		}
		type tc struct {
			name string
			call func() error
			want error
		}
		var cases []tc
		switch {
		case m.kind == 'd' && m.from == 2 && !checked["deals"]:
			checked["deals"] = true
			dm, _ := DecodeDeals(m.body)
			list := dm.Deals
			msg := func(l []AddressedDeal) []byte { return EncodeDeals(&DealsMessage{Commits: dm.Commits, Deals: l}) }
			fewer := EncodeDeals(&DealsMessage{Commits: dm.Commits[1:], Deals: list})
			torsion := Suite.Point()
			torsion.UnmarshalBinary(append([]byte{0xec}, append(bytes.Repeat([]byte{0xff}, 30), 0x7f)...))
			tc0 := slices.Clone(dm.Commits)
			tc0[1] = Suite.Point().Add(tc0[1], torsion)
			torsioned := EncodeDeals(&DealsMessage{Commits: tc0, Deals: list})
			otherIdx := slices.Clone(list)
			otherIdx[1].Deal = cloneDeal(list[1])
			otherIdx[1].Deal.Index = 3
			nonce := slices.Clone(list)
			nonce[2].Deal = cloneDeal(list[2])
			nonce[2].Deal.Deal.Nonce = append(nonce[2].Deal.Deal.Nonce, 0)
			short := slices.Clone(list[:len(list)-1])
			cases = []tc{
				{"from outside", func() error { _, err := r.OnDeals(n, m.body); return err }, ErrNotMember},
				{"negative from", func() error { _, err := r.OnDeals(-1, m.body); return err }, ErrNotMember},
				{"truncated", func() error { _, err := r.OnDeals(2, m.body[:len(m.body)-1]); return err }, ErrBadDKGMessage},
				{"trailing", func() error { _, err := r.OnDeals(2, append(slices.Clone(m.body), 0)); return err }, ErrBadDKGMessage},
				{"another's deals", func() error { _, err := r.OnDeals(3, m.body); return err }, ErrBadDKGMessage},
				{"in our name", func() error { _, err := r.OnDeals(0, m.body); return err }, ErrBadDKGMessage},
				{"another dealer's deal", func() error { _, err := r.OnDeals(2, msg(otherIdx)); return err }, ErrBadDKGMessage},
				{"nonce size", func() error { _, err := r.OnDeals(2, msg(nonce)); return err }, ErrBadDKGMessage},
				{"a deal missing", func() error { _, err := r.OnDeals(2, msg(short)); return err }, ErrBadDKGMessage},
				{"t-1 commitments", func() error { _, err := r.OnDeals(2, fewer); return err }, ErrBadDKGMessage},
				{"a commitment with torsion", func() error { _, err := r.OnDeals(2, torsioned); return err }, ErrBadDKGMessage},
			}
		case m.kind == 'd' && m.from == 3 && !checked["replay"]:
			checked["replay"] = true
			cases = []tc{{"deals replayed", func() error { _, err := r.OnDeals(2, base.queue[2].body); return err }, ErrReplay}}
		case m.kind == 'r' && m.from == 4 && !checked["resp"]:
			p, err := DecodeResponseMessage(m.body)
			if err != nil || int(p.Index) == 0 || !r.dealt[p.Index] {
				return
			}
			checked["resp"] = true
			forged := *p.Response
			forged.Signature = slices.Clone(forged.Signature)
			forged.Signature[0] ^= 1
			fp := *p
			fp.Response = &forged
			far := *p
			far.Index = n + 2
			cases = []tc{
				{"response kind", func() error { _, err := r.OnResponse(append([]byte{9}, m.body[1:]...)); return err }, ErrBadDKGMessage},
				{"empty response", func() error { _, err := r.OnResponse(nil); return err }, ErrBadDKGMessage},
				{"dealer outside", func() error { _, err := r.OnResponse(EncodeResponseMessage(&far)); return err }, ErrNotMember},
				{"bad response signature", func() error { _, err := r.OnResponse(EncodeResponseMessage(&fp)); return err }, ErrBadDKGMessage},
			}
		case m.kind == 'r' && m.from == 4 && checked["resp"] && !checked["resp2"]:
			// The previous response of member 4, delivered again.
			for _, c := range slices.Backward(h.logs[0]) {
				if c.kind == 'r' && c.m.from == 4 && c.err == nil {
					checked["resp2"] = true
					body := c.m.body
					cases = []tc{{"response replayed", func() error { _, err := r.OnResponse(body); return err }, ErrReplay}}
					break
				}
			}
		}
		for _, c := range cases {
			if err := c.call(); !errors.Is(err, c.want) {
				t.Errorf("%s: %v, want %v", c.name, err, c.want)
			}
		}
	}
	h.run(t)
	for _, k := range []string{"deals", "replay", "resp", "resp2"} {
		if !checked[k] {
			t.Fatalf("case %s not reached", k)
		}
	}
	got, err := h.runs[0].Result()
	if err != nil {
		t.Fatal(err)
	}
	gotB, _ := got.Encode()
	if !bytes.Equal(gotB, wantB) {
		t.Fatal("the refused messages changed the run")
	}
	h.runs[0].Timeout()
	if _, err := h.runs[0].OnDeals(1, base.queue[1].body); !errors.Is(err, ErrClosed) {
		t.Fatalf("after the timeout: %v", err)
	}
	if err := h.runs[0].OnJustification(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after the timeout: %v", err)
	}
}

func cloneDeal(d AddressedDeal) *dkg.Deal {
	c := *d.Deal
	e := *c.Deal
	e.Cipher = slices.Clone(e.Cipher)
	c.Deal = &e
	return &c
}

func TestNewRunRefuses(t *testing.T) {
	seeds := testSeeds("new", 4)
	var members []kyber.Point
	for _, s := range seeds {
		_, p := DKGKey(s)
		members = append(members, p)
	}
	torsion := Suite.Point()
	// The point of order 2, (0, -1), added to a member's key.
	if err := torsion.UnmarshalBinary(append([]byte{0xec}, append(bytes.Repeat([]byte{0xff}, 30), 0x7f)...)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		seed    [32]byte
		members []kyber.Point
		t       int
	}{
		{"not a member", sha256.Sum256([]byte("stranger")), members, 3},
		{"t = 1", seeds[0], members, 1},
		{"t > n", seeds[0], members, 5},
		{"repeated member", seeds[0], append(slices.Clone(members), members[1]), 3},
		{"torsion", seeds[0], append(slices.Clone(members), Suite.Point().Add(members[1], torsion)), 3},
		{"nil member", seeds[0], append(slices.Clone(members), nil), 3},
		{"too many", seeds[0], make([]kyber.Point, MaxMembers+1), 3},
	} {
		if _, err := NewRun(c.seed, c.members, c.t); !errors.Is(err, ErrBadRun) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if primeOrder(torsion) || !primeOrder(members[0]) {
		t.Fatal("primeOrder is wrong")
	}
}

// The sizes of a member's messages (docs/keys.md).
func TestRunMessageSizes(t *testing.T) {
	for _, n := range []int{5, 21} {
		if n > 5 && testing.Short() {
			continue
		}
		th := 2*n/3 + 1
		h := newHarness(t, "sizes", n, th)
		d0, _ := h.runs[0].Deals()
		resp, err := h.runs[1].OnDeals(0, d0)
		if err != nil {
			t.Fatal(err)
		}
		s := &Share{Index: 0, T: th, N: n, V: Suite.Scalar().One(), Commits: make([]kyber.Point, th)}
		for i := range s.Commits {
			s.Commits[i] = Suite.Point().Base()
		}
		sb, _ := s.Encode()
		res, _ := EncodeResult(honestExcept(n), s.Commits)
		t.Logf("n=%d t=%d: deals %d B, response %d B, share %d B, result %d B", n, th, len(d0), len(resp), len(sb), len(res))
	}
}

func sampleShare(tb testing.TB) *Share {
	h := newHarness(tb, "fuzz", 3, 2)
	h.run(tb)
	s, err := h.runs[1].Result()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// FuzzDecodeRunWire: the decoders of deals lists, response messages,
// shares and results never panic, and what they accept re-encodes to the
// same bytes.
func FuzzDecodeRunWire(f *testing.F) {
	h := newHarness(f, "fuzz", 3, 2)
	h.run(f)
	for _, m := range h.queue {
		f.Add(m.body)
	}
	s, _ := h.runs[1].Result()
	sb, _ := s.Encode()
	f.Add(sb)
	rb, _ := EncodeResult(h.runs[1].QUAL(), s.Commits)
	f.Add(rb)
	f.Fuzz(func(t *testing.T, b []byte) {
		if l, err := DecodeDeals(b); err == nil && !bytes.Equal(EncodeDeals(l), b) {
			t.Fatalf("deals mismatch %x", b)
		}
		if p, err := DecodeResponseMessage(b); err == nil && !bytes.Equal(EncodeResponseMessage(p), b) {
			t.Fatalf("response message mismatch %x", b)
		}
		if s, err := DecodeShare(b); err == nil {
			if again, _ := s.Encode(); !bytes.Equal(again, b) {
				t.Fatalf("share mismatch %x", b)
			}
		}
		if q, c, err := DecodeResult(b); err == nil {
			if again, _ := EncodeResult(q, c); !bytes.Equal(again, b) {
				t.Fatalf("result mismatch %x", b)
			}
		}
	})
}

func TestShareRoundTrip(t *testing.T) {
	s := sampleShare(t)
	b, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeShare(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.V.Equal(s.V) || !got.Public().Equal(s.Public()) || got.Index != s.Index {
		t.Fatal("share does not round-trip")
	}
	wrong := slices.Clone(b)
	wrong[4] ^= 1 // V
	for name, bad := range map[string][]byte{"trailing": append(slices.Clone(b), 0), "short": b[:len(b)-1], "wrong V": wrong, "index >= N": append([]byte{3}, b[1:]...)} {
		if _, err := DecodeShare(bad); !errors.Is(err, ErrBadShare) {
			t.Errorf("%s: %v", name, err)
		}
	}
	rb, _ := EncodeResult([]int{0, 2}, s.Commits)
	q, c, err := DecodeResult(rb)
	if err != nil || !slices.Equal(q, []int{0, 2}) || !c[0].Equal(s.Public()) {
		t.Fatalf("result: %v", err)
	}
	unordered, _ := EncodeResult([]int{2, 0}, s.Commits)
	none, _ := EncodeResult(nil, nil)
	for name, bad := range map[string][]byte{"unordered": unordered, "no commitments": none} {
		if _, _, err := DecodeResult(bad); !errors.Is(err, ErrBadShare) {
			t.Errorf("result %s: %v", name, err)
		}
	}
}

// BenchmarkDKG: the compute of a whole DKG (all members, in process, all
// honest), t = floor(2n/3)+1.
func BenchmarkDKG(b *testing.B) {
	for _, n := range []int{5, 21} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for range b.N {
				h := newHarness(b, "bench", n, 2*n/3+1)
				h.run(b)
				if !h.runs[0].Certified() {
					b.Fatal("not certified")
				}
			}
		})
	}
}

// The DkgKey body's proof of possession: it verifies for its key, era,
// attempt and member only; a copied key with its proof does not verify
// for another member, nor a proof made with another secret.
func TestDKGKeyProof(t *testing.T) {
	seeds := testSeeds("pop", 2)
	alice, bob := []byte("alice identity key.............."), []byte("bob identity key................")
	body := DKGKeyBody(seeds[0], 3, 1, alice)
	if len(body) != DKGKeyBodySize || !bytes.Equal(body, DKGKeyBody(seeds[0], 3, 1, alice)) {
		t.Fatal("the body's size or determinism")
	}
	pub, proof := body[:pointSize], body[pointSize:]
	if err := VerifyDKGKeyProof(pub, proof, 3, 1, alice); err != nil {
		t.Fatal(err)
	}
	other := DKGKeyBody(seeds[1], 3, 1, bob)
	for name, c := range map[string]struct {
		pub, proof   []byte
		era, attempt uint64
		member       []byte
	}{
		"copied by another member": {pub, proof, 3, 1, bob},
		"another era":              {pub, proof, 4, 1, alice},
		"another attempt":          {pub, proof, 3, 2, alice},
		"another secret's proof":   {pub, other[pointSize:], 3, 1, alice},
		"short proof":              {pub, proof[:63], 3, 1, alice},
		"not a point":              {bytes.Repeat([]byte{0xff}, 32), proof, 3, 1, alice},
	} {
		if err := VerifyDKGKeyProof(c.pub, c.proof, c.era, c.attempt, c.member); !errors.Is(err, ErrBadKeyProof) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
