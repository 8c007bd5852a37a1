package sealing

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/platform"
)

var (
	chainA = Binding{ChainID: "phala-a", GenesisHash: [32]byte{1}}
	me     = crypto.MustKeyPairFromURI("//Me").Public()
)

func sealer(p platform.Platform) *Sealer { return NewSealer(p, chainA).ForIdentity(me) }

func sim(t testing.TB, dir string) platform.Platform {
	p, err := platform.NewSim(dir, []byte("code"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	p := sim(t, dir)
	path := filepath.Join(dir, "identity.sealed")
	secret := []byte("the identity seed")
	if err := sealer(p).Save(path, secret); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, secret) {
		t.Fatal("secret visible on disk")
	}
	// Reopening the platform (same key file) unseals.
	got, err := sealer(sim(t, dir)).Load(path)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("load: %q %v", got, err)
	}
	// No temporary files left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("directory holds %d entries", len(entries))
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	p := sim(t, dir)
	path := filepath.Join(dir, "identity.sealed")
	if err := sealer(p).Save(path, []byte("seed")); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	write := func(name string, b []byte) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)-1] ^= 1
	newVersion := append([]byte(nil), raw...)
	newVersion[len(magic)] = 9
	// The header's binding rewritten in the clear to this sealer's: the
	// additional data no longer matches the sealed blob.
	relabel := func(from, to Binding) []byte {
		b := bytes.Replace(raw, from.encode(), to.encode(), 1)
		if bytes.Equal(b, raw) {
			t.Fatal("binding not found in the header")
		}
		return b
	}
	otherID := crypto.MustKeyPairFromURI("//Other").Public()
	other := sim(t, t.TempDir()) // another machine
	s := sealer(p)
	for _, tc := range []struct {
		name string
		s    *Sealer
		path string
		want error
	}{
		{"missing", s, filepath.Join(dir, "nope.sealed"), ErrNotExist},
		{"empty", s, write("empty.sealed", nil), ErrCorrupt},
		{"not sealed", s, write("plain.sealed", []byte("hello world, not sealed")), ErrCorrupt},
		{"unknown version", s, write("v9.sealed", newVersion), ErrCorrupt},
		{"truncated header", s, write("short.sealed", raw[:len(magic)+3]), ErrCorrupt},
		{"tampered", s, write("identity2.sealed", flipped), ErrForeign},
		{"renamed file", s, write("master.sealed", raw), ErrForeign},
		{"another platform key", sealer(other), path, ErrForeign},
		{"another chain id", NewSealer(p, Binding{ChainID: "phala-b", GenesisHash: chainA.GenesisHash}).ForIdentity(me), path, ErrOtherChain},
		{"another genesis", NewSealer(p, Binding{ChainID: chainA.ChainID, GenesisHash: [32]byte{2}}).ForIdentity(me), path, ErrOtherChain},
		{"pre-genesis sealer", NewSealer(p, Binding{}), path, ErrOtherChain},
		{"another identity", NewSealer(p, chainA).ForIdentity(otherID), path, ErrOtherIdentity},
		{"no identity", NewSealer(p, chainA), path, ErrOtherIdentity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.s.Load(tc.path); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// The refusal names both chains.
	_, err := NewSealer(p, Binding{ChainID: "phala-b", GenesisHash: [32]byte{9}}).ForIdentity(me).Load(path)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte(`"phala-a"`)) || !bytes.Contains([]byte(err.Error()), []byte(`"phala-b"`)) {
		t.Fatalf("refusal does not name both chains: %v", err)
	}
	if b, err := ReadBinding(path); err != nil || b != s.Binding() {
		t.Fatalf("ReadBinding: %+v %v", b, err)
	}
	// The header's binding is authenticated: relabelled in the clear to
	// another identity, the file does not unseal for it.
	o := NewSealer(p, chainA).ForIdentity(otherID)
	write("identity.sealed", relabel(s.Binding(), o.Binding()))
	if _, err := o.Load(path); !errors.Is(err, ErrForeign) {
		t.Fatalf("relabelled header: %v", err)
	}
}

func TestDamagedPlatformKey(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, platform.SimKeyFile), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := platform.NewSim(dir, nil, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Fatal("damaged platform key accepted")
	}
}

func FuzzDecode(f *testing.F) {
	dir := f.TempDir()
	p := sim(f, dir)
	path := filepath.Join(dir, "x.sealed")
	if err := sealer(p).Save(path, []byte("seed")); err != nil {
		f.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	f.Add(raw)
	f.Add([]byte("PHALA-SEALED"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, err := sealer(p).Decode(path, b); err == nil && !bytes.Equal(got, []byte("seed")) {
			t.Fatalf("forged sealed file accepted: %q", got)
		}
	})
}
