package loadgen

import (
	"path/filepath"
	"testing"

	"github.com/phalago/phala/client"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
)

// The token's benchmark (phala bench) runs on an in-process devnet,
// small: every command ran (each balance is what the ring of transfers
// implies, with the gas the probe measured plus its margin), and every
// query was answered.
func TestContractBenchRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("whole devnet")
	}
	ctx, d := benchDevnet(t)
	res, err := RunContracts(ctx, ContractConfig{
		RPC: d.RPC(), Trust: client.Options{Genesis: d.Genesis()}, Code: contracttest.Build(t, filepath.Join("..", "..", "examples", "contracts", "token")),
		Commands: 200, Queries: 400, Senders: 4, Concurrency: 8, Batch: 50, Funder: crypto.MustKeyPairFromURI("//Alice"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Commands != 200 || res.Failed != 0 || res.WrongBalances != 0 || res.Queries != 400 ||
		res.TransferGas == 0 || res.TransferGas >= TransferGas || res.CommandsPerSec <= 0 || res.P99 <= 0 {
		t.Fatalf("bench result: %s", res)
	}
	t.Log(res)
}

// Runs that cannot measure are refused before anything is deployed.
func TestContractConfigValidate(t *testing.T) {
	ok := ContractConfig{Commands: 16, Queries: 1, Senders: 8, Concurrency: 1, Batch: 1, Funder: crypto.MustKeyPairFromURI("//Alice")}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*ContractConfig){
		"no senders":       func(c *ContractConfig) { c.Senders = 0 },
		"one sender":       func(c *ContractConfig) { c.Senders = 1 },
		"no commands":      func(c *ContractConfig) { c.Commands = 0 },
		"negative":         func(c *ContractConfig) { c.Commands = -5 },
		"not a multiple":   func(c *ContractConfig) { c.Commands = 10 },
		"no queries":       func(c *ContractConfig) { c.Queries = 0 },
		"no query clients": func(c *ContractConfig) { c.Concurrency = 0 },
		"no batch":         func(c *ContractConfig) { c.Batch = 0 },
		"no funder":        func(c *ContractConfig) { c.Funder = nil },
	} {
		c := ok
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
