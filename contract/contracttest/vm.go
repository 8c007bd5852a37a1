package contracttest

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/phalago/phala/contract"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/contractbuild"
	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/vm"
)

// Build compiles the Go contract in dir to WebAssembly
// (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared) and returns the module.
func Build(t testing.TB, dir string) []byte {
	t.Helper()
	code, err := contractbuild.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// VMHarness runs a contract in pRuntime's VM with encrypted storage.
type VMHarness struct {
	C        *contracts.Contract
	perBlock int
	inBlock  int
	height   int64
	time     time.Time
	emitted  []Message
	// GasUsed is the gas of the last call.
	GasUsed uint64
}

// VMOptions configure NewVM.
type VMOptions struct {
	Interpreter bool
	CacheDir    string
	Unmetered   bool // only to measure the cost of gas metering
	// CommandsPerBlock is how many commands share a block (height and
	// time) before they advance; default 1. pRuntime starts a fresh
	// instance per block, so this is also the instance's reuse.
	CommandsPerBlock int
}

// NewVM compiles code and instantiates it with test keys.
func NewVM(t testing.TB, code []byte, opts VMOptions) *VMHarness {
	t.Helper()
	ctx := context.Background()
	v, err := vm.New(ctx, vm.Config{Interpreter: opts.Interpreter, CacheDir: opts.CacheDir, Unmetered: opts.Unmetered})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(ctx) })
	m, err := v.Compile(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keys.ContractKeysFromSeed(sha256.Sum256([]byte("contracttest")))
	if err != nil {
		t.Fatal(err)
	}
	c, err := contracts.New(ctx, v, k, m)
	if err != nil {
		t.Fatal(err)
	}
	return &VMHarness{C: c, height: 1, time: time.Unix(1_700_000_000, 0).UTC(), perBlock: max(opts.CommandsPerBlock, 1)}
}

func (h *VMHarness) result(res *contracts.Result, err error) ([]byte, error) {
	if res != nil {
		h.GasUsed = res.GasUsed
	}
	if err != nil {
		var out []byte
		if res != nil {
			out = res.Output
		}
		if errors.Is(err, vm.ErrFailed) {
			return out, errors.New(string(out))
		}
		return out, err
	}
	return res.Output, nil
}

// Init implements Harness.
func (h *VMHarness) Init(caller contract.Address, input []byte) ([]byte, error) {
	return h.result(h.C.Init(context.Background(), crypto.PublicKey(caller), input, h.height, h.time))
}

// Command implements Harness.
func (h *VMHarness) Command(caller contract.Address, input []byte) ([]byte, error) {
	if h.inBlock%h.perBlock == 0 {
		h.height++
		h.time = h.time.Add(time.Second)
	}
	h.inBlock++
	res, err := h.C.Command(context.Background(), crypto.PublicKey(caller), input, h.height, h.time)
	h.emitted = nil
	if err == nil {
		for _, m := range res.Messages {
			h.emitted = append(h.emitted, Message{m.Topic, m.Payload})
		}
	}
	return h.result(res, err)
}

// Query implements Harness.
func (h *VMHarness) Query(caller contract.Address, input []byte) ([]byte, error) {
	return h.result(h.C.Query(context.Background(), crypto.PublicKey(caller), input, h.height, h.time))
}

// Emitted implements Harness.
func (h *VMHarness) Emitted() []Message { return h.emitted }
