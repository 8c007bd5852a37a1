package gas

import (
	"bytes"
	"context"
	"slices"
	"testing"

	wbin "github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/wasm"
	"github.com/tetratelabs/wazero"
)

// stateModule has one mutable global (index 1, after an immutable one), a
// table, a passive data segment and a function whose body is body.
func stateModule(body []byte) *wasm.Module {
	max := uint32(4)
	return &wasm.Module{
		TypeSection:     []*wasm.FunctionType{{}},
		FunctionSection: []wasm.Index{0},
		TableSection:    []*wasm.Table{{Min: 2, Max: &max, Type: wasm.RefTypeFuncref}},
		MemorySection:   &wasm.Memory{Min: 1, Max: 2, IsMaxEncoded: true},
		GlobalSection: []*wasm.Global{
			{Type: &wasm.GlobalType{ValType: i32}, Init: constI32(7)},
			{Type: &wasm.GlobalType{ValType: i32, Mutable: true}, Init: constI32(0)},
		},
		CodeSection:   []*wasm.Code{{Body: body}},
		ExportSection: []*wasm.Export{{Type: wasm.ExternTypeFunc, Name: "f", Index: 0}},
		DataSection:   []*wasm.DataSegment{{Init: []byte("abc")}}, // passive
	}
}

// withDataCount inserts a data count section of 1 before the code section
// (wabin does not encode one; memory.init and data.drop need it).
func withDataCount(t testing.TB, bin []byte) []byte {
	t.Helper()
	sections, err := splitSections(bin)
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte{}, wasmHeader...)
	for _, sec := range sections {
		if sec.id == secCode {
			out = append(out, secDataCount, 1, 1)
		}
		out = append(out, sec.raw...)
	}
	return out
}

// ExportState exports the mutable globals of a module whose state is its
// memory and globals, and refuses (returns unchanged) one that changes
// tables or drops segments.
func TestExportState(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	for _, tc := range []struct {
		name       string
		body       []byte
		restorable bool
	}{
		{"plain", code(i32c(1), gset(1), end()), true},
		{"memory ops", code(i32c(0), i32c(0), i32c(3), op(opMiscPrefix, 8, 0, 0), end()), true},
		{"table.set", code(i32c(0), op(opRefNull, wasm.RefTypeFuncref), op(opTableSet, 0), end()), false},
		{"table.grow", code(op(opRefNull, wasm.RefTypeFuncref), i32c(1), op(opMiscPrefix, 15, 0), op(opDrop), end()), false},
		{"table.fill", code(i32c(0), op(opRefNull, wasm.RefTypeFuncref), i32c(1), op(opMiscPrefix, 17, 0), end()), false},
		{"data.drop", code(op(opMiscPrefix, 9, 0), end()), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := withDataCount(t, encode(stateModule(tc.body)))
			if _, err := r.CompileModule(ctx, in); err != nil {
				t.Fatalf("test module does not compile: %v", err)
			}
			out, globals, restorable, err := ExportState(in)
			if err != nil {
				t.Fatal(err)
			}
			if restorable != tc.restorable {
				t.Fatalf("restorable = %v, want %v", restorable, tc.restorable)
			}
			if !restorable {
				if !bytes.Equal(out, in) || globals != nil {
					t.Fatal("a module that is not restorable was changed")
				}
				return
			}
			if !slices.Equal(globals, []string{StateGlobalPrefix + "1"}) {
				t.Fatalf("globals %q", globals)
			}
			cm, err := r.CompileModule(ctx, out)
			if err != nil {
				t.Fatalf("output does not compile: %v", err)
			}
			defer cm.Close(ctx)
			mod, err := r.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName(""))
			if err != nil {
				t.Fatal(err)
			}
			defer mod.Close(ctx)
			if _, err := mod.ExportedFunction("f").Call(ctx); err != nil {
				t.Fatal(err)
			}
			if g := mod.ExportedGlobal(globals[0]); g == nil || mod.ExportedFunction("f") == nil {
				t.Fatal("exports missing")
			}
		})
	}
}

// FuzzExportState: arbitrary bytes never make ExportState panic or change
// its input; the output decodes with wabin and compiles with wazero when
// the input does.
func FuzzExportState(f *testing.F) {
	for _, m := range []*wasm.Module{loopModule(), opsModule(), indexModule()} {
		f.Add(encode(m))
	}
	f.Add(withDataCount(f, encode(stateModule(code(i32c(1), gset(1), end())))))
	f.Add(withDataCount(f, encode(stateModule(code(op(opMiscPrefix, 9, 0), end())))))
	f.Add(append([]byte{}, wasmHeader...))
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	f.Cleanup(func() { r.Close(ctx) })
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		out, _, _, err := ExportState(in)
		if !bytes.Equal(in, orig) {
			t.Fatal("ExportState modified its input")
		}
		if err != nil {
			return
		}
		if _, err := wbin.DecodeModule(in, wasm.CoreFeaturesV2); err == nil {
			if _, err := wbin.DecodeModule(out, wasm.CoreFeaturesV2); err != nil {
				t.Fatalf("output does not decode: %v", err)
			}
		}
		if c, err := r.CompileModule(ctx, in); err == nil {
			c.Close(ctx)
			c2, err := r.CompileModule(ctx, out)
			if err != nil {
				t.Fatalf("wazero compiles the input but not the output: %v", err)
			}
			c2.Close(ctx)
		}
	})
}
