// Command counter is the smallest example contract: a counter that any
// command increments by the number given (one byte), and any query reads.
package main

import (
	"strconv"

	"github.com/phalago/phala/contract"
)

var key = []byte("count")

func init() {
	contract.Register(contract.Handlers{
		Command: func(c *contract.Context, input []byte) ([]byte, error) {
			by := uint64(1)
			if len(input) == 1 {
				by = uint64(input[0])
			}
			n := c.Uint64(key) + by
			c.SetUint64(key, n)
			return []byte(strconv.FormatUint(n, 10)), nil
		},
		Query: func(c *contract.Context, _ []byte) ([]byte, error) {
			return []byte(strconv.FormatUint(c.Uint64(key), 10)), nil
		},
	})
}

func main() {}
