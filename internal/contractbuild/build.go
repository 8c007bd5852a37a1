// Package contractbuild compiles a Go contract directory to WebAssembly
// (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared) with the Go toolchain.
package contractbuild

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Build compiles the contract in dir and returns the module's bytes.
func Build(dir string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "phala-contract-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "contract.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build contract %s (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared): %v\n%s", dir, err, b)
	}
	return os.ReadFile(out)
}
