package engine

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/attestation"
	"github.com/phalago/phala/internal/enclave/gatekeeper"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/lightclient"
	"github.com/phalago/phala/internal/testnet"
)

// Whoever holds 2/3 of the voting power can put any registry message in a
// block it signs. pRuntime stores a registration (and so shares the
// MasterKey with it or grants it a contract key) only when it verified the
// attestation report behind it itself: signed by the platform (for sim:
// the genesis development key, and only where the genesis allows sim),
// over this record's WorkerInfo, with an allowed measurement, fresh by the
// verified block time, citing a block this pRuntime verified. The
// coalition's key sits outside any enclave, so it can produce none of
// these for its own key (on TDX; with sim allowed the development key is
// public and nothing helps, see docs/pruntime.md).
//
// The handler is called directly with the message a coalition could put in
// a block. Each forged registration is tried twice: under the identity of a
// genesis gatekeeper with the coalition's ECDH key (it would receive the
// MasterKey) and as a worker of the coalition's own identity (it would
// receive contract keys).
func TestForgedRegistrationGetsNoKey(t *testing.T) {
	ch := newChain(t)
	dirs := []string{t.TempDir(), t.TempDir()}
	var ids []crypto.PublicKey
	for _, d := range dirs {
		e, err := keys.CreatePreGenesisEntity(sim(t, d), d)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.Identity.Public())
	}
	gs, err := api.DecodeGenesisState(ch.genesis.AppState)
	if err != nil {
		t.Fatal(err)
	}
	gs.Gatekeepers = ids
	doc := *ch.genesis
	if doc.AppState, err = json.Marshal(gs); err != nil {
		t.Fatal(err)
	}
	first := (&chain{genesis: &doc}).engine(t, dirs[0])
	if !holdsMaster(first) {
		t.Fatal("genesis gatekeeper without a MasterKey")
	}

	const height, cited = 10, 5
	// A block time far from the host clock: freshness is judged by it.
	blockTime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	citedHash := [api.BlockHashSize]byte{0xb5, 31: 1}
	first.st.blockHashes[cited] = citedHash
	allowed := [32]byte(sha256.Sum256(code))
	dev := crypto.MustKeyPairFromURI(api.DevAttestationURI)
	coalition := crypto.MustKeyPairFromURI("//Coalition").Public()
	coalitionEcdh := crypto.MustKeyPairFromURI("//CoalitionEcdh").Public()
	adoptGenesisKeySet(first, ids, masterOf(first))
	upload := gatekeeper.Upload{Deployer: alice.Public(), CodeHash: allowed, Replicas: 5}
	upload.ID = api.UploadID(upload.Deployer, upload.CodeHash, upload.Seq)

	type forge struct {
		chainID     string
		signer      *crypto.KeyPair
		measurement [32]byte
		recMeas     []byte // the record's measurement, if not the report's
		otherInfo   bool   // the report commits to another WorkerInfo
		block       int64
		hash        [api.BlockHashSize]byte
		issuedAt    time.Time
		noSim       bool // the genesis does not allow sim
	}
	honest := forge{chainID: first.chainID, signer: dev, measurement: allowed, block: cited, hash: citedHash, issuedAt: blockTime}
	message := func(f forge, id, ecdh crypto.PublicKey) *api.Message {
		info := api.WorkerInfo{ChainID: f.chainID, IdentityKey: id, EcdhKey: ecdh, Endpoint: "http://x", Operator: bob.Public(), BlockHeight: f.block, BlockHash: f.hash}
		quoted := info
		if f.otherInfo {
			// A genuine report of the real pRuntime, reused with
			// another ECDH key.
			quoted.EcdhKey = ids[1]
		}
		rep := attestation.SignSimQuote(f.signer, f.measurement, quoted.ReportData(), f.issuedAt)
		meas := f.recMeas
		if meas == nil {
			meas = f.measurement[:]
		}
		rec := api.WorkerRecord{Info: info, Platform: api.PlatformSim, Measurement: meas, RegisteredAt: height, ExpiresAt: 1000, AttestedAt: f.issuedAt.Unix()}
		return &api.Message{Origin: api.ModuleOrigin("registry"), Topic: api.TopicWorkerRegistered, Payload: (&api.WorkerRegistered{Record: rec, Report: *rep}).Encode()}
	}
	otherBlock := honest
	otherBlock.block = cited + 1 // never verified
	forkBlock := honest
	forkBlock.hash = [api.BlockHashSize]byte{0xf0}
	future := honest
	future.block, future.hash = height, [api.BlockHashSize]byte{}
	stale := honest
	stale.issuedAt = blockTime.Add(-time.Duration(gs.Attestation.MaxReportAgeSeconds+60) * time.Second)
	otherSigner, otherData, notAllowed, lies, otherChain, noSim := honest, honest, honest, honest, honest, honest
	otherSigner.signer = crypto.MustKeyPairFromURI("//NotTheDevKey")
	otherData.otherInfo = true
	notAllowed.measurement = [32]byte{9}
	lies.measurement, lies.recMeas = [32]byte{9}, allowed[:]
	otherChain.chainID = "another-chain"
	noSim.noSim = true

	for _, tc := range []struct {
		name   string
		f      forge
		reason string // "" for the honest registration
	}{
		{"signed by a key other than the development key", otherSigner, "not signed by the development attestation key"},
		{"report data of other worker info", otherData, "does not commit to the registered worker info"},
		{"measurement not allowed", notAllowed, "not allowed"},
		{"record states an allowed measurement the report does not prove", lies, "not allowed"},
		{"cites a block this pRuntime never verified", otherBlock, "not a recent block this pRuntime verified"},
		{"cites a block of another fork", forkBlock, "another chain or fork"},
		{"cites its own block", future, "not below the registration's block"},
		{"report too old for the verified block time", stale, "away from block time"},
		{"worker info of another chain", otherChain, "is for chain"},
		{"sim report where the genesis does not allow sim", noSim, "does not accept sim"},
		{"honest registration", honest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first.genState.Attestation.AllowSim = !tc.f.noSim
			t.Cleanup(func() { first.genState.Attestation.AllowSim = true })
			c := &Context{e: first, Height: height, Time: blockTime}
			for _, as := range []struct {
				role     string
				id, ecdh crypto.PublicKey
			}{{"gatekeeper identity", ids[1], coalitionEcdh}, {"worker", coalition, coalitionEcdh}} {
				first.st.workers = map[crypto.PublicKey]*api.WorkerRecord{}
				first.st.egress = nil
				err := first.onWorkerRegistered(c, message(tc.f, as.id, as.ecdh))
				_, stored := first.st.workers[as.id]
				if tc.reason == "" {
					if err != nil || !stored {
						t.Fatalf("%s: honest registration refused: %v", as.role, err)
					}
				} else if stored || !errors.Is(err, ErrNotAttested) || !strings.Contains(err.Error(), tc.reason) {
					t.Fatalf("%s: stored %v, err %v (want %q)", as.role, stored, err, tc.reason)
				}
				// The MasterKey goes only to an attested gatekeeper.
				shared := false
				for _, m := range first.st.egress {
					shared = shared || m.Message.Topic == api.TopicMasterKeyShare
				}
				if want := tc.reason == "" && as.id == ids[1]; shared != want {
					t.Fatalf("%s: master key shared %v, want %v", as.role, shared, want)
				}
				// Contract keys go only to attested workers.
				first.st.egress = nil
				first.gk.Grant(c.Height, upload)
				granted := false
				for _, m := range first.st.egress {
					p, err := api.DecodeKeyPartials(m.Message.Payload)
					if err != nil {
						t.Fatal(err)
					}
					for _, w := range p.Workers {
						granted = granted || w.Worker == coalition
					}
				}
				if want := tc.reason == "" && as.id == coalition; granted != want {
					t.Fatalf("%s: contract key granted %v, want %v", as.role, granted, want)
				}
			}
		})
	}
}

// A forged renewal leaves the registration pRuntime verified before as it
// was (it is not replaced by the record the coalition put in the block).
func TestForgedRenewalKeepsVerifiedRecord(t *testing.T) {
	ch := newChain(t)
	e := ch.engine(t, ch.gkDir)
	const height = 10
	blockTime := time.Unix(1_000_000_000, 0).UTC()
	hash := [api.BlockHashSize]byte{1}
	e.st.blockHashes[5] = hash
	id := crypto.MustKeyPairFromURI("//W").Public()
	info := api.WorkerInfo{ChainID: e.chainID, IdentityKey: id, EcdhKey: id, Operator: bob.Public(), BlockHeight: 5, BlockHash: hash}
	m := [32]byte(sha256.Sum256(code))
	msg := func(info api.WorkerInfo, signer *crypto.KeyPair) *api.Message {
		rep := attestation.SignSimQuote(signer, m, info.ReportData(), blockTime)
		rec := api.WorkerRecord{Info: info, Platform: api.PlatformSim, Measurement: m[:], ExpiresAt: 1000, AttestedAt: blockTime.Unix()}
		return &api.Message{Origin: api.ModuleOrigin("registry"), Topic: api.TopicWorkerRegistered, Payload: (&api.WorkerRegistered{Record: rec, Report: *rep}).Encode()}
	}
	c := &Context{e: e, Height: height, Time: blockTime}
	if err := e.onWorkerRegistered(c, msg(info, crypto.MustKeyPairFromURI(api.DevAttestationURI))); err != nil {
		t.Fatal(err)
	}
	forged := info
	forged.EcdhKey = crypto.MustKeyPairFromURI("//Coalition").Public()
	if err := e.onWorkerRegistered(c, msg(forged, crypto.MustKeyPairFromURI("//Coalition"))); !errors.Is(err, ErrNotAttested) {
		t.Fatalf("forged renewal: %v", err)
	}
	if got := e.st.workers[id]; got == nil || got.Info.EcdhKey != id {
		t.Fatalf("verified record replaced: %+v", got)
	}
	// A bare WorkerRecord (the old payload) does not decode.
	rec := api.WorkerRecord{Info: forged, Platform: api.PlatformSim, Measurement: m[:], ExpiresAt: 1000}
	if err := e.onWorkerRegistered(c, &api.Message{Origin: api.ModuleOrigin("registry"), Payload: rec.Encode()}); !errors.Is(err, api.ErrMalformed) {
		t.Fatalf("bare record: %v", err)
	}
}

// pRuntime keeps the hash of every verified block a registration may cite
// (block h's hash from header h+1's LastBlockID), and no more than
// attestation_window of them behind the last dispatched block; governance
// changes the window (TopicGovParams).
func TestBlockHashesFollowVerifiedHeaders(t *testing.T) {
	const window = 3
	ch := newChainWith(t, func(g *api.GenesisState) { g.Params.AttestationWindow = window })
	testnet.WaitFor(t, time.Minute, "a few blocks", func() (bool, error) {
		h, err := ch.c.Height(ctx(t))
		return h >= window+3, err
	})
	top := ch.fetch(t)
	e := ch.engine(t, t.TempDir())
	syncAll(t, e, ch)
	for _, h := range ch.headers.Headers {
		sh, _, err := lightclient.DecodeHeader(h.SignedHeader, h.Validators)
		if err != nil {
			t.Fatal(err)
		}
		b := sh.Height - 1
		got, ok := e.st.blockHashes[b]
		if want := b > top-window && b >= 1; ok != want || (ok && string(got[:]) != string(sh.LastBlockID.Hash)) {
			t.Fatalf("block %d: kept %v (%X), want kept %v (%X)", b, ok, got, want, sh.LastBlockID.Hash)
		}
	}
	if len(e.st.blockHashes) != window {
		t.Fatalf("%d hashes kept, want %d", len(e.st.blockHashes), window)
	}
	// It survives the checkpoint.
	again := ch.engine(t, e.cfg.DataDir)
	if again.st.root() != e.st.root() || len(again.st.blockHashes) != window {
		t.Fatal("block hashes not checkpointed")
	}

	// Governance sets the window; only governance can.
	p := gsParams(t, ch)
	p.AttestationWindow = 50
	gov := &api.Message{Origin: api.ModuleOrigin(governanceModule), Topic: api.TopicGovParams, Payload: p.Encode()}
	if err := e.onParams(nil, gov); err != nil || e.st.params.AttestationWindow != 50 {
		t.Fatalf("window %d, err %v", e.st.params.AttestationWindow, err)
	}
	p.AttestationWindow = 0
	for name, m := range map[string]*api.Message{
		"not governance": {Origin: api.ModuleOrigin("registry"), Payload: gov.Payload},
		"invalid params": {Origin: gov.Origin, Payload: p.Encode()},
		"garbage":        {Origin: gov.Origin, Payload: []byte{1}},
	} {
		if err := e.onParams(nil, m); err == nil || e.st.params.AttestationWindow != 50 {
			t.Fatalf("%s: window %d, err %v", name, e.st.params.AttestationWindow, err)
		}
	}
}

func gsParams(t *testing.T, ch *chain) api.Params {
	gs, err := api.DecodeGenesisState(ch.genesis.AppState)
	if err != nil {
		t.Fatal(err)
	}
	return gs.Params
}
