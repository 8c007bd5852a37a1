package crypto

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/decred/base58"
	subkey "github.com/vedhavyas/go-subkey/v2"
	"golang.org/x/crypto/blake2b"
)

// ErrUnknownNetwork is returned by [NetworkPrefix] for a name that is not in
// the table of SS58 networks.
var ErrUnknownNetwork = errors.New("unknown SS58 network")

// MaxSS58Prefix is the largest SS58 address prefix (14 bits).
const MaxSS58Prefix = 16383

// networks are SS58 address prefixes from Substrate's registry
// (github.com/paritytech/ss58-registry, ss58-registry.json), by the
// "network" name subkey's --network takes. "khala" is not a registry name
// (prefixes are unique there): Phala's Kusama chain uses Phala's prefix 30.
var networks = map[string]uint16{
	"polkadot":   0,
	"kusama":     2,
	"astar":      5,
	"bifrost":    6,
	"edgeware":   7,
	"karura":     8,
	"acala":      10,
	"polymesh":   12,
	"kulupu":     16,
	"stafi":      20,
	"phala":      30,
	"khala":      30,
	"litentry":   31,
	"robonomics": 32,
	"centrifuge": 36,
	"nodle":      37,
	"kilt":       38,
	"substrate":  42,
	"chainx":     44,
	"hydradx":    63,
	"crust":      66,
}

// NetworkNames returns the names [NetworkPrefix] accepts, sorted.
func NetworkNames() []string {
	names := make([]string, 0, len(networks))
	for n := range networks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// NetworkPrefix returns the SS58 prefix of a network name from Substrate's
// registry (case-insensitive), e.g. "polkadot" 0, "kusama" 2, "phala" 30,
// "substrate" 42. An unknown name gives [ErrUnknownNetwork] with the list.
func NetworkPrefix(name string) (uint16, error) {
	if p, ok := networks[strings.ToLower(strings.TrimSpace(name))]; ok {
		return p, nil
	}
	return 0, fmt.Errorf("%w %q: known networks are %s (or give --ss58-prefix N)", ErrUnknownNetwork, name, strings.Join(NetworkNames(), ", "))
}

// NetworkName returns the registry name of an SS58 prefix as subkey prints
// it in "Network ID" ("phala" for 30), or the number for a prefix not in the
// table.
func NetworkName(prefix uint16) string {
	best := ""
	for n, p := range networks {
		if p == prefix && n != "khala" && (best == "" || n < best) {
			best = n
		}
	}
	if best == "" {
		return strconv.Itoa(int(prefix))
	}
	return best
}

// CheckSS58Prefix reports whether prefix can be used for addresses: at most
// [MaxSS58Prefix] and not one of the registry's reserved 46 and 47.
func CheckSS58Prefix(prefix uint64) error {
	switch {
	case prefix > MaxSS58Prefix:
		return fmt.Errorf("SS58 prefix %d is out of range 0..%d", prefix, MaxSS58Prefix)
	case prefix == 46 || prefix == 47:
		return fmt.Errorf("SS58 prefix %d is reserved by Substrate's registry", prefix)
	}
	return nil
}

// AddressWithPrefix returns the SS58 address of pk under a network prefix
// (0..[MaxSS58Prefix]; one byte up to 63, two bytes above, as Substrate
// encodes them).
func (pk PublicKey) AddressWithPrefix(prefix uint16) string {
	return subkey.SS58Encode(pk[:], prefix)
}

// ss58Decode decodes an SS58 address as Substrate's from_ss58check does:
// a one-byte prefix (0..63) or a two-byte one (first byte 64..127), the
// payload, and the first two bytes of blake2b-512("SS58PRE" || prefix ||
// payload). (go-subkey's decoder refuses first byte 127, i.e. some valid
// two-byte prefixes such as 16383.)
func ss58Decode(addr string) (prefix uint16, payload []byte, err error) {
	data := base58.Decode(addr)
	if len(data) < 3 {
		return 0, nil, errors.New("not base58, or too short")
	}
	n := 1
	switch {
	case data[0] <= 63:
		prefix = uint16(data[0])
	case data[0] <= 127:
		n = 2
		lower := data[0]<<2 | data[1]>>6
		upper := data[1] & 0x3f
		prefix = uint16(lower) | uint16(upper)<<8
	default:
		return 0, nil, fmt.Errorf("first byte %d is not an SS58 prefix", data[0])
	}
	if len(data) < n+2 {
		return 0, nil, errors.New("too short")
	}
	body := data[:len(data)-2]
	h := blake2b.Sum512(append([]byte("SS58PRE"), body...))
	if h[0] != data[len(data)-2] || h[1] != data[len(data)-1] {
		return 0, nil, errors.New("checksum mismatch")
	}
	return prefix, body[n:], nil
}
