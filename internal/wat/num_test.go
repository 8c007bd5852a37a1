package wat

import (
	"math"
	"testing"
)

func TestParseInt(t *testing.T) {
	for _, tc := range []struct {
		s     string
		width int
		want  uint64
		ok    bool
	}{
		{"0", 32, 0, true},
		{"42", 32, 42, true},
		{"-1", 32, 0xffffffff, true},
		{"+7", 32, 7, true},
		{"0xff", 32, 0xff, true},
		{"0xFF_FF", 32, 0xffff, true},
		{"-0x80000000", 32, 0x80000000, true},
		{"4294967295", 32, 0xffffffff, true},
		{"4294967296", 32, 0, false},
		{"-2147483649", 32, 0, false},
		{"1_000", 64, 1000, true},
		{"18446744073709551615", 64, math.MaxUint64, true},
		{"18446744073709551616", 64, 0, false},
		{"-9223372036854775808", 64, 1 << 63, true},
		{"-9223372036854775809", 64, 0, false},
		{"", 32, 0, false},
		{"-", 32, 0, false},
		{"0x", 32, 0, false},
		{"_1", 32, 0, false},
		{"1_", 32, 0, false},
		{"1__2", 32, 0, false},
		{"0x_1", 32, 0, false},
		{"1a", 32, 0, false},
		{"--1", 32, 0, false},
		{"1.0", 32, 0, false},
	} {
		got, ok := parseInt(tc.s, tc.width)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("parseInt(%q, %d) = %#x, %v; want %#x, %v", tc.s, tc.width, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseFloat(t *testing.T) {
	f32 := func(f float32) uint64 { return uint64(math.Float32bits(f)) }
	f64 := math.Float64bits
	for _, tc := range []struct {
		s     string
		width int
		want  uint64
		ok    bool
	}{
		{"1.5", 32, f32(1.5), true},
		{"-0", 32, 1 << 31, true},
		{"-0.0", 64, 1 << 63, true},
		{"1e3", 64, f64(1000), true},
		{"1E-2", 64, f64(0.01), true},
		{"1.", 64, f64(1), true},
		{"1.e2", 64, f64(100), true},
		{"1_000.5", 64, f64(1000.5), true},
		{"0x1p3", 64, f64(8), true},
		{"0x1.8", 64, f64(1.5), true},
		{"0x1.P1", 64, f64(2), true},
		{"-0xA.8p-1", 32, f32(-5.25), true},
		{"0.1", 32, f32(0.1), true},
		{"inf", 32, 0x7f800000, true},
		{"-inf", 64, f64(math.Inf(-1)), true},
		{"nan", 32, 0x7fc00000, true},
		{"-nan", 32, 0xffc00000, true},
		{"nan:0x1", 32, 0x7f800001, true},
		{"nan:0x8_0000_0000_0001", 64, 0x7ff8000000000001, true},
		{"nan:0x0", 32, 0, false},
		{"nan:0x800000", 32, 0, false},
		{"1e39", 32, 0, false},
		{"1e309", 64, 0, false},
		{"", 64, 0, false},
		{".5", 64, 0, false},
		{"1e", 64, 0, false},
		{"1.2.3", 64, 0, false},
		{"Inf", 64, 0, false},
		{"infinity", 64, 0, false},
		{"0x", 64, 0, false},
		{"1_", 64, 0, false},
		{"0x1e3", 64, f64(0x1e3), true},
	} {
		got, ok := parseFloat(tc.s, tc.width)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("parseFloat(%q, %d) = %#x, %v; want %#x, %v", tc.s, tc.width, got, ok, tc.want, tc.ok)
		}
	}
}
