package engine

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/platform"
	"github.com/phalago/phala/internal/wat"
)

// enactMotion has the dev council (Alice proposes, Bob votes: 2 of 3)
// enact action.
func enactMotion(t *testing.T, ch *chain, aliceS, bobS *client.Signer, a api.Action) {
	t.Helper()
	if _, err := aliceS.Submit(ctx(t), &api.GovPropose{Action: a}); err != nil {
		t.Fatalf("propose %s: %v", a.Kind, err)
	}
	pv, err := ch.c.Prove(ctx(t), api.QueryNextMotion, nil)
	if err != nil || len(pv.Value) != 8 {
		t.Fatalf("next motion: %v", err)
	}
	id := uint64(pv.Value[7]) - 1 // few motions in a test
	if _, err := bobS.Submit(ctx(t), &api.GovVote{Motion: id, Aye: true}); err != nil {
		t.Fatalf("vote %s: %v", a.Kind, err)
	}
}

// A minimum version above this pRuntime's stops dispatch at the block that
// announces it: an error naming both versions, nothing applied, the same
// refusal on every retry and after a restart. A minimum it meets is
// recorded and dispatch goes on.
func TestMinVersionStopsDispatch(t *testing.T) {
	ch := newChain(t)
	aliceS, bobS := ch.c.NewSigner(alice), ch.c.NewSigner(bob)
	enactMotion(t, ch, aliceS, bobS, api.Action{Kind: api.ActionSetMinRuntimeVersion, Version: Version})
	enactMotion(t, ch, aliceS, bobS, api.Action{Kind: api.ActionSetMinRuntimeVersion, Version: Version + 1})
	ch.fetch(t)
	var stop int64 // the block announcing Version+1
	for _, b := range ch.blocks.Blocks {
		for _, m := range b.Messages {
			if m.Topic == api.TopicGovMinRuntimeVersion {
				if v, _ := api.DecodeRuntimeVersion(m.Payload); v == Version+1 {
					stop = b.Height
				}
			}
		}
	}
	if stop == 0 {
		t.Fatal("no block announces the new minimum version")
	}
	dir := t.TempDir()
	e := ch.engine(t, dir)
	if _, err := e.SyncHeaders(ch.headers); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("requires pRuntime version %d or newer; this pRuntime is version %d", Version+1, Version)
	batch := ch.blocks
	for attempt := 0; attempt < 2; attempt++ {
		h, err := e.DispatchBlocks(batch)
		batch = &api.BlockBatch{Blocks: ch.blocks.Blocks[stop-1:]}
		if !errors.Is(err, ErrUpgradeRequired) || !strings.Contains(err.Error(), want) {
			t.Fatalf("attempt %d: %v, want ErrUpgradeRequired containing %q", attempt, err, want)
		}
		if h != stop-1 {
			t.Fatalf("attempt %d: dispatched to %d, want %d (up to the announcing block)", attempt, h, stop-1)
		}
	}
	root := e.StateRoot()
	e.mu.Lock()
	minV := e.st.minVersion
	e.mu.Unlock()
	if minV != Version {
		t.Fatalf("recorded minimum %d, want %d", minV, Version)
	}
	e2 := ch.engine(t, dir)
	if _, err := e2.DispatchBlocks(&api.BlockBatch{Blocks: ch.blocks.Blocks[stop-1:]}); !errors.Is(err, ErrUpgradeRequired) {
		t.Fatalf("after restart: %v", err)
	}
	if e2.StateRoot() != root || e2.Info().Dispatched != stop-1 {
		t.Fatal("a refused block changed the state")
	}
}

// A chain module's message on a topic this pRuntime does not know stops
// dispatch with an error telling the operator to upgrade. Here the
// pRuntime "predates" contract uploads: it has no handler for them.
func TestUnknownModuleTopicStops(t *testing.T) {
	ch := newChain(t)
	if _, err := ch.c.NewSigner(alice).Submit(ctx(t), &api.UploadContract{Code: gz(t, []byte("not even wasm")), Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	ch.fetch(t)
	e := ch.engine(t, t.TempDir())
	delete(e.routes, api.TopicContractUploaded)
	if _, err := e.SyncHeaders(ch.headers); err != nil {
		t.Fatal(err)
	}
	_, err := e.DispatchBlocks(ch.blocks)
	if !errors.Is(err, ErrUpgradeRequired) || !strings.Contains(err.Error(), api.TopicContractUploaded) ||
		!strings.Contains(err.Error(), "minimum version") || !strings.Contains(err.Error(), "upgrade") {
		t.Fatalf("unknown module topic: %v", err)
	}
	// Messages of off-chain origins on unknown topics are not the chain's
	// protocol: they never stop dispatch (TestSyncRegisterAndEgress posts
	// "app/x" from an account).
}

// A measurement revoked by governance makes the workers registered with it
// inactive: the gatekeeper grants a new contract's key only to the worker
// whose measurement is still allowed, and the chain records only that one.
func TestRevokedMeasurementGetsNoGrant(t *testing.T) {
	code2 := []byte("an older pruntime build")
	m1, m2 := sha256.Sum256(code), sha256.Sum256(code2)
	ch := newChainWith(t, func(g *api.GenesisState) { g.Attestation.Measurements = []api.HexBytes{m1[:], m2[:]} })
	gk := ch.engine(t, ch.gkDir)
	w1 := ch.engine(t, t.TempDir())
	dir2 := t.TempDir()
	p2, err := platform.NewSim(dir2, code2, quiet())
	if err != nil {
		t.Fatal(err)
	}
	w2, err := New(Config{DataDir: dir2, Genesis: ch.genesis, Endpoint: "http://127.0.0.1:2", Platform: p2, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	aliceS, bobS := ch.c.NewSigner(alice), ch.c.NewSigner(bob)
	for _, w := range []*Engine{gk, w1, w2} {
		register(t, ch, w, bob)
	}
	enactMotion(t, ch, aliceS, bobS, api.Action{Kind: api.ActionRevokeMeasurement, Measurement: m2[:]})
	relay(t, ch, bobS, gk, w1, w2)
	gk.mu.Lock()
	rec2, active := gk.st.workers[w2.Identity()], false
	if rec2 != nil {
		active = gk.attested(rec2, gk.st.dispatched)
	}
	gk.mu.Unlock()
	if rec2 == nil || active {
		t.Fatalf("gatekeeper: revoked worker record %v, active %v", rec2 != nil, active)
	}

	src, err := os.ReadFile(filepath.Join("..", "contracts", "testdata", "counter.wat"))
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := wat.Compile(string(src))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, wasm), Replicas: 2}); err != nil {
		t.Fatal(err)
	}
	rec := waitDeployed(t, ch, bobS, api.UploadID(alice.Public(), sha256.Sum256(wasm), 0), gk, w1, w2)
	if len(rec.Workers) != 1 || rec.Workers[0] != w1.Identity() {
		t.Fatalf("contract granted to %v; want only the allowed worker %s", rec.Workers, w1.Identity())
	}
	relay(t, ch, bobS, gk, w1, w2)
	if _, ok := w2.ContractRoots()[rec.Identity]; ok {
		t.Fatal("the revoked worker runs the contract")
	}
	if _, ok := w1.ContractRoots()[rec.Identity]; !ok {
		t.Fatal("the allowed worker does not run the contract")
	}
}

func waitDeployed(t *testing.T, ch *chain, s *client.Signer, upload [32]byte, es ...*Engine) *api.ContractRecord {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		relay(t, ch, s, es...)
		if v, _, _ := queryRaw(t, ch.c, api.QueryContractUpload, upload[:]); len(v) == crypto.PublicKeySize {
			cv, _, err := queryRaw(t, ch.c, api.QueryContract, v)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := api.DecodeContractRecord(cv)
			if err != nil {
				t.Fatal(err)
			}
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatal("contract not deployed")
		}
	}
}

// Topics are routed exactly: a topic that merely starts like a handled one
// (or is a prefix of it) reaches no handler.
func TestExactTopicRouting(t *testing.T) {
	ch := newChain(t)
	s := ch.c.NewSigner(alice)
	for _, topic := range []string{"app/x", "app/x/y", "app/", "app/xx", "app/x"} {
		if _, err := s.Submit(ctx(t), &api.PostMessage{Topic: topic, Payload: []byte(topic)}); err != nil {
			t.Fatal(err)
		}
	}
	ch.fetch(t)
	e := ch.engine(t, t.TempDir())
	var got []string
	e.Handle("app/x", func(_ *Context, m *api.Message) error {
		got = append(got, string(m.Payload))
		return nil
	})
	syncAll(t, e, ch)
	if fmt.Sprint(got) != "[app/x app/x]" {
		t.Fatalf("handler of app/x got %q", got)
	}
}
