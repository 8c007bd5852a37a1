package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/enclave/gatekeeper"
	"github.com/phalago/phala/internal/enclave/threshold"
	"github.com/phalago/phala/internal/relayer"
)

// The rotation's expiry with real pRuntimes (docs/keys.md, "Rotation per
// era", as built): the genesis gatekeeper serves a token with balances;
// three candidates are elected for three seats (threshold 3 of 3: the
// only size at which one silent member makes the attempt fail and the
// others, still two thirds of the set, retry; from 4 members on the
// others make T identical results without it, and with 2 the one left
// is too few). alice nominates all three. One member posts its DKG key, its deals and its
// responses, then its pRuntime is paused (no block relayed to it) before
// it can certify and post its result. The attempt times out at the
// dealing phase's end (dkg_timeout), fails one phase later with the
// silent member late: it is slashed offline_slash_ppm of its stake and
// alice's exposure to it by the same fraction (exact amounts from the
// chain's state), and attempt 1 runs among the other two (threshold 2),
// whose key set is adopted (key_set_adopted, KeyRotationReady). The token
// rekeys to the new key era and a transfer sealed to its new key runs
// with exact balances. Then the silent pRuntime is resumed: it catches up
// without an error, holds no share of the new key era (in memory or in
// its sealed file) and no DKG run, and works as a worker: the token,
// moved off its worker, is provisioned by the new set to whichever worker
// the chain picks (the resumed one or the retired genesis gatekeeper),
// which recovers it with the balances intact.
func TestDkgMemberNeverConfirms(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	const (
		eraLength  = 240
		dkgTimeout = 20      // blocks of 0.1 s: a loaded machine's relay keeps up
		slashPPM   = 100_000 // 10%
		nominated  = 60 * api.Unit
	)
	code := contracttest.Build(t, filepath.Join("..", "..", "..", "examples", "contracts", "token"))
	h := newRecoveryHarnessWith(t, func(g *api.GenesisState) {
		g.Params.EraLength = eraLength
		g.Params.NGatekeepers = 3
		g.Params.DkgTimeout = dkgTimeout
		g.Params.OfflineSlashPPM = slashPPM
	})
	phase := int64(dkgTimeout)
	w1 := h.ch.engine(t, t.TempDir())
	register(t, h.ch, w1, bob)
	tk := newTokenClient(t, h, code, w1)
	tk.command("mint " + alice.Public().Hex() + " 100")
	tk.command("mint " + bob.Public().Hex() + " 77")
	tk.balances("the minted balances", "100", "77")

	cands, up := declareCandidates(t, h, 3, relayFast, w1)
	tk.relayed = up
	var ids []crypto.PublicKey
	for _, c := range cands {
		ids = append(ids, c.Identity())
		tk.byID[c.Identity()] = c
	}
	for _, c := range []api.Call{&api.StakeBond{Amount: nominated}, &api.StakeNominate{Targets: ids}} {
		if _, err := h.aliceS.Submit(ctx(t), c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		relayFast(t, h.ch, h.bobS, up...)
	}
	ledgerBefore := stakeLedger(t, h.ch, alice.Public())

	// The DKG of the first elected set; its last participant goes
	// silent once it answered every deal.
	var silent *Engine
	paused := false
	waitFor(t, 5*time.Minute, "a key set of an elected set serving", func() bool {
		if paused {
			relayFast(t, h.ch, h.bobS, without(up, silent)...)
			pushOnly(t, h.ch, h.bobS, silent) // what it sent before the pause
		} else {
			relayFast(t, h.ch, h.bobS, up...)
		}
		if silent == nil {
			for _, c := range cands {
				if st := c.st.dkgPhase; st != nil && st.Phase == api.DkgDealing && st.Attempt == 0 {
					silent = tk.byID[st.Participants[len(st.Participants)-1]]
				}
			}
		}
		if silent != nil && !paused {
			if d := silent.st.dkg; d != nil && d.attempt == 0 && d.started && dkgCalls(d, dkgCallOnDeals) == len(d.keys) {
				if d.posted || len(d.keys) != 3 {
					t.Fatalf("the silent member posted its result, or %d participants", len(d.keys))
				}
				paused = true
				t.Logf("member %s paused after %d DKG calls", silent.Identity().Short(), len(d.calls))
			}
		}
		return w1.st.hasKeySet && w1.st.servingKeyEra > 0
	})
	if !paused {
		t.Fatal("a key set adopted before the silent member answered every deal")
	}
	set := w1.st.keySets[w1.st.servingKeyEra]
	era := set.Era
	others := without(cands, silent)
	el, _, err := h.ch.c.Election(ctx(t), era)
	if err != nil || el == nil {
		t.Fatalf("election record of era %d: %v", era, err)
	}
	adoptedAt := w1.st.dispatched
	// The participants of attempt 1: the elected members but the silent
	// one, in election order.
	wantMembers := slices.DeleteFunc(slices.Clone(el.Members), func(k crypto.PublicKey) bool { return k == silent.Identity() })
	if set.T != 2 || !slices.Equal(set.Members, wantMembers) ||
		el.Status != api.ElectionActive || !slices.Equal(el.Confirmed, set.Members) || len(el.Members) != 3 {
		t.Fatalf("key set %+v, election %+v", set, el)
	}
	for _, m := range others {
		syncTo(t, h.ch, m)
		if !m.gk.Holds(era) || m.role != RoleGatekeeper {
			t.Fatalf("member %s: share %v, role %s", m.Identity().Short(), m.gk.Holds(era), m.role)
		}
	}

	// The chain's events, from the election to the adoption.
	evs := blockEvents(t, h.ch, el.Height, adoptedAt, "dkg_begun", "dkg_dealing", "dkg_timeout", "dkg_failed", "node_slashed", "key_set_adopted")
	one := func(typ, attempt string) blockEvent {
		t.Helper()
		var got []blockEvent
		for _, ev := range evs {
			if ev.typ == typ && (attempt == "" || ev.attrs["attempt"] == attempt) {
				got = append(got, ev)
			}
		}
		if len(got) != 1 {
			t.Fatalf("%d %s events of attempt %q in %d..%d: %+v", len(got), typ, attempt, el.Height, adoptedAt, evs)
		}
		return got[0]
	}
	begun0, dealing0, timeout0, failed0 := one("dkg_begun", "0"), one("dkg_dealing", "0"), one("dkg_timeout", "0"), one("dkg_failed", "0")
	begun1, dealing1, adopted := one("dkg_begun", "1"), one("dkg_dealing", "1"), one("key_set_adopted", "")
	slashed := one("node_slashed", "")
	eraS := strconv.FormatUint(era, 10)
	switch {
	case begun0.height != el.Height || begun0.attrs["members"] != "3" || begun0.attrs["era"] != eraS:
		t.Fatalf("attempt 0 begun %+v, election at %d", begun0, el.Height)
	case dealing0.attrs["participants"] != "3" || dealing0.attrs["threshold"] != "3":
		t.Fatalf("attempt 0 dealing %+v", dealing0)
	case timeout0.height != dealing0.height+phase:
		t.Fatalf("attempt 0 timed out at %d, dealing began at %d, phases of %d", timeout0.height, dealing0.height, phase)
	case failed0.height != timeout0.height+phase || failed0.attrs["responsive"] != "2" || failed0.attrs["elected"] != "3":
		t.Fatalf("attempt 0 failed %+v (timeout at %d)", failed0, timeout0.height)
	case begun1.height != failed0.height || begun1.attrs["members"] != "2":
		t.Fatalf("attempt 1 begun %+v", begun1)
	case dealing1.attrs["participants"] != "2" || dealing1.attrs["threshold"] != "2":
		t.Fatalf("attempt 1 dealing %+v", dealing1)
	case adopted.attrs["era"] != eraS || adopted.attrs["threshold"] != "2" || adopted.height < dealing1.height || adopted.height >= dealing1.height+2*phase:
		t.Fatalf("adopted %+v, attempt 1 dealing at %d", adopted, dealing1.height)
	case slashed.height != failed0.height || slashed.attrs["node"] != silent.Identity().Hex() || slashed.attrs["ppm"] != strconv.Itoa(slashPPM):
		t.Fatalf("slash %+v, failure at %d", slashed, failed0.height)
	}
	// Exact amounts: bob staked 100 units on each candidate; alice's
	// exposure to the silent one is her Phragmén share of nominated.
	x := exposure(t, h.ch, era, silent.Identity())
	var exposed uint64
	for _, o := range x.Others {
		if o.Who == alice.Public() {
			exposed = o.Amount
		}
	}
	cut := mulDivTest(exposed, slashPPM, 1_000_000)
	if exposed == 0 {
		t.Fatalf("alice has no exposure to the silent member: %+v", x)
	}
	for _, c := range cands {
		want := 100 * api.Unit
		if c == silent {
			want -= mulDivTest(100*api.Unit, slashPPM, 1_000_000)
		}
		if got := nodeStake(t, h.ch, c.Identity()); got != want {
			t.Fatalf("node %s stake %d, want %d", c.Identity().Short(), got, want)
		}
	}
	if slashed.attrs["amount"] != strconv.FormatUint(mulDivTest(100*api.Unit, slashPPM, 1_000_000), 10) {
		t.Fatalf("node_slashed amount %s", slashed.attrs["amount"])
	}
	if l := stakeLedger(t, h.ch, alice.Public()); l.Bonded != ledgerBefore.Bonded-cut || ledgerBefore.Bonded != nominated {
		t.Fatalf("alice bonded %d, before %d, cut %d", l.Bonded, ledgerBefore.Bonded, cut)
	}
	t.Logf("era %d: election at %d, dealing %d, timeout %d, failed %d, attempt 1 dealing %d, adopted %d; silent slashed %d, alice %d of %d exposed",
		era, el.Height, dealing0.height, timeout0.height, failed0.height, dealing1.height, adopted.height, mulDivTest(100*api.Unit, slashPPM, 1_000_000), cut, exposed)

	// The token rekeys to the new key era; a transfer sealed to its new
	// key runs.
	tk.relayed = without(up, silent)
	waitFor(t, 3*time.Minute, "the token under the new key era", func() bool {
		tk.relay()
		r := tk.record()
		return r != nil && r.KeyEra == era && !r.Migrating && r.Status == api.ContractRunning
	})
	if r := tk.record(); r.Ecdh == tk.first.Ecdh {
		t.Fatal("the token's ECDH key did not rotate")
	}
	tk.command("transfer " + bob.Public().Hex() + " 30")
	tk.balances("the balances after the transfer", "70", "107")

	// The silent pRuntime resumes. Up to the block that began attempt 1
	// without it: it certifies attempt 0 on the way (the responses it
	// missed) and posts a result the chain ignores, but once attempt 1
	// begins it keeps neither that attempt's share nor its DKG run.
	dispatchUntil(t, h.ch, silent, failed0.height)
	stale := false
	for _, m := range silent.Egress() {
		if dm, err := api.DecodeDkgMessage(m.Message.Payload); err == nil && m.Message.Topic == api.TopicDkgResult && dm.Era == era && dm.Attempt == 0 {
			stale = true
		}
	}
	if !stale {
		t.Fatal("the resumed member did not certify attempt 0 on its way")
	}
	sealed, err := gatekeeper.LoadShares(silent.sealer, silent.cfg.DataDir)
	if err != nil || sealed[era] != nil || silent.gk.Holds(era) || silent.st.dkg != nil {
		t.Fatalf("the resumed member at attempt 1's start: sealed share %v (%v), held %v, DKG run %v", sealed[era] != nil, err, silent.gk.Holds(era), silent.st.dkg != nil)
	}
	// Then to the tip.
	tk.relayed = up
	waitFor(t, 2*time.Minute, "the resumed member caught up", func() bool {
		tk.relay()
		top, err := h.ch.c.Height(ctx(t))
		return err == nil && silent.st.dispatched >= top-1
	})
	sealed, err = gatekeeper.LoadShares(silent.sealer, silent.cfg.DataDir)
	if err != nil || sealed[era] != nil || silent.gk.Holds(era) || silent.st.dkg != nil || silent.role != RoleWorker || silent.st.keySets[era] == nil {
		t.Fatalf("the resumed member: sealed share %v (%v), held %v, DKG run %v, role %s", sealed[era] != nil, err, silent.gk.Holds(era), silent.st.dkg != nil, silent.role)
	}
	// The token moves off w1; the new set provisions the worker picked.
	r := tk.record()
	if _, err := h.aliceS.Submit(ctx(t), &api.ContractReassign{Contract: r.Identity, Worker: w1.Identity()}); err != nil {
		t.Fatal(err)
	}
	var to *Engine
	waitFor(t, 2*time.Minute, "the token granted to another worker", func() bool {
		tk.relay()
		for _, w := range []*Engine{silent, h.gk} {
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
	waitFor(t, 2*time.Minute, "the token running on the new worker", func() bool {
		tk.relay()
		r := tk.record()
		_, ok := to.running[r.Identity]
		return ok && r.Status == api.ContractRunning && slices.Equal(r.Workers, []crypto.PublicKey{to.Identity()}) && r.KeyEra == era
	})
	tk.balances("the balances on the new worker", "70", "107")
	t.Logf("token moved to %s (the resumed member: %v)", to.Identity().Short(), to == silent)
	if top, err := h.ch.c.Height(ctx(t)); err != nil || top >= int64(era+1)*eraLength {
		t.Fatalf("height %d: the next era end fell in the test (%v)", top, err)
	}
}

// tokenClient deploys the token on the only worker and talks to it.
type tokenClient struct {
	t       *testing.T
	h       *recoveryHarness
	relayed []*Engine
	byID    map[crypto.PublicKey]*Engine
	first   *api.ContractRecord
	nonce   uint64
}

func newTokenClient(t *testing.T, h *recoveryHarness, code []byte, w *Engine) *tokenClient {
	t.Helper()
	tk := &tokenClient{t: t, h: h, relayed: []*Engine{h.gk, w}, byID: map[crypto.PublicKey]*Engine{h.gk.Identity(): h.gk, w.Identity(): w}}
	if _, err := h.aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, code), Replicas: 1, CheckpointInterval: 3}); err != nil {
		t.Fatal(err)
	}
	h.upload = api.UploadID(alice.Public(), sha256.Sum256(code), 0)
	waitFor(t, 2*time.Minute, "the token running", func() bool {
		tk.relay()
		tk.first = tk.record()
		return tk.first != nil && tk.first.Status == api.ContractRunning && slices.Equal(tk.first.Workers, []crypto.PublicKey{w.Identity()})
	})
	return tk
}

func (tk *tokenClient) relay() { relayFast(tk.t, tk.h.ch, tk.h.bobS, tk.relayed...) }

// record reads the token's record unproved (a proved read waits a block).
func (tk *tokenClient) record() *api.ContractRecord {
	t := tk.t
	t.Helper()
	res, err := tk.h.ch.c.RPC().ABCIQuery(ctx(t), api.QueryContractUpload, tk.h.upload[:])
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Response.Value) != 32 {
		return nil
	}
	if res, err = tk.h.ch.c.RPC().ABCIQuery(ctx(t), api.QueryContract, res.Response.Value); err != nil {
		t.Fatal(err)
	}
	r, err := api.DecodeContractRecord(res.Response.Value)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// command sends alice's command sealed to the token's current key.
func (tk *tokenClient) command(input string) {
	t := tk.t
	t.Helper()
	r := tk.record()
	tk.nonce++
	chn, err := channel.New(alice, r.Ecdh, api.ChannelPurposeCommand)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.h.aliceS.Submit(ctx(t), &api.ContractCommand{Contract: r.Identity, Nonce: tk.nonce, GasLimit: testGas,
		Sealed: chn.Seal(api.Pad([]byte(input)), api.CommandAD(r.Identity, alice.Public(), tk.nonce))}); err != nil {
		t.Fatal(err)
	}
}

// balance asks the token's worker who's balance.
func (tk *tokenClient) balance(who *crypto.KeyPair) string {
	t := tk.t
	t.Helper()
	r := tk.record()
	w := tk.byID[r.Workers[0]]
	if w == nil {
		return "no engine for worker " + r.Workers[0].Short()
	}
	return queryBalance(t, w, r, who)
}

// queryBalance asks worker w (the first of r's workers) for who's token
// balance with a signed query: the answer, or "error: ..." when w refuses.
func queryBalance(t *testing.T, w *Engine, r *api.ContractRecord, who *crypto.KeyPair) string {
	t.Helper()
	p, err := client.NewQuery(who, r.Identity, r.Ecdh, r.Workers[0], []byte("balance"), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := w.Query(ctx(t), p.Query)
	if err != nil {
		return "error: " + err.Error()
	}
	out, _, err := p.Open(resp)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func (tk *tokenClient) balances(what, wantAlice, wantBob string) {
	tk.t.Helper()
	waitFor(tk.t, 2*time.Minute, what, func() bool {
		tk.relay()
		return tk.balance(alice) == wantAlice && tk.balance(bob) == wantBob
	})
}

// without returns es without x.
func without(es []*Engine, x *Engine) []*Engine {
	return slices.DeleteFunc(slices.Clone(es), func(e *Engine) bool { return e == x })
}

// pushOnly puts e's egress the chain has not taken on chain without
// relaying any block to e (a paused pRuntime whose outbox still drains).
func pushOnly(t testing.TB, ch *chain, s *client.Signer, e *Engine) {
	t.Helper()
	next := map[api.Origin]uint64{}
	for _, m := range e.Egress() {
		o := m.Message.Origin
		n, ok := next[o]
		if !ok {
			res, err := ch.c.RPC().ABCIQuery(ctx(t), api.QueryNextSeq, o.Encode())
			if err != nil {
				t.Fatal(err)
			}
			n, _ = binary.Uvarint(res.Response.Value)
			next[o] = n
		}
		if m.Message.Seq < n {
			continue
		}
		tx, err := s.Sign(ctx(t), &api.PushMessage{Message: m})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ch.c.Broadcast(ctx(t), tx.Encode()); err != nil {
			s.Resync()
			return
		}
	}
}

// dispatchUntil brings e's headers and blocks up to height (no further).
func dispatchUntil(t testing.TB, ch *chain, e *Engine, height int64) {
	t.Helper()
	f := &relayer.Fetcher{C: ch.c}
	info := e.Info()
	if info.Synced < height+1 {
		hb, err := f.Headers(ctx(t), info.Synced+1, height+1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.SyncHeaders(hb); err != nil {
			t.Fatal(err)
		}
	}
	if info.Dispatched < height {
		bb, err := f.Blocks(ctx(t), info.Dispatched+1, height)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.DispatchBlocks(bb); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.Info().Dispatched; got != height {
		t.Fatalf("dispatched %d, want %d", got, height)
	}
}

// dkgCalls counts d's logged calls of kind.
func dkgCalls(d *dkgRun, kind uint8) int {
	n := 0
	for _, c := range d.calls {
		if c.kind == kind {
			n++
		}
	}
	return n
}

// blockEvent is one event of a block's results.
type blockEvent struct {
	height int64
	typ    string
	attrs  map[string]string
}

// blockEvents returns the events of the given types at heights from..to
// (a block's own events, then its transactions').
func blockEvents(t testing.TB, ch *chain, from, to int64, types ...string) []blockEvent {
	t.Helper()
	var out []blockEvent
	for hh := from; hh <= to; hh++ {
		br, err := ch.c.RPC().BlockResults(ctx(t), &hh)
		if err != nil {
			t.Fatal(err)
		}
		all := slices.Clone(br.FinalizeBlockEvents)
		for _, tx := range br.TxsResults {
			all = append(all, tx.Events...)
		}
		for _, ev := range all {
			if !slices.Contains(types, ev.Type) {
				continue
			}
			e := blockEvent{height: hh, typ: ev.Type, attrs: map[string]string{}}
			for _, a := range ev.Attributes {
				e.attrs[a.Key] = a.Value
			}
			out = append(out, e)
		}
	}
	return out
}

func nodeStake(t testing.TB, ch *chain, n crypto.PublicKey) uint64 {
	t.Helper()
	v, _, err := queryRaw(t, ch.c, api.QueryStakeNode, n[:])
	if err != nil {
		t.Fatal(err)
	}
	s, err := api.DecodeNodeStake(v)
	if err != nil {
		t.Fatal(err)
	}
	return s.Total
}

func stakeLedger(t testing.TB, ch *chain, who crypto.PublicKey) *api.StakeLedger {
	t.Helper()
	v, _, err := queryRaw(t, ch.c, api.QueryStakeLedger, who[:])
	if err != nil {
		t.Fatal(err)
	}
	l, err := api.DecodeStakeLedger(v)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func exposure(t testing.TB, ch *chain, era uint64, m crypto.PublicKey) *api.Exposure {
	t.Helper()
	v, _, err := queryRaw(t, ch.c, api.QueryGatekeeperExposure, append(binary.BigEndian.AppendUint64(nil, era), m[:]...))
	if err != nil {
		t.Fatal(err)
	}
	x, err := api.DecodeExposure(v)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// mulDivTest is a·b/c rounded down, as the chain slashes (b ≤ c).
func mulDivTest(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	q, _ := bits.Div64(hi, lo, c)
	return q
}

// A member's pRuntime that crashes mid-DKG resumes its run from its
// sealed checkpoint (docs/keys.md, "Rotation per era": the DKG seed and
// the Run's calls are checkpointed and replayed). Three candidates for
// three seats (threshold 3: every member's result is needed). One member
// is killed (no Close: a crash) twice and restarted from its data
// directory each time: once after it posted its DKG key, before the
// dealing began (the restarted pRuntime has the same seed, so its key on
// chain stays its own), once after it dealt and answered some deals,
// before its result (its Run is rebuilt by replaying the logged calls).
// The DKG completes in its first attempt with all three members
// confirmed; the restarted member's share matches its commitment in the
// adopted key set; nobody is slashed and no attempt failed.
func TestDkgMemberRestartsMidDkg(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	const (
		eraLength  = 100
		dkgTimeout = 20 // = the phase (at most era_length / 3)
	)
	h := newRecoveryHarnessWith(t, func(g *api.GenesisState) {
		g.Params.EraLength = eraLength
		g.Params.NGatekeepers = 3
		g.Params.DkgTimeout = dkgTimeout
		g.Params.OfflineSlashPPM = 100_000
	})
	w1 := h.ch.engine(t, t.TempDir())
	register(t, h.ch, w1, bob)
	cands, up := declareCandidates(t, h, 3, relayFast, w1)
	var victim *Engine
	restart := func(what string) {
		t.Helper()
		before := victim.st.dkg
		again := h.ch.engine(t, victim.cfg.DataDir)
		d := again.st.dkg
		if d == nil || d.seed != before.seed || d.attempt != before.attempt || d.started != before.started || len(d.calls) != len(before.calls) || d.run != nil || d.posted {
			t.Fatalf("restarted %s: DKG run %+v", what, d)
		}
		up[slices.Index(up, victim)] = again
		cands[slices.Index(cands, victim)] = again
		t.Logf("member %s restarted %s (%d DKG calls logged)", victim.Identity().Short(), what, len(d.calls))
		victim = again
	}
	restarts := 0
	waitFor(t, 5*time.Minute, "a key set of the elected set serving", func() bool {
		relayFast(t, h.ch, h.bobS, up...)
		if victim == nil {
			for _, c := range cands {
				if st := c.st.dkgPhase; st != nil && st.Phase == api.DkgCollectingKeys {
					victim = cands[slices.IndexFunc(cands, func(e *Engine) bool { return e.Identity() == st.Members[0] })]
				}
			}
		}
		if victim == nil {
			return false
		}
		// (Each kill after a relay call: what the pRuntime emitted is
		// sealed in its checkpoint and went to the chain.)
		switch d := victim.st.dkg; {
		case restarts == 0 && d != nil && !d.started:
			restart("after posting its DKG key")
			restarts++
		case restarts == 1 && d != nil && d.started && len(d.calls) >= 2 && !d.posted:
			restart("after dealing and answering a deal")
			restarts++
		}
		return w1.st.hasKeySet && w1.st.servingKeyEra > 0
	})
	if restarts != 2 {
		t.Fatalf("%d restarts before the adoption", restarts)
	}
	syncTo(t, h.ch, cands...)
	set := w1.st.keySets[w1.st.servingKeyEra]
	el, _, err := h.ch.c.Election(ctx(t), set.Era)
	if err != nil || el == nil {
		t.Fatalf("election record of era %d: %v", set.Era, err)
	}
	if set.T != 3 || !slices.Equal(set.Members, el.Members) || !slices.Equal(el.Confirmed, el.Members) || el.Status != api.ElectionActive || set.Index(victim.Identity()) < 0 {
		t.Fatalf("key set %+v, election %+v", set, el)
	}
	cs, err := threshold.DecodeCommits(set.Commits)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range cands {
		pub, ok := m.gk.Public(set.Era)
		want, err := threshold.MemberCommitment(cs, set.Index(m.Identity())).MarshalBinary()
		if !ok || err != nil || string(pub[:]) != string(want) || m.st.dkg != nil {
			t.Fatalf("member %s (victim %v): share %v matches its commitment: %v; DKG run kept %v", m.Identity().Short(), m == victim, ok, string(pub[:]) == string(want), m.st.dkg != nil)
		}
	}
	evs := blockEvents(t, h.ch, el.Height, w1.st.dispatched, "dkg_begun", "dkg_failed", "node_slashed", "key_set_adopted")
	if len(evs) != 2 || evs[0].typ != "dkg_begun" || evs[1].typ != "key_set_adopted" || evs[1].attrs["threshold"] != "3" {
		t.Fatalf("events %+v", evs)
	}
	for _, c := range cands {
		if got := nodeStake(t, h.ch, c.Identity()); got != 100*api.Unit {
			t.Fatalf("node %s stake %d", c.Identity().Short(), got)
		}
	}
	t.Logf("era %d: election at %d, adopted at %d", set.Era, el.Height, evs[1].height)
}
