package app

// The chain side of contract key epochs (docs/keys.md, "The epoch
// protocol, decided"): the rekey trigger, KeyForEpoch rounds, the
// worker's report of the new ECDH key, the end of the migration, and the
// retirement of key eras.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/contracts"
)

// moduleMessages are the payloads of topic from module's origin in the
// queue of the last block.
func (h *harness) moduleMessages(module, topic string) [][]byte {
	h.t.Helper()
	var out [][]byte
	for _, m := range h.messages(h.height).Messages {
		if m.Topic == topic && m.Origin == api.ModuleOrigin(module) {
			out = append(out, m.Payload)
		}
	}
	return out
}

// rekeys are the api.Rekey calls of the last block.
func (h *harness) rekeys() []*api.Rekey {
	h.t.Helper()
	var out []*api.Rekey
	for _, p := range h.moduleMessages(contracts.Module, api.TopicRekey) {
		k, err := api.DecodeRekey(p)
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, k)
	}
	return out
}

// untilRekey commits blocks until one asks for a key epoch (at most
// limit blocks) and returns it; no block before it may.
func (h *harness) untilRekey(limit int) *api.Rekey {
	h.t.Helper()
	for i := 0; i < limit; i++ {
		h.block()
		if ks := h.rekeys(); len(ks) > 0 {
			if len(ks) != 1 {
				h.t.Fatalf("%d rekeys in block %d", len(ks), h.height)
			}
			return ks[0]
		}
	}
	h.t.Fatalf("no rekey by height %d", h.height)
	return nil
}

// contractRecord is contract's record (nil if none).
func (h *harness) contractRecord(contract crypto.PublicKey) *api.ContractRecord {
	h.t.Helper()
	v := h.query(api.QueryContract, contract.Bytes(), false).Value
	if v == nil {
		return nil
	}
	rec, err := api.DecodeContractRecord(v)
	if err != nil {
		h.t.Fatal(err)
	}
	return rec
}

// epochPartials is member's KeyForEpoch partials of contract (of upload)
// under era for epoch, to the workers ws.
func epochPartials(member *worker, upload [32]byte, contract crypto.PublicKey, era, epoch uint64, ws ...*worker) *api.KeyPartials {
	p := keyPartials(member, upload, ws...)
	p.Purpose, p.Contract, p.Era, p.Epoch = api.KeyForEpoch, contract, era, epoch
	return p
}

// stateUpdate pushes contract's state update (in a block of its own)
// covering height, from root prev to next, with old entries left under
// older epochs; it must be accepted.
func (h *harness) stateUpdate(contract *crypto.KeyPair, height int64, prev, next [32]byte, old uint64) *abci.ExecTxResult {
	h.t.Helper()
	u := &api.StateUpdate{Height: height, Seq: uint64(height), Calls: uint64(height), PrevRoot: prev, NewRoot: next, OldEntries: old}
	r := h.pushed(contract, api.OriginContract, api.TopicContractState, u.Encode())
	if event(r, "state_update", "height") == "" {
		h.t.Fatalf("state update refused: %v", r.Events)
	}
	return r
}

// A contract's key epoch by age (contract_key_epoch 20, no rotation): the
// first replica check at least 20 blocks after its deployment asks for
// epoch 1 under the serving era 0 (api.Rekey, event contract_rekey), once
// while it is pending. KeyForEpoch partials for another epoch, another
// worker list (a subset, another order, a stranger), another contract or
// upload are ignored; the member's right ones complete the round, which
// waits for a report. Reports from a stranger, of another identity
// (contract_key_mismatch), of the current or an invalid ECDH key change
// nothing; the first right one (w2) moves the record to epoch 1,
// migrating from epoch 0, with the new ECDH key, and announces the grant
// (api.TopicRekeyed). While migrating, epoch partials, a replacement and
// arbiters are refused ("migrating"); a state update from before the
// epoch or with entries left keeps the migration, the next with none
// ends it (contract_key_epoch_done).
func TestKeyEpochByAge(t *testing.T) {
	f := newArbFixture(t, func(p *api.Params) { p.ContractKeyEpoch = 20 })
	h, id := f.harness, f.contract.Public()
	rec := f.record()
	deployed := rec.EpochHeight
	if deployed == 0 || rec.KeyEpoch != 0 || rec.Migrating {
		t.Fatalf("deployed record %+v", rec)
	}
	rk := h.untilRekey(40)
	if h.height%contracts.ReplicaCheckInterval != 0 || h.height-deployed < 20 || h.height-deployed >= 20+contracts.ReplicaCheckInterval {
		t.Fatalf("rekey at %d, deployed at %d", h.height, deployed)
	}
	if *rk != (api.Rekey{Contract: id, Upload: f.upload, Era: 0, Epoch: 1}) {
		t.Fatalf("rekey %+v", rk)
	}
	for i := 0; i < contracts.ReplicaCheckInterval; i++ {
		if h.block(); len(h.rekeys()) != 0 {
			t.Fatalf("a second rekey at %d while one is pending", h.height)
		}
	}

	other, _, _ := crypto.GenerateKeyPair()
	for _, c := range []struct {
		name string
		p    *api.KeyPartials
		want string
	}{
		{"epoch 2", epochPartials(f.gk, f.upload, id, 0, 2, f.w1, f.w2), "next key epoch is era 0 epoch 1"},
		{"epoch 0", epochPartials(f.gk, f.upload, id, 0, 0, f.w1, f.w2), "next key epoch is era 0 epoch 1"},
		{"one worker", epochPartials(f.gk, f.upload, id, 0, 1, f.w1), "not the contract's current 2"},
		{"another order", epochPartials(f.gk, f.upload, id, 0, 1, f.w2, f.w1), "not the contract's current 2"},
		{"a stranger", epochPartials(f.gk, f.upload, id, 0, 1, f.w1, f.a1), "not the contract's current 2"},
		{"another contract", epochPartials(f.gk, f.upload, other.Public(), 0, 1, f.w1, f.w2), "not a deployed contract"},
		{"unknown upload", epochPartials(f.gk, [32]byte{7}, id, 0, 1, f.w1, f.w2), "unknown upload"},
	} {
		if r := f.sendPartials(f.gk, c.p); !strings.Contains(event(r, "key_partials_ignored", "reason"), c.want) || event(r, "key_round_complete", "era") != "" {
			t.Errorf("%s: %v", c.name, r.Events)
		}
	}
	if n := h.rounds(); n != 0 {
		t.Fatalf("%d rounds stored", n)
	}
	p := epochPartials(f.gk, f.upload, id, 0, 1, f.w1, f.w2)
	r := f.sendPartials(f.gk, p)
	if event(r, "key_round_complete", "members") != "1" {
		t.Fatalf("epoch round: %v", r.Events)
	}
	noEvent(t, r, "contract_rekeyed", "contract_deployed")
	if kr := h.keyRound(p.Round()); kr == nil || kr.Purpose != api.KeyForEpoch || kr.Contract != id || kr.Epoch != 1 {
		t.Fatalf("round %+v", kr)
	}

	newE, _, _ := crypto.GenerateKeyPair()
	var bad crypto.PublicKey
	copy(bad[:], bytes.Repeat([]byte{0xff}, 32))
	before := string(h.query(api.QueryContract, id.Bytes(), false).Value)
	for _, c := range []struct {
		name     string
		from     *worker
		id, ecdh crypto.PublicKey
		event    string
		want     string
	}{
		{"a stranger", f.a1, id, newE.Public(), "contract_keyed_ignored", "not a worker"},
		{"the member", f.gk, id, newE.Public(), "contract_keyed_ignored", "not a worker"},
		{"another identity", f.w1, other.Public(), newE.Public(), "contract_key_mismatch", ""},
		{"the current ECDH key", f.w1, id, id, "contract_keyed_ignored", "current epoch"},
		{"no ECDH key", f.w1, id, bad, "contract_keyed_ignored", "not a public key"},
	} {
		r := h.reportKeys(c.from, p.Round(), f.upload, c.id, c.ecdh)
		if c.want == "" && event(r, c.event, "worker") != f.w1.identity.Public().Hex() || !strings.Contains(event(r, c.event, "reason"), c.want) {
			t.Errorf("%s: %v", c.name, r.Events)
		}
		noEvent(t, r, "contract_rekeyed")
		if string(h.query(api.QueryContract, id.Bytes(), false).Value) != before || h.keyRound(p.Round()) == nil {
			t.Fatalf("%s changed the contract or dropped the round", c.name)
		}
	}
	r = h.reportKeys(f.w2, p.Round(), f.upload, id, newE.Public())
	if event(r, "contract_rekeyed", "key_epoch") != "1" || event(r, "contract_rekeyed", "worker") != f.w2.identity.Public().Hex() {
		t.Fatalf("report: %v", r.Events)
	}
	epochAt := h.height
	rec = f.record()
	want := *rec
	want.KeyEra, want.KeyEpoch, want.PrevKeyEra, want.PrevKeyEpoch, want.Migrating, want.EpochHeight, want.Ecdh = 0, 1, 0, 0, true, epochAt, newE.Public()
	if !bytes.Equal(rec.Encode(), want.Encode()) || !slices.Equal(rec.Workers, keysOf(f.w1, f.w2)) {
		t.Fatalf("record %+v", rec)
	}
	grant := &api.ContractKeyGrant{Upload: f.upload, Identity: id, Ecdh: newE.Public(), Era: 0, Epoch: 1, Round: p.Round(), Workers: keysOf(f.w1, f.w2)}
	if g := h.moduleMessages(contracts.Module, api.TopicRekeyed); len(g) != 1 || !bytes.Equal(g[0], grant.Encode()) {
		t.Fatalf("rekeyed %x", g)
	}
	if h.keyRound(p.Round()) != nil {
		t.Fatal("the round is kept")
	}
	// A later matching report is silent; the round is gone.
	noEvent(t, h.reportKeys(f.w1, p.Round(), f.upload, id, newE.Public()), "contract_key_mismatch", "contract_keyed_ignored", "contract_rekeyed")

	// Migrating: refused until the end.
	if r := f.sendPartials(f.gk, epochPartials(f.gk, f.upload, id, 0, 2, f.w1, f.w2)); !strings.Contains(event(r, "key_partials_ignored", "reason"), "migrating") {
		t.Fatalf("epoch partials while migrating: %v", r.Events)
	}
	if r := f.sendPartials(f.gk, keyPartials(f.gk, f.upload, f.a1)); !strings.Contains(event(r, "key_partials_ignored", "reason"), "migrating") {
		t.Fatalf("a replacement while migrating: %v", r.Events)
	}
	h.stateUpdate(f.contract, epochAt-1, api.EmptyStateRoot, [32]byte{1}, 0)
	h.stateUpdate(f.contract, h.height, [32]byte{1}, [32]byte{2}, 5)
	if !f.record().Migrating {
		t.Fatal("an update from before the epoch, or with old entries, ended the migration")
	}
	disputed := h.height - 1
	if r := f.request(alice, disputed); r.Code != 0 {
		t.Fatal(r.Log)
	}
	if r := f.arbiters(disputed, f.a1); !strings.Contains(event(r, "key_partials_ignored", "reason"), "migrating") || len(f.topic(api.TopicArbitersAssigned)) != 0 {
		t.Fatalf("arbiters while migrating: %v", r.Events)
	}
	r = h.stateUpdate(f.contract, h.height, [32]byte{2}, [32]byte{3}, 0)
	if event(r, "contract_key_epoch_done", "key_epoch") != "1" {
		t.Fatalf("last update: %v", r.Events)
	}
	rec = f.record()
	if rec.Migrating || rec.PrevKeyEra != 0 || rec.PrevKeyEpoch != 0 || rec.KeyEpoch != 1 || rec.EpochHeight != epochAt || rec.Ecdh != newE.Public() {
		t.Fatalf("record after the migration %+v", rec)
	}
}

// A rotation (the elected member's key set of era 1 adopted) asks for the
// next key epoch of the contract deployed under era 0 at the next replica
// check, under era 1. Era 0 is not retired while the contract is under it
// or migrating from it. Migrated: the contract moves to era 1 on the
// member's partials and w1's report, its last update ends the migration,
// and the next check retires era 0 as unused. Not migrated (nobody
// answers): era 0 is retired at the first check key_migration_eras (1)
// eras after era 1's adoption, the contract stranded. Either way the
// retirement is announced once (api.TopicKeyEraRetired, proved under
// /keys/retired) and era 0's partials are refused from then on.
func TestKeyEraRetirement(t *testing.T) {
	for _, migrate := range []bool{true, false} {
		name := map[bool]string{true: "migrated", false: "stranded"}[migrate]
		t.Run(name, func(t *testing.T) {
			gk, m, w1, w2 := newWorker(t), newWorker(t), newWorker(t), newWorker(t)
			g := genesis()
			g.Gatekeepers = []crypto.PublicKey{gk.identity.Public()}
			g.Params.EraLength, g.Params.NGatekeepers, g.Params.MinGatekeeperStake, g.Params.MinWorkerStake, g.Params.KeyMigrationEras = 30, 1, 100, 0, 1
			h := newElectionHarness(t, g, &testVoters{stake: map[crypto.PublicKey]uint64{m.identity.Public(): 500}})
			h.block()
			var txs [][]byte
			for i, w := range []*worker{gk, m, w1, w2} {
				txs = append(txs, h.tx(bob, uint64(i), h.register(h.cite(w.info))))
			}
			mustOK(t, h.block(txs...))
			h.announceMasterKey(gk)
			code := []byte("\x00asm\x01\x00\x00\x00")
			mustOK(t, h.block(h.tx(alice, h.nonce(alice), &api.UploadContract{Code: gzipped(t, code), Replicas: 2}),
				h.tx(bob, 4, &api.GatekeeperCandidacy{Node: m.identity.Public(), On: true})))
			up := api.UploadID(alice.Public(), sha256.Sum256(code), 0)
			ck, _, _ := crypto.GenerateKeyPair()
			id := ck.Public()
			if r := h.provision(gk, up, id, id, w1); event(r, "contract_deployed", "key_era") != "0" {
				t.Fatalf("deployment under era 0: %v", r.Events)
			}
			for h.height < 30 {
				if h.block(); len(h.rekeys()) != 0 {
					t.Fatalf("rekey at %d before any rotation", h.height)
				}
			}
			d := h.dkgMembers(m)
			d.read()
			for h.keySet(1) == nil {
				if h.height >= 35 {
					t.Fatalf("no key set of era 1 by height %d", h.height)
				}
				d.block()
			}
			adopted := h.height
			rk := h.untilRekey(contracts.ReplicaCheckInterval)
			if *rk != (api.Rekey{Contract: id, Upload: up, Era: 1, Epoch: 1}) {
				t.Fatalf("rekey %+v at %d", rk, h.height)
			}
			retired := func() []byte {
				return h.query(api.QueryKeyEraRetired, binary.BigEndian.AppendUint64(nil, 0), true).Value
			}
			if retired() != nil {
				t.Fatal("era 0 retired while the contract is under it")
			}
			if migrate {
				if r := h.sendPartials(gk, epochPartials(gk, up, id, 0, 1, w1)); !strings.Contains(event(r, "key_partials_ignored", "reason"), "next key epoch is era 1 epoch 1") {
					t.Fatalf("era 0's partials for the epoch: %v", r.Events)
				}
				p := epochPartials(m, up, id, 1, 1, w1)
				h.sendPartials(m, p)
				newE, _, _ := crypto.GenerateKeyPair()
				if r := h.reportKeys(w1, p.Round(), up, id, newE.Public()); event(r, "contract_rekeyed", "key_era") != "1" || event(r, "contract_rekeyed", "prev_key_era") != "0" {
					t.Fatalf("report: %v", r.Events)
				}
				if rec := h.contractRecord(id); rec.KeyEra != 1 || rec.KeyEpoch != 1 || rec.PrevKeyEra != 0 || rec.PrevKeyEpoch != 0 || !rec.Migrating {
					t.Fatalf("record %+v", rec)
				}
				for h.height%contracts.ReplicaCheckInterval != 0 {
					h.block()
				}
				if retired() != nil {
					t.Fatal("era 0 retired while the contract migrates from it")
				}
				h.stateUpdate(ck, h.height, api.EmptyStateRoot, [32]byte{1}, 0)
			}
			var res *abci.ResponseFinalizeBlock
			for res == nil || len(blockEvents(res, "key_era_retired", "era")) == 0 {
				if h.height > adopted+60 {
					t.Fatalf("era 0 not retired by %d", h.height)
				}
				res = h.block()
			}
			if got := blockEvents(res, "key_era_retired", "era"); len(got) != 1 || got[0] != "0" {
				t.Fatalf("retired %v", got)
			}
			why, stranded := blockEvents(res, "key_era_retired", "reason")[0], blockEvents(res, "contract_stranded", "contract")
			if migrate {
				if why != "unused" || len(stranded) != 0 || h.height-adopted >= 30+contracts.ReplicaCheckInterval {
					t.Fatalf("retired at %d (era 1 at %d) for %q, stranded %v", h.height, adopted, why, stranded)
				}
			} else if why != "deadline" || len(stranded) != 1 || stranded[0] != id.Hex() || h.height-adopted < 30 || h.height-adopted >= 30+contracts.ReplicaCheckInterval {
				t.Fatalf("retired at %d (era 1 at %d) for %q, stranded %v", h.height, adopted, why, stranded)
			}
			if ps := h.moduleMessages("gatekeeper", api.TopicKeyEraRetired); len(ps) != 1 || !bytes.Equal(ps[0], []byte{0}) {
				t.Fatalf("announced %x", ps)
			}
			v := retired()
			if hgt, n := binary.Varint(v); n <= 0 || hgt != h.height || len(v) != n+1 || v[n] != map[bool]byte{true: 0, false: 1}[migrate] {
				t.Fatalf("retirement record %x", v)
			}
			if r := h.sendPartials(gk, keyPartials(gk, up, w2)); !strings.Contains(event(r, "key_partials_ignored", "reason"), "key era 0 is retired") {
				t.Fatalf("era 0's partials after its retirement: %v", r.Events)
			}
			for i := 0; i < contracts.ReplicaCheckInterval; i++ {
				if res := h.block(); len(blockEvents(res, "key_era_retired", "era")) != 0 {
					t.Fatalf("retired again at %d", h.height)
				}
			}
			if h.query(api.QueryKeyEraRetired, binary.BigEndian.AppendUint64(nil, 1), false).Value != nil {
				t.Fatal("the serving era retired")
			}
		})
	}
}

// A pending rekey is asked again: when a worker joined the contract
// after the round's partials (a replacement is allowed while the epoch
// is only asked for), the report is ignored, the round and the pending
// rekey are dropped and the next replica check asks again (for the same
// epoch, now with three workers); a rekey nobody answers is asked again
// at the first check more than contracts.KeyRoundLifetime blocks later.
func TestRekeyAskedAgain(t *testing.T) {
	g := genesis()
	g.Params.ContractKeyEpoch = 10
	c := startReplicaChain(t, g, 3)
	h, gk, w1, w2, w3 := c.h, c.gk, c.ws[0], c.ws[1], c.ws[2]
	d := c.upload(3)
	id := d.contract.Public()
	c.grant(d, w1, w2)
	if rk := h.untilRekey(30); rk.Contract != id || rk.Epoch != 1 {
		t.Fatalf("rekey %+v", rk)
	}
	p := epochPartials(gk, d.upload, id, 0, 1, w1, w2)
	if r := h.sendPartials(gk, p); event(r, "key_round_complete", "members") != "1" {
		t.Fatalf("epoch round: %v", r.Events)
	}
	if r := h.sendPartials(gk, keyPartials(gk, d.upload, w3)); event(r, "contract_deployed", "worker") != w3.identity.Public().Hex() {
		t.Fatalf("a replacement while the epoch is asked for: %v", r.Events)
	}
	newE, _, _ := crypto.GenerateKeyPair()
	r := h.reportKeys(w1, p.Round(), d.upload, id, newE.Public())
	if !strings.Contains(event(r, "contract_keyed_ignored", "reason"), "asked again") || h.keyRound(p.Round()) != nil {
		t.Fatalf("report after a worker joined: %v", r.Events)
	}
	if rec := c.record(d); rec.KeyEpoch != 0 || rec.Migrating || rec.Ecdh != id {
		t.Fatalf("record %+v", rec)
	}
	rk := h.untilRekey(contracts.ReplicaCheckInterval)
	if rk.Epoch != 1 {
		t.Fatalf("asked again %+v", rk)
	}
	if r := h.sendPartials(gk, p); !strings.Contains(event(r, "key_partials_ignored", "reason"), "not the contract's current 3") {
		t.Fatalf("the old round's partials: %v", r.Events)
	}
	asked := h.height
	rk = h.untilRekey(contracts.KeyRoundLifetime + 2*contracts.ReplicaCheckInterval)
	if h.height-asked <= contracts.KeyRoundLifetime || h.height-asked > contracts.KeyRoundLifetime+contracts.ReplicaCheckInterval || rk.Epoch != 1 {
		t.Fatalf("asked at %d, again at %d: %+v", asked, h.height, rk)
	}
}
