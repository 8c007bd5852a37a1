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
	"sync"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/vm"
)

// Gas limits of one command and of one query (queries are answered by one
// worker for anyone who asks, so they get less).
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
	keys     *keys.ContractKeys
	vm       *vm.VM
	module   *vm.Module
	inst     *vm.Instance // commands and init
	instAt   int64        // the height inst was created at
	qinst    *vm.Instance // queries: never the command instance, so what queries do cannot change what commands see
	store    *Store
	GasLimit uint64
	calls    uint64 // calls executed, for deterministic randomness
	chMu     sync.Mutex
	channels map[crypto.PublicKey]*channel.Channel
}

// New instantiates a contract from its provisioned keys and code.
func New(ctx context.Context, v *vm.VM, k *keys.ContractKeys, m *vm.Module) (*Contract, error) {
	return &Contract{keys: k, vm: v, module: m, store: NewStore(k.Storage), GasLimit: DefaultGasLimit, channels: map[crypto.PublicKey]*channel.Channel{}}, nil
}

// Restore rebuilds a contract from its checkpoint: the encrypted store
// snapshot (checked against root) and the call counter.
func Restore(ctx context.Context, v *vm.VM, k *keys.ContractKeys, m *vm.Module, snapshot []byte, root [32]byte, calls uint64) (*Contract, error) {
	c, err := New(ctx, v, k, m)
	if err != nil {
		return nil, err
	}
	if c.store, err = RestoreStore(k.Storage, snapshot, root); err != nil {
		return nil, err
	}
	c.calls = calls
	return c, nil
}

// Calls is the number of commands (and inits) executed, part of the
// deterministic randomness seed.
func (c *Contract) Calls() uint64 { return c.calls }

// Keys returns the contract's keys (for the enclave's sealed checkpoint).
func (c *Contract) Keys() *keys.ContractKeys { return c.keys }

// ID is the contract's identity public key.
func (c *Contract) ID() crypto.PublicKey { return c.keys.Identity.Public() }

// EcdhPublic is the contract's ECDH public key (clients seal to it).
func (c *Contract) EcdhPublic() crypto.PublicKey { return c.keys.Ecdh.Public() }

// Store returns the encrypted storage.
func (c *Contract) Store() *Store { return c.store }

// StateRoot is the root of the encrypted storage.
func (c *Contract) StateRoot() [32]byte { return c.store.Root() }

// env is the vm.Env of one call.
type env struct {
	*overlay
	caller crypto.PublicKey
	height int64
	time   time.Time
	seed   [32]byte
	ctr    uint64
	out    []Message
}

func (e *env) Caller() [32]byte { return e.caller }
func (e *env) Height() int64    { return e.height }
func (e *env) Time() time.Time  { return e.time }
func (e *env) Emit(t string, p []byte) {
	e.out = append(e.out, Message{Topic: t, Payload: append([]byte(nil), p...)})
}

// Random expands the call's seed (derived from the contract's storage key,
// the height and the call counter) with SHA-256 in counter mode.
func (e *env) Random(dst []byte) {
	for len(dst) > 0 {
		h := sha256.New()
		h.Write(e.seed[:])
		h.Write(binary.BigEndian.AppendUint64(nil, e.ctr))
		e.ctr++
		n := copy(dst, h.Sum(nil))
		dst = dst[n:]
	}
}

func (c *Contract) newEnv(entry vm.Entry, caller crypto.PublicKey, height int64, t time.Time) *env {
	// seed = SHA-256(domain || storage key || height || call counter): a PRF
	// of the secret key, cheaper than HKDF on every call.
	h := sha256.New()
	h.Write([]byte("phala/contract: random v1"))
	h.Write([]byte(entry))
	h.Write(c.keys.Storage[:])
	h.Write(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(height)), c.calls))
	var seed [32]byte
	copy(seed[:], h.Sum(nil))
	return &env{overlay: newOverlay(c.store), caller: caller, height: height, time: t, seed: seed}
}

// instance returns the instance a call runs on. Commands get a fresh
// instance at the start of every block (and after a trap): a Go guest's
// runtime state (heap, map seeds, globals) then depends only on the
// block's commands, the same on every replica whether or not it restarted
// in between. Queries run on their own instance.
func (c *Contract) instance(ctx context.Context, entry vm.Entry, e *env) (*vm.Instance, error) {
	slot := &c.inst
	if entry == vm.EntryQuery {
		slot = &c.qinst
	}
	fresh := *slot != nil && !(*slot).Broken()
	if entry != vm.EntryQuery && c.instAt != e.height {
		fresh = false
	}
	if fresh {
		return *slot, nil
	}
	if *slot != nil {
		(*slot).Close(ctx)
	}
	// The start function gets its own deterministic randomness, so a new
	// instance does not shift the call's random stream.
	start := c.newEnv("instantiate", e.caller, e.height, e.time)
	in, err := c.vm.Instantiate(ctx, c.module, "", start)
	if err != nil {
		return nil, err
	}
	*slot = in
	if entry != vm.EntryQuery {
		c.instAt = e.height
	}
	return in, nil
}

// Result of a command or query.
type Result struct {
	Output   []byte
	GasUsed  uint64
	Messages []Message
}

// Init runs the contract's init entry point (once, at deployment).
func (c *Contract) Init(ctx context.Context, caller crypto.PublicKey, input []byte, height int64, t time.Time) (*Result, error) {
	return c.run(ctx, vm.EntryInit, caller, input, height, t)
}

// Command executes a command in chain order. Any failure (contract error,
// trap, out of gas) reverts the command's writes and messages.
func (c *Contract) Command(ctx context.Context, caller crypto.PublicKey, input []byte, height int64, t time.Time) (*Result, error) {
	return c.run(ctx, vm.EntryCommand, caller, input, height, t)
}

// Query answers a read-only query at the current state.
func (c *Contract) Query(ctx context.Context, caller crypto.PublicKey, input []byte, height int64, t time.Time) (*Result, error) {
	return c.run(ctx, vm.EntryQuery, caller, input, height, t)
}

func (c *Contract) run(ctx context.Context, entry vm.Entry, caller crypto.PublicKey, input []byte, height int64, t time.Time) (*Result, error) {
	e := c.newEnv(entry, caller, height, t)
	if entry != vm.EntryQuery {
		c.calls++
	}
	in, err := c.instance(ctx, entry, e)
	if err != nil {
		return nil, err
	}
	limit := c.GasLimit
	if entry == vm.EntryQuery {
		limit = min(limit, QueryGasLimit)
	}
	res, err := in.Call(ctx, entry, input, e, limit)
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
	if entry != vm.EntryQuery {
		e.commit()
		out.Messages = e.out
	}
	return out, nil
}

// Query errors.
var (
	ErrQueryRefused = errors.New("query refused")
)

// MaxQueryTTL bounds NotAfter, so the replay cache stays bounded.
const MaxQueryTTL = 10 * time.Minute

// QueryGuard refuses expired and replayed queries. Time is the worker's
// last block time. It remembers (client, nonce) until the query's
// NotAfter, at most MaxQueryTTL.
type QueryGuard struct {
	mu        sync.Mutex
	seen      map[[48]byte]int64 // (from, nonce) -> not after
	byExpiry  map[int64][][48]byte
	lastPurge int64
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

// Encode returns the guard's unexpired entries at block time now (expired
// ones are dropped first), sorted, for the sealed checkpoint: count, then
// (client, nonce, not_after) per entry.
func (g *QueryGuard) Encode(now time.Time) []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.purge(now.Unix())
	ks := make([][48]byte, 0, len(g.seen))
	for k := range g.seen {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return bytes.Compare(ks[i][:], ks[j][:]) < 0 })
	w := codec.NewWriter(8 + len(ks)*58)
	w.Uvarint(uint64(len(ks)))
	for _, k := range ks {
		w.Fixed(k[:])
		w.Varint(g.seen[k])
	}
	return w.Bytes()
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
		}
	}
}

// CheckQuery records q in g if it is neither expired (at block time now),
// too far ahead, nor replayed; ErrQueryRefused otherwise. It does not
// check the signature (OpenQuery does, then calls it).
func CheckQuery(g *QueryGuard, q *api.ContractQuery, now time.Time) error { return g.check(q, now) }

func (g *QueryGuard) check(q *api.ContractQuery, now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.purge(now.Unix())
	if q.NotAfter < now.Unix() {
		return fmt.Errorf("%w: expired at %s (block time %s)", ErrQueryRefused, time.Unix(q.NotAfter, 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if q.NotAfter > now.Add(MaxQueryTTL).Unix() {
		return fmt.Errorf("%w: not_after is more than %s after the block time", ErrQueryRefused, MaxQueryTTL)
	}
	var k [48]byte
	copy(k[:32], q.From[:])
	copy(k[32:], q.Nonce[:])
	if _, ok := g.seen[k]; ok {
		return fmt.Errorf("%w: replayed (nonce already used)", ErrQueryRefused)
	}
	if len(g.seen) >= MaxQueryGuardEntries {
		return fmt.Errorf("%w: %d unexpired queries are remembered, the most this worker keeps; retry after some expire", ErrQueryRefused, len(g.seen))
	}
	g.seen[k] = q.NotAfter
	g.byExpiry[q.NotAfter] = append(g.byExpiry[q.NotAfter], k)
	return nil
}

// channel returns the query channel with a client, caching the ECDH result
// per client (bounded).
func (c *Contract) channel(peer crypto.PublicKey) (*channel.Channel, error) {
	c.chMu.Lock()
	defer c.chMu.Unlock()
	if ch, ok := c.channels[peer]; ok {
		return ch, nil
	}
	ch, err := channel.New(c.keys.Ecdh, peer, api.ChannelPurposeQuery)
	if err != nil {
		return nil, err
	}
	if len(c.channels) >= maxCachedChannels {
		clear(c.channels)
	}
	c.channels[peer] = ch
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
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrQueryRefused, err)
	}
	if err := g.check(q, now); err != nil {
		return nil, nil, err
	}
	return input, ch, nil
}

// Answer seals and signs the answer to q (res and err from Query). Safe
// for concurrent use.
func (c *Contract) Answer(ch *channel.Channel, q *api.ContractQuery, height int64, res *Result, err error) *api.ContractQueryResponse {
	status := byte(0)
	var out []byte
	if res != nil {
		out = res.Output
	}
	if err != nil {
		status = 1
		if !errors.Is(err, vm.ErrFailed) {
			out = []byte(err.Error())
		}
	}
	resp := &api.ContractQueryResponse{Query: q.Hash(), Height: height}
	resp.Ciphertext = ch.Seal(append([]byte{status}, out...), resp.AD())
	resp.Signature = c.keys.Identity.Sign(api.ContextQueryResponse, resp.SignBytes())
	return resp
}
