package explorer

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/phalago/phala/crypto"
)

// queryKind is what a search string can be, by its form alone.
type queryKind int

const (
	queryHeight  queryKind = iota + 1 // decimal digits: a block height
	queryHash                         // 64 hex digits (0x optional): a tx or block hash, or a key in hex
	queryAddress                      // an SS58 address: an account, worker or contract key
)

// errBadQuery: a search string that is no height, hash or address.
var errBadQuery = errors.New("not a block height, a block or transaction hash (64 hex digits), an SS58 address or a 0x public key")

// maxQueryBytes bounds a search string (an SS58 address is under 60).
const maxQueryBytes = 128

// parsedQuery is a search string by form: the height, or the 32 bytes of
// a hash or key (Key is set when the bytes also read as a public key).
type parsedQuery struct {
	Kind   queryKind
	Height int64
	Hash   [32]byte
	Key    crypto.PublicKey
	HasKey bool // Key is a valid public key (always for queryAddress)
}

// parseQuery classifies a search string by its form (untrusted input:
// bounded, never panics). Errors wrap errBadQuery.
func parseQuery(q string) (parsedQuery, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return parsedQuery{}, fmt.Errorf("%w: the search is empty", errBadQuery)
	}
	if len(q) > maxQueryBytes {
		return parsedQuery{}, fmt.Errorf("%w: %d characters is too long", errBadQuery, len(q))
	}
	if isDigits(q) && len(q) != 64 { // 64 digits: a hash
		h, err := strconv.ParseInt(q, 10, 64)
		if err != nil || h < 1 {
			return parsedQuery{}, fmt.Errorf("%w: height %s is out of range (heights start at 1)", errBadQuery, q)
		}
		return parsedQuery{Kind: queryHeight, Height: h}, nil
	}
	if h, err := parseHash(q); err == nil {
		pk, kerr := crypto.ParsePublicKey("0x" + hex.EncodeToString(h[:]))
		return parsedQuery{Kind: queryHash, Hash: h, Key: pk, HasKey: kerr == nil}, nil
	}
	if pk, err := crypto.ParsePublicKey(q); err == nil {
		return parsedQuery{Kind: queryAddress, Key: pk, Hash: [32]byte(pk), HasKey: true}, nil
	}
	return parsedQuery{}, fmt.Errorf("%w: %q", errBadQuery, q)
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// parseHash reads 64 hex digits, 0x optional, either case.
func parseHash(s string) ([32]byte, error) {
	var h [32]byte
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(t) != 64 {
		return h, fmt.Errorf("hash %q: want 64 hex digits (0x optional)", s)
	}
	if _, err := hex.Decode(h[:], []byte(t)); err != nil {
		return h, fmt.Errorf("hash %q: want 64 hex digits (0x optional)", s)
	}
	return h, nil
}

// parseKey reads a public key from a path: an SS58 address or 0x-hex.
func parseKey(what, s string) (crypto.PublicKey, error) {
	if len(s) > maxQueryBytes {
		return crypto.PublicKey{}, fmt.Errorf("%s: %d characters is too long for a key", what, len(s))
	}
	if h, err := parseHash(s); err == nil {
		s = "0x" + hex.EncodeToString(h[:])
	}
	pk, err := crypto.ParsePublicKey(s)
	if err != nil {
		return pk, fmt.Errorf("%s %q is not a key (%v): give an SS58 address or the 64 hex digits of an sr25519 public key (0x optional)", what, s, err)
	}
	return pk, nil
}
