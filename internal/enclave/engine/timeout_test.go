package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
)

// A contract's execution timeout ([Improvement] of "Offline Worker
// Detection"): both replicas acknowledge the blocks whose commands they
// executed; when one stops reaching the chain, the next command's check,
// timeout blocks later, charges it and not the other.
func TestExecutionTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	const timeout = 6
	ch := newChain(t)
	gk := ch.engine(t, ch.gkDir)
	w1 := ch.engine(t, t.TempDir())
	w2 := ch.engine(t, t.TempDir())
	for _, e := range []*Engine{gk, w1, w2} {
		register(t, ch, e, bob)
	}
	bobS, aliceS := ch.c.NewSigner(bob), ch.c.NewSigner(alice)
	// Bob stakes both workers: the penalty comes out of that stake.
	const stake = 100 * api.Unit
	for _, c := range []api.Call{&api.StakeBond{Amount: 2 * stake}, &api.StakeAllocate{Node: w1.Identity(), Amount: stake}, &api.StakeAllocate{Node: w2.Identity(), Amount: stake}} {
		if _, err := bobS.Submit(ctx(t), c); err != nil {
			t.Fatal(err)
		}
	}
	nodeStake := func(w crypto.PublicKey) uint64 {
		v, _, err := queryRaw(t, ch.c, api.QueryStakeNode, w[:])
		if err != nil || v == nil {
			return 0
		}
		n, err := api.DecodeNodeStake(v)
		if err != nil {
			t.Fatal(err)
		}
		return n.Total
	}
	wasm := emitterWasm(t)
	if _, err := aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, wasm), Replicas: 2, ExecTimeout: timeout}); err != nil {
		t.Fatal(err)
	}
	upload := api.UploadID(alice.Public(), sha256.Sum256(wasm), 0)
	var rec *api.ContractRecord
	waitFor(t, 60*time.Second, "the contract running on both workers", func() bool {
		relay(t, ch, bobS, gk, w1, w2)
		if v, _, _ := queryRaw(t, ch.c, api.QueryContractUpload, upload[:]); len(v) == 32 {
			cv, _, _ := queryRaw(t, ch.c, api.QueryContract, v)
			rec, _ = api.DecodeContractRecord(cv)
		}
		return rec != nil && rec.Status == api.ContractRunning
	})
	if len(rec.Workers) != 2 || rec.ExecTimeout != timeout {
		t.Fatalf("record: %+v", rec)
	}
	nonce := uint64(0)
	command := func() int64 {
		nonce++
		in := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 0), 1)
		chn, err := channel.New(alice, rec.Ecdh, api.ChannelPurposeCommand)
		if err != nil {
			t.Fatal(err)
		}
		res, err := aliceS.Submit(ctx(t), &api.ContractCommand{Contract: rec.Identity, Nonce: nonce, GasLimit: testGas, Sealed: chn.Seal(api.Pad(in), api.CommandAD(rec.Identity, alice.Public(), nonce))})
		if err != nil {
			t.Fatal(err)
		}
		return res.Height
	}
	acked := func(w crypto.PublicKey) int64 {
		v, _, err := queryRaw(t, ch.c, api.QueryExecuted, append(rec.Identity[:], w[:]...))
		if err != nil || len(v) != 8 {
			return 0
		}
		return int64(binary.BigEndian.Uint64(v))
	}
	// Both acknowledge in time: nobody is charged.
	h1 := command()
	waitFor(t, 30*time.Second, "both acknowledgements", func() bool {
		relay(t, ch, bobS, gk, w1, w2)
		return acked(w1.Identity()) >= h1 && acked(w2.Identity()) >= h1
	})
	// w2's acknowledgements stop reaching the chain.
	before1, before2 := nodeStake(w1.Identity()), nodeStake(w2.Identity())
	h2 := command()
	var missed map[string]bool
	waitFor(t, 30*time.Second, "the timeout check", func() bool {
		relay(t, ch, bobS, gk, w1)
		syncTo(t, ch, w2)
		top, err := ch.c.Height(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if top < h2+timeout {
			return false
		}
		missed = timeoutEvents(t, ch, h2+timeout)
		return true
	})
	if !missed[w2.Identity().Hex()] || missed[w1.Identity().Hex()] {
		t.Fatalf("charged at height %d: %v (w1 %s, w2 %s)", h2+timeout, missed, w1.Identity().Short(), w2.Identity().Short())
	}
	// (Measured from the stakes before the second command: a slow relay
	// may already have made the first one late.)
	penalty := before2 * api.DefaultParams().TimeoutPenaltyPPM / 1_000_000
	if got1, got2 := nodeStake(w1.Identity()), nodeStake(w2.Identity()); got1 != before1 || got2 != before2-penalty || penalty == 0 {
		t.Fatalf("stakes after the check: w1 %d (had %d), w2 %d (had %d, penalty %d)", got1, before1, got2, before2, penalty)
	}
	if acked(w1.Identity()) < h2 || acked(w2.Identity()) >= h2 {
		t.Fatalf("acknowledged: w1 %d, w2 %d, command at %d", acked(w1.Identity()), acked(w2.Identity()), h2)
	}
}

// timeoutEvents returns the workers the block at height charged for a
// missed execution timeout.
func timeoutEvents(t *testing.T, ch *chain, height int64) map[string]bool {
	t.Helper()
	res, err := ch.c.RPC().BlockResults(ctx(t), &height)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range res.FinalizeBlockEvents {
		if e.Type != "execution_timeout" {
			continue
		}
		for _, a := range e.Attributes {
			if a.Key == "worker" {
				out[a.Value] = true
			}
		}
	}
	return out
}
