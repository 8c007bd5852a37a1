// Command token is a confidential token: balances are private to the
// contract, transfers are commands, and a balance is told only to its
// owner. The deployer (who calls init) may mint.
//
// Inputs are short text commands:
//
//	mint <to> <amount>        (command, owner only)
//	transfer <to> <amount>    (command)
//	balance [<of>]            (query: the caller's balance; <of> must be the caller)
//
// where addresses are 0x followed by 32 bytes of hex.
package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/phalago/phala/contract"
)

var (
	ownerKey      = []byte("owner")
	balancePrefix = []byte("balance")
	okOut         = []byte("ok")
	errUsage      = errors.New("usage: mint|transfer <0x address> <amount>")
)

// balanceKey is contract.Key("balance", a).
func balanceKey(a contract.Address) []byte {
	return contract.AppendKey(make([]byte, 0, 2+len(balancePrefix)+len(a)), balancePrefix, a[:])
}

// fromKey and toKey hold a command's two balance keys: the host copies
// keys, so one buffer each serves every call (no garbage in the guest).
var fromKey, toKey [2 + 7 + 32]byte

// balanceKeyIn is balanceKey(a) written in buf.
func balanceKeyIn(buf *[2 + 7 + 32]byte, a contract.Address) []byte {
	return contract.AppendKey(buf[:0], balancePrefix, a[:])
}

func parseAddress(s string) (contract.Address, error) {
	return parseAddressBytes([]byte(s))
}

// parseAddressBytes reads 32 bytes of hex, with or without 0x.
func parseAddressBytes(field []byte) (contract.Address, error) {
	b := field
	if len(b) >= 2 && b[0] == '0' && b[1] == 'x' {
		b = b[2:]
	}
	a, err := contract.DecodeAddressHex(b)
	if err != nil {
		return a, fmt.Errorf("address %q must be 0x and 32 bytes of hex", field)
	}
	return a, nil
}

// parse splits "op <address> <amount>" (fields separated by white space,
// as strings.Fields does).
func parse(input []byte) (op []byte, to contract.Address, amount uint64, err error) {
	if op, to, amount, ok := parseUsual(input); ok {
		return op, to, amount, nil
	}
	var f [3][]byte
	n := 0
	for i := 0; i < len(input); {
		c := input[i]
		if c >= 0x80 { // not ASCII: let strings.Fields tell Unicode spaces
			return parseFields(input)
		}
		if asciiSpace[c] {
			i++
			continue
		}
		j := i
		for j < len(input) && input[j] < 0x80 && !asciiSpace[input[j]] {
			j++
		}
		if j < len(input) && input[j] >= 0x80 {
			return parseFields(input)
		}
		if n == len(f) {
			return nil, to, 0, errUsage
		}
		f[n] = input[i:j]
		n++
		i = j
	}
	if n != len(f) {
		return nil, to, 0, errUsage
	}
	if to, err = parseAddressBytes(f[1]); err != nil {
		return nil, to, 0, err
	}
	if amount, err = contract.ParseAmount(f[2]); err != nil || amount == 0 {
		return nil, to, 0, fmt.Errorf("amount %q must be a positive integer", f[2])
	}
	return f[0], to, amount, nil
}

// parseUsual reads the form clients send, "op 0x<64 hex digits> <digits>"
// with single spaces and a positive amount, looking at each byte once; ok
// is false for anything else, which parse then splits as strings.Fields
// does (the usual form splits the same way: hex digits and decimal digits
// are not white space).
func parseUsual(input []byte) (op []byte, to contract.Address, amount uint64, ok bool) {
	sp := -1
	for i, c := range input {
		if c == ' ' {
			sp = i
			break
		}
		if c >= 0x80 || asciiSpace[c] {
			return nil, to, 0, false
		}
	}
	if sp <= 0 {
		return nil, to, 0, false
	}
	rest := input[sp+1:]
	if len(rest) < 2+64+2 || rest[0] != '0' || rest[1] != 'x' || rest[66] != ' ' {
		return nil, to, 0, false
	}
	to, err := contract.DecodeAddressHex(rest[2:66])
	if err != nil {
		return nil, to, 0, false
	}
	if amount, err = contract.ParseAmount(rest[67:]); err != nil || amount == 0 {
		return nil, to, 0, false
	}
	return input[:sp], to, amount, true
}

// asciiSpace marks the ASCII bytes unicode.IsSpace reports.
var asciiSpace = [128]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

// parseFields is parse for input that is not all ASCII.
func parseFields(input []byte) (op []byte, to contract.Address, amount uint64, err error) {
	f := strings.Fields(string(input))
	if len(f) != 3 {
		return nil, to, 0, errUsage
	}
	if to, err = parseAddress(f[1]); err != nil {
		return nil, to, 0, err
	}
	if amount, err = strconv.ParseUint(f[2], 10, 64); err != nil || amount == 0 {
		return nil, to, 0, fmt.Errorf("amount %q must be a positive integer", f[2])
	}
	return []byte(f[0]), to, amount, nil
}

func command(c *contract.Context, input []byte) ([]byte, error) {
	op, to, amount, err := parse(input)
	if err != nil {
		return nil, err
	}
	caller := c.Caller()
	switch string(op) {
	case "mint":
		if owner, _ := c.Get(ownerKey); string(owner) != string(caller[:]) {
			return nil, errors.New("only the owner may mint")
		}
		toK := balanceKeyIn(&toKey, to)
		bal := c.Uint64(toK)
		if bal+amount < bal {
			return nil, errors.New("balance overflow")
		}
		c.SetUint64(toK, bal+amount)
	case "transfer":
		fromK := balanceKeyIn(&fromKey, caller)
		from := c.Uint64(fromK)
		if from < amount {
			return nil, errors.New("insufficient balance")
		}
		if to == caller {
			break // to oneself: nothing moves
		}
		toK := balanceKeyIn(&toKey, to)
		bal := c.Uint64(toK)
		if bal+amount < bal {
			// Mints bound each balance, not their sum: two balances
			// near 2^64 must not wrap into one.
			return nil, errors.New("balance overflow")
		}
		c.SetUint64(fromK, from-amount)
		c.SetUint64(toK, bal+amount)
	default:
		return nil, fmt.Errorf("unknown command %q (mint, transfer)", op)
	}
	return okOut, nil
}

func query(c *contract.Context, input []byte) ([]byte, error) {
	f := strings.Fields(string(input))
	if len(f) == 0 || f[0] != "balance" || len(f) > 2 {
		return nil, errors.New("usage: balance [<0x address>]")
	}
	who := c.Caller()
	if len(f) == 2 {
		of, err := parseAddress(f[1])
		if err != nil {
			return nil, err
		}
		if of != who {
			return nil, errors.New("a balance is told only to its owner")
		}
	}
	return []byte(strconv.FormatUint(c.Uint64(balanceKey(who)), 10)), nil
}

func init() {
	contract.Register(contract.Handlers{
		Init: func(c *contract.Context, _ []byte) ([]byte, error) {
			caller := c.Caller()
			c.Set(ownerKey, caller[:])
			return nil, nil
		},
		Command: command,
		Query:   query,
	})
}

func main() {}
