package engine

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/relayer"
	"github.com/phalago/phala/internal/testnet"
)

// relay brings every engine up to the chain's tip and puts their egress on
// chain (s pays), like pherry does.
func relay(t testing.TB, ch *chain, s *client.Signer, es ...*Engine) {
	t.Helper()
	syncTo(t, ch, es...)
	for _, e := range es {
		for _, m := range e.Egress() {
			v, _, err := queryRaw(t, ch.c, api.QueryNextSeq, m.Message.Origin.Encode())
			if err != nil {
				t.Fatal(err)
			}
			next := uint64(0)
			if len(v) > 0 {
				next, _ = binary.Uvarint(v)
			}
			if m.Message.Seq < next {
				continue
			}
			if _, err := s.Submit(ctx(t), &api.PushMessage{Message: m}); err != nil {
				t.Fatalf("push %s: %v", m.Message.Topic, err)
			}
		}
	}
}

// syncTo brings every engine up to the chain's tip (headers and blocks).
func syncTo(t testing.TB, ch *chain, es ...*Engine) {
	t.Helper()
	top, err := ch.c.Height(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.c.SignedHeader(ctx(t), top+1); err != nil {
		t.Fatal(err)
	}
	f := &relayer.Fetcher{C: ch.c}
	for _, e := range es {
		info := e.Info()
		if info.Synced < top+1 {
			hb, err := f.Headers(ctx(t), info.Synced+1, top+1)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.SyncHeaders(hb); err != nil {
				t.Fatal(err)
			}
		}
		if info.Dispatched < top {
			bb, err := f.Blocks(ctx(t), info.Dispatched+1, top)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.DispatchBlocks(bb); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// register syncs e and registers it on chain with operator op, who signs
// the transaction (the chain accepts register_worker only from the
// operator the report names).
func register(t testing.TB, ch *chain, e *Engine, op *crypto.KeyPair) {
	t.Helper()
	syncTo(t, ch, e)
	reg, err := e.Registration(op.Public())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.c.NewSigner(op).Submit(ctx(t), reg); err != nil {
		t.Fatalf("register %s: %v", e.Identity().Short(), err)
	}
}

func queryRaw(t testing.TB, c *client.Client, path string, data []byte) ([]byte, int64, error) {
	pv, err := c.Prove(ctx(t), path, data)
	if err != nil {
		return nil, 0, err
	}
	return pv.Value, pv.Height, nil
}

func gz(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// Upload → the gatekeeper provisions the key to the worker → commands run
// in chain order on the worker → queries answered off-chain; a replayed
// command payload executes once.
func TestContractLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + contracts")
	}
	ch := newChain(t)
	gk := ch.engine(t, ch.gkDir)
	w := ch.engine(t, t.TempDir())
	bobS := ch.c.NewSigner(bob)
	aliceS := ch.c.NewSigner(alice)
	// Both the worker and the gatekeeper register with attestation; the
	// gatekeeper's grants count only once it has.
	register(t, ch, w, bob)
	register(t, ch, gk, alice)
	relay(t, ch, bobS, gk, w)

	code := contracttest.Build(t, filepath.Join("..", "..", "..", "examples", "contracts", "token"))
	// A large (public) init input: cached beside the code, not in the
	// sealed checkpoint every sync call rewrites.
	initInput := bytes.Repeat([]byte("init "), 200_000)
	if _, err := aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, code), Replicas: 1, InitInput: initInput}); err != nil {
		t.Fatal(err)
	}
	upload := api.UploadID(alice.Public(), sha256.Sum256(code), 0)
	var rec *api.ContractRecord
	deadline := time.Now().Add(60 * time.Second)
	for rec == nil {
		relay(t, ch, bobS, gk, w)
		if v, _, _ := queryRaw(t, ch.c, api.QueryContractUpload, upload[:]); len(v) == 32 {
			cv, _, err := queryRaw(t, ch.c, api.QueryContract, v)
			if err != nil {
				t.Fatal(err)
			}
			if rec, err = api.DecodeContractRecord(cv); err != nil {
				t.Fatal(err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("contract not deployed")
		}
	}
	if len(rec.Workers) != 1 || rec.Workers[0] != w.Identity() || rec.Deployer != alice.Public() {
		t.Fatalf("record %+v", rec)
	}
	relay(t, ch, bobS, gk, w)
	for _, e := range []*Engine{gk, w} {
		st, err := os.Stat(filepath.Join(e.cfg.DataDir, StateFile))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 64<<10 {
			t.Fatalf("checkpoint core of %d bytes with a %d-byte init input", st.Size(), len(initInput))
		}
	}
	if _, ok := w.ContractRoots()[rec.Identity]; !ok {
		t.Fatal("worker does not run the contract")
	}

	// Alice (the deployer, owner) mints to Bob through an encrypted command.
	command := func(from *client.Signer, nonce uint64, input string) *api.ContractCommand {
		chn, err := channel.New(from.Key(), rec.Ecdh, api.ChannelPurposeCommand)
		if err != nil {
			t.Fatal(err)
		}
		return &api.ContractCommand{Contract: rec.Identity, Nonce: nonce, GasLimit: testGas, Sealed: chn.Seal(api.Pad([]byte(input)), api.CommandAD(rec.Identity, from.Key().Public(), nonce))}
	}
	mint := command(aliceS, 1, "mint "+bob.Public().Hex()+" 77")
	if _, err := aliceS.Submit(ctx(t), mint); err != nil {
		t.Fatal(err)
	}
	// The same payload again (a new transaction, same command nonce).
	if _, err := aliceS.Submit(ctx(t), mint); err != nil {
		t.Fatal(err)
	}
	relay(t, ch, bobS, gk, w)

	p, err := client.NewQuery(bob, rec.Identity, rec.Ecdh, rec.Workers[0], []byte("balance"), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := w.Query(ctx(t), p.Query)
	if err != nil {
		t.Fatal(err)
	}
	out, h, err := p.Open(resp)
	if err != nil || string(out) != "77" {
		t.Fatalf("bob's balance: %q at %d: %v (the replayed mint must not count twice)", out, h, err)
	}
	// The counters (metrics) saw one command run, one replay rejected, one
	// query answered; gas was used; nothing in them names a caller.
	st := w.Stats()
	if st.Commands[ResultOK] != 1 || st.Commands[ResultRejected] != 1 || st.Queries[ResultOK] != 1 || st.QueryCount != 1 ||
		st.GasUsed == 0 || st.ContractsRunning != 1 || st.Dispatched != w.Info().Dispatched || st.Checkpoints == 0 || st.CheckpointBytes == 0 {
		t.Fatalf("worker stats %+v", st)
	}
	if _, err := w.Query(ctx(t), p.Query); err == nil {
		t.Fatal("replayed query answered")
	}
	if st := w.Stats(); st.Queries[ResultRefused] != 1 || st.QueryCount != 2 {
		t.Fatalf("refused query not counted: %+v", st.Queries)
	}
	// The chain stored only ciphertext: "77" and "mint" are nowhere in the
	// command messages.
	if bytes.Contains(mint.Sealed, []byte("mint")) {
		t.Fatal("command in plaintext")
	}

	// Restart the worker: the contract comes back from its sealed checkpoint.
	root := w.ContractRoots()[rec.Identity]
	w2 := ch.engine(t, w.cfg.DataDir)
	if w2.ContractRoots()[rec.Identity] != root {
		t.Fatal("contract state lost across restart")
	}
	// The code cache is outside the enclave: altered code is refused.
	codeFile := w.codePath(rec.CodeHash)
	orig, _ := os.ReadFile(codeFile)
	os.WriteFile(codeFile, append(orig, 0), 0o600)
	if _, err := New(Config{DataDir: w.cfg.DataDir, Genesis: ch.genesis, Platform: sim(t, w.cfg.DataDir), Log: quiet()}); err == nil || !strings.Contains(err.Error(), "altered") {
		t.Fatalf("altered contract code: %v", err)
	}
}

// End to end: the genesis gatekeeper's pRuntime, named in the genesis but
// never registered, derives and emits a contract key grant for an upload;
// the chain refuses to take it (no attested registration), so the contract
// is not deployed and the worker runs nothing. Once the gatekeeper has
// registered with attestation, the same grant is accepted and the worker
// starts the contract.
func TestUnattestedGatekeeperCannotGrant(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + contracts")
	}
	ch := newChain(t)
	gk := ch.engine(t, ch.gkDir)
	w := ch.engine(t, t.TempDir())
	register(t, ch, w, bob)
	aliceS, bobS := ch.c.NewSigner(alice), ch.c.NewSigner(bob)
	code := contracttest.Build(t, filepath.Join("..", "..", "..", "examples", "contracts", "token"))
	if _, err := aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, code), Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	upload := api.UploadID(alice.Public(), sha256.Sum256(code), 0)
	syncTo(t, ch, gk, w)
	// No key set exists before the gatekeeper's attested announcement:
	// it sends no partials, and its messages are refused anyway.
	if eg := gk.Egress(); len(eg) != 0 {
		t.Fatalf("gatekeeper egress %+v, want none (no announcement, no partials)", eg)
	}
	p := &api.KeyPartials{Upload: upload, MemberE: gk.entity.Ecdh.Public(), Workers: []api.SealedKey{{Worker: w.Identity(), Sealed: []byte("x")}}}
	m := api.SignMessage(gk.chainID, api.Message{Origin: api.KeyOrigin(api.OriginWorker, gk.Identity()), Topic: api.TopicKeyPartials, Payload: p.Encode()}, gk.entity.Identity)
	_, err := bobS.Submit(ctx(t), &api.PushMessage{Message: m})
	var refused *api.TxError
	if !errors.As(err, &refused) || refused.Code != api.CodeUnknownOrigin {
		t.Fatalf("partials of an unregistered gatekeeper: %v", err)
	}
	syncTo(t, ch, gk, w)
	if v, _, _ := queryRaw(t, ch.c, api.QueryContractUpload, upload[:]); v != nil || len(w.ContractRoots()) != 0 {
		t.Fatal("contract deployed from an unattested gatekeeper's grant")
	}

	register(t, ch, gk, alice)
	testnet.WaitFor(t, time.Minute, "contract running on the worker", func() (bool, error) {
		relay(t, ch, bobS, gk, w)
		return len(w.ContractRoots()) == 1, nil
	})
}
