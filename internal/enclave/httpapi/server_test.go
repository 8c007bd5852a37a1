package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client/pruntime"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/engine"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/platform"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/relayer"
	"github.com/phalago/phala/internal/testnet"
)

// newServer serves a fresh worker engine's control API (on loopback, so
// allowed); newServers serves its public API too.
func newServer(t *testing.T) (*httptest.Server, *engine.Engine) {
	t.Helper()
	control, _, e := newServers(t, ControlOptions{})
	return control, e
}

func newServers(t *testing.T, opts ControlOptions) (control, public *httptest.Server, e *engine.Engine) {
	t.Helper()
	e = newEngine(t, false)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	control = httptest.NewServer(ControlHandler(e, log, opts))
	t.Cleanup(control.Close)
	public = httptest.NewServer(PublicHandler(e, log))
	t.Cleanup(public.Close)
	return control, public, e
}

// newEngine returns a fresh engine: a worker, or the genesis gatekeeper
// (which holds the MasterKey but announces it only once registered).
func newEngine(t *testing.T, gatekeeper bool) *engine.Engine {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := platform.NewSim(dir, []byte("code"), log)
	if err != nil {
		t.Fatal(err)
	}
	g := node.DevGenesisState()
	if gatekeeper {
		ent, err := keys.CreatePreGenesisEntity(p, dir)
		if err != nil {
			t.Fatal(err)
		}
		g.Gatekeepers = []crypto.PublicKey{ent.Identity.Public()}
	}
	doc, err := node.NewGenesisDoc("phala-api-test", []cmttypes.GenesisValidator{testValidator()}, g)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Config{DataDir: dir, Genesis: doc, Endpoint: "http://w", Platform: p, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func testValidator() cmttypes.GenesisValidator {
	v, _ := cmttypes.RandValidator(false, 10)
	return cmttypes.GenesisValidator{Address: v.Address, PubKey: v.PubKey, Power: v.VotingPower}
}

func TestRequestsRefusedWithReason(t *testing.T) {
	srv, e := newServer(t)
	before := e.StateRoot()
	big := bytes.Repeat([]byte{0}, api.MaxSyncPayloadBytes+1)
	for _, tc := range []struct {
		name, method, path string
		body               []byte
		status             int
	}{
		{"garbage headers", "POST", "/sync/headers", []byte{0xff, 0xff}, 400},
		{"trailing bytes", "POST", "/sync/headers", append((&api.HeaderBatch{}).Encode(), 1), 400},
		{"unverifiable header", "POST", "/sync/headers", (&api.HeaderBatch{Headers: []api.HeaderSync{{SignedHeader: []byte{1}, Validators: []byte{2}}}}).Encode(), 422},
		{"garbage blocks", "POST", "/sync/blocks", []byte("hello"), 400},
		{"block before header", "POST", "/sync/blocks", (&api.BlockBatch{Blocks: []api.BlockMessages{{Height: 1, StateRoot: make([]byte, 32)}}}).Encode(), 409},
		{"oversized", "POST", "/sync/blocks", big, 413},
		{"bad registration body", "POST", "/registration", []byte("{"), 400},
		{"bad operator", "POST", "/registration", []byte(`{"operator":"0x00"}`), 400},
		{"wrong method", "GET", "/sync/headers", nil, 405},
		{"unknown path", "GET", "/secrets", nil, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, bytes.NewReader(tc.body))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
				var eb errorBody
				if json.Unmarshal(body, &eb) != nil || eb.Error == "" {
					t.Fatalf("no reason given: %s", body)
				}
			}
		})
	}
	if e.StateRoot() != before {
		t.Fatal("refused requests changed the state")
	}
}

func TestClient(t *testing.T) {
	srv, e := newServer(t)
	c := pruntime.NewClient(srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := c.Info(ctx)
	if err != nil || info.IdentityKey != e.Identity().Hex() || info.Role != engine.RoleWorker {
		t.Fatalf("info %+v %v", info, err)
	}
	// A report cites a recent block the pRuntime verified: none yet. (The
	// relayer and engine tests register synced pRuntimes.)
	op := crypto.MustKeyPairFromURI("//Bob").Public()
	_, err = c.Registration(ctx, op)
	var notSynced *pruntime.Error
	if !errors.As(err, &notSynced) || notSynced.Status != http.StatusConflict || !strings.Contains(err.Error(), "verify at least two headers") {
		t.Fatalf("registration of an unsynced pRuntime: %v", err)
	}
	if eg, err := c.Egress(ctx); err != nil || len(eg) != 0 {
		t.Fatalf("egress %v %v", eg, err)
	}
	_, err = c.DispatchBlocks(ctx, &api.BlockBatch{Blocks: []api.BlockMessages{{Height: 1, StateRoot: make([]byte, 32)}}})
	var apiErr *pruntime.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 409 || apiErr.Dispatched == nil || *apiErr.Dispatched != 0 {
		t.Fatalf("refusal: %v", err)
	}
	// Nothing the API returns holds a secret: the sealed files' plaintext
	// never appears (spot check: the info JSON has only public keys).
	b, _ := json.Marshal(info)
	if strings.Contains(string(b), "seed") || strings.Contains(string(b), "secret") {
		t.Fatalf("info mentions secrets: %s", b)
	}
}

// gatekeeperWithEgress returns the genesis gatekeeper of a real one-node
// chain, synced past its own registration, so that its egress holds its
// MasterKey announcement (a gatekeeper announces only once it is attested).
func gatekeeperWithEgress(t *testing.T) *engine.Engine {
	t.Helper()
	code := []byte("code")
	m := sha256.Sum256(code)
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := platform.NewSim(dir, code, log)
	if err != nil {
		t.Fatal(err)
	}
	ent, err := keys.CreatePreGenesisEntity(p, dir)
	if err != nil {
		t.Fatal(err)
	}
	g := node.DevGenesisState(m[:])
	g.Gatekeepers = []crypto.PublicKey{ent.Identity.Public()}
	net := testnet.New(t, testnet.Options{Genesis: g})
	c := net.Client(0)
	e, err := engine.New(engine.Config{DataDir: dir, Genesis: net.Genesis(), Endpoint: "http://w", Platform: p, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := &relayer.Fetcher{C: c}
	sync := func() {
		t.Helper()
		top, err := c.Height(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c.SignedHeader(ctx, top+1) // waits for the header that commits to top
		info := e.Info()
		hs, err := f.Headers(ctx, info.Synced+1, top+1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.SyncHeaders(hs); err != nil {
			t.Fatal(err)
		}
		bs, err := f.Blocks(ctx, info.Dispatched+1, top)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.DispatchBlocks(bs); err != nil {
			t.Fatal(err)
		}
	}
	net.WaitHeight(3, 30*time.Second)
	sync()
	operator := crypto.MustKeyPairFromURI("//Alice")
	call, err := e.Registration(operator.Public())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewSigner(operator).Submit(ctx, call); err != nil {
		t.Fatal(err)
	}
	testnet.WaitFor(t, 30*time.Second, "the gatekeeper's announcement in its egress", func() (bool, error) {
		sync()
		return len(e.Egress()) > 0, nil
	})
	return e
}
