package explorer

import (
	"errors"
	"strings"
	"testing"

	"github.com/phalago/phala/crypto"
)

func TestParseQuery(t *testing.T) {
	alice := crypto.MustKeyPairFromURI("//Alice").Public()
	hash := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		q      string
		kind   queryKind
		height int64
		hasKey bool
		bad    string // part of the error; "" for none
	}{
		{q: "12", kind: queryHeight, height: 12},
		{q: "  7 ", kind: queryHeight, height: 7},
		{q: "0", bad: "out of range"},
		{q: "99999999999999999999", bad: "out of range"},
		{q: hash, kind: queryHash},
		{q: "0x" + strings.ToUpper(hash), kind: queryHash},
		{q: alice.Hex(), kind: queryHash, hasKey: true},
		{q: alice.Address(), kind: queryAddress, hasKey: true},
		{q: "", bad: "empty"},
		{q: "0x12", bad: "not a block height"},
		{q: hash + "00", bad: "not a block height"},
		{q: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ", bad: "not a block height"}, // checksum broken
		{q: strings.Repeat("9", 200), bad: "too long"},
		{q: "-3", bad: "not a block height"},
	} {
		p, err := parseQuery(tc.q)
		if tc.bad != "" {
			if err == nil || !errors.Is(err, errBadQuery) || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("parseQuery(%q) = %+v, %v; want an error with %q", tc.q, p, err, tc.bad)
			}
			continue
		}
		if err != nil || p.Kind != tc.kind || p.Height != tc.height || (tc.hasKey && !p.HasKey) {
			t.Errorf("parseQuery(%q) = %+v, %v", tc.q, p, err)
		}
		if tc.hasKey && p.Key != alice {
			t.Errorf("parseQuery(%q) key %s, want %s", tc.q, p.Key.Hex(), alice.Hex())
		}
	}
}

// FuzzParseQuery: any string classifies without panicking; a height is
// positive and prints back to the digits given; a hash is 32 bytes that
// print back to the hex given.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"1", "0x" + strings.Repeat("0", 64), crypto.MustKeyPairFromURI("//Bob").Public().Address(), "", "x", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		p, err := parseQuery(q)
		if err != nil {
			if !errors.Is(err, errBadQuery) {
				t.Fatalf("parseQuery(%q): error %v does not wrap errBadQuery", q, err)
			}
			return
		}
		switch p.Kind {
		case queryHeight:
			if p.Height < 1 {
				t.Fatalf("parseQuery(%q): height %d", q, p.Height)
			}
		case queryHash:
			h, err := parseHash(strings.TrimSpace(q))
			if err != nil || h != p.Hash {
				t.Fatalf("parseQuery(%q): hash %x does not reparse (%v)", q, p.Hash, err)
			}
		case queryAddress:
			if !p.HasKey || p.Key.Address() == "" {
				t.Fatalf("parseQuery(%q): address without a key", q)
			}
		default:
			t.Fatalf("parseQuery(%q): kind %d", q, p.Kind)
		}
	})
}
