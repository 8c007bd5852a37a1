package engine

import (
	"testing"
	"time"

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

// End to end: governance shortens era_length mid-era on a running chain;
// pRuntime dispatching the chain's blocks takes the eras module's
// schedule (a topic it must handle, or dispatch would stop), numbers
// the eras as the chain does, and keeps the schedule across a restart.
func TestEraScheduleFromChain(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntime")
	}
	ch := newChainWith(t, func(g *api.GenesisState) { g.Params.EraLength = 30 })
	aliceS, bobS := ch.c.NewSigner(alice), ch.c.NewSigner(bob)
	p := ch.c.Params()
	p.EraLength = 7
	enactMotion(t, ch, aliceS, bobS, api.Action{Kind: api.ActionSetParams, Params: p})
	var sched *api.EraSchedule
	waitFor(t, 90*time.Second, "the new era length in force", func() bool {
		s, _, err := ch.c.EraSchedule(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		sched = s
		return len(s.Segments) == 2
	})
	if g := sched.Segments[1]; g.FirstEra != 1 || g.Start != 31 || g.Length != 7 {
		t.Fatalf("schedule %+v: want era 1 from height 31, 7 blocks", sched.Segments)
	}
	ch.fetch(t)
	dir := t.TempDir()
	e := ch.engine(t, dir)
	if _, err := e.SyncHeaders(ch.headers); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DispatchBlocks(ch.blocks); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	got, dispatched := e.st.eras.Clone(), e.st.dispatched
	e.mu.Unlock()
	if dispatched < 31 || !got.Equal(sched) {
		t.Fatalf("dispatched to %d, schedule %+v, want %+v", dispatched, got.Segments, sched.Segments)
	}
	if era, _ := got.Era(dispatched); era != 1+uint64(dispatched-31)/7 {
		t.Fatalf("height %d numbered era %d", dispatched, era)
	}
	again := ch.engine(t, dir)
	if !again.st.eras.Equal(sched) {
		t.Fatalf("after a restart: %+v", again.st.eras.Segments)
	}
}
