package relayer

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names of pherry (docs/metrics.md describes each).
var (
	descNodeUp        = prometheus.NewDesc("phala_pherry_node_up", "1 if the node answered pherry's last request within --node-timeout, else 0.", nil, nil)
	descPRuntimeUp    = prometheus.NewDesc("phala_pherry_pruntime_up", "1 if pRuntime answered pherry's last request (a refusal is an answer), else 0.", nil, nil)
	descStalled       = prometheus.NewDesc("phala_pherry_chain_stalled", "1 while the node answers but its tip has not moved for --stall-after, else 0.", nil, nil)
	descBehind        = prometheus.NewDesc("phala_pherry_pruntime_behind", "1 while pRuntime has stayed more than --max-lag blocks behind the tip for --stall-after, else 0.", nil, nil)
	descTip           = prometheus.NewDesc("phala_pherry_chain_tip_height", "The node's latest block height (blocks).", nil, nil)
	descTipAge        = prometheus.NewDesc("phala_pherry_chain_tip_age_seconds", "Seconds since the node's tip last moved, as pherry saw it.", nil, nil)
	descSynced        = prometheus.NewDesc("phala_pherry_pruntime_synced_height", "pRuntime's verified header height, as last reported (blocks).", nil, nil)
	descDispatched    = prometheus.NewDesc("phala_pherry_pruntime_dispatched_height", "pRuntime's dispatched block height, as last reported (blocks).", nil, nil)
	descLag           = prometheus.NewDesc("phala_pherry_lag_blocks", "Blocks pRuntime has still to dispatch: tip - 1 - dispatched (the tip's block waits for the next header).", nil, nil)
	descEgress        = prometheus.NewDesc("phala_pherry_egress_txs_total", "push_message transactions by outcome: submitted (admitted to the mempool), committed, already_accepted, skipped (sequence already on chain), refused, timed_out.", []string{"outcome"}, nil)
	descRetries       = prometheus.NewDesc("phala_pherry_submission_retries_total", "Transactions pherry will submit again: refused or not committed in time, by kind (egress, registration).", []string{"kind"}, nil)
	descRegistrations = prometheus.NewDesc("phala_pherry_registrations_total", "register_worker transactions committed successfully.", nil, nil)
	descRoundErrors   = prometheus.NewDesc("phala_pherry_round_errors_total", "Relay rounds that failed and were retried after a backoff.", nil, nil)
)

// Collector returns the relayer's metrics for a *prometheus.Registry
// (reg.MustRegister(r.Collector())). Each scrape reads a snapshot of
// Stats and of the health conditions; nothing is stored twice.
func (r *Relayer) Collector() prometheus.Collector { return collector{r} }

type collector struct{ r *Relayer }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodeUp, descPRuntimeUp, descStalled, descBehind, descTip, descTipAge, descSynced, descDispatched,
		descLag, descEgress, descRetries, descRegistrations, descRoundErrors} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	r := c.r
	st := r.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descNodeUp, b2f(r.health.up(condNodeDown)))
	gauge(descPRuntimeUp, b2f(r.health.up(condPRuntimeDown)))
	gauge(descStalled, b2f(r.health.isActive(condChainStalled)))
	gauge(descBehind, b2f(r.health.reported(condBehind)))
	gauge(descTip, float64(st.Tip))
	if !st.TipChanged.IsZero() {
		gauge(descTipAge, time.Since(st.TipChanged).Seconds())
	}
	gauge(descSynced, float64(st.Synced))
	gauge(descDispatched, float64(st.Dispatched))
	gauge(descLag, float64(max(st.Tip-1-st.Dispatched, 0)))
	counter(descEgress, st.EgressSubmitted, "submitted")
	counter(descEgress, st.EgressCommitted, "committed")
	counter(descEgress, st.EgressAlreadyAccepted, "already_accepted")
	counter(descEgress, st.EgressSkipped, "skipped")
	counter(descEgress, st.EgressRefused, "refused")
	counter(descEgress, st.EgressTimedOut, "timed_out")
	counter(descRetries, st.EgressRefused+st.EgressTimedOut, "egress")
	counter(descRetries, st.RegistrationRefused, "registration")
	counter(descRegistrations, st.Registrations)
	counter(descRoundErrors, st.Errors)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
