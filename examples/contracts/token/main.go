// Command token is a confidential token: balances are private to the
// contract, transfers are commands, and a balance is told only to its
// owner. The deployer (who calls init) may mint.
//
// Inputs are JSON: {"op":"mint","to":"0x<32 bytes>","amount":5},
// {"op":"transfer","to":"0x...","amount":5} (commands) and
// {"op":"balance"} (query: the caller's own balance) or
// {"op":"balance","of":"0x..."} (refused unless "of" is the caller).
package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/phalago/phala/contract"
)

var ownerKey = []byte("owner")

type request struct {
	Op     string `json:"op"`
	To     string `json:"to,omitempty"`
	Of     string `json:"of,omitempty"`
	Amount uint64 `json:"amount,omitempty"`
}

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

func decode(input []byte) (*request, contract.Address, error) {
	var r request
	if err := json.Unmarshal(input, &r); err != nil {
		return nil, contract.Address{}, fmt.Errorf("bad request: %v", err)
	}
	if r.To == "" {
		return &r, contract.Address{}, nil
	}
	to, err := parseAddress(r.To)
	return &r, to, err
}

func command(c *contract.Context, input []byte) ([]byte, error) {
	r, to, err := decode(input)
	if err != nil {
		return nil, err
	}
	if r.Amount == 0 {
		return nil, errors.New("amount must be positive")
	}
	caller := c.Caller()
	switch r.Op {
	case "mint":
		owner, _ := c.Get(ownerKey)
		if string(owner) != string(caller[:]) {
			return nil, errors.New("only the owner may mint")
		}
		bal := c.Uint64(balanceKey(to))
		if bal+r.Amount < bal {
			return nil, errors.New("balance overflow")
		}
		c.SetUint64(balanceKey(to), bal+r.Amount)
	case "transfer":
		from := c.Uint64(balanceKey(caller))
		if from < r.Amount {
			return nil, errors.New("insufficient balance")
		}
		c.SetUint64(balanceKey(caller), from-r.Amount)
		c.SetUint64(balanceKey(to), c.Uint64(balanceKey(to))+r.Amount)
	default:
		return nil, fmt.Errorf("unknown command %q (mint, transfer)", r.Op)
	}
	return []byte("ok"), nil
}

func query(c *contract.Context, input []byte) ([]byte, error) {
	r, _, err := decode(input)
	if err != nil {
		return nil, err
	}
	if r.Op != "balance" {
		return nil, fmt.Errorf("unknown query %q (balance)", r.Op)
	}
	who := c.Caller()
	if r.Of != "" {
		of, err := parseAddress(r.Of)
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
