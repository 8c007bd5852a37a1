package crypto

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	schnorrkel "github.com/ChainSafe/go-schnorrkel"
	"github.com/gtank/merlin"
	"golang.org/x/crypto/blake2b"
)

// DevPhrase is Substrate's development mnemonic; "//Alice" means
// DevPhrase + "//Alice".
const DevPhrase = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"

var (
	uriPattern      = regexp.MustCompile(`^([\w ]+)?((?://?[^/]+)*)(?:///(.*))?$`)
	junctionPattern = regexp.MustCompile(`/(/?[^/]+)`)
)

type junction struct {
	chainCode [32]byte
	hard      bool
}

// KeyPairFromURI derives a key pair from a Substrate secret URI:
// "<mnemonic or 0x-seed>[//hard][/soft][///password]". An empty phrase means
// [DevPhrase], so "//Alice" is Substrate's well-known Alice.
func KeyPairFromURI(uri string) (*KeyPair, error) {
	kp, _, err := KeyPairFromURIWithSeed(uri)
	return kp, err
}

// KeyPairFromURIWithSeed is [KeyPairFromURI] that also returns the 32-byte
// mini secret of the derived key, which subkey prints as "Secret seed"
// (sp_core's Pair::from_string_with_seed): the seed of the phrase (with its
// password) or the 0x-seed, replaced by the child seed at each hard
// junction. A soft junction has no seed: then, and for every junction after
// it, seed is nil (subkey prints "n/a").
func KeyPairFromURIWithSeed(uri string) (kp *KeyPair, seed []byte, err error) {
	m := uriPattern.FindStringSubmatch(uri)
	if m == nil {
		return nil, nil, fmt.Errorf("%w: expected <phrase or 0x-seed>[//hard][/soft][///password]", ErrBadURI)
	}
	phrase, path, password := strings.TrimSpace(m[1]), m[2], m[3]
	if phrase == "" {
		phrase = DevPhrase
	}
	var ms *schnorrkel.MiniSecretKey
	if strings.HasPrefix(phrase, "0x") {
		raw, err := hex.DecodeString(phrase[2:])
		if err != nil || len(raw) != SeedSize {
			return nil, nil, fmt.Errorf("%w: a hex seed must be 0x followed by %d bytes", ErrBadURI, SeedSize)
		}
		var b [SeedSize]byte
		copy(b[:], raw)
		if ms, err = schnorrkel.NewMiniSecretKeyFromRaw(b); err != nil {
			return nil, nil, err
		}
	} else {
		if ms, err = schnorrkel.MiniSecretKeyFromMnemonic(phrase, password); err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrBadURI, err)
		}
	}
	js, err := parsePath(path)
	if err != nil {
		return nil, nil, err
	}
	sk := ms.ExpandEd25519()
	for _, j := range js {
		if !j.hard {
			if sk, err = softDerive(sk, j.chainCode); err != nil {
				return nil, nil, err
			}
			ms = nil
			continue
		}
		child, err := hardDerive(sk, j.chainCode)
		if err != nil {
			return nil, nil, err
		}
		sk = child.ExpandEd25519()
		if ms != nil {
			ms = child
		}
	}
	if kp, err = newKeyPair(sk); err != nil {
		return nil, nil, err
	}
	if ms != nil {
		b := ms.Encode()
		seed = b[:]
	}
	return kp, seed, nil
}

// MustKeyPairFromURI is KeyPairFromURI for constant development URIs.
func MustKeyPairFromURI(uri string) *KeyPair {
	kp, err := KeyPairFromURI(uri)
	if err != nil {
		panic(err)
	}
	return kp
}

func parsePath(path string) ([]junction, error) {
	if path == "" {
		return nil, nil
	}
	if junctionPattern.ReplaceAllString(path, "") != "" {
		return nil, fmt.Errorf("%w: bad derivation path %q", ErrBadURI, path)
	}
	var js []junction
	for _, p := range junctionPattern.FindAllStringSubmatch(path, -1) {
		js = append(js, parseJunction(p[1]))
	}
	return js, nil
}

// parseJunction follows Substrate's DeriveJunction: a number is encoded as a
// little-endian u64, anything else as a SCALE string; longer than 32 bytes is
// replaced by its blake2b-256 hash.
func parseJunction(code string) junction {
	var j junction
	if strings.HasPrefix(code, "/") {
		j.hard = true
		code = code[1:]
	}
	var b []byte
	if n, err := strconv.ParseUint(code, 10, 64); err == nil {
		b = binary.LittleEndian.AppendUint64(nil, n)
	} else {
		b = append(scaleCompact(uint64(len(code))), code...)
	}
	if len(b) > 32 {
		h := blake2b.Sum256(b)
		b = h[:]
	}
	copy(j.chainCode[:], b)
	return j
}

// scaleCompact is SCALE's compact integer encoding (enough for lengths).
func scaleCompact(n uint64) []byte {
	switch {
	case n < 1<<6:
		return []byte{byte(n << 2)}
	case n < 1<<14:
		return binary.LittleEndian.AppendUint16(nil, uint16(n<<2|1))
	case n < 1<<30:
		return binary.LittleEndian.AppendUint32(nil, uint32(n<<2|2))
	default:
		b := binary.LittleEndian.AppendUint64(nil, n)
		l := 8
		for l > 4 && b[l-1] == 0 {
			l--
		}
		return append([]byte{byte((l-4)<<2 | 3)}, b[:l]...)
	}
}

func (kp *KeyPair) derive(js []junction) (*KeyPair, error) {
	sk := kp.secret
	for _, j := range js {
		if j.hard {
			ms, err := hardDerive(sk, j.chainCode)
			if err != nil {
				return nil, err
			}
			sk = ms.ExpandEd25519()
			continue
		}
		var err error
		if sk, err = softDerive(sk, j.chainCode); err != nil {
			return nil, err
		}
	}
	if sk == kp.secret {
		return kp, nil
	}
	return newKeyPair(sk)
}

// softDerive is schnorrkel's soft derivation as Substrate uses it.
func softDerive(sk *schnorrkel.SecretKey, cc [32]byte) (*schnorrkel.SecretKey, error) {
	t := merlin.NewTranscript("SchnorrRistrettoHDKD")
	t.AppendMessage([]byte("sign-bytes"), nil)
	ek, err := sk.DeriveKey(t, cc)
	if err != nil {
		return nil, fmt.Errorf("soft derive: %w", err)
	}
	out, err := ek.Secret()
	if err != nil {
		return nil, fmt.Errorf("soft derive: %w", err)
	}
	return out, nil
}

// hardDerive is schnorrkel's hard derivation as Substrate uses it
// (sp_core::sr25519 derive_secret with a chain code).
func hardDerive(sk *schnorrkel.SecretKey, cc [32]byte) (*schnorrkel.MiniSecretKey, error) {
	t := merlin.NewTranscript("SchnorrRistrettoHDKD")
	t.AppendMessage([]byte("sign-bytes"), nil)
	t.AppendMessage([]byte("chain-code"), cc[:])
	enc := sk.Encode()
	t.AppendMessage([]byte("secret-key"), enc[:])
	var raw [SeedSize]byte
	copy(raw[:], t.ExtractBytes([]byte("HDKD-hard"), SeedSize))
	return schnorrkel.NewMiniSecretKeyFromRaw(raw)
}

// HardDeriveSeed returns the 32-byte seed of the hard junction name under
// the key pair: the child key is KeyPairFromSeed(HardDeriveSeed(...)). The
// enclave uses it to derive contract keys from the MasterKey.
func (kp *KeyPair) HardDeriveSeed(name []byte) ([SeedSize]byte, error) {
	var cc [32]byte
	b := append(scaleCompact(uint64(len(name))), name...)
	if len(b) > 32 {
		h := blake2b.Sum256(b)
		b = h[:]
	}
	copy(cc[:], b)
	ms, err := hardDerive(kp.secret, cc)
	if err != nil {
		return [SeedSize]byte{}, err
	}
	return ms.Encode(), nil
}
