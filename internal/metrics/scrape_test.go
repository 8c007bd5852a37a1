package metrics_test

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/engine"
	"github.com/phalago/phala/internal/enclave/enginemetrics"
	"github.com/phalago/phala/internal/enclave/httpapi"
	"github.com/phalago/phala/internal/enclave/platform"
	"github.com/phalago/phala/internal/metrics"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/relayer"
	"github.com/phalago/phala/internal/testnet"
)

// TestScrapeEveryComponent starts a real node, a pRuntime and its pherry
// in-process, each with its metrics served over HTTP, makes the chain do
// some work (a transfer, a queue message, the worker's registration) and
// checks that the documented metrics exist and move.
func TestScrapeEveryComponent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := []byte("pruntime under the metrics test")
	m := sha256.Sum256(code)
	net := testnet.New(t, testnet.Options{Genesis: node.DevGenesisState(m[:]), Metrics: true})
	nodeSrv, err := metrics.Listen("127.0.0.1:0", net.Node(0).Gatherer(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nodeSrv.Close() })

	// pRuntime.
	dir := t.TempDir()
	log := testnet.TestLogger(t, slog.LevelWarn)
	doc, err := cmttypes.GenesisDocFromFile(net.Homes[0] + "/config/genesis.json")
	if err != nil {
		t.Fatal(err)
	}
	plat, err := platform.NewSim(dir, code, log)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Config{DataDir: dir, Genesis: doc, Endpoint: "http://127.0.0.1:1", Platform: plat, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	ctl := httptest.NewServer(httpapi.ControlHandler(e, log, httpapi.ControlOptions{}))
	t.Cleanup(ctl.Close)
	prReg := metrics.NewRegistry()
	prReg.MustRegister(enginemetrics.New(e))
	prSrv, err := metrics.Listen("127.0.0.1:0", prReg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prSrv.Close() })

	// pherry.
	cfg := relayer.DefaultConfig()
	cfg.Node, cfg.PRuntime, cfg.Operator = net.RPC(0), ctl.URL, crypto.MustKeyPairFromURI("//Charlie")
	cfg.PollInterval = 20 * time.Millisecond
	cfg.Log = testnet.TestLogger(t, slog.LevelInfo)
	r, err := relayer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	phReg := metrics.NewRegistry()
	phReg.MustRegister(r.Collector())
	phSrv, err := metrics.Listen("127.0.0.1:0", phReg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { phSrv.Close() })
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	t.Cleanup(func() { rcancel(); <-done })

	scrape := func(url string) metrics.Samples {
		t.Helper()
		s, err := metrics.Scrape(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := scrape(nodeSrv.URL())
	prBefore := scrape(prSrv.URL())

	// Work: a transfer and a queue message.
	c := net.Client(0)
	s := c.NewSigner(crypto.MustKeyPairFromURI("//Alice"))
	if _, err := s.Submit(ctx, &api.Transfer{To: crypto.MustKeyPairFromURI("//Bob").Public(), Amount: api.Unit}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Submit(ctx, &api.PostMessage{Topic: "app/test", Payload: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	testnet.WaitFor(t, 60*time.Second, "pRuntime dispatches the message and the worker registers", func() (bool, error) {
		return e.Info().Dispatched >= res.Height && r.Stats().Registrations == 1, nil
	})
	net.WaitHeight(net.Height(0)+2, 20*time.Second) // the registration's block is committed and counted

	type check struct {
		series string
		ok     func(v, before float64) bool
	}
	moved := func(v, b float64) bool { return v > b }
	positive := func(v, _ float64) bool { return v > 0 }
	exists := func(float64, float64) bool { return true }
	one := func(v, _ float64) bool { return v == 1 }
	for _, tc := range []struct {
		name   string
		url    string
		before metrics.Samples
		checks []check
	}{
		{"phala-node", nodeSrv.URL(), before, []check{
			{`phala_app_txs_total{call="transfer",code="0"}`, moved},
			{`phala_app_txs_total{call="post_message",code="0"}`, moved},
			{`phala_app_txs_total{call="register_worker",code="0"}`, moved},
			{"phala_app_height", moved},
			{"phala_app_queue_messages_total", moved},
			{"phala_app_block_queue_messages_count", moved},
			{"phala_app_workers_registered", one},
			{"phala_node_mempool_txs", exists},
			{"cometbft_consensus_height", positive},
			{"cometbft_mempool_size", exists},
		}},
		{"pruntime", prSrv.URL(), prBefore, []check{
			{"phala_pruntime_synced_height", moved},
			{"phala_pruntime_dispatched_height", moved},
			{"phala_pruntime_blocks_dispatched_total", moved},
			{"phala_pruntime_messages_dispatched_total", moved},
			{"phala_pruntime_checkpoints_total", moved},
			{"phala_pruntime_checkpoint_size_bytes", positive},
			{"phala_pruntime_checkpoint_duration_seconds", positive},
			{"phala_pruntime_contracts_running", exists},
			{`phala_pruntime_commands_total{result="ok"}`, exists},
			{`phala_pruntime_queries_total{result="ok"}`, exists},
			{"phala_pruntime_query_duration_seconds_count", exists},
			{"phala_pruntime_gas_used_total", exists},
		}},
		{"pherry", phSrv.URL(), metrics.Samples{}, []check{
			{"phala_pherry_node_up", one},
			{"phala_pherry_pruntime_up", one},
			{"phala_pherry_chain_stalled", exists},
			{"phala_pherry_pruntime_behind", exists},
			{"phala_pherry_chain_tip_height", positive},
			{"phala_pherry_pruntime_dispatched_height", positive},
			{"phala_pherry_lag_blocks", exists},
			{"phala_pherry_registrations_total", one},
			{`phala_pherry_submission_retries_total{kind="egress"}`, exists},
			{`phala_pherry_egress_txs_total{outcome="submitted"}`, exists},
			{"phala_pherry_round_errors_total", exists},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := scrape(tc.url)
			for _, ck := range tc.checks {
				v, ok := s[ck.series]
				if !ok && !strings.Contains(ck.series, "{") && s.Has(ck.series) {
					v, ok = s.Sum(ck.series), true // CometBFT's carry a chain_id label
				}
				if !ok {
					t.Errorf("%s: no series %s", tc.name, ck.series)
					continue
				}
				if !ck.ok(v, tc.before[ck.series]) {
					t.Errorf("%s: %s = %v (before the work: %v)", tc.name, ck.series, v, tc.before[ck.series])
				}
			}
			t.Logf("%s: %d series", tc.name, len(s))
		})
	}
}
