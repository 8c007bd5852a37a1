package explorer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/testnet"
)

// startExplorer serves an explorer of c on a free loopback port until the
// test ends, and waits until it has checked its first block. It returns
// the base URL and the server.
func startExplorer(t *testing.T, c *client.Client, node string) (string, *Server) {
	t.Helper()
	return startExplorerConfig(t, c, node, DefaultConfig())
}

// startExplorerConfig is startExplorer with cfg (its Log and Poll set
// for tests).
func startExplorerConfig(t *testing.T, c *client.Client, node string, cfg Config) (string, *Server) {
	t.Helper()
	cfg.Log = testnet.TestLogger(t, slog.LevelInfo)
	cfg.Poll = 100 * time.Millisecond
	s, err := New(c, node, cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("explorer: %v", err)
		}
	})
	testnet.WaitFor(t, time.Minute, "the explorer's first checked block", func() (bool, error) {
		_, tip := s.recent()
		return tip > 0, nil
	})
	return "http://" + l.Addr().String(), s
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	cl := &http.Client{Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := cl.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if loc := res.Header.Get("Location"); loc != "" {
		return res.StatusCode, loc
	}
	return res.StatusCode, string(b)
}

// Every handler against an in-process chain (no workers): the status
// codes of good and bad inputs (unknown → 404, malformed → 400, each with
// a message; never a 500), the search's redirects, and the live stream.
func TestHandlers(t *testing.T) {
	n := testnet.New(t, testnet.Options{Genesis: node.DevGenesisState([]byte{7})})
	c := n.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice, bob := crypto.MustKeyPairFromURI("//Alice"), crypto.MustKeyPairFromURI("//Bob").Public()
	res, err := c.NewSigner(alice).Submit(ctx, &api.Transfer{To: bob, Amount: 3 * api.Unit})
	if err != nil {
		t.Fatal(err)
	}
	base, s := startExplorer(t, c, n.RPC(0))
	// The account pages list the transactions of the blocks followed so
	// far: wait until the transfer's block is one of them.
	testnet.WaitFor(t, time.Minute, "the explorer following the transfer's block", func() (bool, error) {
		_, tip := s.recent()
		return tip >= res.Height, nil
	})
	tx := fmt.Sprintf("%X", res.Hash)
	nobody := crypto.MustKeyPairFromURI("//nobody").Public()
	for _, tc := range []struct {
		path   string
		status int
		want   string // in the body (or the Location of a redirect)
	}{
		{"/", 200, "Latest blocks"},
		{"/latest", 200, `href="/block/`},
		{"/tip", 200, ""},
		{fmt.Sprintf("/block/%d", res.Height), 200, tx},
		{"/block/1", 200, "Block 1"},
		{"/block/999999999", 404, "beyond the chain"},
		{"/block/abc", 400, "give a height"},
		{"/block/0", 400, "give a height"},
		{"/block/-1", 400, "give a height"},
		{"/tx/" + tx, 200, "transfer 3 PHA to " + bob.Address()},
		{"/tx/0x" + strings.ToLower(tx), 200, `href="/account/` + bob.Address() + `"`},
		{"/tx/" + strings.Repeat("0", 64), 404, "no such transaction"},
		{"/tx/zz", 400, "64 hex digits"},
		{"/tx/" + tx[:60], 400, "64 hex digits"},
		{"/account/" + bob.Address(), 200, "PHA"},
		{"/account/" + alice.Public().Hex(), 200, tx[:10]},
		{"/account/5Grw", 400, "is not a key"},
		{"/account/" + strings.Repeat("x", 300), 400, "too long"},
		{"/workers", 200, "no registered workers"},
		{"/worker/" + nobody.Hex(), 404, "not registered"},
		{"/worker/nope", 400, "is not a key"},
		{"/gatekeepers", 200, "Master public key"},
		{"/contracts", 200, "none seen yet"},
		{"/contract/" + nobody.Hex(), 404, "no such contract"},
		{"/contract/0x1234", 400, "is not a key"},
		{"/queue", 200, "Message queue"},
		{"/params", 200, "era_length"},
		{"/nope", 404, "no page /nope"},
		{"/search?q=", 400, "the search is empty"},
		{"/search?q=what", 400, "not a block height"},
		{"/search?q=3", 303, "/block/3"},
		{"/search?q=" + tx, 303, "/tx/" + tx},
		{"/search?q=" + bob.Address(), 303, "/account/" + bob.Address()},
		{"/search?q=" + alice.Public().Hex(), 303, "/account/" + alice.Public().Address()},
		{"/search?q=" + strings.Repeat("0", 64), 404, "nothing on chain"},
	} {
		status, body := get(t, base+tc.path)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d, want %d with %q:\n%s", tc.path, status, tc.status, tc.want, mainOf(body))
		}
	}
	// A block hash finds its block.
	lb, err := c.LightBlock(ctx, res.Height)
	if err != nil {
		t.Fatal(err)
	}
	if status, loc := get(t, fmt.Sprintf("%s/search?q=%X", base, lb.Hash())); status != 303 || loc != fmt.Sprintf("/block/%d", res.Height) {
		t.Errorf("search by block hash: %d %s", status, loc)
	}
	// /events streams the height of each new block.
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/events", nil)
	ev, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Body.Close()
	if ct := ev.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("/events: Content-Type %q", ct)
	}
	buf := make([]byte, 0, 512)
	for strings.Count(string(buf), "event: block") < 2 {
		chunk := make([]byte, 256)
		k, err := ev.Body.Read(chunk)
		if err != nil {
			t.Fatalf("/events: %v after %q", err, buf)
		}
		buf = append(buf, chunk[:k]...)
	}
	ev.Body.Close()
	// With the node down, a search says so (502), not "nothing on
	// chain" (404): the lookups fail alike for both.
	n.Stop(0)
	if status, body := get(t, fmt.Sprintf("%s/search?q=%s", base, tx)); status != http.StatusBadGateway && status != http.StatusGatewayTimeout {
		t.Errorf("search with the node down: %d %s", status, mainOf(body))
	}
}

// mainOf is the main part of a page (the whole body if it has none).
func mainOf(page string) string {
	if _, m, ok := strings.Cut(page, "<main>"); ok {
		m, _, _ = strings.Cut(m, "</main>")
		return m
	}
	return page
}

// The parameters page prints integers exactly (max_command_gas
// 100000000, not 1e+08); the gatekeepers page shows the running runtime
// migration (none before, its target build and start after a motion
// enacts one).
func TestParamsExactAndMigration(t *testing.T) {
	g := node.DevGenesisState([]byte{7})
	g.Governance.Threshold = 1
	g.Params.MaxCommandGas, g.Params.MaxTxBytes = 100_000_000, 4_194_304
	n := testnet.New(t, testnet.Options{Genesis: g})
	c := n.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base, _ := startExplorer(t, c, n.RPC(0))
	_, body := get(t, base+"/params")
	for _, want := range []string{`<th>max_command_gas</th><td class="mono">100000000</td>`, `<th>max_tx_bytes</th><td class="mono">4194304</td>`} {
		if !strings.Contains(body, want) {
			t.Errorf("/params lacks %q:\n%s", want, mainOf(body))
		}
	}
	if strings.Contains(body, "e+") {
		t.Errorf("/params prints a float:\n%s", mainOf(body))
	}
	if _, body := get(t, base+"/gatekeepers"); !strings.Contains(body, "<h2>Runtime migration</h2>") || !strings.Contains(body, "<th>running</th><td>none</td>") {
		t.Errorf("/gatekeepers before a migration:\n%s", mainOf(body))
	}
	target := strings.Repeat("5e", 32)
	res, err := c.NewSigner(crypto.MustKeyPairFromURI("//Alice")).Submit(ctx, &api.GovPropose{Action: api.Action{Kind: api.ActionMigrateRuntime, Measurement: []byte(strings.Repeat("\x5e", 32))}})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("to build <span class=\"mono\">0x%s</span> since height %d", target, res.Height)
	testnet.WaitFor(t, time.Minute, "the migration on /gatekeepers", func() (bool, error) {
		_, body := get(t, base+"/gatekeepers")
		return strings.Contains(body, want) && strings.Contains(body, "<th>retires</th><td class=\"mono\">0x07"), nil
	})
}
