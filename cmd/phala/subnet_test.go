package main

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/testnet"
)

// `phala subnet create|add|remove|show` against a real chain: the owner
// creates a subnet (the printed id is the one derived on chain), adds and
// removes workers, show reads it back (text and JSON); another account
// cannot change it and a malformed id is refused. `phala contract upload
// --subnet` to a subnet without a registered worker stays pending and says
// why.
func TestSubnetCLI(t *testing.T) {
	bin(t)
	measurement := [32]byte{7}
	n := testnet.New(t, testnet.Options{Genesis: node.DevGenesisState(measurement[:])})
	phala := func(args ...string) []string {
		return append(args, "--node", n.RPC(0), "--genesis", filepath.Join(n.Homes[0], "config", "genesis.json"), "--data-dir", t.TempDir())
	}
	alice := crypto.MustKeyPairFromURI("//Alice").Public()
	w1, _, _ := crypto.GenerateKeyPair()
	w2, _, _ := crypto.GenerateKeyPair()

	var created subnetJSON
	okJSON(t, &created, phala("subnet", "create", "--from", "//Alice", "gpu pool")...)
	want := api.SubnetID(alice, 0)
	if id, err := parseSubnet(created.Subnet); err != nil || id != want || created.Owner != alice.Address() || created.Name != "gpu pool" || len(created.Members) != 0 {
		t.Fatalf("created %+v, want id %x", created, want)
	}
	if out := ok(t, phala("subnet", "create", "--from", "//Alice")...); !strings.Contains(out, "subnet "+hexID(api.SubnetID(alice, 1))+" created") {
		t.Fatalf("second create: %s", out)
	}
	// A bad name is refused before anything is signed, saying why.
	fails(t, []string{"subnet name is 65 bytes, at most 64", "shorten it"}, phala("subnet", "create", "--from", "//Alice", strings.Repeat("x", 65))...)
	fails(t, []string{"byte 0x0a at offset 1"}, phala("subnet", "create", "--from", "//Alice", "a\nb")...)
	ok(t, phala("subnet", "add", "--from", "//Alice", created.Subnet, w1.Public().Hex())...)
	var added subnetJSON
	okJSON(t, &added, phala("subnet", "add", "--from", "//Alice", created.Subnet, w2.Public().Hex())...)
	if len(added.Members) != 2 {
		t.Fatalf("after two adds: %+v", added)
	}
	fails(t, []string{"not the subnet's owner"}, phala("subnet", "remove", "--from", "//Bob", created.Subnet, w1.Public().Hex())...)
	fails(t, []string{"already a member"}, phala("subnet", "add", "--from", "//Alice", created.Subnet, w1.Public().Hex())...)
	fails(t, []string{"64 hex digits"}, phala("subnet", "show", "12ab")...)
	fails(t, []string{"no such subnet"}, phala("subnet", "show", hexID([32]byte{1}))...)
	if out := ok(t, phala("subnet", "remove", "--from", "//Alice", created.Subnet, w1.Public().Hex())...); !strings.Contains(out, "removed from subnet") || !strings.Contains(out, "1 member(s)") {
		t.Fatalf("remove: %s", out)
	}
	out := ok(t, phala("subnet", "show", created.Subnet)...)
	if !strings.Contains(out, "gpu pool") || !strings.Contains(out, w2.Public().Hex()) || strings.Contains(out, w1.Public().Hex()) {
		t.Fatalf("show:\n%s", out)
	}

	// No registered worker is in the subnet: the upload waits and says so.
	wasm := filepath.Join(t.TempDir(), "empty.wasm")
	if err := os.WriteFile(wasm, []byte("\x00asm\x01\x00\x00\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := fails(t, []string{"no worker satisfies the requirements"}, phala("contract", "upload", "--from", "//Alice", "--subnet", created.Subnet, "--min-cores", "2", "--timeout", "8s", wasm)...)
	if !strings.Contains(r.stderr, "pending") {
		t.Errorf("upload to an empty subnet: %s", r)
	}
	f := strings.Fields(r.stderr)
	if len(f) < 2 || f[0] != "upload" {
		t.Fatalf("upload printed no id: %s", r)
	}
	show := ok(t, phala("contract", "show", f[1])...)
	for _, want := range []string{"status:     pending", "requires:   subnet " + created.Subnet + ", at least 2 cores", "has no attested staked worker"} {
		if !strings.Contains(show, want) {
			t.Errorf("contract show of the pending upload lacks %q:\n%s", want, show)
		}
	}
	fails(t, []string{"--subnet"}, phala("contract", "upload", "--from", "//Alice", "--subnet", "zz", wasm)...)
}

func hexID(id [32]byte) string { return hex.EncodeToString(id[:]) }
