package engine

// The elected set's DKG on a member's pRuntime (docs/keys.md, "Rotation
// per era"): the chain announces each phase (api.TopicDkgRound); a member
// posts a fresh DKG key, then deals among the participants, answers
// deals, justifications and the timeout in queue order through its
// threshold.Run, and once certified seals its share with the gatekeeper
// role and posts the result. The DKG's seed and the calls made to the Run
// are kept in the sealed checkpoint, so a restart rebuilds the Run by
// replaying them (it is deterministic given its seed and inputs); both are
// dropped when the chain adopts the set's key set or announces the
// attempt's end (a failed set, or a later attempt), which destroys the
// DKG key with the next checkpoint; a share certified in an attempt that
// ended without a key set is destroyed then too.

import (
	"crypto/rand"
	"fmt"
	"slices"

	"go.dedis.ch/kyber/v3"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/internal/enclave/threshold"
)

// DKG call kinds, as logged for a replay.
const (
	dkgCallDeals uint8 = iota + 1
	dkgCallOnDeals
	dkgCallOnResponse
	dkgCallOnJustification
	dkgCallTimeout
)

// dkgCall is one call made to the Run, in order.
type dkgCall struct {
	kind uint8
	from int
	body []byte
}

// dkgRun is this member's part in one attempt of a DKG: its seed, the
// participants' DKG keys and threshold once dealing began, the calls made
// to its Run, and whether it posted its result. Sealed only inside the
// runtime core.
type dkgRun struct {
	era, attempt uint64
	seed         [32]byte
	started      bool
	keys         [][32]byte // the participants', in share-index order
	t            uint32
	calls        []dkgCall
	posted       bool
	run          *threshold.Run // rebuilt from the above after a restart
}

// get returns the Run, rebuilt by replaying the logged calls if needed.
func (d *dkgRun) get() (*threshold.Run, error) {
	if d.run != nil {
		return d.run, nil
	}
	pts := make([]kyber.Point, len(d.keys))
	for i, k := range d.keys {
		pts[i] = threshold.Suite.Point()
		if err := pts[i].UnmarshalBinary(k[:]); err != nil {
			return nil, fmt.Errorf("DKG key %d: %w", i, err)
		}
	}
	r, err := threshold.NewRun(d.seed, pts, int(d.t))
	if err != nil {
		return nil, err
	}
	for _, c := range d.calls {
		apply(r, c) // refused calls change nothing; replayed as made
	}
	d.run = r
	return r, nil
}

// apply makes call c on run r, live or replayed; it returns what the
// call answers (deals, a response, a justification) if anything.
func apply(r *threshold.Run, c dkgCall) ([]byte, error) {
	switch c.kind {
	case dkgCallDeals:
		return r.Deals()
	case dkgCallOnDeals:
		return r.OnDeals(c.from, c.body)
	case dkgCallOnResponse:
		return r.OnResponse(c.body)
	case dkgCallOnJustification:
		return nil, r.OnJustification(c.body)
	case dkgCallTimeout:
		r.Timeout()
		return nil, nil
	}
	return nil, fmt.Errorf("DKG call of kind %d", c.kind)
}

// do makes call c on the member's run and logs it for a replay (a
// refused call too: the Run is deterministic in its calls).
func (d *dkgRun) do(c dkgCall) (*threshold.Run, []byte, error) {
	r, err := d.get()
	if err != nil {
		return nil, nil, err
	}
	out, err := apply(r, c)
	d.calls = append(d.calls, c)
	return r, out, err
}

// onDkgRound follows a phase of the elected set's DKG (every pRuntime: a
// DKG running pauses new grants); a member takes part.
func (e *Engine) onDkgRound(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin(gatekeeperModule) {
		return fmt.Errorf("DKG round from %s, not the gatekeeper module", m.Origin)
	}
	st, err := api.DecodeDkgState(m.Payload)
	if err != nil {
		return err
	}
	if st.Phase == api.DkgFailed {
		e.st.dkgPhase = nil
		if e.st.dkg != nil && e.st.dkg.era == st.Era {
			e.endDkgRun()
		}
		return nil
	}
	// A later attempt (or era) ends this member's run, whether or not it
	// takes part in the new one: a pRuntime that certified an attempt
	// after the chain had given up on it (paused, then catching up) keeps
	// neither the attempt's DKG key nor its share.
	if d := e.st.dkg; d != nil && (d.era < st.Era || d.era == st.Era && d.attempt < st.Attempt) {
		e.endDkgRun()
	}
	mine := e.st.dkg != nil && e.st.dkg.era == st.Era && e.st.dkg.attempt == st.Attempt
	e.st.dkgPhase = st
	me := e.entity.Identity.Public()
	switch st.Phase {
	case api.DkgCollectingKeys:
		if !slices.Contains(st.Members, me) {
			return nil
		}
		if e.gk == nil {
			e.role = RoleGatekeeper
			if err := e.startGatekeeper(false); err != nil {
				return fmt.Errorf("take the gatekeeper role: %w", err)
			}
		}
		d := &dkgRun{era: st.Era, attempt: st.Attempt}
		if _, err := rand.Read(d.seed[:]); err != nil {
			return err
		}
		// The key and its proof of possession, bound to our identity and
		// the attempt (the chain refuses a key another member posted).
		b := threshold.DKGKeyBody(d.seed, st.Era, st.Attempt, me[:])
		e.st.dkg = d
		e.emit(api.OriginWorker, api.TopicDkgKey, (&api.DkgMessage{Era: st.Era, Attempt: st.Attempt, Body: b}).Encode())
		e.log.Info("elected gatekeeper: DKG key posted", "era", st.Era, "attempt", st.Attempt, "members", len(st.Members))
	case api.DkgDealing:
		if !mine || !slices.Contains(st.Participants, me) {
			return nil
		}
		d := e.st.dkg
		d.started, d.t = true, st.T
		for _, p := range st.Participants {
			d.keys = append(d.keys, st.Key(p))
		}
		if len(st.Participants) == 1 {
			return e.soloDkg(d)
		}
		_, deals, err := d.do(dkgCall{kind: dkgCallDeals})
		if err != nil {
			return fmt.Errorf("deal: %w", err)
		}
		e.emit(api.OriginWorker, api.TopicDkgDeals, (&api.DkgMessage{Era: st.Era, Attempt: st.Attempt, Body: deals}).Encode())
		e.log.Info("DKG deals posted", "era", st.Era, "participants", len(st.Participants), "threshold", st.T)
	}
	return nil
}

// endDkgRun drops this member's run of an attempt the chain ended
// without adopting a key set: its DKG key is gone from the next
// checkpoint, and the share it sealed (if it certified), a share of no
// key set, is destroyed now (the next attempt's, if this member takes
// part, replaces it).
func (e *Engine) endDkgRun() {
	d := e.st.dkg
	e.st.dkg = nil
	if !d.posted || e.gk == nil || e.st.keySets[d.era] != nil {
		return
	}
	if err := e.gk.Forget(d.era); err != nil {
		e.log.Error("destroy the share of an ended DKG attempt", "era", d.era, "attempt", d.attempt, "err", err)
		return
	}
	e.log.Info("DKG attempt ended without a key set: its share destroyed", "era", d.era, "attempt", d.attempt)
}

// soloDkg is the DKG of a single participant (kyber's needs two): a
// fresh secret of its own, threshold 1.
func (e *Engine) soloDkg(d *dkgRun) error {
	x := threshold.Suite.Scalar().Pick(threshold.Suite.RandomStream())
	pub := threshold.Suite.Point().Mul(x, nil)
	body, err := threshold.EncodeResult([]int{0}, []kyber.Point{pub})
	if err != nil {
		return err
	}
	if err := e.gk.Keep(d.era, x); err != nil {
		return err
	}
	d.posted = true
	e.emit(api.OriginWorker, api.TopicDkgResult, (&api.DkgMessage{Era: d.era, Attempt: d.attempt, Body: body}).Encode())
	e.log.Info("DKG result posted (single participant)", "era", d.era)
	return nil
}

// dkgInput returns this member's run for a DKG message of the running
// attempt and the sender's share index (ok false: not ours to process).
func (e *Engine) dkgInput(m *api.Message) (d *dkgRun, msg *api.DkgMessage, from int, ok bool, err error) {
	if m.Origin.Kind != api.OriginWorker || e.st.dkg == nil || !e.st.dkg.started || e.st.dkgPhase == nil {
		return nil, nil, 0, false, nil
	}
	msg, err = api.DecodeDkgMessage(m.Payload)
	if err != nil {
		return nil, nil, 0, false, err
	}
	d = e.st.dkg
	if msg.Era != d.era || msg.Attempt != d.attempt {
		return nil, nil, 0, false, nil
	}
	from = slices.Index(e.st.dkgPhase.Participants, m.Origin.Key)
	if from < 0 {
		return nil, nil, 0, false, fmt.Errorf("DKG message from %s, not a participant", m.Origin.Key.Short())
	}
	return d, msg, from, true, nil
}

// onDkgDeals feeds a participant's deals (within the deal window the
// chain applies too) to the run and posts this member's response.
func (e *Engine) onDkgDeals(ctx *Context, m *api.Message) error {
	return e.feedDkg(ctx, m, dkgCallOnDeals, api.TopicDkgResponse)
}

// onDkgResponse feeds a response (or complaint) to the run; a complaint
// about this member's deal gets its justification.
func (e *Engine) onDkgResponse(ctx *Context, m *api.Message) error {
	return e.feedDkg(ctx, m, dkgCallOnResponse, api.TopicDkgJustification)
}

// onDkgJustification feeds a justification to the run.
func (e *Engine) onDkgJustification(ctx *Context, m *api.Message) error {
	return e.feedDkg(ctx, m, dkgCallOnJustification, "")
}

// feedDkg feeds a participant's DKG message to this member's run as a
// call of kind, posts what the call answers on reply, and the result once
// certified.
func (e *Engine) feedDkg(ctx *Context, m *api.Message, kind uint8, reply string) error {
	d, msg, from, ok, err := e.dkgInput(m)
	if !ok || err != nil {
		return err
	}
	if kind == dkgCallOnDeals && ctx.Height-e.st.dkgPhase.PhaseStart > e.st.params.DkgDealWindow() {
		return fmt.Errorf("DKG deals of participant %d after the deal window: ignored", from)
	}
	r, out, err := d.do(dkgCall{kind: kind, from: from, body: msg.Body})
	if err != nil {
		return fmt.Errorf("DKG %s of participant %d: %w", m.Topic, from, err)
	}
	if out != nil && reply != "" {
		e.emit(api.OriginWorker, reply, (&api.DkgMessage{Era: d.era, Attempt: d.attempt, Body: out}).Encode())
	}
	return e.dkgResult(d, r)
}

// onDkgTimeout closes the run's phase at the chain's deadline: what is
// certified by then is the result.
func (e *Engine) onDkgTimeout(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin(gatekeeperModule) {
		return fmt.Errorf("DKG timeout from %s, not the gatekeeper module", m.Origin)
	}
	msg, err := api.DecodeDkgMessage(m.Payload)
	if err != nil {
		return err
	}
	if e.st.dkgPhase != nil && e.st.dkgPhase.Era == msg.Era {
		e.st.dkgPhase.Phase = api.DkgTimedOut
	}
	d := e.st.dkg
	if d == nil || !d.started || d.era != msg.Era || d.attempt != msg.Attempt || d.posted {
		return nil
	}
	r, _, err := d.do(dkgCall{kind: dkgCallTimeout})
	if err != nil {
		return err
	}
	return e.dkgResult(d, r)
}

// dkgResult, once the run is certified, seals this member's share with
// the gatekeeper role (used once the chain adopts the key set it commits
// to) and posts the result (once).
func (e *Engine) dkgResult(d *dkgRun, r *threshold.Run) error {
	if d.posted || !r.Certified() {
		return nil
	}
	sh, err := r.Result()
	if err != nil {
		return err
	}
	body, err := threshold.EncodeResult(r.QUAL(), sh.Commits)
	if err != nil {
		return err
	}
	if err := e.gk.Keep(d.era, sh.V); err != nil {
		return err
	}
	d.posted = true
	e.emit(api.OriginWorker, api.TopicDkgResult, (&api.DkgMessage{Era: d.era, Attempt: d.attempt, Body: body}).Encode())
	e.log.Info("DKG certified: share sealed, result posted", "era", d.era, "qualified", len(r.QUAL()))
	return nil
}

// encodeDkg writes the DKG phase the chain announced (chain-derived).
func (s *state) encodeDkg(w *codec.Writer) {
	w.Bool(s.dkgPhase != nil)
	if s.dkgPhase != nil {
		w.BytesField(s.dkgPhase.Encode())
	}
}

func (s *state) decodeDkg(r *codec.Reader) {
	if r.Bool() {
		st, err := api.DecodeDkgState(r.BytesField(64 + 128*api.MaxGatekeepers))
		if err != nil && r.Err() == nil {
			r.Fail(err)
		}
		s.dkgPhase = st
	}
}

// encodeDkgRun writes this member's DKG run (sealed core only).
func encodeDkgRun(w *codec.Writer, d *dkgRun) {
	w.Bool(d != nil)
	if d == nil {
		return
	}
	w.Uvarint(d.era)
	w.Uvarint(d.attempt)
	w.Fixed(d.seed[:])
	w.Bool(d.started)
	w.Uvarint(uint64(len(d.keys)))
	for _, k := range d.keys {
		w.Fixed(k[:])
	}
	w.Uvarint(uint64(d.t))
	w.Uvarint(uint64(len(d.calls)))
	for _, c := range d.calls {
		w.U8(c.kind)
		w.Uvarint(uint64(c.from))
		w.BytesField(c.body)
	}
	w.Bool(d.posted)
}

func decodeDkgRun(r *codec.Reader) *dkgRun {
	if !r.Bool() {
		return nil
	}
	d := &dkgRun{era: r.Uvarint(), attempt: r.Uvarint()}
	r.Fixed(d.seed[:])
	d.started = r.Bool()
	n := r.Uvarint()
	if n > api.MaxGatekeepers {
		r.Fail(codec.ErrTooLong)
		return nil
	}
	d.keys = make([][32]byte, n)
	for i := range d.keys {
		r.Fixed(d.keys[i][:])
	}
	d.t = uint32(r.Uvarint())
	n = r.Uvarint()
	if n > 64*api.MaxGatekeepers*api.MaxGatekeepers {
		r.Fail(codec.ErrTooLong)
		return nil
	}
	for ; r.Err() == nil && n > 0; n-- {
		c := dkgCall{kind: r.U8(), from: int(r.Uvarint())}
		c.body = r.BytesField(api.MaxDkgBody)
		d.calls = append(d.calls, c)
	}
	d.posted = r.Bool()
	return d
}
