// Package sealing stores pRuntime's secrets on disk: each file is versioned,
// bound to the chain it belongs to, sealed by the platform with its name and
// that binding as additional data (so files can be neither swapped nor
// carried to another chain or another pRuntime), and written atomically
// (temporary file, fsync, rename, fsync of the directory), so a crash leaves
// either the old or the new content, never a torn file.
//
// Every sealed file goes through a [Sealer], built once from the platform
// and the [Binding] of the chain (chain id and genesis hash) and, for
// everything but the entity keys, of this pRuntime's identity key.
//
// A missing file is ErrNotExist; a file that does not parse is ErrCorrupt;
// a file of another chain is ErrOtherChain, of another identity on the same
// chain ErrOtherIdentity (both name the file's binding and the expected
// one); a file sealed by another platform key is ErrForeign. Callers must
// never answer any of them but ErrNotExist by silently creating new keys.
package sealing

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/platform"
)

// Format of a sealed file: magic, version, the encoded Binding in the clear
// (authenticated: it is part of the additional data), then the platform's
// sealed blob.
var magic = []byte("PHALA-SEALED")

// Version is the current sealed file version (2: chain binding in the
// header; version 1 files, which had none, are refused as ErrCorrupt).
const Version = 2

// MaxFileBytes bounds what Load reads.
const MaxFileBytes = 256 << 20

// maxChainIDBytes bounds the chain id in a header (CometBFT allows 50).
const maxChainIDBytes = 64

// Errors.
var (
	ErrNotExist      = errors.New("sealed file does not exist")
	ErrCorrupt       = errors.New("sealed file is corrupt")
	ErrForeign       = errors.New("sealed file was sealed by another platform key (another machine or data directory)")
	ErrOtherChain    = errors.New("sealed file belongs to another chain")
	ErrOtherIdentity = errors.New("sealed file belongs to another pRuntime identity")
	// ErrTooLarge: Save refuses what Load would refuse (MaxFileBytes), so
	// a checkpoint that grew too large fails when written, not at the
	// next start.
	ErrTooLarge = errors.New("sealed file would exceed the size limit")
)

// Binding is what a sealed file belongs to: the chain (its id and
// GenesisHash, see lightclient.GenesisHash) and, except for the entity keys
// themselves, the identity key of the pRuntime that sealed it.
//
// The zero Binding is "pre-genesis": only the entity keys of a genesis
// gatekeeper, created before the genesis that names them exists, are
// sealed so; pRuntime rebinds them to the chain at their first start.
type Binding struct {
	ChainID     string
	GenesisHash [32]byte
	Identity    crypto.PublicKey // zero: not bound to an identity
}

// PreGenesis reports whether b is the zero (pre-genesis) binding.
func (b Binding) PreGenesis() bool { return b == Binding{} }

// SameChain reports whether b and o name the same chain.
func (b Binding) SameChain(o Binding) bool {
	return b.ChainID == o.ChainID && b.GenesisHash == o.GenesisHash
}

// Chain describes the chain part, e.g. `chain "phala-dev" (genesis 1a2b3c4d5e6f7a8b)`.
func (b Binding) Chain() string {
	if b.PreGenesis() {
		return "no chain (pre-genesis)"
	}
	return fmt.Sprintf("chain %q (genesis %s)", b.ChainID, hex.EncodeToString(b.GenesisHash[:8]))
}

func (b Binding) encode() []byte {
	w := codec.NewWriter(80 + len(b.ChainID))
	w.String(b.ChainID)
	w.Fixed(b.GenesisHash[:])
	w.Fixed(b.Identity[:])
	return w.Bytes()
}

func decodeBinding(r *codec.Reader) Binding {
	var b Binding
	b.ChainID = r.String(maxChainIDBytes)
	r.Fixed(b.GenesisHash[:])
	r.Fixed(b.Identity[:])
	return b
}

// Sealer seals and unseals the files of one binding on one platform.
type Sealer struct {
	p platform.Platform
	b Binding
}

// NewSealer returns the sealer of files bound to b.
func NewSealer(p platform.Platform, b Binding) *Sealer { return &Sealer{p: p, b: b} }

// Binding returns the sealer's binding.
func (s *Sealer) Binding() Binding { return s.b }

// Platform returns the sealer's platform.
func (s *Sealer) Platform() platform.Platform { return s.p }

// ForIdentity returns a sealer of the same chain bound to identity id.
func (s *Sealer) ForIdentity(id crypto.PublicKey) *Sealer {
	b := s.b
	b.Identity = id
	return &Sealer{p: s.p, b: b}
}

// Save seals data and writes it atomically to path.
func (s *Sealer) Save(path string, data []byte) error {
	blob, err := s.p.Seal(data, additional(path, s.b))
	if err != nil {
		return fmt.Errorf("seal %s: %w", filepath.Base(path), err)
	}
	hdr := s.b.encode()
	w := codec.NewWriter(len(magic) + 1 + len(hdr) + 4 + len(blob))
	w.Fixed(magic)
	w.U8(Version)
	w.BytesField(hdr)
	w.Fixed(blob)
	if w.Len() > MaxFileBytes {
		return fmt.Errorf("%w: %s would be %d bytes, at most %d are read back", ErrTooLarge, filepath.Base(path), w.Len(), MaxFileBytes)
	}
	return WriteAtomic(path, w.Bytes())
}

// Load reads and unseals path.
func (s *Sealer) Load(path string) ([]byte, error) {
	raw, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return s.Decode(path, raw)
}

func readFile(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotExist, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return raw, nil
}

// ReadBinding returns the binding in path's header without unsealing it
// (unauthenticated until the file is unsealed with a Sealer of that
// binding).
func ReadBinding(path string) (Binding, error) {
	raw, err := readFile(path)
	if err != nil {
		return Binding{}, err
	}
	b, _, err := parse(path, raw)
	return b, err
}

func parse(path string, raw []byte) (Binding, []byte, error) {
	if len(raw) > MaxFileBytes {
		return Binding{}, nil, fmt.Errorf("%w: %s is %d bytes", ErrCorrupt, path, len(raw))
	}
	if !bytes.HasPrefix(raw, magic) || len(raw) < len(magic)+1 {
		return Binding{}, nil, fmt.Errorf("%w: %s is not a sealed file", ErrCorrupt, path)
	}
	if v := raw[len(magic)]; v != Version {
		return Binding{}, nil, fmt.Errorf("%w: %s has version %d, this pRuntime reads %d", ErrCorrupt, path, v, Version)
	}
	r := codec.NewReader(raw[len(magic)+1:])
	hdr := r.BytesField(maxChainIDBytes + 80)
	hr := codec.NewReader(hdr)
	b := decodeBinding(hr)
	if err := hr.Done(); err != nil || r.Err() != nil {
		return Binding{}, nil, fmt.Errorf("%w: %s has a malformed header", ErrCorrupt, path)
	}
	return b, raw[len(magic)+1+r.Offset():], nil
}

// Decode unseals the bytes of a sealed file named path. A file bound to
// another chain is ErrOtherChain, to another identity ErrOtherIdentity,
// before anything is unsealed.
func (s *Sealer) Decode(path string, raw []byte) ([]byte, error) {
	b, blob, err := parse(path, raw)
	if err != nil {
		return nil, err
	}
	if !b.SameChain(s.b) {
		return nil, fmt.Errorf("%w: %s was sealed for %s, this pRuntime runs %s; refusing to use it", ErrOtherChain, filepath.Base(path), b.Chain(), s.b.Chain())
	}
	if b.Identity != s.b.Identity {
		return nil, fmt.Errorf("%w: %s was sealed by pRuntime %s, this one is %s; refusing to use it", ErrOtherIdentity, filepath.Base(path), b.Identity.Hex(), s.b.Identity.Hex())
	}
	data, err := s.p.Unseal(blob, additional(path, s.b))
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrForeign, path)
	}
	return data, nil
}

// additional binds the file's name (not its directory, so a data directory
// can be moved) and its binding to its content.
func additional(path string, b Binding) []byte {
	return append([]byte("phala/sealing v2: "+filepath.Base(path)+"\x00"), b.encode()...)
}

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
