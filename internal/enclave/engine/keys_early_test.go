package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/testnet"
)

// P4's second half with real pRuntimes (docs/keys.md, "A third of the
// set down"): three seats, four staked candidates, heartbeats on. The
// set elected at era 0's end (threshold 3 of 3) serves a token contract
// with balances; then one member's pRuntime is paused (nothing relayed to
// or from it): the set can derive no key any more. Within era 1, the
// chain finds it down (two heartbeat challenges closed unanswered), a
// third of the set, and elects the set of era 2 at once, without it; the
// new set's DKG is adopted, the contract rekeys to the new key era and
// re-encrypts its state, and a transfer sealed to its new key runs: the
// balances are exact. No era end falls after the first election.
func TestEarlyReelectionKeepsContractsRunning(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	const eraLength = 160
	code := contracttest.Build(t, filepath.Join("..", "..", "..", "examples", "contracts", "token"))
	// Blocks every ~0.4 s, so that the relay keeps up with the
	// heartbeats.
	h := newRecoveryHarnessOpts(t, func(g *api.GenesisState) {
		g.Params.EraLength = eraLength
		g.Params.NGatekeepers = 3
		g.Params.HeartbeatsPerEra = eraLength / 4 // each node at one block in four or so
		g.Params.HeartbeatWindow = 24             // a pRuntime compiling a contract may not answer for a few seconds
	}, testnet.Options{TimeoutCommit: 300 * time.Millisecond})
	w1 := h.ch.engine(t, t.TempDir())
	register(t, h.ch, w1, bob)
	cands := electSeats(t, h, 4, 3, relayFast, w1)
	workers := []*Engine{w1, h.gk}
	all := append(slices.Clone(cands), workers...)
	syncTo(t, h.ch, w1)
	set1 := w1.st.keySets[w1.st.servingKeyEra]
	if set1 == nil || set1.Era != 1 || set1.T != 3 || len(set1.Members) != 3 {
		t.Fatalf("the first elected key set %+v", set1)
	}
	logHeight := func(what string) {
		top, _ := h.ch.c.Height(ctx(t))
		t.Logf("height %d: %s", top, what)
	}
	logHeight("the first set serves")
	byID := map[crypto.PublicKey]*Engine{}
	for _, e := range all {
		byID[e.Identity()] = e
	}

	// The record, read unproved (a proved read waits a block, during which
	// nothing is relayed).
	record := func() *api.ContractRecord {
		t.Helper()
		res, err := h.ch.c.RPC().ABCIQuery(ctx(t), api.QueryContractUpload, h.upload[:])
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Response.Value) != 32 {
			return nil
		}
		if res, err = h.ch.c.RPC().ABCIQuery(ctx(t), api.QueryContract, res.Response.Value); err != nil {
			t.Fatal(err)
		}
		r, err := api.DecodeContractRecord(res.Response.Value)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// The token, with balances.
	if _, err := h.aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, code), Replicas: 1, CheckpointInterval: 3}); err != nil {
		t.Fatal(err)
	}
	h.upload = api.UploadID(alice.Public(), sha256.Sum256(code), 0)
	var rec *api.ContractRecord
	waitFor(t, 2*time.Minute, "the token running", func() bool {
		relayFast(t, h.ch, h.bobS, all...)
		rec = record()
		return rec != nil && rec.Status == api.ContractRunning && len(rec.Workers) == 1
	})
	if rec.KeyEra != set1.Era {
		t.Fatalf("the token's key era %d, want %d", rec.KeyEra, set1.Era)
	}
	// On the candidate that was not elected, the token would lose its
	// worker when the early election seats it (gatekeepers run no
	// contract) and need a replacement under key era 1, which the set
	// with a member down can no longer provision: move it to a worker
	// first.
	if slices.ContainsFunc(cands, func(e *Engine) bool { return e.Identity() == rec.Workers[0] }) {
		if _, err := h.aliceS.Submit(ctx(t), &api.ContractReassign{Contract: rec.Identity, Worker: rec.Workers[0]}); err != nil {
			t.Fatal(err)
		}
		var to *Engine
		waitFor(t, 2*time.Minute, "the token granted to a worker", func() bool {
			relayFast(t, h.ch, h.bobS, all...)
			for _, w := range workers {
				if len(w.Info().Recovering) == 1 {
					to = w
				}
			}
			return to != nil
		})
		syncTo(t, h.ch, to)
		if n, err := recoverAll(t, h.ch, to, nil); err != nil || n != 1 {
			t.Fatalf("recovery: %d, %v", n, err)
		}
		waitFor(t, 2*time.Minute, "the token running on a worker", func() bool {
			relayFast(t, h.ch, h.bobS, all...)
			rec = record()
			_, ok := to.running[rec.Identity]
			return ok && rec.Status == api.ContractRunning && slices.Equal(rec.Workers, []crypto.PublicKey{to.Identity()})
		})
	}
	nonce := uint64(0)
	command := func(input string) {
		t.Helper()
		r := record()
		nonce++
		chn, err := channel.New(alice, r.Ecdh, api.ChannelPurposeCommand)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.aliceS.Submit(ctx(t), &api.ContractCommand{Contract: r.Identity, Nonce: nonce, GasLimit: testGas,
			Sealed: chn.Seal(api.Pad([]byte(input)), api.CommandAD(r.Identity, alice.Public(), nonce))}); err != nil {
			t.Fatal(err)
		}
	}
	balance := func(who *crypto.KeyPair) string {
		t.Helper()
		r := record()
		return queryBalance(t, byID[r.Workers[0]], r, who)
	}
	balances := func(what, wantAlice, wantBob string) {
		t.Helper()
		waitFor(t, 2*time.Minute, what, func() bool {
			relayFast(t, h.ch, h.bobS, all...)
			return balance(alice) == wantAlice && balance(bob) == wantBob
		})
	}
	command("mint " + alice.Public().Hex() + " 100")
	command("mint " + bob.Public().Hex() + " 77")
	balances("the minted balances", "100", "77")
	logHeight("minted")

	// One member down: its pRuntime paused.
	paused := byID[set1.Members[0]]
	up := slices.DeleteFunc(slices.Clone(all), func(e *Engine) bool { return e == paused })
	pausedAt, err := h.ch.c.Height(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var set2 *api.KeySet
	waitFor(t, 5*time.Minute, "the early-elected set's key set serving", func() bool {
		relayFast(t, h.ch, h.bobS, up...)
		set2 = w1.st.keySets[w1.st.servingKeyEra]
		return set2 != nil && set2.Era > set1.Era
	})
	logHeight("the early set serves")
	el, _, err := h.ch.c.Election(ctx(t), set1.Era+1)
	if err != nil {
		t.Fatal(err)
	}
	if el == nil {
		t.Fatalf("no election record of era %d", set1.Era+1)
	}
	// The early election's event names the paused member alone as down.
	var event map[string]string
	hh := el.Height
	br, err := h.ch.c.RPC().BlockResults(ctx(t), &hh)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range br.FinalizeBlockEvents {
		if ev.Type == "gatekeeper_early_election" {
			event = map[string]string{}
			for _, a := range ev.Attributes {
				event[a.Key] = a.Value
			}
		}
	}
	if set2.Era != set1.Era+1 || el.Status != api.ElectionActive || el.Height <= pausedAt || el.Height >= 2*eraLength ||
		!slices.Equal(set2.Members, el.Confirmed) || len(set2.Members) != 3 || set2.Index(paused.Identity()) >= 0 ||
		event == nil || event["down"] != paused.Identity().Hex() || event["during_era"] != "1" {
		for _, e := range all {
			res, _ := h.ch.c.RPC().ABCIQuery(ctx(t), api.QueryChallenge, e.Identity().Bytes())
			t.Logf("%s: outstanding challenges %x", e.Identity(), res.Response.Value)
		}
		t.Fatalf("paused at %d; early election %+v (event %v), key set %+v", pausedAt, el, event, set2)
	}
	fourth := slices.IndexFunc(cands, func(e *Engine) bool { return set1.Index(e.Identity()) < 0 })
	if set2.Index(cands[fourth].Identity()) < 0 {
		t.Fatal("the fourth candidate is not in the early-elected set")
	}

	// The token rekeys to the new key era (its state re-encrypted), and
	// a transfer sealed to its new key runs.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		relayFast(t, h.ch, h.bobS, up...)
		r := record()
		if r != nil && r.KeyEra == set2.Era && r.KeyEpoch == 1 && !r.Migrating {
			break
		}
		if time.Now().After(deadline) {
			top, _ := h.ch.c.Height(ctx(t))
			t.Fatalf("height %d: the token not under the new key era: %+v", top, r)
		}
	}
	logHeight("rekeyed")
	if r := h.record(t); r.Ecdh == rec.Ecdh {
		t.Fatal("the token's ECDH key did not rotate")
	}
	command("transfer " + bob.Public().Hex() + " 30")
	balances("the balances after the transfer", "70", "107")
	if top, err := h.ch.c.Height(ctx(t)); err != nil || top >= 2*eraLength {
		t.Fatalf("height %d: an era end fell in the test (%v)", top, err)
	}
}

// relayFast is relayBatch reading each origin's next sequence once per
// call and unproved (from the test's own node): with heartbeats on, a
// proved read per message waits a block each, and the relay falls behind
// the chain (the heartbeats then come too late).
func relayFast(t testing.TB, ch *chain, s *client.Signer, es ...*Engine) {
	t.Helper()
	next := map[api.Origin]uint64{}
	relayWith(t, ch, s, func(o api.Origin) uint64 {
		n, ok := next[o]
		if !ok {
			res, err := ch.c.RPC().ABCIQuery(ctx(t), api.QueryNextSeq, o.Encode())
			if err != nil {
				t.Fatal(err)
			}
			n, _ = binary.Uvarint(res.Response.Value)
			next[o] = n
		}
		return n
	}, es...)
}
