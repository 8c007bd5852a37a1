package contracts_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/enclave/vm"
)

// BenchmarkGasRate calibrates gas to time on this machine (the defaults of
// api.Params' gas_price_per_mgas, max_command_gas and
// max_worker_gas_per_block come from it; docs/benchmarks.md records it).
// Metric: Mgas/s, gas consumed per second of one core.
//
//   - out-of-gas: a Go contract's command that loops forever
//     (testdata/misbehave "loop") until its limit (500 Mgas) runs out:
//     what a command that runs out of gas costs a replica;
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
	_ = contracts.DefaultGasLimit
}
