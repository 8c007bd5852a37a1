package main

import (
	"math"
	"strings"
	"testing"
)

func TestParseAmount(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
	}{
		{"1", 1_000_000_000_000},
		{"1.5", 1_500_000_000_000},
		{"0.000000000001", 1},
		{"007.250", 7_250_000_000_000},
		{"1.5 PHA", 1_500_000_000_000},
		{"2pha", 2_000_000_000_000},
		{"0", 0},
		{"18446744.073709551615", math.MaxUint64},
	} {
		got, err := parseAmount(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseAmount(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"1.0000000000001", "13 decimals"},
		{"-1", "negative"},
		{"+1", "not a number"},
		{"abc", "not a number"},
		{"1e3", "not a number"},
		{"1.", "not a number"},
		{".5", "not a number"},
		{"1.2.3", "not a number"},
		{" ", "not a number"},
		{"1_000", "not a number"},
		{"18446744.073709551616", "too large"},
		{"18446745", "too large"},
		{"99999999999999999999999", "too large"},
	} {
		if got, err := parseAmount(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseAmount(%q) = %d, %v; want an error about %q", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatAmount(t *testing.T) {
	for _, tc := range []struct {
		in   uint64
		want string
	}{
		{0, "0"}, {1, "0.000000000001"}, {1_500_000_000_000, "1.5"}, {1_000_000_000_000_000_000, "1000000"},
		{1_131_000, "0.000001131"}, {math.MaxUint64, "18446744.073709551615"},
	} {
		if got := formatAmount(tc.in); got != tc.want {
			t.Errorf("formatAmount(%d) = %q, want %q", tc.in, got, tc.want)
		}
		if back, err := parseAmount(tc.want); err != nil || back != tc.in {
			t.Errorf("parseAmount(formatAmount(%d)) = %d, %v", tc.in, back, err)
		}
	}
}
