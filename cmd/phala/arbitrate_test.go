package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// The help of arbitrate and arbitration explains the mechanism with its
// units: the window and timeout in blocks, the bond in PHA, the slash of
// a liar.
func TestArbitrationHelp(t *testing.T) {
	for _, c := range [][]string{{"contract", "arbitrate"}, {"contract", "arbitration"}} {
		out := ok(t, append(c, "--help")...)
		for _, want := range []string{"arbitration_window blocks (default 200)", "arbitration_bond\n(default 10 PHA)", "arbitration_timeout blocks (default 200",
			"the bond is returned", "loses arbitration_slash_ppm of its stake\n(default 10%)", "removed from the contract"} {
			if !strings.Contains(out, want) {
				t.Errorf("phala %s --help lacks %q:\n%s", strings.Join(c, " "), want, out)
			}
		}
	}
}

// What show and arbitrate --wait print of a dispute and of each verdict
// (the devnet test sees an upheld one only).
func TestArbitrationOutput(t *testing.T) {
	var b bytes.Buffer
	printArbitrationLine(&b, nil)
	if b.Len() != 0 {
		t.Errorf("no dispute printed %q", b.String())
	}
	printArbitrationLine(&b, &api.Arbitration{Height: 40, Opened: 52})
	if !strings.Contains(b.String(), "arbitration: open since height 52 (update 40)") {
		t.Errorf("open dispute line: %q", b.String())
	}
	liar := crypto.MustKeyPairFromURI("//Liar").Public()
	for _, c := range []struct {
		v    api.ArbitrationVerdict
		want []string
	}{
		{api.ArbitrationVerdict{Outcome: api.ArbitrationUpheld, Root: [32]byte{0xaa}}, []string{"verdict at block 9: upheld", "computed the disputed root aa00", "the update stands"}},
		{api.ArbitrationVerdict{Outcome: api.ArbitrationOverturned, Root: [32]byte{0xbb}, Slashed: []crypto.PublicKey{liar}, RollbackHeight: 26, RollbackRoot: [32]byte{0xcc}},
			[]string{"verdict at block 9: overturned", "rolled the contract back to its checkpoint at height 26 (root cc00", "slashed:    " + liar.Hex()}},
		{api.ArbitrationVerdict{Outcome: api.ArbitrationExpired}, []string{"verdict at block 9: expired", "nothing changed"}},
	} {
		b.Reset()
		printVerdict(&b, &c.v, 9)
		for _, w := range c.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("verdict %d lacks %q:\n%s", c.v.Outcome, w, b.String())
			}
		}
		if j := verdictJSON(&c.v, 9); j["outcome"] != outcomeName(c.v.Outcome) || j["block"] != int64(9) {
			t.Errorf("verdict JSON: %v", j)
		}
	}
	j := arbitrationJSON(&api.Arbitration{Height: 40, Bond: 10 * api.Unit, Opened: 52})
	if j["bond"] != "10000000000000" || j["bond_pha"] != "10" || len(j["arbiters"].([]string)) != 0 {
		t.Errorf("arbitration JSON: %v", j)
	}
}
