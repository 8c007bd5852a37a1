package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/phalago/phala/client/pruntime"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/engine"
	"github.com/phalago/phala/internal/enclave/platform"
	"github.com/phalago/phala/internal/enclave/sealing"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/relayer"
	"github.com/phalago/phala/internal/testnet"
)

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type proc struct {
	cmd *exec.Cmd
	out *strings.Builder
	api *pruntime.Client // the control API
	pub *pruntime.Public
}

func start(t *testing.T, bin, dataDir, genesis string) *proc {
	t.Helper()
	addr, control := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "--data-dir", dataDir, "--genesis", genesis, "--listen", addr, "--control-listen", control, "--log-level", "warn")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, out: out, api: pruntime.NewClient("http://" + control), pub: pruntime.NewPublic("http://" + addr)}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	testnet.WaitFor(t, 30*time.Second, "pruntime API", func() (bool, error) {
		_, err := p.api.Info(context.Background())
		return err == nil, nil
	})
	return p
}

// kill -9 pruntime at several moments while it is fed the chain, restart it
// each time, and check that after catching up its state root equals that of
// an instance that never stopped.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a real pruntime")
	}
	bin := filepath.Join(t.TempDir(), "pruntime")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	// The control API's flags: --help says why it stays on loopback, and
	// a --control-allow that is not a network is refused before starting.
	help, _ := exec.Command(bin, "--help").CombinedOutput()
	for _, want := range []string{"--control-listen", "--control-allow", "loopback", "stall"} {
		if !strings.Contains(string(help), want) {
			t.Errorf("--help does not mention %q", want)
		}
	}
	if out, err := exec.Command(bin, "--genesis", "x", "--data-dir", t.TempDir(), "--control-allow", "10.0.0.1").CombinedOutput(); err == nil || !strings.Contains(string(out), "CIDR") {
		t.Fatalf("a bad --control-allow: %v\n%s", err, out)
	}
	net := testnet.New(t, testnet.Options{})
	c := net.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := c.NewSigner(crypto.MustKeyPairFromURI("//Alice"))
	for i := 0; i < 12; i++ {
		if _, err := s.Submit(ctx, &api.PostMessage{Topic: "app/crash", Payload: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	top, _ := c.Height(ctx)
	if _, err := c.SignedHeader(ctx, top+1); err != nil {
		t.Fatal(err)
	}
	f := &relayer.Fetcher{C: c}
	headers, err := f.Headers(ctx, 1, top+1)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := f.Blocks(ctx, 1, top)
	if err != nil {
		t.Fatal(err)
	}
	genesisFile := filepath.Join(net.Homes[0], "config", "genesis.json")
	// A public API bound to every interface needs --endpoint: the URL
	// other hosts reach it at goes in the WorkerInfo, and 0.0.0.0 is none.
	if out, err := exec.Command(bin, "--genesis", genesisFile, "--data-dir", t.TempDir(), "--listen", "0.0.0.0:0", "--control-listen", "127.0.0.1:0").CombinedOutput(); err == nil || !strings.Contains(string(out), "--endpoint") {
		t.Fatalf("a wildcard --listen without --endpoint: %v\n%s", err, out)
	}

	// The reference never stops.
	doc, _ := cmttypes.GenesisDocFromFile(genesisFile)
	refDir := t.TempDir()
	plat, _ := platform.NewSim(refDir, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ref, err := engine.New(engine.Config{DataDir: refDir, Genesis: doc, Platform: plat, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ref.SyncHeaders(headers); err != nil {
		t.Fatal(err)
	}
	if _, err := ref.DispatchBlocks(blocks); err != nil {
		t.Fatal(err)
	}

	dataDir := t.TempDir()
	p := start(t, bin, dataDir, genesisFile)
	first, _ := p.api.Info(ctx)
	kills := 0
	// Feed one header and one block per request, as a relayer catching up
	// would; kill -9 every few requests, sometimes while a request is in
	// flight, and resume from what pRuntime reports.
	for step := 0; ; step++ {
		info, err := p.api.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Dispatched == top {
			break
		}
		if step%5 == 4 && kills < 4 {
			if step%2 == 0 {
				// In flight: send a request and kill while it runs.
				go p.api.SyncHeaders(ctx, &api.HeaderBatch{Headers: headers.Headers[info.Synced:min(info.Synced+3, int64(len(headers.Headers)))]})
			}
			p.cmd.Process.Signal(syscall.SIGKILL)
			p.cmd.Wait()
			kills++
			p = start(t, bin, dataDir, genesisFile)
			continue
		}
		if info.Synced < int64(len(headers.Headers)) {
			if _, err := p.api.SyncHeaders(ctx, &api.HeaderBatch{Headers: headers.Headers[info.Synced : info.Synced+1]}); err != nil {
				t.Fatal(err)
			}
		}
		info, _ = p.api.Info(ctx)
		if info.Dispatched < info.Synced-1 {
			if _, err := p.api.DispatchBlocks(ctx, &api.BlockBatch{Blocks: blocks.Blocks[info.Dispatched : info.Dispatched+1]}); err != nil {
				var apiErr *pruntime.Error
				if !errors.As(err, &apiErr) {
					t.Fatal(err)
				}
				t.Fatalf("dispatch refused: %v", err)
			}
		}
	}
	final, err := p.api.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if kills < 2 {
		t.Fatalf("only %d kills", kills)
	}
	if final.IdentityKey != first.IdentityKey {
		t.Fatal("identity changed across crashes")
	}
	if want := fmt.Sprintf("%x", ref.StateRoot()); final.StateRoot != want {
		t.Fatalf("state root after %d crashes %s, reference %s", kills, final.StateRoot, want)
	}
	// The public API tells the public facts and refuses to be fed.
	pub, err := p.pub.Info(ctx)
	if err != nil || pub.IdentityKey != final.IdentityKey || pub.Dispatched != final.Dispatched {
		t.Fatalf("public info %+v: %v", pub, err)
	}
	onPublic := pruntime.NewClient(p.pub.Base)
	if _, err := onPublic.SyncHeaders(ctx, &api.HeaderBatch{}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("sync on the public API: %v", err)
	}
	// Its measurement is the binary's hash.
	exe, _ := os.ReadFile(bin)
	if m := sha256.Sum256(exe); final.Measurement != fmt.Sprintf("%x", m) {
		t.Fatal("measurement is not the binary's hash")
	}
}

// init makes pre-genesis keys once; the first start with a genesis naming
// them as first gatekeeper binds them and creates the MasterKey; init
// refuses to run over existing keys.
func TestInitPreGenesis(t *testing.T) {
	dir := t.TempDir()
	var out strings.Builder
	if err := initEntity(dir, &out); err != nil {
		t.Fatal(err)
	}
	var id string
	if _, err := fmt.Sscanf(out.String(), "identity %s", &id); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if err := initEntity(dir, io.Discard); err == nil {
		t.Fatal("init over existing keys")
	}
	pk, err := crypto.ParsePublicKey(id)
	if err != nil {
		t.Fatal(err)
	}
	gs := node.DevGenesisState([]byte{1})
	gs.Gatekeepers = []crypto.PublicKey{pk}
	app, _ := json.Marshal(gs)
	pv := cmttypes.NewMockPV()
	pub, _ := pv.GetPubKey()
	doc := func(chainID string) *cmttypes.GenesisDoc {
		return &cmttypes.GenesisDoc{ChainID: chainID, GenesisTime: time.Unix(1_700_000_000, 0).UTC(), InitialHeight: 1,
			Validators: []cmttypes.GenesisValidator{{PubKey: pub, Power: 10}}, AppState: app}
	}
	open := func(chainID string) (*engine.Engine, error) {
		p, err := platform.NewSim(dir, nil, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return engine.New(engine.Config{DataDir: dir, Genesis: doc(chainID), Platform: p, Log: slog.New(slog.DiscardHandler)})
	}
	e, err := open("phala-init")
	if err != nil {
		t.Fatal(err)
	}
	if info := e.Info(); info.Role != engine.RoleGatekeeper || info.IdentityKey != id || info.MasterKey == "" {
		t.Fatalf("first start: %+v", info)
	}
	if _, err := open("phala-other"); !errors.Is(err, sealing.ErrOtherChain) {
		t.Fatalf("keys bound at first start opened on another chain: %v", err)
	}
}

// snapshot is every file of dir with its contents and modification time.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		info, err := d.Info()
		if err != nil {
			t.Fatal(err)
		}
		var b []byte
		if !d.IsDir() {
			b, _ = os.ReadFile(p)
		}
		m[p] = fmt.Sprintf("%s %v %x", info.ModTime(), info.Mode(), b)
		return nil
	})
	return m
}

// identity prints init's public keys and the measurement of the running
// executable, before and after the first start (then naming the chain),
// never a secret, and changes nothing in the data directory; without keys
// it names `pruntime init` and creates nothing.
func TestIdentity(t *testing.T) {
	empty := t.TempDir()
	err := showIdentity(empty, io.Discard)
	if !errors.Is(err, errNoKeys) || !strings.Contains(err.Error(), "pruntime init --data-dir "+empty) {
		t.Fatalf("identity of an empty directory: %v", err)
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Fatalf("identity of an empty directory created %v", ents)
	}
	// Missing directory: the same error, and no directory.
	if err := showIdentity(filepath.Join(empty, "none"), io.Discard); !errors.Is(err, errNoKeys) {
		t.Fatalf("identity of a missing directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(empty, "none")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("identity created the data directory")
	}

	dir := t.TempDir()
	var initOut strings.Builder
	if err := initEntity(dir, &initOut); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	var out strings.Builder
	if err := showIdentity(dir, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != initOut.String() {
		t.Fatalf("identity prints\n%s\ninit printed\n%s", out.String(), initOut.String())
	}
	m, err := platform.ExecutableMeasurement()
	if err != nil {
		t.Fatal(err)
	}
	var id, ecdh, meas string
	if _, err := fmt.Sscanf(out.String(), "identity %s\necdh %s\nmeasurement %s\n", &id, &ecdh, &meas); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if meas != fmt.Sprintf("%x", m) {
		t.Fatalf("measurement %s, the executable's is %x", meas, m)
	}
	if want := "phala-node init --gatekeeper " + id + " --measurement " + meas + "\n"; !strings.HasSuffix(out.String(), want) || !strings.Contains(out.String(), "pre-genesis") {
		t.Fatalf("output does not end with %q:\n%s", want, out.String())
	}
	// No secret: the only 32-byte hex values printed are the two public
	// keys and the measurement, and no byte string of the data directory's
	// files (the platform key, the sealed seeds) appears.
	for _, w := range strings.Fields(out.String()) {
		if h := strings.TrimPrefix(w, "0x"); len(h) == 64 && h != id[2:] && h != ecdh[2:] && h != meas {
			t.Errorf("identity printed an unexpected 32-byte value %s", w)
		}
	}
	key, _ := os.ReadFile(filepath.Join(dir, platform.SimKeyFile))
	if strings.Contains(out.String(), fmt.Sprintf("%x", key)) {
		t.Fatal("identity printed the platform key")
	}
	if after := snapshot(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("identity changed the data directory:\n%v\n%v", before, after)
	}

	// After the first start the keys are bound: identity says to which
	// chain, with the same keys.
	pk, _ := crypto.ParsePublicKey(id)
	gs := node.DevGenesisState([]byte{1})
	gs.Gatekeepers = []crypto.PublicKey{pk}
	app, _ := json.Marshal(gs)
	pv := cmttypes.NewMockPV()
	pub, _ := pv.GetPubKey()
	doc := &cmttypes.GenesisDoc{ChainID: "phala-identity", GenesisTime: time.Unix(1_700_000_000, 0).UTC(), InitialHeight: 1,
		Validators: []cmttypes.GenesisValidator{{PubKey: pub, Power: 10}}, AppState: app}
	p, _ := platform.NewSim(dir, nil, slog.New(slog.DiscardHandler))
	e, err := engine.New(engine.Config{DataDir: dir, Genesis: doc, Platform: p, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := showIdentity(dir, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "identity "+id+"\necdh "+ecdh+"\n") || !strings.Contains(out.String(), `bound to chain "phala-identity"`) ||
		strings.Contains(out.String(), "phala-node init") {
		t.Fatalf("identity after the first start:\n%s", out.String())
	}

	// Unreadable keys are an error, not new keys.
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, platform.SimKeyFile), make([]byte, 32), 0o600)
	os.WriteFile(filepath.Join(bad, "entity.sealed"), []byte("garbage"), 0o600)
	if err := showIdentity(bad, io.Discard); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("identity of corrupt keys: %v", err)
	}
}
