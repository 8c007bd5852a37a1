package main

import (
	"testing"

	"github.com/phalago/phala/contract"
	"github.com/phalago/phala/contract/contracttest"
)

func exercise(t *testing.T, h contracttest.Harness) {
	for i, by := range []byte{1, 5, 10} {
		out, err := h.Command(contract.Address{9}, []byte{by})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"1", "6", "16"}[i]; string(out) != want {
			t.Fatalf("command %d: %s, want %s", i, out, want)
		}
	}
	if out, err := h.Query(contract.Address{8}, nil); err != nil || string(out) != "16" {
		t.Fatalf("query: %s %v", out, err)
	}
}

func TestCounter(t *testing.T) { exercise(t, contracttest.Native(contract.Registered())) }

func TestCounterInVM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the contract")
	}
	exercise(t, contracttest.NewVM(t, contracttest.Build(t, "."), contracttest.VMOptions{}))
}
