package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
)

// phala contract show says when a contract is stranded (its key era
// retired): with no worker, that none can be assigned and that commands
// never run; with workers, that no replacement can be provisioned; and,
// for a contract with no worker under a key era not retired, which key
// era's members assign a replacement.
func TestPrintContractStranded(t *testing.T) {
	w := crypto.PublicKey{7}
	for _, c := range []struct {
		name    string
		workers []crypto.PublicKey
		sd      *client.Strandedness
		want    []string
	}{
		{"dead", nil, &client.Strandedness{Stranded: true, Era: 3, RetiredAt: 120}, []string{"STRANDED:", "key era 3 was retired at height 120", "state cannot be recovered", "never run", "none can ever be assigned"}},
		{"stranded with a worker", []crypto.PublicKey{w}, &client.Strandedness{Stranded: true, Era: 3, RetiredAt: 120}, []string{"STRANDED:", "still run the contract", "no replacement"}},
		{"waiting", nil, &client.Strandedness{}, []string{"none right now", "members of its key era 2", "never run if that key era is retired first"}},
		{"running", []crypto.PublicKey{w}, &client.Strandedness{}, []string{"worker:     " + w.Hex()}},
	} {
		var b bytes.Buffer
		printContract(&b, &api.ContractRecord{Workers: c.workers, KeyEra: 2, Status: api.ContractRunning}, c.sd)
		for _, s := range c.want {
			if !strings.Contains(b.String(), s) {
				t.Errorf("%s: %q not in\n%s", c.name, s, b.String())
			}
		}
		if strings.Contains(b.String(), "STRANDED") != c.sd.Stranded {
			t.Errorf("%s: %s", c.name, b.String())
		}
	}
}
