package engine

import (
	"errors"
	"sync/atomic"
	"time"
)

// QueryLatencyBuckets are the upper bounds (seconds) of Stats'
// query latency histogram.
var QueryLatencyBuckets = [...]float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Command and query results counted by Stats. They say how a call ended,
// never what it carried.
const (
	ResultOK       = "ok"       // a command ran to completion; a query was answered without error
	ResultFailed   = "failed"   // the contract trapped, ran out of gas or returned an error (its sender learns which)
	ResultRejected = "rejected" // a command that did not open with the contract's key, or a replayed one
	ResultRefused  = "refused"  // a query refused before running (not this worker's contract, bad signature, replay, retired)
	ResultBusy     = "busy"     // a query that found no slot in time
)

// Stats are a pRuntime's running counters, for monitoring. They hold
// counts, heights, sizes and durations only: no contract, key or caller
// (internal/enclave/enginemetrics exposes them to Prometheus).
type Stats struct {
	Synced             int64  // verified header height
	Dispatched         int64  // dispatched block height
	BlocksDispatched   uint64 // blocks dispatched since start
	MessagesDispatched uint64 // queue messages dispatched since start
	ContractsRunning   int    // contracts this worker runs

	Commands map[string]uint64 // contract commands by result (ResultOK, ResultFailed, ResultRejected)
	Queries  map[string]uint64 // off-chain queries by result (ResultOK, ResultFailed, ResultRefused, ResultBusy)
	GasUsed  uint64            // gas used by contract commands and events since start

	// QueryLatency: Counts[i] is the number of queries that took at most
	// QueryLatencyBuckets[i] seconds (not cumulative; the rest are in
	// Count only).
	QueryLatencyCounts [len(QueryLatencyBuckets)]uint64
	QueryCount         uint64
	QuerySeconds       float64 // sum of the queries' durations

	Checkpoints          uint64  // sealed checkpoints written since start
	CheckpointBytes      int64   // bytes sealed by the last checkpoint (the parts it rewrote and its core)
	CheckpointSeconds    float64 // time the last checkpoint took
	CheckpointBytesTotal uint64  // bytes sealed by all checkpoints since start
	CheckpointSecondsSum float64 // time all checkpoints took
}

// counters are Stats' atomics, updated off and under the engine's lock.
type counters struct {
	synced, dispatched        atomic.Int64
	blocks, messages          atomic.Uint64
	running                   atomic.Int64
	cmdOK, cmdFailed, cmdRej  atomic.Uint64
	qOK, qFailed, qRef, qBusy atomic.Uint64
	gas                       atomic.Uint64
	qBuckets                  [len(QueryLatencyBuckets)]atomic.Uint64
	qCount, qNanos            atomic.Uint64
	ckCount, ckBytesTotal     atomic.Uint64
	ckNanosTotal              atomic.Uint64
	ckBytes, ckNanos          atomic.Int64
}

// Stats returns the engine's counters. It does not take the engine's
// lock: a scrape never waits for a block being dispatched.
func (e *Engine) Stats() Stats {
	c := &e.cnt
	s := Stats{
		Synced: c.synced.Load(), Dispatched: c.dispatched.Load(),
		BlocksDispatched: c.blocks.Load(), MessagesDispatched: c.messages.Load(), ContractsRunning: int(c.running.Load()),
		Commands:   map[string]uint64{ResultOK: c.cmdOK.Load(), ResultFailed: c.cmdFailed.Load(), ResultRejected: c.cmdRej.Load()},
		Queries:    map[string]uint64{ResultOK: c.qOK.Load(), ResultFailed: c.qFailed.Load(), ResultRefused: c.qRef.Load(), ResultBusy: c.qBusy.Load()},
		GasUsed:    c.gas.Load(),
		QueryCount: c.qCount.Load(), QuerySeconds: time.Duration(c.qNanos.Load()).Seconds(),
		Checkpoints: c.ckCount.Load(), CheckpointBytes: c.ckBytes.Load(), CheckpointSeconds: time.Duration(c.ckNanos.Load()).Seconds(),
		CheckpointBytesTotal: c.ckBytesTotal.Load(), CheckpointSecondsSum: time.Duration(c.ckNanosTotal.Load()).Seconds(),
	}
	for i := range c.qBuckets {
		s.QueryLatencyCounts[i] = c.qBuckets[i].Load()
	}
	return s
}

// noteHeights records the heights and running contracts (under mu).
func (e *Engine) noteHeights() {
	e.cnt.synced.Store(e.st.headerHeight)
	e.cnt.dispatched.Store(e.st.dispatched)
	e.cnt.running.Store(int64(len(e.running)))
}

// noteCommand counts a command's result and gas.
func (e *Engine) noteCommand(result string, gas uint64) {
	switch result {
	case ResultOK:
		e.cnt.cmdOK.Add(1)
	case ResultFailed:
		e.cnt.cmdFailed.Add(1)
	default:
		e.cnt.cmdRej.Add(1)
	}
	e.cnt.gas.Add(gas)
}

// noteQuery counts a query: its result from what Query returns (err) and
// whether the contract call failed (callFailed), and its duration.
func (e *Engine) noteQuery(d time.Duration, err error, callFailed bool) {
	switch {
	case errors.Is(err, ErrBusy):
		e.cnt.qBusy.Add(1)
	case err != nil:
		e.cnt.qRef.Add(1)
	case callFailed:
		e.cnt.qFailed.Add(1)
	default:
		e.cnt.qOK.Add(1)
	}
	secs := d.Seconds()
	for i, b := range QueryLatencyBuckets {
		if secs <= b {
			e.cnt.qBuckets[i].Add(1)
			break
		}
	}
	e.cnt.qCount.Add(1)
	e.cnt.qNanos.Add(uint64(d))
}

// noteCheckpoint records a checkpoint's sealed bytes and duration.
func (e *Engine) noteCheckpoint(bytes int, d time.Duration) {
	e.cnt.ckCount.Add(1)
	e.cnt.ckBytes.Store(int64(bytes))
	e.cnt.ckNanos.Store(int64(d))
	e.cnt.ckBytesTotal.Add(uint64(bytes))
	e.cnt.ckNanosTotal.Add(uint64(d))
}
