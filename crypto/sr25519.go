// Package crypto owns the project's public-key cryptography: sr25519 key pairs
// derived exactly as Substrate's subkey derives them, SS58 addresses, and
// signatures under explicit domain-separation contexts.
//
// Every signature in the system is made with a [Context]; the same bytes signed
// under two contexts give signatures that do not verify across them. Contexts
// are declared once, next to the wire type they protect (see package api).
package crypto

import (
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	schnorrkel "github.com/ChainSafe/go-schnorrkel"
	"github.com/gtank/ristretto255"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/sr25519"
	subkey "github.com/vedhavyas/go-subkey/v2"
)

// Sizes of keys and signatures.
const (
	PublicKeySize = 32
	SignatureSize = 64
	SeedSize      = 32
)

// SubstrateContext is the signing context Substrate uses for sr25519
// signatures of extrinsics and messages ("substrate").
const SubstrateContext Context = "substrate"

// Context is a domain-separation label for signatures.
type Context string

// PublicKey is an sr25519 public key (a compressed ristretto255 point).
type PublicKey [PublicKeySize]byte

// Signature is an sr25519 signature.
type Signature [SignatureSize]byte

// Errors returned by this package.
var (
	ErrBadPublicKey = errors.New("invalid sr25519 public key")
	ErrBadSignature = errors.New("invalid signature")
	ErrBadURI       = errors.New("invalid secret URI")
)

// KeyPair is an sr25519 secret key with its public key. Its String method
// prints only the public part.
type KeyPair struct {
	secret *schnorrkel.SecretKey
	public PublicKey
}

// GenerateKeyPair returns a fresh key pair from crypto/rand, together with its
// 32-byte mini-secret seed (which [KeyPairFromSeed] accepts).
func GenerateKeyPair() (*KeyPair, [SeedSize]byte, error) {
	var seed [SeedSize]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, seed, fmt.Errorf("generate key: %w", err)
	}
	kp, err := KeyPairFromSeed(seed[:])
	return kp, seed, err
}

// KeyPairFromSeed expands a 32-byte mini secret (Substrate's "seed") the way
// Substrate does (Ed25519-style expansion).
func KeyPairFromSeed(seed []byte) (*KeyPair, error) {
	if len(seed) != SeedSize {
		return nil, fmt.Errorf("seed must be %d bytes, got %d", SeedSize, len(seed))
	}
	var raw [SeedSize]byte
	copy(raw[:], seed)
	ms, err := schnorrkel.NewMiniSecretKeyFromRaw(raw)
	if err != nil {
		return nil, err
	}
	return newKeyPair(ms.ExpandEd25519())
}

func newKeyPair(sk *schnorrkel.SecretKey) (*KeyPair, error) {
	pk, err := sk.Public()
	if err != nil {
		return nil, err
	}
	return &KeyPair{secret: sk, public: pk.Encode()}, nil
}

// Public returns the public key.
func (kp *KeyPair) Public() PublicKey { return kp.public }

// Address returns the SS58 address of the public key in the generic Substrate
// format (prefix 42), as subkey prints it by default.
func (kp *KeyPair) Address() string { return kp.public.Address() }

// String prints the address, never the secret.
func (kp *KeyPair) String() string { return kp.public.Address() }

// Sign signs msg under ctx.
func (kp *KeyPair) Sign(ctx Context, msg []byte) Signature {
	sig, err := kp.secret.Sign(schnorrkel.NewSigningContext([]byte(ctx), msg))
	if err != nil {
		// schnorrkel only fails here on a broken random source.
		panic(fmt.Sprintf("sr25519 sign: %v", err))
	}
	return sig.Encode()
}

// Derive applies a derivation path such as "//hard/soft" to the key pair.
func (kp *KeyPair) Derive(path string) (*KeyPair, error) {
	js, err := parsePath(path)
	if err != nil {
		return nil, err
	}
	return kp.derive(js)
}

// Verify reports whether sig is pk's signature of msg under ctx.
//
// Verification uses curve25519-voi's sr25519 (the Oasis implementation,
// already CometBFT's ed25519 backend), about twice as fast as
// go-schnorrkel's on the same inputs and stricter only where Substrate's
// schnorrkel is strict too (a signature's scalar must be canonical and its
// marker bit set); FuzzVerifyMatchesSchnorrkel checks the two agree.
// go-schnorrkel stays for key derivation and signing.
//
// The identity key (the all-zero encoding, the only encoding of the
// identity ristretto255 accepts) verifies nothing: go-schnorrkel refuses
// it, voi does not, and for it s·B − k·A = s·B, so (R = s·B, s) would
// verify any message under it without a secret.
func (pk PublicKey) Verify(ctx Context, msg []byte, sig Signature) bool {
	if pk == (PublicKey{}) {
		return false
	}
	p := voiKeys.get(pk, func() *voi.PublicKey {
		p, err := voi.NewPublicKeyFromBytes(pk[:])
		if err != nil {
			return nil
		}
		return p
	})
	if p == nil {
		return false
	}
	s, err := voi.NewSignatureFromBytes(sig[:])
	if err != nil {
		return false
	}
	return p.Verify(signingContext(ctx).NewTranscriptBytes(msg), s)
}

// signingContexts caches one voi signing context per Context: a context
// is an initialized transcript, cloned by NewTranscriptBytes.
var signingContexts sync.Map // Context -> *voi.SigningContext

func signingContext(ctx Context) *voi.SigningContext {
	if sc, ok := signingContexts.Load(ctx); ok {
		return sc.(*voi.SigningContext)
	}
	sc, _ := signingContexts.LoadOrStore(ctx, voi.NewSigningContext([]byte(ctx)))
	return sc.(*voi.SigningContext)
}

// Valid reports whether pk decodes to a ristretto255 point other than the
// identity (the all-zero encoding, for which no signature ever verifies).
// Answers are cached (keycache.go).
func (pk PublicKey) Valid() bool {
	return validKeys.get(pk, func() bool {
		_, err := schnorrkel.NewPublicKey(pk)
		return pk != (PublicKey{}) && err == nil
	})
}

// Address returns the SS58 address (prefix 42), cached (keycache.go).
func (pk PublicKey) Address() string {
	return addresses.get(pk, func() string { return subkey.SS58Encode(pk[:], AddressFormat) })
}

// String returns the SS58 address.
func (pk PublicKey) String() string { return pk.Address() }

// Hex returns 0x-prefixed lowercase hex.
func (pk PublicKey) Hex() string { return "0x" + hex.EncodeToString(pk[:]) }

// Short returns the first bytes in hex, for logs.
func (pk PublicKey) Short() string { return hex.EncodeToString(pk[:4]) }

// AddressFormat is the SS58 network prefix used for addresses (42, the
// generic Substrate format that subkey prints by default).
const AddressFormat uint16 = 42

// ParsePublicKey accepts an SS58 address under any network prefix (0 for
// Polkadot, 2 for Kusama, 30 for Phala, 42 for Substrate, ...; the prefix
// is checked by the checksum and otherwise ignored) or 0x-prefixed hex of 32
// bytes.
func ParsePublicKey(s string) (PublicKey, error) {
	var pk PublicKey
	s = strings.TrimSpace(s)
	var raw []byte
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		b, err := hex.DecodeString(s[2:])
		if err != nil {
			return pk, fmt.Errorf("%w: %q is not hex", ErrBadPublicKey, s)
		}
		raw = b
	} else {
		_, b, err := ss58Decode(s)
		if err != nil {
			return pk, fmt.Errorf("%w: %q is neither an SS58 address nor 0x-hex: %v", ErrBadPublicKey, s, err)
		}
		raw = b
	}
	if len(raw) != PublicKeySize {
		return pk, fmt.Errorf("%w: %d bytes, want %d", ErrBadPublicKey, len(raw), PublicKeySize)
	}
	copy(pk[:], raw)
	if !pk.Valid() {
		return pk, fmt.Errorf("%w: not a ristretto255 point", ErrBadPublicKey)
	}
	return pk, nil
}

// MarshalText encodes the key as an SS58 address (used by JSON).
func (pk PublicKey) MarshalText() ([]byte, error) { return []byte(pk.Address()), nil }

// UnmarshalText accepts SS58 or 0x-hex.
func (pk *PublicKey) UnmarshalText(b []byte) error {
	k, err := ParsePublicKey(string(b))
	if err != nil {
		return err
	}
	*pk = k
	return nil
}

// Bytes returns the key as a byte slice.
func (pk PublicKey) Bytes() []byte { return pk[:] }

// SharedSecret is the ECDH agreement of this key pair's secret with a
// peer's public key on ristretto255: the compressed point secret × peer.
// Both sides of a pair compute the same 32 bytes.
func (kp *KeyPair) SharedSecret(peer PublicKey) ([32]byte, error) {
	var out [32]byte
	if peer == (PublicKey{}) {
		return out, fmt.Errorf("%w: identity point", ErrBadPublicKey)
	}
	var p ristretto255.Element
	if err := p.Decode(peer[:]); err != nil {
		return out, fmt.Errorf("%w: %v", ErrBadPublicKey, err)
	}
	s, err := schnorrkel.ScalarFromBytes(kp.secret.Encode())
	if err != nil {
		return out, err
	}
	var shared ristretto255.Element
	shared.ScalarMult(s, &p)
	copy(out[:], shared.Encode(nil))
	return out, nil
}

// DerivedAccount returns a valid sr25519 public key for (domain, data)
// whose secret key nobody knows: the ristretto255 hash-to-group of
// SHA-512(domain ‖ 0 ‖ data) (RFC 9496's element derivation from 64
// uniform bytes). Such an account can receive PHA but sign nothing; only
// the chain's own rules move its funds (a contract's escrow account).
func DerivedAccount(domain string, data []byte) PublicKey {
	h := sha512.New()
	h.Write([]byte(domain))
	h.Write([]byte{0})
	h.Write(data)
	var e ristretto255.Element
	e.FromUniformBytes(h.Sum(nil))
	var pk PublicKey
	copy(pk[:], e.Encode(nil))
	return pk
}
