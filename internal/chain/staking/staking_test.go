package staking

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/accounts"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/store"
)

var (
	alice = crypto.MustKeyPairFromURI("//Alice").Public()
	bob   = crypto.MustKeyPairFromURI("//Bob").Public()
	carol = crypto.MustKeyPairFromURI("//Charlie").Public() // operator of the nodes
	node1 = crypto.MustKeyPairFromURI("//Node1").Public()
	node2 = crypto.MustKeyPairFromURI("//Node2").Public()
	ghost = crypto.MustKeyPairFromURI("//Ghost").Public() // never registered
)

const period = 100 // the unbonding period of these tests

// memKV is a map-backed store.KV whose keys a test can walk.
type memKV map[string][]byte

func (m memKV) Get(key []byte) []byte { return m[string(key)] }
func (m memKV) Set(key, value []byte) { m[string(key)] = value }
func (m memKV) Delete(key []byte)     { delete(m, string(key)) }

func (m memKV) clone() memKV {
	out := make(memKV, len(m))
	for k, v := range m {
		out[k] = append([]byte(nil), v...)
	}
	return out
}

// newState funds alice and bob with 10,000 units each, registers node1 and
// node2 (operator carol) and records the issuance as genesis does.
func newState(t *testing.T) memKV {
	t.Helper()
	kv := memKV{}
	accounts.Set(kv, alice, api.Account{Balance: 10_000})
	accounts.Set(kv, bob, api.Account{Balance: 10_000})
	kv.Set(api.KeyIssuance, api.EncodeIssuance(20_000))
	for _, n := range []crypto.PublicKey{node1, node2} {
		rec := &api.WorkerRecord{Info: api.WorkerInfo{ChainID: "c", IdentityKey: n, Operator: carol}, Platform: api.PlatformSim, Measurement: []byte{1}, ExpiresAt: 1 << 40}
		kv.Set(api.WorkerKey(n), rec.Encode())
	}
	return kv
}

func ctxAt(kv store.KV, height int64) *block.Context {
	p := api.DefaultParams()
	p.UnbondingPeriod = period
	return &block.Context{KV: kv, ChainID: "c", Height: height, Time: time.Unix(1_700_000_000+height, 0), Params: p}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// supply sums every balance and every ledger's stake in kv.
func supply(t *testing.T, kv memKV) uint64 {
	t.Helper()
	var s uint64
	for k, v := range kv {
		switch {
		case len(k) == 2+crypto.PublicKeySize && k[:2] == "a/":
			a, err := api.DecodeAccount(v)
			must(t, err)
			s += a.Balance
		case len(k) > 5 && k[:5] == "st/l/":
			l, err := api.DecodeStakeLedger(v)
			must(t, err)
			s += l.Total()
		}
	}
	return s
}

// checkInvariants: Σ balances + Σ stake = issuance; each node's aggregate
// is the sum of the allocations to it; the staker indexes hold exactly the
// accounts linked to the node, the nominator buckets exactly the
// nominating accounts.
func checkInvariants(t *testing.T, kv memKV) {
	t.Helper()
	if s, iss := supply(t, kv), accounts.Issuance(kv); s != iss {
		t.Fatalf("Σ balances + Σ stake = %d, issuance %d", s, iss)
	}
	totals := map[crypto.PublicKey]api.NodeStake{}
	linkedTo := map[crypto.PublicKey][]crypto.PublicKey{}
	var nominators []crypto.PublicKey
	for k, v := range kv {
		if len(k) <= 5 || k[:5] != "st/l/" {
			continue
		}
		who := crypto.PublicKey([]byte(k[5:]))
		l, _ := api.DecodeStakeLedger(v)
		nodes := map[crypto.PublicKey]bool{}
		for _, a := range l.Allocations {
			n := totals[a.Node]
			n.Total += a.Amount
			n.Stakers++
			totals[a.Node] = n
			nodes[a.Node] = true
		}
		for _, u := range l.Unlocking {
			if u.Node != (crypto.PublicKey{}) {
				nodes[u.Node] = true
			}
		}
		for n := range nodes {
			linkedTo[n] = append(linkedTo[n], who)
		}
		if len(l.Nominations) > 0 {
			nominators = append(nominators, who)
		}
	}
	for _, n := range []crypto.PublicKey{node1, node2, ghost} {
		if got := Node(kv, n); got != totals[n] {
			t.Fatalf("node %s aggregate %+v, allocations sum to %+v", n, got, totals[n])
		}
		want := linkedTo[n]
		slices.SortFunc(want, cmpKey)
		if got := keys(kv, api.NodeStakersKey(n)); !slices.Equal(got, want) {
			t.Fatalf("staker index of %s = %v, want %v", n, got, want)
		}
	}
	slices.SortFunc(nominators, cmpKey)
	var got []crypto.PublicKey
	ForEachNominator(kv, func(who crypto.PublicKey, _ uint64, _ []crypto.PublicKey) bool {
		got = append(got, who)
		return true
	})
	if !slices.Equal(got, nominators) {
		t.Fatalf("nominators %v, want %v", got, nominators)
	}
}

// stakeMessages returns the node totals the context told pRuntimes.
func stakeMessages(t *testing.T, ctx *block.Context) []api.NodeStakeUpdate {
	t.Helper()
	var out []api.NodeStakeUpdate
	for _, m := range ctx.Messages {
		if m.Topic != api.TopicNodeStake || m.Origin != api.ModuleOrigin(Module) {
			continue
		}
		u, err := api.DecodeNodeStakeUpdate(m.Payload)
		must(t, err)
		out = append(out, *u)
	}
	return out
}

// TestUnbondingPeriod: unbonded stake comes back only UnbondingPeriod
// blocks later; withdrawing before fails and changes nothing.
func TestUnbondingPeriod(t *testing.T) {
	kv := newState(t)
	ctx := ctxAt(kv, 10)
	must(t, Bond(ctx, alice, 1_000))
	must(t, Allocate(ctx, alice, node1, 600))
	if got := stakeMessages(t, ctx); !reflect.DeepEqual(got, []api.NodeStakeUpdate{{Node: node1, Total: 600}}) {
		t.Fatalf("node stake messages %v", got)
	}
	ctx = ctxAt(kv, 20)
	must(t, Unbond(ctx, alice, node1, 400))
	must(t, Unbond(ctx, alice, crypto.PublicKey{}, 100))
	if got := stakeMessages(t, ctx); !reflect.DeepEqual(got, []api.NodeStakeUpdate{{Node: node1, Total: 200}}) {
		t.Fatalf("node stake messages %v", got)
	}
	l := Ledger(kv, alice)
	want := &api.StakeLedger{Bonded: 300, Allocations: []api.Allocation{{Node: node1, Amount: 200}},
		Unlocking: []api.Unlocking{{Amount: 100, Until: 20 + period}, {Amount: 400, Until: 20 + period, Node: node1}}}
	if !reflect.DeepEqual(l, want) {
		t.Fatalf("ledger %+v, want %+v", l, want)
	}
	if NodeStake(kv, node1) != 200 || accounts.Get(kv, alice).Balance != 9_000 {
		t.Fatalf("node stake %d, balance %d", NodeStake(kv, node1), accounts.Get(kv, alice).Balance)
	}
	checkInvariants(t, kv)

	before := kv.clone()
	if _, err := Withdraw(ctxAt(kv, 20+period-1), alice); !errors.Is(err, api.ErrNothingUnlocked) {
		t.Fatalf("withdraw one block early: %v", err)
	}
	if !reflect.DeepEqual(kv, before) {
		t.Fatal("a refused withdraw changed state")
	}
	got, err := Withdraw(ctxAt(kv, 20+period), alice)
	if err != nil || got != 500 {
		t.Fatalf("withdraw at the end of the period = %d, %v", got, err)
	}
	if b := accounts.Get(kv, alice).Balance; b != 9_500 {
		t.Fatalf("balance after withdraw %d, want 9500", b)
	}
	if _, err := Withdraw(ctxAt(kv, 20+period), alice); !errors.Is(err, api.ErrNothingUnlocked) {
		t.Fatalf("second withdraw: %v", err)
	}
	checkInvariants(t, kv)
}

// TestSlash: a slash takes ppm of every allocation to the node and of
// every unlocking entry that came from it, even from an account that
// unbonded everything; other nodes' stake is untouched; the amount is
// burned.
func TestSlash(t *testing.T) {
	kv := newState(t)
	ctx := ctxAt(kv, 1)
	must(t, Bond(ctx, alice, 2_000))
	must(t, Allocate(ctx, alice, node1, 1_000))
	must(t, Allocate(ctx, alice, node2, 500))
	must(t, Unbond(ctx, alice, node1, 400)) // unlocking from node1
	must(t, Bond(ctx, bob, 1_000))
	must(t, Allocate(ctx, bob, node1, 1_000))
	must(t, Unbond(ctx, bob, node1, 1_000)) // bob left node1 entirely
	checkInvariants(t, kv)

	ctx = ctxAt(kv, 2)
	got := Slash(ctx, node1, 100_000, "test") // 10%
	// alice: 600 allocated → 60, 400 unlocking → 40; bob: 1000 unlocking → 100.
	if got != 200 {
		t.Fatalf("Slash = %d, want 200", got)
	}
	if iss := accounts.Issuance(kv); iss != 20_000-200 {
		t.Fatalf("issuance %d after burning 200", iss)
	}
	if l := Ledger(kv, alice); l.Allocated(node1) != 540 || l.Allocated(node2) != 500 || l.Unlocking[0].Amount != 360 || l.Bonded != 500 {
		t.Fatalf("alice after the slash: %+v", l)
	}
	if l := Ledger(kv, bob); len(l.Unlocking) != 1 || l.Unlocking[0].Amount != 900 {
		t.Fatalf("bob after the slash: %+v", l)
	}
	if got := stakeMessages(t, ctx); !reflect.DeepEqual(got, []api.NodeStakeUpdate{{Node: node1, Total: 540}}) {
		t.Fatalf("node stake messages %v", got)
	}
	checkInvariants(t, kv)

	// A whole slash empties the node; the unlocking entries go too.
	Slash(ctxAt(kv, 3), node1, 2_000_000, "all") // capped at 10^6
	if NodeStake(kv, node1) != 0 || len(keys(kv, api.NodeStakersKey(node1))) != 0 {
		t.Fatalf("node1 after a full slash: %d, index %v", NodeStake(kv, node1), keys(kv, api.NodeStakersKey(node1)))
	}
	if kv.Get(api.StakeLedgerKey(bob)) != nil {
		t.Fatalf("bob's ledger survives an empty slash: %+v", Ledger(kv, bob))
	}
	if Slash(ctxAt(kv, 4), node1, 500_000, "again") != 0 || Slash(ctxAt(kv, 4), node2, 0, "zero") != 0 {
		t.Fatal("slash of nothing burned something")
	}
	checkInvariants(t, kv)
	// Nothing of alice's unlocking entry is left to withdraw.
	if _, err := Withdraw(ctxAt(kv, 1+period), alice); !errors.Is(err, api.ErrNothingUnlocked) {
		t.Fatalf("withdraw of a fully slashed entry: %v", err)
	}
}

// TestSlashDuringUnbondingThenWithdraw: what a slash leaves of an unlocking
// entry is what comes back.
func TestSlashDuringUnbondingThenWithdraw(t *testing.T) {
	kv := newState(t)
	ctx := ctxAt(kv, 1)
	must(t, Bond(ctx, alice, 1_000))
	must(t, Allocate(ctx, alice, node1, 1_000))
	must(t, Unbond(ctxAt(kv, 5), alice, node1, 1_000))
	if n := Slash(ctxAt(kv, 50), node1, 250_000, "offline"); n != 250 {
		t.Fatalf("slash during unbonding took %d, want 250", n)
	}
	if _, err := Withdraw(ctxAt(kv, 5+period-1), alice); !errors.Is(err, api.ErrNothingUnlocked) {
		t.Fatalf("early withdraw: %v", err)
	}
	got, err := Withdraw(ctxAt(kv, 5+period), alice)
	if err != nil || got != 750 || accounts.Get(kv, alice).Balance != 9_750 {
		t.Fatalf("withdraw = %d %v, balance %d", got, err, accounts.Get(kv, alice).Balance)
	}
	checkInvariants(t, kv)
}

// TestSlashExposure: a nominator's bonded stake goes first, then its
// unlocking entries, earliest first.
func TestSlashExposure(t *testing.T) {
	kv := newState(t)
	ctx := ctxAt(kv, 1)
	must(t, Bond(ctx, alice, 300))
	must(t, Allocate(ctx, alice, node1, 100))
	must(t, Nominate(ctx, alice, []crypto.PublicKey{node2}))
	must(t, Unbond(ctx, alice, crypto.PublicKey{}, 50))                   // until 1+period
	must(t, Unbond(ctxAt(kv, 2), alice, node1, 40))                       // until 2+period, from node1
	if got := SlashExposure(ctxAt(kv, 3), alice, 190, "gk"); got != 190 { // 150 bonded + 40 of 50 unlocking
		t.Fatalf("SlashExposure = %d", got)
	}
	l := Ledger(kv, alice)
	want := &api.StakeLedger{Allocations: []api.Allocation{{Node: node1, Amount: 60}}, Nominations: []crypto.PublicKey{node2},
		Unlocking: []api.Unlocking{{Amount: 10, Until: 1 + period}, {Amount: 40, Until: 2 + period, Node: node1}}}
	if !reflect.DeepEqual(l, want) {
		t.Fatalf("ledger %+v, want %+v", l, want)
	}
	if got := SlashExposure(ctxAt(kv, 3), alice, 1_000, "gk"); got != 50 { // what is left outside the allocation
		t.Fatalf("SlashExposure beyond the stake = %d, want 50", got)
	}
	if SlashExposure(ctxAt(kv, 3), bob, 10, "none") != 0 {
		t.Fatal("slashed an account without stake")
	}
	if accounts.Issuance(kv) != 20_000-240 {
		t.Fatalf("issuance %d", accounts.Issuance(kv))
	}
	checkInvariants(t, kv)
}

// TestReward: stakers are paid pro rata (rounded down), the remainder goes
// to the operator; a node without stakers pays its operator all; an
// unknown node mints nothing.
func TestReward(t *testing.T) {
	kv := newState(t)
	ctx := ctxAt(kv, 1)
	must(t, Bond(ctx, alice, 300))
	must(t, Allocate(ctx, alice, node1, 300))
	must(t, Bond(ctx, bob, 700))
	must(t, Allocate(ctx, bob, node1, 700))
	if got := Reward(ctxAt(kv, 2), node1, 1_001); got != 1_001 {
		t.Fatalf("Reward = %d", got)
	}
	// alice ⌊1001·300/1000⌋ = 300, bob ⌊1001·700/1000⌋ = 700, carol 1.
	for who, want := range map[crypto.PublicKey]uint64{alice: 9_700 + 300, bob: 9_300 + 700, carol: 1} {
		if b := accounts.Get(kv, who).Balance; b != want {
			t.Errorf("balance of %s = %d, want %d", who, b, want)
		}
	}
	if got := Reward(ctxAt(kv, 2), node2, 50); got != 50 || accounts.Get(kv, carol).Balance != 51 {
		t.Fatalf("reward of a node without stakers: %d, operator %d", got, accounts.Get(kv, carol).Balance)
	}
	if got := Reward(ctxAt(kv, 2), ghost, 50); got != 0 {
		t.Fatalf("reward of an unknown node minted %d", got)
	}
	if accounts.Issuance(kv) != 20_000+1_051 {
		t.Fatalf("issuance %d", accounts.Issuance(kv))
	}
	checkInvariants(t, kv)
}

// TestRefusalsChangeNothing: every bad input is refused with its error
// and leaves the state, messages and events as they were.
func TestRefusalsChangeNothing(t *testing.T) {
	setup := func(t *testing.T) memKV {
		kv := newState(t)
		ctx := ctxAt(kv, 1)
		must(t, Bond(ctx, alice, 1_000))
		must(t, Allocate(ctx, alice, node1, 500))
		return kv
	}
	many := make([]crypto.PublicKey, api.MaxNominations+1)
	for i := range many {
		many[i] = crypto.PublicKey{byte(i)}
	}
	tests := []struct {
		name string
		prep func(kv memKV)
		op   func(ctx *block.Context) error
		want error
	}{
		{"bond zero", nil, func(c *block.Context) error { return Bond(c, alice, 0) }, api.ErrInvalidCall},
		{"bond beyond the balance", nil, func(c *block.Context) error { return Bond(c, alice, 9_001) }, api.ErrInsufficientBalance},
		{"bond without an account", nil, func(c *block.Context) error { return Bond(c, carol, 1) }, api.ErrInsufficientBalance},
		{"allocate zero", nil, func(c *block.Context) error { return Allocate(c, alice, node1, 0) }, api.ErrInvalidCall},
		{"allocate to an unknown node", nil, func(c *block.Context) error { return Allocate(c, alice, ghost, 1) }, api.ErrUnknownNode},
		{"allocate more than bonded", nil, func(c *block.Context) error { return Allocate(c, alice, node2, 501) }, api.ErrNotEnoughBonded},
		{"allocate without a ledger", nil, func(c *block.Context) error { return Allocate(c, bob, node2, 1) }, api.ErrNotEnoughBonded},
		{"unbond zero", nil, func(c *block.Context) error { return Unbond(c, alice, node1, 0) }, api.ErrInvalidCall},
		{"unbond more than allocated", nil, func(c *block.Context) error { return Unbond(c, alice, node1, 501) }, api.ErrNotEnoughAllocated},
		{"unbond from a node not backed", nil, func(c *block.Context) error { return Unbond(c, alice, node2, 1) }, api.ErrNotEnoughAllocated},
		{"unbond from an unknown node", nil, func(c *block.Context) error { return Unbond(c, alice, ghost, 1) }, api.ErrNotEnoughAllocated},
		{"unbond more than bonded", nil, func(c *block.Context) error { return Unbond(c, alice, crypto.PublicKey{}, 501) }, api.ErrNotEnoughBonded},
		{"withdraw nothing", nil, func(c *block.Context) error { _, err := Withdraw(c, alice); return err }, api.ErrNothingUnlocked},
		{"withdraw before the period", func(kv memKV) { must(t, Unbond(ctxAt(kv, 1), alice, node1, 1)) },
			func(c *block.Context) error { _, err := Withdraw(c, alice); return err }, api.ErrNothingUnlocked},
		{"too many unlocking entries", func(kv memKV) {
			for h := int64(1); h <= api.MaxUnlocking; h++ {
				must(t, Unbond(ctxAt(kv, h), alice, crypto.PublicKey{}, 1))
			}
		}, func(c *block.Context) error { return Unbond(c, alice, crypto.PublicKey{}, 1) }, api.ErrTooManyEntries},
		{"nominate too many", nil, func(c *block.Context) error { return Nominate(c, alice, many) }, api.ErrTooManyEntries},
		{"nominate twice the same", nil, func(c *block.Context) error { return Nominate(c, alice, []crypto.PublicKey{node1, node2, node1}) }, api.ErrInvalidCall},
		{"nominate an unknown node", nil, func(c *block.Context) error { return Nominate(c, alice, []crypto.PublicKey{node1, ghost}) }, api.ErrUnknownNode},
		{"nominate without bonded stake", nil, func(c *block.Context) error { return Nominate(c, bob, []crypto.PublicKey{node1}) }, api.ErrNotEnoughBonded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kv := setup(t)
			if tc.prep != nil {
				tc.prep(kv)
			}
			before := kv.clone()
			ctx := ctxAt(kv, 50)
			err := tc.op(ctx)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if !reflect.DeepEqual(kv, before) || len(ctx.Messages) != 0 || len(ctx.Events) != 0 {
				t.Fatalf("refused call changed state (%v) or emitted %v %v", !reflect.DeepEqual(kv, before), ctx.Messages, ctx.Events)
			}
		})
	}
}

// The stake refusals state amounts in PHA with the base units beside them
// (they said "has 1000000000000 bonded ..., allocating 1500000000000").
func TestRefusalsSpeakPHA(t *testing.T) {
	kv := newState(t)
	accounts.Set(kv, alice, api.Account{Balance: 3 * api.Unit})
	ctx := ctxAt(kv, 1)
	must(t, Bond(ctx, alice, 2*api.Unit))
	must(t, Allocate(ctx, alice, node1, api.Unit))
	for _, tc := range []struct {
		name string
		op   func() error
		want string
	}{
		{"bond beyond the balance", func() error { return Bond(ctx, alice, 3*api.Unit/2) },
			"has 1 PHA (1000000000000 units), needs 1.5 PHA (1500000000000 units)"},
		{"allocate beyond bonded", func() error { return Allocate(ctx, alice, node2, 3*api.Unit/2) },
			"has 1 PHA (1000000000000 units) bonded and unallocated, allocating 1.5 PHA (1500000000000 units)"},
		{"unbond beyond allocated", func() error { return Unbond(ctx, alice, node1, 2*api.Unit) },
			"allocates 1 PHA (1000000000000 units) to " + node1.Hex() + ", unbonding 2 PHA (2000000000000 units)"},
		{"unbond beyond bonded", func() error { return Unbond(ctx, alice, crypto.PublicKey{}, api.Unit+1) },
			"has 1 PHA (1000000000000 units) bonded and unallocated, unbonding 1.000000000001 PHA (1000000000001 units)"},
	} {
		if err := tc.op(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to say %q", tc.name, err, tc.want)
		}
	}
}

// TestNominateAndIterate: nominations are kept sorted, listed in account
// order, replaced, and cleared.
func TestNominateAndIterate(t *testing.T) {
	kv := newState(t)
	ctx := ctxAt(kv, 1)
	must(t, Bond(ctx, alice, 100))
	must(t, Bond(ctx, bob, 200))
	must(t, Nominate(ctx, alice, []crypto.PublicKey{node2, node1}))
	must(t, Nominate(ctx, bob, []crypto.PublicKey{node1}))
	type vote struct {
		who     crypto.PublicKey
		bonded  uint64
		targets []crypto.PublicKey
	}
	collect := func() []vote {
		var out []vote
		ForEachNominator(kv, func(who crypto.PublicKey, bonded uint64, targets []crypto.PublicKey) bool {
			out = append(out, vote{who, bonded, targets})
			return true
		})
		return out
	}
	sortedNodes := []crypto.PublicKey{node1, node2}
	slices.SortFunc(sortedNodes, cmpKey)
	want := []vote{{alice, 100, sortedNodes}, {bob, 200, []crypto.PublicKey{node1}}}
	slices.SortFunc(want, func(a, b vote) int { return cmpKey(a.who, b.who) })
	if got := collect(); !reflect.DeepEqual(got, want) {
		t.Fatalf("nominators %+v, want %+v", got, want)
	}
	checkInvariants(t, kv)
	must(t, Nominate(ctx, alice, nil))
	if got := collect(); len(got) != 1 || got[0].who != bob {
		t.Fatalf("after clearing alice: %+v", got)
	}
	checkInvariants(t, kv)
	n := 0
	must(t, Nominate(ctx, alice, []crypto.PublicKey{node1}))
	ForEachNominator(kv, func(crypto.PublicKey, uint64, []crypto.PublicKey) bool { n++; return false })
	if n != 1 {
		t.Fatalf("iteration did not stop: %d", n)
	}
}

// TestWorkloadKeepsIssuance runs a random workload of transfers, fees,
// bonds, allocations, unbonds, withdrawals, nominations, slashes and
// rewards block by block (each call on a cache discarded on error, as the
// application does) and checks after every block that Σ balances + Σ
// bonded + Σ allocations + Σ unlocking = issuance and that the aggregates
// and indexes match the ledgers.
func TestWorkloadKeepsIssuance(t *testing.T) {
	kv := newState(t)
	people := []crypto.PublicKey{alice, bob, carol}
	nodes := []crypto.PublicKey{node1, node2, ghost}
	rng := rand.New(rand.NewPCG(10, 20))
	amount := func() uint64 { return uint64(rng.IntN(1_500)) }
	var applied, refused int
	for h := int64(1); h <= 400; h++ {
		for i := 0; i < 4; i++ {
			c := store.NewCache(kv)
			ctx := ctxAt(c, h)
			who, node := people[rng.IntN(len(people))], nodes[rng.IntN(len(nodes))]
			var err error
			switch rng.IntN(10) {
			case 0:
				err = accounts.Transfer(ctx, who, &api.Transfer{To: people[rng.IntN(3)], Amount: amount()})
			case 1:
				err = accounts.ChargeFee(ctx, who, accounts.Get(c, who).Nonce, uint64(rng.IntN(20)), 0, 0)
			case 2:
				err = Bond(ctx, who, amount())
			case 3, 4:
				err = Allocate(ctx, who, node, amount())
			case 5:
				if rng.IntN(2) == 0 {
					node = crypto.PublicKey{}
				}
				err = Unbond(ctx, who, node, amount()/2)
			case 6:
				_, err = Withdraw(ctx, who)
			case 7:
				err = Nominate(ctx, who, nodes[:rng.IntN(3)])
			case 8:
				Slash(ctx, node, uint64(rng.IntN(300_000)), "random")
				SlashExposure(ctx, who, amount()/4, "random")
			case 9:
				Reward(ctx, node, amount())
			}
			if err != nil {
				refused++
				c.Discard()
				continue
			}
			applied++
			c.Write()
		}
		checkInvariants(t, kv)
	}
	if applied < 500 || refused < 100 {
		t.Fatalf("workload too one-sided: %d applied, %d refused", applied, refused)
	}
	if accounts.Issuance(kv) == 20_000 {
		t.Fatal("the workload neither minted nor burned")
	}
}

// The staking keys sort under their prefix and do not collide.
func TestKeys(t *testing.T) {
	ks := [][]byte{api.StakeLedgerKey(alice), api.NodeStakeKey(alice), api.NodeStakersKey(alice), api.NominatorBucketKey(alice[0])}
	for i, k := range ks {
		if !bytes.HasPrefix(k, []byte("st/")) {
			t.Fatalf("key %q outside st/", k)
		}
		for j := range ks[:i] {
			if bytes.Equal(k, ks[j]) {
				t.Fatalf("keys %d and %d collide", i, j)
			}
		}
	}
}
