package api

import (
	"errors"
	"math"
	"testing"

	"github.com/phalago/phala/crypto"
)

// GasFee is ⌈limit · price / 10^6⌉ without overflow; TxMinFee adds it to a
// command's size fee only.
func TestGasFee(t *testing.T) {
	for _, tc := range []struct {
		name         string
		price, limit uint64
		want         uint64
	}{
		{"free gas", 0, 1 << 40, 0},
		{"exact", 5_000_000, 100_000_000, 500_000_000},
		{"rounded up", 1, 1, 1},
		{"one million gas at one unit", 1, 1_000_000, 1},
		{"just over", 1, 1_000_001, 2},
		{"product over 64 bits", math.MaxUint64 / 1_000, 1_000_000, math.MaxUint64 / 1_000},
		{"result over 64 bits saturates", math.MaxUint64, math.MaxUint64, math.MaxUint64},
	} {
		p := Params{GasPricePerMGas: tc.price}
		if got := p.GasFee(tc.limit); got != tc.want {
			t.Errorf("%s: GasFee(%d) at %d/Mgas = %d, want %d", tc.name, tc.limit, tc.price, got, tc.want)
		}
	}
	p := DefaultParams()
	cmd := &ContractCommand{GasLimit: p.MaxCommandGas}
	if got, want := p.TxMinFee(cmd, 300), p.MinFee(300)+p.MaxCommandGas*p.GasPricePerMGas/1_000_000; got != want {
		t.Fatalf("TxMinFee(command) = %d, want %d", got, want)
	}
	if got := p.TxMinFee(&Transfer{}, 300); got != p.MinFee(300) {
		t.Fatalf("TxMinFee(transfer) = %d, want the size fee %d", got, p.MinFee(300))
	}
	p.GasPricePerMGas = math.MaxUint64
	if got := p.TxMinFee(cmd, 300); got != math.MaxUint64 {
		t.Fatalf("TxMinFee saturates: %d", got)
	}
}

func TestCheckGasLimit(t *testing.T) {
	p := DefaultParams()
	for limit, ok := range map[uint64]bool{0: false, 1: true, p.MaxCommandGas: true, p.MaxCommandGas + 1: false} {
		if err := p.CheckGasLimit(limit); (err == nil) != ok || (err != nil && !errors.Is(err, ErrInvalidCall)) {
			t.Errorf("CheckGasLimit(%d) = %v", limit, err)
		}
	}
	bad := p
	bad.MaxCommandGas = 0
	if bad.Validate() == nil {
		t.Error("max_command_gas 0 validated")
	}
	bad = p
	bad.MaxWorkerGasPerBlock = p.MaxCommandGas - 1
	if bad.Validate() == nil {
		t.Error("a worker's block budget below one command validated")
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}

// The declared gas limit travels in the call and in the queued message.
func TestContractCommandGasRoundTrip(t *testing.T) {
	k := crypto.MustKeyPairFromURI("//Alice")
	tx := NewTx("phala-dev", k, 1, 1, &ContractCommand{Contract: k.Public(), Nonce: 3, GasLimit: 123_456_789, Sealed: []byte{1}})
	got, err := DecodeTx(tx.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if c := got.Call.(*ContractCommand); c.GasLimit != 123_456_789 || c.Nonce != 3 {
		t.Fatalf("decoded %+v", c)
	}
	m, err := DecodeContractCommandMessage((&ContractCommandMessage{Contract: k.Public(), From: k.Public(), Nonce: 3, GasLimit: 42, Sealed: []byte{1}}).Encode())
	if err != nil || m.GasLimit != 42 {
		t.Fatalf("message: %+v %v", m, err)
	}
}
