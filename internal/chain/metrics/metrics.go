// Package metrics holds the chain application's Prometheus metrics
// (phala_app_*): what the ABCI application counts as it executes blocks.
// CometBFT's own metrics (cometbft_*: consensus, p2p, mempool) come from
// CometBFT; internal/node serves both. Labels are bounded: a call kind
// (the api's registered kinds, or "invalid" for bytes that do not decode)
// and a result code (api.Code). docs/metrics.md lists every metric.
package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// App is the application's metrics. A nil *App counts nothing (tests and
// nodes without --metrics).
type App struct {
	txs           *prometheus.CounterVec
	blockMessages prometheus.Histogram
	messages      prometheus.Counter
	height        prometheus.Gauge
}

// CallInvalid is the call label of a transaction that does not decode.
const CallInvalid = "invalid"

// NewApp registers the application's metrics on reg; workers, if not
// nil, is read at each scrape for phala_app_workers_registered.
func NewApp(reg prometheus.Registerer, workers func() int) *App {
	a := &App{
		txs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phala_app_txs_total",
			Help: "Transactions executed in blocks, by call kind (transfer, push_message, ...; invalid: does not decode) and result code (0: ok; see api.Code).",
		}, []string{"call", "code"}),
		blockMessages: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "phala_app_block_queue_messages",
			Help:    "Message queue messages per committed block (messages).",
			Buckets: []float64{0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000},
		}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "phala_app_queue_messages_total",
			Help: "Message queue messages committed since start (messages).",
		}),
		height: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "phala_app_height",
			Help: "Height of the last block the application committed (blocks).",
		}),
	}
	reg.MustRegister(a.txs, a.blockMessages, a.messages, a.height)
	if workers != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "phala_app_workers_registered",
			Help: "Worker records on chain at the last committed block (expired ones included).",
		}, func() float64 { return float64(workers()) }))
	}
	return a
}

// Tx counts a transaction of call kind call that ended with code.
func (a *App) Tx(call string, code uint32) {
	if a == nil {
		return
	}
	a.txs.WithLabelValues(call, strconv.FormatUint(uint64(code), 10)).Inc()
}

// Committed records a committed block: its height and queue messages.
func (a *App) Committed(height int64, messages int) {
	if a == nil {
		return
	}
	a.height.Set(float64(height))
	a.blockMessages.Observe(float64(messages))
	a.messages.Add(float64(messages))
}
