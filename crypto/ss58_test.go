package crypto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	subkey "github.com/vedhavyas/go-subkey/v2"
	subsr "github.com/vedhavyas/go-subkey/v2/sr25519"
)

// The seed subkey prints ("Secret seed") agrees with go-subkey's, which
// follows sp_core: kept through hard junctions, none after a soft one.
func TestKeyPairFromURIWithSeedMatchesGoSubkey(t *testing.T) {
	for _, uri := range []string{
		"//Alice", DevPhrase, DevPhrase + "///pw", "//Alice//stash", "//Alice/soft", "//Alice/soft//hard",
		"0x0102030405060708091011121314151617181920212223242526272829303132",
		"0x0102030405060708091011121314151617181920212223242526272829303132//x//1",
	} {
		kp, seed, err := KeyPairFromURIWithSeed(uri)
		if err != nil {
			t.Fatalf("%s: %v", uri, err)
		}
		ref, err := subkey.DeriveKeyPair(subsr.Scheme{}, uri)
		if err != nil {
			t.Fatalf("go-subkey %s: %v", uri, err)
		}
		if !bytes.Equal(kp.Public().Bytes(), ref.Public()) || !bytes.Equal(seed, ref.Seed()) {
			t.Errorf("%s: public %x seed %x, go-subkey %x %x", uri, kp.Public(), seed, ref.Public(), ref.Seed())
		}
		if seed != nil {
			again, err := KeyPairFromSeed(seed)
			if err != nil || again.Public() != kp.Public() {
				t.Errorf("%s: the seed gives another key", uri)
			}
		}
	}
	// //Alice's seed as subkey prints it.
	_, seed, _ := KeyPairFromURIWithSeed("//Alice")
	if got := "0x" + hex.EncodeToString(seed); got != "0xe5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a" {
		t.Errorf("//Alice seed %s", got)
	}
}

func TestNetworks(t *testing.T) {
	alice := MustKeyPairFromURI("//Alice").Public()
	for name, want := range map[string]uint16{"polkadot": 0, "Kusama": 2, "phala": 30, "khala": 30, "substrate": 42} {
		p, err := NetworkPrefix(name)
		if err != nil || p != want {
			t.Errorf("%s: %d %v, want %d", name, p, err, want)
		}
	}
	if _, err := NetworkPrefix("nope"); !errors.Is(err, ErrUnknownNetwork) || !strings.Contains(err.Error(), "polkadot") {
		t.Errorf("unknown network: %v", err)
	}
	if NetworkName(30) != "phala" || NetworkName(42) != "substrate" || NetworkName(1000) != "1000" {
		t.Error("NetworkName")
	}
	// Every prefix, one- and two-byte, parses back to the key.
	for _, p := range []uint16{0, 2, 30, 42, 63, 64, 1284, MaxSS58Prefix} {
		addr := alice.AddressWithPrefix(p)
		if addr != subkey.SS58Encode(alice[:], p) {
			t.Errorf("prefix %d: %s", p, addr)
		}
		got, err := ParsePublicKey(addr)
		if err != nil || got != alice {
			t.Errorf("prefix %d: ParsePublicKey(%s) = %v, %v", p, addr, got, err)
		}
	}
	for _, p := range []uint64{46, 47, MaxSS58Prefix + 1} {
		if CheckSS58Prefix(p) == nil {
			t.Errorf("prefix %d accepted", p)
		}
	}
}

// FuzzParsePublicKey: ParsePublicKey never panics, and what it accepts as
// SS58 re-encodes (under the decoded prefix) to the same address and agrees
// with go-subkey's decoder wherever that one accepts it.
func FuzzParsePublicKey(f *testing.F) {
	alice := MustKeyPairFromURI("//Alice").Public()
	for _, p := range []uint16{0, 2, 30, 42, 64, 1284, MaxSS58Prefix} {
		f.Add(alice.AddressWithPrefix(p))
	}
	f.Add(alice.Hex())
	f.Add("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ")
	f.Add("")
	f.Add("0x")
	f.Add("1111")
	f.Fuzz(func(t *testing.T, s string) {
		pk, err := ParsePublicKey(s)
		if err != nil || strings.HasPrefix(strings.TrimSpace(s), "0x") || strings.HasPrefix(strings.TrimSpace(s), "0X") {
			return
		}
		prefix, payload, err := ss58Decode(strings.TrimSpace(s))
		if err != nil || !bytes.Equal(payload, pk[:]) {
			t.Fatalf("%q: parsed, but ss58Decode gives %v %x", s, err, payload)
		}
		if prefix <= MaxSS58Prefix && pk.AddressWithPrefix(prefix) != strings.TrimSpace(s) {
			t.Fatalf("%q: re-encodes to %s", s, pk.AddressWithPrefix(prefix))
		}
		if p2, b2, err := subkey.SS58Decode(strings.TrimSpace(s)); err == nil && (p2 != prefix || !bytes.Equal(b2, payload)) {
			t.Fatalf("%q: go-subkey decodes %d %x, we %d %x", s, p2, b2, prefix, payload)
		}
	})
}
