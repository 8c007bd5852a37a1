package testnet_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/phalago/phala/internal/loadgen"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/testnet"
)

// BenchmarkCommittedTransfers runs the load generator against an in-process
// single validator with the default block settings of phala-node init
// (timeout_commit 500ms, 8 MiB blocks). Each iteration is one run of 20,000
// transfers; the metric is committed transfers per second of block time.
func BenchmarkCommittedTransfers(b *testing.B) {
	net := testnet.New(b, testnet.Options{TimeoutCommit: node.DefaultCometConfig("").Consensus.TimeoutCommit})
	var tps []float64
	for i := 0; i < b.N; i++ {
		cfg := loadgen.DefaultConfig(net.RPC(0))
		cfg.Log = slog.New(slog.DiscardHandler)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		res, err := loadgen.Run(ctx, cfg)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		b.Log(res)
		tps = append(tps, res.TPS)
	}
	b.ReportMetric(median(tps), "transfers/s")
}

func median(x []float64) float64 {
	s := append([]float64(nil), x...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}
