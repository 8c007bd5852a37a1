// Command escrow builds the escrow example contract (package
// github.com/phalago/phala/examples/contracts/escrow/escrow, which documents its
// commands, queries and storage) to WebAssembly:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o escrow.wasm .
package main

import (
	"github.com/phalago/phala/contract"
	"github.com/phalago/phala/examples/contracts/escrow/escrow"
)

func init() { contract.Register(escrow.Handlers()) }

func main() {}
