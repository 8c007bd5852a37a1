package app

import (
	"context"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/attestation"
)

type worker struct {
	identity, ecdh *crypto.KeyPair
	info           api.WorkerInfo
}

func newWorker(t *testing.T) *worker {
	id, _, err := crypto.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	ecdh, _, _ := crypto.GenerateKeyPair()
	return &worker{identity: id, ecdh: ecdh, info: api.WorkerInfo{
		ChainID: chainID, IdentityKey: id.Public(), EcdhKey: ecdh.Public(), Endpoint: "http://127.0.0.1:8000", Operator: bob.Public(),
	}}
}

func (h *harness) worker(pk crypto.PublicKey) *api.WorkerRecord {
	res, _ := h.app.Query(context.Background(), &abci.RequestQuery{Path: api.QueryWorker, Data: pk[:]})
	if res.Value == nil {
		return nil
	}
	w, err := api.DecodeWorkerRecord(res.Value)
	if err != nil {
		h.t.Fatal(err)
	}
	return w
}

func TestRegisterWorker(t *testing.T) {
	h := newHarness(t, genesis())
	h.block()
	w := newWorker(t)
	report := attestation.SignSimQuote(devAt, measurement, w.info.ReportData(), h.now)

	otherInfo := w.info
	otherInfo.Endpoint = "http://evil:1"
	wrongChain := w.info
	wrongChain.ChainID = "other"
	forger, _, _ := crypto.GenerateKeyPair()

	for _, tc := range []struct {
		name string
		call *api.RegisterWorker
		code api.Code
	}{
		{"report for other info", &api.RegisterWorker{Info: otherInfo, Report: *report}, api.CodeAttestation},
		{"quote not signed by the dev key", &api.RegisterWorker{Info: w.info, Report: *attestation.SignSimQuote(forger, measurement, w.info.ReportData(), h.now)}, api.CodeAttestation},
		{"measurement not allowed", &api.RegisterWorker{Info: w.info, Report: *attestation.SignSimQuote(devAt, [32]byte{9}, w.info.ReportData(), h.now)}, api.CodeMeasurementNotAllowed},
		{"stale report", &api.RegisterWorker{Info: w.info, Report: *attestation.SignSimQuote(devAt, measurement, w.info.ReportData(), h.now.Add(-time.Hour))}, api.CodeAttestation},
		{"unknown platform", &api.RegisterWorker{Info: w.info, Report: api.AttestationReport{Platform: "sgx-epid", Quote: report.Quote}}, api.CodeAttestation},
		{"garbage quote", &api.RegisterWorker{Info: w.info, Report: api.AttestationReport{Platform: "sim", Quote: []byte{1, 2, 3}}}, api.CodeAttestation},
		{"wrong chain", &api.RegisterWorker{Info: wrongChain, Report: *attestation.SignSimQuote(devAt, measurement, wrongChain.ReportData(), h.now)}, api.CodeInvalidCall},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if res := h.check(h.tx(alice, 0, tc.call)); api.Code(res.Code) != tc.code {
				t.Fatalf("code %s, want %s: %s", api.Code(res.Code), tc.code, res.Log)
			}
		})
	}
	if h.worker(w.identity.Public()) != nil {
		t.Fatal("refused registration left a record")
	}

	res := h.block(h.tx(alice, 0, &api.RegisterWorker{Info: w.info, Report: *report}))
	if res.TxResults[0].Code != 0 {
		t.Fatal(res.TxResults[0].Log)
	}
	rec := h.worker(w.identity.Public())
	if rec == nil || rec.Info != w.info || rec.RegisteredAt != 2 || rec.ExpiresAt != 2+int64(api.DefaultParams().RegistrationLifetime) {
		t.Fatalf("record %+v", rec)
	}
	// The registration is announced in the message queue.
	msgs := h.messages(2)
	if len(msgs.Messages) != 1 || msgs.Messages[0].Origin != api.ModuleOrigin("registry") || msgs.Messages[0].Seq != 0 {
		t.Fatalf("messages %+v", msgs.Messages)
	}

	// Renewal replaces the entry (new endpoint, new expiry).
	w.info.Endpoint = "http://127.0.0.1:9000"
	h.block()
	res = h.block(h.tx(alice, 1, &api.RegisterWorker{Info: w.info, Report: *attestation.SignSimQuote(devAt, measurement, w.info.ReportData(), h.now)}))
	if res.TxResults[0].Code != 0 {
		t.Fatal(res.TxResults[0].Log)
	}
	if rec := h.worker(w.identity.Public()); rec.Info.Endpoint != w.info.Endpoint || rec.RegisteredAt != 4 {
		t.Fatalf("renewal: %+v", rec)
	}
}

func TestSimNotAllowed(t *testing.T) {
	g := genesis()
	g.Attestation.AllowSim = false
	h := newHarness(t, g)
	w := newWorker(t)
	report := attestation.SignSimQuote(devAt, measurement, w.info.ReportData(), h.now)
	if res := h.check(h.tx(alice, 0, &api.RegisterWorker{Info: w.info, Report: *report})); api.Code(res.Code) != api.CodeAttestation {
		t.Fatalf("got %s", res.Log)
	}
}

func (h *harness) messages(height int64) *api.BlockMessages {
	res, _ := h.app.Query(context.Background(), &abci.RequestQuery{Path: api.QueryMessages, Height: height})
	if res.Code != 0 {
		h.t.Fatal(res.Log)
	}
	bm, err := api.DecodeBlockMessages(res.Value)
	if err != nil {
		h.t.Fatal(err)
	}
	return bm
}

// Off-chain origins: only a registered worker's key, only the next sequence.
func TestPushMessage(t *testing.T) {
	h := newHarness(t, genesis())
	w := newWorker(t)
	h.block(h.tx(alice, 0, &api.RegisterWorker{Info: w.info, Report: *attestation.SignSimQuote(devAt, measurement, w.info.ReportData(), h.now)}))
	origin := api.KeyOrigin(api.OriginWorker, w.identity.Public())
	msg := func(seq uint64, key *crypto.KeyPair) *api.PushMessage {
		return &api.PushMessage{Message: api.SignMessage(chainID, api.Message{Origin: origin, Topic: "egress", Seq: seq, Payload: []byte{byte(seq)}}, key)}
	}
	forgedChain := &api.PushMessage{Message: api.SignMessage("other-chain", api.Message{Origin: origin, Topic: "egress", Seq: 0}, w.identity)}
	for _, tc := range []struct {
		name string
		call *api.PushMessage
		code api.Code
	}{
		{"gap", msg(1, w.identity), api.CodeBadSequence},
		{"signed by another key", msg(0, bob), api.CodeBadSignature},
		{"signed for another chain", forgedChain, api.CodeBadSignature},
		{"chain origin pushed", &api.PushMessage{Message: api.SignMessage(chainID, api.Message{Origin: api.ModuleOrigin("registry"), Topic: "x"}, bob)}, api.CodeUnknownOrigin},
		{"empty topic", &api.PushMessage{Message: api.SignMessage(chainID, api.Message{Origin: origin, Topic: ""}, w.identity)}, api.CodeInvalidCall},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if res := h.check(h.tx(bob, 0, tc.call)); api.Code(res.Code) != tc.code {
				t.Fatalf("code %s, want %s: %s", api.Code(res.Code), tc.code, res.Log)
			}
		})
	}
	// Anyone (here Bob, a relayer) may submit the worker's signed messages.
	res := h.block(h.tx(bob, 0, msg(0, w.identity)), h.tx(bob, 1, msg(1, w.identity)), h.tx(bob, 2, msg(1, w.identity)))
	if res.TxResults[0].Code != 0 || res.TxResults[1].Code != 0 || api.Code(res.TxResults[2].Code) != api.CodeAlreadyAccepted {
		t.Fatalf("results %q %q %q", res.TxResults[0].Log, res.TxResults[1].Log, res.TxResults[2].Log)
	}
	bm := h.messages(h.height)
	if len(bm.Messages) != 2 || bm.Messages[0].Seq != 0 || bm.Messages[1].Seq != 1 {
		t.Fatalf("messages %+v", bm.Messages)
	}
}

// The messages of a height, with its state root, hash to the app hash
// returned for that block; a tampered message does not.
func TestMessagesBoundToAppHash(t *testing.T) {
	h := newHarness(t, genesis())
	res := h.block(h.tx(alice, 0, &api.PostMessage{Topic: "a", Payload: []byte("one")}), h.tx(bob, 0, &api.PostMessage{Topic: "b", Payload: []byte("two")}))
	bm := h.messages(1)
	if len(bm.Messages) != 2 || bm.Messages[0].Origin != api.KeyOrigin(api.OriginAccount, alice.Public()) {
		t.Fatalf("messages %+v", bm.Messages)
	}
	if err := bm.Verify(res.AppHash); err != nil {
		t.Fatal(err)
	}
	for name, tamper := range map[string]func(b *api.BlockMessages){
		"payload":   func(b *api.BlockMessages) { b.Messages[0].Payload = []byte("One") },
		"reordered": func(b *api.BlockMessages) { b.Messages[0], b.Messages[1] = b.Messages[1], b.Messages[0] },
		"dropped":   func(b *api.BlockMessages) { b.Messages = b.Messages[1:] },
		"seq":       func(b *api.BlockMessages) { b.Messages[1].Seq = 5 },
		"root":      func(b *api.BlockMessages) { b.StateRoot = append([]byte{1}, b.StateRoot[1:]...) },
	} {
		b, _ := api.DecodeBlockMessages(bm.Encode())
		tamper(b)
		if err := b.Verify(res.AppHash); err == nil {
			t.Errorf("%s tampered: verified", name)
		}
	}
}

// An old registration replayed by anyone cannot roll a renewed worker back.
func TestRegistrationReplayRefused(t *testing.T) {
	h := newHarness(t, genesis())
	h.block()
	w := newWorker(t)
	old := &api.RegisterWorker{Info: w.info, Report: *attestation.SignSimQuote(devAt, measurement, w.info.ReportData(), h.now)}
	if r := h.block(h.tx(alice, 0, old)); r.TxResults[0].Code != 0 {
		t.Fatal(r.TxResults[0].Log)
	}
	rotated, _, _ := crypto.GenerateKeyPair()
	w.info.EcdhKey = rotated.Public()
	renewal := &api.RegisterWorker{Info: w.info, Report: *attestation.SignSimQuote(devAt, measurement, w.info.ReportData(), h.now)}
	if r := h.block(h.tx(alice, 1, renewal)); r.TxResults[0].Code != 0 {
		t.Fatal(r.TxResults[0].Log)
	}
	for name, call := range map[string]*api.RegisterWorker{"old registration": old, "same renewal again": renewal} {
		if r := h.block(h.tx(bob, h.account(bob.Public()).Nonce, call)); api.Code(r.TxResults[0].Code) != api.CodeAttestation {
			t.Fatalf("%s replayed: code %d %s", name, r.TxResults[0].Code, r.TxResults[0].Log)
		}
	}
	if rec := h.worker(w.identity.Public()); rec.Info.EcdhKey != rotated.Public() {
		t.Fatal("worker rolled back")
	}
}

// After a restart CheckTx judges report freshness by the last block's time,
// not the zero time.
func TestCheckTxAfterRestartUsesBlockTime(t *testing.T) {
	h := newHarness(t, genesis())
	h.block()
	h.app.Close()
	h.open()
	w := newWorker(t)
	call := &api.RegisterWorker{Info: w.info, Report: *attestation.SignSimQuote(devAt, measurement, w.info.ReportData(), h.now)}
	if res := h.check(h.tx(alice, 0, call)); res.Code != 0 {
		t.Fatalf("CheckTx after restart: %s", res.Log)
	}
}

func TestReservedTopics(t *testing.T) {
	h := newHarness(t, genesis())
	if res := h.check(h.tx(alice, 0, &api.PostMessage{Topic: "phala/registry/worker", Payload: []byte("fake")})); api.Code(res.Code) != api.CodeInvalidCall {
		t.Fatalf("account posted to a module topic: %s", res.Log)
	}
}
