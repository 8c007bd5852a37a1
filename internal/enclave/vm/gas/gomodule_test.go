package gas

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

const reactorSource = `package main

func main() {}

//go:wasmexport add
func add(a, b int32) int32 { return a + b }

// work allocates, fills and sums a slice and a map: it runs the Go runtime's
// allocator (memory.grow, memory.fill, memory.copy) and loops.
//
//go:wasmexport work
func work(n int32) int64 {
	s := make([]int64, n)
	m := make(map[int64]int64)
	for i := range s {
		s[i] = int64(i) * int64(i)
		m[int64(i)%17] += s[i]
	}
	var sum int64
	for _, v := range s {
		sum += v
	}
	for k, v := range m {
		sum += k * v
	}
	return sum
}
`

// buildGoReactor compiles reactorSource with GOOS=wasip1 GOARCH=wasm
// -buildmode=c-shared in dir (no network needed: the standard library only).
func buildGoReactor(tb testing.TB, dir string) []byte {
	tb.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		tb.Skipf("go command not found: %v", err)
	}
	for name, content := range map[string]string{
		"go.mod":  "module reactor\n\ngo 1.26\n",
		"main.go": reactorSource,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	out := filepath.Join(dir, "reactor.wasm")
	cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local")
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, msg)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	return bin
}

// reactor instantiates a Go wasip1 reactor with WASI (wazero's deterministic
// defaults) running _initialize as a start function.
func reactor(tb testing.TB, config wazero.RuntimeConfig, bin []byte) api.Module {
	tb.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, config)
	tb.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	mod, err := r.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().WithStartFunctions("_initialize"))
	if err != nil {
		tb.Fatalf("instantiate: %v", err)
	}
	return mod
}

func TestGoReactor(t *testing.T) {
	plain := buildGoReactor(t, t.TempDir())
	metered := instrument(t, plain)
	t.Logf("Go reactor: %d bytes, instrumented %d bytes (+%.1f%%)",
		len(plain), len(metered), 100*float64(len(metered)-len(plain))/float64(len(plain)))

	pm := reactor(t, wazero.NewRuntimeConfigCompiler(), plain)
	wantWork, err := pm.ExportedFunction("work").Call(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}

	type observation struct {
		initGas, addGas, add2Gas, workGas uint64
	}
	runs := []struct {
		name   string
		config func() wazero.RuntimeConfig
	}{
		{"compiler#1", wazero.NewRuntimeConfigCompiler},
		{"compiler#2", wazero.NewRuntimeConfigCompiler},
	}
	if !testing.Short() {
		runs = append(runs, struct {
			name   string
			config func() wazero.RuntimeConfig
		}{"interpreter", wazero.NewRuntimeConfigInterpreter})
	}
	var first *observation
	for _, run := range runs {
		mod := reactor(t, run.config(), metered)
		left, ok := Remaining(mod)
		if !ok || left > MaxGas {
			t.Fatalf("%s: remaining after _initialize = %d, %v", run.name, left, ok)
		}
		var o observation
		o.initGas = DefaultSchedule().InitialGas - left

		res, used, err := meteredCall(mod, 1_000_000_000, "add", 2, 3)
		if err != nil || uint32(res[0]) != 5 {
			t.Fatalf("%s: add(2, 3) = %v, %v", run.name, res, err)
		}
		o.addGas = used
		res, used, err = meteredCall(mod, 1_000_000_000, "add", 40, 2)
		if err != nil || uint32(res[0]) != 42 {
			t.Fatalf("%s: add(40, 2) = %v, %v", run.name, res, err)
		}
		o.add2Gas = used
		res, used, err = meteredCall(mod, 1_000_000_000, "work", 1000)
		if err != nil || res[0] != wantWork[0] {
			t.Fatalf("%s: work(1000) = %v, %v; want %d", run.name, res, err, wantWork[0])
		}
		o.workGas = used
		if o.initGas == 0 || o.addGas == 0 || o.workGas <= o.addGas {
			t.Fatalf("%s: implausible gas %+v", run.name, o)
		}
		t.Logf("%s: gas used by _initialize %d, add %d then %d, work(1000) %d",
			run.name, o.initGas, o.addGas, o.add2Gas, o.workGas)
		if first == nil {
			first = &o
		} else if o != *first {
			t.Fatalf("%s: gas %+v differs from the first run %+v", run.name, o, *first)
		}
	}

	// Too little gas: work traps out of gas, deterministically.
	for i := 0; i < 2; i++ {
		mod := reactor(t, wazero.NewRuntimeConfigCompiler(), metered)
		if _, _, err := meteredCall(mod, first.workGas/2, "work", 1000); err == nil || !IsExhausted(mod) {
			t.Fatalf("work with half its gas: %v, exhausted %v", err, IsExhausted(mod))
		}
	}
}
