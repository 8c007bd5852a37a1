// Package accounts owns balances of the native token, account nonces,
// transaction fees and the total issuance (docs/economy.md: genesis sets it
// to the sum of the balances; fees and slashes burn, rewards mint).
package accounts

import (
	"fmt"
	"math"
	"strconv"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/module"
	"github.com/phalago/phala/internal/chain/store"
)

// Get returns the account of pk (zero if it does not exist).
func Get(kv store.KV, pk crypto.PublicKey) api.Account {
	v := kv.Get(api.AccountKey(pk))
	if v == nil {
		return api.Account{}
	}
	a, err := api.DecodeAccount(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt account %s: %v", pk, err))
	}
	return *a
}

// Set writes the account of pk.
func Set(kv store.KV, pk crypto.PublicKey, a api.Account) { kv.Set(api.AccountKey(pk), a.Encode()) }

// ChargeFee checks the nonce and fee of a transaction of size bytes whose
// call adds execFee (api.Params.ExecFee: a command's gas fee) to the size
// fee, then takes the declared fee from the signer and advances its nonce.
// Fees are burned. Errors: api.ErrStaleNonce, api.ErrFutureNonce,
// api.ErrFeeTooLow (below MinFee(size) + execFee), api.ErrInsufficientBalance.
func ChargeFee(ctx *block.Context, signer crypto.PublicKey, nonce, fee uint64, size int, execFee uint64) error {
	a := Get(ctx.KV, signer)
	switch {
	case nonce < a.Nonce:
		return fmt.Errorf("%w: nonce %d was already used; the next nonce of %s is %d", api.ErrStaleNonce, nonce, signer, a.Nonce)
	case nonce > a.Nonce:
		return fmt.Errorf("%w: nonce %d is ahead; the next nonce of %s is %d (submit the missing ones first)", api.ErrFutureNonce, nonce, signer, a.Nonce)
	}
	sizeFee := ctx.Params.MinFee(size)
	if execFee > 0 && (sizeFee > math.MaxUint64-execFee || fee < sizeFee+execFee) {
		return fmt.Errorf("%w: fee %d is below the minimum %d for %d bytes (fee_base %d + fee_per_byte %d) plus %d for the declared gas (gas_price_per_mgas %d)",
			api.ErrFeeTooLow, fee, satAdd(sizeFee, execFee), size, ctx.Params.FeeBase, ctx.Params.FeePerByte, execFee, ctx.Params.GasPricePerMGas)
	}
	if fee < sizeFee {
		return fmt.Errorf("%w: fee %d is below the minimum %d for %d bytes (fee_base %d + fee_per_byte %d)", api.ErrFeeTooLow, fee, sizeFee, size, ctx.Params.FeeBase, ctx.Params.FeePerByte)
	}
	if a.Balance < fee {
		return fmt.Errorf("%w: %s has %s, the fee is %s", api.ErrInsufficientBalance, signer, api.FormatAmountUnits(a.Balance), api.FormatAmountUnits(fee))
	}
	a.Balance -= fee
	a.Nonce++
	Set(ctx.KV, signer, a)
	Burn(ctx.KV, fee)
	return nil
}

// Issuance returns the total issuance in PHA base units: every balance,
// bonded, allocated and unlocking unit in existence. A state without the
// issuance key (a bare store of a unit test that ran no genesis) has none
// and does not track it.
func Issuance(kv store.KV) uint64 {
	v, _ := issuance(kv)
	return v
}

func issuance(kv store.KV) (uint64, bool) {
	b := kv.Get(api.KeyIssuance)
	if b == nil {
		return 0, false
	}
	v, err := api.DecodeIssuance(b)
	if err != nil {
		panic(fmt.Sprintf("corrupt issuance: %v", err))
	}
	return v, true
}

// Burn lowers the total issuance by amount (units that left every
// balance and ledger: a fee, a slash). Burning more than the issuance is a
// broken invariant and panics.
func Burn(kv store.KV, amount uint64) {
	v, ok := issuance(kv)
	if !ok || amount == 0 {
		return
	}
	if amount > v {
		panic(fmt.Sprintf("accounts: burning %d exceeds the issuance %d", amount, v))
	}
	kv.Set(api.KeyIssuance, api.EncodeIssuance(v-amount))
}

// Mint raises the total issuance by amount, which the caller credits to
// balances (a reward). It fails, changing nothing, if the issuance would
// overflow.
func Mint(kv store.KV, amount uint64) error {
	v, ok := issuance(kv)
	if !ok || amount == 0 {
		return nil
	}
	if v+amount < v {
		return fmt.Errorf("%w: minting %d overflows the issuance %d", api.ErrInvalidCall, amount, v)
	}
	kv.Set(api.KeyIssuance, api.EncodeIssuance(v+amount))
	return nil
}

// Credit adds amount to pk's balance (the other half of a Mint, or of
// stake coming back). It fails, changing nothing, on overflow.
func Credit(kv store.KV, pk crypto.PublicKey, amount uint64) error {
	a := Get(kv, pk)
	if a.Balance+amount < a.Balance {
		return fmt.Errorf("%w: balance of %s would overflow", api.ErrInvalidCall, pk)
	}
	a.Balance += amount
	Set(kv, pk, a)
	return nil
}

// Debit takes amount from pk's balance (to bond it).
// Errors: api.ErrInsufficientBalance.
func Debit(kv store.KV, pk crypto.PublicKey, amount uint64) error {
	a := Get(kv, pk)
	if a.Balance < amount {
		return fmt.Errorf("%w: %s has %s, needs %s", api.ErrInsufficientBalance, pk, api.FormatAmountUnits(a.Balance), api.FormatAmountUnits(amount))
	}
	a.Balance -= amount
	Set(kv, pk, a)
	return nil
}

func satAdd(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

// Move moves amount PHA base units from one balance to another, without
// a fee, an event or the Credits hook (the contracts module's payouts out
// of an escrow account, docs/interop.md). It changes nothing on error:
// api.ErrInsufficientBalance, api.ErrInvalidCall (the recipient's balance
// would overflow). Moving to the same account changes nothing.
func Move(kv store.KV, from, to crypto.PublicKey, amount uint64) error {
	src := Get(kv, from)
	if src.Balance < amount {
		return fmt.Errorf("%w: %s has %s, needs %s", api.ErrInsufficientBalance, from, api.FormatAmountUnits(src.Balance), api.FormatAmountUnits(amount))
	}
	if from == to || amount == 0 {
		return nil
	}
	dst := Get(kv, to)
	if dst.Balance+amount < dst.Balance {
		return fmt.Errorf("%w: recipient balance would overflow", api.ErrInvalidCall)
	}
	src.Balance -= amount
	dst.Balance += amount
	Set(kv, from, src)
	Set(kv, to, dst)
	return nil
}

// Credits is told of every transfer's credit, inside the transfer's call:
// an error refuses the transfer (nothing moves). The contracts module
// implements it: a transfer to a contract's escrow account is delivered to
// the contract as a deposit (docs/interop.md, "Chain → contract"); a
// transfer to any other account costs it one state read.
type Credits interface {
	Credited(ctx *block.Context, from, to crypto.PublicKey, amount uint64) error
}

// Transfer moves amount from one account to another.
func Transfer(ctx *block.Context, from crypto.PublicKey, t *api.Transfer) error {
	if t.Amount == 0 {
		return fmt.Errorf("%w: transfer of zero", api.ErrInvalidCall)
	}
	if !t.To.Valid() {
		return fmt.Errorf("%w: recipient %s is not a valid sr25519 public key", api.ErrInvalidCall, t.To.Hex())
	}
	src := Get(ctx.KV, from)
	if src.Balance < t.Amount {
		return fmt.Errorf("%w: %s has %s after the fee, transfer needs %s", api.ErrInsufficientBalance, from, api.FormatAmountUnits(src.Balance), api.FormatAmountUnits(t.Amount))
	}
	if from == t.To {
		return nil
	}
	dst := Get(ctx.KV, t.To)
	if dst.Balance+t.Amount < dst.Balance {
		return fmt.Errorf("%w: recipient balance would overflow", api.ErrInvalidCall)
	}
	src.Balance -= t.Amount
	dst.Balance += t.Amount
	Set(ctx.KV, from, src)
	Set(ctx.KV, t.To, dst)
	ctx.Event("transfer", "from", from.Address(), "to", t.To.Address(), "amount", strconv.FormatUint(t.Amount, 10))
	return nil
}

// Spec returns the accounts module's entry in the chain's module table:
// it owns the "a/" keys, executes transfers (telling credits, if not nil,
// of each one that moved PHA: its error refuses the transfer), writes the
// genesis balances and issuance and serves proved account and issuance
// reads. Fees are charged by the application before any call (ChargeFee).
func Spec(credits Credits) *module.Module {
	return &module.Module{
		Name:        "accounts",
		KeyPrefixes: []string{"a/"},
		Calls: map[api.CallKind]module.CallHandler{
			api.CallTransfer: func(ctx *block.Context, signer crypto.PublicKey, c api.Call) error {
				t := c.(*api.Transfer)
				if err := Transfer(ctx, signer, t); err != nil {
					return err
				}
				if credits == nil || signer == t.To {
					return nil
				}
				return credits.Credited(ctx, signer, t.To, t.Amount)
			},
		},
		InitGenesis: func(kv store.KV, g *module.Genesis) error {
			var total uint64
			for _, acc := range g.State.Accounts {
				Set(kv, acc.Address, api.Account{Balance: acc.Balance})
				total += acc.Balance // GenesisState.Validate refuses an overflow
			}
			kv.Set(api.KeyIssuance, api.EncodeIssuance(total))
			return nil
		},
		StateQueries: []string{api.QueryAccount, api.QueryIssuance},
	}
}
