package api

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Staking (docs/economy.md "Nodes and their stake"): an account bonds PHA
// (balance → bonded), allocates bonded stake to a node (a registered
// pRuntime identity: the stake backing a worker or a gatekeeper candidate),
// nominates gatekeeper candidates with its unallocated bonded stake, and
// unbonds stake, which comes back to its balance after
// Params.UnbondingPeriod blocks (stake_withdraw). Slashes take from
// allocations and from the unlocking entries that came from the slashed
// node. Amounts are in PHA base units, heights in blocks.

// Staking calls.
const (
	CallStakeBond     CallKind = 20
	CallStakeAllocate CallKind = 21
	CallStakeUnbond   CallKind = 22
	CallStakeWithdraw CallKind = 23
	CallStakeNominate CallKind = 24
)

func init() {
	callNames[CallStakeBond] = "stake_bond"
	callNames[CallStakeAllocate] = "stake_allocate"
	callNames[CallStakeUnbond] = "stake_unbond"
	callNames[CallStakeWithdraw] = "stake_withdraw"
	callNames[CallStakeNominate] = "stake_nominate"
}

// Limits of staking records.
const (
	// MaxNominations bounds a ledger's nominations (Polkadot's 16).
	MaxNominations = 16
	// MaxAllocations bounds the nodes one account backs.
	MaxAllocations = 64
	// MaxUnlocking bounds a ledger's unlocking entries (Polkadot's 32);
	// entries with the same (until, node) merge. Withdraw to make room.
	MaxUnlocking = 32
	// MaxNodeStakers bounds the accounts indexed under one node (backing
	// it or unbonding from it). The node's operator may always allocate,
	// one more than the bound.
	MaxNodeStakers = 1024
)

// Staking errors. Each wraps the result code a client branches on.
var (
	ErrNotEnoughBonded    = fmt.Errorf("%w: not enough bonded stake", ErrInsufficientBalance)
	ErrNotEnoughAllocated = fmt.Errorf("%w: not enough stake allocated to the node", ErrInsufficientBalance)
	ErrUnknownNode        = fmt.Errorf("%w: unknown node", ErrInvalidCall)
	ErrNothingUnlocked    = fmt.Errorf("%w: nothing unlocked to withdraw", ErrInvalidCall)
	ErrTooManyEntries     = fmt.Errorf("%w: too many staking entries", ErrInvalidCall)
)

// Topic of the staking module's queue messages (origin: module "staking"),
// for pRuntimes.
const (
	// TopicNodeStake: payload NodeStakeUpdate, emitted whenever a node's
	// total stake changes; pRuntime's gatekeepers assign contracts only to
	// workers whose total is at least Params.MinWorkerStake.
	TopicNodeStake = "phala/staking/node_stake"
)

// Query paths of staking state.
const (
	QueryStakeLedger  = "/stake/ledger"  // data: account [32]; value: StakeLedger (absent: nothing staked)
	QueryStakeNode    = "/stake/node"    // data: node identity [32]; value: NodeStake (absent: no stake)
	QueryStakeStakers = "/stake/stakers" // data: node identity [32]; a listing (unproved): StakerList of the accounts allocating to the node
	QueryIssuance     = "/issuance"      // value: EncodeIssuance of the total issuance
)

// KeyIssuance is the state key of the total issuance (accounts module).
var KeyIssuance = []byte("a/issuance")

// StakeLedgerKey is the state key of an account's staking ledger.
func StakeLedgerKey(pk crypto.PublicKey) []byte { return append([]byte("st/l/"), pk[:]...) }

// NodeStakeKey is the state key of a node's stake aggregate.
func NodeStakeKey(node crypto.PublicKey) []byte { return append([]byte("st/n/"), node[:]...) }

// NodeStakersKey is the state key of the index of the accounts backing a
// node or unbonding stake that came from it (EncodeKeys, ascending).
func NodeStakersKey(node crypto.PublicKey) []byte { return append([]byte("st/s/"), node[:]...) }

// NominatorBucketKey is the state key of the index of nominating accounts
// whose key starts with byte b (EncodeKeys, ascending).
func NominatorBucketKey(b byte) []byte { return []byte{'s', 't', '/', 'v', '/', b} }

// StakeBond moves Amount from the signer's balance to its bonded stake.
type StakeBond struct{ Amount uint64 }

func (*StakeBond) Kind() CallKind           { return CallStakeBond }
func (c *StakeBond) encode(w *codec.Writer) { w.Uvarint(c.Amount) }

// StakeAllocate moves Amount of the signer's bonded stake to an allocation
// backing Node (a registered identity).
type StakeAllocate struct {
	Node   crypto.PublicKey
	Amount uint64
}

func (*StakeAllocate) Kind() CallKind { return CallStakeAllocate }
func (c *StakeAllocate) encode(w *codec.Writer) {
	w.Fixed(c.Node[:])
	w.Uvarint(c.Amount)
}

// StakeUnbond moves Amount of the signer's allocation to Node (or of its
// unallocated bonded stake, Node zero) to an unlocking entry that becomes
// withdrawable UnbondingPeriod blocks later.
type StakeUnbond struct {
	Node   crypto.PublicKey
	Amount uint64
}

func (*StakeUnbond) Kind() CallKind { return CallStakeUnbond }
func (c *StakeUnbond) encode(w *codec.Writer) {
	w.Fixed(c.Node[:])
	w.Uvarint(c.Amount)
}

// StakeWithdraw moves every unlocking entry whose time has come to the
// signer's balance.
type StakeWithdraw struct{}

func (*StakeWithdraw) Kind() CallKind         { return CallStakeWithdraw }
func (*StakeWithdraw) encode(w *codec.Writer) {}

// StakeNominate replaces the signer's nominations with Targets (distinct
// gatekeeper candidates, at most MaxNominations; empty clears them).
type StakeNominate struct{ Targets []crypto.PublicKey }

func (*StakeNominate) Kind() CallKind { return CallStakeNominate }
func (c *StakeNominate) encode(w *codec.Writer) {
	w.Uvarint(uint64(len(c.Targets)))
	for _, t := range c.Targets {
		w.Fixed(t[:])
	}
}

func decodeStakingCall(kind CallKind, r *codec.Reader) Call {
	switch kind {
	case CallStakeBond:
		return &StakeBond{Amount: r.Uvarint()}
	case CallStakeAllocate:
		c := &StakeAllocate{}
		r.Fixed(c.Node[:])
		c.Amount = r.Uvarint()
		return c
	case CallStakeUnbond:
		c := &StakeUnbond{}
		r.Fixed(c.Node[:])
		c.Amount = r.Uvarint()
		return c
	case CallStakeWithdraw:
		return &StakeWithdraw{}
	case CallStakeNominate:
		c := &StakeNominate{}
		n := r.Len(MaxNominations)
		if n > r.Remaining()/crypto.PublicKeySize {
			r.Fail(codec.ErrShort)
			return c
		}
		if n > 0 {
			c.Targets = make([]crypto.PublicKey, n)
		}
		for i := range c.Targets {
			r.Fixed(c.Targets[i][:])
		}
		return c
	}
	return nil
}

// Allocation is stake an account allocates to a node.
type Allocation struct {
	Node   crypto.PublicKey
	Amount uint64
}

// Unlocking is stake on its way back to the balance: withdrawable from
// height Until; Node is the node it backed (zero: unallocated stake).
type Unlocking struct {
	Amount uint64
	Until  int64
	Node   crypto.PublicKey
}

// StakeLedger is an account's stake. Canonical form: allocations in
// ascending node order with non-zero amounts; nominations distinct and
// ascending; unlocking entries in ascending (Until, Node) order, distinct,
// with non-zero amounts.
type StakeLedger struct {
	Bonded      uint64
	Allocations []Allocation
	Nominations []crypto.PublicKey
	Unlocking   []Unlocking
}

// Empty reports whether the ledger holds nothing (it is then deleted).
func (l *StakeLedger) Empty() bool {
	return l.Bonded == 0 && len(l.Allocations) == 0 && len(l.Nominations) == 0 && len(l.Unlocking) == 0
}

// Allocated returns the amount allocated to node.
func (l *StakeLedger) Allocated(node crypto.PublicKey) uint64 {
	for _, a := range l.Allocations {
		if a.Node == node {
			return a.Amount
		}
	}
	return 0
}

// Total returns bonded + allocations + unlocking (saturating; the chain
// keeps issuance, so it cannot overflow there).
func (l *StakeLedger) Total() uint64 {
	t := l.Bonded
	add := func(v uint64) {
		if t+v < t {
			t = ^uint64(0)
		} else {
			t += v
		}
	}
	for _, a := range l.Allocations {
		add(a.Amount)
	}
	for _, u := range l.Unlocking {
		add(u.Amount)
	}
	return t
}

// Encode returns the canonical bytes (the state value).
func (l *StakeLedger) Encode() []byte {
	w := codec.NewWriter(16 + 40*len(l.Allocations) + 32*len(l.Nominations) + 48*len(l.Unlocking))
	w.Uvarint(l.Bonded)
	w.Uvarint(uint64(len(l.Allocations)))
	for _, a := range l.Allocations {
		w.Fixed(a.Node[:])
		w.Uvarint(a.Amount)
	}
	w.Uvarint(uint64(len(l.Nominations)))
	for _, n := range l.Nominations {
		w.Fixed(n[:])
	}
	w.Uvarint(uint64(len(l.Unlocking)))
	for _, u := range l.Unlocking {
		w.Uvarint(u.Amount)
		w.Uvarint(uint64(u.Until))
		w.Fixed(u.Node[:])
	}
	return w.Bytes()
}

// DecodeStakeLedger strictly decodes a ledger (canonical form only).
func DecodeStakeLedger(b []byte) (*StakeLedger, error) {
	l := &StakeLedger{}
	r := codec.NewReader(b)
	l.Bonded = r.Uvarint()
	if n := r.Len(MaxAllocations); n > 0 {
		l.Allocations = make([]Allocation, n)
		for i := range l.Allocations {
			a := &l.Allocations[i]
			r.Fixed(a.Node[:])
			a.Amount = r.Uvarint()
			if r.Err() == nil && (a.Amount == 0 || (i > 0 && bytes.Compare(l.Allocations[i-1].Node[:], a.Node[:]) >= 0)) {
				r.Fail(fmt.Errorf("%w: allocations not ascending or zero", codec.ErrBadFormat))
			}
		}
	}
	if n := r.Len(MaxNominations); n > 0 {
		l.Nominations = make([]crypto.PublicKey, n)
		for i := range l.Nominations {
			r.Fixed(l.Nominations[i][:])
			if r.Err() == nil && i > 0 && bytes.Compare(l.Nominations[i-1][:], l.Nominations[i][:]) >= 0 {
				r.Fail(fmt.Errorf("%w: nominations not ascending", codec.ErrBadFormat))
			}
		}
	}
	if n := r.Len(MaxUnlocking); n > 0 {
		l.Unlocking = make([]Unlocking, n)
		for i := range l.Unlocking {
			u := &l.Unlocking[i]
			u.Amount = r.Uvarint()
			until := r.Uvarint()
			if until > 1<<62 {
				r.Fail(fmt.Errorf("%w: unlocking height %d", codec.ErrBadFormat, until))
			}
			u.Until = int64(until)
			r.Fixed(u.Node[:])
			if r.Err() == nil && (u.Amount == 0 || (i > 0 && !l.Unlocking[i-1].Before(u))) {
				r.Fail(fmt.Errorf("%w: unlocking entries not ascending or zero", codec.ErrBadFormat))
			}
		}
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: stake ledger: %v", ErrMalformed, err)
	}
	return l, nil
}

// Before orders unlocking entries by (Until, Node).
func (u *Unlocking) Before(v *Unlocking) bool {
	if u.Until != v.Until {
		return u.Until < v.Until
	}
	return bytes.Compare(u.Node[:], v.Node[:]) < 0
}

// NodeStake is a node's stake aggregate: the sum of the allocations to it
// and the number of accounts allocating.
type NodeStake struct {
	Total   uint64
	Stakers uint64
}

// Encode returns the canonical bytes (the state value).
func (n *NodeStake) Encode() []byte {
	w := codec.NewWriter(12)
	w.Uvarint(n.Total)
	w.Uvarint(n.Stakers)
	return w.Bytes()
}

// DecodeNodeStake strictly decodes a node's stake aggregate.
func DecodeNodeStake(b []byte) (*NodeStake, error) {
	n := &NodeStake{}
	r := codec.NewReader(b)
	n.Total = r.Uvarint()
	n.Stakers = r.Uvarint()
	if r.Err() == nil && n.Stakers > MaxNodeStakers+1 {
		r.Fail(fmt.Errorf("%w: %d stakers", codec.ErrTooLong, n.Stakers))
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: node stake: %v", ErrMalformed, err)
	}
	return n, nil
}

// NodeStakeUpdate is the payload of TopicNodeStake.
type NodeStakeUpdate struct {
	Node  crypto.PublicKey
	Total uint64
}

// Encode returns the canonical bytes.
func (u *NodeStakeUpdate) Encode() []byte {
	w := codec.NewWriter(42)
	w.Fixed(u.Node[:])
	w.Uvarint(u.Total)
	return w.Bytes()
}

// DecodeNodeStakeUpdate strictly decodes a TopicNodeStake payload.
func DecodeNodeStakeUpdate(b []byte) (*NodeStakeUpdate, error) {
	u := &NodeStakeUpdate{}
	r := codec.NewReader(b)
	r.Fixed(u.Node[:])
	u.Total = r.Uvarint()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: node stake update: %v", ErrMalformed, err)
	}
	return u, nil
}

// Staker is one account's allocation to a node, as listed by
// QueryStakeStakers.
type Staker struct {
	Account crypto.PublicKey
	Amount  uint64
}

// StakerList is the answer of QueryStakeStakers: the node's stakers in
// ascending account order.
type StakerList []Staker

// Encode returns the canonical bytes.
func (s StakerList) Encode() []byte {
	w := codec.NewWriter(1 + 40*len(s))
	w.Uvarint(uint64(len(s)))
	for _, x := range s {
		w.Fixed(x.Account[:])
		w.Uvarint(x.Amount)
	}
	return w.Bytes()
}

// DecodeStakerList strictly decodes a staker listing.
func DecodeStakerList(b []byte) (StakerList, error) {
	r := codec.NewReader(b)
	n := r.Len(MaxNodeStakers + 1)
	if n > r.Remaining()/(crypto.PublicKeySize+1) {
		r.Fail(codec.ErrShort)
	}
	var out StakerList
	for i := 0; r.Err() == nil && i < n; i++ {
		var x Staker
		r.Fixed(x.Account[:])
		x.Amount = r.Uvarint()
		if r.Err() == nil && i > 0 && bytes.Compare(out[i-1].Account[:], x.Account[:]) >= 0 {
			r.Fail(fmt.Errorf("%w: stakers not ascending", codec.ErrBadFormat))
		}
		out = append(out, x)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: staker list: %v", ErrMalformed, err)
	}
	return out, nil
}

// EncodeIssuance encodes the total issuance (the state value).
func EncodeIssuance(v uint64) []byte { return binary.AppendUvarint(nil, v) }

// DecodeIssuance strictly decodes the total issuance.
func DecodeIssuance(b []byte) (uint64, error) {
	r := codec.NewReader(b)
	v := r.Uvarint()
	if err := r.Done(); err != nil {
		return 0, fmt.Errorf("%w: issuance: %v", ErrMalformed, err)
	}
	return v, nil
}

// QueryRewards reads an account's reward log: data account [32]; value:
// RewardLog (absent: never rewarded).
const QueryRewards = "/stake/rewards"

// RewardsKey is the state key of an account's reward log.
func RewardsKey(account crypto.PublicKey) []byte { return append([]byte("st/r/"), account[:]...) }

// MaxRewardEntries is how many of its latest rewards an account's log
// keeps (Total counts them all).
const MaxRewardEntries = 32

// RewardEntry is one reward paid to an account: its share of a node's
// era reward.
type RewardEntry struct {
	Height int64 // the block that paid it (an era's last block)
	Node   crypto.PublicKey
	Amount uint64 // units
}

// RewardLog is an account's rewards: the lifetime total and the latest
// entries, oldest first.
type RewardLog struct {
	Total   uint64
	Entries []RewardEntry
}

// Encode returns the canonical bytes.
func (l *RewardLog) Encode() []byte {
	w := codec.NewWriter(16 + 48*len(l.Entries))
	w.Uvarint(l.Total)
	w.Uvarint(uint64(len(l.Entries)))
	for _, e := range l.Entries {
		w.Varint(e.Height)
		w.Fixed(e.Node[:])
		w.Uvarint(e.Amount)
	}
	return w.Bytes()
}

// DecodeRewardLog strictly decodes a reward log.
func DecodeRewardLog(b []byte) (*RewardLog, error) {
	l := &RewardLog{}
	r := codec.NewReader(b)
	l.Total = r.Uvarint()
	n := r.Uvarint()
	if n > MaxRewardEntries {
		r.Fail(fmt.Errorf("%w: %d reward entries", codec.ErrTooLong, n))
	}
	for i := uint64(0); r.Err() == nil && i < n; i++ {
		var e RewardEntry
		e.Height = r.Varint()
		r.Fixed(e.Node[:])
		e.Amount = r.Uvarint()
		l.Entries = append(l.Entries, e)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: reward log: %v", ErrMalformed, err)
	}
	return l, nil
}
