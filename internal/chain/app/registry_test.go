package app

import (
	"context"
	"strings"
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

// newWorker is a pRuntime's keys with info naming Bob as operator.
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

// cite returns info citing the last committed block, as a pRuntime does.
func (h *harness) cite(info api.WorkerInfo) api.WorkerInfo {
	info.BlockHeight, info.BlockHash = h.height, blockHash(h.height)
	return info
}

// register is a register_worker call for info with a valid sim report.
func (h *harness) register(info api.WorkerInfo) *api.RegisterWorker {
	return &api.RegisterWorker{Info: info, Report: *attestation.SignSimQuote(devAt, measurement, info.ReportData(), h.now)}
}

// nonce is the next nonce of key's account.
func (h *harness) nonce(key *crypto.KeyPair) uint64 { return h.account(key.Public()).Nonce }

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

// mustRefuse checks that CheckTx refuses tx with code and a log saying msg.
func (h *harness) mustRefuse(tx []byte, code api.Code, msg string) {
	h.t.Helper()
	res := h.check(tx)
	if api.Code(res.Code) != code || !strings.Contains(res.Log, msg) {
		h.t.Fatalf("code %s %q, want %s saying %q", api.Code(res.Code), res.Log, code, msg)
	}
}

func TestRegisterWorker(t *testing.T) {
	h := newHarness(t, genesis())
	h.block()
	w := newWorker(t)
	w.info = h.cite(w.info)
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
		{"wrong chain", h.register(wrongChain), api.CodeInvalidCall},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if res := h.check(h.tx(bob, 0, tc.call)); api.Code(res.Code) != tc.code {
				t.Fatalf("code %s, want %s: %s", api.Code(res.Code), tc.code, res.Log)
			}
		})
	}
	if h.worker(w.identity.Public()) != nil {
		t.Fatal("refused registration left a record")
	}

	res := h.block(h.tx(bob, 0, &api.RegisterWorker{Info: w.info, Report: *report}))
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
	// It carries the report that admitted the record, so every pRuntime
	// verifies it itself.
	announced, err := api.DecodeWorkerRegistered(msgs.Messages[0].Payload)
	if err != nil || announced.Record.Info != w.info || string(announced.Report.Quote) != string(report.Quote) || msgs.Messages[0].Topic != api.TopicWorkerRegistered {
		t.Fatalf("announcement %+v %v", announced, err)
	}

	// Renewal replaces the entry (new endpoint, new expiry).
	w.info.Endpoint = "http://127.0.0.1:9000"
	h.block()
	w.info = h.cite(w.info)
	res = h.block(h.tx(bob, 1, h.register(w.info)))
	if res.TxResults[0].Code != 0 {
		t.Fatal(res.TxResults[0].Log)
	}
	if rec := h.worker(w.identity.Public()); rec.Info.Endpoint != w.info.Endpoint || rec.RegisteredAt != 4 {
		t.Fatalf("renewal: %+v", rec)
	}
}

// register_worker is accepted only from the worker's operator, and nobody
// re-registers someone else's active worker, even with a valid report that
// names himself: the call is refused with a clear error and the record does
// not change. Once the registration expired, the worker's host may register
// it under another operator.
func TestRegistrationOperatorAuthenticated(t *testing.T) {
	g := genesis()
	g.Params.RegistrationLifetime = 5
	h := newHarness(t, g)
	h.block()
	w := newWorker(t) // operator: Bob
	w.info = h.cite(w.info)
	call := h.register(w.info)
	h.mustRefuse(h.tx(alice, 0, call), api.CodeInvalidCall, "must be signed by the worker's operator")
	if r := h.block(h.tx(alice, 0, call)); api.Code(r.TxResults[0].Code) != api.CodeInvalidCall || h.worker(w.identity.Public()) != nil {
		t.Fatalf("stranger's registration in a block: %s", r.TxResults[0].Log)
	}
	if r := h.block(h.tx(bob, h.nonce(bob), call)); r.TxResults[0].Code != 0 {
		t.Fatal(r.TxResults[0].Log)
	}
	before := h.worker(w.identity.Public())

	// Alice re-registers Bob's worker: Bob's own call signed by her, and a
	// call naming her as operator (with a valid report over it).
	h.mustRefuse(h.tx(alice, h.nonce(alice), h.register(h.cite(w.info))), api.CodeInvalidCall, "must be signed by the worker's operator")
	stolen := h.cite(w.info)
	stolen.Operator = alice.Public()
	h.mustRefuse(h.tx(alice, h.nonce(alice), h.register(stolen)), api.CodeInvalidCall, "only that operator can renew it")
	r := h.block(h.tx(alice, h.nonce(alice), h.register(stolen)))
	if api.Code(r.TxResults[0].Code) != api.CodeInvalidCall {
		t.Fatalf("stranger's re-registration in a block: %s", r.TxResults[0].Log)
	}
	if after := h.worker(w.identity.Public()); string(after.Encode()) != string(before.Encode()) {
		t.Fatalf("refused re-registration changed the record: %+v", after)
	}

	// Expired: the host registers its worker under a new operator.
	for h.worker(w.identity.Public()).Active(h.height + 1) {
		h.block()
	}
	moved := h.cite(w.info)
	moved.Operator = alice.Public()
	if r := h.block(h.tx(alice, h.nonce(alice), h.register(moved))); r.TxResults[0].Code != 0 {
		t.Fatalf("registration of an expired worker under a new operator: %s", r.TxResults[0].Log)
	}
	if rec := h.worker(w.identity.Public()); rec.Info.Operator != alice.Public() {
		t.Fatalf("record %+v", rec)
	}
}

// A report commits to a recent block of this chain: one citing a block
// outside the attestation window, a block not yet final, a block the chain
// does not know, or a known height with another hash is refused. The chain
// keeps exactly the hashes of the window.
func TestRegistrationFreshness(t *testing.T) {
	const window = 3
	g := genesis()
	g.Params.AttestationWindow = window
	h := newHarness(t, g)
	w := newWorker(t)
	unknown := w.info // height 0: no block has it
	h.mustRefuse(h.tx(bob, 0, h.register(unknown)), api.CodeAttestation, "does not know")
	for range 10 {
		h.block()
	}
	at := func(height int64, hash [32]byte) api.WorkerInfo {
		i := w.info
		i.BlockHeight, i.BlockHash = height, hash
		return i
	}
	forged := blockHash(h.height)
	forged[0] ^= 1
	nonce := uint64(0)
	for _, tc := range []struct {
		name string
		info api.WorkerInfo
		msg  string // "" when accepted
	}{
		{"oldest block of the window", at(h.height+1-window, blockHash(h.height+1-window)), ""},
		{"last block", h.cite(w.info), ""},
		{"one block too old", at(h.height-window, blockHash(h.height-window)), "request a fresh report"},
		{"very old", at(1, blockHash(1)), "request a fresh report"},
		{"forged hash", at(h.height, forged), "another chain or fork"},
		{"hash of another height", at(h.height, blockHash(h.height-1)), "another chain or fork"},
		{"block not final", at(h.height+1, blockHash(h.height+1)), "not below the current height"},
		{"far future", at(1<<40, blockHash(1<<40)), "not below the current height"},
	} {
		tx := h.tx(bob, nonce, h.register(tc.info))
		res := h.check(tx)
		if tc.msg == "" {
			if res.Code != 0 {
				t.Fatalf("%s: %s", tc.name, res.Log)
			}
			nonce++ // CheckTx admitted it
			continue
		}
		if api.Code(res.Code) != api.CodeAttestation || !strings.Contains(res.Log, tc.msg) {
			t.Errorf("%s: code %s %q, want %q", tc.name, api.Code(res.Code), res.Log, tc.msg)
		}
	}
	// A report that was fresh when made is refused once it is too old.
	old := h.register(h.cite(w.info))
	for range window {
		h.block()
	}
	r := h.block(h.tx(bob, 0, old))
	if api.Code(r.TxResults[0].Code) != api.CodeAttestation || !strings.Contains(r.TxResults[0].Log, "fresh report") || h.worker(w.identity.Public()) != nil {
		t.Fatalf("old report: %s", r.TxResults[0].Log)
	}
	// The state holds the hashes of the last `window` blocks, no older ones.
	snap, err := h.app.store.Snapshot(h.height)
	if err != nil {
		t.Fatal(err)
	}
	for height := int64(0); height <= h.height; height++ {
		got := snap.Get(api.BlockHashKey(height))
		want := blockHash(height)
		if keep := height > h.height-window; keep != (got != nil) || (keep && string(got) != string(want[:])) {
			t.Errorf("block %d (tip %d): stored hash %x", height, h.height, got)
		}
	}
}

// An old registration replayed by anyone (even its operator) cannot roll a
// renewed worker back: a renewal must cite a newer block.
func TestRegistrationReplayRefused(t *testing.T) {
	h := newHarness(t, genesis())
	h.block()
	w := newWorker(t)
	old := h.register(h.cite(w.info))
	if r := h.block(h.tx(bob, 0, old)); r.TxResults[0].Code != 0 {
		t.Fatal(r.TxResults[0].Log)
	}
	rotated, _, _ := crypto.GenerateKeyPair()
	w.info.EcdhKey = rotated.Public()
	renewal := h.register(h.cite(w.info))
	if r := h.block(h.tx(bob, 1, renewal)); r.TxResults[0].Code != 0 {
		t.Fatal(r.TxResults[0].Log)
	}
	sameBlock := renewal.Info
	sameBlock.Endpoint = "http://127.0.0.1:9999"
	for name, call := range map[string]*api.RegisterWorker{"old registration": old, "same renewal again": renewal, "renewal citing the same block": h.register(sameBlock)} {
		if r := h.block(h.tx(bob, h.nonce(bob), call)); api.Code(r.TxResults[0].Code) != api.CodeAttestation || !strings.Contains(r.TxResults[0].Log, "newer block") {
			t.Fatalf("%s replayed: code %d %s", name, r.TxResults[0].Code, r.TxResults[0].Log)
		}
	}
	if rec := h.worker(w.identity.Public()); rec.Info.EcdhKey != rotated.Public() || rec.Info.Endpoint != w.info.Endpoint {
		t.Fatal("worker rolled back")
	}
}

// A gatekeeper named in the genesis is not trusted until its pRuntime has
// registered with an attested report: the chain refuses its master key
// announcement and its other messages (a master key share); once
// registered they are accepted; a
// registered worker not on the gatekeeper list cannot speak as one, and an
// expired gatekeeper registration is refused again.
func TestGatekeeperMustBeAttested(t *testing.T) {
	gk := newWorker(t)
	g := genesis()
	g.Gatekeepers = []crypto.PublicKey{gk.identity.Public()}
	g.Params.RegistrationLifetime = 20
	h := newHarness(t, g)
	h.block()
	mkPub := masterPoint()
	announce := func(seq uint64) *api.PushMessage {
		return &api.PushMessage{Message: api.SignMessage(chainID, api.Message{Origin: api.KeyOrigin(api.OriginGatekeeper, gk.identity.Public()), Topic: api.TopicMasterKey, Seq: seq, Payload: mkPub[:]}, gk.identity)}
	}
	share := &api.PushMessage{Message: api.SignMessage(chainID, api.Message{Origin: api.KeyOrigin(api.OriginGatekeeper, gk.identity.Public()), Topic: api.TopicMasterKeyShare, Payload: []byte("share")}, gk.identity)}
	h.mustRefuse(h.tx(alice, 0, announce(0)), api.CodeUnknownOrigin, "no attested registration")
	h.mustRefuse(h.tx(alice, 0, share), api.CodeUnknownOrigin, "no attested registration")
	if r := h.block(h.tx(alice, 0, announce(0))); api.Code(r.TxResults[0].Code) != api.CodeUnknownOrigin {
		t.Fatalf("announcement of an unattested gatekeeper in a block: %s", r.TxResults[0].Log)
	}
	masterKey := func() []byte {
		res, _ := h.app.Query(context.Background(), &abci.RequestQuery{Path: api.QueryMasterKey})
		return res.Value
	}
	if masterKey() != nil {
		t.Fatal("master key published by an unattested gatekeeper")
	}

	// A registered worker that is not a gatekeeper cannot speak as one.
	w := newWorker(t)
	if r := h.block(h.tx(bob, 0, h.register(h.cite(w.info)))); r.TxResults[0].Code != 0 {
		t.Fatal(r.TxResults[0].Log)
	}
	asGK := &api.PushMessage{Message: api.SignMessage(chainID, api.Message{Origin: api.KeyOrigin(api.OriginGatekeeper, w.identity.Public()), Topic: api.TopicMasterKey, Payload: mkPub[:]}, w.identity)}
	h.mustRefuse(h.tx(alice, h.nonce(alice), asGK), api.CodeUnknownOrigin, "not a gatekeeper")

	// Registered: its announcement counts.
	if r := h.block(h.tx(bob, h.nonce(bob), h.register(h.cite(gk.info)))); r.TxResults[0].Code != 0 {
		t.Fatal(r.TxResults[0].Log)
	}
	if r := h.block(h.tx(alice, h.nonce(alice), announce(0))); r.TxResults[0].Code != 0 {
		t.Fatal(r.TxResults[0].Log)
	}
	if string(masterKey()) != string(mkPub[:]) {
		t.Fatalf("master key %x, want %x", masterKey(), mkPub)
	}
	// Expired: refused again.
	for h.worker(gk.identity.Public()).Active(h.height + 1) {
		h.block()
	}
	h.mustRefuse(h.tx(alice, h.nonce(alice), announce(1)), api.CodeUnknownOrigin, "expired")
}

func TestSimNotAllowed(t *testing.T) {
	g := genesis()
	g.Attestation.AllowSim = false
	h := newHarness(t, g)
	h.block()
	w := newWorker(t)
	if res := h.check(h.tx(bob, 0, h.register(h.cite(w.info)))); api.Code(res.Code) != api.CodeAttestation {
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
	h.block()
	w := newWorker(t)
	h.block(h.tx(bob, 0, h.register(h.cite(w.info))))
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
			if res := h.check(h.tx(bob, 1, tc.call)); api.Code(res.Code) != tc.code {
				t.Fatalf("code %s, want %s: %s", api.Code(res.Code), tc.code, res.Log)
			}
		})
	}
	// Anyone (here Bob, a relayer) may submit the worker's signed messages.
	res := h.block(h.tx(bob, 1, msg(0, w.identity)), h.tx(bob, 2, msg(1, w.identity)), h.tx(bob, 3, msg(1, w.identity)))
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

// After a restart CheckTx judges report freshness by the last block's time,
// not the zero time.
func TestCheckTxAfterRestartUsesBlockTime(t *testing.T) {
	h := newHarness(t, genesis())
	h.block()
	h.app.Close()
	h.open()
	w := newWorker(t)
	if res := h.check(h.tx(bob, 0, h.register(h.cite(w.info)))); res.Code != 0 {
		t.Fatalf("CheckTx after restart: %s", res.Log)
	}
}

func TestReservedTopics(t *testing.T) {
	h := newHarness(t, genesis())
	if res := h.check(h.tx(alice, 0, &api.PostMessage{Topic: "phala/registry/worker", Payload: []byte("fake")})); api.Code(res.Code) != api.CodeInvalidCall {
		t.Fatalf("account posted to a module topic: %s", res.Log)
	}
}
