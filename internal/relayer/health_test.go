package relayer_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phalago/phala/internal/metrics"
	"github.com/phalago/phala/internal/relayer"
	"github.com/phalago/phala/internal/testnet"
)

// stallProxy forwards TCP connections to a target and can stall: it keeps
// accepting connections and reading nothing, writing nothing, like a
// process stopped with SIGSTOP (the kernel still accepts connections),
// until resumed.
type stallProxy struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu      sync.Mutex
	cond    *sync.Cond
	stalled bool
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{t: t, ln: ln, target: strings.TrimPrefix(target, "http://")}
	p.cond = sync.NewCond(&p.mu)
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.resume() })
	return p
}

func (p *stallProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *stallProxy) stall() {
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
}

func (p *stallProxy) resume() {
	p.mu.Lock()
	p.stalled = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *stallProxy) wait() {
	p.mu.Lock()
	for p.stalled {
		p.cond.Wait()
	}
	p.mu.Unlock()
}

func (p *stallProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			p.wait()
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			go func() { p.copy(up, c); done <- struct{}{} }()
			go func() { p.copy(c, up); done <- struct{}{} }()
			<-done
		}()
	}
}

// copy forwards src to dst, holding each chunk while stalled.
func (p *stallProxy) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.wait()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}

// logBuffer keeps a relayer's log lines (and sends them to the test log).
type logBuffer struct {
	t  *testing.T
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return l.b.Write(p)
}

// count returns how many lines hold every one of parts.
func (l *logBuffer) count(parts ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range strings.Split(l.b.String(), "\n") {
		ok := line != ""
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			n++
		}
	}
	return n
}

func (l *logBuffer) waitLine(t *testing.T, timeout time.Duration, parts ...string) {
	t.Helper()
	testnet.WaitFor(t, timeout, "log line "+strings.Join(parts, " "), func() (bool, error) {
		return l.count(parts...) > 0, nil
	})
}

// healthRelayer starts a relayer with short timeouts whose logs go to a
// logBuffer and whose metrics are served over HTTP.
func healthRelayer(t *testing.T, nodeURL, prURL string, tune func(*relayer.Config)) (*running, *logBuffer, string) {
	t.Helper()
	logs := &logBuffer{t: t}
	run := startRelayer(t, nodeURL, prURL, charlie, func(c *relayer.Config) {
		c.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		c.NodeTimeout = time.Second
		c.PRuntimeTimeout = time.Second
		c.BatchTimeout = 2 * time.Second
		c.StallAfter = 2 * time.Second
		c.WarnInterval = 3 * time.Second
		c.Register = false
		if tune != nil {
			tune(c)
		}
	})
	reg := metrics.NewRegistry()
	reg.MustRegister(run.r.Collector())
	srv, err := metrics.Listen("127.0.0.1:0", reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return run, logs, srv.URL()
}

func waitMetric(t *testing.T, url, series string, want float64, timeout time.Duration) {
	t.Helper()
	testnet.WaitFor(t, timeout, fmt.Sprintf("%s = %v", series, want), func() (bool, error) {
		s, err := metrics.Scrape(context.Background(), url)
		if err != nil {
			return false, err
		}
		v, ok := s[series]
		return ok && v == want, nil
	})
}

// A node that stops answering (a stalled TCP proxy in front of a real
// node: it accepts connections and says nothing, as a SIGSTOPped node
// does) is reported by one warning within a few timeouts, at most one more
// per warn interval while it lasts, and a recovery line when it answers
// again; phala_pherry_node_up follows. The same for pRuntime, and pRuntime
// left behind the tip is reported too.
func TestWarnsWhenNodeOrPRuntimeDoesNotAnswer(t *testing.T) {
	ev := newEnv(t, false, testnet.Options{})
	rt := ev.startRuntime(t)
	nodePx := newStallProxy(t, ev.net.RPC(0))
	prPx := newStallProxy(t, rt.srv.URL)
	_, logs, murl := healthRelayer(t, nodePx.url(), prPx.url(), func(c *relayer.Config) { c.MaxLag = 5 })
	waitDispatched(t, rt.e, ev.net.Height(0)-1, 20*time.Second)
	waitMetric(t, murl, "phala_pherry_node_up", 1, 10*time.Second)
	waitMetric(t, murl, "phala_pherry_pruntime_up", 1, 10*time.Second)

	// The node stops answering.
	nodePx.stall()
	start := time.Now()
	logs.waitLine(t, 10*time.Second, "level=WARN", `msg="node does not answer"`)
	t.Logf("node warning after %s", time.Since(start).Round(time.Millisecond))
	waitMetric(t, murl, "phala_pherry_node_up", 0, 5*time.Second)
	// It lasts: a repeat, saying for how long, at most once per warn
	// interval; none per retry.
	logs.waitLine(t, 10*time.Second, "level=WARN", "condition=node_down", "for=")
	lasted := time.Since(start)
	n := logs.count("level=WARN", "condition=node_down")
	if max := int(lasted/(3*time.Second)) + 1; n < 2 || n > max {
		t.Errorf("%d node_down warnings in %s, want 2..%d", n, lasted.Round(time.Second), max)
	}
	if n := logs.count("level=WARN", "round failed"); n > 0 {
		t.Errorf("%d 'round failed' warnings while the node warning holds", n)
	}
	nodePx.resume()
	logs.waitLine(t, 15*time.Second, "level=INFO", `msg="node answers again"`, "for=")
	waitMetric(t, murl, "phala_pherry_node_up", 1, 5*time.Second)
	if n := logs.count("condition=chain_stalled"); n > 0 {
		t.Errorf("%d chain_stalled lines: a node that was not answering is not a stalled chain", n)
	}

	// pRuntime stops answering while the chain moves on: it falls behind.
	waitDispatched(t, rt.e, ev.net.Height(0)-1, 20*time.Second)
	prPx.stall()
	logs.waitLine(t, 10*time.Second, "level=WARN", `msg="pRuntime does not answer"`)
	waitMetric(t, murl, "phala_pherry_pruntime_up", 0, 5*time.Second)
	logs.waitLine(t, 20*time.Second, "level=WARN", `msg="pRuntime is behind the chain tip"`, "lag=")
	waitMetric(t, murl, "phala_pherry_pruntime_behind", 1, 5*time.Second)
	prPx.resume()
	logs.waitLine(t, 15*time.Second, "level=INFO", `msg="pRuntime answers again"`)
	logs.waitLine(t, 30*time.Second, "level=INFO", `msg="pRuntime caught up with the chain tip"`)
	waitMetric(t, murl, "phala_pherry_pruntime_up", 1, 5*time.Second)
	waitMetric(t, murl, "phala_pherry_pruntime_behind", 0, 5*time.Second)
	s, err := metrics.Scrape(context.Background(), murl)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"phala_pherry_chain_tip_height", "phala_pherry_lag_blocks", "phala_pherry_pruntime_dispatched_height", "phala_pherry_round_errors_total", "phala_pherry_submission_retries_total"} {
		if !s.Has(name) {
			t.Errorf("metric %s missing", name)
		}
	}
	if s["phala_pherry_round_errors_total"] == 0 || s["phala_pherry_chain_tip_height"] < 3 {
		t.Errorf("round errors %v, tip %v", s["phala_pherry_round_errors_total"], s["phala_pherry_chain_tip_height"])
	}
}

// A chain that halts while its node answers (two validators, one
// stopped: no quorum) is reported once its tip has not moved for
// StallAfter, and its recovery when the tip moves again.
func TestWarnsWhenChainStalls(t *testing.T) {
	ev := newEnv(t, false, testnet.Options{Validators: 2})
	rt := ev.startRuntime(t)
	_, logs, murl := healthRelayer(t, ev.net.RPC(0), rt.srv.URL, nil)
	waitDispatched(t, rt.e, 3, 20*time.Second)
	waitMetric(t, murl, "phala_pherry_chain_stalled", 0, 5*time.Second)
	ev.net.Stop(1)
	logs.waitLine(t, 15*time.Second, "level=WARN", "condition=chain_stalled")
	waitMetric(t, murl, "phala_pherry_chain_stalled", 1, 5*time.Second)
	if n := logs.count("level=WARN", "condition=node_down"); n > 0 {
		t.Errorf("%d node_down warnings while the node answers", n)
	}
	ev.net.Start(1)
	// The stopped validator rejoins when its peer redials it (CometBFT backs
	// off between attempts): a generous deadline.
	logs.waitLine(t, 90*time.Second, "level=INFO", `msg="chain tip moves again"`, "for=")
	waitMetric(t, murl, "phala_pherry_chain_stalled", 0, 5*time.Second)
}
