package relayer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/engine"
	"github.com/phalago/phala/internal/enclave/httpapi"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/platform"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/relayer"
	"github.com/phalago/phala/internal/testnet"
)

var (
	code    = []byte("pruntime under pherry test")
	alice   = crypto.MustKeyPairFromURI("//Alice")
	charlie = crypto.MustKeyPairFromURI("//Charlie")
	dave    = crypto.MustKeyPairFromURI("//Dave")
	eve     = crypto.MustKeyPairFromURI("//Eve")
)

func tctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func sim(t testing.TB, dir string) platform.Platform {
	t.Helper()
	p, err := platform.NewSim(dir, code, testnet.TestLogger(t, slog.LevelWarn))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// env is a single-validator chain whose genesis allows the sim measurement
// of code (and optionally names a pRuntime's identity as the genesis
// gatekeeper), with the data directory prepared for that pRuntime.
type env struct {
	net     *testnet.Network
	c       *client.Client
	genesis *cmttypes.GenesisDoc
	dir     string // the pRuntime's data directory
}

func newEnv(t *testing.T, gatekeeper bool, opts testnet.Options) *env {
	t.Helper()
	return newEnvWith(t, gatekeeper, opts, nil)
}

// newEnvWith is newEnv with tweak (if not nil) applied to the genesis.
func newEnvWith(t *testing.T, gatekeeper bool, opts testnet.Options, tweak func(*api.GenesisState)) *env {
	t.Helper()
	dir := t.TempDir()
	m := sha256.Sum256(code)
	g := node.DevGenesisState(m[:])
	if tweak != nil {
		tweak(g)
	}
	if gatekeeper {
		ent, err := keys.CreatePreGenesisEntity(sim(t, dir), dir)
		if err != nil {
			t.Fatal(err)
		}
		g.Gatekeepers = []crypto.PublicKey{ent.Identity.Public()}
	}
	opts.Genesis = g
	net := testnet.New(t, opts)
	doc, err := cmttypes.GenesisDocFromFile(filepath.Join(net.Homes[0], "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	return &env{net: net, c: net.Client(0), genesis: doc, dir: dir}
}

// runtime is a pRuntime engine served in-process, recording the app/
// messages it dispatches.
type runtime struct {
	e   *engine.Engine
	srv *httptest.Server

	mu   sync.Mutex
	msgs []string // payloads of dispatched app/test messages, in order (topics are routed exactly)
}

func (ev *env) startRuntime(t *testing.T) *runtime {
	t.Helper()
	log := testnet.TestLogger(t, slog.LevelWarn)
	e, err := engine.New(engine.Config{DataDir: ev.dir, Genesis: ev.genesis, Endpoint: "http://127.0.0.1:1", Platform: sim(t, ev.dir), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	rt := &runtime{e: e}
	e.Handle("app/test", func(ctx *engine.Context, m *api.Message) error {
		// "emit N" makes the worker emit N messages of 2000 bytes.
		if n, ok := strings.CutPrefix(string(m.Payload), "emit "); ok {
			k, _ := strconv.Atoi(n)
			for i := range k {
				ctx.Emit(api.OriginWorker, "app/out", bytes.Repeat([]byte{byte(i)}, 2000))
			}
		}
		rt.mu.Lock()
		rt.msgs = append(rt.msgs, string(m.Payload))
		rt.mu.Unlock()
		return nil
	})
	rt.srv = httptest.NewServer(httpapi.ControlHandler(e, log, httpapi.ControlOptions{}))
	t.Cleanup(rt.srv.Close)
	return rt
}

func (rt *runtime) messages() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]string(nil), rt.msgs...)
}

// running is a Relayer running in a goroutine.
type running struct {
	r      *relayer.Relayer
	cancel context.CancelFunc
	done   chan error
}

func startRelayer(t *testing.T, nodeURL, pruntimeURL string, op *crypto.KeyPair, tune func(*relayer.Config)) *running {
	t.Helper()
	cfg := relayer.DefaultConfig()
	cfg.Node, cfg.PRuntime, cfg.Operator = nodeURL, pruntimeURL, op
	cfg.PollInterval = 20 * time.Millisecond
	cfg.MaxBackoff = 300 * time.Millisecond
	// A tx lost with a restarting node's mempool is noticed (and retried)
	// after TxTimeout: keep it well inside the tests' deadlines.
	cfg.TxTimeout = 3 * time.Second
	cfg.Log = testnet.TestLogger(t, slog.LevelInfo).With("relayer", op.Address()[:6])
	if tune != nil {
		tune(&cfg)
	}
	r, err := relayer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &running{r: r, cancel: cancel, done: make(chan error, 1)}
	go func() { run.done <- r.Run(ctx) }()
	t.Cleanup(func() { run.stop(t) })
	return run
}

// stop cancels the relayer and checks that Run returns (nil) promptly.
func (run *running) stop(t *testing.T) {
	t.Helper()
	if run.cancel == nil {
		return
	}
	run.cancel()
	run.cancel = nil
	select {
	case err := <-run.done:
		if err != nil {
			t.Errorf("Run returned %v after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("Run did not return within 10s of cancel")
	}
}

func post(t *testing.T, c *client.Client, s *client.Signer, payload string) *client.TxResult {
	t.Helper()
	res, err := s.Submit(tctx(t), &api.PostMessage{Topic: "app/test", Payload: []byte(payload)})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func waitDispatched(t *testing.T, e *engine.Engine, h int64, timeout time.Duration) {
	t.Helper()
	testnet.WaitFor(t, timeout, fmt.Sprintf("pRuntime dispatched block %d", h), func() (bool, error) {
		return e.Info().Dispatched >= h, nil
	})
}

func workerRecord(t *testing.T, c *client.Client, id crypto.PublicKey) *api.WorkerRecord {
	t.Helper()
	pv, err := c.Prove(tctx(t), api.QueryWorker, id[:])
	if err != nil {
		t.Fatal(err)
	}
	if pv.Value == nil {
		return nil
	}
	rec, err := api.DecodeWorkerRecord(pv.Value)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func nextSeq(t *testing.T, c *client.Client, o api.Origin) uint64 {
	t.Helper()
	pv, err := c.Prove(tctx(t), api.QueryNextSeq, o.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if pv.Value == nil {
		return 0
	}
	r := codec.NewReader(pv.Value)
	n := r.Uvarint()
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
	return n
}

// A fresh pRuntime catches up with a chain that has history, follows it,
// receives every posted message in order, and gets registered with the
// relayer's operator.
func TestCatchUpFollowAndRegister(t *testing.T) {
	// Fast blocks, so that the chain has a few hundred blocks of history
	// to catch up with in a few seconds.
	ev := newEnv(t, false, testnet.Options{TimeoutCommit: 5 * time.Millisecond})
	s := ev.c.NewSigner(alice)
	var want []string
	for i := range 5 {
		want = append(want, fmt.Sprintf("before-%d", i))
		post(t, ev.c, s, want[i])
	}
	ev.net.WaitHeight(300, 30*time.Second)
	rt := ev.startRuntime(t)
	history := ev.net.Height(0)

	start := time.Now()
	var prog strings.Builder // written by Run only; read after it returned
	run := startRelayer(t, ev.net.RPC(0), rt.srv.URL, charlie, func(c *relayer.Config) { c.Progress = &prog })
	waitDispatched(t, rt.e, history, 30*time.Second)
	el := time.Since(start)
	t.Logf("caught up with %d blocks in %s (%.0f blocks/s, headers and blocks, including startup)", history, el.Round(time.Millisecond), float64(history)/el.Seconds())

	// Following: new messages arrive.
	for i := range 3 {
		want = append(want, fmt.Sprintf("after-%d", i))
		post(t, ev.c, s, want[len(want)-1])
	}
	waitDispatched(t, rt.e, ev.net.Height(0), 20*time.Second)
	if got := rt.messages(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pRuntime dispatched %q, want %q", got, want)
	}

	// Registered, with the relayer's operator; pRuntime saw its own
	// registration come back through the queue.
	testnet.WaitFor(t, 20*time.Second, "worker registration on chain", func() (bool, error) {
		return workerRecord(t, ev.c, rt.e.Identity()) != nil, nil
	})
	rec := workerRecord(t, ev.c, rt.e.Identity())
	if rec.Info.Operator != charlie.Public() || rec.Info.IdentityKey != rt.e.Identity() || rec.Platform != api.PlatformSim {
		t.Fatalf("worker record %+v", rec.Info)
	}
	testnet.WaitFor(t, 20*time.Second, "pRuntime sees the registration", func() (bool, error) {
		return rt.e.Info().Workers == 1, nil
	})
	st := run.r.Stats()
	if st.Registrations != 1 || st.RegistrationRefused != 0 {
		t.Fatalf("stats %+v", st)
	}
	run.stop(t)
	if info := rt.e.Info(); info.Synced < history || info.Dispatched < history {
		t.Fatalf("pRuntime after stop: %+v", info)
	}
	if p := prog.String(); !strings.Contains(p, "catching up") || !strings.Contains(p, "(100.0%)") || !strings.HasSuffix(p, "\n") {
		t.Fatalf("progress output %q", p)
	}
}

// A pRuntime of another chain is a configuration error: Run returns it.
func TestPRuntimeOfAnotherChain(t *testing.T) {
	ev := newEnv(t, false, testnet.Options{})
	other := *ev.genesis
	other.ChainID = "another-chain"
	ev.genesis = &other
	rt := ev.startRuntime(t)
	cfg := relayer.DefaultConfig()
	cfg.Node, cfg.PRuntime, cfg.Operator = ev.net.RPC(0), rt.srv.URL, charlie
	cfg.Log = testnet.TestLogger(t, slog.LevelInfo)
	r, err := relayer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.Run(ctx); err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "another-chain") {
		t.Fatalf("Run: %v", err)
	}
	if rt.e.Info().Synced != 0 {
		t.Fatal("headers of another chain were sent")
	}
}

// The genesis gatekeeper's MasterKey message goes on chain exactly once,
// although two relayers feed the same pRuntime concurrently, and a relayer
// that keeps seeing it in a stale egress never submits it again.
func TestEgressOnceWithConcurrentRelayers(t *testing.T) {
	ev := newEnv(t, true, testnet.Options{})
	rt := ev.startRuntime(t)
	if eg := rt.e.Egress(); len(eg) != 0 {
		t.Fatalf("gatekeeper announced before registering: %+v", eg)
	}
	// The gatekeeper's pRuntime registers (Charlie operates it) and
	// announces its MasterKey once it sees its registration; nothing is
	// pushed until the relayers start.
	var reg *api.RegisterWorker
	testnet.WaitFor(t, 20*time.Second, "two verified headers to cite", func() (bool, error) {
		syncRuntime(t, ev, rt)
		var err error
		reg, err = rt.e.Registration(charlie.Public())
		return err == nil, nil
	})
	if _, err := ev.c.NewSigner(charlie).Submit(tctx(t), reg); err != nil {
		t.Fatalf("register the gatekeeper: %v", err)
	}
	testnet.WaitFor(t, 20*time.Second, "master key announced", func() (bool, error) {
		syncRuntime(t, ev, rt)
		return len(rt.e.Egress()) > 0, nil
	})
	eg := rt.e.Egress()
	if len(eg) != 1 || eg[0].Message.Topic != api.TopicMasterKey {
		t.Fatalf("gatekeeper egress %+v", eg)
	}
	origin := eg[0].Message.Origin
	if nextSeq(t, ev.c, origin) != 0 {
		t.Fatal("master key message on chain before any relayer ran")
	}

	a := startRelayer(t, ev.net.RPC(0), rt.srv.URL, charlie, nil)
	b := startRelayer(t, ev.net.RPC(0), rt.srv.URL, dave, func(c *relayer.Config) { c.Register = false })
	testnet.WaitFor(t, 20*time.Second, "master key message on chain", func() (bool, error) {
		return nextSeq(t, ev.c, origin) == 1, nil
	})
	testnet.WaitFor(t, 20*time.Second, "pRuntime's egress acknowledged by the echo", func() (bool, error) {
		return len(rt.e.Egress()) == 0, nil
	})
	top := ev.net.Height(0)
	waitDispatched(t, rt.e, top, 20*time.Second)

	// A third relayer sees the original egress forever (a proxy serves
	// the stale list): it must read the chain's sequence and skip it.
	px := newProxy(t, rt.srv.URL)
	px.freezeEgress(api.EncodeSignedMessages(eg))
	c := startRelayer(t, ev.net.RPC(0), px.url(), eve, func(c *relayer.Config) { c.Register = false })
	testnet.WaitFor(t, 20*time.Second, "stale egress skipped several times", func() (bool, error) {
		return c.r.Stats().EgressSkipped >= 3, nil
	})
	for _, run := range []*running{a, b, c} {
		run.stop(t)
	}
	sa, sb, sc := a.r.Stats(), b.r.Stats(), c.r.Stats()
	t.Logf("stats a %+v\nb %+v\nc %+v", sa, sb, sc)
	if n := sa.EgressSubmitted + sb.EgressSubmitted + sc.EgressSubmitted; n != 1 {
		t.Fatalf("%d push_message txs admitted, want 1", n)
	}
	if n := sa.EgressCommitted + sb.EgressCommitted; n != 1 {
		t.Fatalf("%d push_message txs committed, want 1", n)
	}
	if n := sa.EgressAlreadyAccepted + sb.EgressAlreadyAccepted; n > 1 {
		t.Fatalf("the message was offered %d times more after the chain had it", n)
	}
	if sc.EgressSubmitted+sc.EgressAlreadyAccepted+sc.EgressRefused != 0 {
		t.Fatalf("stale-egress relayer tried to submit: %+v", sc)
	}
	if nextSeq(t, ev.c, origin) != 1 {
		t.Fatal("master key sequence moved past 1")
	}

	// The chain's record: one push_message in all blocks, and no tx failed
	// (no bad sequence, no duplicate).
	pushes, failed := scanBlocks(t, ev.c, ev.net.Height(0))
	if pushes != 1 || len(failed) != 0 {
		t.Fatalf("blocks hold %d push_message txs (want 1); failed txs: %v", pushes, failed)
	}
}

// syncRuntime brings rt's pRuntime to the chain's tip (as a relayer would,
// without pushing its egress).
func syncRuntime(t *testing.T, ev *env, rt *runtime) {
	t.Helper()
	top := ev.net.Height(0)
	f := &relayer.Fetcher{C: ev.c}
	info := rt.e.Info()
	if info.Synced < top {
		hb, err := f.Headers(tctx(t), info.Synced+1, top)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rt.e.SyncHeaders(hb); err != nil {
			t.Fatal(err)
		}
	}
	if info.Dispatched < top-1 {
		bb, err := f.Blocks(tctx(t), info.Dispatched+1, top-1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rt.e.DispatchBlocks(bb); err != nil {
			t.Fatal(err)
		}
	}
}

// scanBlocks counts push_message txs in blocks 1..top and lists failed txs.
func scanBlocks(t *testing.T, c *client.Client, top int64) (pushes int, failed []string) {
	t.Helper()
	for h := int64(1); h <= top; h++ {
		b, err := c.RPC().Block(tctx(t), &h)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Block.Txs) == 0 {
			continue
		}
		res, err := c.RPC().BlockResults(tctx(t), &h)
		if err != nil {
			t.Fatal(err)
		}
		for i, raw := range b.Block.Txs {
			tx, err := api.DecodeTx(raw)
			if err != nil {
				t.Fatal(err)
			}
			if tx.Call.Kind() == api.CallPushMessage {
				pushes++
			}
			if r := res.TxsResults[i]; r.Code != 0 {
				failed = append(failed, fmt.Sprintf("height %d tx %d: %s", h, i, r.Log))
			}
		}
	}
	return pushes, failed
}

// The relayer survives pRuntime going away (its API down, then the
// process restarted from its sealed checkpoint) and the node restarting:
// it backs off, resumes from what pRuntime reports, and catches up.
func TestSurvivesRestarts(t *testing.T) {
	ev := newEnv(t, false, testnet.Options{})
	s := ev.c.NewSigner(alice)
	rt := ev.startRuntime(t)
	px := newProxy(t, rt.srv.URL)
	run := startRelayer(t, ev.net.RPC(0), px.url(), charlie, nil)
	post(t, ev.c, s, "m0")
	waitDispatched(t, rt.e, ev.net.Height(0), 20*time.Second)

	// pRuntime's API goes down; the relayer notices.
	px.stop()
	errs := run.r.Stats().Errors
	testnet.WaitFor(t, 10*time.Second, "relayer notices pRuntime is down", func() (bool, error) {
		return run.r.Stats().Errors > errs, nil
	})
	// The chain moves on; pRuntime restarts from its sealed state.
	res := post(t, ev.c, s, "m1")
	rt.srv.Close()
	rt2 := ev.startRuntime(t)
	if rt2.e.Identity() != rt.e.Identity() {
		t.Fatal("restarted pRuntime has another identity")
	}
	px.setTarget(rt2.srv.URL)
	ev.net.WaitHeight(res.Height+3, 20*time.Second)
	if d := rt2.e.Info().Dispatched; d >= res.Height {
		t.Fatalf("pRuntime dispatched %d while its API was down", d)
	}
	px.start()
	waitDispatched(t, rt2.e, ev.net.Height(0), 20*time.Second)
	if got := rt2.messages(); fmt.Sprint(got) != "[m1]" {
		t.Fatalf("restarted pRuntime dispatched %q, want [m1]", got)
	}

	// The node restarts.
	ev.net.Stop(0)
	errs = run.r.Stats().Errors
	testnet.WaitFor(t, 10*time.Second, "relayer notices the node is down", func() (bool, error) {
		return run.r.Stats().Errors > errs, nil
	})
	ev.net.Start(0)
	c := ev.net.Client(0)
	res, err := c.NewSigner(alice).Submit(tctx(t), &api.PostMessage{Topic: "app/test", Payload: []byte("m2")})
	if err != nil {
		t.Fatal(err)
	}
	waitDispatched(t, rt2.e, res.Height, 20*time.Second)
	if got := rt2.messages(); fmt.Sprint(got) != "[m1 m2]" {
		t.Fatalf("pRuntime dispatched %q, want [m1 m2]", got)
	}
	testnet.WaitFor(t, 20*time.Second, "worker registration", func() (bool, error) {
		return workerRecord(t, c, rt2.e.Identity()) != nil, nil
	})
	run.stop(t)
	if st := run.r.Stats(); st.Registrations != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// proxy stands in front of a pRuntime's API: it can be switched off (its
// listener closed: connection refused) and on again at the same address,
// pointed at another backend, and made to serve a frozen egress list.
type proxy struct {
	t    *testing.T
	addr string

	mu     sync.Mutex
	target *url.URL
	srv    *http.Server
	egress []byte

	egressPages atomic.Int64 // GET /egress requests for a page after the first
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, addr: l.Addr().String()}
	p.setTarget(target)
	p.serve(l)
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) url() string { return "http://" + p.addr }

func (p *proxy) setTarget(target string) {
	u, err := url.Parse(target)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.target = u
	p.mu.Unlock()
}

func (p *proxy) freezeEgress(b []byte) {
	p.mu.Lock()
	p.egress = b
	p.mu.Unlock()
}

func (p *proxy) serve(l net.Listener) {
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		p.mu.Lock()
		r.SetURL(p.target)
		p.mu.Unlock()
	}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		eg := p.egress
		p.mu.Unlock()
		if r.URL.Path == "/egress" && r.URL.Query().Get("after") != "" {
			p.egressPages.Add(1)
		}
		if eg != nil && r.Method == http.MethodGet && r.URL.Path == "/egress" {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(eg)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go srv.Serve(l)
}

func (p *proxy) stop() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (p *proxy) start() {
	p.t.Helper()
	var l net.Listener
	testnet.WaitFor(p.t, 10*time.Second, "proxy listens again on "+p.addr, func() (bool, error) {
		var err error
		l, err = net.Listen("tcp", p.addr)
		if errors.Is(err, net.ErrClosed) {
			return false, err
		}
		return err == nil, nil
	})
	p.serve(l)
}

// A registration the chain refuses (here: the operator cannot pay the fee)
// is retried later with a fresh report, and succeeds once it can.
func TestRegistrationRetriedAfterRefusal(t *testing.T) {
	ev := newEnv(t, false, testnet.Options{})
	rt := ev.startRuntime(t)
	poor := crypto.MustKeyPairFromURI("//PherryOperator")
	run := startRelayer(t, ev.net.RPC(0), rt.srv.URL, poor, nil)
	testnet.WaitFor(t, 20*time.Second, "registration refused", func() (bool, error) {
		return run.r.Stats().RegistrationRefused >= 1, nil
	})
	if workerRecord(t, ev.c, rt.e.Identity()) != nil {
		t.Fatal("registered by an operator that cannot pay")
	}
	if _, err := ev.c.NewSigner(alice).Submit(tctx(t), &api.Transfer{To: poor.Public(), Amount: 10 * api.Unit}); err != nil {
		t.Fatal(err)
	}
	testnet.WaitFor(t, 20*time.Second, "registration after funding", func() (bool, error) {
		return run.r.Stats().Registrations == 1, nil
	})
	if rec := workerRecord(t, ev.c, rt.e.Identity()); rec == nil || rec.Info.Operator != poor.Public() {
		t.Fatalf("worker record %+v", rec)
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := relayer.DefaultConfig()
	if err := cfg.Validate(); err == nil {
		t.Fatal("config without an operator accepted")
	}
	cfg.Operator = charlie
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config with an operator: %v", err)
	}
	for name, mutate := range map[string]func(*relayer.Config){
		"no node":              func(c *relayer.Config) { c.Node = "" },
		"bad node":             func(c *relayer.Config) { c.Node = "127.0.0.1:26657" },
		"bad pruntime":         func(c *relayer.Config) { c.PRuntime = "tcp://127.0.0.1:8000" },
		"huge batch":           func(c *relayer.Config) { c.BatchSize = api.MaxSyncBatch + 1 },
		"negative poll":        func(c *relayer.Config) { c.PollInterval = -time.Second },
		"huge batch bytes":     func(c *relayer.Config) { c.MaxBatchBytes = api.MaxSyncPayloadBytes + 1 },
		"negative batch bytes": func(c *relayer.Config) { c.MaxBatchBytes = -1 },
		"huge egress page":     func(c *relayer.Config) { c.EgressPage = 1 << 30 },
	} {
		c := cfg
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	zero := relayer.Config{Node: "http://127.0.0.1:1", PRuntime: "http://127.0.0.1:2", Operator: charlie}
	if err := zero.Validate(); err != nil {
		t.Fatalf("zero optional fields (defaults): %v", err)
	}
}

// An egress larger than a page reaches the chain whole: the relayer reads
// every page of it each round (following the cursor) and submits the
// messages in order. Batches capped at a few kB still catch up.
func TestEgressLargerThanOnePage(t *testing.T) {
	ev := newEnv(t, false, testnet.Options{})
	rt := ev.startRuntime(t)
	px := newProxy(t, rt.srv.URL)
	run := startRelayer(t, ev.net.RPC(0), px.url(), charlie, func(c *relayer.Config) {
		c.EgressPage = 2500    // one 2000-byte message per page
		c.MaxBatchBytes = 4096 // a few headers per sync call
	})
	testnet.WaitFor(t, 30*time.Second, "worker registration", func() (bool, error) {
		return workerRecord(t, ev.c, rt.e.Identity()) != nil, nil
	})
	const n = 8
	post(t, ev.c, ev.c.NewSigner(alice), fmt.Sprintf("emit %d", n))
	origin := api.KeyOrigin(api.OriginWorker, rt.e.Identity())
	testnet.WaitFor(t, 30*time.Second, "every emitted message on chain", func() (bool, error) {
		return nextSeq(t, ev.c, origin) == n, nil
	})
	testnet.WaitFor(t, 30*time.Second, "the egress acknowledged", func() (bool, error) {
		return len(rt.e.Egress()) == 0, nil
	})
	if px.egressPages.Load() == 0 {
		t.Fatal("the relayer never asked for a page after the first")
	}
	// The relayer confirms its last submissions in its own time.
	testnet.WaitFor(t, 30*time.Second, "the relayer saw every message committed", func() (bool, error) {
		st := run.r.Stats()
		return st.EgressCommitted+st.EgressAlreadyAccepted >= n, nil
	})
	run.stop(t)
	if st := run.r.Stats(); st.EgressCommitted+st.EgressAlreadyAccepted < n || st.EgressRefused != 0 {
		t.Fatalf("stats %+v", st)
	}
	if _, failed := scanBlocks(t, ev.c, ev.net.Height(0)); len(failed) != 0 {
		t.Fatalf("failed txs: %v", failed)
	}

	// The fetcher's cap: a batch of headers stops at MaxBytes (one header
	// at least), in height order from the first.
	top := ev.net.Height(0) - 1
	f := &relayer.Fetcher{C: ev.c, MaxBytes: 3000}
	hb, err := f.Headers(tctx(t), 1, top)
	if err != nil {
		t.Fatal(err)
	}
	if len(hb.Headers) == 0 || int64(len(hb.Headers)) >= top || (len(hb.Headers) > 1 && len(hb.Encode()) > 3000) {
		t.Fatalf("%d headers of %d, %d bytes for a cap of 3000", len(hb.Headers), top, len(hb.Encode()))
	}
	all, err := (&relayer.Fetcher{C: ev.c}).Headers(tctx(t), 1, int64(len(hb.Headers)))
	if err != nil || !bytes.Equal(all.Encode(), hb.Encode()) {
		t.Fatalf("the capped batch is not the first headers: %v", err)
	}
}

// A pRuntime whose build a runtime migration retired has egress the chain
// refuses for good: the relayer learns from pRuntime's info that it is
// retired, says so once and stops pushing it (until retiredRetry), instead
// of retrying every few seconds forever.
func TestRetiredPRuntimeEgressPaused(t *testing.T) {
	ev := newEnvWith(t, false, testnet.Options{}, func(g *api.GenesisState) { g.Governance.Threshold = 1 })
	rt := ev.startRuntime(t)
	run := startRelayer(t, ev.net.RPC(0), rt.srv.URL, charlie, nil)
	testnet.WaitFor(t, 30*time.Second, "pRuntime sees its registration", func() (bool, error) {
		return rt.e.Info().Workers == 1, nil
	})
	run.stop(t)
	// While no relayer runs: the worker is asked to emit (its egress waits
	// in pRuntime), then a migration to a build nobody runs revokes its
	// build (no contract and no key holder depend on it: it completes at
	// the first check).
	post(t, ev.c, ev.c.NewSigner(alice), "emit 1")
	target := bytes.Repeat([]byte{0x5e}, 32)
	if _, err := ev.c.NewSigner(alice).Submit(tctx(t), &api.GovPropose{Action: api.Action{Kind: api.ActionMigrateRuntime, Measurement: target}}); err != nil {
		t.Fatal(err)
	}
	testnet.WaitFor(t, 60*time.Second, "the migration's completion", func() (bool, error) {
		_, last, _, err := ev.c.Migrations(tctx(t), 0)
		return last != nil && !last.Cancelled, err
	})
	run = startRelayer(t, ev.net.RPC(0), rt.srv.URL, charlie, nil)
	testnet.WaitFor(t, 60*time.Second, "the relayer knows pRuntime is retired", func() (bool, error) {
		return run.r.Stats().RetiredAt > 0, nil
	})
	if got, want := run.r.Stats().RetiredAt, rt.e.Info().RetiredAt; got != want || want == 0 {
		t.Fatalf("relayer's retired_at %d, pRuntime's %d", got, want)
	}
	// Paused: rounds go on (the tip moves, pRuntime dispatches) but the
	// refused egress is not pushed again (MaxBackoff is 300 ms here).
	refused := run.r.Stats().EgressRefused
	h := ev.net.Height(0)
	waitDispatched(t, rt.e, h+5, 30*time.Second)
	if st := run.r.Stats(); st.EgressRefused != refused || st.EgressSubmitted != 0 {
		t.Fatalf("egress pushed while retired: %+v (refused %d when it learnt it)", st, refused)
	}
}
