package api

import (
	"bytes"
	"errors"
	"testing"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

func stakingSamples() ([]Call, *StakeLedger) {
	alice := crypto.MustKeyPairFromURI("//Alice").Public()
	bob := crypto.MustKeyPairFromURI("//Bob").Public()
	lo, hi := alice, bob
	if bytes.Compare(lo[:], hi[:]) > 0 {
		lo, hi = hi, lo
	}
	calls := []Call{
		&StakeBond{Amount: 5 * Unit},
		&StakeAllocate{Node: alice, Amount: 1},
		&StakeUnbond{Node: bob, Amount: 1 << 50},
		&StakeUnbond{Amount: 3},
		&StakeWithdraw{},
		&StakeNominate{Targets: []crypto.PublicKey{bob, alice}},
		&StakeNominate{},
	}
	l := &StakeLedger{Bonded: 7, Allocations: []Allocation{{Node: lo, Amount: 2}, {Node: hi, Amount: 3}}, Nominations: []crypto.PublicKey{lo, hi},
		Unlocking: []Unlocking{{Amount: 4, Until: 10}, {Amount: 5, Until: 10, Node: lo}, {Amount: 6, Until: 12, Node: lo}}}
	return calls, l
}

// The staking calls round-trip through the signed transaction envelope.
func TestStakingRoundTrip(t *testing.T) {
	calls, l := stakingSamples()
	alice := crypto.MustKeyPairFromURI("//Alice")
	for _, c := range calls {
		b := NewTx("c", alice, 0, 1, c).Encode()
		tx, err := DecodeTx(b)
		if err != nil || !bytes.Equal(tx.Encode(), b) || !tx.VerifySignature(b) || tx.Call.Kind() != c.Kind() {
			t.Fatalf("%s: %v", c.Kind(), err)
		}
		if c.Kind().String() != map[CallKind]string{CallStakeBond: "stake_bond", CallStakeAllocate: "stake_allocate", CallStakeUnbond: "stake_unbond",
			CallStakeWithdraw: "stake_withdraw", CallStakeNominate: "stake_nominate"}[c.Kind()] {
			t.Fatalf("name of %d: %s", c.Kind(), c.Kind())
		}
	}
	got, err := DecodeStakeLedger(l.Encode())
	if err != nil || !bytes.Equal(got.Encode(), l.Encode()) || got.Total() != 7+2+3+4+5+6 {
		t.Fatalf("ledger: %v %+v", err, got)
	}
}

// Non-canonical or oversized staking values are refused.
func TestStakingDecodeStrict(t *testing.T) {
	_, l := stakingSamples()
	bad := []*StakeLedger{
		{Allocations: []Allocation{l.Allocations[1], l.Allocations[0]}},       // not ascending
		{Allocations: []Allocation{{Node: l.Allocations[0].Node}}},            // zero amount
		{Nominations: []crypto.PublicKey{l.Nominations[0], l.Nominations[0]}}, // repeated
		{Unlocking: []Unlocking{l.Unlocking[2], l.Unlocking[0]}},              // not ascending
		{Unlocking: []Unlocking{l.Unlocking[0], l.Unlocking[0]}},              // repeated
		{Unlocking: []Unlocking{{Until: 5}}},                                  // zero amount
		{Nominations: make([]crypto.PublicKey, MaxNominations+1)},             // too many
		{Unlocking: []Unlocking{{Amount: 1, Until: 1<<62 + 1}}},               // height out of range
	}
	for i, b := range bad {
		if _, err := DecodeStakeLedger(b.Encode()); !errors.Is(err, ErrMalformed) {
			t.Errorf("bad ledger %d decoded: %v", i, err)
		}
	}
	if _, err := DecodeStakeLedger(append(l.Encode(), 0)); !errors.Is(err, ErrMalformed) {
		t.Error("trailing byte accepted")
	}
	w := codec.NewWriter(8)
	w.Uvarint(MaxNominations + 1)
	if _, err := DecodeCall(CallStakeNominate, append(w.Bytes(), make([]byte, 32*(MaxNominations+1))...)); !errors.Is(err, ErrMalformed) {
		t.Errorf("17 targets decoded: %v", err)
	}
	if _, err := DecodeCall(CallStakeWithdraw, []byte{0}); !errors.Is(err, ErrMalformed) {
		t.Errorf("withdraw with a body decoded: %v", err)
	}
	if _, err := DecodeNodeStake((&NodeStake{Total: 1, Stakers: MaxNodeStakers + 2}).Encode()); !errors.Is(err, ErrMalformed) {
		t.Errorf("oversized staker count decoded: %v", err)
	}
	k, _ := QueryKey(QueryStakeLedger, l.Nominations[0][:])
	if !bytes.Equal(k, StakeLedgerKey(l.Nominations[0])) {
		t.Error("ledger query key")
	}
	if _, err := QueryKey(QueryStakeNode, []byte{1}); !errors.Is(err, ErrInvalidCall) {
		t.Error("short node key accepted")
	}
}

func FuzzDecodeStaking(f *testing.F) {
	calls, l := stakingSamples()
	for _, c := range calls {
		f.Add(EncodeCall(c))
	}
	f.Add(l.Encode())
	f.Add((&NodeStake{Total: 1 << 60, Stakers: 3}).Encode())
	f.Add((&NodeStakeUpdate{Node: l.Nominations[0], Total: 9}).Encode())
	f.Add(StakerList{{Account: l.Nominations[0], Amount: 1}, {Account: l.Nominations[1], Amount: 2}}.Encode())
	f.Add(EncodeIssuance(1 << 63))
	f.Add((&RewardLog{Total: 9, Entries: []RewardEntry{{Height: 600, Node: l.Nominations[0], Amount: 9}}}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := DecodeRewardLog(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("reward log mismatch %x", b)
		}
		for _, k := range []CallKind{CallStakeBond, CallStakeAllocate, CallStakeUnbond, CallStakeWithdraw, CallStakeNominate} {
			if got, err := DecodeCall(k, b); err == nil && !bytes.Equal(EncodeCall(got), b) {
				t.Fatalf("%s mismatch: %x", k, b)
			}
		}
		if got, err := DecodeStakeLedger(b); err == nil && !bytes.Equal(got.Encode(), b) {
			t.Fatalf("ledger mismatch: %x", b)
		}
		if got, err := DecodeNodeStake(b); err == nil && !bytes.Equal(got.Encode(), b) {
			t.Fatalf("node stake mismatch: %x", b)
		}
		if got, err := DecodeNodeStakeUpdate(b); err == nil && !bytes.Equal(got.Encode(), b) {
			t.Fatalf("node stake update mismatch: %x", b)
		}
		if got, err := DecodeStakerList(b); err == nil && !bytes.Equal(got.Encode(), b) {
			t.Fatalf("staker list mismatch: %x", b)
		}
		if got, err := DecodeIssuance(b); err == nil && !bytes.Equal(EncodeIssuance(got), b) {
			t.Fatalf("issuance mismatch: %x", b)
		}
	})
}
