package gas

import "errors"

// LEB128 decoders over byte slices. They reproduce, byte for byte, the
// acceptance rules of wazero's (and wabin's) internal/leb128 decoders:
// instruction boundaries found by Instrument must be exactly the ones wazero
// finds when it validates and compiles the instrumented module, otherwise a
// charge could land in the middle of what wazero considers one instruction.
// TestLEBMatchesWabin and FuzzLEB check the equivalence against wabin's copy.

var (
	errLEBEOF        = errors.New("unexpected end of LEB128 value")
	errLEBOverflow32 = errors.New("LEB128 overflows a 32-bit integer")
	errLEBOverflow33 = errors.New("LEB128 overflows a 33-bit integer")
	errLEBOverflow64 = errors.New("LEB128 overflows a 64-bit integer")
)

// readU32 decodes an unsigned 32-bit LEB128 value from b, returning the value
// and the number of bytes it occupies.
func readU32(b []byte) (uint32, int, error) {
	var ret uint32
	var s uint32
	for i := 0; i < 5; i++ {
		if i >= len(b) {
			return 0, 0, errLEBEOF
		}
		c := b[i]
		if c < 0x80 {
			if i == 4 && c&0xf0 > 0 {
				return 0, 0, errLEBOverflow32
			}
			return ret | uint32(c)<<s, i + 1, nil
		}
		ret |= uint32(c&0x7f) << s
		s += 7
	}
	return 0, 0, errLEBOverflow32
}

// readS32 decodes a signed 32-bit LEB128 value (i32.const immediates).
func readS32(b []byte) (int32, int, error) {
	var ret int32
	var shift int
	n := 0
	for {
		if n >= len(b) {
			return 0, 0, errLEBEOF
		}
		c := b[n]
		ret |= (int32(c) & 0x7f) << shift
		shift += 7
		n++
		if c&0x80 == 0 {
			if shift < 32 && c&0x40 != 0 {
				ret |= ^0 << shift
			}
			if n > 5 {
				return 0, 0, errLEBOverflow32
			} else if unused := c & 0b00110000; n == 5 && ret < 0 && unused != 0b00110000 {
				return 0, 0, errLEBOverflow32
			} else if n == 5 && ret >= 0 && unused != 0 {
				return 0, 0, errLEBOverflow32
			}
			return ret, n, nil
		}
	}
}

// readS64 decodes a signed 64-bit LEB128 value (i64.const immediates).
func readS64(b []byte) (int64, int, error) {
	var ret int64
	var shift int
	n := 0
	for {
		if n >= len(b) {
			return 0, 0, errLEBEOF
		}
		c := b[n]
		ret |= (int64(c) & 0x7f) << shift
		shift += 7
		n++
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				ret |= ^0 << shift
			}
			if n > 10 {
				return 0, 0, errLEBOverflow64
			} else if unused := c & 0b00111110; n == 10 && ret < 0 && unused != 0b00111110 {
				return 0, 0, errLEBOverflow64
			} else if n == 10 && ret >= 0 && unused != 0 {
				return 0, 0, errLEBOverflow64
			}
			return ret, n, nil
		}
	}
}

// readS33 decodes a signed 33-bit LEB128 value (block types).
func readS33(b []byte) (int64, int, error) {
	const (
		mask33   int64 = 1<<33 - 1
		bit32    int64 = 1 << 32
		twoTo33  int64 = 1 << 33
		contBit  int64 = 1 << 7
		signBit7 int64 = 1 << 6
	)
	var ret, c int64
	var shift int
	n := 0
	for shift < 35 {
		if n >= len(b) {
			return 0, 0, errLEBEOF
		}
		c = int64(b[n])
		ret |= (c &^ contBit) << shift
		shift += 7
		n++
		if c&contBit == 0 {
			break
		}
	}
	if shift < 33 && c&signBit7 == signBit7 {
		ret |= mask33 << shift
	}
	ret &= mask33
	if ret&bit32 > 0 {
		ret -= twoTo33
	}
	if n > 5 {
		return 0, 0, errLEBOverflow33
	} else if unused := c & 0b00100000; n == 5 && ret < 0 && unused != 0b00100000 {
		return 0, 0, errLEBOverflow33
	} else if n == 5 && ret >= 0 && unused != 0 {
		return 0, 0, errLEBOverflow33
	}
	return ret, n, nil
}

// appendU32 appends the canonical unsigned LEB128 encoding of v.
func appendU32(dst []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			dst = append(dst, c|0x80)
			continue
		}
		return append(dst, c)
	}
}

// appendS64 appends the canonical signed LEB128 encoding of v.
func appendS64(dst []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		s := v & 0x40
		v >>= 7
		if (v == 0 && s == 0) || (v == -1 && s != 0) {
			return append(dst, c)
		}
		dst = append(dst, c|0x80)
	}
}
