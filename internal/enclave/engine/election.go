package engine

// The gatekeeper election's side in pRuntime (docs/economy.md, "Gatekeeper
// election"): every pRuntime follows the serving gatekeeper set from the
// chain's messages (the genesis list until the first elected set is
// active); a gatekeeper holding the MasterKey seals it to each newly
// elected member; a newly elected member takes the gatekeeper role, and
// once it holds the MasterKey confirms with phala/gatekeeper/ready (as a
// worker: it is not on the gatekeeper list before activation); a
// gatekeeper that leaves the set stops serving keys (destroying them is
// the key-rotation issue's).

import (
	"fmt"
	"slices"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// gatekeeperModule is the gatekeeper module's origin name.
const gatekeeperModule = "gatekeeper"

// isGatekeeper reports whether key is in the serving set.
func (e *Engine) isGatekeeper(key crypto.PublicKey) bool {
	return slices.Contains(e.st.gatekeepers, key)
}

// isElected reports whether key is a member of the set elected and not
// active yet.
func (e *Engine) isElected(key crypto.PublicKey) bool {
	return e.st.elected != nil && slices.Contains(e.st.elected.Members, key)
}

// onGatekeeperElected records a newly elected set; a serving gatekeeper
// holding the MasterKey shares it with the new members; this pRuntime,
// if elected and not serving, takes the gatekeeper role.
func (e *Engine) onGatekeeperElected(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin(gatekeeperModule) {
		return fmt.Errorf("elected set from %s, not the gatekeeper module", m.Origin)
	}
	set, err := api.DecodeGatekeeperSet(m.Payload)
	if err != nil {
		return err
	}
	e.st.elected = set
	me := e.entity.Identity.Public()
	if e.gk != nil && e.isGatekeeper(me) {
		for _, k := range set.Members {
			if !e.isGatekeeper(k) {
				if rec := e.st.workers[k]; rec != nil {
					e.gk.Share(ctx.Height, rec, set.Era)
				}
			}
		}
	}
	if slices.Contains(set.Members, me) && !e.isGatekeeper(me) {
		if e.gk == nil {
			e.role = RoleGatekeeper
			if err := e.startGatekeeper(false); err != nil {
				return fmt.Errorf("take the gatekeeper role: %w", err)
			}
			e.log.Info("elected gatekeeper: waiting for the MasterKey from a serving gatekeeper", "era", set.Era)
		}
		e.confirmIfReady()
	}
	return nil
}

// confirmIfReady emits this pRuntime's confirmation of the elected set
// once it holds the MasterKey the chain adopted (once per set).
func (e *Engine) confirmIfReady() {
	me := e.entity.Identity.Public()
	if e.st.elected == nil || e.st.confirmed == e.st.elected.Era || !e.isElected(me) || e.isGatekeeper(me) {
		return
	}
	if e.gk == nil || !e.gk.Holds(e.st.elected.Era) {
		return
	}
	e.emit(api.OriginWorker, api.TopicGatekeeperReady, (&api.GatekeeperReady{Era: e.st.elected.Era}).Encode())
	e.st.confirmed = e.st.elected.Era
	e.log.Info("elected gatekeeper ready: MasterKey held, confirmation sent", "era", e.st.elected.Era)
}

// onGatekeeperActive makes the confirmed set the serving one. A
// gatekeeper that left the set stops serving keys (no grants, shares or
// announcements); a member that holds no role yet takes it.
func (e *Engine) onGatekeeperActive(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin(gatekeeperModule) {
		return fmt.Errorf("active set from %s, not the gatekeeper module", m.Origin)
	}
	set, err := api.DecodeGatekeeperSet(m.Payload)
	if err != nil {
		return err
	}
	e.st.gatekeepers = slices.Clone(set.Members)
	if e.st.elected != nil && e.st.elected.Era <= set.Era {
		e.st.elected = nil
	}
	me := e.entity.Identity.Public()
	switch {
	case e.isGatekeeper(me) && e.gk == nil:
		e.role = RoleGatekeeper
		if err := e.startGatekeeper(false); err != nil {
			return fmt.Errorf("take the gatekeeper role: %w", err)
		}
	case !e.isGatekeeper(me) && e.gk != nil:
		e.gk = nil
		e.role = RoleWorker
		e.log.Info("no longer a gatekeeper: this pRuntime stops serving keys", "era", set.Era)
	}
	return nil
}

// encodeElection writes the serving set, the pending elected set and the
// era this pRuntime confirmed.
func (s *state) encodeElection(w *codec.Writer) {
	w.Fixed(api.EncodeKeys(s.gatekeepers))
	w.Bool(s.elected != nil)
	if s.elected != nil {
		w.BytesField(s.elected.Encode())
	}
	w.Uvarint(s.confirmed)
}

func (s *state) decodeElection(r *codec.Reader) {
	n := r.Uvarint()
	if n > api.MaxGatekeepers*10 || n > uint64(r.Remaining()/crypto.PublicKeySize) {
		r.Fail(codec.ErrTooLong)
	}
	for ; r.Err() == nil && n > 0; n-- {
		var k crypto.PublicKey
		r.Fixed(k[:])
		s.gatekeepers = append(s.gatekeepers, k)
	}
	if r.Bool() {
		set, err := api.DecodeGatekeeperSet(r.BytesField(64 + 32*api.MaxGatekeepers))
		if err != nil && r.Err() == nil {
			r.Fail(err)
		}
		s.elected = set
	}
	s.confirmed = r.Uvarint()
}
