package app

import (
	"strings"
	"testing"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// commandTx signs a command to contract declaring gas, paying fee (0: the
// minimum for its size and gas).
func (h *harness) commandTx(key *crypto.KeyPair, nonce uint64, contract crypto.PublicKey, gas, fee uint64) []byte {
	call := &api.ContractCommand{Contract: contract, Nonce: nonce, GasLimit: gas, Sealed: []byte("sealed input")}
	tx := &api.Tx{ChainID: chainID, Signer: key.Public(), Nonce: nonce, Call: call}
	p := api.DefaultParams()
	for tx.Fee = fee; fee == 0; {
		min := p.TxMinFee(call, len(tx.Encode()))
		if min <= tx.Fee {
			break
		}
		tx.Fee = min
	}
	tx.Signature = key.Sign(api.ContextTx, tx.SignBytes())
	return tx.Encode()
}

// deployFake writes contract records straight into the state (the grant
// path has its own tests): id runs on workers.
func (h *harness) deployFake(id crypto.PublicKey, workers ...crypto.PublicKey) {
	rec := &api.ContractRecord{Identity: id, Workers: workers, Status: api.ContractRunning, StatusHeight: h.height}
	h.app.store.Set(api.ContractKey(id), rec.Encode())
	h.block()
}

// Execution is paid for (docs/economy.md): a command pays its size fee
// plus gas_limit · gas_price_per_mgas / 10^6 whether or not it succeeds; a
// gas limit of 0 or over max_command_gas, or one that would take a worker
// over max_worker_gas_per_block in the block, is refused with a clear
// error and changes nothing (no fee, no nonce, no message); the worker's
// budget is free again in the next block.
func TestCommandGasFeesAndBudget(t *testing.T) {
	h := newHarness(t, genesis())
	p := api.DefaultParams()
	w1, w2 := crypto.MustKeyPairFromURI("//W1").Public(), crypto.MustKeyPairFromURI("//W2").Public()
	c1, c2 := crypto.MustKeyPairFromURI("//C1").Public(), crypto.MustKeyPairFromURI("//C2").Public()
	h.deployFake(c1, w1, w2)
	h.deployFake(c2, w2) // shares w2 with c1

	// Refused at the door: nothing changes.
	before := h.account(alice.Public())
	for _, tc := range []struct {
		name string
		tx   []byte
		code api.Code
		log  string
	}{
		{"no gas limit", h.commandTx(alice, 0, c1, 0, 0), api.CodeInvalidCall, "declares no gas limit"},
		{"over max_command_gas", h.commandTx(alice, 0, c1, p.MaxCommandGas+1, 0), api.CodeInvalidCall, "exceeds the chain's max_command_gas"},
		{"fee without the gas", h.commandTx(alice, 0, c1, p.MaxCommandGas, p.MinFee(300)), api.CodeFeeTooLow, "for the declared gas"},
	} {
		if res := h.check(tc.tx); api.Code(res.Code) != tc.code || !strings.Contains(res.Log, tc.log) {
			t.Errorf("%s: CheckTx %d %q", tc.name, res.Code, res.Log)
		}
		res := h.block(tc.tx)
		if r := res.TxResults[0]; api.Code(r.Code) != tc.code || len(r.Events) != 0 {
			t.Errorf("%s: in a block: %d %q", tc.name, r.Code, r.Log)
		}
		if got := h.account(alice.Public()); got != before {
			t.Fatalf("%s changed alice: %+v -> %+v", tc.name, before, got)
		}
	}

	// A block: max_worker_gas_per_block / max_command_gas commands to c1
	// fill w1 and w2; one more gas unit to c2 (on w2) does not fit.
	n := p.MaxWorkerGasPerBlock / p.MaxCommandGas
	var txs [][]byte
	var paid uint64
	for i := uint64(0); i < n; i++ {
		tx := h.commandTx(alice, i, c1, p.MaxCommandGas, 0)
		d, _ := api.DecodeTx(tx)
		if gasPart := d.Fee - p.MinFee(len(tx)); gasPart != p.MaxCommandGas*p.GasPricePerMGas/1_000_000 {
			t.Fatalf("command fee %d = size fee %d + %d for the gas, want %d", d.Fee, p.MinFee(len(tx)), gasPart, p.MaxCommandGas*p.GasPricePerMGas/1_000_000)
		}
		paid += d.Fee
		txs = append(txs, tx)
	}
	over := h.commandTx(alice, n, c2, 1, 0)
	res := h.block(append(txs, over)...)
	for i, r := range res.TxResults[:n] {
		if r.Code != 0 {
			t.Fatalf("command %d: %s", i, r.Log)
		}
	}
	if r := res.TxResults[n]; api.Code(r.Code) != api.CodeWorkerBlockFull || !strings.Contains(r.Log, "send it again in a later block") || !strings.Contains(r.Log, w2.Short()) {
		t.Fatalf("command over the worker's block budget: %d %q", r.Code, r.Log)
	}
	got := h.account(alice.Public())
	if got.Nonce != n || got.Balance != before.Balance-paid {
		t.Fatalf("alice after the block: %+v, want nonce %d and balance %d (fees of the admitted commands only)", got, n, before.Balance-paid)
	}
	bm, err := h.app.store.Messages(h.height)
	if err != nil {
		t.Fatal(err)
	}
	if msgs := bm.Messages; len(msgs) != int(n) {
		t.Fatalf("%d messages queued, want %d", len(msgs), n)
	} else if m, err := api.DecodeContractCommandMessage(msgs[0].Payload); err != nil || m.GasLimit != p.MaxCommandGas {
		t.Fatalf("queued command: %+v %v", m, err)
	}

	// CheckTx counts the same budget for the next block; the next block
	// starts from zero.
	for i := uint64(0); i < n; i++ {
		if r := h.check(h.commandTx(alice, n+i, c1, p.MaxCommandGas, 0)); r.Code != 0 {
			t.Fatalf("CheckTx %d: %s", i, r.Log)
		}
	}
	if r := h.check(h.commandTx(alice, 2*n, c2, 1, 0)); api.Code(r.Code) != api.CodeWorkerBlockFull {
		t.Fatalf("CheckTx over budget: %d %s", r.Code, r.Log)
	}
	if r := h.block(h.commandTx(alice, n, c2, 1, 0)).TxResults[0]; r.Code != 0 {
		t.Fatalf("the refused command in the next block: %s", r.Log)
	}
}
