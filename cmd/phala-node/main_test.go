package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
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
)

// The CLI, tested by running the binary.

func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "phala-node")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := build(t)
	run := func(args ...string) (string, error) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err
	}

	t.Run("help", func(t *testing.T) {
		for _, cmd := range []string{"init", "start", "dev", "testnet", "bench"} {
			out, err := run(cmd, "--help")
			if err != nil || !strings.Contains(out, "--home") && !strings.Contains(out, "--rpc") && !strings.Contains(out, "--output") {
				t.Errorf("%s --help: %v\n%s", cmd, err, out)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		out, err := run("start", "--home", filepath.Join(t.TempDir(), "missing"))
		if err == nil || !strings.Contains(out, "phala-node init") {
			t.Errorf("start without init: %v\n%s", err, out)
		}
		out, err = run("start", "--log-level", "loud")
		if err == nil || !strings.Contains(out, "--log-level") {
			t.Errorf("bad log level: %v\n%s", err, out)
		}
		home := t.TempDir()
		if out, err := run("init", "--home", home); err != nil {
			t.Fatalf("init: %v\n%s", err, out)
		}
		out, err = run("init", "--home", home)
		if err == nil || !strings.Contains(out, "already holds a genesis") {
			t.Errorf("second init: %v\n%s", err, out)
		}
	})

	// init names gatekeepers and allowed measurements in the genesis.
	t.Run("init gatekeepers and measurements", func(t *testing.T) {
		home := t.TempDir()
		gk := crypto.MustKeyPairFromURI("//SomeGatekeeper").Public()
		m := strings.Repeat("ab", 32)
		if out, err := run("init", "--home", home, "--gatekeeper", gk.Hex(), "--measurement", m, "--measurement", "0x"+strings.Repeat("cd", 32)); err != nil {
			t.Fatalf("init: %v\n%s", err, out)
		}
		doc, err := cmttypes.GenesisDocFromFile(filepath.Join(home, "config", "genesis.json"))
		if err != nil {
			t.Fatal(err)
		}
		g, err := api.DecodeGenesisState(doc.AppState)
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Gatekeepers) != 1 || g.Gatekeepers[0] != gk || len(g.Attestation.Measurements) != 2 || g.Attestation.Measurements[0].String() != "0x"+m {
			t.Fatalf("genesis gatekeepers %v measurements %v", g.Gatekeepers, g.Attestation.Measurements)
		}
		for _, bad := range [][]string{
			{"--gatekeeper", "0x1234"},
			{"--measurement", "zz"},
			{"--measurement", strings.Repeat("ab", api.MaxMeasurementBytes+1)},
			{"--gatekeeper", gk.Hex(), "--gatekeeper", gk.Hex()},
		} {
			dir := t.TempDir()
			out, err := run(append([]string{"init", "--home", dir}, bad...)...)
			if err == nil || !strings.Contains(out, bad[0]) && !strings.Contains(out, "listed twice") {
				t.Errorf("init %v: %v\n%s", bad, err, out)
			}
			if _, serr := os.Stat(filepath.Join(dir, "config", "genesis.json")); serr == nil {
				t.Errorf("init %v wrote a genesis", bad)
			}
		}
	})

	t.Run("testnet", func(t *testing.T) {
		dir := t.TempDir()
		gk := crypto.MustKeyPairFromURI("//SomeGatekeeper").Public()
		m := strings.Repeat("ef", 32)
		out, err := run("testnet", "--validators", "3", "--output", dir, "--base-port", "36000", "--gatekeeper", gk.Hex(), "--measurement", m)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for i := 0; i < 3; i++ {
			doc, err := cmttypes.GenesisDocFromFile(filepath.Join(dir, fmt.Sprintf("node%d", i), "config", "genesis.json"))
			if err != nil {
				t.Fatal(err)
			}
			g, err := api.DecodeGenesisState(doc.AppState)
			if err != nil || len(g.Gatekeepers) != 1 || g.Gatekeepers[0] != gk || len(g.Attestation.Measurements) != 1 || g.Attestation.Measurements[0].String() != "0x"+m {
				t.Fatalf("node%d genesis: %v %+v", i, err, g)
			}
		}
		// A bad gatekeeper writes nothing.
		bad := t.TempDir()
		if out, err := run("testnet", "--output", bad, "--gatekeeper", "0x12"); err == nil || !strings.Contains(out, "--gatekeeper") {
			t.Fatalf("testnet with a bad --gatekeeper: %v\n%s", err, out)
		}
		if ents, _ := os.ReadDir(bad); len(ents) != 0 {
			t.Fatalf("testnet with a bad --gatekeeper wrote %v", ents)
		}
	})

	t.Run("testnet on several hosts", func(t *testing.T) {
		dir := t.TempDir()
		out, err := run("testnet", "--output", dir, "--hosts", "10.0.0.1,10.0.0.2", "--timeout-commit", "250ms")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		// One validator per host by default, told where it is reached.
		for i, host := range []string{"10.0.0.1", "10.0.0.2"} {
			if want := fmt.Sprintf("node%d: %s (host %s, p2p 26656, rpc 26657)", i, filepath.Join(dir, fmt.Sprintf("node%d", i)), host); !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
			b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("node%d", i), "config", "config.toml"))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{`external_address = "` + host + `:26656"`, `laddr = "tcp://` + host + `:26657"`, `timeout_commit = "250ms"`} {
				if !strings.Contains(string(b), want) {
					t.Errorf("node%d config.toml lacks %s", i, want)
				}
			}
		}
		bad := t.TempDir()
		for _, args := range [][]string{
			{"--hosts", "10.0.0.1", "--host", "127.0.0.2"},
			{"--hosts", "10.0.0.1,10.0.0.2", "--validators", "3"},
		} {
			if out, err := run(append([]string{"testnet", "--output", bad}, args...)...); err == nil {
				t.Errorf("testnet %v succeeded:\n%s", args, out)
			}
		}
		if ents, _ := os.ReadDir(bad); len(ents) != 0 {
			t.Fatalf("refused testnets wrote %v", ents)
		}
	})

	t.Run("maintenance", func(t *testing.T) { testMaintenance(t, bin) })

	t.Run("init start stop", func(t *testing.T) {
		home := t.TempDir()
		rpc := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		if out, err := run("init", "--home", home, "--rpc", rpc, "--p2p", fmt.Sprintf("127.0.0.1:%d", freePort(t))); err != nil {
			t.Fatalf("init: %v\n%s", err, out)
		}
		cmd := exec.Command(bin, "start", "--home", home)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+rpc+"/status", nil)
			res, err := http.DefaultClient.Do(req)
			cancel()
			if err == nil {
				res.Body.Close()
				if res.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("node did not answer on %s\n%s", rpc, out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("exit after SIGINT: %v\n%s", err, out.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("node did not stop\n%s", out.String())
		}
		if !strings.Contains(out.String(), "phala-node ready") || !strings.Contains(out.String(), "stopping") {
			t.Errorf("unexpected output:\n%s", out.String())
		}
	})
}
