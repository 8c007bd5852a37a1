package engine

import (
	"crypto/sha256"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/internal/wat"
)

func watFile(t *testing.T, name string) []byte {
	t.Helper()
	src, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := wat.Compile(string(src))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Deployment status is honest: an upload made while no worker can run it
// waits (no record) and is provisioned as soon as one registers; a module
// that does not validate, one whose start function never returns and one
// whose init refuses are each reported failed on chain with the reason,
// and the chain refuses commands to them; a good module is reported
// running.
func TestDeploymentStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + contracts")
	}
	ch := newChain(t)
	gk := ch.engine(t, ch.gkDir)
	w := ch.engine(t, t.TempDir())
	bobS, aliceS := ch.c.NewSigner(bob), ch.c.NewSigner(alice)
	register(t, ch, gk, bob)
	relay(t, ch, bobS, gk)

	seq := uint64(0)
	upload := func(code []byte) [32]byte {
		t.Helper()
		if _, err := aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, code), Replicas: 1}); err != nil {
			t.Fatal(err)
		}
		seq++
		return api.UploadID(alice.Public(), sha256.Sum256(code), seq-1)
	}
	record := func(id [32]byte) *api.ContractRecord {
		v, _, _ := queryRaw(t, ch.c, api.QueryContractUpload, id[:])
		if len(v) != 32 {
			return nil
		}
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
	settled := func(id [32]byte) *api.ContractRecord {
		t.Helper()
		var rec *api.ContractRecord
		waitFor(t, 90*time.Second, "the contract's start report on chain", func() bool {
			relay(t, ch, bobS, gk, w)
			rec = record(id)
			return rec != nil && rec.Status != api.ContractStarting
		})
		return rec
	}

	// No worker yet: the upload is pending, with no record.
	early := upload(emitterWasm(t))
	relay(t, ch, bobS, gk, w)
	relay(t, ch, bobS, gk, w)
	if rec := record(early); rec != nil {
		t.Fatalf("deployed with no worker: %+v", rec)
	}
	v, _, err := queryRaw(t, ch.c, api.QueryUploadPending, early[:])
	if err != nil {
		t.Fatal(err)
	}
	if p, err := api.DecodeUploadPending(v); err != nil || p.Deployer != alice.Public() || p.Height <= 0 {
		t.Fatalf("pending upload: %+v %v", p, err)
	}
	// A worker registers: the gatekeeper provisions the waiting upload.
	register(t, ch, w, bob)
	bobS.Resync() // register signed with another signer of bob's
	if rec := settled(early); rec.Status != api.ContractRunning || rec.Reason != "" || len(rec.Workers) != 1 || rec.Workers[0] != w.Identity() {
		t.Fatalf("the early upload: %+v", rec)
	}

	for _, c := range []struct {
		name   string
		code   []byte
		reason string
	}{
		{"invalid module", []byte("\x00asm\x01\x00\x00\x00\xff\xff"), "invalid module"},
		{"start function never returns", watFile(t, "spin.wat"), "_initialize trapped or used up its 2000000000 gas"},
		{"init refuses", watFile(t, "failinit.wat"), "init returned an error: init refuses: no owner given"},
	} {
		rec := settled(upload(c.code))
		if rec.Status != api.ContractFailed || !strings.Contains(rec.Reason, c.reason) || rec.StatusHeight <= 0 {
			t.Fatalf("%s: record %v %q, want failed with %q", c.name, rec.Status, rec.Reason, c.reason)
		}
		if _, ok := w.ContractRoots()[rec.Identity]; ok {
			t.Fatalf("%s: the worker runs a failed contract", c.name)
		}
		// Its report, once on chain, leaves the worker's egress (the
		// worker does not run the contract, yet acknowledges its report).
		waitFor(t, 30*time.Second, "the failure report acknowledged", func() bool {
			relay(t, ch, bobS, gk, w)
			return !slices.ContainsFunc(w.Egress(), func(m api.SignedMessage) bool { return m.Message.Origin.Key == rec.Identity })
		})
		_, err := aliceS.Submit(ctx(t), &api.ContractCommand{Contract: rec.Identity, Nonce: 99, GasLimit: testGas, Sealed: []byte{1}})
		if !errors.Is(err, api.ErrInvalidCall) || !strings.Contains(err.Error(), "failed to start") || !strings.Contains(err.Error(), c.reason) {
			t.Fatalf("%s: command to a failed contract: %v", c.name, err)
		}
	}
}
