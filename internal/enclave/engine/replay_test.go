package engine

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/sealing"
	"github.com/phalago/phala/internal/testnet"
)

// A captured off-chain query is answered once: its replay is refused by
// the worker it was sent to, by the other replica (it is addressed to the
// first), and by the first after a real restart from its data directory,
// both after a clean stop and after a checkpoint by a sync call. A query
// addressed to no worker (on chain only) is refused off-chain. The same
// for a query session: its open and each of its queries are answered once,
// by the worker it names; a restarted worker knows no session.
func TestQueryReplayRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + contracts")
	}
	ch := newChain(t)
	gk := ch.engine(t, ch.gkDir)
	ws := []*Engine{ch.engine(t, t.TempDir()), ch.engine(t, t.TempDir())}
	bobS, aliceS := ch.c.NewSigner(bob), ch.c.NewSigner(alice)
	for _, e := range []*Engine{gk, ws[0], ws[1]} {
		register(t, ch, e, bob)
	}
	relay(t, ch, bobS, gk, ws[0], ws[1])
	code := contracttest.Build(t, filepath.Join("..", "..", "..", "examples", "contracts", "token"))
	if _, err := aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, code), Replicas: 2}); err != nil {
		t.Fatal(err)
	}
	upload := api.UploadID(alice.Public(), sha256.Sum256(code), 0)
	var rec *api.ContractRecord
	testnet.WaitFor(t, time.Minute, "contract running on both replicas", func() (bool, error) {
		relay(t, ch, bobS, gk, ws[0], ws[1])
		if rec == nil {
			if v, _, _ := queryRaw(t, ch.c, api.QueryContractUpload, upload[:]); len(v) == 32 {
				cv, _, err := queryRaw(t, ch.c, api.QueryContract, v)
				if err != nil {
					return false, err
				}
				if rec, err = api.DecodeContractRecord(cv); err != nil {
					return false, err
				}
			}
		}
		if rec == nil {
			return false, nil
		}
		for _, w := range ws {
			if _, ok := w.ContractRoots()[rec.Identity]; !ok {
				return false, nil
			}
		}
		return true, nil
	})
	if len(rec.Workers) != 2 {
		t.Fatalf("record %+v", rec)
	}
	ask := func(to crypto.PublicKey) *client.PendingQuery {
		p, err := client.NewQuery(bob, rec.Identity, rec.Ecdh, to, []byte("balance"), time.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	refused := func(name string, e *Engine, q *api.ContractQuery) {
		t.Helper()
		if _, err := e.Query(ctx(t), q); !errors.Is(err, ErrBadInput) || !errors.Is(err, contracts.ErrQueryRefused) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	w0, w1 := ws[0], ws[1]
	captured := ask(w0.Identity())
	resp, err := w0.Query(ctx(t), captured.Query)
	if err != nil {
		t.Fatal(err)
	}
	if out, _, err := captured.Open(resp); err != nil || string(out) != "0" {
		t.Fatalf("first answer %q: %v", out, err)
	}
	refused("replay to the same worker", w0, captured.Query)
	refused("replay to the other replica", w1, captured.Query)
	refused("on-chain-only query sent off-chain", w1, ask(crypto.PublicKey{}).Query)
	if _, err := w1.Query(ctx(t), ask(w1.Identity()).Query); err != nil {
		t.Fatalf("a query of its own to the other replica: %v", err)
	}

	// The captured query is off-chain only: the chain refuses it, and a
	// replica refuses it from the queue (where a coalition of validators
	// could put it), emitting nothing.
	if _, err := aliceS.Submit(ctx(t), &api.ContractQueryCall{Query: *captured.Query}); err == nil {
		t.Fatal("the chain took an off-chain query")
	}
	before := len(w1.Egress())
	m := &api.Message{Origin: api.ModuleOrigin("contracts"), Topic: api.TopicContractQuery, Payload: captured.Query.Encode()}
	if err := w1.onChainQuery(&Context{e: w1, Height: w1.Info().Dispatched, Time: time.Unix(0, w1.st.blockTime)}, m); !errors.Is(err, contracts.ErrQueryRefused) || len(w1.Egress()) != before {
		t.Fatalf("off-chain query from the queue: %v", err)
	}

	// A query session with w0: its queries are answered once, by w0 only.
	po, err := client.NewQuerySessionOpen(bob, rec.Identity, w0.Identity(), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w1.OpenQuerySession(ctx(t), po.Open); !errors.Is(err, ErrBadInput) || !errors.Is(err, contracts.ErrQueryRefused) {
		t.Fatalf("session open addressed to the other replica: %v", err)
	}
	acc, err := w0.OpenQuerySession(ctx(t), po.Open)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w0.OpenQuerySession(ctx(t), po.Open); !errors.Is(err, contracts.ErrQueryRefused) {
		t.Fatalf("replayed session open: %v", err)
	}
	sess, err := po.Accept(acc)
	if err != nil {
		t.Fatal(err)
	}
	sq := sess.Seal([]byte("balance"))
	ans, err := w0.SessionQuery(ctx(t), sq)
	if err != nil {
		t.Fatal(err)
	}
	if out, h, err := sess.Open(sq, ans); err != nil || string(out) != "0" || h != w0.Info().Dispatched {
		t.Fatalf("session answer %q at %d: %v", out, h, err)
	}
	sessionRefused := func(name string, e *Engine, q *api.SessionQuery, want error) {
		t.Helper()
		if _, err := e.SessionQuery(ctx(t), q); !errors.Is(err, ErrBadInput) || !errors.Is(err, want) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	sessionRefused("session query replayed", w0, sq, contracts.ErrQueryRefused)
	sessionRefused("session query sent to the other replica", w1, sess.Seal([]byte("balance")), contracts.ErrUnknownSession)
	forged := sess.Seal([]byte("balance"))
	forged.Ciphertext = ans.Ciphertext // the answer reflected
	sessionRefused("session answer reflected as a query", w0, forged, contracts.ErrQueryRefused)

	// Clean stop, restart from the data directory.
	if err := w0.Close(); err != nil {
		t.Fatal(err)
	}
	w0 = ch.engine(t, w0.cfg.DataDir)
	refused("replay after a clean restart", w0, captured.Query)
	sessionRefused("session query replayed after a restart", w0, sq, contracts.ErrUnknownSession)
	if _, err := w0.OpenQuerySession(ctx(t), po.Open); !errors.Is(err, contracts.ErrQueryRefused) {
		t.Fatalf("session open replayed after a restart: %v", err)
	}
	// Answered, then checkpointed by a sync call, then a crash (no Close).
	second := ask(w0.Identity())
	if _, err := w0.Query(ctx(t), second.Query); err != nil {
		t.Fatal(err)
	}
	synced := w0.Info().Synced
	testnet.WaitFor(t, time.Minute, "a checkpointing sync call", func() (bool, error) {
		relay(t, ch, bobS, w0)
		return w0.Info().Synced > synced, nil
	})
	w0 = ch.engine(t, w0.cfg.DataDir)
	refused("replay after a crash", w0, second.Query)
	refused("first replay after two restarts", w0, captured.Query)

	// The worker's checkpoint holds the contract's keys: a copy of its data
	// directory opens on no other chain, and under no other identity.
	other := *ch.genesis
	other.ChainID = "phala-host"
	dir := copyDir(t, w0.cfg.DataDir)
	if _, err := New(Config{DataDir: dir, Genesis: &other, Platform: sim(t, dir), Log: quiet()}); !errors.Is(err, sealing.ErrOtherChain) {
		t.Fatalf("worker data on another chain: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, keys.EntityFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{DataDir: dir, Genesis: ch.genesis, Platform: sim(t, dir), Log: quiet()}); !errors.Is(err, sealing.ErrOtherIdentity) {
		t.Fatalf("worker checkpoint under a new identity: %v", err)
	}
}
