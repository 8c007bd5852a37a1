package engine

import (
	"bytes"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/relayer"
)

// lieOnce makes worker corrupt its next state update of a contract: one
// changed value altered, and the update's new root recomputed over the
// altered entries, so the lie is self-consistent (the chain's entries hash
// to the root it claims) and only recomputation reveals it. It returns
// the corrupted root once the lie was told.
func lieOnce(t *testing.T, worker crypto.PublicKey) func() ([32]byte, bool) {
	var mu sync.Mutex
	var told bool
	var root [32]byte
	cutHook = func(w, id crypto.PublicKey, u *api.StateUpdate, st *contracts.Store) {
		mu.Lock()
		defer mu.Unlock()
		if w != worker || told {
			return
		}
		i := slices.IndexFunc(u.Changes, func(c api.StateChange) bool { return c.Value != nil })
		if i < 0 {
			return
		}
		bad := bytes.Clone(u.Changes[i].Value)
		bad[len(bad)-1] ^= 0xff
		u.Changes[i].Value = bad
		var entries []api.StateChange
		st.Raw(func(loc, v []byte) {
			e := api.StateChange{Value: v}
			copy(e.Location[:], loc)
			if e.Location == u.Changes[i].Location {
				e.Value = bad
			}
			entries = append(entries, e)
		})
		u.NewRoot = contracts.RootOfEntries(u.Seq, entries)
		told, root = true, u.NewRoot
	}
	t.Cleanup(func() { cutHook = nil })
	return func() ([32]byte, bool) {
		mu.Lock()
		defer mu.Unlock()
		return root, told
	}
}

// Arbitration (docs/availability.md): a frivolous dispute of a correct
// update is upheld by the arbiter and its requester loses the bond; a
// worker made to lie (one corrupted update, self-consistent) is caught by
// the arbiter's recomputation: the chain rolls the contract back,
// slashes the liar's stake by arbitration_slash_ppm, removes and
// excludes it, and the replacement rebuilds the contract and writes the
// true state, accepted by the chain.
func TestArbitrationCatchesALiar(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	const bond, stake, slashPPM = 5 * api.Unit, 100 * api.Unit, 100_000
	h := newRecoveryHarnessWith(t, func(g *api.GenesisState) {
		g.Params.ArbitrationWindow, g.Params.Arbiters, g.Params.ArbitrationTimeout = 500, 1, 500
		g.Params.ArbitrationBond, g.Params.ArbitrationSlashPPM = bond, slashPPM
	})
	liar := h.ch.engine(t, t.TempDir())
	register(t, h.ch, liar, bob)
	h.bobS = h.ch.c.NewSigner(bob)
	for _, c := range []api.Call{&api.StakeBond{Amount: stake}, &api.StakeAllocate{Node: liar.Identity(), Amount: stake}} {
		if _, err := h.bobS.Submit(ctx(t), c); err != nil {
			t.Fatal(err)
		}
	}
	h.deploy(t, 1, liar)
	w2 := h.ch.engine(t, t.TempDir())
	register(t, h.ch, w2, bob)
	h.bobS = h.ch.c.NewSigner(bob)
	all := []*Engine{h.gk, liar, w2}

	h.command(t, 0, 10)
	h.command(t, 0, 20)
	var honest *api.Checkpoint
	waitFor(t, 60*time.Second, "an honest checkpoint", func() bool {
		relay(t, h.ch, h.bobS, all...)
		honest = h.checkpoint(t)
		return honest != nil && honest.Height >= h.last
	})

	// A frivolous dispute of the honest update, by someone who posts the
	// bond: upheld, the bond lost.
	carol, _, _ := crypto.GenerateKeyPair()
	if _, err := h.bobS.Submit(ctx(t), &api.Transfer{To: carol.Public(), Amount: 50 * api.Unit}); err != nil {
		t.Fatal(err)
	}
	carolS := h.ch.c.NewSigner(carol)
	if _, err := carolS.Submit(ctx(t), &api.ArbitrationRequest{Contract: h.id, Height: honest.Height + 1}); err == nil {
		t.Fatal("a dispute of a height with no update was accepted")
	}
	if _, err := carolS.Submit(ctx(t), &api.ArbitrationRequest{Contract: h.id, Height: honest.Height}); err != nil {
		t.Fatal(err)
	}
	verdict := func(height int64) *api.ArbitrationVerdict {
		t.Helper()
		var v *api.ArbitrationVerdict
		waitFor(t, 90*time.Second, "the arbitration's verdict", func() bool {
			relay(t, h.ch, h.bobS, all...)
			if _, err := recoverAll(t, h.ch, w2, nil); err != nil {
				t.Logf("arbiter: %v", err)
			}
			v = h.lastVerdict(t, height)
			return v != nil
		})
		return v
	}
	if v := verdict(honest.Height); v.Outcome != api.ArbitrationUpheld || v.Root != honest.Root || len(v.Slashed) != 0 {
		t.Fatalf("frivolous dispute: %+v", v)
	}
	acct, err := h.ch.c.Account(ctx(t), carol.Public())
	if err != nil {
		t.Fatal(err)
	}
	if acct.Balance > 50*api.Unit-bond || acct.Balance < 50*api.Unit-bond-api.Unit {
		t.Fatalf("the frivolous requester has %d units left of 50 PHA: the %d-unit bond was not taken (or too much was)", acct.Balance, uint64(bond))
	}

	// The liar corrupts its next update; the chain takes it (its prev
	// root is right, its entries hash to its root).
	lied := lieOnce(t, liar.Identity())
	h.command(t, 0, 30)
	var bad *api.Checkpoint
	waitFor(t, 60*time.Second, "the corrupted update on chain", func() bool {
		relay(t, h.ch, h.bobS, all...)
		bad = h.checkpoint(t)
		_, told := lied()
		return told && bad != nil && bad.Height >= h.last
	})
	truth := liar.ContractRoots()[h.id] // its own state stayed true
	if lie, _ := lied(); bad.Root != lie || bad.Root == truth {
		t.Fatalf("checkpoint root %x, the lie %x, the truth %x", bad.Root[:4], lie[:4], truth[:4])
	}
	// The deployer disputes it (no bond): overturned.
	if _, err := h.aliceS.Submit(ctx(t), &api.ArbitrationRequest{Contract: h.id, Height: bad.Height}); err != nil {
		t.Fatal(err)
	}
	v := verdict(bad.Height)
	if v.Outcome != api.ArbitrationOverturned || v.Root != truth || !slices.Equal(v.Slashed, []crypto.PublicKey{liar.Identity()}) ||
		v.RollbackHeight != honest.Height || v.RollbackRoot != honest.Root {
		t.Fatalf("dispute of the lie: %+v", v)
	}
	ns, _, err := h.ch.c.NodeStake(ctx(t), liar.Identity())
	if err != nil {
		t.Fatal(err)
	}
	if want := stake - stake/1_000_000*slashPPM; ns.Total != want {
		t.Fatalf("the liar's stake is %d, want %d", ns.Total, uint64(want))
	}
	// The liar is out; the replacement rebuilds from the rolled-back
	// checkpoint and the chain takes its true state.
	waitFor(t, 90*time.Second, "the replacement's true state on chain", func() bool {
		relay(t, h.ch, h.bobS, all...)
		if _, err := recoverAll(t, h.ch, w2, nil); err != nil {
			t.Logf("replacement: %v", err)
		}
		cp := h.checkpoint(t)
		return cp != nil && cp.Root == truth
	})
	rec := h.record(t)
	if !slices.Equal(rec.Workers, []crypto.PublicKey{w2.Identity()}) || !slices.Contains(rec.Excluded, liar.Identity()) {
		t.Fatalf("after the verdict: workers %v, excluded %v", rec.Workers, rec.Excluded)
	}
	if got := w2.ContractRoots()[h.id]; got != truth {
		t.Fatalf("the replacement's root %x, the truth %x", got[:4], truth[:4])
	}
}

// lastVerdict returns the verdict of the contract's dispute at height, as
// the queue announced it (nil before): it reads the blocks not read yet.
func (h *recoveryHarness) lastVerdict(t *testing.T, height int64) *api.ArbitrationVerdict {
	t.Helper()
	top, err := h.ch.c.Height(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	f := &relayer.Fetcher{C: h.ch.c}
	for h.scanned < top {
		b, err := f.Blocks(ctx(t), h.scanned+1, top)
		if err != nil {
			t.Fatal(err)
		}
		for _, bm := range b.Blocks {
			for _, m := range bm.Messages {
				if m.Topic != api.TopicArbitrationVerdict {
					continue
				}
				v, err := api.DecodeArbitrationVerdict(m.Payload)
				if err != nil {
					t.Fatal(err)
				}
				if h.verdicts == nil {
					h.verdicts = map[int64]*api.ArbitrationVerdict{}
				}
				h.verdicts[v.Height] = v
			}
			h.scanned = bm.Height
		}
	}
	return h.verdicts[height]
}
