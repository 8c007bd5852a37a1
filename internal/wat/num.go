package wat

import (
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// digitsOK reports whether s is a non-empty run of digits in the given base
// where single underscores may separate digits.
func digitsOK(s string, hex bool) bool {
	if s == "" {
		return false
	}
	prevDigit := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' {
			if !prevDigit {
				return false
			}
			prevDigit = false
			continue
		}
		if _, ok := hexVal(c); !ok || (!hex && (c < '0' || c > '9')) {
			return false
		}
		prevDigit = true
	}
	return prevDigit
}

// parseMagnitude parses an unsigned integer literal (decimal or 0x hex,
// underscores allowed) into a uint64. ok is false on syntax errors or
// overflow of 64 bits.
func parseMagnitude(s string) (v uint64, ok bool) {
	base := uint64(10)
	hex := false
	if strings.HasPrefix(s, "0x") {
		s, base, hex = s[2:], 16, true
	}
	if !digitsOK(s, hex) {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '_' {
			continue
		}
		d, _ := hexVal(s[i])
		hi, lo := bits.Mul64(v, base)
		if hi != 0 {
			return 0, false
		}
		lo, carry := bits.Add64(lo, uint64(d), 0)
		if carry != 0 {
			return 0, false
		}
		v = lo
	}
	return v, true
}

// parseU32 parses an unsigned 32-bit literal (no sign).
func parseU32(s string) (uint32, bool) {
	v, ok := parseMagnitude(s)
	if !ok || v > math.MaxUint32 {
		return 0, false
	}
	return uint32(v), true
}

// parseInt parses a signed or unsigned integer literal of the given width
// (32 or 64) and returns its two's-complement bit pattern. Values in
// [-2^(n-1), 2^n) are accepted, as in the text format.
func parseInt(s string, width int) (uint64, bool) {
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	m, ok := parseMagnitude(s)
	if !ok {
		return 0, false
	}
	if neg {
		if m > 1<<(width-1) {
			return 0, false
		}
		m = -m
	} else if width < 64 && m >= 1<<width {
		return 0, false
	}
	if width < 64 {
		m &= 1<<width - 1
	}
	return m, true
}

// floatSyntaxOK validates a decimal or hexadecimal float literal body
// (without sign, inf, nan).
func floatSyntaxOK(s string) bool {
	hex := strings.HasPrefix(s, "0x")
	if hex {
		s = s[2:]
	}
	expChars := "eE"
	if hex {
		expChars = "pP"
	}
	mant, exp := s, ""
	if i := strings.IndexAny(s, expChars); i >= 0 {
		mant, exp = s[:i], s[i+1:]
		if exp != "" && (exp[0] == '+' || exp[0] == '-') {
			exp = exp[1:]
		}
		if !digitsOK(exp, false) {
			return false
		}
	}
	intPart, frac, hasDot := strings.Cut(mant, ".")
	if !digitsOK(intPart, hex) {
		return false
	}
	if hasDot && frac != "" && !digitsOK(frac, hex) {
		return false
	}
	return true
}

// parseFloat parses a float literal into the bit pattern of a float32
// (width 32) or float64 (width 64).
func parseFloat(s string, width int) (uint64, bool) {
	neg := false
	body := s
	if body != "" && (body[0] == '+' || body[0] == '-') {
		neg = body[0] == '-'
		body = body[1:]
	}
	var sign uint64
	if neg {
		sign = 1 << (width - 1)
	}
	expBits, mantBits := uint(8), uint(23)
	if width == 64 {
		expBits, mantBits = 11, 52
	}
	expMask := uint64(1)<<expBits - 1
	switch {
	case body == "inf":
		return sign | expMask<<mantBits, true
	case body == "nan":
		return sign | expMask<<mantBits | 1<<(mantBits-1), true
	case strings.HasPrefix(body, "nan:0x"):
		payload, ok := parseMagnitude(body[4:])
		if !ok || payload == 0 || payload >= 1<<mantBits {
			return 0, false
		}
		return sign | expMask<<mantBits | payload, true
	}
	if !floatSyntaxOK(body) {
		return 0, false
	}
	clean := strings.ReplaceAll(body, "_", "")
	if strings.HasPrefix(clean, "0x") && !strings.ContainsAny(clean, "pP") {
		clean += "p0"
	}
	if strings.HasSuffix(clean, ".") || strings.Contains(clean, ".e") || strings.Contains(clean, ".E") ||
		strings.Contains(clean, ".p") || strings.Contains(clean, ".P") {
		clean = strings.Replace(clean, ".", ".0", 1)
	}
	f, err := strconv.ParseFloat(clean, width)
	if err != nil {
		return 0, false
	}
	if width == 32 {
		b := uint64(math.Float32bits(float32(f)))
		return b&^(1<<31) | sign, true
	}
	return math.Float64bits(f)&^(1<<63) | sign, true
}
