package wat

import (
	"errors"
	"testing"

	"github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/wasm"
)

// FuzzCompile checks that arbitrary input never panics (compile is called
// without Compile's recover), that failures are positioned *Errors, and that
// successful output is a structurally well-formed binary module.
func FuzzCompile(f *testing.F) {
	for _, tc := range samples {
		f.Add(tc.src)
	}
	for _, tc := range errCases {
		f.Add(tc.src)
	}
	f.Fuzz(func(t *testing.T, src string) {
		bin, err := compile(src)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Line < 1 || e.Col < 1 {
				t.Fatalf("bad error %T %v", err, err)
			}
			return
		}
		if _, err := binary.DecodeModule(bin, wasm.CoreFeaturesV2); err != nil {
			t.Fatalf("output does not decode: %v\nsource: %q", err, src)
		}
	})
}
