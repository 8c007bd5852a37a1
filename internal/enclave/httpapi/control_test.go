package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/testnet"
)

// Every call that feeds, reads the egress of or registers a pRuntime gets
// 404 on the public API and changes nothing; the public info holds only
// public facts; queries are served there (and not on the control API).
func TestPublicAPIChangesNothing(t *testing.T) {
	e := gatekeeperWithEgress(t)
	log := slog.New(slog.DiscardHandler)
	public := PublicHandler(e, log)
	control := ControlHandler(e, log, ControlOptions{})
	if len(e.Egress()) == 0 {
		t.Fatal("test needs egress")
	}
	before, beforeEgress := e.Info(), len(e.Egress())
	reg, _ := json.Marshal(map[string]string{"operator": crypto.MustKeyPairFromURI("//Bob").Public().Address()})
	for _, tc := range []struct {
		method, path string
		body         []byte
	}{
		{"POST", "/sync/headers", (&api.HeaderBatch{}).Encode()},
		{"POST", "/sync/blocks", (&api.BlockBatch{}).Encode()},
		{"GET", "/egress", nil},
		{"GET", "/egress?max_bytes=100", nil},
		{"POST", "/registration", reg},
	} {
		// On the control API the same call is served...
		rc := serve(control, tc.method, tc.path, tc.body, "127.0.0.1:40000")
		if rc.Code != http.StatusOK {
			t.Fatalf("control %s %s: %d %s", tc.method, tc.path, rc.Code, rc.Body)
		}
		// ...on the public one it does not exist.
		rp := serve(public, tc.method, tc.path, tc.body, "127.0.0.1:40000")
		if rp.Code != http.StatusNotFound {
			t.Fatalf("public %s %s: %d, want 404", tc.method, tc.path, rp.Code)
		}
		if bytes.Contains(rp.Body.Bytes(), e.Egress()[0].Signature[:]) {
			t.Fatal("the public API returned egress")
		}
	}
	after := e.Info()
	if after.StateRoot != before.StateRoot || after.Synced != before.Synced || after.Dispatched != before.Dispatched || len(e.Egress()) != beforeEgress {
		t.Fatalf("state changed: %+v -> %+v", before, after)
	}

	// Public info: the public facts, and not the operational ones.
	rp := serve(public, "GET", "/info", nil, "203.0.113.9:1")
	var pub map[string]any
	if rp.Code != 200 || json.Unmarshal(rp.Body.Bytes(), &pub) != nil {
		t.Fatalf("public info: %d %s", rp.Code, rp.Body)
	}
	if pub["identity_key"] != before.IdentityKey || pub["ecdh_key"] != before.EcdhKey || pub["chain_id"] != before.ChainID {
		t.Fatalf("public info %v", pub)
	}
	for _, k := range []string{"egress", "known_workers", "memory_bytes", "contracts", "state_root"} {
		if _, ok := pub[k]; ok {
			t.Errorf("public info tells %q", k)
		}
	}
	// Queries: served on the public API (a malformed one is refused as
	// such, 400), absent from the control API.
	if r := serve(public, "POST", "/query", []byte("garbage"), "203.0.113.9:1"); r.Code != http.StatusBadRequest {
		t.Fatalf("public query: %d %s", r.Code, r.Body)
	}
	if r := serve(control, "POST", "/query", []byte("garbage"), "127.0.0.1:1"); r.Code != http.StatusNotFound {
		t.Fatalf("control query: %d", r.Code)
	}
}

func serve(h http.Handler, method, path string, body []byte, remote string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// The control API refuses, with 403 and a reason, every caller that is
// neither on loopback nor in an allowed network, before anything runs.
func TestControlRefusesNonLoopbackCallers(t *testing.T) {
	e := newEngine(t, true)
	log := slog.New(slog.DiscardHandler)
	before, egress := e.Info(), len(e.Egress())
	allowNet := netip.MustParsePrefix("10.1.0.0/16")
	for _, tc := range []struct {
		remote string
		allow  []netip.Prefix
		ok     bool
	}{
		{"127.0.0.1:5000", nil, true},
		{"127.8.9.10:5000", nil, true},
		{"[::1]:5000", nil, true},
		{"[::ffff:127.0.0.1]:5000", nil, true},
		{"192.0.2.1:1234", nil, false},
		{"[2001:db8::1]:1234", nil, false},
		{"[::ffff:192.0.2.1]:1234", nil, false},
		{"10.1.2.3:1234", nil, false},
		{"10.1.2.3:1234", []netip.Prefix{allowNet}, true},
		{"10.2.0.1:1234", []netip.Prefix{allowNet}, false},
		{"not an address", nil, false},
		{"", nil, false},
	} {
		h := ControlHandler(e, log, ControlOptions{Allow: tc.allow})
		for _, call := range []struct {
			method, path string
			body         []byte
		}{
			{"GET", "/info", nil},
			{"GET", "/egress", nil},
			{"POST", "/sync/headers", (&api.HeaderBatch{}).Encode()},
			{"POST", "/sync/blocks", (&api.BlockBatch{Blocks: []api.BlockMessages{{Height: 1, StateRoot: make([]byte, 32)}}}).Encode()},
			{"POST", "/registration", []byte(`{"operator":"` + crypto.MustKeyPairFromURI("//Bob").Public().Address() + `"}`)},
		} {
			r := serve(h, call.method, call.path, call.body, tc.remote)
			if tc.ok && r.Code == http.StatusForbidden {
				t.Errorf("%s %s from %q (allow %v): refused", call.method, call.path, tc.remote, tc.allow)
			}
			if !tc.ok {
				var eb errorBody
				if r.Code != http.StatusForbidden || json.Unmarshal(r.Body.Bytes(), &eb) != nil || !strings.Contains(eb.Error, "loopback") {
					t.Errorf("%s %s from %q: %d %s, want 403 naming loopback", call.method, call.path, tc.remote, r.Code, r.Body)
				}
				if bytes.Contains(r.Body.Bytes(), []byte(before.IdentityKey)) {
					t.Errorf("refused caller got info")
				}
			}
		}
	}
	if after := e.Info(); after.StateRoot != before.StateRoot || len(e.Egress()) != egress {
		t.Fatal("refused callers changed the state")
	}
	// Through a real listener: httptest's server is on loopback.
	control, _, _ := newServers(t, ControlOptions{})
	res, err := http.Get(control.URL + "/info")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("loopback caller: %v %v", res, err)
	}
	res.Body.Close()
}

// Sync requests share a byte budget: one over the limit is refused alone
// (413, unread), requests that do not fit while the budget is held wait and
// then get 503, and a request that fits goes ahead meanwhile.
func TestSyncByteBudget(t *testing.T) {
	e := newEngine(t, false)
	const budget = 1 << 20
	s := newAPIServer(e, slog.New(slog.DiscardHandler), ControlOptions{SyncBudgetBytes: budget, SyncWait: 50 * time.Millisecond})
	h := s.control()
	before := e.StateRoot()

	post := func(path string, body io.Reader, length int64) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", path, body)
		req.ContentLength = length
		req.RemoteAddr = "127.0.0.1:1"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	// Over the limit: refused without reading a byte.
	unread := &countingReader{}
	if r := post("/sync/blocks", unread, budget+1); r.Code != http.StatusRequestEntityTooLarge || !strings.Contains(r.Body.String(), "over the limit") {
		t.Fatalf("oversized: %d %s", r.Code, r.Body)
	}
	if unread.n != 0 {
		t.Fatalf("an oversized body was read (%d bytes)", unread.n)
	}
	// A slow request holds 3/4 of the budget while its body trickles in.
	pr, pw := io.Pipe()
	slow := make(chan *httptest.ResponseRecorder, 1)
	go func() { slow <- post("/sync/blocks", pr, budget*3/4) }()
	testnet.WaitFor(t, 10*time.Second, "the slow request holds its share", func() (bool, error) {
		return s.budget.inUse() == budget*3/4, nil
	})
	// Concurrent large requests do not fit: each waits, then gets 503
	// without its body read.
	var wg sync.WaitGroup
	codes := make([]int, 8)
	bodies := make([]*countingReader, 8)
	for i := range codes {
		bodies[i] = &countingReader{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := post("/sync/headers", bodies[i], budget/2)
			codes[i] = r.Code
			if !strings.Contains(r.Body.String(), "budget busy") {
				t.Errorf("refusal without reason: %s", r.Body)
			}
		}()
	}
	// A normal sync fits beside the slow one and goes through.
	if r := post("/sync/headers", bytes.NewReader((&api.HeaderBatch{}).Encode()), int64(len((&api.HeaderBatch{}).Encode()))); r.Code != 200 {
		t.Fatalf("normal sync while the budget is busy: %d %s", r.Code, r.Body)
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusServiceUnavailable || bodies[i].n != 0 {
			t.Fatalf("large request %d: %d, %d bytes read; want 503 unread", i, c, bodies[i].n)
		}
	}
	// The slow request ends (its garbage is refused) and frees its share.
	go func() { pw.Write(bytes.Repeat([]byte{0xff}, budget*3/4)); pw.Close() }()
	if r := <-slow; r.Code != http.StatusBadRequest {
		t.Fatalf("slow garbage: %d %s", r.Code, r.Body)
	}
	if s.budget.inUse() != 0 {
		t.Fatalf("budget still holds %d bytes", s.budget.inUse())
	}
	// Without a declared length a request takes the largest share.
	if r := post("/sync/headers", bytes.NewReader((&api.HeaderBatch{}).Encode()), -1); r.Code != 200 {
		t.Fatalf("chunked sync: %d %s", r.Code, r.Body)
	}
	if r := post("/sync/headers", bytes.NewReader(make([]byte, budget+10)), -1); r.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked oversized sync: %d %s", r.Code, r.Body)
	}
	if e.StateRoot() != before {
		t.Fatal("refused syncs changed the state")
	}
}

type countingReader struct{ n int }

func (c *countingReader) Read(p []byte) (int, error) {
	c.n += len(p)
	return len(p), nil
}

func signed(o api.Origin, seq uint64, payload int) api.SignedMessage {
	return api.SignedMessage{Message: api.Message{Origin: o, Topic: "t", Seq: seq, Payload: make([]byte, payload)}}
}

// Pages hold at most max_bytes (but at least one message), follow the
// cursor, and never skip a message when the egress shrinks between pages.
func TestEgressPage(t *testing.T) {
	a := api.KeyOrigin(api.OriginWorker, crypto.MustKeyPairFromURI("//A").Public())
	b := api.KeyOrigin(api.OriginContract, crypto.MustKeyPairFromURI("//B").Public())
	var ms []api.SignedMessage
	for i := range 10 {
		ms = append(ms, signed(a, uint64(i), 1000), signed(b, uint64(i), 3000))
	}
	read := func(ms []api.SignedMessage, maxBytes int) (pages [][]api.SignedMessage) {
		after := (*egressCursor)(nil)
		for {
			page, next := egressPage(ms, after, maxBytes)
			if len(page) == 0 && next != "" {
				t.Fatal("empty page with a next cursor")
			}
			if n := len(api.EncodeSignedMessages(page)); n > maxBytes && len(page) > 1 {
				t.Fatalf("page of %d bytes over %d", n, maxBytes)
			}
			pages = append(pages, page)
			if next == "" {
				return pages
			}
			c, err := parseEgressCursor(next)
			if err != nil {
				t.Fatal(err)
			}
			after = &c
		}
	}
	for _, maxBytes := range []int{1, 2000, 4500, 10_000, 1 << 20} {
		pages := read(ms, maxBytes)
		var all []api.SignedMessage
		for _, p := range pages {
			all = append(all, p...)
		}
		if fmt.Sprint(all) != fmt.Sprint(ms) {
			t.Fatalf("max %d: pages do not give the egress in order", maxBytes)
		}
		if maxBytes == 1 && len(pages) != len(ms) {
			t.Fatalf("max 1: %d pages, want one message each", len(pages))
		}
		if maxBytes == 1<<20 && len(pages) != 1 {
			t.Fatalf("a large page split")
		}
	}
	// The cursor's message is acknowledged (removed) between pages: the
	// next page restarts, and everything still pending is read.
	page, next := egressPage(ms, nil, 4500)
	c, _ := parseEgressCursor(next)
	last := page[len(page)-1].Message
	var shrunk []api.SignedMessage
	for _, m := range ms {
		if m.Message.Origin != last.Origin || m.Message.Seq > last.Seq {
			shrunk = append(shrunk, m)
		}
	}
	seen := map[string]bool{}
	for after := &c; ; {
		p, n := egressPage(shrunk, after, 4500)
		for _, m := range p {
			seen[fmt.Sprint(m.Message.Origin, m.Message.Seq)] = true
		}
		if n == "" {
			break
		}
		cc, _ := parseEgressCursor(n)
		after = &cc
	}
	for _, m := range shrunk {
		if !seen[fmt.Sprint(m.Message.Origin, m.Message.Seq)] {
			t.Fatalf("message %v skipped after the egress shrank", m.Message.Seq)
		}
	}
	if p, n := egressPage(nil, nil, 10); len(p) != 0 || n != "" {
		t.Fatal("empty egress")
	}
}

// The egress endpoint: pages through HTTP, and refuses bad parameters.
func TestEgressEndpoint(t *testing.T) {
	e := gatekeeperWithEgress(t)
	h := ControlHandler(e, slog.New(slog.DiscardHandler), ControlOptions{})
	r := serve(h, "GET", "/egress?max_bytes=1", nil, "127.0.0.1:1")
	ms, err := api.DecodeSignedMessages(r.Body.Bytes())
	if r.Code != 200 || err != nil || len(ms) != 1 || r.Header().Get(EgressNextHeader) != "" {
		t.Fatalf("egress page: %d %v %d messages, next %q", r.Code, err, len(ms), r.Header().Get(EgressNextHeader))
	}
	good := egressCursor{index: 3, origin: ms[0].Message.Origin, seq: 7}.String()
	for _, q := range []string{"max_bytes=0", "max_bytes=-1", "max_bytes=x", fmt.Sprintf("max_bytes=%d", MaxEgressPageBytes+1),
		"after=zz", "after=00", "after=" + strings.ToUpper(good), "after=" + good + "00", "after=" + strings.Repeat("0", 300)} {
		if r := serve(h, "GET", "/egress?"+q, nil, "127.0.0.1:1"); r.Code != http.StatusBadRequest || !strings.Contains(r.Body.String(), "error") {
			t.Errorf("%s: %d %s", q, r.Code, r.Body)
		}
	}
	if r := serve(h, "GET", "/egress?after="+good, nil, "127.0.0.1:1"); r.Code != 200 {
		t.Fatalf("a cursor of a gone message: %d %s", r.Code, r.Body)
	}
}

// FuzzParseEgressCursor: the after= decoder accepts only canonical cursors
// (what it accepts re-encodes to the same string) and never panics.
func FuzzParseEgressCursor(f *testing.F) {
	o := api.KeyOrigin(api.OriginWorker, crypto.MustKeyPairFromURI("//A").Public())
	f.Add(egressCursor{index: 0, origin: o, seq: 0}.String())
	f.Add(egressCursor{index: 1 << 40, origin: api.ModuleOrigin("registry"), seq: 99}.String())
	f.Add("")
	f.Add("00")
	f.Add("zz")
	f.Add(strings.Repeat("ff", 40))
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseEgressCursor(s)
		if err == nil && c.String() != s {
			t.Fatalf("accepted non-canonical %q", s)
		}
	})
}

// slowBody signals its first Read, then blocks until released.
type slowBody struct {
	reading chan struct{}
	release chan struct{}
}

func (b *slowBody) Read(p []byte) (int, error) {
	select {
	case <-b.reading:
	default:
		close(b.reading)
	}
	<-b.release
	return 0, io.EOF
}

// A client that sends its query slowly holds its connection, not a query
// slot: with every slow body still arriving, no slot is taken, so honest
// queries are not kept waiting behind them.
func TestSlowQueryBodyTakesNoSlot(t *testing.T) {
	s := newAPIServer(newEngine(t, false), slog.New(slog.DiscardHandler), ControlOptions{})
	var done sync.WaitGroup
	var bodies []*slowBody
	for range MaxConcurrentQueries + 1 {
		b := &slowBody{reading: make(chan struct{}), release: make(chan struct{})}
		bodies = append(bodies, b)
		done.Add(1)
		go func() {
			defer done.Done()
			s.query(httptest.NewRecorder(), httptest.NewRequest("POST", "/query", b))
		}()
	}
	for _, b := range bodies {
		select {
		case <-b.reading:
		case <-time.After(10 * time.Second):
			t.Fatal("a query waits for a slot before its body is read")
		}
	}
	if n := len(s.queries); n != 0 {
		t.Fatalf("%d query slots held by bodies still arriving", n)
	}
	for _, b := range bodies {
		close(b.release)
	}
	done.Wait()
	if n := len(s.queries); n != 0 {
		t.Fatalf("%d query slots not released", n)
	}
}
