package sealing

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/phalago/phala/internal/enclave/platform"
)

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
	if err := Save(p, path, secret); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, secret) {
		t.Fatal("secret visible on disk")
	}
	// Reopening the platform (same key file) unseals.
	got, err := Load(sim(t, dir), path)
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
	if err := Save(p, path, []byte("seed")); err != nil {
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
	other := sim(t, t.TempDir()) // another machine
	for _, tc := range []struct {
		name string
		p    platform.Platform
		path string
		want error
	}{
		{"missing", p, filepath.Join(dir, "nope.sealed"), ErrNotExist},
		{"empty", p, write("empty.sealed", nil), ErrCorrupt},
		{"not sealed", p, write("plain.sealed", []byte("hello world, not sealed")), ErrCorrupt},
		{"unknown version", p, write("v9.sealed", newVersion), ErrCorrupt},
		{"tampered", p, write("identity2.sealed", flipped), ErrForeign},
		{"renamed file", p, write("master.sealed", raw), ErrForeign},
		{"another platform key", other, path, ErrForeign},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Load(tc.p, tc.path); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
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
	if err := Save(p, path, []byte("seed")); err != nil {
		f.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	f.Add(raw)
	f.Add([]byte("PHALA-SEALED"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, err := Decode(p, path, b); err == nil && !bytes.Equal(got, []byte("seed")) {
			t.Fatalf("forged sealed file accepted: %q", got)
		}
	})
}
