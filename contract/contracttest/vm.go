package contracttest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/contract"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
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

// VMHarness runs a contract in pRuntime's VM with encrypted storage, as
// the contract of identity NativeSelf (so a test sees the same Self and
// Escrow in both modes).
type VMHarness struct {
	C        *contracts.Contract
	perBlock int
	inBlock  int
	height   int64
	time     time.Time
	emitted  []Message
	// calls and payouts: what the last call queued; known: the contracts
	// calls may go to (nil: any); refunds: deposits refunded so far.
	calls   []OutCall
	payouts []OutPayout
	known   map[contract.Address]bool
	refunds uint64
	// GasUsed is the gas of the last call.
	GasUsed uint64
}

// peerEcdh is the ECDH key the VM harness gives every receiver: calls
// sealed to it are opened again for Calls.
var peerEcdh = crypto.MustKeyPairFromURI("//contracttest/peer")

// VMOptions configure NewVM.
type VMOptions struct {
	Interpreter bool
	CacheDir    string
	Unmetered   bool // only to measure the cost of gas metering
	// CommandsPerBlock is how many commands share a block (height and
	// time) before they advance; default 1. pRuntime starts each block
	// from the instance's post-instantiation state (restored from a
	// snapshot), so this is also how long the instance's state lives.
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
	self := *k
	self.Identity = crypto.MustKeyPairFromURI("//contracttest") // NativeSelf
	c, err := contracts.New(ctx, v, &self, m)
	if err != nil {
		t.Fatal(err)
	}
	h := &VMHarness{C: c, height: 1, time: time.Unix(1_700_000_000, 0).UTC(), perBlock: max(opts.CommandsPerBlock, 1)}
	c.SetPeers(func(to crypto.PublicKey, _ uint64, _ int64) (crypto.PublicKey, bool) {
		if h.known != nil && !h.known[contract.Address(to)] {
			return crypto.PublicKey{}, false
		}
		return peerEcdh.Public(), true
	})
	return h
}

// KnownContracts restricts the receivers CallContract accepts (others
// get contract.ErrUnknownContract); by default any is.
func (h *VMHarness) KnownContracts(ids ...contract.Address) {
	h.known = map[contract.Address]bool{}
	for _, id := range ids {
		h.known[id] = true
	}
}

// Calls returns the contract calls the last command or event queued
// (sealed ones opened again: Payload is the plaintext).
func (h *VMHarness) Calls() []OutCall { return h.calls }

// Payouts returns the payouts the last command or event queued.
func (h *VMHarness) Payouts() []OutPayout { return h.payouts }

// Deposit delivers a deposit of amount from in a new block, as pRuntime
// does (handle_event, api.DepositGas): a failing handler's deposit is
// refunded (a payout of id contract.RefundIDBase + a counter).
func (h *VMHarness) Deposit(from contract.Address, amount uint64) error {
	h.nextBlock()
	res, err := h.C.EventWithin(context.Background(), crypto.PublicKey(from), contract.EncodeDeposit(from, amount), h.height, h.time, contracts.NoBudget, api.DepositGas)
	h.take(res, err)
	if _, err = h.result(res, err); err != nil {
		h.refunds++
		h.payouts = []OutPayout{{To: from, Amount: amount, ID: contract.RefundIDBase + h.refunds}}
	}
	return err
}

// PayoutResult delivers the chain's answer to one of the contract's
// payouts in a new block (handle_event, api.PayoutResultGas).
func (h *VMHarness) PayoutResult(p contract.Payout) error {
	h.nextBlock()
	res, err := h.C.EventWithin(context.Background(), h.C.ID(), contract.EncodePayoutResult(p), h.height, h.time, contracts.NoBudget, api.PayoutResultGas)
	h.take(res, err)
	_, err = h.result(res, err)
	return err
}

func (h *VMHarness) nextBlock() {
	if h.inBlock%h.perBlock == 0 {
		h.height++
		h.time = h.time.Add(time.Second)
	}
	h.inBlock++
}

// take sorts a call's messages into emitted messages, calls and payouts.
func (h *VMHarness) take(res *contracts.Result, err error) {
	h.emitted, h.calls, h.payouts = nil, nil, nil
	if err != nil {
		return
	}
	self := h.C.ID()
	for _, m := range res.Messages {
		switch m.Topic {
		case api.TopicContractCall:
			c, derr := api.DecodeContractCall(m.Payload)
			if derr != nil {
				panic(fmt.Sprintf("contracttest: the VM queued a malformed call: %v", derr))
			}
			out := OutCall{To: contract.Address(c.To), Payload: c.Payload, Gas: c.Gas, Sealed: c.Sealed()}
			if c.Sealed() {
				ch, cerr := channel.New(peerEcdh, c.SenderEcdh, api.ChannelPurposeContractCall)
				if cerr == nil {
					out.Payload, cerr = ch.Open(c.Payload, api.CallAD(self, c.To, c.Nonce))
				}
				if cerr == nil {
					out.Payload, cerr = api.Unpad(out.Payload) // as the receiver does
				}
				if cerr != nil {
					panic(fmt.Sprintf("contracttest: a sealed call does not open: %v", cerr))
				}
			}
			h.calls = append(h.calls, out)
		case api.TopicPayout:
			p, derr := api.DecodePayoutRequest(m.Payload)
			if derr != nil {
				panic(fmt.Sprintf("contracttest: the VM queued a malformed payout: %v", derr))
			}
			h.payouts = append(h.payouts, OutPayout{To: contract.Address(p.To), Amount: p.Amount, ID: p.ID})
		default:
			h.emitted = append(h.emitted, Message{m.Topic, m.Payload})
		}
	}
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
	h.nextBlock()
	res, err := h.C.Command(context.Background(), crypto.PublicKey(caller), input, h.height, h.time)
	h.take(res, err)
	return h.result(res, err)
}

// Query implements Harness.
func (h *VMHarness) Query(caller contract.Address, input []byte) ([]byte, error) {
	return h.result(h.C.Query(context.Background(), crypto.PublicKey(caller), input, h.height, h.time))
}

// Emitted implements Harness.
func (h *VMHarness) Emitted() []Message { return h.emitted }
