package explorer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/devnet"
	"github.com/phalago/phala/internal/testnet"
)

// browsers are the names of a Chromium binary, looked up in PATH.
var browsers = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

func findBrowser() string {
	for _, b := range browsers {
		if p, err := exec.LookPath(b); err == nil {
			return p
		}
	}
	return ""
}

// In headless Chromium against a devnet (a validator, a gatekeeper and a
// worker in-process) where //Alice deployed the token contract and sent
// //Bob 1 PHA: home → the block of the worker's registration → its
// register_worker transaction → the worker → the contract it runs; then
// the search box with a height, the transfer's hash, Bob's address and
// the contract id; and the tip moving on the home page as blocks arrive.
func TestBrowser(t *testing.T) {
	browser := findBrowser()
	if browser == "" {
		t.Skipf("no Chromium found (looked for %s in PATH): install it (Debian: apt-get install -y chromium; .ci/run does) to run the browser test", strings.Join(browsers, ", "))
	}
	if testing.Short() {
		t.Skip("starts a devnet and a browser")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	cfg := devnet.DefaultConfig(t.TempDir())
	cfg.Ports, cfg.PRuntimePort = testnet.FreePorts(t, 2), 0
	cfg.Workers = 1
	cfg.TimeoutCommit = 200 * time.Millisecond
	cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := devnet.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	if err := d.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := d.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	phase("devnet ready")
	alice := crypto.MustKeyPairFromURI("//Alice")
	bob := crypto.MustKeyPairFromURI("//Bob").Public()
	signer := c.NewSigner(alice)
	upload, _, err := signer.Upload(ctx, contracttest.Build(t, filepath.Join("..", "..", "examples", "contracts", "token")), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.WaitContract(ctx, upload)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Workers) != 1 {
		t.Fatalf("token deployed on %d workers", len(rec.Workers))
	}
	transfer, err := signer.Submit(ctx, &api.Transfer{To: bob, Amount: api.Unit})
	if err != nil {
		t.Fatal(err)
	}
	phase("token deployed, transfer committed")
	worker := rec.Workers[0]
	wrec, err := c.Worker(ctx, worker)
	if err != nil {
		t.Fatal(err)
	}

	// The explorer keeps every block so far: the worker's registration
	// is on its home page.
	tip, err := c.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ecfg := DefaultConfig()
	ecfg.Keep = int(tip) + 1000
	base, _ := startExplorerConfig(t, c, d.RPC(), ecfg)
	testnet.WaitFor(t, time.Minute, "the explorer to check the transfer's block", func() (bool, error) {
		status, body := get(t, base+"/latest")
		return status == 200 && strings.Contains(body, fmt.Sprintf(`href="/block/%d"`, transfer.Height)), nil
	})

	phase(fmt.Sprintf("explorer following %d blocks", tip))
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	defer bcancel()
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// at waits until the browser shows path and its page has loaded.
	at := func(path, ready string) {
		t.Helper()
		testnet.WaitFor(t, time.Minute, "the browser at "+path, func() (bool, error) {
			loc, err := chromedp.Run(bctx, chromedp.Location())
			if err != nil {
				// Mid-navigation the page can answer "Inspected target
				// navigated or closed": ask again (the deadline bounds it).
				return false, nil
			}
			return strings.HasSuffix(loc, path), nil
		})
		run("load "+path, chromedp.WaitVisible(chromedp.CSS(ready)))
	}
	// click clicks the first element sel matches, found and clicked in one
	// step: the home page replaces its tables as blocks arrive.
	click := func(sel string) {
		t.Helper()
		js, _ := json.Marshal(sel)
		ok, err := chromedp.Run(bctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e) return false; e.click(); return true; })()`, js)))
		if err != nil || !ok {
			t.Fatalf("click %s: found %v, %v", sel, ok, err)
		}
	}
	// text reads the text of the first element sel matches, in one step
	// for the same reason.
	text := func(sel string) string {
		t.Helper()
		js, _ := json.Marshal(sel)
		s, err := chromedp.Run(bctx, chromedp.Evaluate[string](fmt.Sprintf(`(() => { const e = document.querySelector(%s); return e ? e.innerText : "<no element>"; })()`, js)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}

	// Home → the block of the worker's registration.
	blockPath := fmt.Sprintf("/block/%d", wrec.RegisteredAt)
	run("home", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#blocks")))
	if h1 := text("h1"); h1 != "Latest blocks" {
		t.Errorf("home: h1 %q", h1)
	}
	if got := text("#txs"); !strings.Contains(got, "transfer 1 PHA to "+bob.Address()) {
		t.Errorf("home: the latest transactions lack the transfer:\n%s", got)
	}
	click(`#blocks a[href="` + blockPath + `"]`)
	at(blockPath, "#header")
	if h1 := text("h1"); h1 != fmt.Sprintf("Block %d", wrec.RegisteredAt) {
		t.Errorf("block page: h1 %q", h1)
	}
	// → its register_worker transaction (the row naming the worker).
	txHref, err := chromedp.Run(bctx, chromedp.Evaluate[string](fmt.Sprintf(`(() => { const r = [...document.querySelectorAll("#txs tr")].find(r => r.textContent.includes("register_worker %s")); return r ? r.querySelector('a[href^="/tx/"]').getAttribute("href") : ""; })()`, worker.Hex())))
	if err != nil {
		t.Fatalf("find the registration: %v", err)
	}
	if txHref == "" {
		t.Fatalf("block %d lists no register_worker of %s:\n%s", wrec.RegisteredAt, worker.Hex(), text("#txs"))
	}
	click(`#txs a[href="` + txHref + `"]`)
	at(txHref, "#tx")
	if call := text("#call"); call != "register_worker" {
		t.Errorf("transaction page: call %q", call)
	}
	if f := text("#fields"); !strings.Contains(f, "quote_bytes") || !strings.Contains(f, wrec.Platform) {
		t.Errorf("transaction page: fields lack the quote's size or the platform:\n%s", f)
	}
	// → the worker (the identity field links to it).
	workerPath := "/worker/" + worker.Hex()
	click(`#fields a[href="` + workerPath + `"]`)
	at(workerPath, "#worker")
	if p := text("#platform"); p != wrec.Platform {
		t.Errorf("worker page: platform %q, want %q", p, wrec.Platform)
	}
	if w := text("#worker"); !strings.Contains(w, "active") || !strings.Contains(w, fmt.Sprintf("%x", wrec.Measurement)) {
		t.Errorf("worker page: not active or no measurement:\n%s", w)
	}
	// → the contract it runs.
	contractPath := "/contract/" + rec.Identity.Hex()
	click(`#contracts a[href="` + contractPath + `"]`)
	at(contractPath, "#contract")
	if s := text("#status"); !strings.HasPrefix(s, "running") {
		t.Errorf("contract page: status %q", s)
	}
	if dep := text("#deployer"); dep != alice.Public().Address() {
		t.Errorf("contract page: deployer %q", dep)
	}
	if w := text("#workers"); !strings.Contains(w, worker.Hex()) {
		t.Errorf("contract page: workers %q", w)
	}

	phase("navigated home → block → transaction → worker → contract")
	// The search box.
	search := func(q, path, ready string) {
		t.Helper()
		run("search "+q, chromedp.SetValue(chromedp.CSS("#q"), q), chromedp.Submit(chromedp.CSS("#q")))
		at(path, ready)
		phase("searched " + q)
	}
	search(fmt.Sprint(transfer.Height), fmt.Sprintf("/block/%d", transfer.Height), "#header")
	if got := text("#txs"); !strings.Contains(got, "transfer 1 PHA to "+bob.Address()) {
		t.Errorf("block %d lacks the transfer:\n%s", transfer.Height, got)
	}
	hash := fmt.Sprintf("%X", transfer.Hash)
	search(strings.ToLower(hash), "/tx/"+hash, "#tx")
	if call, signer := text("#call"), text("#signer"); call != "transfer" || signer != alice.Public().Address() {
		t.Errorf("transfer page: call %q signer %q", call, signer)
	}
	search(bob.Address(), "/account/"+bob.Address(), "#account")
	if b := text("#balance"); !strings.HasSuffix(b, " PHA") {
		t.Errorf("Bob's balance: %q", b)
	}
	search(rec.Identity.Hex(), contractPath, "#contract")
	search("no-such-thing", "/search?q=no-such-thing", "#error")

	// Live: the tip on the home page follows the chain.
	run("home again", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#blocks")))
	first := text("#tip")
	testnet.WaitFor(t, time.Minute, "the home page's tip to move", func() (bool, error) {
		return text("#tip") != first, nil
	})
	phase("the tip moved live")

	// The listings with a worker, a gatekeeper and a contract in them.
	for _, tc := range []struct{ path, want string }{
		{"/workers", workerPath},
		{"/gatekeepers", `id="masterkey">0x`},
		{"/contracts", contractPath},
		{"/queue", "phala/contracts/deployed"},
		{"/params", "registration_lifetime"},
		{"/account/" + wrec.Info.Operator.Address(), `id="balance"`},
	} {
		if status, body := get(t, base+tc.path); status != 200 || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d, want 200 with %q:\n%s", tc.path, status, tc.want, mainOf(body))
		}
	}
}
