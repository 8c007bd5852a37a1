package gas

import (
	"bytes"
	"context"
	"testing"

	wbin "github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/leb128"
	"github.com/tetratelabs/wabin/wasm"
	"github.com/tetratelabs/wazero"
)

// FuzzInstrument: arbitrary bytes never make Instrument panic (or allocate
// without bound), any module it returns decodes again with wabin, and when
// wazero accepts the input it accepts the instrumented output too.
func FuzzInstrument(f *testing.F) {
	for _, m := range []*wasm.Module{loopModule(), opsModule(), indexModule()} {
		f.Add(encode(m))
	}
	f.Add(append([]byte{}, wasmHeader...))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x0a\x01\x00"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00\x0a\x09\x01\x07\x00\x03\x40\x0c\x00\x0b\x0b"))

	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	f.Cleanup(func() { r.Close(ctx) })

	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		out, err := Instrument(in, DefaultSchedule())
		if !bytes.Equal(in, orig) {
			t.Fatal("Instrument modified its input")
		}
		if err != nil {
			return
		}
		if _, err := wbin.DecodeModule(out, wasm.CoreFeaturesV2); err != nil {
			t.Fatalf("instrumented module does not decode: %v", err)
		}
		if c, err := r.CompileModule(ctx, in); err == nil {
			c.Close(ctx)
			c2, err := r.CompileModule(ctx, out)
			if err != nil {
				t.Fatalf("wazero compiles the input but not the instrumented module: %v", err)
			}
			c2.Close(ctx)
		}
	})
}

// FuzzLEB: the slice decoders accept exactly what wabin's (= wazero's)
// reader-based decoders accept, with the same values and lengths.
func FuzzLEB(f *testing.F) {
	for _, s := range [][]byte{
		{0x00}, {0x7f}, {0x80, 0x01}, {0xff, 0xff, 0xff, 0xff, 0x0f}, {0xff, 0xff, 0xff, 0xff, 0x1f},
		{0x80, 0x80, 0x80, 0x80, 0x78}, {0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, {0x40}, {0x82, 0x80, 0x80, 0x80, 0x00},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		{0x80, 0x80, 0x80, 0x80, 0x80, 0x80}, {},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		{
			v, n, err := readU32(b)
			wv, wn, werr := leb128.DecodeUint32(bytes.NewReader(b))
			if (err == nil) != (werr == nil) || (err == nil && (v != wv || uint64(n) != wn)) {
				t.Fatalf("u32 %x: %d %d %v; wabin %d %d %v", b, v, n, err, wv, wn, werr)
			}
		}
		{
			v, n, err := readS32(b)
			wv, wn, werr := leb128.DecodeInt32(bytes.NewReader(b))
			if (err == nil) != (werr == nil) || (err == nil && (v != wv || uint64(n) != wn)) {
				t.Fatalf("s32 %x: %d %d %v; wabin %d %d %v", b, v, n, err, wv, wn, werr)
			}
		}
		{
			v, n, err := readS64(b)
			wv, wn, werr := leb128.DecodeInt64(bytes.NewReader(b))
			if (err == nil) != (werr == nil) || (err == nil && (v != wv || uint64(n) != wn)) {
				t.Fatalf("s64 %x: %d %d %v; wabin %d %d %v", b, v, n, err, wv, wn, werr)
			}
		}
		{
			v, n, err := readS33(b)
			wv, wn, werr := leb128.DecodeInt33AsInt64(bytes.NewReader(b))
			if (err == nil) != (werr == nil) || (err == nil && (v != wv || uint64(n) != wn)) {
				t.Fatalf("s33 %x: %d %d %v; wabin %d %d %v", b, v, n, err, wv, wn, werr)
			}
		}
		// Encoders round trip.
		if v, _, err := readU32(b); err == nil {
			if got, _, err := readU32(appendU32(nil, v)); err != nil || got != v {
				t.Fatalf("appendU32(%d) round trip: %d %v", v, got, err)
			}
		}
		if v, _, err := readS64(b); err == nil {
			enc := appendS64(nil, v)
			if got, _, err := readS64(enc); err != nil || got != v || !bytes.Equal(enc, leb128.EncodeInt64(v)) {
				t.Fatalf("appendS64(%d) = %x round trip: %d %v", v, enc, got, err)
			}
		}
	})
}
