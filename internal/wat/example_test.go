package wat_test

import (
	"context"
	"fmt"

	"github.com/tetratelabs/wazero"

	"github.com/phalago/phala/internal/wat"
)

func ExampleCompile() {
	bin, err := wat.Compile(`(module
  (func (export "add") (param $a i32) (param $b i32) (result i32)
    local.get $a
    local.get $b
    i32.add))`)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	mod, err := r.Instantiate(ctx, bin)
	if err != nil {
		panic(err)
	}
	res, err := mod.ExportedFunction("add").Call(ctx, 40, 2)
	if err != nil {
		panic(err)
	}
	fmt.Println(uint32(res[0]))

	_, err = wat.Compile("(module (func i32.cnst 1))")
	fmt.Println(err)
	// Output:
	// 42
	// wat: 1:15: unknown instruction "i32.cnst"
}
