package contract

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
)

func TestDecodeAddressHex(t *testing.T) {
	good := strings.Repeat("0a", 31) + "fF"
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{good, true},
		{strings.ToUpper(good), true},
		{good[:63], false},
		{good + "0", false},
		{"0x" + good[2:], false},
		{good[:62] + "g0", false},
		{good[:62] + " 0", false},
		{"", false},
	} {
		a, err := DecodeAddressHex([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if tc.ok {
			want, _ := hex.DecodeString(tc.in)
			if !bytes.Equal(a[:], want) {
				t.Fatalf("%q: %x", tc.in, a)
			}
		}
	}
}

func TestParseAmount(t *testing.T) {
	for _, in := range []string{"0", "1", "007", "18446744073709551615", "18446744073709551616", "99999999999999999999", "", "+1", "-1", "1_0", "1 ", "0x10", "１"} {
		got, err := ParseAmount([]byte(in))
		want, werr := strconv.ParseUint(in, 10, 64)
		if (err == nil) != (werr == nil) || got != want && err == nil {
			t.Fatalf("%q: %d %v, strconv: %d %v", in, got, err, want, werr)
		}
	}
}

// FuzzParseHelpers: the helpers agree with the standard library's decoders
// and Key on any input.
func FuzzParseHelpers(f *testing.F) {
	f.Add([]byte(strings.Repeat("ab", 32)), []byte("123"))
	f.Add([]byte(strings.Repeat("G1", 32)), []byte("18446744073709551616"))
	f.Fuzz(func(t *testing.T, h, n []byte) {
		a, err := DecodeAddressHex(h)
		want, herr := hex.DecodeString(string(h))
		if herr != nil || len(want) != 32 {
			if err == nil {
				t.Fatalf("%q decoded, hex.DecodeString refuses it", h)
			}
		} else if err != nil || !bytes.Equal(a[:], want) {
			t.Fatalf("%q: %x %v, hex: %x", h, a, err, want)
		}
		v, err := ParseAmount(n)
		wv, werr := strconv.ParseUint(string(n), 10, 64)
		if (err == nil) != (werr == nil) || err == nil && v != wv {
			t.Fatalf("%q: %d %v, strconv: %d %v", n, v, err, wv, werr)
		}
		var k []byte
		for _, p := range [][]byte{h, n} {
			k = binary.AppendUvarint(k, uint64(len(p)))
			k = append(k, p...)
		}
		if got := Key(h, n); !bytes.Equal(got, k) {
			t.Fatalf("Key: %x, want %x", got, k)
		}
	})
}
