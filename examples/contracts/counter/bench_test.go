package main

import (
	"testing"

	"github.com/phalago/phala/contract"
	"github.com/phalago/phala/contract/contracttest"
)

func benchIncrement(b *testing.B, h contracttest.Harness) {
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := h.Command(contract.Address{1}, []byte{1}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIncrementNative(b *testing.B) {
	benchIncrement(b, contracttest.Native(contract.Registered()))
}

func BenchmarkIncrementVM(b *testing.B) {
	benchIncrement(b, contracttest.NewVM(b, contracttest.Build(b, "."), contracttest.VMOptions{CommandsPerBlock: 1000}))
}
