package app

// A contract whose only worker is elected gatekeeper (docs/keys.md, "A
// contract that loses its last worker"): the worker leaves it
// (api.RemovedGatekeeper), the members of the contract's key era
// provision a replacement, the contract rekeys to the new era, and its
// old key era is retired as unused; nothing is stranded.

import (
	"crypto/sha256"
	"testing"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/contracts"
)

// soleWorkerChain is a chain whose genesis gatekeeper gk (key era 0, T 1)
// deployed a contract on its only worker w3, which stands for the one
// seat (era length 30, key_migration_eras 1); w4 is another registered
// worker.
type soleWorkerChain struct {
	h          *harness
	gk, w3, w4 *worker
	upload     [32]byte
	contract   *crypto.KeyPair
}

func newSoleWorkerChain(t *testing.T) *soleWorkerChain {
	c := &soleWorkerChain{gk: newWorker(t), w3: newWorker(t), w4: newWorker(t)}
	g := genesis()
	g.Gatekeepers = []crypto.PublicKey{c.gk.identity.Public()}
	g.Params.EraLength, g.Params.NGatekeepers, g.Params.MinGatekeeperStake, g.Params.MinWorkerStake, g.Params.KeyMigrationEras = 30, 1, 100, 0, 1
	g.Params.HeartbeatsPerEra = 0
	h := newElectionHarness(t, g, &testVoters{stake: map[crypto.PublicKey]uint64{c.w3.identity.Public(): 500}})
	c.h = h
	h.block()
	var txs [][]byte
	for i, w := range []*worker{c.gk, c.w3, c.w4} {
		txs = append(txs, h.tx(bob, uint64(i), h.register(h.cite(w.info))))
	}
	mustOK(t, h.block(txs...))
	h.announceMasterKey(c.gk)
	code := []byte("\x00asm\x01\x00\x00\x00")
	mustOK(t, h.block(h.tx(alice, h.nonce(alice), &api.UploadContract{Code: gzipped(t, code), Replicas: 1})))
	c.upload = api.UploadID(alice.Public(), sha256.Sum256(code), 0)
	c.contract, _, _ = crypto.GenerateKeyPair()
	id := c.contract.Public()
	if r := h.provision(c.gk, c.upload, id, id, c.w3); event(r, "contract_deployed", "worker") != c.w3.identity.Public().Hex() {
		t.Fatalf("deployment on w3: %v", r.Events)
	}
	mustOK(t, h.block(h.tx(bob, h.nonce(bob), &api.GatekeeperCandidacy{Node: c.w3.identity.Public(), On: true})))
	return c
}

// elect runs blocks to the era end and the DKG of the one-member set
// {w3}, then to the replica check that takes w3 off the contract; it
// returns the height at which key set 1 was adopted.
func (c *soleWorkerChain) elect(t *testing.T) int64 {
	h := c.h
	for h.height < 30 {
		h.block()
	}
	d := h.dkgMembers(c.w3)
	d.read()
	for h.keySet(1) == nil {
		if h.height >= 40 {
			t.Fatalf("no key set of era 1 by height %d", h.height)
		}
		d.block()
	}
	adopted := h.height
	for {
		res := h.block()
		if ws := blockEvents(res, "contract_worker_removed", "reason"); len(ws) > 0 {
			if ws[0] != api.RemovedGatekeeper {
				t.Fatalf("w3 removed for %q", ws[0])
			}
			break
		}
		if h.height > adopted+contracts.ReplicaCheckInterval {
			t.Fatalf("w3 not removed by %d", h.height)
		}
	}
	if rec := h.contractRecord(c.contract.Public()); len(rec.Workers) != 0 {
		t.Fatalf("workers after the election %v", shorts(rec.Workers))
	}
	return adopted
}

// retiredEra0 is why key era 0 was retired ("unused", "deadline"), ""
// if it is not.
func (c *soleWorkerChain) retiredEra0() string {
	v := c.h.query(api.QueryKeyEraRetired, make([]byte, 8), false).Value
	if len(v) == 0 {
		return ""
	}
	return map[byte]string{0: "unused", 1: "deadline"}[v[len(v)-1]]
}

// run commits blocks until height limit and returns the events
// key_era_retired (era, reason) and contract_stranded seen.
func (c *soleWorkerChain) run(limit int64) (retired, stranded []string) {
	for c.h.height < limit {
		res := c.h.block()
		retired = append(retired, blockEvents(res, "key_era_retired", "reason")...)
		stranded = append(stranded, blockEvents(res, "contract_stranded", "contract")...)
	}
	return retired, stranded
}

// The sole worker w3 elected: once it is off the contract, era 0's member
// provisions w4 (the contract's key era is 0), the next check rekeys the
// contract to era 1 for w4, w3 (era 1's member) sends its partials, w4
// reports, its update ends the migration, and era 0 is retired unused:
// nothing stranded.
func TestSoleWorkerElectedReplaced(t *testing.T) {
	c := newSoleWorkerChain(t)
	h, id := c.h, c.contract.Public()
	c.elect(t)
	if r := h.sendPartials(c.gk, keyPartials(c.gk, c.upload, c.w4)); event(r, "contract_deployed", "worker") != c.w4.identity.Public().Hex() {
		t.Fatalf("replacement: %v", r.Events)
	}
	rk := h.untilRekey(contracts.ReplicaCheckInterval)
	if *rk != (api.Rekey{Contract: id, Upload: c.upload, Era: 1, Epoch: 1}) {
		t.Fatalf("rekey %+v", rk)
	}
	p := epochPartials(c.w3, c.upload, id, 1, 1, c.w4)
	h.sendPartials(c.w3, p)
	newE, _, _ := crypto.GenerateKeyPair()
	if r := h.reportKeys(c.w4, p.Round(), c.upload, id, newE.Public()); event(r, "contract_rekeyed", "key_era") != "1" {
		t.Fatalf("report: %v", r.Events)
	}
	h.stateUpdate(c.contract, h.height, api.EmptyStateRoot, [32]byte{1}, 0)
	_, stranded := c.run(h.height + contracts.ReplicaCheckInterval)
	if why := c.retiredEra0(); why != "unused" || len(stranded) != 0 {
		t.Fatalf("era 0 retired %q, stranded %v", why, stranded)
	}
}

// The sole worker elected, and the replacement late: era 0's deadline
// (key_migration_eras = 1 era after era 1's adoption) passes while the
// contract has no worker, era 0's member is attested and w4 could run it,
// so era 0 is not retired; the replacement then comes, the contract
// rekeys to era 1, and era 0 is retired unused: nothing stranded. If no
// replacement ever comes, era 0 is retired one more window later (the
// hold is bounded: P2) and the contract is stranded.
func TestSoleWorkerElectedLateReplacement(t *testing.T) {
	for _, replace := range []bool{true, false} {
		t.Run(map[bool]string{true: "replaced", false: "never"}[replace], func(t *testing.T) {
			c := newSoleWorkerChain(t)
			h, id := c.h, c.contract.Public()
			adopted := c.elect(t)
			retired, stranded := c.run(adopted + 30 + contracts.ReplicaCheckInterval)
			if len(retired) != 0 || len(stranded) != 0 {
				t.Fatalf("past the deadline (era 1 adopted at %d, now %d): retired %v, stranded %v", adopted, h.height, retired, stranded)
			}
			if !replace {
				retired, stranded = c.run(adopted + 2*30 + contracts.ReplicaCheckInterval)
				if len(retired) != 1 || retired[0] != "deadline" || len(stranded) != 1 || stranded[0] != id.Hex() {
					t.Fatalf("after the held window: retired %v, stranded %v", retired, stranded)
				}
				return
			}
			if r := h.sendPartials(c.gk, keyPartials(c.gk, c.upload, c.w4)); event(r, "contract_deployed", "worker") != c.w4.identity.Public().Hex() {
				t.Fatalf("late replacement: %v", r.Events)
			}
			rk := h.untilRekey(contracts.ReplicaCheckInterval)
			if rk.Era != 1 || rk.Epoch != 1 {
				t.Fatalf("rekey %+v", rk)
			}
			p := epochPartials(c.w3, c.upload, id, 1, 1, c.w4)
			h.sendPartials(c.w3, p)
			newE, _, _ := crypto.GenerateKeyPair()
			if r := h.reportKeys(c.w4, p.Round(), c.upload, id, newE.Public()); event(r, "contract_rekeyed", "key_era") != "1" {
				t.Fatalf("report: %v", r.Events)
			}
			h.stateUpdate(c.contract, h.height, api.EmptyStateRoot, [32]byte{1}, 0)
			_, stranded = c.run(h.height + contracts.ReplicaCheckInterval)
			if why := c.retiredEra0(); why != "unused" || len(stranded) != 0 {
				t.Fatalf("era 0 retired %q, stranded %v", why, stranded)
			}
			if rec := h.contractRecord(id); len(rec.Workers) != 1 || rec.KeyEra != 1 {
				t.Fatalf("record %+v", rec)
			}
		})
	}
}
