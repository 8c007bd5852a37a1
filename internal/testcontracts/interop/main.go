// Command interop is a test contract of the interoperability ABI
// (contract/ABI.md: self, escrow, call, pay, handle_event). Inputs are
// text:
//
//	call <to> <gas> <sealed 0|1> <text>   (command) call contract to with text
//	calls <to> <n> <gas>                  (command) n plain calls "note <i>"
//	pay <to> <amount> <id>                (command) a payout from the escrow
//	fail                                  (command) fails
//	anything else                         (command) appended to the log as "<caller>:<input>"
//	log | self | call | balance <of>      (queries)
//
// A deposit credits the depositor's balance and is logged ("deposit
// <from> <amount>"), except one of 13, which fails (and is refunded); a
// payout result is logged ("payout <id> <paid> <reason>"). Addresses are
// 0x and 64 hex digits.
package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/phalago/phala/contract"
)

func addr(s string) (contract.Address, error) {
	var a contract.Address
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil || len(b) != 32 {
		return a, fmt.Errorf("address %q", s)
	}
	copy(a[:], b)
	return a, nil
}

func hexOf(a contract.Address) string { return "0x" + hex.EncodeToString(a[:]) }

func logLine(c *contract.Context, line string) {
	old, _ := c.Get([]byte("log"))
	c.Set([]byte("log"), append(old, []byte(line+"\n")...))
}

func command(c *contract.Context, input []byte) ([]byte, error) {
	f := strings.Fields(string(input))
	if len(f) == 0 {
		return nil, errors.New("empty input")
	}
	switch f[0] {
	case "call":
		if len(f) < 5 {
			return nil, errors.New("usage: call <to> <gas> <sealed> <text>")
		}
		to, err := addr(f[1])
		if err != nil {
			return nil, err
		}
		gas, _ := strconv.ParseUint(f[2], 10, 64)
		text := strings.Join(f[4:], " ")
		return nil, c.CallContract(to, []byte(text), gas, f[3] == "1")
	case "calls":
		if len(f) != 4 {
			return nil, errors.New("usage: calls <to> <n> <gas>")
		}
		to, err := addr(f[1])
		if err != nil {
			return nil, err
		}
		n, _ := strconv.Atoi(f[2])
		gas, _ := strconv.ParseUint(f[3], 10, 64)
		for i := 0; i < n; i++ {
			if err := c.CallContract(to, []byte("note "+strconv.Itoa(i)), gas, false); err != nil {
				return nil, err
			}
		}
		return nil, nil
	case "pay":
		if len(f) != 4 {
			return nil, errors.New("usage: pay <to> <amount> <id>")
		}
		to, err := addr(f[1])
		if err != nil {
			return nil, err
		}
		amount, _ := strconv.ParseUint(f[2], 10, 64)
		id, _ := strconv.ParseUint(f[3], 10, 64)
		return nil, c.Pay(to, amount, id)
	case "fail":
		return nil, errors.New("failed as asked")
	}
	logLine(c, hexOf(c.Caller())+":"+string(input))
	return nil, nil
}

func query(c *contract.Context, input []byte) ([]byte, error) {
	f := strings.Fields(string(input))
	if len(f) == 0 {
		return nil, errors.New("empty query")
	}
	switch f[0] {
	case "log":
		v, _ := c.Get([]byte("log"))
		return v, nil
	case "self":
		return []byte(hexOf(c.Self()) + " " + hexOf(c.Escrow())), nil
	case "call":
		return nil, c.CallContract(c.Self(), []byte("x"), 1, false)
	case "balance":
		if len(f) != 2 {
			return nil, errors.New("usage: balance <of>")
		}
		a, err := addr(f[1])
		if err != nil {
			return nil, err
		}
		return []byte(strconv.FormatUint(c.Uint64(contract.Key([]byte("balance"), a[:])), 10)), nil
	}
	return nil, errors.New("unknown query")
}

func init() {
	contract.Register(contract.Handlers{
		Command: command,
		Query:   query,
		Deposit: func(c *contract.Context, from contract.Address, amount uint64) error {
			if amount == 13 {
				return errors.New("unlucky deposit")
			}
			k := contract.Key([]byte("balance"), from[:])
			c.SetUint64(k, c.Uint64(k)+amount)
			logLine(c, fmt.Sprintf("deposit %s %d", hexOf(from), amount))
			return nil
		},
		PayoutResult: func(c *contract.Context, p contract.Payout) error {
			logLine(c, fmt.Sprintf("payout %d %v %s", p.ID, p.Paid, p.Reason))
			return nil
		},
	})
}

func main() {}
