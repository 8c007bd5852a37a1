// Package enginemetrics exposes a pRuntime engine's counters
// (engine.Stats) to Prometheus. It is the only pRuntime package that
// imports the Prometheus client: the engine counts, this package
// describes. No metric carries a contract, key, caller or input: labels
// are results only (docs/metrics.md lists every metric).
package enginemetrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/phalago/phala/internal/enclave/engine"
)

// Source is what the collector reads: *engine.Engine.
type Source interface {
	Stats() engine.Stats
}

var (
	descSynced     = prometheus.NewDesc("phala_pruntime_synced_height", "Height of the last header pRuntime verified (blocks).", nil, nil)
	descDispatched = prometheus.NewDesc("phala_pruntime_dispatched_height", "Height of the last block pRuntime dispatched (blocks).", nil, nil)
	descBlocks     = prometheus.NewDesc("phala_pruntime_blocks_dispatched_total", "Blocks dispatched since start; rate() gives blocks per second.", nil, nil)
	descMessages   = prometheus.NewDesc("phala_pruntime_messages_dispatched_total", "Queue messages dispatched since start.", nil, nil)
	descContracts  = prometheus.NewDesc("phala_pruntime_contracts_running", "Contracts this worker runs.", nil, nil)
	descCommands   = prometheus.NewDesc("phala_pruntime_commands_total", "Contract commands executed, by result: ok, failed (trap, out of gas, contract error), rejected (does not open with the contract's key, or replayed).", []string{"result"}, nil)
	descQueries    = prometheus.NewDesc("phala_pruntime_queries_total", "Off-chain queries, by result: ok, failed (the contract call failed), refused (before running), busy (no slot in time).", []string{"result"}, nil)
	descLatency    = prometheus.NewDesc("phala_pruntime_query_duration_seconds", "Time pRuntime took to answer an off-chain query (seconds), refused ones included.", nil, nil)
	descGas        = prometheus.NewDesc("phala_pruntime_gas_used_total", "Gas used by contract commands and events since start (gas units).", nil, nil)
	descCkCount    = prometheus.NewDesc("phala_pruntime_checkpoints_total", "Sealed checkpoints written since start.", nil, nil)
	descCkBytes    = prometheus.NewDesc("phala_pruntime_checkpoint_size_bytes", "Bytes sealed by the last checkpoint: the parts it rewrote and its core.", nil, nil)
	descCkSeconds  = prometheus.NewDesc("phala_pruntime_checkpoint_duration_seconds", "Time the last checkpoint took to seal and write (seconds).", nil, nil)
	descCkBytesT   = prometheus.NewDesc("phala_pruntime_checkpoint_sealed_bytes_total", "Bytes sealed by all checkpoints since start.", nil, nil)
	descCkSecondsT = prometheus.NewDesc("phala_pruntime_checkpoint_seconds_total", "Time all checkpoints took since start (seconds).", nil, nil)
)

// Collector reads src's Stats at each scrape.
type Collector struct{ src Source }

// New returns a collector of src (register it on a *prometheus.Registry).
func New(src Source) *Collector { return &Collector{src: src} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSynced, descDispatched, descBlocks, descMessages, descContracts, descCommands, descQueries,
		descLatency, descGas, descCkCount, descCkBytes, descCkSeconds, descCkBytesT, descCkSecondsT} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Stats()
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	gauge(descSynced, float64(s.Synced))
	gauge(descDispatched, float64(s.Dispatched))
	counter(descBlocks, float64(s.BlocksDispatched))
	counter(descMessages, float64(s.MessagesDispatched))
	gauge(descContracts, float64(s.ContractsRunning))
	for _, r := range []string{engine.ResultOK, engine.ResultFailed, engine.ResultRejected} {
		counter(descCommands, float64(s.Commands[r]), r)
	}
	for _, r := range []string{engine.ResultOK, engine.ResultFailed, engine.ResultRefused, engine.ResultBusy} {
		counter(descQueries, float64(s.Queries[r]), r)
	}
	buckets := make(map[float64]uint64, len(engine.QueryLatencyBuckets))
	var cum uint64
	for i, b := range engine.QueryLatencyBuckets {
		cum += s.QueryLatencyCounts[i]
		buckets[b] = cum
	}
	ch <- prometheus.MustNewConstHistogram(descLatency, s.QueryCount, s.QuerySeconds, buckets)
	counter(descGas, float64(s.GasUsed))
	counter(descCkCount, float64(s.Checkpoints))
	gauge(descCkBytes, float64(s.CheckpointBytes))
	gauge(descCkSeconds, s.CheckpointSeconds)
	counter(descCkBytesT, float64(s.CheckpointBytesTotal))
	counter(descCkSecondsT, s.CheckpointSecondsSum)
}
