// Package contract is the Go SDK for Phala confidential contracts.
//
// A contract is a state machine run only inside pRuntime: commands (from
// the chain, in block order) may change its state; queries (off-chain,
// answered by one worker) may only read it. The author writes plain Go
// handlers and registers them in an init function:
//
//	func init() {
//		contract.Register(contract.Handlers{
//			Command: func(c *contract.Context, input []byte) ([]byte, error) { ... },
//			Query:   func(c *contract.Context, input []byte) ([]byte, error) { ... },
//		})
//	}
//
//	func main() {}
//
// and builds it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o contract.wasm .
//
// The SDK exports the ABI pRuntime calls (init, handle_command,
// handle_query, phala_alloc) and imports its host functions; contracts in
// other languages implement the same ABI (see ABI.md in this directory). The same handlers
// also run natively against an in-memory host (package contracttest), so a
// contract's unit tests need neither a VM nor a network.
//
// Storage is a key-value map private to the contract: pRuntime encrypts
// every key and value before they leave the enclave. Execution is
// deterministic: time is the block's, randomness is derived from the
// contract's key and the block, and every instruction costs gas.
package contract

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Address is a 32-byte public key: an account, a contract or a worker.
type Address [32]byte

// Handler handles a command, query or init input and returns its output.
// An error reverts a command's writes and is returned to the caller.
type Handler func(c *Context, input []byte) ([]byte, error)

// Handlers are a contract's entry points. Any may be nil.
type Handlers struct {
	Init    Handler
	Command Handler
	Query   Handler
	// Deposit handles a PHA transfer from an account to this contract's
	// escrow account (Context.Escrow), in the block that made it; the
	// caller is the depositor. An error (or a nil Deposit) makes pRuntime
	// send the amount back to the depositor (a payout with an id of
	// RefundIDBase and above): no deposit is kept unaccounted for.
	Deposit func(c *Context, from Address, amount uint64) error
	// PayoutResult tells the contract what the chain did with one of its
	// payouts (Context.Pay): paid, or refused and why. The caller is the
	// contract itself.
	PayoutResult func(c *Context, p Payout) error
}

// Payout is the chain's answer to a Context.Pay.
type Payout struct {
	ID     uint64
	To     Address
	Amount uint64 // PHA base units
	Paid   bool
	Reason string // why it was refused ("" when paid)
}

// RefundIDBase: payout ids from here up are pRuntime's refunds of
// deposits the contract did not take; Context.Pay refuses them.
const RefundIDBase = 1 << 63

// ErrUnknownContract is returned by CallContract when the receiver is not
// a deployed contract that runs.
var ErrUnknownContract = errors.New("contract: no such running contract")

var registered Handlers

// Register installs the contract's handlers; call it from an init function.
func Register(h Handlers) { registered = h }

// Registered returns the installed handlers (for test harnesses).
func Registered() Handlers { return registered }

// Host is what a contract's context calls; pRuntime's VM provides it through
// WebAssembly imports, the test harness natively.
type Host interface {
	Get(key []byte) ([]byte, bool)
	Set(key, value []byte)
	Remove(key []byte)
	Caller() Address
	Height() int64
	Time() time.Time
	Emit(topic string, payload []byte)
	Random(dst []byte)
	ReadOnly() bool
	// Self is the contract's identity, Escrow its escrow account.
	Self() Address
	Escrow() Address
	// CallContract queues a call to contract to with gas forwarded
	// from this call's own limit (ErrUnknownContract: no such running
	// contract).
	CallContract(to Address, payload []byte, gas uint64, sealed bool) error
	// Pay queues a payout request from the escrow account.
	Pay(to Address, amount, id uint64) error
}

// ErrReadOnly is returned (as a panic recovered into an error) when a query
// tries to write.
var ErrReadOnly = errors.New("contract: queries cannot write storage")

// Context is the handler's view of the world during one call.
type Context struct {
	h Host
	u uint64Host // h if it is one (asserted once, not per call)
}

// NewContext wraps a host (for harnesses).
func NewContext(h Host) *Context {
	u, _ := h.(uint64Host)
	return &Context{h: h, u: u}
}

// Caller is the account that signed the command or query.
func (c *Context) Caller() Address { return c.h.Caller() }

// Height is the block height the call executes at (for a query: the
// height the answer reflects).
func (c *Context) Height() int64 { return c.h.Height() }

// Time is the block time.
func (c *Context) Time() time.Time { return c.h.Time() }

// Get reads a storage value.
func (c *Context) Get(key []byte) ([]byte, bool) { return c.h.Get(key) }

// Set writes a storage value. In a query it panics with ErrReadOnly, which
// the SDK turns into the call's error.
func (c *Context) Set(key, value []byte) {
	if c.h.ReadOnly() {
		panic(ErrReadOnly)
	}
	c.h.Set(key, value)
}

// Remove deletes a storage value (not in queries).
func (c *Context) Remove(key []byte) {
	if c.h.ReadOnly() {
		panic(ErrReadOnly)
	}
	c.h.Remove(key)
}

// Emit sends a message to the chain's queue from this contract (commands
// only).
func (c *Context) Emit(topic string, payload []byte) {
	if c.h.ReadOnly() {
		panic(ErrReadOnly)
	}
	c.h.Emit(topic, payload)
}

// Self is this contract's identity: its address, the caller its calls to
// other contracts carry.
func (c *Context) Self() Address { return c.h.Self() }

// Escrow is this contract's escrow account on chain (api.EscrowAccount):
// PHA transferred to it arrives as a deposit (Handlers.Deposit), and
// leaves it only by the contract's payouts (Pay).
func (c *Context) Escrow() Address { return c.h.Escrow() }

// CallContract sends payload to the contract to as a command (the
// whitepaper's interoperability, ABI.md "call"): it travels as this
// contract's signed message through the chain's queue, once, and the
// receiver's workers run it in chain order with this contract as its
// caller and gas as its gas limit. The gas is taken out of this call's
// own limit now (a call that has not that much left runs out of gas).
// sealed: the payload is sealed to the receiver's ECDH key, so only its
// workers read it; otherwise it is on chain in the clear. Commands (and
// the Deposit and PayoutResult handlers) only: a query panics with
// ErrReadOnly. Errors: ErrUnknownContract. Nothing is sent if the
// calling command fails.
func (c *Context) CallContract(to Address, payload []byte, gas uint64, sealed bool) error {
	if c.h.ReadOnly() {
		panic(ErrReadOnly)
	}
	return c.h.CallContract(to, payload, gas, sealed)
}

// Pay asks the chain to pay amount PHA base units out of this contract's
// escrow account to the account to (ABI.md "pay"). id is the contract's
// own number for the payout: the chain pays an id at most once, and
// answers each request (Handlers.PayoutResult): paid, or refused (beyond
// the escrow's balance, an id used before, an invalid account). Ids from
// RefundIDBase up are refused here. Commands only (a query panics with
// ErrReadOnly); nothing is sent if the calling command fails.
func (c *Context) Pay(to Address, amount, id uint64) error {
	if c.h.ReadOnly() {
		panic(ErrReadOnly)
	}
	if id >= RefundIDBase {
		return errors.New("contract: payout ids from 1<<63 up are pRuntime's refunds")
	}
	if amount == 0 {
		return errors.New("contract: payout of zero")
	}
	return c.h.Pay(to, amount, id)
}

// Random returns n deterministic random bytes: the same for every worker
// running this contract at this height, unknown outside the enclave.
func (c *Context) Random(n int) []byte {
	b := make([]byte, n)
	c.h.Random(b)
	return b
}

// uint64Host is a Host that reads and writes 8-byte values without
// allocating (the VM's).
type uint64Host interface {
	getUint64(key []byte) (uint64, bool) // false if absent or not 8 bytes
	setUint64(key []byte, v uint64)
}

// Uint64 reads a big-endian uint64 (0 if absent or not 8 bytes long).
func (c *Context) Uint64(key []byte) uint64 {
	if c.u != nil {
		v, _ := c.u.getUint64(key)
		return v
	}
	v, ok := c.h.Get(key)
	if !ok || len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// SetUint64 writes a big-endian uint64 (not in queries, as Set).
func (c *Context) SetUint64(key []byte, v uint64) {
	if c.u != nil {
		if c.h.ReadOnly() {
			panic(ErrReadOnly)
		}
		c.u.setUint64(key, v)
		return
	}
	c.Set(key, binary.BigEndian.AppendUint64(nil, v))
}

// Key joins parts into a storage key ("balance" + address, ...): each
// part prefixed with its length (uvarint). AppendKey appends the same.
func Key(parts ...[]byte) []byte { return AppendKey(nil, parts...) }

// Call runs h with c, turning a panic with ErrReadOnly (or any error value)
// into an error. The ABI layer and harnesses use it.
func Call(h Handler, c *Context, input []byte) (out []byte, err error) {
	if h == nil {
		return nil, errors.New("contract: entry point not implemented")
	}
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
				return
			}
			panic(r)
		}
	}()
	return h(c, input)
}

// Event kinds of the handle_event entry point (ABI.md).
const (
	EventDeposit      = 1 // from [32] ‖ amount u64 big-endian
	EventPayoutResult = 2 // id u64 ‖ to [32] ‖ amount u64 ‖ paid u8 ‖ reason (the rest), integers big-endian
)

// EncodeDeposit is the handle_event input of a deposit (for hosts and
// harnesses).
func EncodeDeposit(from Address, amount uint64) []byte {
	b := append([]byte{EventDeposit}, from[:]...)
	return binary.BigEndian.AppendUint64(b, amount)
}

// EncodePayoutResult is the handle_event input of a payout result.
func EncodePayoutResult(p Payout) []byte {
	b := binary.BigEndian.AppendUint64([]byte{EventPayoutResult}, p.ID)
	b = append(b, p.To[:]...)
	b = binary.BigEndian.AppendUint64(b, p.Amount)
	paid := byte(0)
	if p.Paid {
		paid = 1
	}
	return append(append(b, paid), p.Reason...)
}

// errNoDepositHandler fails a deposit to a contract without a Deposit
// handler (pRuntime then refunds it).
var errNoDepositHandler = errors.New("contract: this contract takes no deposits")

// HandleEvent runs the handler of an event input (EncodeDeposit,
// EncodePayoutResult) with c: the ABI layer and harnesses use it. A
// malformed input is an error.
func HandleEvent(h Handlers, c *Context, input []byte) ([]byte, error) {
	if len(input) == 0 {
		return nil, errors.New("contract: empty event")
	}
	body := input[1:]
	switch input[0] {
	case EventDeposit:
		if len(body) != 40 {
			return nil, errors.New("contract: malformed deposit event")
		}
		if h.Deposit == nil {
			return nil, errNoDepositHandler
		}
		from, amount := Address(body[:32]), binary.BigEndian.Uint64(body[32:])
		return Call(func(c *Context, _ []byte) ([]byte, error) { return nil, h.Deposit(c, from, amount) }, c, nil)
	case EventPayoutResult:
		if len(body) < 49 || body[48] > 1 {
			return nil, errors.New("contract: malformed payout result event")
		}
		p := Payout{ID: binary.BigEndian.Uint64(body), To: Address(body[8:40]), Amount: binary.BigEndian.Uint64(body[40:48]), Paid: body[48] == 1, Reason: string(body[49:])}
		if h.PayoutResult == nil {
			return nil, nil
		}
		return Call(func(c *Context, _ []byte) ([]byte, error) { return nil, h.PayoutResult(c, p) }, c, nil)
	}
	return nil, errors.New("contract: unknown event kind")
}

// Hex is a's text form in contract inputs and outputs: 0x and 64 hex
// digits.
func (a Address) Hex() string { return "0x" + hex.EncodeToString(a[:]) }

// ParseAddress reads an address in its Hex form (0x and exactly 64 hex
// digits).
func ParseAddress(s string) (Address, error) {
	var a Address
	if len(s) != 2+2*len(a) || s[:2] != "0x" {
		return a, fmt.Errorf("address %q must be 0x and 32 bytes of hex", s)
	}
	if _, err := hex.Decode(a[:], []byte(s[2:])); err != nil {
		return a, fmt.Errorf("address %q must be 0x and 32 bytes of hex", s)
	}
	return a, nil
}
