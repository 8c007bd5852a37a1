package app

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/contracts"
)

// rounds is the number of rounds of partials the chain keeps.
func (h *harness) rounds() int {
	n := 0
	h.app.store.Iterate([]byte("kr/"), func(_, _ []byte) bool { n++; return true })
	return n
}

// noEvent fails unless r has no event of any of the types.
func noEvent(t *testing.T, r *abci.ExecTxResult, types ...string) {
	t.Helper()
	for _, ev := range r.Events {
		if slices.Contains(types, ev.Type) {
			t.Fatalf("unexpected %s event: %v", ev.Type, ev.Attributes)
		}
	}
}

// The genesis MasterKey: an announcement that is no canonical
// edwards25519 point (bytes beyond the field, //Bob's sr25519 key, which
// does not decode as one) is ignored with master_key_ignored, one of
// another length silently; nothing is adopted. A point is: the key set of
// era 0 (the genesis gatekeepers, T 1, the point) is stored, served,
// announced (phala/keys/rotation_ready) and its public key is the
// MasterKey's; a later announcement changes nothing.
func TestMasterKeyAnnouncement(t *testing.T) {
	gk := newWorker(t)
	g := genesis()
	g.Gatekeepers = []crypto.PublicKey{gk.identity.Public()}
	h := newHarness(t, g)
	h.block()
	mustOK(t, h.block(h.tx(bob, 0, h.register(h.cite(gk.info)))))
	bobKey := bob.Public()
	for _, c := range []struct {
		name    string
		payload []byte
		event   bool
	}{
		{"beyond the field", bytes.Repeat([]byte{0xff}, 32), true},
		{"an sr25519 key", bobKey[:], true},
		{"31 bytes", make([]byte, 31), false},
	} {
		r := h.pushed(gk.identity, api.OriginGatekeeper, api.TopicMasterKey, c.payload)
		if got := event(r, "master_key_ignored", "reason") != ""; got != c.event {
			t.Errorf("%s: master_key_ignored %v, want %v: %v", c.name, got, c.event, r.Events)
		}
		if h.keySet(0) != nil || h.app.store.Get(api.KeyServingKeyEra) != nil || h.query(api.QueryMasterKey, nil, false).Value != nil {
			t.Fatalf("%s: adopted", c.name)
		}
	}
	pt := h.announceMasterKey(gk)
	if v := h.app.store.Get(api.KeyServingKeyEra); !bytes.Equal(v, []byte{0}) {
		t.Fatalf("serving key era %x", v)
	}
	if mk := h.query(api.QueryMasterKey, nil, false).Value; !bytes.Equal(mk, pt[:]) {
		t.Fatalf("master key %x, want %x", mk, pt)
	}
	var ready []*api.KeySet
	for _, m := range h.messages(h.height).Messages {
		if m.Topic == api.TopicKeyRotationReady && m.Origin == api.ModuleOrigin("gatekeeper") {
			s, err := api.DecodeKeySet(m.Payload)
			if err != nil {
				t.Fatal(err)
			}
			ready = append(ready, s)
		}
	}
	if len(ready) != 1 || ready[0].Era != 0 || ready[0].T != 1 || !slices.Equal(ready[0].Members, g.Gatekeepers) || ready[0].Public() != pt {
		t.Fatalf("rotation ready %+v", ready)
	}
	again := masterPoint()
	h.pushed(gk.identity, api.OriginGatekeeper, api.TopicMasterKey, again[:])
	if s := h.keySet(0); s.Public() != pt || !bytes.Equal(h.query(api.QueryMasterKey, nil, false).Value, pt[:]) {
		t.Fatal("a second announcement replaced the MasterKey")
	}
}

// Partials the round count ignores (key_partials_ignored, with why):
// malformed, from a worker not in the key set, sealed with another ECDH
// key than the member's registered one, for an era without a key set or
// an epoch other than a new contract's, for an unknown upload, for the
// arbiters of a contract that is not deployed. Nothing is stored, nothing
// deployed.
func TestKeyPartialsIgnored(t *testing.T) {
	c := startReplicaChain(t, genesis(), 3)
	h, gk, w1, w3 := c.h, c.gk, c.ws[0], c.ws[2]
	d := c.upload(1)
	other, _, _ := crypto.GenerateKeyPair()
	with := func(change func(p *api.KeyPartials)) []byte {
		p := keyPartials(gk, d.upload, w1)
		change(p)
		return p.Encode()
	}
	for _, tc := range []struct {
		name    string
		from    *worker
		payload []byte
		want    string
	}{
		{"malformed", gk, []byte("partials"), "malformed"},
		{"not a member", w3, keyPartials(w3, d.upload, w1).Encode(), "not a member of the key set of era 0"},
		{"another ECDH key", gk, with(func(p *api.KeyPartials) { p.MemberE = other.Public() }), "another ECDH key than the member's registered one"},
		{"the member's identity as ECDH key", gk, with(func(p *api.KeyPartials) { p.MemberE = gk.identity.Public() }), "another ECDH key"},
		{"an era without a key set", gk, with(func(p *api.KeyPartials) { p.Era = 1 }), "not a member of the key set of era 1"},
		{"another epoch", gk, with(func(p *api.KeyPartials) { p.Epoch = 1 }), "serving key era (0), epoch 0"},
		{"unknown upload", gk, with(func(p *api.KeyPartials) { p.Upload = [32]byte{9} }), "unknown upload"},
		{"arbiters of an undeployed contract", gk, with(func(p *api.KeyPartials) {
			p.Purpose, p.Contract, p.Disputed = api.KeyForArbiters, d.contract.Public(), 5
		}), "not the disputed contract's upload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.pushed(tc.from.identity, api.OriginWorker, api.TopicKeyPartials, tc.payload)
			if why := event(r, "key_partials_ignored", "reason"); !strings.Contains(why, tc.want) {
				t.Fatalf("ignored for %q, want %q (%v)", why, tc.want, r.Events)
			}
			noEvent(t, r, "key_round_complete", "contract_deployed")
			if n := h.rounds(); n != 0 {
				t.Fatalf("%d rounds stored", n)
			}
			if _, ok := h.deployedAs(d.upload); ok {
				t.Fatal("deployed")
			}
		})
	}
}

// A first deployment: the one member's partials (T 1) complete the round
// (key_round_complete), which the chain keeps until a worker of the round
// reports the keys it derived; the member's second partials for it are
// ignored. Reports from a worker not in the round, for an unknown round,
// for the round under another upload, of keys that are no sr25519 public
// keys, or malformed are ignored (contract_keyed_ignored). The first
// valid report (from the round's second worker) deploys the contract on
// the round's workers in order, with the reported keys, key era 0 and
// epoch 0, announced with the grant the chain built; the round is
// dropped. A second matching report is silent; a mismatching one is a
// contract_key_mismatch; neither changes the record.
func TestKeyRoundFirstDeployment(t *testing.T) {
	c := startReplicaChain(t, genesis(), 3)
	h, gk, w1, w2, w3 := c.h, c.gk, c.ws[0], c.ws[1], c.ws[2]
	d := c.upload(2)
	id := d.contract.Public()
	p := keyPartials(gk, d.upload, w1, w2)
	round := p.Round()
	r := h.sendPartials(gk, p)
	if event(r, "key_round_complete", "members") != "1" || event(r, "key_round_complete", "era") != "0" {
		t.Fatalf("round not complete: %v", r.Events)
	}
	noEvent(t, r, "contract_deployed")
	kr := h.keyRound(round)
	if kr == nil || kr.Upload != d.upload || kr.Era != 0 || kr.Epoch != 0 || kr.Purpose != api.KeyForWorkers || kr.Height != h.height ||
		!slices.Equal(kr.Workers, keysOf(w1, w2)) || !slices.Equal(kr.Members, keysOf(gk)) {
		t.Fatalf("stored round %+v", kr)
	}
	if _, ok := h.deployedAs(d.upload); ok || len(c.announced()) != 0 {
		t.Fatal("deployed before a worker's report")
	}
	if r := h.sendPartials(gk, p); !strings.Contains(event(r, "key_partials_ignored", "reason"), "already sent its partials") {
		t.Fatalf("the member's second partials: %v", r.Events)
	}
	if kr2 := h.keyRound(round); kr2 == nil || len(kr2.Members) != 1 {
		t.Fatalf("round after the second partials %+v", kr2)
	}

	var bad crypto.PublicKey
	copy(bad[:], bytes.Repeat([]byte{0xff}, 32))
	keyed := func(round, upload [32]byte, idk, ecdh crypto.PublicKey) []byte {
		return (&api.ContractKeyed{Round: round, Upload: upload, Identity: idk, Ecdh: ecdh}).Encode()
	}
	for _, tc := range []struct {
		name    string
		from    *worker
		payload []byte
		want    string
	}{
		{"malformed", w1, []byte("keys"), "malformed"},
		{"not a worker of the round", w3, keyed(round, d.upload, id, id), "not a worker of the round"},
		{"the member", gk, keyed(round, d.upload, id, id), "not a worker of the round"},
		{"unknown round", w1, keyed([32]byte{1}, d.upload, id, id), "no such round"},
		{"another upload", w1, keyed(round, [32]byte{9}, id, id), "no such round"},
		{"invalid identity", w1, keyed(round, d.upload, bad, id), "not public keys"},
		{"zero ECDH key", w1, keyed(round, d.upload, id, crypto.PublicKey{}), "not public keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.pushed(tc.from.identity, api.OriginWorker, api.TopicContractKeyed, tc.payload)
			if why := event(r, "contract_keyed_ignored", "reason"); !strings.Contains(why, tc.want) {
				t.Fatalf("ignored for %q, want %q (%v)", why, tc.want, r.Events)
			}
			noEvent(t, r, "contract_deployed", "contract_key_mismatch")
			if _, ok := h.deployedAs(d.upload); ok || h.keyRound(round) == nil {
				t.Fatal("the report changed the round or deployed")
			}
		})
	}

	// One report of the two workers' is not a majority: nothing is
	// deployed, and the same worker cannot count twice.
	r = h.reportKeys(w2, round, d.upload, id, id)
	if event(r, "contract_keyed_reported", "identical") != "1" || event(r, "contract_keyed_reported", "needed") != "2" {
		t.Fatalf("first report: %v", r.Events)
	}
	noEvent(t, r, "contract_deployed")
	if r := h.reportKeys(w2, round, d.upload, id, id); !strings.Contains(event(r, "contract_keyed_ignored", "reason"), "reported this round's keys already") {
		t.Fatalf("second report of the same worker: %v", r.Events)
	}
	if _, ok := h.deployedAs(d.upload); ok {
		t.Fatal("deployed on one worker's report")
	}
	r = h.reportKeys(w1, round, d.upload, id, id)
	if event(r, "contract_deployed", "key_era") != "0" || event(r, "contract_deployed", "reason") != api.DeployedFirst {
		t.Fatalf("deployment events %v", r.Events)
	}
	c.workersAre(d, w1, w2)
	rec := c.record(d)
	if rec.Identity != id || rec.Ecdh != id || rec.KeyEra != 0 || rec.KeyEpoch != 0 || rec.Upload != d.upload {
		t.Fatalf("record %+v", rec)
	}
	a := c.announced()
	want := &api.ContractKeyGrant{Upload: d.upload, Identity: id, Ecdh: id, Round: round, Workers: keysOf(w1, w2)}
	if len(a) != 1 || a[0].Reason != api.DeployedFirst || !bytes.Equal(a[0].Grant, want.Encode()) || !slices.Equal(a[0].Workers, keysOf(w1, w2)) {
		t.Fatalf("announced %+v", a)
	}
	if h.keyRound(round) != nil {
		t.Fatal("the round is kept after the deployment")
	}
	before := string(h.query(api.QueryContract, id.Bytes(), false).Value)
	r = h.reportKeys(w1, round, d.upload, id, id)
	noEvent(t, r, "contract_key_mismatch", "contract_deployed")
	other, _, _ := crypto.GenerateKeyPair()
	r = h.reportKeys(w1, round, d.upload, id, other.Public())
	if event(r, "contract_key_mismatch", "worker") != w1.identity.Public().Hex() || event(r, "contract_key_mismatch", "contract") != id.Hex() {
		t.Fatalf("mismatching report: %v", r.Events)
	}
	if string(h.query(api.QueryContract, id.Bytes(), false).Value) != before || len(c.announced()) != 0 {
		t.Fatal("a later report changed the contract")
	}
}

// A worker whose enclave is broken cannot fix a new contract's keys to
// keys of its own: of a round of 3 workers, the first report names other
// keys; the contract is deployed once 2 reports name the same keys, with
// those keys, and the liar's report is a mismatch.
func TestKeyRoundMajorityOfReports(t *testing.T) {
	c := startReplicaChain(t, genesis(), 3)
	h, gk, w1, w2, w3 := c.h, c.gk, c.ws[0], c.ws[1], c.ws[2]
	d := c.upload(3)
	id := d.contract.Public()
	p := keyPartials(gk, d.upload, w1, w2, w3)
	h.sendPartials(gk, p)
	liar, _, _ := crypto.GenerateKeyPair()
	if r := h.reportKeys(w1, p.Round(), d.upload, liar.Public(), liar.Public()); event(r, "contract_keyed_reported", "identical") != "1" {
		t.Fatalf("the liar's report: %v", r.Events)
	}
	if r := h.reportKeys(w2, p.Round(), d.upload, id, id); event(r, "contract_keyed_reported", "identical") != "1" {
		t.Fatalf("an honest report after the liar's: %v", r.Events)
	}
	if _, ok := h.deployedAs(d.upload); ok {
		t.Fatal("deployed without a majority")
	}
	if r := h.reportKeys(w3, p.Round(), d.upload, id, id); event(r, "contract_deployed", "reason") != api.DeployedFirst {
		t.Fatalf("the majority's report: %v", r.Events)
	}
	if got, ok := h.deployedAs(d.upload); !ok || got != id {
		t.Fatalf("deployed as %s, want the honest workers' %s", got.Short(), id.Short())
	}
	c.workersAre(d, w1, w2, w3)
	if r := h.reportKeys(w1, p.Round(), d.upload, liar.Public(), liar.Public()); event(r, "contract_key_mismatch", "worker") != w1.identity.Public().Hex() {
		t.Fatalf("the liar after the deployment: %v", r.Events)
	}
}

// A replacement: partials for a deployed contract's new worker complete
// their round and add the worker in the same push (no report waited
// for), announced with the grant the chain built from the record's keys;
// no round is kept. Partials of another epoch than the contract's are
// ignored.
func TestKeyRoundReplacement(t *testing.T) {
	c := startReplicaChain(t, genesis(), 2)
	h, gk, w1, w2 := c.h, c.gk, c.ws[0], c.ws[1]
	d := c.upload(2)
	c.grant(d, w1)
	c.workersAre(d, w1)
	stale := keyPartials(gk, d.upload, w2)
	stale.Epoch = 1
	if r := h.sendPartials(gk, stale); !strings.Contains(event(r, "key_partials_ignored", "reason"), "the contract's key is of era 0 epoch 0") {
		t.Fatalf("partials of another epoch: %v", r.Events)
	}
	c.workersAre(d, w1)
	p := keyPartials(gk, d.upload, w2)
	r := h.sendPartials(gk, p)
	if event(r, "key_round_complete", "upload_id") == "" || event(r, "contract_deployed", "worker") != w2.identity.Public().Hex() || event(r, "contract_deployed", "reason") != api.DeployedAdded {
		t.Fatalf("replacement events %v", r.Events)
	}
	c.workersAre(d, w1, w2)
	id := d.contract.Public()
	want := &api.ContractKeyGrant{Upload: d.upload, Identity: id, Ecdh: id, Round: p.Round(), Workers: keysOf(w2)}
	if a := c.announced(); len(a) != 1 || a[0].Reason != api.DeployedAdded || !bytes.Equal(a[0].Grant, want.Encode()) {
		t.Fatalf("announced %+v", a)
	}
	if h.rounds() != 0 {
		t.Fatal("a round kept after the replacement")
	}
}

// A completed first-deployment round no worker reports on is pruned at
// the first replica check more than contracts.KeyRoundLifetime blocks
// after it (its state key gone); a report then finds no round.
func TestKeyRoundPruned(t *testing.T) {
	c := startReplicaChain(t, genesis(), 1)
	h, gk, w1 := c.h, c.gk, c.ws[0]
	d := c.upload(1)
	p := keyPartials(gk, d.upload, w1)
	h.sendPartials(gk, p)
	started := h.height
	if h.keyRound(p.Round()) == nil {
		t.Fatal("round not stored")
	}
	for h.keyRound(p.Round()) != nil {
		if h.height > started+contracts.KeyRoundLifetime+contracts.ReplicaCheckInterval {
			t.Fatalf("round of height %d still kept at %d", started, h.height)
		}
		h.block()
	}
	if h.height-started <= contracts.KeyRoundLifetime || h.height%contracts.ReplicaCheckInterval != 0 {
		t.Fatalf("round of height %d pruned at %d", started, h.height)
	}
	if h.app.store.Get(api.KeyRoundKey(p.Round())) != nil {
		t.Fatal("state key kept")
	}
	r := h.reportKeys(w1, p.Round(), d.upload, d.contract.Public(), d.contract.Public())
	if !strings.Contains(event(r, "contract_keyed_ignored", "reason"), "no such round") {
		t.Fatalf("report after pruning: %v", r.Events)
	}
	if _, ok := h.deployedAs(d.upload); ok {
		t.Fatal("deployed from a pruned round")
	}
}

// Key eras across an election: once the elected set's DKG (one member: a
// key it made alone) made it active, the key set of era 1 (its member, T
// 1, its own public key) serves new contracts, and partials of
// era 0 for a new contract are ignored; a contract deployed under era 0
// keeps taking era-0 partials from the genesis gatekeeper (no longer a
// gatekeeper) and refuses era-1 ones; a member of one era's set only is
// no member of the other's.
func TestKeyErasAcrossElection(t *testing.T) {
	gk, m, w1, w2 := newWorker(t), newWorker(t), newWorker(t), newWorker(t)
	g := genesis()
	g.Gatekeepers = []crypto.PublicKey{gk.identity.Public()}
	g.Params.EraLength, g.Params.NGatekeepers, g.Params.MinGatekeeperStake, g.Params.MinWorkerStake = 10, 1, 100, 0
	voters := &testVoters{stake: map[crypto.PublicKey]uint64{m.identity.Public(): 500}}
	h := newElectionHarness(t, g, voters)
	h.block()
	var txs [][]byte
	for i, w := range []*worker{gk, m, w1, w2} {
		txs = append(txs, h.tx(bob, uint64(i), h.register(h.cite(w.info))))
	}
	mustOK(t, h.block(txs...))
	h.announceMasterKey(gk)
	code := []byte("\x00asm\x01\x00\x00\x00")
	n := h.nonce(alice)
	mustOK(t, h.block(h.tx(alice, n, &api.UploadContract{Code: gzipped(t, code), Replicas: 2}), h.tx(alice, n+1, &api.UploadContract{Code: gzipped(t, code), Replicas: 2}),
		h.tx(bob, 4, &api.GatekeeperCandidacy{Node: m.identity.Public(), On: true})))
	oldUp, newUp := api.UploadID(alice.Public(), sha256.Sum256(code), 0), api.UploadID(alice.Public(), sha256.Sum256(code), 1)
	oldC, _, _ := crypto.GenerateKeyPair()
	newC, _, _ := crypto.GenerateKeyPair()
	if r := h.provision(gk, oldUp, oldC.Public(), oldC.Public(), w1); event(r, "contract_deployed", "key_era") != "0" {
		t.Fatalf("deployment under era 0: %v", r.Events)
	}
	for h.height < 10 {
		h.block()
	}
	// m, the one member elected at 10, posts its DKG key (11) and, the
	// only participant, a result it made alone (12).
	d := h.dkgMembers(m)
	d.read()
	for h.keySet(1) == nil {
		if h.height >= 12 {
			t.Fatalf("no key set of era 1 by height %d", h.height)
		}
		d.block()
	}
	mine, err := d.Player(m.identity.Public()).Share.Commits[0].MarshalBinary()
	if s := h.keySet(1); err != nil || !slices.Equal(s.Members, keysOf(m)) || s.T != 1 || s.Public() != [32]byte(mine) || s.Public() == h.keySet(0).Public() {
		t.Fatalf("key set of era 1: %+v", s)
	}

	era1 := func(p *api.KeyPartials) *api.KeyPartials { p.Era = 1; return p }
	for _, c := range []struct {
		name string
		from *worker
		p    *api.KeyPartials
		want string
	}{
		{"a new contract under era 0", gk, keyPartials(gk, newUp, w1), "serving key era (1), epoch 0"},
		{"the old contract under era 1", m, era1(keyPartials(m, oldUp, w2)), "the contract's key is of era 0 epoch 0"},
		{"era 0's member for era 1", gk, era1(keyPartials(gk, newUp, w1)), "not a member of the key set of era 1"},
		{"era 1's member for era 0", m, keyPartials(m, oldUp, w2), "not a member of the key set of era 0"},
	} {
		if r := h.sendPartials(c.from, c.p); !strings.Contains(event(r, "key_partials_ignored", "reason"), c.want) || event(r, "key_round_complete", "era") != "" {
			t.Errorf("%s: %v", c.name, r.Events)
		}
	}
	p := era1(keyPartials(m, newUp, w1))
	h.sendPartials(m, p)
	if r := h.reportKeys(w1, p.Round(), newUp, newC.Public(), newC.Public()); event(r, "contract_deployed", "key_era") != "1" {
		t.Fatalf("deployment under era 1: %v", r.Events)
	}
	if r := h.sendPartials(gk, keyPartials(gk, oldUp, w2)); event(r, "contract_deployed", "key_era") != "0" || event(r, "contract_deployed", "worker") != w2.identity.Public().Hex() {
		t.Fatalf("a replica of the era-0 contract: %v", r.Events)
	}
	for _, c := range []struct {
		id  crypto.PublicKey
		era uint64
		ws  []crypto.PublicKey
	}{{oldC.Public(), 0, keysOf(w1, w2)}, {newC.Public(), 1, keysOf(w1)}} {
		rec, err := api.DecodeContractRecord(h.query(api.QueryContract, c.id.Bytes(), false).Value)
		if err != nil || rec.KeyEra != c.era || rec.KeyEpoch != 0 || !slices.Equal(rec.Workers, c.ws) {
			t.Fatalf("record %+v %v, want key era %d", rec, err, c.era)
		}
	}
}
