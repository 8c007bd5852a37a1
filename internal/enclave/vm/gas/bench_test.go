package gas

import (
	"context"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// benchN is the loop count of the summing loop per call.
const benchN = 1_000_000

// BenchmarkInstrumentedLoop runs sum(1..benchN) on the compiler engine,
// uninstrumented ("plain") and instrumented ("metered"). The metered
// sub-benchmark also times a plain call next to each metered call and reports
// the ratio as "slowdown".
func BenchmarkInstrumentedLoop(b *testing.B) {
	ctx := context.Background()
	plain := encode(loopModule())
	metered := instrument(b, plain)
	pm := instance(b, wazero.NewRuntimeConfigCompiler(), plain)
	mm := instance(b, wazero.NewRuntimeConfigCompiler(), metered)
	plainSum, meteredSum := pm.ExportedFunction("sum"), mm.ExportedFunction("sum")
	want := uint64(benchN) * (benchN + 1) / 2

	check := func(f api.Function) {
		res, err := f.Call(ctx, benchN)
		if err != nil || res[0] != want {
			b.Fatalf("sum = %v, %v", res, err)
		}
	}
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			check(plainSum)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchN, "ns/iter")
	})
	b.Run("metered", func(b *testing.B) {
		var plainTime time.Duration
		for b.Loop() {
			b.StopTimer()
			start := time.Now()
			check(plainSum)
			plainTime += time.Since(start)
			SetRemaining(mm, MaxGas)
			b.StartTimer()
			check(meteredSum)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchN, "ns/iter")
		b.ReportMetric(float64(b.Elapsed())/float64(plainTime), "slowdown")
		if left, _ := Remaining(mm); MaxGas-left != sumGas(benchN) {
			b.Fatalf("gas used %d, want %d", MaxGas-left, sumGas(benchN))
		}
	})
}

// BenchmarkInstrumentGoModule times Instrument on a Go wasip1 reactor
// (about 1.9 MB).
func BenchmarkInstrumentGoModule(b *testing.B) {
	bin := buildGoReactor(b, b.TempDir())
	b.SetBytes(int64(len(bin)))
	var out []byte
	for b.Loop() {
		var err error
		if out, err = Instrument(bin, DefaultSchedule()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(out))/float64(len(bin)), "size-ratio")
}
