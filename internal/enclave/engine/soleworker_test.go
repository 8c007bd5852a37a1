package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// The issue's trial with real pRuntimes (docs/keys.md, "A contract that
// loses its last worker"): a contract runs on one worker; that worker
// stands for the one gatekeeper seat and is elected; it leaves the
// contract (gatekeepers run no contract); the genesis gatekeeper, member
// of the contract's key era 0 though no longer serving, provisions the
// other worker, which recovers the contract; the contract rekeys to the
// elected set's key era and key era 0 is retired unused: nothing
// stranded.
func TestSoleWorkerElectedReplaced(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	ch := newChainWith(t, func(g *api.GenesisState) {
		g.Params.EraLength = 30
		g.Params.NGatekeepers = 1
		g.Params.KeyMigrationEras = 1
	})
	gk := ch.engine(t, ch.gkDir)
	wa := ch.engine(t, t.TempDir())
	wb := ch.engine(t, t.TempDir())
	all := []*Engine{gk, wa, wb}
	for _, e := range all {
		register(t, ch, e, bob)
	}
	bobS := ch.c.NewSigner(bob)
	aliceS := ch.c.NewSigner(alice)
	wasm := emitterWasm(t)
	if _, err := aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, wasm), Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	upload := api.UploadID(alice.Public(), sha256.Sum256(wasm), 0)
	record := func() *api.ContractRecord {
		v, _, _ := queryRaw(t, ch.c, api.QueryContractUpload, upload[:])
		if len(v) != 32 {
			return nil
		}
		cv, _, _ := queryRaw(t, ch.c, api.QueryContract, v)
		rec, _ := api.DecodeContractRecord(cv)
		return rec
	}
	var rec *api.ContractRecord
	waitFor(t, 60*time.Second, "the contract running", func() bool {
		relay(t, ch, bobS, all...)
		rec = record()
		return rec != nil && rec.Status == api.ContractRunning && len(rec.Workers) == 1
	})
	sole, other := wa, wb
	if rec.Workers[0] == wb.Identity() {
		sole, other = wb, wa
	}
	for _, c := range []api.Call{
		&api.StakeBond{Amount: 100 * api.Unit},
		&api.StakeAllocate{Node: sole.Identity(), Amount: 100 * api.Unit},
		&api.GatekeeperCandidacy{Node: sole.Identity(), On: true},
	} {
		if _, err := bobS.Submit(ctx(t), c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	waitFor(t, 120*time.Second, "the sole worker elected and serving", func() bool {
		relay(t, ch, bobS, all...)
		v, _, err := queryRaw(t, ch.c, api.QueryGatekeepers, nil)
		if err != nil {
			t.Fatal(err)
		}
		ks, _ := api.DecodeKeys(v)
		return len(ks) == 1 && ks[0] == sole.Identity()
	})
	t.Logf("elected; record %v", rec.Workers)
	recovered := false
	waitFor(t, 180*time.Second, "the contract on the other worker, rekeyed to the elected set's key era", func() bool {
		relay(t, ch, bobS, all...)
		if !recovered && len(other.Info().Recovering) == 1 {
			if n, err := recoverAll(t, ch, other, nil); err == nil && n == 1 {
				recovered = true
			}
		}
		rec = record()
		return rec != nil && len(rec.Workers) == 1 && rec.Workers[0] == other.Identity() && rec.KeyEra > 0 && !rec.Migrating
	})
	v, _, err := queryRaw(t, ch.c, api.QueryKeyEraRetired, binary.BigEndian.AppendUint64(nil, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(v) > 0 && v[len(v)-1] != 0 {
		t.Fatalf("key era 0 retired at its deadline: %x", v)
	}
	var _ crypto.PublicKey
}
