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
	"errors"
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
}

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
}

// ErrReadOnly is returned (as a panic recovered into an error) when a query
// tries to write.
var ErrReadOnly = errors.New("contract: queries cannot write storage")

// Context is the handler's view of the world during one call.
type Context struct{ h Host }

// NewContext wraps a host (for harnesses).
func NewContext(h Host) *Context { return &Context{h: h} }

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

// Random returns n deterministic random bytes: the same for every worker
// running this contract at this height, unknown outside the enclave.
func (c *Context) Random(n int) []byte {
	b := make([]byte, n)
	c.h.Random(b)
	return b
}

// Uint64 reads a big-endian uint64 (0 if absent).
func (c *Context) Uint64(key []byte) uint64 {
	v, ok := c.h.Get(key)
	if !ok || len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// SetUint64 writes a big-endian uint64.
func (c *Context) SetUint64(key []byte, v uint64) { c.Set(key, binary.BigEndian.AppendUint64(nil, v)) }

// Key joins parts into a storage key ("balance" + address, ...).
func Key(parts ...[]byte) []byte {
	var k []byte
	for _, p := range parts {
		k = binary.AppendUvarint(k, uint64(len(p)))
		k = append(k, p...)
	}
	return k
}

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
