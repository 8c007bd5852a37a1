package keys

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/phalago/phala/internal/enclave/platform"
	"github.com/phalago/phala/internal/enclave/sealing"
)

var update = flag.Bool("update", false, "rewrite testdata/contract_keys.json")

func sim(t testing.TB, dir string) platform.Platform {
	p, err := platform.NewSim(dir, []byte("code"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var chainA = sealing.Binding{ChainID: "phala-a", GenesisHash: [32]byte{1}}

func chainSealer(p platform.Platform, b sealing.Binding) *sealing.Sealer {
	return sealing.NewSealer(p, b)
}

func TestEntityCreatedOnceAndReloaded(t *testing.T) {
	dir := t.TempDir()
	p := sim(t, dir)
	e1, st, err := LoadOrCreateEntity(chainSealer(p, chainA), dir)
	if err != nil || st != EntityCreated {
		t.Fatalf("create: %v %v", st, err)
	}
	e2, st, err := LoadOrCreateEntity(chainSealer(sim(t, dir), chainA), dir)
	if err != nil || st != EntityLoaded {
		t.Fatalf("reload: %v %v", st, err)
	}
	if e1.Identity.Public() != e2.Identity.Public() || e1.Ecdh.Public() != e2.Ecdh.Public() {
		t.Fatal("reloaded keys differ")
	}
	if e1.Identity.Public() == e1.Ecdh.Public() {
		t.Fatal("identity and ECDH keys are the same")
	}
}

// A damaged, foreign or other chain's sealed identity is an error, never a
// new identity.
func TestEntityNeverSilentlyReplaced(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := LoadOrCreateEntity(chainSealer(sim(t, dir), chainA), dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, EntityFile)
	before, _ := os.ReadFile(path)
	// Another machine's platform key.
	if _, _, err := LoadOrCreateEntity(chainSealer(sim(t, t.TempDir()), chainA), dir); !errors.Is(err, sealing.ErrForeign) {
		t.Fatalf("foreign: %v", err)
	}
	// Another chain, or the pre-genesis binding.
	for _, b := range []sealing.Binding{{ChainID: "phala-b", GenesisHash: chainA.GenesisHash}, {ChainID: chainA.ChainID}, {}} {
		if _, _, err := LoadOrCreateEntity(chainSealer(sim(t, dir), b), dir); !errors.Is(err, sealing.ErrOtherChain) {
			t.Fatalf("other chain %+v: %v", b, err)
		}
	}
	// Damage.
	os.WriteFile(path, before[:len(before)-3], 0o600)
	if _, _, err := LoadOrCreateEntity(chainSealer(sim(t, dir), chainA), dir); !errors.Is(err, sealing.ErrForeign) {
		t.Fatalf("damaged: %v", err)
	}
	if after, _ := os.ReadFile(path); len(after) != len(before)-3 {
		t.Fatal("file was replaced")
	}
}

// Pre-genesis entity keys load on any chain until bound; once bound they
// are that chain's only.
func TestPreGenesisEntityBoundOnce(t *testing.T) {
	dir := t.TempDir()
	p := sim(t, dir)
	e, err := CreatePreGenesisEntity(p, dir)
	if err != nil {
		t.Fatal(err)
	}
	got, st, err := LoadOrCreateEntity(chainSealer(p, chainA), dir)
	if err != nil || st != EntityPreGenesis || got.Identity.Public() != e.Identity.Public() {
		t.Fatalf("first start: %v %v", st, err)
	}
	if err := got.Bind(chainSealer(p, chainA), dir); err != nil {
		t.Fatal(err)
	}
	if _, st, err := LoadOrCreateEntity(chainSealer(p, chainA), dir); err != nil || st != EntityLoaded {
		t.Fatalf("after binding: %v %v", st, err)
	}
	if _, _, err := LoadOrCreateEntity(chainSealer(p, sealing.Binding{ChainID: "phala-b"}), dir); !errors.Is(err, sealing.ErrOtherChain) {
		t.Fatalf("bound entity on another chain: %v", err)
	}
	if err := got.Bind(chainSealer(p, sealing.Binding{}), dir); err == nil {
		t.Fatal("bound back to pre-genesis")
	}
}

type vector struct {
	ContractKey    string // input: the contract's seed (docs/keys.md)
	Identity, Ecdh string // public keys
	Storage        string
}

// The expansion of a contract seed into the contract's IdentityKey,
// EcdhKey and StorageKey (hard junctions) matches the recorded vectors,
// and no key repeats.
func TestContractKeyVectors(t *testing.T) {
	var vs []vector
	for i := range 5 {
		var seed [32]byte
		seed[0], seed[31] = byte(i+1), 0xaa
		ck, err := ContractKeysFromSeed(seed)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, vector{ContractKey: hex.EncodeToString(seed[:]), Identity: ck.Identity.Public().Hex(), Ecdh: ck.Ecdh.Public().Hex(), Storage: hex.EncodeToString(ck.Storage[:])})
	}
	path := filepath.Join("testdata", "contract_keys.json")
	if *update {
		b, _ := json.MarshalIndent(vs, "", "  ")
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want []vector
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(vs) {
		t.Fatalf("%d vectors, want %d", len(vs), len(want))
	}
	seen := map[string]bool{}
	for i := range vs {
		if vs[i] != want[i] {
			t.Errorf("vector %d:\n got %+v\nwant %+v", i, vs[i], want[i])
		}
		for _, k := range []string{vs[i].ContractKey, vs[i].Identity, vs[i].Ecdh, vs[i].Storage} {
			if seen[k] {
				t.Errorf("vector %d: key %s repeats", i, k)
			}
			seen[k] = true
		}
	}
}

// LoadEntity reads the keys with the binding of their file (pre-genesis,
// then the chain's once bound), creates nothing where there are none, and
// refuses keys sealed by another platform key.
func TestLoadEntityReadOnly(t *testing.T) {
	dir := t.TempDir()
	p := sim(t, dir)
	if _, _, err := LoadEntity(p, dir); !errors.Is(err, sealing.ErrNotExist) {
		t.Fatalf("no keys: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, EntityFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("LoadEntity created entity keys")
	}
	e, err := CreatePreGenesisEntity(p, dir)
	if err != nil {
		t.Fatal(err)
	}
	got, b, err := LoadEntity(p, dir)
	if err != nil || !b.PreGenesis() || got.Identity.Public() != e.Identity.Public() || got.Ecdh.Public() != e.Ecdh.Public() {
		t.Fatalf("pre-genesis: %v %+v", err, b)
	}
	if err := got.Bind(chainSealer(p, chainA), dir); err != nil {
		t.Fatal(err)
	}
	got, b, err = LoadEntity(p, dir)
	if err != nil || b != chainA || got.Identity.Public() != e.Identity.Public() {
		t.Fatalf("bound: %v %+v", err, b)
	}
	if _, _, err := LoadEntity(sim(t, t.TempDir()), dir); err == nil {
		t.Fatal("keys opened with another platform key")
	}
}
