// Package staking owns the chain's stake (docs/economy.md "Nodes and their
// stake", issue 10 point 1): every account's ledger (bonded stake,
// allocations backing nodes, nominations of gatekeeper candidates, unlocking
// entries), each node's stake aggregate, and the indexes that make them
// iterable in a deterministic order (the stakers of a node, the
// nominators), all under the "st/" keys.
//
// It executes the stake_* calls and serves the proved ledger and node reads
// and the staker listing. Other modules use its Go API: NodeStake and
// Assignable (a worker needs Params.MinWorkerStake), Slash and
// SlashExposure (burn), Reward (mint), ForEachStaker and ForEachNominator
// (the election's voters). Every change of a node's total is told to
// pRuntimes with a TopicNodeStake queue message (origin module "staking"),
// so that gatekeepers assign contracts only to workers with enough stake.
//
// Amounts are PHA base units, heights blocks, fractions ppm. Stake moves
// between an account's balance and its ledger without changing the total
// issuance (accounts.Issuance); slashes burn it and rewards mint it.
package staking

import (
	"bytes"
	"fmt"
	"math/bits"
	"slices"
	"strconv"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/accounts"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/module"
	"github.com/phalago/phala/internal/chain/mq"
	"github.com/phalago/phala/internal/chain/registry"
	"github.com/phalago/phala/internal/chain/store"
)

// Module is the staking module's name: its origin in the queue.
const Module = "staking"

// ppmDenominator is one million parts per million.
const ppmDenominator = 1_000_000

// Ledger returns the staking ledger of who (empty if it has none).
func Ledger(kv store.KV, who crypto.PublicKey) *api.StakeLedger {
	v := kv.Get(api.StakeLedgerKey(who))
	if v == nil {
		return &api.StakeLedger{}
	}
	l, err := api.DecodeStakeLedger(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt stake ledger %s: %v", who, err))
	}
	return l
}

func setLedger(kv store.KV, who crypto.PublicKey, l *api.StakeLedger) {
	if l.Empty() {
		kv.Delete(api.StakeLedgerKey(who))
		return
	}
	kv.Set(api.StakeLedgerKey(who), l.Encode())
}

// Node returns the stake aggregate of node (zero if nothing backs it).
func Node(kv store.KV, node crypto.PublicKey) api.NodeStake {
	v := kv.Get(api.NodeStakeKey(node))
	if v == nil {
		return api.NodeStake{}
	}
	n, err := api.DecodeNodeStake(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt node stake %s: %v", node, err))
	}
	return *n
}

// setNode writes node's aggregate and, if its total changed from before,
// tells pRuntimes (TopicNodeStake).
func setNode(ctx *block.Context, node crypto.PublicKey, n api.NodeStake, before uint64) {
	if n == (api.NodeStake{}) {
		ctx.KV.Delete(api.NodeStakeKey(node))
	} else {
		ctx.KV.Set(api.NodeStakeKey(node), n.Encode())
	}
	if n.Total == before {
		return
	}
	u := &api.NodeStakeUpdate{Node: node, Total: n.Total}
	if err := mq.Emit(ctx, api.ModuleOrigin(Module), api.TopicNodeStake, u.Encode()); err != nil {
		panic(fmt.Sprintf("staking: emit node stake: %v", err)) // a fixed, valid topic and payload
	}
	ctx.Event("stake_node_total", "node", node.Hex(), "total", strconv.FormatUint(n.Total, 10))
}

// NodeStake returns the total stake allocated to node (PHA base units).
func NodeStake(kv store.KV, node crypto.PublicKey) uint64 { return Node(kv, node).Total }

// Assignable reports whether node has the stake a worker needs to be
// assigned new contracts: NodeStake ≥ p.MinWorkerStake (docs/economy.md;
// the computation module adds responsiveness).
func Assignable(kv store.KV, node crypto.PublicKey, p api.Params) bool {
	return NodeStake(kv, node) >= p.MinWorkerStake
}

// keys reads an ascending key list (an index).
func keys(kv store.KV, key []byte) []crypto.PublicKey {
	v := kv.Get(key)
	if v == nil {
		return nil
	}
	ks, err := api.DecodeKeys(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt staking index %q: %v", key, err))
	}
	return ks
}

func setKeys(kv store.KV, key []byte, ks []crypto.PublicKey) {
	if len(ks) == 0 {
		kv.Delete(key)
		return
	}
	kv.Set(key, api.EncodeKeys(ks))
}

func cmpKey(a, b crypto.PublicKey) int { return bytes.Compare(a[:], b[:]) }

// indexAdd inserts who into the ascending index under key (no-op if present).
func indexAdd(kv store.KV, key []byte, who crypto.PublicKey) {
	ks := keys(kv, key)
	i, found := slices.BinarySearchFunc(ks, who, cmpKey)
	if !found {
		setKeys(kv, key, slices.Insert(ks, i, who))
	}
}

// indexRemove removes who from the index under key (no-op if absent).
func indexRemove(kv store.KV, key []byte, who crypto.PublicKey) {
	ks := keys(kv, key)
	if i, found := slices.BinarySearchFunc(ks, who, cmpKey); found {
		setKeys(kv, key, slices.Delete(ks, i, i+1))
	}
}

// linked reports whether l still has stake at node (an allocation or an
// unlocking entry from it), i.e. belongs in the node's staker index.
func linked(l *api.StakeLedger, node crypto.PublicKey) bool {
	if l.Allocated(node) > 0 {
		return true
	}
	for _, u := range l.Unlocking {
		if u.Node == node {
			return true
		}
	}
	return false
}

// ForEachStaker calls fn with every account allocating to node and its
// allocation, in ascending account order, until fn returns false.
func ForEachStaker(kv store.KV, node crypto.PublicKey, fn func(who crypto.PublicKey, amount uint64) bool) {
	for _, who := range keys(kv, api.NodeStakersKey(node)) {
		if a := Ledger(kv, who).Allocated(node); a > 0 && !fn(who, a) {
			return
		}
	}
}

// ForEachNominator calls fn with every account that has nominations, its
// bonded (unallocated) stake and its targets (ascending), in ascending
// account order, until fn returns false.
func ForEachNominator(kv store.KV, fn func(who crypto.PublicKey, bonded uint64, targets []crypto.PublicKey) bool) {
	for b := 0; b < 256; b++ {
		for _, who := range keys(kv, api.NominatorBucketKey(byte(b))) {
			l := Ledger(kv, who)
			if !fn(who, l.Bonded, l.Nominations) {
				return
			}
		}
	}
}

func amountErr(amount uint64) error {
	if amount == 0 {
		return fmt.Errorf("%w: amount is zero", api.ErrInvalidCall)
	}
	return nil
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

// pha is an amount in errors: "1.5 PHA (1500000000000 units)".
func pha(units uint64) string { return api.FormatAmountUnits(units) }

// Bond moves amount from who's balance to its bonded stake.
// Errors: api.ErrInvalidCall (zero), api.ErrInsufficientBalance.
func Bond(ctx *block.Context, who crypto.PublicKey, amount uint64) error {
	if err := amountErr(amount); err != nil {
		return err
	}
	l := Ledger(ctx.KV, who)
	if l.Bonded+amount < l.Bonded {
		return fmt.Errorf("%w: bonded stake would overflow", api.ErrInvalidCall)
	}
	if err := accounts.Debit(ctx.KV, who, amount); err != nil {
		return fmt.Errorf("bond: %w", err)
	}
	l.Bonded += amount
	setLedger(ctx.KV, who, l)
	ctx.Event("stake_bonded", "account", who.Address(), "amount", u64(amount))
	return nil
}

// Allocate moves amount of who's bonded stake to its allocation backing
// node, a registered identity (worker or gatekeeper).
// Errors: api.ErrInvalidCall (zero), api.ErrUnknownNode,
// api.ErrNotEnoughBonded, api.ErrTooManyEntries (the account backs
// MaxAllocations nodes, or the node has MaxNodeStakers stakers and who is
// not its operator).
func Allocate(ctx *block.Context, who, node crypto.PublicKey, amount uint64) error {
	if err := amountErr(amount); err != nil {
		return err
	}
	w := registry.Worker(ctx.KV, node)
	if w == nil {
		return fmt.Errorf("%w: %s is not a registered worker or gatekeeper", api.ErrUnknownNode, node.Hex())
	}
	l := Ledger(ctx.KV, who)
	if l.Bonded < amount {
		return fmt.Errorf("%w: %s has %s bonded and unallocated, allocating %s (bond first)", api.ErrNotEnoughBonded, who, pha(l.Bonded), pha(amount))
	}
	i, found := slices.BinarySearchFunc(l.Allocations, node, func(a api.Allocation, n crypto.PublicKey) int { return cmpKey(a.Node, n) })
	if !found && len(l.Allocations) >= api.MaxAllocations {
		return fmt.Errorf("%w: %s already backs %d nodes", api.ErrTooManyEntries, who, api.MaxAllocations)
	}
	idx := keys(ctx.KV, api.NodeStakersKey(node))
	if _, in := slices.BinarySearchFunc(idx, who, cmpKey); !in {
		limit := api.MaxNodeStakers
		if who == w.Info.Operator {
			limit++
		}
		if len(idx) >= limit {
			return fmt.Errorf("%w: node %s has %d stakers", api.ErrTooManyEntries, node.Hex(), len(idx))
		}
	}
	n := Node(ctx.KV, node)
	if n.Total+amount < n.Total {
		return fmt.Errorf("%w: node stake would overflow", api.ErrInvalidCall)
	}
	before := n.Total
	l.Bonded -= amount
	if found {
		l.Allocations[i].Amount += amount
	} else {
		l.Allocations = slices.Insert(l.Allocations, i, api.Allocation{Node: node, Amount: amount})
		n.Stakers++
	}
	n.Total += amount
	setLedger(ctx.KV, who, l)
	indexAdd(ctx.KV, api.NodeStakersKey(node), who)
	setNode(ctx, node, n, before)
	ctx.Event("stake_allocated", "account", who.Address(), "node", node.Hex(), "amount", u64(amount))
	return nil
}

// Unbond moves amount of who's allocation to node (or, node zero, of its
// unallocated bonded stake) to an unlocking entry withdrawable at height +
// UnbondingPeriod. The entry stays exposed to slashes of node.
// Errors: api.ErrInvalidCall (zero), api.ErrNotEnoughBonded,
// api.ErrNotEnoughAllocated, api.ErrTooManyEntries (MaxUnlocking entries:
// withdraw first).
func Unbond(ctx *block.Context, who, node crypto.PublicKey, amount uint64) error {
	if err := amountErr(amount); err != nil {
		return err
	}
	l := Ledger(ctx.KV, who)
	allocated := node != (crypto.PublicKey{})
	var i int
	if allocated {
		var found bool
		i, found = slices.BinarySearchFunc(l.Allocations, node, func(a api.Allocation, n crypto.PublicKey) int { return cmpKey(a.Node, n) })
		if !found || l.Allocations[i].Amount < amount {
			return fmt.Errorf("%w: %s allocates %s to %s, unbonding %s", api.ErrNotEnoughAllocated, who, pha(l.Allocated(node)), node.Hex(), pha(amount))
		}
	} else if l.Bonded < amount {
		return fmt.Errorf("%w: %s has %s bonded and unallocated, unbonding %s", api.ErrNotEnoughBonded, who, pha(l.Bonded), pha(amount))
	}
	e := api.Unlocking{Amount: amount, Until: ctx.Height + int64(ctx.Params.UnbondingPeriod), Node: node}
	j, merge := slices.BinarySearchFunc(l.Unlocking, e, func(u, v api.Unlocking) int {
		if u.Before(&v) {
			return -1
		}
		if v.Before(&u) {
			return 1
		}
		return 0
	})
	if !merge && len(l.Unlocking) >= api.MaxUnlocking {
		return fmt.Errorf("%w: %s has %d unlocking entries; withdraw the unlocked ones first", api.ErrTooManyEntries, who, api.MaxUnlocking)
	}
	if merge {
		l.Unlocking[j].Amount += amount // ≤ issuance: cannot overflow
	} else {
		l.Unlocking = slices.Insert(l.Unlocking, j, e)
	}
	if allocated {
		n := Node(ctx.KV, node)
		before := n.Total
		n.Total -= amount
		if l.Allocations[i].Amount -= amount; l.Allocations[i].Amount == 0 {
			l.Allocations = slices.Delete(l.Allocations, i, i+1)
			n.Stakers--
		}
		setNode(ctx, node, n, before)
	} else {
		l.Bonded -= amount
	}
	setLedger(ctx.KV, who, l)
	ctx.Event("stake_unbonded", "account", who.Address(), "node", node.Hex(), "amount", u64(amount), "until", strconv.FormatInt(e.Until, 10))
	return nil
}

// Withdraw moves who's unlocking entries whose height has come (Until ≤
// the block's height) to its balance and returns the amount.
// Errors: api.ErrNothingUnlocked.
func Withdraw(ctx *block.Context, who crypto.PublicKey) (uint64, error) {
	l := Ledger(ctx.KV, who)
	var total uint64
	var nodes []crypto.PublicKey
	kept := l.Unlocking[:0:0]
	for _, u := range l.Unlocking {
		if u.Until > ctx.Height {
			kept = append(kept, u)
			continue
		}
		total += u.Amount
		if u.Node != (crypto.PublicKey{}) {
			nodes = append(nodes, u.Node)
		}
	}
	if total == 0 {
		next := "none is unbonding"
		if len(l.Unlocking) > 0 {
			next = "the next unlocks at height " + strconv.FormatInt(l.Unlocking[0].Until, 10)
		}
		return 0, fmt.Errorf("%w: %s has nothing unlocked at height %d (%s)", api.ErrNothingUnlocked, who, ctx.Height, next)
	}
	if err := accounts.Credit(ctx.KV, who, total); err != nil {
		return 0, fmt.Errorf("withdraw: %w", err)
	}
	l.Unlocking = kept
	setLedger(ctx.KV, who, l)
	for _, n := range nodes {
		if !linked(l, n) {
			indexRemove(ctx.KV, api.NodeStakersKey(n), who)
		}
	}
	ctx.Event("stake_withdrawn", "account", who.Address(), "amount", u64(total))
	return total, nil
}

// Nominate replaces who's nominations with targets: distinct registered
// identities (the gatekeeper module's election counts only those that are
// candidates), at most api.MaxNominations; empty clears them. Nominating
// needs bonded stake.
// Errors: api.ErrInvalidCall (repeated or invalid key, too many),
// api.ErrUnknownNode, api.ErrNotEnoughBonded.
func Nominate(ctx *block.Context, who crypto.PublicKey, targets []crypto.PublicKey) error {
	if len(targets) > api.MaxNominations {
		return fmt.Errorf("%w: %d targets, at most %d", api.ErrTooManyEntries, len(targets), api.MaxNominations)
	}
	sorted := slices.Clone(targets)
	slices.SortFunc(sorted, cmpKey)
	for i, t := range sorted {
		if i > 0 && sorted[i-1] == t {
			return fmt.Errorf("%w: target %s named twice", api.ErrInvalidCall, t.Hex())
		}
		if registry.Worker(ctx.KV, t) == nil {
			return fmt.Errorf("%w: target %s is not a registered gatekeeper candidate", api.ErrUnknownNode, t.Hex())
		}
	}
	l := Ledger(ctx.KV, who)
	if len(sorted) > 0 && l.Bonded == 0 {
		return fmt.Errorf("%w: %s has no bonded unallocated stake to nominate with (bond first)", api.ErrNotEnoughBonded, who)
	}
	if len(sorted) == 0 {
		sorted = nil
	}
	l.Nominations = sorted
	setLedger(ctx.KV, who, l)
	bucket := api.NominatorBucketKey(who[0])
	if len(sorted) > 0 {
		indexAdd(ctx.KV, bucket, who)
	} else {
		indexRemove(ctx.KV, bucket, who)
	}
	ctx.Event("stake_nominated", "account", who.Address(), "targets", strconv.Itoa(len(sorted)))
	return nil
}

// mulDiv returns a·b/c rounded down; a·b/c must fit in 64 bits (b ≤ c).
func mulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	q, _ := bits.Div64(hi, lo, c)
	return q
}

// Slash burns ppm (parts per million, capped at 10^6) of every allocation
// to node and of every unlocking entry that came from it (stake cannot
// escape a slash by unbonding), each rounded down, and returns the amount
// burned. Events: stake_slashed per account, node_slashed in total; the
// node's new total goes to pRuntimes (TopicNodeStake).
func Slash(ctx *block.Context, node crypto.PublicKey, ppm uint64, reason string) uint64 {
	if ppm > ppmDenominator {
		ppm = ppmDenominator
	}
	if ppm == 0 {
		return 0
	}
	n := Node(ctx.KV, node)
	before := n.Total
	var total uint64
	for _, who := range keys(ctx.KV, api.NodeStakersKey(node)) {
		l := Ledger(ctx.KV, who)
		var cut uint64
		for i := 0; i < len(l.Allocations); i++ {
			a := &l.Allocations[i]
			if a.Node != node {
				continue
			}
			c := mulDiv(a.Amount, ppm, ppmDenominator)
			a.Amount -= c
			n.Total -= c
			cut += c
			if a.Amount == 0 {
				l.Allocations = slices.Delete(l.Allocations, i, i+1)
				n.Stakers--
			}
			break
		}
		kept := l.Unlocking[:0]
		for _, u := range l.Unlocking {
			if u.Node == node {
				c := mulDiv(u.Amount, ppm, ppmDenominator)
				u.Amount -= c
				cut += c
			}
			if u.Amount > 0 {
				kept = append(kept, u)
			}
		}
		l.Unlocking = kept
		if len(l.Unlocking) == 0 {
			l.Unlocking = nil
		}
		if cut == 0 {
			continue
		}
		setLedger(ctx.KV, who, l)
		if !linked(l, node) {
			indexRemove(ctx.KV, api.NodeStakersKey(node), who)
		}
		total += cut
		ctx.Event("stake_slashed", "account", who.Address(), "node", node.Hex(), "amount", u64(cut), "reason", reason)
	}
	if total == 0 {
		return 0
	}
	accounts.Burn(ctx.KV, total)
	setNode(ctx, node, n, before)
	ctx.Event("node_slashed", "node", node.Hex(), "ppm", u64(ppm), "amount", u64(total), "reason", reason)
	return total
}

// SlashExposure burns up to amount of voter's stake as a nominator: its
// bonded (unallocated) stake first, then its unlocking entries, earliest
// first. It returns the amount burned (less than amount if the voter has
// less). For slashes of elected gatekeepers' nominators (the gatekeeper
// module computes each voter's exposure). Event: stake_slashed.
func SlashExposure(ctx *block.Context, voter crypto.PublicKey, amount uint64, reason string) uint64 {
	if amount == 0 {
		return 0
	}
	l := Ledger(ctx.KV, voter)
	take := min(amount, l.Bonded)
	l.Bonded -= take
	var touched []crypto.PublicKey
	kept := l.Unlocking[:0]
	for _, u := range l.Unlocking {
		if c := min(amount-take, u.Amount); c > 0 {
			u.Amount -= c
			take += c
			if u.Node != (crypto.PublicKey{}) {
				touched = append(touched, u.Node)
			}
		}
		if u.Amount > 0 {
			kept = append(kept, u)
		}
	}
	if take == 0 {
		return 0
	}
	l.Unlocking = kept
	if len(l.Unlocking) == 0 {
		l.Unlocking = nil
	}
	setLedger(ctx.KV, voter, l)
	for _, n := range touched {
		if !linked(l, n) {
			indexRemove(ctx.KV, api.NodeStakersKey(n), voter)
		}
	}
	accounts.Burn(ctx.KV, take)
	ctx.Event("stake_slashed", "account", voter.Address(), "amount", u64(take), "reason", reason)
	return take
}

// Reward mints amount and pays it into free balances: to node's stakers in
// proportion to their allocations (each share rounded down), the
// remainder to the node's operator. It returns what it minted: amount, or
// less if the node has no registration to name an operator (the
// remainder is then not minted), or 0 if minting would overflow the
// issuance. Events: stake_reward per account paid.
func Reward(ctx *block.Context, node crypto.PublicKey, amount uint64) uint64 {
	if amount == 0 {
		return 0
	}
	total := NodeStake(ctx.KV, node)
	type pay struct {
		who    crypto.PublicKey
		amount uint64
	}
	var pays []pay
	var paid uint64
	if total > 0 {
		ForEachStaker(ctx.KV, node, func(who crypto.PublicKey, a uint64) bool {
			if s := mulDiv(amount, a, total); s > 0 {
				pays = append(pays, pay{who, s})
				paid += s
			}
			return true
		})
	}
	if rest := amount - paid; rest > 0 {
		if w := registry.Worker(ctx.KV, node); w != nil {
			pays = append(pays, pay{w.Info.Operator, rest})
			paid += rest
		}
	}
	if paid == 0 {
		return 0
	}
	if err := accounts.Mint(ctx.KV, paid); err != nil {
		ctx.Event("stake_reward_refused", "node", node.Hex(), "amount", u64(amount), "reason", err.Error())
		return 0
	}
	for _, p := range pays {
		if err := accounts.Credit(ctx.KV, p.who, p.amount); err != nil {
			panic(fmt.Sprintf("staking: reward credit beyond the issuance: %v", err)) // balances ≤ issuance
		}
		ctx.Event("stake_reward", "account", p.who.Address(), "node", node.Hex(), "amount", u64(p.amount))
		logReward(ctx, p.who, api.RewardEntry{Height: ctx.Height, Node: node, Amount: p.amount})
	}
	return paid
}

// logReward adds e to who's reward log (api.RewardLog: the lifetime total
// and the latest api.MaxRewardEntries entries).
func logReward(ctx *block.Context, who crypto.PublicKey, e api.RewardEntry) {
	l := &api.RewardLog{}
	if v := ctx.KV.Get(api.RewardsKey(who)); v != nil {
		var err error
		if l, err = api.DecodeRewardLog(v); err != nil {
			panic(fmt.Sprintf("corrupt reward log of %s: %v", who.Hex(), err))
		}
	}
	l.Total += e.Amount // ≤ issuance: no overflow
	l.Entries = append(l.Entries, e)
	if n := len(l.Entries); n > api.MaxRewardEntries {
		l.Entries = l.Entries[n-api.MaxRewardEntries:]
	}
	ctx.KV.Set(api.RewardsKey(who), l.Encode())
}

// Spec returns the staking module's entry in the chain's module table: it
// owns the "st/" keys, executes the stake_* calls and serves the proved
// ledger and node reads and the staker listing. It has no genesis part.
func Spec() *module.Module {
	return &module.Module{
		Name:        Module,
		KeyPrefixes: []string{"st/"},
		Calls: map[api.CallKind]module.CallHandler{
			api.CallStakeBond: func(ctx *block.Context, signer crypto.PublicKey, c api.Call) error {
				return Bond(ctx, signer, c.(*api.StakeBond).Amount)
			},
			api.CallStakeAllocate: func(ctx *block.Context, signer crypto.PublicKey, c api.Call) error {
				a := c.(*api.StakeAllocate)
				return Allocate(ctx, signer, a.Node, a.Amount)
			},
			api.CallStakeUnbond: func(ctx *block.Context, signer crypto.PublicKey, c api.Call) error {
				u := c.(*api.StakeUnbond)
				return Unbond(ctx, signer, u.Node, u.Amount)
			},
			api.CallStakeWithdraw: func(ctx *block.Context, signer crypto.PublicKey, c api.Call) error {
				_, err := Withdraw(ctx, signer)
				return err
			},
			api.CallStakeNominate: func(ctx *block.Context, signer crypto.PublicKey, c api.Call) error {
				return Nominate(ctx, signer, c.(*api.StakeNominate).Targets)
			},
		},
		StateQueries: []string{api.QueryStakeLedger, api.QueryStakeNode, api.QueryRewards},
		Queries:      map[string]module.Querier{api.QueryStakeStakers: queryStakers},
	}
}

// queryStakers lists the accounts allocating to a node with their
// allocations (unproved; prove each with /stake/ledger).
func queryStakers(st *store.Store, req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	if len(req.Data) != crypto.PublicKeySize {
		return nil, fmt.Errorf("%w: %s takes a 32-byte node identity, got %d bytes", api.ErrInvalidCall, api.QueryStakeStakers, len(req.Data))
	}
	snap, err := st.Snapshot(req.Height)
	if err != nil {
		return nil, err
	}
	var list api.StakerList
	ForEachStaker(snap, crypto.PublicKey(req.Data), func(who crypto.PublicKey, amount uint64) bool {
		list = append(list, api.Staker{Account: who, Amount: amount})
		return true
	})
	return &abci.ResponseQuery{Height: snap.Height(), Value: list.Encode()}, nil
}
