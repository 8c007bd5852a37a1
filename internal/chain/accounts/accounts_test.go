package accounts

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
)

var (
	alice = crypto.MustKeyPairFromURI("//Alice").Public()
	bob   = crypto.MustKeyPairFromURI("//Bob").Public()
	dave  = crypto.MustKeyPairFromURI("//Dave").Public() // no account
)

// memKV is a trivial map-backed store.KV.
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

func newState(accts map[crypto.PublicKey]api.Account) memKV {
	kv := memKV{}
	for pk, a := range accts {
		Set(kv, pk, a)
	}
	return kv
}

func newContext(kv memKV) *block.Context {
	return &block.Context{KV: kv, ChainID: "phala-accounts-test", Height: 3, Time: time.Unix(1_700_000_000, 0), Params: api.DefaultParams()}
}

// invalidKey returns 32 bytes that are not a valid sr25519 public key.
func invalidKey(t *testing.T) crypto.PublicKey {
	t.Helper()
	var pk crypto.PublicKey
	for i := range pk {
		pk[i] = 0xff
	}
	if pk.Valid() {
		t.Fatal("test key 0xff..ff is unexpectedly valid")
	}
	return pk
}

func TestGetSet(t *testing.T) {
	kv := memKV{}
	if got := Get(kv, dave); got != (api.Account{}) {
		t.Fatalf("Get of a missing account = %+v, want zero", got)
	}
	want := api.Account{Balance: math.MaxUint64, Nonce: 12345}
	Set(kv, alice, want)
	if got := Get(kv, alice); got != want {
		t.Fatalf("Get = %+v, want %+v", got, want)
	}
	if !bytes.Equal(kv[string(api.AccountKey(alice))], want.Encode()) {
		t.Fatal("Set did not store the canonical encoding under AccountKey")
	}
	if got := Get(kv, bob); got != (api.Account{}) {
		t.Fatalf("another account = %+v, want zero", got)
	}
	kv[string(api.AccountKey(bob))] = []byte{0x80}
	defer func() {
		if recover() == nil {
			t.Fatal("Get of a corrupt account did not panic")
		}
	}()
	Get(kv, bob)
}

func TestChargeFee(t *testing.T) {
	p := api.DefaultParams()
	const size = 150
	minFee := p.MinFee(size)
	if minFee != p.FeeBase+p.FeePerByte*size || minFee == 0 {
		t.Fatalf("unexpected MinFee(%d) = %d", size, minFee)
	}
	start := map[crypto.PublicKey]api.Account{
		alice: {Balance: 10 * minFee, Nonce: 5},
		bob:   {Balance: minFee, Nonce: 0},
	}
	tests := []struct {
		name    string
		signer  crypto.PublicKey
		nonce   uint64
		fee     uint64
		size    int
		wantErr error
		want    api.Account // the signer's account after a successful charge
	}{
		{name: "stale nonce", signer: alice, nonce: 4, fee: minFee, size: size, wantErr: api.ErrStaleNonce},
		{name: "much older nonce", signer: alice, nonce: 0, fee: minFee, size: size, wantErr: api.ErrStaleNonce},
		{name: "future nonce", signer: alice, nonce: 6, fee: minFee, size: size, wantErr: api.ErrFutureNonce},
		{name: "far future nonce", signer: alice, nonce: math.MaxUint64, fee: minFee, size: size, wantErr: api.ErrFutureNonce},
		{name: "stale nonce is reported before a low fee", signer: alice, nonce: 4, fee: 0, size: size, wantErr: api.ErrStaleNonce},
		{name: "fee one below the minimum", signer: alice, nonce: 5, fee: minFee - 1, size: size, wantErr: api.ErrFeeTooLow},
		{name: "zero fee", signer: alice, nonce: 5, fee: 0, size: size, wantErr: api.ErrFeeTooLow},
		{name: "fee enough for a smaller tx only", signer: alice, nonce: 5, fee: p.MinFee(size - 1), size: size, wantErr: api.ErrFeeTooLow},
		{name: "fee above the balance", signer: alice, nonce: 5, fee: 10*minFee + 1, size: size, wantErr: api.ErrInsufficientBalance},
		{name: "missing account", signer: dave, nonce: 0, fee: minFee, size: size, wantErr: api.ErrInsufficientBalance},
		{name: "missing account, wrong nonce", signer: dave, nonce: 1, fee: minFee, size: size, wantErr: api.ErrFutureNonce},
		{name: "low fee is reported before the balance", signer: dave, nonce: 0, fee: 1, size: size, wantErr: api.ErrFeeTooLow},

		{name: "minimum fee", signer: alice, nonce: 5, fee: minFee, size: size, want: api.Account{Balance: 9 * minFee, Nonce: 6}},
		{name: "fee above the minimum", signer: alice, nonce: 5, fee: 3 * minFee, size: size, want: api.Account{Balance: 7 * minFee, Nonce: 6}},
		{name: "whole balance", signer: alice, nonce: 5, fee: 10 * minFee, size: size, want: api.Account{Balance: 0, Nonce: 6}},
		{name: "exact balance at nonce 0", signer: bob, nonce: 0, fee: minFee, size: size, want: api.Account{Balance: 0, Nonce: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kv := newState(start)
			before := kv.clone()
			ctx := newContext(kv)
			err := ChargeFee(ctx, tc.signer, tc.nonce, tc.fee, tc.size, 0)
			if len(ctx.Events) != 0 || len(ctx.Messages) != 0 {
				t.Errorf("ChargeFee emitted %v %v", ctx.Events, ctx.Messages)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ChargeFee = %v, want %v", err, tc.wantErr)
				}
				if !reflect.DeepEqual(kv, before) {
					t.Fatalf("failed ChargeFee changed state")
				}
				return
			}
			if err != nil {
				t.Fatalf("ChargeFee: %v", err)
			}
			if got := Get(kv, tc.signer); got != tc.want {
				t.Fatalf("signer after ChargeFee = %+v, want %+v", got, tc.want)
			}
			// Only the signer's account changed (the fee is burned).
			for pk, a := range start {
				if pk != tc.signer && Get(kv, pk) != a {
					t.Errorf("account %s changed to %+v", pk, Get(kv, pk))
				}
			}
			if len(kv) != len(before) {
				t.Errorf("ChargeFee created keys: %d before, %d after", len(before), len(kv))
			}
		})
	}
}

func TestChargeFeeSequence(t *testing.T) {
	// Consecutive charges: each uses the next nonce; replaying one fails.
	kv := newState(map[crypto.PublicKey]api.Account{alice: {Balance: 100 * api.Unit}})
	ctx := newContext(kv)
	fee := ctx.Params.MinFee(100)
	for n := uint64(0); n < 3; n++ {
		if err := ChargeFee(ctx, alice, n, fee, 100, 0); err != nil {
			t.Fatalf("charge with nonce %d: %v", n, err)
		}
	}
	if err := ChargeFee(ctx, alice, 2, fee, 100, 0); !errors.Is(err, api.ErrStaleNonce) {
		t.Fatalf("replayed nonce: %v, want ErrStaleNonce", err)
	}
	if got, want := Get(kv, alice), (api.Account{Balance: 100*api.Unit - 3*fee, Nonce: 3}); got != want {
		t.Fatalf("after 3 charges: %+v, want %+v", got, want)
	}
}

func TestTransfer(t *testing.T) {
	start := map[crypto.PublicKey]api.Account{
		alice: {Balance: 100, Nonce: 4},
		bob:   {Balance: 50, Nonce: 9},
	}
	tests := []struct {
		name    string
		state   map[crypto.PublicKey]api.Account // nil: start
		from    crypto.PublicKey
		to      crypto.PublicKey
		amount  uint64
		wantErr error
		want    map[crypto.PublicKey]api.Account // accounts after success
		event   bool                             // a transfer event is expected
	}{
		{name: "zero amount", from: alice, to: bob, amount: 0, wantErr: api.ErrInvalidCall},
		{name: "zero amount to self", from: alice, to: alice, amount: 0, wantErr: api.ErrInvalidCall},
		{name: "invalid recipient key", from: alice, to: invalidKey(t), amount: 1, wantErr: api.ErrInvalidCall},
		{name: "invalid recipient key, amount beyond the balance", from: alice, to: invalidKey(t), amount: 1000, wantErr: api.ErrInvalidCall},
		{name: "one more than the balance", from: alice, to: bob, amount: 101, wantErr: api.ErrInsufficientBalance},
		{name: "sender without account", from: dave, to: bob, amount: 1, wantErr: api.ErrInsufficientBalance},
		{name: "self-transfer beyond the balance", from: alice, to: alice, amount: 101, wantErr: api.ErrInsufficientBalance},
		{
			name:    "recipient overflow",
			state:   map[crypto.PublicKey]api.Account{alice: {Balance: 100}, bob: {Balance: math.MaxUint64 - 10}},
			from:    alice,
			to:      bob,
			amount:  11,
			wantErr: api.ErrInvalidCall,
		},
		{
			name:    "recipient at the maximum",
			state:   map[crypto.PublicKey]api.Account{alice: {Balance: 100}, bob: {Balance: math.MaxUint64}},
			from:    alice,
			to:      bob,
			amount:  1,
			wantErr: api.ErrInvalidCall,
		},

		{name: "self-transfer is a no-op", from: alice, to: alice, amount: 40, want: start},
		{name: "self-transfer of the whole balance", from: alice, to: alice, amount: 100, want: start},
		{
			name: "success", from: alice, to: bob, amount: 30, event: true,
			want: map[crypto.PublicKey]api.Account{alice: {Balance: 70, Nonce: 4}, bob: {Balance: 80, Nonce: 9}},
		},
		{
			name: "whole balance", from: bob, to: alice, amount: 50, event: true,
			want: map[crypto.PublicKey]api.Account{alice: {Balance: 150, Nonce: 4}, bob: {Balance: 0, Nonce: 9}},
		},
		{
			name: "to a new account", from: alice, to: dave, amount: 1, event: true,
			want: map[crypto.PublicKey]api.Account{alice: {Balance: 99, Nonce: 4}, bob: {Balance: 50, Nonce: 9}, dave: {Balance: 1}},
		},
		{
			name:   "recipient reaches exactly the maximum",
			state:  map[crypto.PublicKey]api.Account{alice: {Balance: 100}, bob: {Balance: math.MaxUint64 - 10}},
			from:   alice,
			to:     bob,
			amount: 10, event: true,
			want: map[crypto.PublicKey]api.Account{alice: {Balance: 90}, bob: {Balance: math.MaxUint64}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			state := tc.state
			if state == nil {
				state = start
			}
			kv := newState(state)
			before := kv.clone()
			ctx := newContext(kv)
			err := Transfer(ctx, tc.from, &api.Transfer{To: tc.to, Amount: tc.amount})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Transfer = %v, want %v", err, tc.wantErr)
				}
				if !reflect.DeepEqual(kv, before) {
					t.Fatalf("failed Transfer changed state")
				}
				if len(ctx.Events) != 0 {
					t.Fatalf("failed Transfer emitted %v", ctx.Events)
				}
				return
			}
			if err != nil {
				t.Fatalf("Transfer: %v", err)
			}
			got := map[crypto.PublicKey]api.Account{}
			for _, pk := range []crypto.PublicKey{alice, bob, dave} {
				if _, ok := kv[string(api.AccountKey(pk))]; ok {
					got[pk] = Get(kv, pk)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("accounts after Transfer = %+v, want %+v", got, tc.want)
			}
			if !tc.event {
				if len(ctx.Events) != 0 {
					t.Fatalf("unexpected events %v", ctx.Events)
				}
				if !reflect.DeepEqual(kv, before) {
					t.Fatalf("no-op Transfer changed state")
				}
				return
			}
			if len(ctx.Events) != 1 {
				t.Fatalf("%d events, want 1 transfer event", len(ctx.Events))
			}
			ev := ctx.Events[0]
			attrs := map[string]string{}
			for _, a := range ev.Attributes {
				attrs[a.Key] = a.Value
			}
			wantAttrs := map[string]string{"from": tc.from.Address(), "to": tc.to.Address(), "amount": strconv.FormatUint(tc.amount, 10)}
			if ev.Type != "transfer" || !reflect.DeepEqual(attrs, wantAttrs) {
				t.Fatalf("event %s %v, want transfer %v", ev.Type, attrs, wantAttrs)
			}
		})
	}
}

// TestChargeThenTransfer: the fee is taken before the transfer checks the
// balance, so a transfer of the whole pre-fee balance fails.
func TestChargeThenTransfer(t *testing.T) {
	kv := newState(map[crypto.PublicKey]api.Account{alice: {Balance: 10 * api.Unit}})
	ctx := newContext(kv)
	fee := ctx.Params.MinFee(120)
	if err := ChargeFee(ctx, alice, 0, fee, 120, 0); err != nil {
		t.Fatal(err)
	}
	err := Transfer(ctx, alice, &api.Transfer{To: bob, Amount: 10 * api.Unit})
	if !errors.Is(err, api.ErrInsufficientBalance) {
		t.Fatalf("transfer of the pre-fee balance: %v, want ErrInsufficientBalance", err)
	}
	if err := Transfer(ctx, alice, &api.Transfer{To: bob, Amount: 10*api.Unit - fee}); err != nil {
		t.Fatalf("transfer of the post-fee balance: %v", err)
	}
	if a, b := Get(kv, alice), Get(kv, bob); a != (api.Account{Nonce: 1}) || b != (api.Account{Balance: 10*api.Unit - fee}) {
		t.Fatalf("alice %+v, bob %+v", a, b)
	}
}

// The total issuance: fees burn it, Mint raises it (refusing an overflow),
// Burn beyond it is a broken invariant; a state without it tracks none.
func TestIssuance(t *testing.T) {
	kv := newState(map[crypto.PublicKey]api.Account{alice: {Balance: 100 * api.Unit}})
	kv.Set(api.KeyIssuance, api.EncodeIssuance(100*api.Unit))
	ctx := newContext(kv)
	fee := ctx.Params.MinFee(100)
	if err := ChargeFee(ctx, alice, 0, fee, 100, 0); err != nil {
		t.Fatal(err)
	}
	if got := Issuance(kv); got != 100*api.Unit-fee || got != Get(kv, alice).Balance {
		t.Fatalf("issuance after a fee: %d, balance %d", got, Get(kv, alice).Balance)
	}
	if err := Mint(kv, 5); err != nil || Issuance(kv) != 100*api.Unit-fee+5 {
		t.Fatalf("mint: %v, issuance %d", err, Issuance(kv))
	}
	before := Issuance(kv)
	if err := Mint(kv, math.MaxUint64); !errors.Is(err, api.ErrInvalidCall) || Issuance(kv) != before {
		t.Fatalf("overflowing mint: %v, issuance %d", err, Issuance(kv))
	}
	Burn(kv, 5)
	if Issuance(kv) != before-5 {
		t.Fatalf("burn: issuance %d", Issuance(kv))
	}
	bare := memKV{}
	Burn(bare, 1)
	if err := Mint(bare, 1); err != nil || len(bare) != 0 {
		t.Fatalf("a state without issuance: %v %v", err, bare)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("burning beyond the issuance did not panic")
		}
	}()
	Burn(kv, before)
}

// Insufficient-balance refusals state amounts in PHA with the base units
// beside them (they gave bare base units).
func TestInsufficientBalanceSpeaksPHA(t *testing.T) {
	kv := newState(map[crypto.PublicKey]api.Account{alice: {Balance: api.Unit, Nonce: 0}})
	ctx := newContext(kv)
	for _, tc := range []struct {
		name string
		op   func() error
		want string
	}{
		{"debit", func() error { return Debit(kv, alice, 3*api.Unit/2) },
			"has 1 PHA (1000000000000 units), needs 1.5 PHA (1500000000000 units)"},
		{"fee", func() error { return ChargeFee(ctx, alice, 0, 2*api.Unit, 100, 0) },
			"has 1 PHA (1000000000000 units), the fee is 2 PHA (2000000000000 units)"},
		{"transfer", func() error { return Transfer(ctx, alice, &api.Transfer{To: bob, Amount: api.Unit + 1}) },
			"has 1 PHA (1000000000000 units) after the fee, transfer needs 1.000000000001 PHA (1000000000001 units)"},
	} {
		err := tc.op()
		if !errors.Is(err, api.ErrInsufficientBalance) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrInsufficientBalance saying %q", tc.name, err, tc.want)
		}
	}
}

// Move (a payout out of an escrow account) moves exactly amount, or
// changes nothing: beyond the sender's balance, a recipient's overflow.
func TestMove(t *testing.T) {
	start := map[crypto.PublicKey]api.Account{alice: {Balance: 100, Nonce: 4}, bob: {Balance: math.MaxUint64 - 5}}
	for _, tc := range []struct {
		name     string
		from, to crypto.PublicKey
		amount   uint64
		wantErr  error
		want     map[crypto.PublicKey]api.Account
	}{
		{name: "beyond the balance", from: alice, to: dave, amount: 101, wantErr: api.ErrInsufficientBalance},
		{name: "from an empty account", from: dave, to: alice, amount: 1, wantErr: api.ErrInsufficientBalance},
		{name: "recipient overflow", from: alice, to: bob, amount: 6, wantErr: api.ErrInvalidCall},
		{name: "to itself", from: alice, to: alice, amount: 100, want: start},
		{name: "whole balance", from: alice, to: dave, amount: 100,
			want: map[crypto.PublicKey]api.Account{alice: {Nonce: 4}, bob: start[bob], dave: {Balance: 100}}},
		{name: "recipient to the maximum", from: alice, to: bob, amount: 5,
			want: map[crypto.PublicKey]api.Account{alice: {Balance: 95, Nonce: 4}, bob: {Balance: math.MaxUint64}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := newState(start)
			before := kv.clone()
			err := Move(kv, tc.from, tc.to, tc.amount)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !reflect.DeepEqual(kv, before) {
					t.Fatalf("Move = %v (want %v), state changed: %v", err, tc.wantErr, !reflect.DeepEqual(kv, before))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for pk, want := range tc.want {
				if got := Get(kv, pk); got != want {
					t.Fatalf("%s: %+v, want %+v", pk.Short(), got, want)
				}
			}
		})
	}
}
