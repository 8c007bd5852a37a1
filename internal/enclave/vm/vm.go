// Package vm runs contracts: WebAssembly modules executed by wazero (the
// compiler engine by default, with an on-disk compilation cache), metered
// by instrumented gas (package gas), with the contract ABI's host functions
// (module "phala") and a deterministic WASI: the clock is the block time,
// random bytes come from the call's Env, nothing touches the host.
//
// An instance is kept between calls (instantiating a Go contract costs
// milliseconds). A call that traps or runs out of gas leaves the instance
// unusable: Call reports it and the caller discards the instance and its
// writes; the next call gets a fresh one. Snapshot and Restore reset an
// instance to an earlier state (its memory and mutable globals: the whole
// state of a module gas.ExportState accepts) instead of instantiating.
//
// Host functions copy guest memory before using it.
package vm

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	papi "github.com/phalago/phala/api"
	"github.com/phalago/phala/internal/enclave/vm/gas"
)

// Errors.
var (
	ErrOutOfGas  = errors.New("out of gas")
	ErrTrap      = errors.New("contract trapped")
	ErrReadOnly  = errors.New("write attempted in a read-only call")
	ErrBadModule = errors.New("invalid contract module")
	ErrFailed    = errors.New("contract returned an error")
	// ErrEmitLimit: the call emitted more messages or bytes than one call
	// may (MaxEmitsPerCall, MaxEmitBytesPerCall) or than its Env accepts.
	ErrEmitLimit = errors.New("emit limit exceeded")
	// ErrInterrupted: the call's context ended (query deadline or the
	// caller went away) and the instance was closed mid-call.
	ErrInterrupted = errors.New("call interrupted")
)

// Limits.
const (
	DefaultMemoryLimitPages = 1024 // 64 MiB per instance
	MaxOutputBytes          = 1 << 20
	MaxValueBytes           = 1 << 20
	MaxKeyBytes             = 1 << 10
	MaxTopicBytes           = 128
	// MaxEmitsPerCall and MaxEmitBytesPerCall bound what one call may
	// emit (messages; bytes of topics plus payloads). One message always
	// fits in a transaction (api.Params.MaxTxBytes is at least 4 MiB by
	// default; a signed message adds about 150 bytes).
	MaxEmitsPerCall     = 16
	MaxEmitBytesPerCall = 2 << 20
	// MaxCallPayloadBytes bounds the payload of one contract call (the
	// "call" import): a sealed one, padded (api.Pad, up to 64 bytes more)
	// with its nonce and tag, still fits in api.MaxCallPayloadBytes.
	MaxCallPayloadBytes = papi.MaxCallPayloadBytes - 128
	// RefundIDBase: payout ids from here up are pRuntime's (refunds of
	// deposits); the "pay" import refuses them.
	RefundIDBase = 1 << 63
	// callOverhead and payOverhead: what a call's and a payout's message
	// adds to the payload (receiver, gas, keys, nonce; the request), as
	// counted in the emit limits.
	callOverhead = 96
	payOverhead  = 64
	// InitGas is the budget of instantiation (the module's start function;
	// Go's runtime initialization).
	InitGas = 2_000_000_000
)

// Entry is a contract entry point.
type Entry string

// Entry points of the ABI.
const (
	EntryInit    Entry = "init"
	EntryCommand Entry = "handle_command"
	EntryQuery   Entry = "handle_query"
	// EntryEvent (optional export) takes the chain's events for the
	// contract: deposits and payout results (contract/ABI.md).
	EntryEvent Entry = "handle_event"
)

// Env is the world a call sees. Storage writes go through it; the caller
// buffers them and commits only if the call succeeds.
type Env interface {
	Get(key []byte) ([]byte, bool)
	Set(key, value []byte)
	Remove(key []byte)
	Caller() [32]byte
	Height() int64
	Time() time.Time
	// Emit queues a message; an error (e.g. a budget the caller set) fails
	// the call with it.
	Emit(topic string, payload []byte) error
	Random(dst []byte)
	// Self is the contract's identity, Escrow its escrow account.
	Self() [32]byte
	Escrow() [32]byte
	// Call queues a call to contract to (docs/interop.md) with gas
	// forwarded out of the call's own limit (the VM has taken it
	// already): false if to is not a contract that takes calls; an error
	// fails the call with it.
	Call(to [32]byte, payload []byte, gas uint64, sealed bool) (bool, error)
	// Pay queues a payout of amount PHA base units from the escrow
	// account to to, the contract's payout id: false if refused (amount
	// 0, id of pRuntime's range); an error fails the call with it.
	Pay(to [32]byte, amount, id uint64) (bool, error)
}

// Config of a VM.
type Config struct {
	CacheDir         string // compilation cache; empty: none
	Interpreter      bool   // use wazero's interpreter instead of the compiler
	MemoryLimitPages uint32
	Schedule         gas.Schedule
	// Unmetered skips gas instrumentation. Only for measuring the cost of
	// metering: an unmetered contract can loop forever.
	Unmetered bool
}

// VM compiles and runs contracts.
type VM struct {
	rt    wazero.Runtime
	cfg   Config
	cache wazero.CompilationCache
	// qrt runs query instances: the same configuration plus
	// WithCloseOnContextDone, so a query stops when its context ends (a
	// deadline, or the caller going away). Commands do not use it: the
	// option costs a goroutine per call, and a command is bounded by gas.
	qrt wazero.Runtime
}

// New creates a VM with the host module and WASI.
func New(ctx context.Context, cfg Config) (*VM, error) {
	if cfg.MemoryLimitPages == 0 {
		cfg.MemoryLimitPages = DefaultMemoryLimitPages
	}
	if cfg.Schedule == (gas.Schedule{}) {
		cfg.Schedule = gas.DefaultSchedule()
	}
	rc := wazero.NewRuntimeConfigCompiler()
	if cfg.Interpreter {
		rc = wazero.NewRuntimeConfigInterpreter()
	}
	rc = rc.WithMemoryLimitPages(cfg.MemoryLimitPages)
	v := &VM{cfg: cfg}
	if cfg.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("compilation cache: %w", err)
		}
		v.cache = c
		rc = rc.WithCompilationCache(c)
	}
	v.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	v.qrt = wazero.NewRuntimeWithConfig(ctx, rc.WithCloseOnContextDone(true))
	for _, rt := range []wazero.Runtime{v.rt, v.qrt} {
		if err := instantiateWASI(ctx, rt); err != nil {
			return nil, err
		}
		if err := instantiateHost(ctx, rt); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// wasiNotSupported is WASI's errno ENOTSUP.
const wasiNotSupported = 58

// instantiateWASI instantiates WASI (wasi_snapshot_preview1) in rt with the
// functions that would change an instance's file descriptor table (state
// outside its memory and globals, which Snapshot does not capture) failing
// with ENOTSUP: fd_close, fd_renumber, fd_fdstat_set_flags. An instance
// has only stdin, stdout and stderr (empty, discarded), so nothing else
// is lost.
func instantiateWASI(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(wasi_snapshot_preview1.ModuleName)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	notSupported := api.GoModuleFunc(func(_ context.Context, _ api.Module, s []uint64) { s[0] = wasiNotSupported })
	for name, params := range map[string][]api.ValueType{
		"fd_close":            {i32},
		"fd_renumber":         {i32, i32},
		"fd_fdstat_set_flags": {i32, i32},
	} {
		b.NewFunctionBuilder().WithGoModuleFunction(notSupported, params, []api.ValueType{i32}).Export(name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// Close releases the VM.
func (v *VM) Close(ctx context.Context) error {
	err := v.rt.Close(ctx)
	v.qrt.Close(ctx)
	if v.cache != nil {
		v.cache.Close(ctx)
	}
	return err
}

// Module is compiled contract code.
type Module struct {
	compiled wazero.CompiledModule
	Hash     [32]byte // SHA-256 of the uploaded (uninstrumented) code
	metered  []byte
	// restorable: an instance's whole state is its memory and the
	// mutable globals exported as stateGlobals (gas.ExportState), so
	// snapshots can reset it.
	restorable   bool
	stateGlobals []string
	// The query runtime's compilation, made on the first query.
	qonce     sync.Once
	qcompiled wazero.CompiledModule
	qerr      error
}

// queryCompiled compiles m for the query runtime (once).
func (v *VM) queryCompiled(ctx context.Context, m *Module) (wazero.CompiledModule, error) {
	m.qonce.Do(func() {
		m.qcompiled, m.qerr = v.qrt.CompileModule(context.WithoutCancel(ctx), m.metered)
		if m.qerr != nil {
			m.qerr = fmt.Errorf("%w: %v", ErrBadModule, m.qerr)
		}
	})
	return m.qcompiled, m.qerr
}

// Compile instruments and compiles contract code, checking it implements
// the ABI.
func (v *VM) Compile(ctx context.Context, code []byte) (*Module, error) {
	metered := code
	if !v.cfg.Unmetered {
		var err error
		if metered, err = gas.Instrument(code, v.cfg.Schedule); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadModule, err)
		}
	}
	metered, globals, restorable, err := gas.ExportState(metered)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadModule, err)
	}
	cm, err := v.rt.CompileModule(ctx, metered)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadModule, err)
	}
	exports := cm.ExportedFunctions()
	for _, name := range []string{"phala_alloc", string(EntryCommand), string(EntryQuery)} {
		if _, ok := exports[name]; !ok {
			cm.Close(ctx)
			return nil, fmt.Errorf("%w: missing export %q", ErrBadModule, name)
		}
	}
	if _, ok := cm.ExportedMemories()["memory"]; !ok {
		cm.Close(ctx)
		return nil, fmt.Errorf("%w: missing exported memory", ErrBadModule)
	}
	for _, imp := range cm.ImportedFunctions() {
		mod, name, _ := imp.Import()
		if mod != hostModule && mod != wasi_snapshot_preview1.ModuleName {
			cm.Close(ctx)
			return nil, fmt.Errorf("%w: imports %s.%s (only %q and WASI are provided)", ErrBadModule, mod, name, hostModule)
		}
	}
	return &Module{compiled: cm, Hash: sha256.Sum256(code), metered: metered, restorable: restorable, stateGlobals: globals}, nil
}

// Instance is a live contract instance.
type Instance struct {
	vm      *VM
	module  *Module
	mod     api.Module
	globals []api.MutableGlobal // the module's stateGlobals
	call    *callState
	alloc   api.Function
	entries map[Entry]api.Function
	broken  bool
}

// callState is what host functions see during a call.
type callState struct {
	env      Env
	readOnly bool
	output   []byte
	err      error // a host-detected violation
	time     time.Time
	random   func([]byte)
	// gas: the instance's gas counter (gas.Counter; nil: unmetered)
	gas api.MutableGlobal
	// emitted so far in this call
	emits     int
	emitBytes int
}

type ctxKey struct{}

// Instantiate creates an instance of m. seedEnv provides the clock and
// randomness of the module's start function.
func (v *VM) Instantiate(ctx context.Context, m *Module, name string, seedEnv Env) (*Instance, error) {
	return v.instantiate(ctx, v.rt, m, m.compiled, name, seedEnv, true)
}

// PrepareQuery compiles m for query instances now (otherwise the first
// query does). Safe to call concurrently with anything; the error is the
// one later queries get.
func (v *VM) PrepareQuery(ctx context.Context, m *Module) error {
	_, err := v.queryCompiled(ctx, m)
	return err
}

// InstantiateQuery creates an instance of m for queries: a call on it
// stops with ErrInterrupted when its context ends (the instance is then
// broken). Instantiation itself is not interrupted.
func (v *VM) InstantiateQuery(ctx context.Context, m *Module, seedEnv Env) (*Instance, error) {
	cm, err := v.queryCompiled(ctx, m)
	if err != nil {
		return nil, err
	}
	return v.instantiate(context.WithoutCancel(ctx), v.qrt, m, cm, "", seedEnv, true)
}

// instantiate creates an instance of m (compiled for rt); start: run its
// start function with seedEnv's clock and randomness (without it the
// instance is as its data segments and global initializers make it).
func (v *VM) instantiate(ctx context.Context, rt wazero.Runtime, m *Module, compiled wazero.CompiledModule, name string, seedEnv Env, start bool) (*Instance, error) {
	cs := &callState{env: seedEnv, readOnly: true, time: seedEnv.Time(), random: seedEnv.Random}
	var starts []string
	if start {
		starts = []string{"_initialize"}
	}
	cfg := wazero.NewModuleConfig().
		WithName(name).
		WithStartFunctions(starts...).
		WithStdout(io.Discard).WithStderr(io.Discard).
		WithWalltime(func() (int64, int32) {
			t := cs.time
			return t.Unix(), int32(t.Nanosecond())
		}, 1).
		WithNanotime(func() int64 { return cs.time.UnixNano() }, 1).
		WithNanosleep(func(int64) {}).
		WithRandSource(readerFunc(func(b []byte) (int, error) { cs.random(b); return len(b), nil }))
	ctx = context.WithValue(ctx, ctxKey{}, cs)
	mod, err := rt.InstantiateModule(ctx, compiled, cfg)
	if err != nil {
		if strings.Contains(err.Error(), "function[_initialize] failed") {
			// Gas exhaustion traps too: wazero cannot tell them apart here.
			return nil, fmt.Errorf("%w: instantiate: the start function _initialize trapped or used up its %d gas (InitGas): %v", ErrTrap, InitGas, err)
		}
		return nil, fmt.Errorf("%w: instantiate: %v", ErrTrap, err)
	}
	cs.gas = gas.Counter(mod)
	in := &Instance{vm: v, module: m, mod: mod, call: cs, alloc: mod.ExportedFunction("phala_alloc"), entries: map[Entry]api.Function{}}
	for _, name := range m.stateGlobals {
		g, ok := mod.ExportedGlobal(name).(api.MutableGlobal)
		if !ok {
			mod.Close(ctx)
			return nil, fmt.Errorf("%w: state global %q is not exported", ErrBadModule, name)
		}
		in.globals = append(in.globals, g)
	}
	for _, e := range []Entry{EntryInit, EntryCommand, EntryQuery, EntryEvent} {
		if f := mod.ExportedFunction(string(e)); f != nil {
			in.entries[e] = f
		}
	}
	return in, nil
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

// Broken reports whether the instance must be discarded.
func (in *Instance) Broken() bool { return in.broken }

// Close releases the instance.
func (in *Instance) Close(ctx context.Context) error { return in.mod.Close(ctx) }

// Result of a call.
type Result struct {
	Output  []byte
	GasUsed uint64
}

// Call runs an entry point with input and a gas limit. A contract error is
// ErrFailed with the contract's message in Result.Output; a trap,
// ErrOutOfGas or ErrReadOnly break the instance.
func (in *Instance) Call(ctx context.Context, entry Entry, input []byte, env Env, gasLimit uint64) (*Result, error) {
	if in.broken {
		return nil, fmt.Errorf("%w: instance already broken", ErrTrap)
	}
	fn := in.entries[entry]
	if fn == nil {
		if entry == EntryInit {
			return &Result{}, nil
		}
		return nil, fmt.Errorf("%w: no entry point %s", ErrBadModule, entry)
	}
	cs := in.call
	*cs = callState{env: env, readOnly: entry == EntryQuery, time: env.Time(), random: env.Random, gas: cs.gas}
	ctx = context.WithValue(ctx, ctxKey{}, cs)
	gas.SetRemaining(in.mod, gasLimit)
	gasLimit = min(gasLimit, gas.MaxGas)
	used := func() uint64 {
		r, _ := gas.Remaining(in.mod)
		if r == gas.Exhausted || r > gasLimit {
			return gasLimit
		}
		return gasLimit - r
	}
	ptr, err := in.alloc.Call(ctx, uint64(len(input)))
	if err == nil {
		if len(input) > 0 && !in.mod.Memory().Write(uint32(ptr[0]), input) {
			err = errors.New("allocator returned a buffer outside memory")
		}
	}
	var status []uint64
	if err == nil {
		status, err = fn.Call(ctx, ptr[0], uint64(len(input)))
	}
	res := &Result{Output: cs.output, GasUsed: used()}
	if err != nil {
		in.broken = true
		if gas.IsExhausted(in.mod) {
			return res, ErrOutOfGas
		}
		if cs.err != nil {
			return res, cs.err
		}
		if cerr := ctx.Err(); cerr != nil {
			return res, fmt.Errorf("%w: %v", ErrInterrupted, cerr)
		}
		return res, fmt.Errorf("%w: %v", ErrTrap, err)
	}
	if len(status) == 1 && status[0] != 0 {
		// The message is contract plaintext: it stays in Output, which
		// goes only to the caller, sealed; never into an error string.
		return res, ErrFailed
	}
	return res, nil
}

// Snapshot is the whole state of an instance between calls: its linear
// memory and its mutable globals. Restoring it makes an instance
// indistinguishable from the one it was taken of at that moment (same
// results, same gas), which is what lets pRuntime start each block from
// the state right after instantiation without instantiating again.
type Snapshot struct {
	module  *Module
	memory  []byte
	globals []uint64
}

// Snapshot captures in's state. ok is false if in's module keeps state
// outside memory and globals (gas.ExportState: it changes tables or drops
// segments), if in is broken or closed.
func (in *Instance) Snapshot() (s *Snapshot, ok bool) {
	if !in.module.restorable || in.broken || in.mod.IsClosed() {
		return nil, false
	}
	mem := in.mod.Memory()
	b, _ := mem.Read(0, mem.Size())
	s = &Snapshot{module: in.module, memory: append([]byte(nil), b...), globals: make([]uint64, len(in.globals))}
	for i, g := range in.globals {
		s.globals[i] = g.Get()
	}
	return s, true
}

// Restore resets in to the state s: memory and mutable globals as they
// were, the instance usable again even if broken. It costs a copy of
// s's memory. ok is false, and in unchanged, if in cannot be restored in
// place: s is of another module, in's memory grew beyond s's size (linear
// memory cannot shrink) or in was closed (the guest exited); then close
// in and use InstantiateSnapshot.
func (in *Instance) Restore(s *Snapshot) (ok bool) {
	if s.module != in.module || in.mod.IsClosed() {
		return false
	}
	mem := in.mod.Memory()
	if mem.Size() != uint32(len(s.memory)) {
		return false
	}
	if !mem.Write(0, s.memory) {
		return false
	}
	for i, g := range in.globals {
		g.Set(s.globals[i])
	}
	in.broken = false
	return true
}

// InstantiateSnapshot creates an instance of s's module in the state s,
// without running the module's _initialize (the state already holds what
// it did). A WebAssembly start section, if the module has one, does run
// (wazero always runs it), with seedEnv's clock and randomness, before
// its effects on memory and globals are overwritten: pass the env the
// snapshot's instance was made with, never a call's (whose random stream
// it would use up). It costs wazero's instantiation and a copy of s's
// memory; Restore on a kept instance is cheaper.
func (v *VM) InstantiateSnapshot(ctx context.Context, s *Snapshot, name string, seedEnv Env) (*Instance, error) {
	in, err := v.instantiate(ctx, v.rt, s.module, s.module.compiled, name, seedEnv, false)
	if err != nil {
		return nil, err
	}
	mem := in.mod.Memory()
	if size := uint32(len(s.memory)); mem.Size() < size {
		if _, ok := mem.Grow((size - mem.Size()) / 65536); !ok {
			in.Close(ctx)
			return nil, fmt.Errorf("%w: cannot grow a new instance's memory to the snapshot's %d bytes", ErrTrap, size)
		}
	}
	if !in.Restore(s) {
		in.Close(ctx)
		return nil, fmt.Errorf("%w: a new instance does not take the snapshot (memory %d bytes, snapshot %d)", ErrTrap, mem.Size(), len(s.memory))
	}
	return in, nil
}
