package engine

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"

	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/share"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/gatekeeper"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/threshold"
)

// relayBatch is relay without waiting for each message's block: every
// engine's egress the chain has not taken is broadcast at once (in
// order, with consecutive nonces), then it waits for the next block. A
// DKG's messages fit its deal window so.
func relayBatch(t testing.TB, ch *chain, s *client.Signer, es ...*Engine) {
	t.Helper()
	relayWith(t, ch, s, func(o api.Origin) uint64 {
		v, _, err := queryRaw(t, ch.c, api.QueryNextSeq, o.Encode())
		if err != nil {
			t.Fatal(err)
		}
		next, _ := binary.Uvarint(v)
		return next
	}, es...)
}

// relayWith broadcasts every engine's egress from the origin's next
// sequence on (next), in order, then waits for the next block.
func relayWith(t testing.TB, ch *chain, s *client.Signer, next func(api.Origin) uint64, es ...*Engine) {
	t.Helper()
	syncTo(t, ch, es...)
	sent := false
	for _, e := range es {
		for _, m := range e.Egress() {
			if m.Message.Seq < next(m.Message.Origin) {
				continue
			}
			tx, err := s.Sign(ctx(t), &api.PushMessage{Message: m})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ch.c.Broadcast(ctx(t), tx.Encode()); err != nil {
				s.Resync()
				t.Logf("broadcast %s: %v", m.Message.Topic, err)
				return
			}
			sent = true
		}
	}
	if !sent {
		return
	}
	h, err := ch.c.Height(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.c.SignedHeader(ctx(t), h+1); err != nil {
		t.Fatal(err)
	}
}

// electSet stakes and declares n new pRuntimes candidates, and relays
// (with also) until the chain adopted their DKG's key set and they serve.
func electSet(t testing.TB, h *recoveryHarness, n int, also ...*Engine) []*Engine {
	t.Helper()
	return electSeats(t, h, n, n, relayBatch, also...)
}

// electSeats is electSet with n candidates for seats (≤ n) seats, relayed
// by relay: it relays until seats of them serve. Between its transactions
// it relays the engines registered so far (the genesis gatekeeper, also,
// the candidates), so their heartbeats, if the chain asks for them, come
// in time.
func electSeats(t testing.TB, h *recoveryHarness, n, seats int, relay func(testing.TB, *chain, *client.Signer, ...*Engine), also ...*Engine) []*Engine {
	t.Helper()
	ms, up := declareCandidates(t, h, n, relay, also...)
	waitFor(t, 10*time.Minute, "the elected set's key set adopted and serving", func() bool {
		relay(t, h.ch, h.bobS, up...)
		v, _, err := queryRaw(t, h.ch.c, api.QueryGatekeepers, nil)
		if err != nil {
			t.Fatal(err)
		}
		ks, _ := api.DecodeKeys(v)
		return len(ks) == seats && !slices.Contains(ks, h.gk.Identity())
	})
	return ms
}

// declareCandidates is electSeats's first half: n new pRuntimes
// registered, each staked 100 units by bob and declared a candidate. It
// returns them, and the engines it relayed (the genesis gatekeeper,
// also, the candidates).
func declareCandidates(t testing.TB, h *recoveryHarness, n int, relay func(testing.TB, *chain, *client.Signer, ...*Engine), also ...*Engine) (ms, up []*Engine) {
	t.Helper()
	ms = make([]*Engine, n)
	for i := range ms {
		ms[i] = h.ch.engine(t, t.TempDir())
	}
	up = append([]*Engine{h.gk}, also...)
	h.bobS = h.ch.c.NewSigner(bob)
	submit := func(c api.Call) {
		t.Helper()
		if _, err := h.bobS.Submit(ctx(t), c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		relay(t, h.ch, h.bobS, up...)
	}
	for _, m := range ms {
		syncTo(t, h.ch, m)
		reg, err := m.Registration(bob.Public())
		if err != nil {
			t.Fatal(err)
		}
		up = append(up, m)
		submit(reg)
	}
	submit(&api.StakeBond{Amount: 100 * api.Unit * uint64(n)})
	for _, m := range ms {
		submit(&api.StakeAllocate{Node: m.Identity(), Amount: 100 * api.Unit})
		submit(&api.GatekeeperCandidacy{Node: m.Identity(), On: true})
	}
	return ms, up
}

// leakedShares reads each member's sealed share of era from its data
// directory (standing for a leak of its sealed files), by share index.
func leakedShares(t *testing.T, set *api.KeySet, ms []*Engine) map[int]kyber.Scalar {
	t.Helper()
	out := map[int]kyber.Scalar{}
	for _, m := range ms {
		shares, err := gatekeeper.LoadShares(m.sealer, m.cfg.DataDir)
		if err != nil || shares[set.Era] == nil {
			t.Fatalf("member %s: no sealed share of era %d: %v", m.Identity().Short(), set.Era, err)
		}
		out[set.Index(m.Identity())] = shares[set.Era]
	}
	return out
}

// An elected set of 4 makes its MasterKey by DKG (threshold 3) and serves
// a contract: the worker combines 3 members' partials. P1 with the sealed
// files of real pRuntimes: any 2 members' shares interpolate to another
// secret than the MasterKey and give no contract key, any 3 give both.
// P4: with one member down (its pRuntime stopped), the 3 others provision
// a newly assigned worker, which recovers the contract.
// (The genesis gatekeeper, retired by the election, is a worker too.)
func TestThresholdKeySetServesContracts(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	h := newRecoveryHarnessWith(t, func(g *api.GenesisState) {
		g.Params.EraLength = 100 // one rotation in the test
		g.Params.NGatekeepers = 4
	})
	w1 := h.ch.engine(t, t.TempDir())
	register(t, h.ch, w1, bob)
	ms := electSet(t, h, 4, w1)
	syncTo(t, h.ch, w1)
	set := w1.st.keySets[w1.st.servingKeyEra]
	if set == nil || set.Era == 0 || set.T != 3 || len(set.Members) != 4 || len(set.Commits) != 3 {
		t.Fatalf("serving key set %+v", set)
	}
	for _, m := range ms {
		if !m.gk.Holds(set.Era) || m.role != RoleGatekeeper {
			t.Fatalf("member %s: share %v, role %s", m.Identity().Short(), m.gk.Holds(set.Era), m.role)
		}
	}

	h.uploadOnly(t, 1)
	// The retired genesis gatekeeper is a worker now: either it or w1
	// runs the contract.
	workers := []*Engine{w1, h.gk}
	var rec *api.ContractRecord
	waitFor(t, 120*time.Second, "the contract running on a worker", func() bool {
		relayBatch(t, h.ch, h.bobS, append(workers, ms...)...)
		rec = h.record(t)
		return rec != nil && rec.Status == api.ContractRunning && len(rec.Workers) == 1
	})
	runner, other := w1, h.gk
	if rec.Workers[0] == h.gk.Identity() {
		runner, other = h.gk, w1
	}
	if rec.KeyEra != set.Era {
		t.Fatalf("contract key era %d, want %d", rec.KeyEra, set.Era)
	}

	// P1, from the members' sealed files.
	x := threshold.Suite.Point().Base()
	cs, err := threshold.DecodeCommits(set.Commits)
	if err != nil {
		t.Fatal(err)
	}
	master := cs[0]
	leaked := leakedShares(t, set, ms)
	hp := threshold.ContractPoint(h.upload, 0, set.Era)
	seedOf := func(idx []int, th int) ([32]byte, kyber.Point, error) {
		var pri []*share.PriShare
		var parts []*threshold.Partial
		for _, i := range idx {
			pri = append(pri, &share.PriShare{I: i, V: leaked[i]})
			p, err := threshold.Evaluate(pri[len(pri)-1], hp)
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, p)
		}
		secret, err := share.RecoverSecret(threshold.Suite, pri, th, len(set.Members))
		if err != nil {
			return [32]byte{}, nil, err
		}
		xh, err := threshold.Combine(parts, th, len(set.Members))
		if err != nil {
			return [32]byte{}, nil, err
		}
		seed, err := threshold.ContractSeed(xh, h.upload, 0)
		return seed, threshold.Suite.Point().Mul(secret, x), err
	}
	for _, pair := range [][]int{{0, 1}, {1, 2}, {2, 3}, {0, 3}} {
		if _, _, err := seedOf(pair, int(set.T)); !errors.Is(err, threshold.ErrTooFew) && err == nil {
			t.Fatalf("members %v derived a key below the threshold", pair)
		}
		// Treated as if 2 sufficed, they interpolate to another secret
		// and another contract key.
		seed, pub, err := seedOf(pair, 2)
		if err != nil {
			t.Fatal(err)
		}
		ck, _ := keys.ContractKeysFromSeed(seed)
		if pub.Equal(master) || ck.Identity.Public() == rec.Identity {
			t.Fatalf("members %v learned the MasterKey or the contract key", pair)
		}
	}
	for _, three := range [][]int{{0, 1, 2}, {1, 2, 3}, {0, 2, 3}} {
		seed, pub, err := seedOf(three, int(set.T))
		if err != nil {
			t.Fatal(err)
		}
		ck, _ := keys.ContractKeysFromSeed(seed)
		if !pub.Equal(master) || ck.Identity.Public() != rec.Identity {
			t.Fatalf("members %v: not the MasterKey or not the contract's key", three)
		}
	}

	// P4: one member down; the deployer moves the contract to the other
	// worker, which the other three members provision.
	up := append(slices.Clone(ms[:3]), workers...)
	syncTo(t, h.ch, up...)
	if _, err := h.aliceS.Submit(ctx(t), &api.ContractReassign{Contract: rec.Identity, Worker: runner.Identity()}); err != nil {
		t.Fatal(err)
	}
	// (240 s: under a loaded CI, with a 4-validator benchmark beside it,
	// 120 s ran out once; alone this takes a few seconds.)
	waitFor(t, 240*time.Second, "the other worker provisioned by 3 of 4 members", func() bool {
		relayBatch(t, h.ch, h.bobS, up...)
		return len(other.Info().Recovering) == 1
	})
	syncTo(t, h.ch, other)
	if n, err := recoverAll(t, h.ch, other, nil); err != nil || n != 1 {
		t.Fatalf("recovery: %d, %v", n, err)
	}
	waitFor(t, 120*time.Second, "the contract running on the other worker", func() bool {
		relayBatch(t, h.ch, h.bobS, up...)
		r := h.record(t)
		_, ok := other.running[rec.Identity]
		return ok && r.Status == api.ContractRunning && slices.Equal(r.Workers, []crypto.PublicKey{other.Identity()})
	})
}

// A grant the chain accepted before this worker holds T valid partials
// of its round (a member's partial did not verify) is kept, and taken
// once the round's key combines from the other members' partials: a
// replacement worker then recovers the contract; an arbiter whose
// dispute closed meanwhile does nothing.
func TestGrantAwaitsItsKey(t *testing.T) {
	ch := newChain(t)
	e := ch.engine(t, t.TempDir())
	seed := [crypto.SeedSize]byte{9}
	ck, err := keys.ContractKeysFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	id, upload, round := ck.Identity.Public(), [32]byte{1}, [32]byte{2}
	me := e.Identity()
	e.st.deployed[id] = &deployment{upload: upload, workers: []crypto.PublicKey{me}}
	e.st.rounds[round] = &keyRound{upload: upload, partials: map[int][]byte{}}
	g := &api.ContractKeyGrant{Upload: upload, Identity: id, Ecdh: ck.Ecdh.Public(), Round: round, Workers: []crypto.PublicKey{me}}
	c := &Context{e: e, Height: 40}
	if err := e.takeGrant(c, &api.ContractDeployed{Contract: id, Upload: upload, Workers: []crypto.PublicKey{me}, Grant: g.Encode()}, true); err != nil {
		t.Fatal(err)
	}
	if e.st.awaiting[round] == nil || e.st.recovering[id] != nil {
		t.Fatal("the grant without its key was not kept for later")
	}
	// The key combines (the other members' partials arrived).
	e.st.rounds[round].seed = &seed
	if err := e.takeAwaited(round); err != nil {
		t.Fatal(err)
	}
	if hk := e.st.recovering[id]; hk == nil || hk.seed != seed || hk.height != 40 || e.st.awaiting[round] != nil || e.st.rounds[round] != nil {
		t.Fatalf("awaited grant not taken: %+v", hk)
	}
	// The state (with an awaited grant) survives the checkpoint encoding.
	e.st.awaiting[round] = &awaitedGrant{kind: awaitArbiter, grant: g.Encode(), height: 7, at: 41}
	st, err := decodeState(e.st.encode())
	if err != nil || st.awaiting[round] == nil || st.awaiting[round].height != 7 || string(st.awaiting[round].grant) != string(g.Encode()) {
		t.Fatalf("awaited grant not checkpointed: %v", err)
	}
	// An arbiter's grant whose dispute is no longer open is dropped.
	e.st.rounds[round] = &keyRound{upload: upload, seed: &seed}
	if err := e.takeAwaited(round); err != nil || e.st.arbitrating[id] != nil || e.st.awaiting[round] != nil {
		t.Fatalf("an awaited arbiter grant of a closed dispute was taken: %v", err)
	}
}

// A worker's EcdhKey rotates once per era (docs/keys.md, "EcdhKey
// rotation"): a renewal in a later era carries a fresh key; when the
// chain adopted it the old secret is gone from the sealed entity file;
// partials sealed to the new key open (a contract uploaded after runs on
// it), and the contract it ran before keeps running.
func TestEcdhKeyRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	h := newRecoveryHarnessWith(t, func(g *api.GenesisState) { g.Params.EraLength = 20 })
	w := h.ch.engine(t, t.TempDir())
	register(t, h.ch, w, bob)
	h.bobS = h.ch.c.NewSigner(bob)
	old := w.entity.Ecdh.Public()
	first := h.deploy(t, 1, w)
	// Into the next era, then the renewal.
	waitFor(t, 60*time.Second, "the next era", func() bool {
		relayBatch(t, h.ch, h.bobS, h.gk, w)
		return w.st.dispatched > 21
	})
	register(t, h.ch, w, bob)
	h.bobS = h.ch.c.NewSigner(bob)
	syncTo(t, h.ch, h.gk, w)
	rec := w.st.workers[w.Identity()]
	if rec.Info.EcdhKey == old || rec.Info.EcdhKey != w.entity.Ecdh.Public() || w.entity.Pending != nil {
		t.Fatalf("registered ECDH key %s, held %s (old %s)", rec.Info.EcdhKey.Short(), w.entity.Ecdh.Public().Short(), old.Short())
	}
	sealed, _, err := keys.LoadEntity(sim(t, w.cfg.DataDir), w.cfg.DataDir)
	if err != nil || sealed.Ecdh.Public() != rec.Info.EcdhKey || sealed.Pending != nil || sealed.EcdhFor(old) != nil {
		t.Fatalf("sealed entity keys still hold the old ECDH key: %v", err)
	}
	// A contract provisioned after: partials sealed to the new key.
	wasm := emitterWasm(t)
	if _, err := h.aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, wasm), Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 120*time.Second, "a second contract running on the rotated worker", func() bool {
		relayBatch(t, h.ch, h.bobS, h.gk, w)
		return len(w.running) == 2
	})
	if _, ok := w.running[first.Identity]; !ok {
		t.Fatal("the contract deployed before the rotation stopped")
	}
}
