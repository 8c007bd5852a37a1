package main

import (
	"testing"

	"github.com/phalago/phala/contract"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/internal/enclave/contracts"
)

// The token's transfer as a command: natively (handlers called directly on
// an in-memory map) and in pRuntime's VM (WebAssembly, gas-metered,
// encrypted storage). The ratio of the two is the target (<= 5x).
func benchTransfer(b *testing.B, h contracttest.Harness) {
	if _, err := h.Init(owner, nil); err != nil {
		b.Fatal(err)
	}
	if _, err := h.Command(owner, req("mint", alice, 1<<60)); err != nil {
		b.Fatal(err)
	}
	in := req("transfer", bob, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := h.Command(alice, in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTransferNative(b *testing.B) {
	benchTransfer(b, contracttest.Native(contract.Registered()))
}

// BenchmarkTransferVM runs 1,000 transfers per block (pRuntime starts each
// block from the instance's post-instantiation state, restored from a
// snapshot; BenchmarkTransferVMPerBlock shows that cost alone).
func BenchmarkTransferVM(b *testing.B) {
	benchTransfer(b, contracttest.NewVM(b, contracttest.Build(b, "."), contracttest.VMOptions{CommandsPerBlock: 1000}))
}

// BenchmarkTransferVMPerBlock is one transfer per block: the instance's
// state restored (a copy of its memory) and the Go runtime's first-call
// work every time.
func BenchmarkTransferVMPerBlock(b *testing.B) {
	benchTransfer(b, contracttest.NewVM(b, contracttest.Build(b, "."), contracttest.VMOptions{}))
}

// BenchmarkTransferVMUnmetered isolates the cost of gas metering.
func BenchmarkTransferVMUnmetered(b *testing.B) {
	benchTransfer(b, contracttest.NewVM(b, contracttest.Build(b, "."), contracttest.VMOptions{Unmetered: true, CommandsPerBlock: 1000}))
}

// BenchmarkTransferNativeEncrypted runs the native handlers on the same
// encrypted storage the VM uses: the like-for-like baseline.
func BenchmarkTransferNativeEncrypted(b *testing.B) {
	benchTransfer(b, contracttest.NativeOn(contract.Registered(), contracts.NewStore([32]byte{7})))
}
