// Package contracts owns contracts inside pRuntime: each contract's keys,
// its encrypted storage, its live VM instance, and the execution of its
// commands (in chain order, writes reverted on any failure) and of its
// off-chain queries (signed, encrypted, answered read-only, signed by the
// contract with the height they reflect).
package contracts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/vm"
)

// Gas limits of one command and of one query (queries are answered by one
// worker for anyone who asks, so they get less). DefaultGasLimit is every
// worker's cap on a command (the same on every replica, so replicas agree
// on where a command runs out of gas); the chain's max_command_gas keeps
// declared limits below it (docs/economy.md).
const (
	DefaultGasLimit = 5_000_000_000
	QueryGasLimit   = 100_000_000
)

// Message is what a contract emitted during a command.
type Message struct {
	Topic   string
	Payload []byte
}

// Contract is one deployed contract on this worker.
type Contract struct {
	// keys: replaced whole by SwitchEpoch (under the engine's lock) while
	// queries read it.
	keys   atomic.Pointer[keys.ContractKeys]
	vm     *vm.VM
	module *vm.Module
	inst   *vm.Instance // commands and init
	instAt int64        // the height inst was created at
	// snap: the state of a command instance right after instantiation
	// (startEnv), restored at the start of each block; taken under
	// snapKey (the write key) and snapKeys; noSnap: the module's state
	// cannot be captured (vm.Instance.Snapshot), so each block
	// instantiates.
	snap     *vm.Snapshot
	snapKey  [32]byte
	snapKeys *keys.ContractKeys
	noSnap   bool
	qmu      sync.Mutex
	qidle    []*vm.Instance // query instances: never the command instance, so what queries do cannot change what commands see
	store    *Store
	GasLimit uint64
	calls    uint64 // calls executed, for deterministic randomness
	// stateBudget: the state change bytes the next call may commit
	// (SetStateBudget; NoBudget: no bound).
	stateBudget int
	chMu        sync.Mutex
	channels    map[channelKey]*channel.Channel // CommKey(ECDH key, peer) per purpose, dropped with the key
	// prevEcdh: the previous key epoch's ECDH key while the contract
	// migrates (SwitchEpoch): inputs sealed to it still open, until
	// EndMigration.
	prevEcdh *crypto.KeyPair
	// escrow: the contract's escrow account (api.EscrowAccount); peers:
	// the contracts its calls may go to (SetPeers; nil: none).
	escrow crypto.PublicKey
	peers  Peers
}

// Peers tells a contract's calls (the "call" import) whether contract to
// takes a call forwarding gas made at height (deployed, not failed, gas
// within the chain's max_command_gas, in the engine's view of the queue:
// the same on every replica) and its current ECDH public key, which a
// sealed call is sealed to.
type Peers func(to crypto.PublicKey, gas uint64, height int64) (ecdh crypto.PublicKey, ok bool)

// SetPeers sets the receivers the contract's calls may go to (nil: none,
// every call is refused).
func (c *Contract) SetPeers(p Peers) { c.peers = p }

// Escrow is the contract's escrow account (api.EscrowAccount).
func (c *Contract) Escrow() crypto.PublicKey { return c.escrow }

// New instantiates a newly deployed contract from its provisioned keys
// (its epoch-0 keys) and code. Its store's first write is the secrets
// entry (Store.WriteSecrets: the location key and the identity seed), so
// it goes in the contract's first state update, before init's writes.
func New(ctx context.Context, v *vm.VM, k *keys.ContractKeys, m *vm.Module) (*Contract, error) {
	id, err := IdentitySeed(k.Seed)
	if err != nil {
		return nil, err
	}
	st := NewStore(k.Storage)
	st.WriteSecrets(id)
	return newContract(v, k, m, st), nil
}

func newContract(v *vm.VM, k *keys.ContractKeys, m *vm.Module, st *Store) *Contract {
	c := &Contract{vm: v, module: m, store: st, GasLimit: DefaultGasLimit, stateBudget: NoBudget, channels: map[channelKey]*channel.Channel{}}
	c.keys.Store(k)
	c.escrow = api.EscrowAccount(k.Identity.Public())
	return c
}

// ErrWrongContract: a store's secrets entry holds another contract's
// identity than the keys it is restored with.
var ErrWrongContract = errors.New("contract state of another contract")

// Restore rebuilds a contract from its checkpoint: the encrypted store
// snapshot (checked against root) under the epoch keys epochs (ascending,
// the last the write epoch: Store.EpochKeys), and the call counter. If
// the store has a secrets entry, its identity must be k's (else
// ErrWrongContract).
func Restore(ctx context.Context, v *vm.VM, k *keys.ContractKeys, m *vm.Module, epochs []EpochKey, snapshot []byte, root [32]byte, calls uint64) (*Contract, error) {
	st, err := RestoreStore(epochs, snapshot, root)
	if err != nil {
		return nil, err
	}
	if st.WriteEpoch() > 0 {
		// k is a later epoch's: the identity comes from the state.
		x, err := st.Secrets()
		if err != nil {
			return nil, err
		}
		if k, err = KeysWithSecrets(k, &x); err != nil {
			return nil, err
		}
	} else if err := checkIdentity(st, k); err != nil {
		return nil, err
	}
	c := newContract(v, k, m, st)
	c.calls = calls
	return c, nil
}

func checkIdentity(st *Store, k *keys.ContractKeys) error {
	x, err := st.Secrets()
	if errors.Is(err, ErrNoSecrets) {
		return nil
	}
	if err != nil {
		return err
	}
	id, err := x.Identity()
	if err != nil {
		return err
	}
	if id.Public() != k.Identity.Public() {
		return fmt.Errorf("%w: the state is %s's, the keys %s's", ErrWrongContract, id.Public().Short(), k.Identity.Public().Short())
	}
	return nil
}

// Adopt replaces the new contract's (empty) store with st and sets its
// call counter: a contract recovered from its on-chain checkpoint
// (st already checked against the checkpoint's root).
func (c *Contract) Adopt(st *Store, calls uint64) {
	c.store, c.calls = st, calls
}

// KeysWithSecrets returns epochKeys (a later epoch's keys, from its seed)
// with the contract's IdentityKey from x (which never rotates): the
// contract's keys for a worker that recovers it after epoch 0's key is
// gone (OpenStore, Store.Secrets).
func KeysWithSecrets(epochKeys *keys.ContractKeys, x *Secrets) (*keys.ContractKeys, error) {
	id, err := x.Identity()
	if err != nil {
		return nil, err
	}
	out := *epochKeys
	out.Identity = id
	return &out, nil
}

// SwitchEpoch moves the contract to key epoch epoch (docs/keys.md, "The
// epoch protocol"): k are that epoch's keys (from its seed); its
// StorageKey becomes the write epoch's (AddKeyEpoch), its ECDH key the
// one inputs are sealed to, the previous ECDH key still opening inputs
// until EndMigration; the IdentityKey does not change. Errors:
// AddKeyEpoch's.
func (c *Contract) SwitchEpoch(epoch uint64, k *keys.ContractKeys) error {
	if err := c.store.AddEpoch(epoch, k.Storage); err != nil {
		return err
	}
	old := c.keys.Load()
	nk := *k
	nk.Identity = old.Identity
	c.chMu.Lock() // the query channels are made under it
	c.prevEcdh = old.Ecdh
	c.keys.Store(&nk)
	clear(c.channels)
	c.chMu.Unlock()
	return nil
}

// SetPrevEcdh restores the previous key epoch's ECDH key of a contract
// restored while migrating.
func (c *Contract) SetPrevEcdh(k *crypto.KeyPair) {
	c.chMu.Lock()
	c.prevEcdh = k
	c.chMu.Unlock()
}

// PrevEcdh returns the previous key epoch's ECDH key while migrating,
// nil otherwise.
func (c *Contract) PrevEcdh() *crypto.KeyPair {
	c.chMu.Lock()
	defer c.chMu.Unlock()
	return c.prevEcdh
}

// EndMigration forgets every key epoch but the write epoch (refused
// while entries remain under one: Store.DropEpoch) and the previous ECDH
// key: inputs sealed to it no longer open.
func (c *Contract) EndMigration() error {
	w := c.store.WriteEpoch()
	for _, ek := range c.store.EpochKeys() {
		if ek.Epoch != w {
			if err := c.store.DropEpoch(ek.Epoch); err != nil {
				return err
			}
		}
	}
	c.chMu.Lock()
	c.prevEcdh = nil
	clear(c.channels)
	c.chMu.Unlock()
	return nil
}

// AddKeyEpoch makes epoch, under storageKey, the write epoch of the
// contract's state (Store.AddEpoch): later writes, and the call
// randomness, use it.
func (c *Contract) AddKeyEpoch(epoch uint64, storageKey [32]byte) error {
	return c.store.AddEpoch(epoch, storageKey)
}

// Reencrypt re-encrypts up to max entries still under an older epoch
// (Store.Reencrypt), returning how many and the bytes they add to the
// next state update.
func (c *Contract) Reencrypt(max int) (n, changeBytes int, err error) {
	before := c.store.ChangedBytes()
	n, err = c.store.Reencrypt(max)
	return n, c.store.ChangedBytes() - before, err
}

// DropKeyEpoch forgets epoch e's StorageKey (Store.DropEpoch; refused
// while entries remain under it).
func (c *Contract) DropKeyEpoch(e uint64) error { return c.store.DropEpoch(e) }

// Calls is the number of commands (and inits) executed, part of the
// deterministic randomness seed.
func (c *Contract) Calls() uint64 { return c.calls }

// Keys returns the contract's keys (for the enclave's sealed checkpoint).
func (c *Contract) Keys() *keys.ContractKeys { return c.keys.Load() }

// ID is the contract's identity public key.
func (c *Contract) ID() crypto.PublicKey { return c.keys.Load().Identity.Public() }

// EcdhPublic is the contract's ECDH public key (clients seal to it).
func (c *Contract) EcdhPublic() crypto.PublicKey { return c.keys.Load().Ecdh.Public() }

// Store returns the encrypted storage.
func (c *Contract) Store() *Store { return c.store }

// StateRoot is the root of the encrypted storage.
func (c *Contract) StateRoot() [32]byte { return c.store.Root() }

// env is the vm.Env of one call.
type env struct {
	*overlay
	keys    *keys.ContractKeys
	escrow  crypto.PublicKey
	peers   Peers
	ncalls  uint64 // calls made so far (their nonces)
	caller  crypto.PublicKey
	height  int64
	time    time.Time
	seed    seed
	ctr     uint64
	out     []Message
	budget  int // bytes (topics plus payloads) the call may emit; negative: no budget
	emitted int
}

func (e *env) Caller() [32]byte { return e.caller }
func (e *env) Height() int64    { return e.height }
func (e *env) Time() time.Time  { return e.time }
func (e *env) Emit(t string, p []byte) error {
	if strings.HasPrefix(t, api.ReservedTopicPrefix) {
		return fmt.Errorf("%w: topic %q: topics starting %q are pRuntime's and the chain's", ErrReservedTopic, t, api.ReservedTopicPrefix)
	}
	return e.queue(t, p)
}

func (e *env) Self() [32]byte   { return e.keys.Identity.Public() }
func (e *env) Escrow() [32]byte { return e.escrow }

// Call queues a ContractCall message (docs/interop.md): refused (false)
// if the receiver takes no calls; sealed to its current ECDH key if
// asked, with the nonce drawn from the call's deterministic randomness.
func (e *env) Call(to [32]byte, payload []byte, gas uint64, sealed bool) (bool, error) {
	if e.peers == nil || gas == 0 {
		return false, nil
	}
	ecdh, ok := e.peers(to, gas, e.height)
	if !ok {
		return false, nil
	}
	self := e.keys.Identity.Public()
	call := &api.ContractCall{To: to, Gas: gas, Nonce: e.callNonce(), Payload: payload}
	if sealed {
		ch, err := channel.New(e.keys.Ecdh, ecdh, api.ChannelPurposeContractCall)
		if err != nil {
			return false, nil // the receiver's key is not a valid point: nothing can reach it
		}
		call.SenderEcdh = e.keys.Ecdh.Public()
		// Padded (api.Pad) like a command: the chain shows a sealed
		// call's length only to within PadBlock bytes. A copy: payload
		// may share the guest's memory.
		call.Payload = ch.Seal(api.Pad(bytes.Clone(payload)), api.CallAD(self, to, call.Nonce))
	}
	return true, e.queue(api.TopicContractCall, call.Encode())
}

// callNonce is the next call's nonce: SHA-256 of the call's seed (a PRF
// of the contract's storage key, the height and the call counter) and the
// number of calls made so far, cut to 16 bytes.
func (e *env) callNonce() [16]byte {
	h := sha256.New()
	h.Write([]byte("phala/contract: call nonce v1"))
	h.Write(e.seed.bytes())
	h.Write(binary.BigEndian.AppendUint64(nil, e.ncalls))
	e.ncalls++
	var n [16]byte
	copy(n[:], h.Sum(nil))
	return n
}

// Pay queues a PayoutRequest message: refused (false) for an amount of
// zero or an id of pRuntime's refunds (vm.RefundIDBase and up).
func (e *env) Pay(to [32]byte, amount, id uint64) (bool, error) {
	if amount == 0 || id >= vm.RefundIDBase {
		return false, nil
	}
	return true, e.queue(api.TopicPayout, (&api.PayoutRequest{ID: id, To: to, Amount: amount}).Encode())
}

// queue adds a message to the call's output within its egress budget.
func (e *env) queue(t string, p []byte) error {
	e.emitted += len(t) + len(p)
	if e.budget >= 0 && e.emitted > e.budget {
		return fmt.Errorf("%w: the call's messages (%d bytes so far) exceed the %d bytes its contract may still emit", ErrEgressBudget, e.emitted, e.budget)
	}
	e.out = append(e.out, Message{Topic: t, Payload: append([]byte(nil), p...)})
	return nil
}

// ErrReservedTopic fails a call that emits on a topic reserved for
// pRuntime and the chain (api.ReservedTopicPrefix): a contract cannot
// forge its start report or a query answer.
var ErrReservedTopic = errors.New("reserved topic")

// ErrStateBudget fails a call whose writes exceed the state change
// budget its caller set (SetStateBudget): its writes are reverted, its
// messages dropped.
var ErrStateBudget = errors.New("state change budget exceeded")

// SetStateBudget bounds the state changes (Result.StateBytes) of the next
// command or init to n bytes (NoBudget: none); the bound holds for that
// one call.
func (c *Contract) SetStateBudget(n int) { c.stateBudget = n }

// ErrEgressBudget fails a call whose messages exceed the budget its caller
// set (pRuntime's per-block and backlog bounds on a contract's egress).
var ErrEgressBudget = errors.New("egress budget exceeded")

// NoBudget lets a call emit up to the VM's per-call limits.
const NoBudget = -1

// Random expands the call's seed (derived from the contract's storage key,
// the height and the call counter) with SHA-256 in counter mode.
func (e *env) Random(dst []byte) {
	for len(dst) > 0 {
		h := sha256.New()
		h.Write(e.seed.bytes())
		h.Write(binary.BigEndian.AppendUint64(nil, e.ctr))
		e.ctr++
		n := copy(dst, h.Sum(nil))
		dst = dst[n:]
	}
}

func (c *Contract) newEnv(entry vm.Entry, caller crypto.PublicKey, height int64, t time.Time) *env {
	e := c.newEnvOn(c.store, c.calls, entry, caller, height, t)
	e.peers = c.peers
	return e
}

func (c *Contract) newEnvOn(store *Store, calls uint64, entry vm.Entry, caller crypto.PublicKey, height int64, t time.Time) *env {
	e := newEnvOn(c.keys.Load(), store, calls, entry, caller, height, t)
	e.escrow = c.escrow
	return e
}

func newEnvOn(k *keys.ContractKeys, store *Store, calls uint64, entry vm.Entry, caller crypto.PublicKey, height int64, t time.Time) *env {
	return &env{overlay: newOverlay(store), keys: k, caller: caller, height: height, time: t,
		seed: seed{entry: entry, key: store.WriteKey(), height: height, calls: calls}, budget: NoBudget}
}

// seed is a call's randomness seed, SHA-256(domain || entry || write
// epoch's storage key || height || call counter): a PRF of the secret
// key, cheaper than HKDF on every call, and computed only if the call
// asks for randomness or makes a contract call.
type seed struct {
	entry  vm.Entry
	key    [32]byte
	height int64
	calls  uint64
	done   bool
	sum    [32]byte
}

func (s *seed) bytes() []byte {
	if !s.done {
		h := sha256.New()
		h.Write([]byte("phala/contract: random v1"))
		h.Write([]byte(s.entry))
		h.Write(s.key[:])
		h.Write(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(s.height)), s.calls))
		h.Sum(s.sum[:0])
		s.done = true
	}
	return s.sum[:]
}

// instance returns the instance a call runs on. Commands get an instance
// in the same state at the start of every block (and after a trap): the
// state right after instantiation with startEnv, which depends only on
// the contract's keys. A Go guest's runtime state (heap, map seeds,
// globals) then depends only on the block's commands, the same on every
// replica whether or not it restarted in between. The state is
// instantiated once and restored from a snapshot after that (a copy of
// the instance's memory instead of Go's runtime start-up); a module whose
// state cannot be captured is instantiated at every block instead.
// Queries run on instances of their own (queryInstance).
func (c *Contract) instance(ctx context.Context, e *env) (*vm.Instance, error) {
	if c.inst != nil && !c.inst.Broken() && c.instAt == e.height {
		return c.inst, nil
	}
	k := c.keys.Load()
	if c.snap != nil && (c.snapKey != c.store.WriteKey() || c.snapKeys != k) {
		c.snap = nil // new keys: the start's randomness changed
	}
	if c.snap != nil {
		if c.inst != nil && c.inst.Restore(c.snap) {
			c.instAt = e.height
			return c.inst, nil
		}
		if c.inst != nil {
			c.inst.Close(ctx)
			c.inst = nil
		}
		// startEnv, not the call's env: a module's start section runs
		// again in the new instance (its effects are then overwritten)
		// and must not use up the call's randomness, which a replica
		// restored in place or restarted does not.
		in, err := c.vm.InstantiateSnapshot(ctx, c.snap, "", c.startEnv(k))
		if err != nil {
			return nil, err
		}
		c.inst, c.instAt = in, e.height
		return in, nil
	}
	if c.inst != nil {
		c.inst.Close(ctx)
		c.inst = nil
	}
	in, err := c.vm.Instantiate(ctx, c.module, "", c.startEnv(k))
	if err != nil {
		return nil, err
	}
	if !c.noSnap {
		snap, ok := in.Snapshot()
		if ok {
			c.snap, c.snapKey, c.snapKeys = snap, c.store.WriteKey(), k
		} else {
			c.noSnap = true
		}
	}
	c.inst = in
	c.instAt = e.height
	return in, nil
}

// startEnv is the world of a command instance's start function (Go's
// runtime initialization): randomness derived from the write epoch's
// storage key only, time 1 s after the Unix epoch (Go's runtime refuses a
// clock at zero), height zero, no caller and empty storage,
// so the state it leaves is the same at every block and on every replica.
func (c *Contract) startEnv(k *keys.ContractKeys) *env {
	e := newEnvOn(k, NewStore(c.store.WriteKey()), 0, "instantiate", crypto.PublicKey{}, 0, time.Unix(1, 0).UTC())
	e.escrow = c.escrow
	return e
}

// maxIdleQueryInstances bounds the query instances kept between queries
// (each holds up to vm.DefaultMemoryLimitPages of memory).
const maxIdleQueryInstances = 4

// queryInstance takes an idle query instance or makes one (on the VM's
// query runtime, so the call stops when ctx ends). Safe for concurrent use.
func (c *Contract) queryInstance(ctx context.Context, e *env) (*vm.Instance, error) {
	c.qmu.Lock()
	if n := len(c.qidle); n > 0 {
		in := c.qidle[n-1]
		c.qidle = c.qidle[:n-1]
		c.qmu.Unlock()
		return in, nil
	}
	c.qmu.Unlock()
	start := c.newEnvOn(e.base, 0, "instantiate", e.caller, e.height, e.time)
	return c.vm.InstantiateQuery(ctx, c.module, start)
}

func (c *Contract) releaseQueryInstance(ctx context.Context, in *vm.Instance) {
	c.qmu.Lock()
	if !in.Broken() && len(c.qidle) < maxIdleQueryInstances {
		c.qidle = append(c.qidle, in)
		in = nil
	}
	c.qmu.Unlock()
	if in != nil {
		in.Close(context.WithoutCancel(ctx))
	}
}

// Result of a command or query.
type Result struct {
	Output   []byte
	GasUsed  uint64
	Messages []Message
	// StateBytes: what the call's committed writes add to the next state
	// update (per written key: its 32-byte location, plus the encrypted
	// value's size unless removed).
	StateBytes int
}

// Init runs the contract's init entry point (once, at deployment).
func (c *Contract) Init(ctx context.Context, caller crypto.PublicKey, input []byte, height int64, t time.Time) (*Result, error) {
	return c.run(ctx, vm.EntryInit, caller, input, height, t, NoBudget)
}

// InitWithin is Init with an egress budget: the call fails with
// ErrEgressBudget (writes reverted, messages dropped) if its messages'
// topics and payloads exceed budget bytes.
func (c *Contract) InitWithin(ctx context.Context, caller crypto.PublicKey, input []byte, height int64, t time.Time, budget int) (*Result, error) {
	return c.run(ctx, vm.EntryInit, caller, input, height, t, budget)
}

// CommandWithin is Command with an egress budget (see InitWithin) and the
// gas limit its sender declared and paid for at the chain: the command
// runs with min(gasLimit, c.GasLimit) gas.
func (c *Contract) CommandWithin(ctx context.Context, caller crypto.PublicKey, input []byte, height int64, t time.Time, budget int, gasLimit uint64) (*Result, error) {
	return c.runGas(ctx, vm.EntryCommand, caller, input, height, t, budget, min(gasLimit, c.GasLimit))
}

// EventWithin runs the contract's handle_event export (docs/interop.md:
// a deposit or a payout result, input contract.EncodeDeposit or
// contract.EncodePayoutResult) like CommandWithin: an egress budget and
// min(gasLimit, c.GasLimit) gas. A contract without the export fails
// (vm.ErrBadModule), its call counter moved as for any call.
func (c *Contract) EventWithin(ctx context.Context, caller crypto.PublicKey, input []byte, height int64, t time.Time, budget int, gasLimit uint64) (*Result, error) {
	return c.runGas(ctx, vm.EntryEvent, caller, input, height, t, budget, min(gasLimit, c.GasLimit))
}

// Command executes a command in chain order. Any failure (contract error,
// trap, out of gas) reverts the command's writes and messages.
func (c *Contract) Command(ctx context.Context, caller crypto.PublicKey, input []byte, height int64, t time.Time) (*Result, error) {
	return c.run(ctx, vm.EntryCommand, caller, input, height, t, NoBudget)
}

// Query answers a read-only query at the current state. It reads the live
// store: the caller serializes it with commands (QueryView does not need to).
func (c *Contract) Query(ctx context.Context, caller crypto.PublicKey, input []byte, height int64, t time.Time) (*Result, error) {
	return c.queryOn(ctx, c.store, c.calls, caller, input, height, t, 0)
}

// ChainQuery answers a query the chain ordered (contract_query) at the
// current state, on a fresh instance started from chain data only, closed
// afterwards: every replica computes the same answer (its size counts
// against the contract's egress budget, which must be a function of the
// chain), whatever off-chain queries its pooled instances served. The
// caller serializes it with commands.
func (c *Contract) ChainQuery(ctx context.Context, caller crypto.PublicKey, input []byte, height int64, t time.Time) (*Result, error) {
	e := c.newEnvOn(c.store, c.calls, vm.EntryQuery, caller, height, t)
	start := c.newEnvOn(c.store, 0, "instantiate", caller, height, t)
	in, err := c.vm.InstantiateQuery(ctx, c.module, start)
	if err != nil {
		return nil, err
	}
	defer in.Close(context.WithoutCancel(ctx))
	res, err := in.Call(ctx, vm.EntryQuery, input, e, min(c.GasLimit, QueryGasLimit))
	if err == nil && e.err != nil {
		err = e.err
	}
	if res == nil {
		res = &vm.Result{}
	}
	return &Result{Output: res.Output, GasUsed: res.GasUsed}, err
}

// View is an immutable view of a contract's committed state, for queries
// that run while commands go on.
type View struct {
	store *Store
	calls uint64
}

// View returns a view of the committed state, O(1) (copy on write: the
// next command copies the store's index instead). Take it under the same
// lock that serializes commands.
func (c *Contract) View() *View { return &View{store: c.store.View(), calls: c.calls} }

// QueryView answers a read-only query on v. It is safe to call
// concurrently with commands and other queries. The contract call stops
// with vm.ErrInterrupted when ctx ends or after timeout (if positive; the
// first query's compilation and a new instance's start are not counted).
func (c *Contract) QueryView(ctx context.Context, v *View, caller crypto.PublicKey, input []byte, height int64, t time.Time, timeout time.Duration) (*Result, error) {
	return c.queryOn(ctx, v.store, v.calls, caller, input, height, t, timeout)
}

func (c *Contract) queryOn(ctx context.Context, store *Store, calls uint64, caller crypto.PublicKey, input []byte, height int64, t time.Time, timeout time.Duration) (*Result, error) {
	e := c.newEnvOn(store, calls, vm.EntryQuery, caller, height, t)
	in, err := c.queryInstance(ctx, e)
	if err != nil {
		return nil, err
	}
	defer c.releaseQueryInstance(ctx, in)
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	res, err := in.Call(ctx, vm.EntryQuery, input, e, min(c.GasLimit, QueryGasLimit))
	if err == nil && e.err != nil {
		err = e.err
	}
	if res == nil {
		res = &vm.Result{}
	}
	return &Result{Output: res.Output, GasUsed: res.GasUsed}, err
}

func (c *Contract) run(ctx context.Context, entry vm.Entry, caller crypto.PublicKey, input []byte, height int64, t time.Time, budget int) (*Result, error) {
	return c.runGas(ctx, entry, caller, input, height, t, budget, c.GasLimit)
}

func (c *Contract) runGas(ctx context.Context, entry vm.Entry, caller crypto.PublicKey, input []byte, height int64, t time.Time, budget int, gasLimit uint64) (*Result, error) {
	e := c.newEnv(entry, caller, height, t)
	e.budget = budget
	stateBudget := c.stateBudget
	c.stateBudget = NoBudget
	c.calls++
	in, err := c.instance(ctx, e)
	if err != nil {
		return nil, err
	}
	res, err := in.Call(ctx, entry, input, e, gasLimit)
	if err == nil && e.err != nil {
		err = e.err
	}
	if res == nil {
		res = &vm.Result{}
	}
	out := &Result{Output: res.Output, GasUsed: res.GasUsed}
	if err != nil {
		return out, err
	}
	out.StateBytes = e.overlay.changeBytes()
	if b := stateBudget; b >= 0 && out.StateBytes > b {
		return out, fmt.Errorf("%w: the call's writes (%d bytes as a state update carries them) exceed the %d bytes its contract may still change in this block", ErrStateBudget, out.StateBytes, b)
	}
	e.commit()
	out.Messages = e.out
	return out, nil
}

// Query errors.
var (
	ErrQueryRefused = errors.New("query refused")
)

// MaxQueryTTL bounds NotAfter (block time), so the replay guard stays
// bounded: it remembers each answered query until its NotAfter, so a
// sender must keep MaxQueryGuardEntries / MaxQueryTTL (833) fresh valid
// queries per second to keep it full. Clients ask for a minute.
const MaxQueryTTL = 2 * time.Minute

// QueryGuard refuses expired and replayed queries. Time is the worker's
// last block time. It remembers (client, nonce) until the query's
// NotAfter, at most MaxQueryTTL.
type QueryGuard struct {
	mu        sync.Mutex
	seen      map[[48]byte]int64 // (from, nonce) -> not after
	byExpiry  map[int64][][48]byte
	lastPurge int64
	// version counts changes (entries recorded or expired), so a
	// checkpoint rewrites the guard only when it changed.
	version uint64
	// horizon (unix seconds): queries valid until then are refused. Set
	// when a worker starts from a checkpoint it did not write at a clean
	// stop: queries answered after that checkpoint were forgotten with the
	// crash, and all of them expire by the horizon.
	horizon int64
}

// SetHorizon makes the guard refuse every query whose NotAfter is at or
// before t (unix seconds): see QueryGuard.horizon.
func (g *QueryGuard) SetHorizon(t int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t > g.horizon {
		g.horizon = t
		g.version++
	}
}

// NewQueryGuard returns an empty guard.
func NewQueryGuard() *QueryGuard {
	return &QueryGuard{seen: map[[48]byte]int64{}, byExpiry: map[int64][][48]byte{}}
}

// Bounds of the guard: entries (each a live query's client, nonce and
// expiry) and their encoding in the sealed checkpoint.
const (
	MaxQueryGuardEntries = 100_000
	MaxQueryGuardBytes   = 16 + MaxQueryGuardEntries*(48+10)
)

// Encode returns the guard at block time now for the sealed checkpoint:
// its horizon (varint unix seconds), then its unexpired entries (expired
// ones are dropped first), sorted: count, then (client, nonce, not_after)
// per entry.
func (g *QueryGuard) Encode(now time.Time) []byte {
	b, _ := g.EncodeVersion(now)
	return b
}

// Version returns the guard's change counter: it moves whenever an entry
// is recorded or expires.
func (g *QueryGuard) Version() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.version
}

// EncodeVersion is Encode together with the version the encoding reflects
// (taken under the same lock, so no change falls between the two).
func (g *QueryGuard) EncodeVersion(now time.Time) ([]byte, uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.purge(now.Unix())
	ks := make([][48]byte, 0, len(g.seen))
	for k := range g.seen {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return bytes.Compare(ks[i][:], ks[j][:]) < 0 })
	w := codec.NewWriter(16 + len(ks)*58)
	w.Varint(g.horizon)
	w.Uvarint(uint64(len(ks)))
	for _, k := range ks {
		w.Fixed(k[:])
		w.Varint(g.seen[k])
	}
	return w.Bytes(), g.version
}

// DecodeQueryGuard strictly decodes Encode's output (from the sealed
// checkpoint; empty means an empty guard).
func DecodeQueryGuard(b []byte) (*QueryGuard, error) {
	g := NewQueryGuard()
	if len(b) == 0 {
		return g, nil
	}
	if len(b) > MaxQueryGuardBytes {
		return nil, fmt.Errorf("query guard of %d bytes", len(b))
	}
	r := codec.NewReader(b)
	g.horizon = r.Varint()
	n := r.Uvarint()
	if n > MaxQueryGuardEntries {
		return nil, fmt.Errorf("query guard of %d entries", n)
	}
	var prev [48]byte
	for i := uint64(0); i < n && r.Err() == nil; i++ {
		var k [48]byte
		r.Fixed(k[:])
		exp := r.Varint()
		if i > 0 && bytes.Compare(prev[:], k[:]) >= 0 {
			return nil, errors.New("query guard entries out of order")
		}
		prev = k
		g.seen[k] = exp
		g.byExpiry[exp] = append(g.byExpiry[exp], k)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("query guard: %w", err)
	}
	return g, nil
}

func (g *QueryGuard) purge(now int64) {
	if now <= g.lastPurge {
		return
	}
	g.lastPurge = now
	for exp, keys := range g.byExpiry {
		if exp < now {
			for _, k := range keys {
				delete(g.seen, k)
			}
			delete(g.byExpiry, exp)
			g.version++
		}
	}
}

// CheckQuery records q in g if it is neither expired (at block time now),
// too far ahead, nor replayed; ErrQueryRefused otherwise. It does not
// check the signature (OpenQuery does, then calls it).
func CheckQuery(g *QueryGuard, q *api.ContractQuery, now time.Time) error { return g.check(q, now) }

func (g *QueryGuard) check(q *api.ContractQuery, now time.Time) error {
	return g.record(q.From, q.Nonce, q.NotAfter, now)
}

// record records (from, nonce) until notAfter: see CheckQuery. Query
// session opens go through it too.
func (g *QueryGuard) record(from crypto.PublicKey, nonce [16]byte, notAfter int64, now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.purge(now.Unix())
	if notAfter < now.Unix() {
		return fmt.Errorf("%w: expired at %s (block time %s)", ErrQueryRefused, time.Unix(notAfter, 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if notAfter > now.Add(MaxQueryTTL).Unix() {
		return fmt.Errorf("%w: not_after is more than %s after the block time", ErrQueryRefused, MaxQueryTTL)
	}
	if notAfter <= g.horizon {
		return fmt.Errorf("%w: this worker restarted from a checkpoint older than its last answers; a query valid until %s may have been answered already: send a new one valid until later, or ask another replica",
			ErrQueryRefused, time.Unix(g.horizon, 0).UTC().Format(time.RFC3339))
	}
	var k [48]byte
	copy(k[:32], from[:])
	copy(k[32:], nonce[:])
	if _, ok := g.seen[k]; ok {
		return fmt.Errorf("%w: replayed (nonce already used)", ErrQueryRefused)
	}
	if len(g.seen) >= MaxQueryGuardEntries {
		return fmt.Errorf("%w: %d unexpired queries are remembered, the most this worker keeps; retry after some expire", ErrQueryRefused, len(g.seen))
	}
	g.seen[k] = notAfter
	g.byExpiry[notAfter] = append(g.byExpiry[notAfter], k)
	g.version++
	return nil
}

// channel returns the query channel with a client, caching the ECDH result
// per client (bounded).
func (c *Contract) channel(peer crypto.PublicKey) (*channel.Channel, error) {
	return c.Channel(peer, api.ChannelPurposeQuery)
}

// channelKey names a cached channel: the peer and the purpose (the
// contract's side is always its current ECDH key).
type channelKey struct {
	peer    crypto.PublicKey
	purpose string
}

// Channel returns CommKey(the contract's current ECDH key, peer) for
// purpose (api.ChannelPurpose*), derived once per peer and purpose: the
// ECDH it takes (a ristretto255 scalar multiplication, ~40 µs) would
// otherwise be paid by every command, receipt and query of a client. The
// cache is dropped whole when the ECDH key changes (SwitchEpoch) or the
// previous one retires (EndMigration), so no channel of a retired key
// outlives it, and when it reaches maxCachedChannels entries. Safe for
// concurrent use.
func (c *Contract) Channel(peer crypto.PublicKey, purpose string) (*channel.Channel, error) {
	c.chMu.Lock()
	defer c.chMu.Unlock()
	k := channelKey{peer, purpose}
	if ch, ok := c.channels[k]; ok {
		return ch, nil
	}
	ch, err := channel.New(c.keys.Load().Ecdh, peer, purpose)
	if err != nil {
		return nil, err
	}
	if len(c.channels) >= maxCachedChannels {
		clear(c.channels)
	}
	c.channels[k] = ch
	return ch, nil
}

const maxCachedChannels = 10_000

// HandleQuery verifies, decrypts and answers an off-chain query at height
// (the last block this worker dispatched, whose time is now).
func (c *Contract) HandleQuery(ctx context.Context, g *QueryGuard, q *api.ContractQuery, height int64, now time.Time) (*api.ContractQueryResponse, error) {
	input, ch, err := c.OpenQuery(g, q, now)
	if err != nil {
		return nil, err
	}
	res, err := c.Query(ctx, q.From, input, height, now)
	return c.Answer(ch, q, height, res, err), nil
}

// OpenQuery checks a query's address, signature, expiry and nonce and
// decrypts its input. It is safe to call concurrently with other calls of
// OpenQuery and Answer (not with Query or Command), so the costly
// cryptography of many queries runs in parallel.
func (c *Contract) OpenQuery(g *QueryGuard, q *api.ContractQuery, now time.Time) ([]byte, *channel.Channel, error) {
	if q.Contract != c.ID() {
		return nil, nil, fmt.Errorf("%w: query for contract %s sent to %s", ErrQueryRefused, q.Contract.Short(), c.ID().Short())
	}
	if !q.From.Verify(api.ContextQuery, q.SignBytes(), q.Signature) {
		return nil, nil, fmt.Errorf("%w: signature does not verify", ErrQueryRefused)
	}
	ch, err := c.channel(q.From)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrQueryRefused, err)
	}
	input, err := ch.Open(q.Ciphertext, q.Header())
	if prev := c.PrevEcdh(); err != nil && prev != nil {
		// Sealed to the previous key epoch's ECDH key during the
		// migration's grace.
		if old, oerr := channel.New(prev, q.From, api.ChannelPurposeQuery); oerr == nil {
			if in, oerr := old.Open(q.Ciphertext, q.Header()); oerr == nil {
				input, ch, err = in, old, nil
			}
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: sealed to neither the contract's current ECDH key nor its previous one (it rotates with the contract's key epoch: re-read the contract's record), or tampered: %v", ErrQueryRefused, err)
	}
	if err := g.check(q, now); err != nil {
		return nil, nil, err
	}
	return input, ch, nil
}

// Answer seals and signs the answer to q (res and err from Query). Safe
// for concurrent use.
func (c *Contract) Answer(ch *channel.Channel, q *api.ContractQuery, height int64, res *Result, err error) *api.ContractQueryResponse {
	resp := &api.ContractQueryResponse{Query: q.Hash(), Height: height}
	resp.Ciphertext = ch.Seal(answerPlaintext(res, err), resp.AD())
	resp.Signature = c.keys.Load().Identity.Sign(api.ContextQueryResponse, resp.SignBytes())
	return resp
}
