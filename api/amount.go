package api

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Amounts of PHA: the chain counts units of 10^-12 PHA (Unit per PHA).

// ParseAmount parses a decimal number of PHA ("1", "1.5", "0.000000000001",
// optionally followed by "PHA") exactly into units. It refuses signs,
// exponents, more than TokenDecimals decimals, and amounts that do not
// fit the chain's 64-bit balances.
func ParseAmount(s string) (uint64, error) {
	in := s
	s = strings.TrimSpace(s)
	if u := strings.ToUpper(s); strings.HasSuffix(u, TokenSymbol) {
		s = strings.TrimSpace(s[:len(s)-len(TokenSymbol)])
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("amount %q is negative: give a positive number of %s such as 1.5", in, TokenSymbol)
	}
	whole, frac, dot := strings.Cut(s, ".")
	if !digits(whole) || dot && !digits(frac) {
		return 0, fmt.Errorf("amount %q is not a number of %s: write digits with at most one decimal point, such as 1.5 or 0.25 (no sign, exponent or thousands separators)", in, TokenSymbol)
	}
	if len(frac) > TokenDecimals {
		return 0, fmt.Errorf("amount %q has %d decimals: %s has %d (the smallest amount is 0.%s1 %s)", in, len(frac), TokenSymbol, TokenDecimals, strings.Repeat("0", TokenDecimals-1), TokenSymbol)
	}
	tooLarge := fmt.Errorf("amount %q is too large: at most %s %s fits a balance", in, FormatAmount(math.MaxUint64), TokenSymbol)
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, tooLarge
		}
		return 0, err
	}
	var f uint64
	if frac != "" {
		if f, err = strconv.ParseUint(frac+strings.Repeat("0", TokenDecimals-len(frac)), 10, 64); err != nil {
			return 0, err
		}
	}
	if w > (math.MaxUint64-f)/Unit {
		return 0, tooLarge
	}
	return w*Unit + f, nil
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// FormatAmount prints units as a decimal number of PHA with no trailing
// zeros ("1.5", "1000000", "0.000001131"); ParseAmount reads it back.
func FormatAmount(units uint64) string {
	whole, frac := units/Unit, units%Unit
	if frac == 0 {
		return strconv.FormatUint(whole, 10)
	}
	fs := fmt.Sprintf("%0*d", TokenDecimals, frac)
	return strconv.FormatUint(whole, 10) + "." + strings.TrimRight(fs, "0")
}

// FormatAmountUnits prints units for people who may also need the exact
// figure: "1.5 PHA (1500000000000 units)". The chain's refusals use it, so
// that an error reads in PHA and still matches the base units of state
// and events.
func FormatAmountUnits(units uint64) string {
	return FormatAmount(units) + " " + TokenSymbol + " (" + strconv.FormatUint(units, 10) + " units)"
}
