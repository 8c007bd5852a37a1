package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/engine"
	"github.com/phalago/phala/internal/enclave/httpapi"
	"github.com/phalago/phala/internal/enclave/platform"
	"github.com/phalago/phala/internal/testnet"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestHelpSaysWhoPays(t *testing.T) {
	var out syncBuffer
	cmd := newRootCmd(&out, &out)
	cmd.SetArgs([]string{"--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--node", "--pruntime-control", "--batch-bytes", "--operator", "--batch", "--no-register", "--stake", "--log-level", "pays the fees", "//Alice"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help does not mention %q", want)
		}
	}
}

func TestBadFlagsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--batch", "-1"},
		{"--batch", "1000000"},
		{"--log-level", "loud"},
		{"--operator", ""},
		{"--node", "not a url"},
		{"--stake", "1.5e3"},
		{"--stake", "-1"},
		{"extra-arg"},
	} {
		var out syncBuffer
		cmd := newRootCmd(&out, &out)
		cmd.SetArgs(args)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := cmd.ExecuteContext(ctx)
		cancel()
		if err == nil {
			t.Errorf("%q accepted", args)
		}
		if strings.Contains(out.String(), "pherry ready") {
			t.Errorf("%q: ready line printed", args)
		}
	}
}

// --operator - reads the secret URI from standard input (as the systemd
// unit of docs/operators.md feeds it): the operator is that account, and
// an empty or bad line is refused before anything starts.
func TestOperatorFromStdin(t *testing.T) {
	net, _, url := setup(t)
	for _, tc := range []struct {
		stdin string
		ok    bool
	}{
		{"//Ferdie\n", true},
		{"", false},
		{"not a secret uri at all\n", false},
	} {
		var out, errOut syncBuffer
		cmd := newRootCmd(&out, &errOut)
		cmd.SetIn(strings.NewReader(tc.stdin))
		cmd.SetArgs([]string{"--node", net.RPC(0), "--pruntime-control", url, "--no-register", "--log-level", "warn", "--operator", "-"})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- cmd.ExecuteContext(ctx) }()
		if tc.ok {
			testnet.WaitFor(t, 10*time.Second, "ready line", func() (bool, error) {
				return strings.Contains(out.String(), "pherry ready"), nil
			})
			if want := crypto.MustKeyPairFromURI("//Ferdie").Public().Address(); !strings.Contains(out.String(), want) {
				t.Errorf("ready line %q does not name //Ferdie (%s) as the operator", out.String(), want)
			}
		}
		cancel()
		err := <-done
		if tc.ok != (err == nil) {
			t.Errorf("stdin %q: %v", tc.stdin, err)
		}
		if strings.Contains(errOut.String()+out.String(), "not a secret uri") {
			t.Errorf("stdin %q: the secret is echoed", tc.stdin)
		}
	}
}

// chain and pRuntime for the command to relay between.
func setup(t *testing.T) (*testnet.Network, *engine.Engine, string) {
	t.Helper()
	net := testnet.New(t, testnet.Options{})
	doc, err := cmttypes.GenesisDocFromFile(filepath.Join(net.Homes[0], "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log := testnet.TestLogger(t, slog.LevelWarn)
	p, err := platform.NewSim(dir, []byte("pherry cmd test"), log)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Config{DataDir: dir, Genesis: doc, Platform: p, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.ControlHandler(e, log, httpapi.ControlOptions{}))
	t.Cleanup(srv.Close)
	return net, e, srv.URL
}

// The command relays in-process and returns nil when its context ends
// (what Ctrl-C does in main).
func TestRunAndStop(t *testing.T) {
	net, e, url := setup(t)
	var out, errOut syncBuffer
	cmd := newRootCmd(&out, &errOut)
	cmd.SetArgs([]string{"--node", net.RPC(0), "--pruntime-control", url, "--no-register", "--log-level", "warn", "--poll", "20ms"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	testnet.WaitFor(t, 10*time.Second, "ready line", func() (bool, error) {
		return strings.Contains(out.String(), "pherry ready"), nil
	})
	h := net.Height(0)
	testnet.WaitFor(t, 20*time.Second, "pRuntime dispatches the chain", func() (bool, error) {
		return e.Info().Dispatched >= h, nil
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stopped with %v\n%s", err, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop within 10s")
	}
}

// The built binary stops cleanly (exit 0) on SIGINT.
func TestInterruptStopsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "pherry")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	net, e, url := setup(t)
	cmd := exec.Command(bin, "--node", net.RPC(0), "--pruntime-control", url, "--no-register", "--log-level", "info", "--poll", "20ms")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	h := net.Height(0)
	testnet.WaitFor(t, 20*time.Second, "pRuntime dispatches the chain", func() (bool, error) {
		return e.Info().Dispatched >= h, nil
	})
	if !strings.Contains(out.String(), "pherry ready") {
		t.Fatalf("no ready line:\n%s", out.String())
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("exit after SIGINT: %v\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Signal(syscall.SIGKILL)
		t.Fatalf("still running 10s after SIGINT\n%s", out.String())
	}
	if !strings.Contains(out.String(), "pherry stopped") {
		t.Fatalf("no clean stop logged:\n%s", out.String())
	}
}
