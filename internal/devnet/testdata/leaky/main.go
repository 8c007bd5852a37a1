// Command leaky is a test contract that fails in every way a contract can,
// repeating its (confidential) input in each failure: the test around it
// checks that none of that text leaves the enclave except sealed to the
// caller.
//
//	store <text>   (command) keeps text in storage and succeeds
//	fail <text>    (command, query) returns an error quoting the input
//	panic <text>   (command, query) panics with the input
//	spin <text>    (command, query) loops until it runs out of gas
//	write <text>   (query) tries to write (read-only violation)
package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/phalago/phala/contract"
)

func handle(c *contract.Context, input []byte) ([]byte, error) {
	op, arg, _ := strings.Cut(string(input), " ")
	switch op {
	case "store":
		c.Set([]byte("kept"), []byte(arg))
		return []byte("stored " + arg), nil
	case "fail":
		return nil, fmt.Errorf("refused %q", arg)
	case "panic":
		panic("panicking over " + arg)
	case "spin":
		n := 0
		for i := 0; ; i++ {
			n += len(arg) * i
			if n < 0 {
				break
			}
		}
		return nil, errors.New(arg)
	case "write":
		c.Set([]byte(arg), []byte(arg))
		return nil, nil
	}
	return nil, fmt.Errorf("unknown command %q", input)
}

func init() {
	contract.Register(contract.Handlers{Command: handle, Query: handle})
}

func main() {}
