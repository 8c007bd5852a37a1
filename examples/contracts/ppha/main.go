// Command ppha builds the ppha example contract (package
// github.com/phalago/phala/examples/contracts/ppha/ppha, which documents its
// commands, queries and storage) to WebAssembly:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o ppha.wasm .
package main

import (
	"github.com/phalago/phala/contract"
	"github.com/phalago/phala/examples/contracts/ppha/ppha"
)

func init() { contract.Register(ppha.Handlers()) }

func main() {}
