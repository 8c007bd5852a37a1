package vm

import (
	"context"
	"os"
	"testing"

	"github.com/phalago/phala/internal/wat"
)

const minimal = `(module
  (memory (export "memory") 1)
  (func (export "phala_alloc") (param i32) (result i32) i32.const 64)
  (func (export "handle_command") (param i32 i32) (result i32) i32.const 0)
  (func (export "handle_query") (param i32 i32) (result i32) i32.const 0))`

// The compilation cache on disk is filled by one VM and used by the next.
func TestCompilationCache(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		v, err := New(ctx, Config{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Compile(ctx, wat.MustCompile(minimal)); err != nil {
			t.Fatal(err)
		}
		v.Close(ctx)
		entries, _ := os.ReadDir(dir)
		if len(entries) == 0 {
			t.Fatalf("run %d: cache directory is empty", i)
		}
	}
}
