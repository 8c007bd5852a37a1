// Package contracttest runs a contract's handlers in tests: natively (the
// handlers are called directly, against an in-memory host, in
// microseconds) or in pRuntime's VM (the contract built to WebAssembly,
// metered, with encrypted storage), with the same API, so one test can run
// in both modes.
package contracttest

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"maps"
	"sort"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/contract"
	"github.com/phalago/phala/crypto"
)

// Harness runs one contract.
type Harness interface {
	// Init, Command and Query call the entry points as caller. Height
	// and time advance by one block (one second) per Command.
	Init(caller contract.Address, input []byte) ([]byte, error)
	Command(caller contract.Address, input []byte) ([]byte, error)
	Query(caller contract.Address, input []byte) ([]byte, error)
	// Emitted returns the messages of the last command.
	Emitted() []Message
	// Deposit and PayoutResult deliver the chain's events in a new block
	// (handle_event; a failed deposit is refunded); Calls and Payouts are
	// what the last command or event queued; KnownContracts restricts the
	// receivers calls may go to.
	Deposit(from contract.Address, amount uint64) error
	PayoutResult(p contract.Payout) error
	Calls() []OutCall
	Payouts() []OutPayout
	KnownContracts(ids ...contract.Address)
}

var (
	_ Harness = (*NativeHarness)(nil)
	_ Harness = (*VMHarness)(nil)
)

// Message is an emitted message.
type Message struct {
	Topic   string
	Payload []byte
}

// OutCall is a call to another contract a command queued
// (contract.Context.CallContract).
type OutCall struct {
	To      contract.Address
	Payload []byte
	Gas     uint64
	Sealed  bool
}

// OutPayout is a payout a command queued (contract.Context.Pay).
type OutPayout struct {
	To     contract.Address
	Amount uint64
	ID     uint64
}

// Native runs h directly, as the contract of identity NativeSelf (change
// it with SetSelf).
func Native(h contract.Handlers) *NativeHarness {
	n := &NativeHarness{h: h, storage: map[string][]byte{}, height: 1, time: time.Unix(1_700_000_000, 0).UTC()}
	n.SetSelf(NativeSelf)
	return n
}

// NativeSelf is a native harness's default contract identity.
var NativeSelf = contract.Address(crypto.MustKeyPairFromURI("//contracttest").Public())

// NativeHarness is the in-process harness.
type NativeHarness struct {
	h       contract.Handlers
	storage map[string][]byte
	height  int64
	time    time.Time
	emitted []Message
	backend StorageBackend // nil: storage
	// self and escrow: the contract's identity and escrow account;
	// calls and payouts: what the last call queued; known: the contracts
	// CallContract accepts (nil: any).
	self, escrow contract.Address
	refunds      uint64
	calls        []OutCall
	payouts      []OutPayout
	known        map[contract.Address]bool
}

// SetSelf makes self the contract's identity (its escrow account follows,
// api.EscrowAccount).
func (n *NativeHarness) SetSelf(self contract.Address) {
	n.self, n.escrow = self, contract.Address(api.EscrowAccount(crypto.PublicKey(self)))
}

// KnownContracts restricts the receivers CallContract accepts (others
// get contract.ErrUnknownContract); by default any is.
func (n *NativeHarness) KnownContracts(ids ...contract.Address) {
	n.known = map[contract.Address]bool{}
	for _, id := range ids {
		n.known[id] = true
	}
}

// Calls returns the contract calls the last command or event queued.
func (n *NativeHarness) Calls() []OutCall { return n.calls }

// Payouts returns the payouts the last command or event queued.
func (n *NativeHarness) Payouts() []OutPayout { return n.payouts }

// Deposit delivers a deposit of amount from (a transfer to the escrow
// account) in a new block, as pRuntime does: a failing handler's deposit
// is refunded (a payout of id contract.RefundIDBase + a counter).
func (n *NativeHarness) Deposit(from contract.Address, amount uint64) error {
	n.nextBlock()
	_, err := n.call(func(c *contract.Context, input []byte) ([]byte, error) { return contract.HandleEvent(n.h, c, input) }, from, contract.EncodeDeposit(from, amount), false)
	if err != nil {
		n.refunds++
		n.payouts = []OutPayout{{To: from, Amount: amount, ID: contract.RefundIDBase + n.refunds}}
	}
	return err
}

// PayoutResult delivers the chain's answer to one of the contract's
// payouts, in a new block.
func (n *NativeHarness) PayoutResult(p contract.Payout) error {
	n.nextBlock()
	_, err := n.call(func(c *contract.Context, input []byte) ([]byte, error) { return contract.HandleEvent(n.h, c, input) }, n.self, contract.EncodePayoutResult(p), false)
	return err
}

func (n *NativeHarness) nextBlock() {
	n.height++
	n.time = n.time.Add(time.Second)
	n.emitted, n.calls, n.payouts = nil, nil, nil
}

type nativeHost struct {
	n        *NativeHarness
	writes   map[string][]byte
	caller   contract.Address
	readOnly bool
	ctr      uint64
	out      []Message
	calls    []OutCall
	payouts  []OutPayout
}

func (h *nativeHost) Self() contract.Address   { return h.n.self }
func (h *nativeHost) Escrow() contract.Address { return h.n.escrow }
func (h *nativeHost) CallContract(to contract.Address, payload []byte, gas uint64, sealed bool) error {
	if h.n.known != nil && !h.n.known[to] {
		return contract.ErrUnknownContract
	}
	h.calls = append(h.calls, OutCall{To: to, Payload: append([]byte(nil), payload...), Gas: gas, Sealed: sealed})
	return nil
}
func (h *nativeHost) Pay(to contract.Address, amount, id uint64) error {
	h.payouts = append(h.payouts, OutPayout{To: to, Amount: amount, ID: id})
	return nil
}

func (h *nativeHost) Get(k []byte) ([]byte, bool) {
	if v, ok := h.writes[string(k)]; ok {
		return v, v != nil
	}
	if h.n.backend != nil {
		v, ok, _ := h.n.backend.Get(k)
		return v, ok
	}
	v, ok := h.n.storage[string(k)]
	return v, ok
}
func (h *nativeHost) Set(k, v []byte)          { h.writes[string(k)] = append([]byte{}, v...) }
func (h *nativeHost) Remove(k []byte)          { h.writes[string(k)] = nil }
func (h *nativeHost) Caller() contract.Address { return h.caller }
func (h *nativeHost) Height() int64            { return h.n.height }
func (h *nativeHost) Time() time.Time          { return h.n.time }
func (h *nativeHost) ReadOnly() bool           { return h.readOnly }
func (h *nativeHost) Emit(t string, p []byte) {
	h.out = append(h.out, Message{t, append([]byte(nil), p...)})
}
func (h *nativeHost) Random(dst []byte) {
	for len(dst) > 0 {
		s := sha256.Sum256(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(h.n.height)), h.ctr))
		h.ctr++
		dst = dst[copy(dst, s[:]):]
	}
}

func (n *NativeHarness) call(fn contract.Handler, caller contract.Address, input []byte, readOnly bool) ([]byte, error) {
	host := &nativeHost{n: n, writes: map[string][]byte{}, caller: caller, readOnly: readOnly}
	if fn == nil {
		return nil, errors.New("contract: entry point not implemented")
	}
	out, err := contract.Call(fn, contract.NewContext(host), input)
	if err != nil {
		return out, err
	}
	keys := make([]string, 0, len(host.writes))
	for k := range host.writes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := host.writes[k]
		switch {
		case n.backend != nil && v == nil:
			n.backend.Remove([]byte(k))
		case n.backend != nil:
			n.backend.Set([]byte(k), v)
		case v == nil:
			delete(n.storage, k)
		default:
			n.storage[k] = v
		}
	}
	if !readOnly { // a query queues nothing: what the last command queued stays readable
		n.emitted, n.calls, n.payouts = host.out, host.calls, host.payouts
	}
	return out, nil
}

// Init implements Harness.
func (n *NativeHarness) Init(caller contract.Address, input []byte) ([]byte, error) {
	if n.h.Init == nil {
		return nil, nil
	}
	return n.call(n.h.Init, caller, input, false)
}

// Command implements Harness.
func (n *NativeHarness) Command(caller contract.Address, input []byte) ([]byte, error) {
	n.nextBlock()
	return n.call(n.h.Command, caller, input, false)
}

// Query implements Harness.
func (n *NativeHarness) Query(caller contract.Address, input []byte) ([]byte, error) {
	return n.call(n.h.Query, caller, input, true)
}

// Emitted implements Harness.
func (n *NativeHarness) Emitted() []Message { return n.emitted }

// Storage returns a copy of the plaintext storage.
func (n *NativeHarness) Storage() map[string][]byte { return maps.Clone(n.storage) }

// StorageBackend is a key-value store a native harness can run on (for
// example pRuntime's encrypted storage, to compare like with like).
type StorageBackend interface {
	Get(key []byte) ([]byte, bool, error)
	Set(key, value []byte)
	Remove(key []byte)
}

// NativeOn runs h directly on backend instead of a plain map.
func NativeOn(h contract.Handlers, backend StorageBackend) *NativeHarness {
	n := Native(h)
	n.backend = backend
	return n
}
