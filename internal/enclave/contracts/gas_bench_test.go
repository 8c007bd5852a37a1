package contracts_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"

	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/vm"
	"github.com/phalago/phala/internal/wat"
)

// BenchmarkGasRate calibrates gas to time on this machine (the defaults of
// api.Params' gas_price_per_mgas, max_command_gas and
// max_worker_gas_per_block come from it; docs/benchmarks.md records it).
// Metric: Mgas/s, gas consumed per second of one core.
//
//   - out-of-gas: a Go contract's command that loops forever
//     (testdata/misbehave "loop") until its limit (500 Mgas) runs out:
//     what a command that runs out of gas costs a replica;
//   - out-of-gas-wat: the tightest loop there is (one branch per
//     iteration, in WebAssembly text), the worst case of time per gas;
//   - transfer: the token's transfer, the common command (many per op).
func BenchmarkGasRate(b *testing.B) {
	ctx := context.Background()
	b.Run("out-of-gas", func(b *testing.B) {
		c := newContract(b, misbehave, false)
		const limit = 500_000_000
		c.GasLimit = limit
		var gas uint64
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			res, err := c.Command(ctx, alice.Public(), []byte("loop"), 1, t0)
			if !errors.Is(err, vm.ErrOutOfGas) {
				b.Fatal(err)
			}
			gas += res.GasUsed
		}
		b.ReportMetric(float64(gas)/1e6/b.Elapsed().Seconds(), "Mgas/s")
	})
	b.Run("out-of-gas-wat", func(b *testing.B) {
		ctx := context.Background()
		v, err := vm.New(ctx, vm.Config{})
		if err != nil {
			b.Fatal(err)
		}
		defer v.Close(ctx)
		m, err := v.Compile(ctx, wat.MustCompile(spinCommand))
		if err != nil {
			b.Fatal(err)
		}
		k, _ := keys.ContractKeysFromSeed(sha256.Sum256([]byte("spin")))
		c, _ := contracts.New(ctx, v, k, m)
		const limit = 500_000_000
		c.GasLimit = limit
		var gas uint64
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			res, err := c.Command(ctx, alice.Public(), nil, 1, t0)
			if !errors.Is(err, vm.ErrOutOfGas) {
				b.Fatal(err)
			}
			gas += res.GasUsed
		}
		b.ReportMetric(float64(gas)/1e6/b.Elapsed().Seconds(), "Mgas/s")
	})
	b.Run("transfer", func(b *testing.B) {
		c := newContract(b, filepath.Join("..", "..", "..", "examples", "contracts", "token"), false)
		if _, err := c.Init(ctx, alice.Public(), nil, 1, t0); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Command(ctx, alice.Public(), tokenReq("mint", alice.Public(), 1<<40), 2, t0); err != nil {
			b.Fatal(err)
		}
		var gas uint64
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			res, err := c.Command(ctx, alice.Public(), tokenReq("transfer", bob.Public(), 1), 2, t0)
			if err != nil {
				b.Fatal(err)
			}
			gas += res.GasUsed
		}
		b.ReportMetric(float64(gas)/float64(b.N), "gas/op")
		b.ReportMetric(float64(gas)/1e6/b.Elapsed().Seconds(), "Mgas/s")
	})
}

// spinCommand is a contract whose commands loop forever on one branch.
const spinCommand = `(module
  (memory (export "memory") 1)
  (func (export "phala_alloc") (param i32) (result i32) i32.const 1024)
  (func (export "handle_command") (param i32 i32) (result i32)
    loop $spin
      br $spin
    end
    i32.const 0)
  (func (export "handle_query") (param i32 i32) (result i32) i32.const 0))`
