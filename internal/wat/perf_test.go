package wat

import (
	"strings"
	"testing"
)

// TestLargeInputs compiles big generated modules; it guards against
// accidental quadratic behaviour (e.g. column computation on long lines).
func TestLargeInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("large inputs")
	}
	for _, src := range []string{
		"(module (func " + strings.Repeat("nop ", 200000) + "))",
		"(module " + strings.Repeat("(func (param i32 i64 f32) (result i32) i32.const 0)", 20000) + ")",
		"(module (func " + strings.Repeat("block ", 50000) + strings.Repeat("br 0 end ", 50000) + "))",
		"(module (func " + strings.Repeat("block $a ", 20000) + strings.Repeat("br $a ", 20000) + strings.Repeat("end ", 20000) + "))",
	} {
		if _, err := Compile(src); err != nil {
			t.Fatal(err)
		}
	}
}
