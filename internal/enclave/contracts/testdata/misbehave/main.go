// Command misbehave is a test contract whose commands loop, trap, fail
// after writing, read the deterministic clock and randomness, grow its
// memory, or show its Go runtime's state.
package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand"
	"strconv"

	"github.com/phalago/phala/contract"
)

var (
	sink  uint64
	hold  [][]byte
	count int
)

func init() {
	contract.Register(contract.Handlers{
		Command: func(c *contract.Context, in []byte) ([]byte, error) {
			switch string(in) {
			case "set":
				c.SetUint64([]byte("k"), c.Uint64([]byte("k"))+1)
				return []byte("ok"), nil
			case "loop":
				c.SetUint64([]byte("k"), 99)
				for i := uint64(0); ; i++ {
					sink += i
				}
			case "panic":
				c.SetUint64([]byte("k"), 99)
				panic("boom")
			case "nil":
				c.SetUint64([]byte("k"), 99)
				var p *int
				return []byte(strconv.Itoa(*p)), nil
			case "fail":
				c.SetUint64([]byte("k"), 99)
				return nil, errors.New("refused after writing")
			case "random":
				return []byte(hex.EncodeToString(c.Random(16))), nil
			case "time":
				return []byte(c.Time().String() + " " + strconv.FormatInt(c.Height(), 10)), nil
			case "grow": // keeps 8 MiB more live: the instance's memory grows
				hold = append(hold, make([]byte, 8<<20))
				return []byte(strconv.Itoa(len(hold))), nil
			case "state": // calls on this instance, math/rand, a map's order
				count++
				m := map[int]bool{}
				for i := range 16 {
					m[i] = true
				}
				order := ""
				for k := range m {
					order += strconv.Itoa(k) + ","
				}
				return fmt.Appendf(nil, "%d %d %d %s", count, len(hold), rand.Uint64(), order), nil
			case "emit":
				c.Emit("app/out", []byte("hello"))
				return nil, nil
			}
			return nil, errors.New("unknown command")
		},
		Query: func(c *contract.Context, in []byte) ([]byte, error) {
			if string(in) == "write" {
				c.SetUint64([]byte("k"), 1)
			}
			return []byte(strconv.FormatUint(c.Uint64([]byte("k")), 10)), nil
		},
	})
}

func main() {}
