// Package platform is pRuntime's view of the trusted hardware: the
// measurement of the running code, sealing of secrets to this machine, and
// attestation quotes over 64 bytes of report data. Everything else in
// pRuntime reaches the hardware only through [Platform].
//
// The sim platform runs anywhere and protects nothing from the machine's
// operator: its sealing key is a file next to the data and its quotes are
// signed by the public development attestation key. Chains accept sim
// quotes only where their genesis says so.
package platform

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/attestation"
)

// Platform is the trusted hardware pRuntime runs on.
type Platform interface {
	// Name is the attestation platform name ("sim", "tdx", ...).
	Name() string
	// Measurement identifies the running pRuntime code.
	Measurement() []byte
	// Seal encrypts data so that only this platform (and this code) can
	// unseal it; additional data is bound, not encrypted.
	Seal(data, additional []byte) ([]byte, error)
	// Unseal reverses Seal. It fails with ErrUnseal for data sealed by
	// another platform or tampered with.
	Unseal(sealed, additional []byte) ([]byte, error)
	// Quote returns an attestation report over reportData, issued at the
	// given (trusted) time.
	Quote(reportData [api.ReportDataSize]byte, at time.Time) (*api.AttestationReport, error)
}

// ErrUnseal means sealed data was not sealed by this platform or is damaged.
var ErrUnseal = errors.New("cannot unseal: sealed by another platform key or damaged")

// Sim is the development platform.
type Sim struct {
	aead        cipher.AEAD
	measurement [32]byte
	devKey      *crypto.KeyPair
}

// SimKeyFile is the name of the sim platform's sealing key file.
const SimKeyFile = "sim-platform.key"

// NewSim opens (or creates) the sim platform whose sealing key lives in
// dir/sim-platform.key, measuring the given code bytes (nil: the running
// executable). It logs a warning that sim protects nothing.
func NewSim(dir string, code []byte, log *slog.Logger) (*Sim, error) {
	key, err := loadOrCreateKey(filepath.Join(dir, SimKeyFile))
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	var m [32]byte
	if code == nil {
		if m, err = ExecutableMeasurement(); err != nil {
			return nil, err
		}
	} else {
		m = sha256.Sum256(code)
	}
	log.Warn("sim TEE platform: no hardware protection. The operator of this machine can read every key, contract state and input. Development only.", "measurement", fmt.Sprintf("%x", m))
	return &Sim{aead: aead, measurement: m, devKey: crypto.MustKeyPairFromURI(api.DevAttestationURI)}, nil
}

// ExecutableMeasurement is the SHA-256 of the running executable, the sim
// platform's measurement.
func ExecutableMeasurement() ([32]byte, error) {
	var m [32]byte
	exe, err := os.Executable()
	if err != nil {
		return m, fmt.Errorf("measure pruntime: %w", err)
	}
	f, err := os.Open(exe)
	if err != nil {
		return m, fmt.Errorf("measure pruntime: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return m, fmt.Errorf("measure pruntime: %w", err)
	}
	copy(m[:], h.Sum(nil))
	return m, nil
}

func loadOrCreateKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err == nil {
		if len(key) != 32 {
			return nil, fmt.Errorf("sim platform key %s is %d bytes, want 32: the file is damaged; restore it or start with an empty data directory", path, len(key))
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read sim platform key: %w", err)
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create sim platform key: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return key, f.Close()
}

// Name implements Platform.
func (s *Sim) Name() string { return api.PlatformSim }

// Measurement implements Platform.
func (s *Sim) Measurement() []byte { return s.measurement[:] }

// Seal implements Platform: AES-256-GCM, random nonce prefixed, under the
// data directory's key file. Unlike a real platform, sim does not bind
// sealing to the measurement: any build of pruntime (or anyone) holding
// the key file opens what it sealed. A rebuilt devnet can thus resume its
// data; nothing is protected.
func (s *Sim) Seal(data, additional []byte) ([]byte, error) {
	out := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(data)+s.aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, err
	}
	return s.aead.Seal(out, out, data, additional), nil
}

// Unseal implements Platform.
func (s *Sim) Unseal(sealed, additional []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, ErrUnseal
	}
	pt, err := s.aead.Open(nil, sealed[:n], sealed[n:], additional)
	if err != nil {
		return nil, ErrUnseal
	}
	return pt, nil
}

// Quote implements Platform with the development attestation key.
func (s *Sim) Quote(reportData [api.ReportDataSize]byte, at time.Time) (*api.AttestationReport, error) {
	return attestation.SignSimQuote(s.devKey, s.measurement, reportData, at), nil
}
