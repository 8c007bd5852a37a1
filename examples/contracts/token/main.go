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
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/phalago/phala/contract"
)

var ownerKey = []byte("owner")

func balanceKey(a contract.Address) []byte { return contract.Key([]byte("balance"), a[:]) }

func parseAddress(s string) (contract.Address, error) {
	var a contract.Address
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil || len(b) != len(a) {
		return a, fmt.Errorf("address %q must be 0x and 32 bytes of hex", s)
	}
	copy(a[:], b)
	return a, nil
}

// parse splits "op <address> <amount>".
func parse(input []byte) (op string, to contract.Address, amount uint64, err error) {
	f := strings.Fields(string(input))
	if len(f) != 3 {
		return "", to, 0, errors.New("usage: mint|transfer <0x address> <amount>")
	}
	if to, err = parseAddress(f[1]); err != nil {
		return "", to, 0, err
	}
	if amount, err = strconv.ParseUint(f[2], 10, 64); err != nil || amount == 0 {
		return "", to, 0, fmt.Errorf("amount %q must be a positive integer", f[2])
	}
	return f[0], to, amount, nil
}

func command(c *contract.Context, input []byte) ([]byte, error) {
	op, to, amount, err := parse(input)
	if err != nil {
		return nil, err
	}
	caller := c.Caller()
	switch op {
	case "mint":
		if owner, _ := c.Get(ownerKey); string(owner) != string(caller[:]) {
			return nil, errors.New("only the owner may mint")
		}
		bal := c.Uint64(balanceKey(to))
		if bal+amount < bal {
			return nil, errors.New("balance overflow")
		}
		c.SetUint64(balanceKey(to), bal+amount)
	case "transfer":
		from := c.Uint64(balanceKey(caller))
		if from < amount {
			return nil, errors.New("insufficient balance")
		}
		c.SetUint64(balanceKey(caller), from-amount)
		c.SetUint64(balanceKey(to), c.Uint64(balanceKey(to))+amount)
	default:
		return nil, fmt.Errorf("unknown command %q (mint, transfer)", op)
	}
	return []byte("ok"), nil
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
