package engine

// Interoperability, pRuntime's side (docs/interop.md): a contract's calls
// to other contracts and payout requests leave as its signed egress (the
// contracts package forms them: contracts.Peers, the "call" and "pay"
// imports); here the engine tells the contracts which receivers take calls
// and runs, for the contracts this worker runs, the inputs the queue
// carries for them besides commands: calls from other contracts
// (TopicContractCall, origin the sending contract), deposits
// (TopicContractDeposit) and payout results (TopicPayoutResult), in block
// order with the block's other inputs. All three are inputs of their
// contract like commands: noted for recovery, replayed by a recovering
// worker (recovery.go, replay), counted for state cuts.

import (
	"context"
	"fmt"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/contract"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/enclave/vm"
)

// peer is the engine's contracts.Peers: contract to takes calls made at
// height if its deployment reached the queue before that block and it
// had not reported a failed start before that block, and then its
// current ECDH key. Heights, not the live view, decide, so a recovering
// worker replaying the call at height later decides the same. A call
// forwarding more gas than max_command_gas is refused too (the chain
// would ignore it).
func (e *Engine) peer(to crypto.PublicKey, gas uint64, height int64) (crypto.PublicKey, bool) {
	d := e.st.deployed[to]
	if d == nil || gas > e.st.params.MaxCommandGas || d.deployedAt >= height || (d.failed && d.failedAt < height) || d.ecdh == (crypto.PublicKey{}) {
		return crypto.PublicKey{}, false
	}
	return d.ecdh, true
}

// acceptedCall applies the chain's rule for a contract call message
// (docs/interop.md): from a contract, well formed, to a deployed contract
// that did not fail, with gas at most max_command_gas. Any other is
// ignored, here as on chain (event contract_call_refused).
func (e *Engine) acceptedCall(m *api.Message) (*api.ContractCall, bool) {
	if m.Origin.Kind != api.OriginContract {
		return nil, false
	}
	call, err := api.DecodeContractCall(m.Payload)
	if err != nil {
		return nil, false
	}
	d := e.st.deployed[call.To]
	if d == nil || d.failed || call.Gas > e.st.params.MaxCommandGas {
		return nil, false
	}
	return call, true
}

// onContractCall runs a call from one contract to another, if this
// worker runs the receiver.
func (e *Engine) onContractCall(ctx *Context, m *api.Message) error {
	call, ok := e.acceptedCall(m)
	if !ok {
		return nil
	}
	e.st.lastCommand[call.To] = ctx.Height
	e.noteInput(ctx, call.To)
	r, ok := e.running[call.To]
	if !ok {
		return nil
	}
	e.runCall(ctx, r, m.Origin.Key, call)
	return nil
}

// runCall executes call from contract sender on its receiver r at ctx's
// block, live or replayed: a command whose caller is sender, input the
// (opened) payload, gas limit call.Gas. A sealed payload that opens with
// neither the receiver's current ECDH key nor its previous epoch's fails
// like a command that does not open (nothing runs).
func (e *Engine) runCall(ctx *Context, r *running, sender crypto.PublicKey, call *api.ContractCall) {
	input := call.Payload
	if call.Sealed() {
		var ok bool
		if input, ok = openCall(r.c, sender, call); !ok {
			e.executed(r, call.To)
			return
		}
	}
	e.runInput(ctx, r, call.To, sender, input, call.Gas, false)
}

// openCall opens a sealed call's payload with the receiver's current ECDH
// key, or its previous key epoch's while it migrates.
func openCall(c *contracts.Contract, sender crypto.PublicKey, call *api.ContractCall) ([]byte, bool) {
	ad := api.CallAD(sender, call.To, call.Nonce)
	for _, k := range []*crypto.KeyPair{c.Keys().Ecdh, c.PrevEcdh()} {
		if k == nil {
			continue
		}
		ch, err := channel.New(k, call.SenderEcdh, api.ChannelPurposeContractCall)
		if err != nil {
			return nil, false // not a valid key: opens with nothing
		}
		if in, err := ch.Open(call.Payload, ad); err == nil {
			in, err = api.Unpad(in)
			return in, err == nil
		}
	}
	return nil, false
}

// runInput runs one input of contract r (id) at ctx's block: a command
// entry (handle_command) or an event (handle_event), as caller, with
// gasLimit, within the contract's egress and state budgets; its messages
// are emitted if it succeeds. It returns the call's error.
func (e *Engine) runInput(ctx *Context, r *running, id, caller crypto.PublicKey, input []byte, gasLimit uint64, event bool) error {
	e.executed(r, id)
	// The contract ran (its call counter moves, its state may change):
	// its checkpoint part is rewritten.
	r.cmdSinceCut, r.dirty = true, true
	r.c.SetStateBudget(r.stateBudget(ctx.Height))
	run := r.c.CommandWithin
	if event {
		run = r.c.EventWithin
	}
	res, err := run(context.Background(), caller, input, ctx.Height, ctx.Time, e.egressBudget(id, r, ctx.Height), gasLimit)
	if res != nil {
		e.cnt.gas.Add(res.GasUsed)
	}
	if err != nil {
		return err
	}
	r.blockState += res.StateBytes
	e.emitContract(r, res)
	return nil
}

// onDeposit delivers a deposit (a PHA transfer to a contract's escrow
// account) to the contract, if this worker runs it.
func (e *Engine) onDeposit(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin("contracts") {
		return fmt.Errorf("deposit from %s", m.Origin)
	}
	d, err := api.DecodeDeposit(m.Payload)
	if err != nil {
		return err
	}
	e.st.lastCommand[d.Contract] = ctx.Height
	e.noteInput(ctx, d.Contract)
	r, ok := e.running[d.Contract]
	if !ok {
		return nil
	}
	e.runDeposit(ctx, r, m.Seq, d)
	return nil
}

// RefundID is the payout id of the refund of the deposit carried by the
// contracts module's message of sequence seq: contract.RefundIDBase + seq
// (unique: the module's sequences never repeat).
func RefundID(seq uint64) uint64 { return contract.RefundIDBase + seq }

// runDeposit runs deposit d (the contracts module's message seq) on its
// contract r: handle_event with contract.EncodeDeposit, caller the
// depositor, api.DepositGas. If it fails (or the contract has no
// handle_event), the contract pays the amount back to the depositor
// (payout id RefundID(seq)), whatever its egress budget: no deposit is
// kept unaccounted for.
func (e *Engine) runDeposit(ctx *Context, r *running, seq uint64, d *api.Deposit) {
	err := e.runInput(ctx, r, d.Contract, d.From, contract.EncodeDeposit(contract.Address(d.From), d.Amount), api.DepositGas, true)
	if err == nil {
		return
	}
	refund := &api.PayoutRequest{ID: RefundID(seq), To: d.From, Amount: d.Amount}
	e.emitContract(r, &contracts.Result{Messages: []contracts.Message{{Topic: api.TopicPayout, Payload: refund.Encode()}}})
}

// onPayoutResult delivers the chain's answer to a contract's payout
// request to the contract, if this worker runs it. The answers to
// pRuntime's refunds (ids from contract.RefundIDBase) are not the
// contract's: not delivered, not inputs.
func (e *Engine) onPayoutResult(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin("contracts") {
		return fmt.Errorf("payout result from %s", m.Origin)
	}
	p, err := api.DecodePayoutResult(m.Payload)
	if err != nil {
		return err
	}
	if p.ID >= contract.RefundIDBase {
		return nil
	}
	e.st.lastCommand[p.Contract] = ctx.Height
	e.noteInput(ctx, p.Contract)
	r, ok := e.running[p.Contract]
	if !ok {
		return nil
	}
	e.runPayoutResult(ctx, r, p)
	return nil
}

// runPayoutResult runs payout result p on its contract r: handle_event
// with contract.EncodePayoutResult, caller the contract itself,
// api.PayoutResultGas. A contract without handle_event ignores it.
func (e *Engine) runPayoutResult(ctx *Context, r *running, p *api.PayoutResult) {
	in := contract.EncodePayoutResult(contract.Payout{ID: p.ID, To: contract.Address(p.To), Amount: p.Amount, Paid: p.Paid, Reason: p.Reason})
	_ = e.runInput(ctx, r, p.Contract, p.Contract, in, api.PayoutResultGas, true)
}

// The refund id range must be the VM's (the "pay" import refuses it).
var _ = [1]struct{}{}[contract.RefundIDBase-vm.RefundIDBase]
