package metrics

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Samples are scraped values by series: the metric name, then its labels
// in name order, as in `phala_app_txs_total{call="transfer",code="0"}`.
// A histogram gives NAME_count and NAME_sum; a summary the same.
type Samples map[string]float64

// Scrape reads a /metrics page (Prometheus text format) within 10 s.
// Errors: the request fails, does not answer 200, or does not parse.
func Scrape(ctx context.Context, url string) (Samples, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, res.Status)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	out := Samples{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			key := name + labels(m.GetLabel())
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Untyped != nil:
				out[key] = m.GetUntyped().GetValue()
			case m.Histogram != nil:
				out[name+"_count"+labels(m.GetLabel())] = float64(m.GetHistogram().GetSampleCount())
				out[name+"_sum"+labels(m.GetLabel())] = m.GetHistogram().GetSampleSum()
			case m.Summary != nil:
				out[name+"_count"+labels(m.GetLabel())] = float64(m.GetSummary().GetSampleCount())
				out[name+"_sum"+labels(m.GetLabel())] = m.GetSummary().GetSampleSum()
			}
		}
	}
	return out, nil
}

func labels(ls []*dto.LabelPair) string {
	if len(ls) == 0 {
		return ""
	}
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// Sum adds the values of every series of metric name (any labels).
func (s Samples) Sum(name string) float64 {
	var t float64
	for k, v := range s {
		if k == name || strings.HasPrefix(k, name+"{") {
			t += v
		}
	}
	return t
}

// Has reports whether a series of metric name (any labels) was scraped.
func (s Samples) Has(name string) bool {
	for k := range s {
		if k == name || strings.HasPrefix(k, name+"{") {
			return true
		}
	}
	return false
}
