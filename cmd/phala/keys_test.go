package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	schnorrkel "github.com/ChainSafe/go-schnorrkel"
	subkey "github.com/vedhavyas/go-subkey/v2"
	subsr "github.com/vedhavyas/go-subkey/v2/sr25519"
)

// //Alice under the prefixes of Substrate's registry: the addresses are
// computed by go-subkey (the 42 one is the well-known literal), and every
// one of them is accepted back as the same key.
func TestKeyNetworks(t *testing.T) {
	alice, err := subkey.DeriveKeyPair(subsr.Scheme{}, "//Alice")
	if err != nil {
		t.Fatal(err)
	}
	if alice.SS58Address(42) != "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY" {
		t.Fatalf("go-subkey's //Alice: %s", alice.SS58Address(42))
	}
	pub := "0x" + hex.EncodeToString(alice.Public())
	for _, tc := range []struct {
		flags   []string
		prefix  uint16
		network string
	}{
		{nil, 42, "substrate"},
		{[]string{"--network", "substrate"}, 42, "substrate"},
		{[]string{"--network", "polkadot"}, 0, "polkadot"},
		{[]string{"--network", "kusama"}, 2, "kusama"},
		{[]string{"--network", "phala"}, 30, "phala"},
		{[]string{"--network", "khala"}, 30, "khala"},
		{[]string{"--ss58-prefix", "0"}, 0, "polkadot"},
		{[]string{"--ss58-prefix", "2"}, 2, "kusama"},
		{[]string{"--ss58-prefix", "30"}, 30, "phala"},
		{[]string{"--ss58-prefix", "1284"}, 1284, "1284"},
	} {
		want := alice.SS58Address(tc.prefix)
		var k keyInfo
		okJSON(t, &k, append([]string{"key", "inspect", "//Alice"}, tc.flags...)...)
		if k.SS58Address != want || k.SS58PublicKey != want || k.NetworkID != tc.network || k.PublicKey != pub {
			t.Errorf("key inspect //Alice %v: %+v, want %s on %s", tc.flags, k, want, tc.network)
		}
		if out := ok(t, append([]string{"key", "inspect", "//Alice"}, tc.flags...)...); !strings.Contains(out, "  SS58 Address:      "+want+"\n") || !strings.Contains(out, "  Network ID:        "+tc.network+"\n") {
			t.Errorf("key inspect //Alice %v:\n%s", tc.flags, out)
		}
		// The address under any prefix is the same key to every command.
		var p keyInfo
		okJSON(t, &p, "key", "inspect", "--public", want)
		if p.PublicKey != pub || p.SS58Address != alice.SS58Address(42) {
			t.Errorf("key inspect --public %s: %+v", want, p)
		}
		var g keyInfo
		okJSON(t, &g, append([]string{"key", "generate"}, tc.flags...)...)
		ref, err := subkey.DeriveKeyPair(subsr.Scheme{}, g.SecretPhrase)
		if err != nil || g.SS58Address != ref.SS58Address(tc.prefix) || g.NetworkID != tc.network {
			t.Errorf("key generate %v: %+v, go-subkey %v", tc.flags, g, err)
		}
	}
	fails(t, []string{"unknown SS58 network", `"nope"`, "polkadot", "kusama", "phala", "substrate"}, "key", "inspect", "//Alice", "--network", "nope")
	fails(t, []string{"not both"}, "key", "inspect", "//Alice", "--network", "phala", "--ss58-prefix", "30")
	fails(t, []string{"reserved"}, "key", "inspect", "//Alice", "--ss58-prefix", "46")
	fails(t, []string{"out of range"}, "key", "generate", "--ss58-prefix", "16384")
}

// Signatures are subkey's: sr25519 under the "substrate" context. The CLI's
// verify accepts signatures made by go-subkey and by go-schnorrkel directly,
// go-subkey accepts the CLI's, and anything tampered with is refused.
func TestKeySignVerify(t *testing.T) {
	alice, err := subkey.DeriveKeyPair(subsr.Scheme{}, "//Alice")
	if err != nil {
		t.Fatal(err)
	}
	addr := alice.SS58Address(42)
	msg := "hello, phala"

	// phala sign → phala verify and go-subkey verify.
	sig := strings.TrimSpace(ok(t, "key", "sign", "--suri", "//Alice", msg))
	raw, err := hex.DecodeString(sig)
	if err != nil || len(raw) != 64 {
		t.Fatalf("key sign printed %q", sig)
	}
	if !alice.Verify([]byte(msg), raw) {
		t.Error("go-subkey does not verify phala's signature")
	}
	if out := ok(t, "key", "verify", sig, addr, msg); out != "Signature verifies correctly.\n" {
		t.Errorf("key verify: %q", out)
	}
	// The address under another prefix, the hex key and 0x are the same.
	ok(t, "key", "verify", "0x"+sig, alice.SS58Address(30), msg)
	ok(t, "key", "verify", sig, "0x"+hex.EncodeToString(alice.Public()), msg)

	// go-subkey sign → phala verify.
	ref, err := alice.Sign([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	ok(t, "key", "verify", hex.EncodeToString(ref), addr, msg)

	// go-schnorrkel directly, from a raw seed → phala verify.
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	ms, err := schnorrkel.NewMiniSecretKeyFromRaw(seed)
	if err != nil {
		t.Fatal(err)
	}
	sk := ms.ExpandEd25519()
	pk, _ := sk.Public()
	pkb := pk.Encode()
	s, err := sk.Sign(schnorrkel.NewSigningContext([]byte("substrate"), []byte(msg)))
	if err != nil {
		t.Fatal(err)
	}
	sb := s.Encode()
	ok(t, "key", "verify", hex.EncodeToString(sb[:]), subkey.SS58Encode(pkb[:], 42), msg)

	// --hex signs the decoded bytes; "-" reads the message from stdin.
	hsig := strings.TrimSpace(ok(t, "key", "sign", "--suri", "//Alice", "--hex", "0x"+hex.EncodeToString([]byte(msg))))
	ok(t, "key", "verify", hsig, addr, msg)
	ok(t, "key", "verify", "--hex", hsig, addr, hex.EncodeToString([]byte(msg)))
	if r := run(t, msg, "key", "verify", hsig, addr, "-"); r.code != 0 {
		t.Errorf("key verify with the message on stdin: %s", r)
	}
	if r := run(t, msg, "key", "sign", "--suri", "//Alice", "-"); r.code != 0 || !alice.Verify([]byte(msg), mustHex(t, strings.TrimSpace(r.stdout))) {
		t.Errorf("key sign of stdin: %s", r)
	}
	var js signatureOutput
	okJSON(t, &js, "key", "sign", "--suri", "//Alice", msg, "--network", "phala")
	if js.PublicKey != "0x"+hex.EncodeToString(alice.Public()) || js.SS58Address != alice.SS58Address(30) || !alice.Verify([]byte(msg), mustHex(t, strings.TrimPrefix(js.Signature, "0x"))) {
		t.Errorf("key sign --json: %+v", js)
	}

	// Tampered signature, other message, other key, a context other than
	// "substrate": refused, exit 1.
	bad := append([]byte(nil), raw...)
	bad[5] ^= 1
	fails(t, []string{"signature invalid"}, "key", "verify", hex.EncodeToString(bad), addr, msg)
	fails(t, []string{"signature invalid"}, "key", "verify", sig, addr, msg+"!")
	bob, _ := subkey.DeriveKeyPair(subsr.Scheme{}, "//Bob")
	fails(t, []string{"signature invalid"}, "key", "verify", sig, bob.SS58Address(42), msg)
	other, _ := sk.Sign(schnorrkel.NewSigningContext([]byte("phala"), []byte(msg)))
	ob := other.Encode()
	fails(t, []string{"signature invalid"}, "key", "verify", hex.EncodeToString(ob[:]), subkey.SS58Encode(pkb[:], 42), msg)
	fails(t, []string{"64 bytes"}, "key", "verify", sig[:10], addr, msg)
	fails(t, []string{"SS58"}, "key", "verify", sig, "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ", msg)
	fails(t, []string{"--suri is required"}, "key", "sign", msg)
	fails(t, []string{"--hex", "not hex"}, "key", "sign", "--suri", "//Alice", "--hex", "zz")
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return b
}

func TestKeyVanity(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		prefix  uint16
		flags   []string
	}{
		{"a", 42, nil},
		{"Z", 30, []string{"--network", "phala"}},
	} {
		var k keyInfo
		okJSON(t, &k, append([]string{"key", "vanity", "--pattern", tc.pattern}, tc.flags...)...)
		if !strings.Contains(k.SS58Address, tc.pattern) {
			t.Errorf("vanity %q: %s", tc.pattern, k.SS58Address)
		}
		// The printed seed is the account's secret, per go-subkey.
		ref, err := subkey.DeriveKeyPair(subsr.Scheme{}, k.SecretSeed)
		if err != nil || ref.SS58Address(tc.prefix) != k.SS58Address || k.SecretKeyURI != k.SecretSeed {
			t.Errorf("vanity %q: %+v; go-subkey %v", tc.pattern, k, err)
		}
	}
	fails(t, []string{"after 20 keys", "shorter pattern"}, "key", "vanity", "--pattern", "zzzzzzzzzz", "--attempts", "20")
	fails(t, []string{"after", "shorter pattern"}, "key", "vanity", "--pattern", "zzzzzzzzzz", "--max-time", "50ms")
	fails(t, []string{"never occurs"}, "key", "vanity", "--pattern", "a0")
	fails(t, []string{"--pattern is required"}, "key", "vanity")
}

// Every binary answers --version from internal/version, the same line;
// pruntime's also prints its sim measurement, the SHA-256 of the file.
func TestVersion(t *testing.T) {
	phala := bin(t)
	dir := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "../phala-node", "../pruntime", "../pherry").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(phala, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "phala version ") {
		t.Fatalf("phala --version: %v %q", err, out)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "phala version ")
	for _, b := range []string{"phala-node", "pruntime", "pherry"} {
		path := filepath.Join(dir, b)
		out, err := exec.Command(path, "--version").Output()
		if err != nil {
			t.Fatalf("%s --version: %v", b, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if lines[0] != b+" version "+v {
			t.Errorf("%s --version: %q, phala says %q", b, lines[0], v)
		}
		if b == "pruntime" {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("measurement (sim platform, SHA-256 of this executable): %x", sha256.Sum256(data))
			if len(lines) != 2 || lines[1] != want {
				t.Errorf("pruntime --version: %q, want second line %q", out, want)
			}
		} else if len(lines) != 1 {
			t.Errorf("%s --version: %q", b, out)
		}
	}
}
