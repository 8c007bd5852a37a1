package contract

import "errors"

// Allocation-free decoding of the text forms contracts take as input:
// addresses in hex and decimal amounts. They cost no garbage in the guest,
// where Go's runtime makes every allocation and call several times dearer
// than natively.

// errBadHex and errBadAmount are the helpers' errors (constant, so the
// helpers do not allocate).
var (
	errBadHex    = errors.New("contract: an address is 64 hex digits (32 bytes)")
	errBadAmount = errors.New("contract: an amount is a decimal integer of at most 2^64-1")
)

// unhex is the value of each hex digit, 0xff for any other byte.
var unhex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
		t[c-'a'+'A'] = byte(c - 'a' + 10)
	}
	return t
}()

// DecodeAddressHex decodes exactly 64 hex digits (either case, no prefix)
// into an address, as hex.Decode would, without allocating.
func DecodeAddressHex(b []byte) (Address, error) {
	var a Address
	if len(b) != 2*len(a) {
		return a, errBadHex
	}
	h := (*[2 * len(a)]byte)(b)
	var bad byte
	for i := range a {
		hi, lo := unhex[h[2*i]], unhex[h[2*i+1]]
		bad |= hi | lo
		a[i] = hi<<4 | lo
	}
	if bad > 15 { // some byte was not a hex digit (0xff)
		return Address{}, errBadHex
	}
	return a, nil
}

// ParseAmount parses a decimal amount as strconv.ParseUint(s, 10, 64)
// does (digits only, leading zeros allowed, at most 2^64-1), without
// allocating.
func ParseAmount(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, errBadAmount
	}
	var v uint64
	for _, c := range b {
		d := uint64(c) - '0'
		if d > 9 {
			return 0, errBadAmount
		}
		if v > (1<<64-1)/10 || v*10 > 1<<64-1-d {
			return 0, errBadAmount
		}
		v = v*10 + d
	}
	return v, nil
}

// AppendKey appends to dst the storage key Key(parts...) makes: each part
// prefixed with its length (uvarint).
func AppendKey(dst []byte, parts ...[]byte) []byte {
	for _, p := range parts {
		n := uint64(len(p))
		for n >= 0x80 {
			dst = append(dst, byte(n)|0x80)
			n >>= 7
		}
		dst = append(dst, byte(n))
		dst = append(dst, p...)
	}
	return dst
}
