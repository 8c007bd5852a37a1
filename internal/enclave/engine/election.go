package engine

// The gatekeeper election's side in pRuntime (docs/economy.md, "Gatekeeper
// election"): every pRuntime follows the serving gatekeeper set from the
// chain's messages (the genesis list until the first elected set is
// active); a newly elected member takes the gatekeeper role and runs the
// set's DKG (dkg.go); a gatekeeper that leaves the set serves no new
// contract.

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

// onGatekeeperElected records a newly elected set (its DKG follows:
// dkg.go).
func (e *Engine) onGatekeeperElected(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin(gatekeeperModule) {
		return fmt.Errorf("elected set from %s, not the gatekeeper module", m.Origin)
	}
	set, err := api.DecodeGatekeeperSet(m.Payload)
	if err != nil {
		return err
	}
	e.st.elected = set
	return nil
}

// onGatekeeperActive makes the set whose DKG completed the serving one. A
// gatekeeper that left the set stops serving new contracts; it keeps its
// shares of past key eras for the contracts derived under them
// (docs/keys.md, "Rotation per era"). A member that holds no role yet
// takes it.
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
	case !e.isGatekeeper(me) && e.role == RoleGatekeeper:
		e.role = RoleWorker
		e.log.Info("no longer a gatekeeper: this pRuntime serves no new contract; it keeps its shares of past key eras for the contracts under them", "era", set.Era)
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
