package engine

// The computation module's side in pRuntime (docs/economy.md): answering
// heartbeat challenges that name this pRuntime, and following which
// workers the chain found unresponsive (a gatekeeper assigns no new
// contract to them).

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// onChallenge answers a heartbeat challenge naming this pRuntime with a
// heartbeat in its egress (origin kind WORKER, whatever its role: the
// chain authorizes it for every attested node, while it refuses the
// gatekeeper origin of an elected member not yet on the serving list, or
// of one that left it, so such answers would wait in the queue past
// their window and the node would look down: docs/keys.md, "A third of
// the set down"), unless the answer could no longer arrive in time: the
// challenge's window already closed before the newest verified header (a
// pRuntime catching up on old blocks sends nothing for them).
func (e *Engine) onChallenge(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin(api.ComputationModule) {
		return fmt.Errorf("challenge from %s, not the computation module", m.Origin)
	}
	c, err := api.DecodeChallenge(m.Payload)
	if err != nil {
		return err
	}
	me := e.entity.Identity.Public()
	named := false
	for _, n := range c.Nodes {
		if n == me {
			named = true
			break
		}
	}
	if !named || ctx.Height+int64(e.st.params.HeartbeatWindow) < e.st.headerHeight {
		return nil
	}
	hb := &api.Heartbeat{Height: ctx.Height, Seed: c.Seed}
	e.emit(api.OriginWorker, api.TopicHeartbeat, hb.Encode())
	return nil
}

// onAssignable follows the chain's responsiveness verdicts.
func (e *Engine) onAssignable(_ *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin(api.ComputationModule) {
		return fmt.Errorf("assignability from %s, not the computation module", m.Origin)
	}
	a, err := api.DecodeAssignability(m.Payload)
	if err != nil {
		return err
	}
	if a.Assignable {
		delete(e.st.unassignable, a.Node)
	} else {
		e.st.unassignable[a.Node] = true
	}
	return nil
}

// maxEraScheduleBytes bounds an encoded era schedule (three uvarints of
// at most 10 bytes per segment).
const maxEraScheduleBytes = 2 + 30*api.MaxEraSegments

// onEraSchedule follows the chain's era schedule: the eras module sends
// the whole schedule when a change of era_length takes effect (at an era
// boundary). A schedule that rewrites an era already started is refused:
// the chain never does that.
func (e *Engine) onEraSchedule(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin(api.ErasModule) {
		return fmt.Errorf("era schedule from %s, not the eras module", m.Origin)
	}
	s, err := api.DecodeEraSchedule(m.Payload)
	if err != nil {
		return err
	}
	if ctx != nil {
		if era, _ := s.Era(ctx.Height - 1); s.Start(era) != e.st.eras.Start(era) || s.End(era) != e.st.eras.End(era) {
			return fmt.Errorf("era schedule changes era %d, which started already", era)
		}
	}
	e.st.eras = s
	return nil
}

// encodeComputation writes the chain parameters pRuntime follows and the
// nodes found unresponsive (ascending keys).
func (s *state) encodeComputation(w *codec.Writer) {
	w.BytesField(s.params.Encode())
	w.BytesField(s.eras.Encode())
	ks := make([]crypto.PublicKey, 0, len(s.unassignable))
	for k := range s.unassignable {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return bytes.Compare(ks[i][:], ks[j][:]) < 0 })
	w.Uvarint(uint64(len(ks)))
	for _, k := range ks {
		w.Fixed(k[:])
	}
}

func (s *state) decodeComputation(r *codec.Reader) {
	p, err := api.DecodeParams(r.BytesField(1024))
	if err != nil && r.Err() == nil {
		r.Fail(err)
	}
	s.params = p
	es, err := api.DecodeEraSchedule(r.BytesField(maxEraScheduleBytes))
	if err != nil && r.Err() == nil {
		r.Fail(err)
	}
	s.eras = es
	n := r.Uvarint()
	if n > uint64(r.Remaining()/crypto.PublicKeySize) {
		r.Fail(codec.ErrTooLong)
	}
	for ; r.Err() == nil && n > 0; n-- {
		var k crypto.PublicKey
		r.Fixed(k[:])
		s.unassignable[k] = true
	}
}
