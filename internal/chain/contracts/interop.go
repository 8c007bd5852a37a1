package contracts

// Interoperability, the chain's side (docs/interop.md; the whitepaper's
// sections 2.2 and 4.8): contract → contract calls, deposits into a
// contract's escrow account, and payouts out of it.

import (
	"fmt"
	"strconv"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/accounts"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/mq"
	"github.com/phalago/phala/internal/chain/store"
)

// recordEscrow maps the escrow account of a contract deployed for the
// first time to the contract ("cw/<escrow>" → identity).
func recordEscrow(kv store.KV, contract crypto.PublicKey) {
	kv.Set(api.EscrowOwnerKey(api.EscrowAccount(contract)), contract[:])
}

// EscrowOwner returns the contract whose escrow account acc is (one state
// read), ok false if acc is no deployed contract's escrow.
func EscrowOwner(kv store.KV, acc crypto.PublicKey) (contract crypto.PublicKey, ok bool) {
	v := kv.Get(api.EscrowOwnerKey(acc))
	if v == nil {
		return contract, false
	}
	if len(v) != crypto.PublicKeySize {
		panic(fmt.Sprintf("corrupt escrow owner of %s: %d bytes", acc.Hex(), len(v)))
	}
	return crypto.PublicKey(v), true
}

// takesDeposits says why contract's escrow takes no deposit ("" if it
// does): the contract failed to start, or it is still starting (a deposit
// before the contract runs could be stranded if its start then fails).
func takesDeposits(kv store.KV, contract crypto.PublicKey) string {
	rec := Record(kv, contract)
	switch {
	case rec == nil:
		panic(fmt.Sprintf("escrow of contract %s, which has no record", contract.Hex()))
	case rec.Status == api.ContractFailed:
		return fmt.Sprintf("contract %s failed: its escrow takes no deposit", contract.Hex())
	case rec.Status != api.ContractRunning:
		return fmt.Sprintf("contract %s is not running yet (%s): its escrow takes deposits once it runs", contract.Hex(), rec.Status)
	}
	return ""
}

// ErrNoDeposit: the recipient is the escrow account of a contract that
// takes no deposit (failed, or not running yet); the transfer is refused.
var ErrNoDeposit = fmt.Errorf("%w: the recipient is a contract's escrow account", api.ErrInvalidCall)

// Credited is the accounts module's hook (accounts.Credits) after a
// transfer credited amount PHA base units from → to, in the transfer's
// call. If to is a contract's escrow account, the transfer is a deposit:
// refused (ErrNoDeposit: the call's writes revert, nothing moves) when the
// contract failed or does not run yet, else delivered to the contract as
// an api.Deposit (TopicContractDeposit, origin module contracts) in the
// same block, with an event contract_deposit. Any other recipient costs
// one state read.
func Credited(ctx *block.Context, from, to crypto.PublicKey, amount uint64) error {
	contract, ok := EscrowOwner(ctx.KV, to)
	if !ok {
		return nil
	}
	if why := takesDeposits(ctx.KV, contract); why != "" {
		return fmt.Errorf("%w: %s", ErrNoDeposit, why)
	}
	d := &api.Deposit{Contract: contract, From: from, Amount: amount}
	if err := mq.Emit(ctx, api.ModuleOrigin(Module), api.TopicContractDeposit, d.Encode()); err != nil {
		panic(fmt.Sprintf("deposit to %s: %v", contract.Hex(), err)) // a module message of bounded size
	}
	ctx.Event("contract_deposit", "contract", contract.Hex(), "from", from.Address(), "amount", strconv.FormatUint(amount, 10))
	return nil
}

// OnCall checks a contract → contract call (api.ContractCall, the sending
// contract's own message, already in the queue): the receiver's workers
// run it as a command whatever the chain says, and pRuntimes apply the
// same rule. A call that does not decode, names a receiver that is not
// deployed or failed, or forwards more gas than max_command_gas gets an
// event contract_call_refused (every pRuntime ignores it); otherwise an
// event contract_call records it (from, to, gas, sealed, payload size).
// No state changes either way.
func OnCall(ctx *block.Context, from crypto.PublicKey, payload []byte) {
	refuse := func(to, why string) {
		ctx.Event("contract_call_refused", "from", from.Hex(), "to", to, "reason", why)
	}
	c, err := api.DecodeContractCall(payload)
	if err != nil {
		refuse("", "malformed: "+err.Error())
		return
	}
	to := c.To.Hex()
	rec := Record(ctx.KV, c.To)
	switch {
	case rec == nil:
		refuse(to, "no contract "+to+" is deployed")
		return
	case rec.Status == api.ContractFailed:
		refuse(to, fmt.Sprintf("contract %s failed to start: it takes no call", to))
		return
	case c.Gas > ctx.Params.MaxCommandGas:
		refuse(to, fmt.Sprintf("gas %d exceeds the chain's max_command_gas %d", c.Gas, ctx.Params.MaxCommandGas))
		return
	}
	ctx.Event("contract_call", "from", from.Hex(), "to", to, "gas", strconv.FormatUint(c.Gas, 10),
		"sealed", strconv.FormatBool(c.Sealed()), "size", strconv.Itoa(len(c.Payload)))
}

// OnPayout executes a contract's payout request (api.PayoutRequest, the
// contract's own message: the queue keeps one per sequence, so replicas'
// identical requests arrive once). A request that does not decode gets an
// event contract_payout_refused and nothing else. Otherwise the request
// is paid (Amount moves from the contract's escrow account to To, no fee)
// or refused: an id whose result the chain already holds (that result is
// kept: nothing is recorded), a zero amount, an invalid account, a
// contract's escrow account as recipient (its own or another's: a payout
// is no deposit, so a contract could not account for it, and two
// contracts refunding each other's deposits would never stop), an amount
// beyond the escrow's balance, a recipient's balance that would overflow.
// Every request's result goes back to the contract (api.PayoutResult,
// TopicPayoutResult, origin module contracts) with an event
// contract_payout; the first result of an id is kept
// (api.ContractPayoutKey, query api.QueryContractPayout).
func OnPayout(ctx *block.Context, contract crypto.PublicKey, payload []byte) {
	p, err := api.DecodePayoutRequest(payload)
	if err != nil {
		ctx.Event("contract_payout_refused", "contract", contract.Hex(), "reason", "malformed: "+err.Error())
		return
	}
	res := &api.PayoutResult{Contract: contract, ID: p.ID, To: p.To, Amount: p.Amount, Height: ctx.Height}
	key := api.ContractPayoutKey(contract, p.ID)
	escrow := api.EscrowAccount(contract)
	first := ctx.KV.Get(key)
	if first != nil {
		r, err := api.DecodePayoutResult(first)
		if err != nil {
			panic(fmt.Sprintf("corrupt payout result %s/%d: %v", contract.Hex(), p.ID, err))
		}
		res.Reason = fmt.Sprintf("payout id %d was used at height %d", p.ID, r.Height)
	} else if p.Amount == 0 {
		res.Reason = "a payout of zero"
	} else if !p.To.Valid() {
		res.Reason = fmt.Sprintf("recipient %s is not a valid account", p.To.Hex())
	} else if owner, ok := EscrowOwner(ctx.KV, p.To); ok {
		res.Reason = fmt.Sprintf("recipient %s is the escrow account of contract %s: payouts do not pay contracts", p.To.Hex(), owner.Hex())
	} else if bal := accounts.Get(ctx.KV, escrow).Balance; bal < p.Amount {
		res.Reason = fmt.Sprintf("escrow holds %s, the payout asks %s", api.FormatAmountUnits(bal), api.FormatAmountUnits(p.Amount))
	} else if err := accounts.Move(ctx.KV, escrow, p.To, p.Amount); err != nil {
		res.Reason = "the recipient's balance would overflow"
	}
	res.Paid = res.Reason == ""
	if len(res.Reason) > api.MaxPayoutReasonBytes {
		res.Reason = res.Reason[:api.MaxPayoutReasonBytes]
	}
	b := res.Encode()
	if first == nil {
		ctx.KV.Set(key, b)
	}
	if err := mq.Emit(ctx, api.ModuleOrigin(Module), api.TopicPayoutResult, b); err != nil {
		panic(fmt.Sprintf("payout result of %s: %v", contract.Hex(), err)) // a module message of bounded size
	}
	ctx.Event("contract_payout", "contract", contract.Hex(), "id", strconv.FormatUint(p.ID, 10), "to", p.To.Address(),
		"amount", strconv.FormatUint(p.Amount, 10), "paid", strconv.FormatBool(res.Paid), "reason", res.Reason)
}
