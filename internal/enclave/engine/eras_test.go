package engine

import (
	"testing"

	"github.com/phalago/phala/api"
)

// pRuntime numbers eras by the chain's schedule: the genesis one, then
// each one the eras module announces (only it, and never rewriting an era
// that started); the schedule survives the state's encoding.
func TestEraScheduleFollowed(t *testing.T) {
	ch := newChainWith(t, func(g *api.GenesisState) { g.Params.EraLength = 10 })
	e := ch.engine(t, t.TempDir())
	if got := e.st.eras.Segments; len(got) != 1 || got[0] != (api.EraSegment{Start: 1, Length: 10}) {
		t.Fatalf("genesis schedule %+v", got)
	}
	next := e.st.eras.Clone()
	if err := next.Change(21, 4); err != nil { // era 2 on: 4 blocks
		t.Fatal(err)
	}
	msg := &api.Message{Origin: api.ModuleOrigin(api.ErasModule), Topic: api.TopicEraSchedule, Payload: next.Encode()}
	for name, m := range map[string]*api.Message{
		"not the eras module": {Origin: api.ModuleOrigin("governance"), Payload: msg.Payload},
		"garbage":             {Origin: msg.Origin, Payload: []byte{1, 2}},
	} {
		if err := e.onEraSchedule(&Context{e: e, Height: 21}, m); err == nil || len(e.st.eras.Segments) != 1 {
			t.Fatalf("%s: err %v, schedule %+v", name, err, e.st.eras.Segments)
		}
	}
	// Announced at height 15 (inside era 1, which would end at 16 by the
	// new schedule's numbering if it were rewritten): refused.
	bad := e.st.eras.Clone()
	bad.Segments = append(bad.Segments, api.EraSegment{Start: 11, FirstEra: 1, Length: 4})
	if err := e.onEraSchedule(&Context{e: e, Height: 15}, &api.Message{Origin: msg.Origin, Payload: bad.Encode()}); err == nil {
		t.Fatal("a schedule rewriting the running era was taken")
	}
	if err := e.onEraSchedule(&Context{e: e, Height: 21}, msg); err != nil || !e.st.eras.Equal(next) {
		t.Fatalf("err %v, schedule %+v", err, e.st.eras.Segments)
	}
	st, err := decodeState(e.st.encode())
	if err != nil || !st.eras.Equal(next) {
		t.Fatalf("decoded schedule %+v, err %v", st.eras, err)
	}
}
