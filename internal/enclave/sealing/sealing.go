// Package sealing stores pRuntime's secrets on disk: each file is versioned,
// sealed by the platform with its name bound as additional data (so files
// cannot be swapped), and written atomically (temporary file, fsync,
// rename, fsync of the directory), so a crash leaves either the old or the
// new content, never a torn file.
//
// A missing file is ErrNotExist; a file that does not parse is ErrCorrupt;
// a file sealed by another platform key is ErrForeign. Callers must never
// answer ErrCorrupt or ErrForeign by silently creating a new identity.
package sealing

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/phalago/phala/internal/enclave/platform"
)

// Format of a sealed file: magic, version, then the platform's sealed blob.
var magic = []byte("PHALA-SEALED")

// Version is the current sealed file version.
const Version = 1

// MaxFileBytes bounds what Load reads.
const MaxFileBytes = 256 << 20

// Errors.
var (
	ErrNotExist = errors.New("sealed file does not exist")
	ErrCorrupt  = errors.New("sealed file is corrupt")
	ErrForeign  = errors.New("sealed file was sealed by another platform key (another machine or data directory)")
)

// Save seals data and writes it atomically to path.
func Save(p platform.Platform, path string, data []byte) error {
	blob, err := p.Seal(data, additional(path))
	if err != nil {
		return fmt.Errorf("seal %s: %w", filepath.Base(path), err)
	}
	out := make([]byte, 0, len(magic)+1+len(blob))
	out = append(out, magic...)
	out = append(out, Version)
	out = append(out, blob...)
	return WriteAtomic(path, out)
}

// Load reads and unseals path.
func Load(p platform.Platform, path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotExist, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return Decode(p, path, raw)
}

// Decode unseals the bytes of a sealed file named path.
func Decode(p platform.Platform, path string, raw []byte) ([]byte, error) {
	if len(raw) > MaxFileBytes {
		return nil, fmt.Errorf("%w: %s is %d bytes", ErrCorrupt, path, len(raw))
	}
	if !bytes.HasPrefix(raw, magic) || len(raw) < len(magic)+1 {
		return nil, fmt.Errorf("%w: %s is not a sealed file", ErrCorrupt, path)
	}
	if v := raw[len(magic)]; v != Version {
		return nil, fmt.Errorf("%w: %s has version %d, this pRuntime reads %d", ErrCorrupt, path, v, Version)
	}
	data, err := p.Unseal(raw[len(magic)+1:], additional(path))
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrForeign, path)
	}
	return data, nil
}

// additional binds the file's name (not its directory, so a data directory
// can be moved) to its content.
func additional(path string) []byte { return []byte("phala/sealing: " + filepath.Base(path)) }

// WriteAtomic writes data to path through a temporary file in the same
// directory, fsyncs it, renames it over path and fsyncs the directory.
func WriteAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
