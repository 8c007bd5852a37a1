package main

import "github.com/phalago/phala/api"

// Amounts of PHA: the chain counts units of 10^-12 PHA (api.Unit per PHA);
// api.ParseAmount and api.FormatAmount convert (pherry shares them).

func parseAmount(s string) (uint64, error) { return api.ParseAmount(s) }

func formatAmount(units uint64) string { return api.FormatAmount(units) }

// pha prints units as "<amount> PHA".
func pha(units uint64) string { return formatAmount(units) + " " + api.TokenSymbol }
