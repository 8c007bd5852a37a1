package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/internal/testnet"
)

// twoFreePorts returns p such that p and p+1 are free on loopback now.
func twoFreePorts(t *testing.T) int {
	t.Helper()
	for range 50 {
		p := freePort(t)
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1)); err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no two consecutive free ports")
	return 0
}

// `phala devnet` without --home runs in a temporary directory and removes
// it when stopped; with its ports taken, it says which flags choose others.
func TestDevnetCommand(t *testing.T) {
	bin(t)
	base := twoFreePorts(t)
	// A bad --param is refused before anything starts.
	fails(t, []string{"no_such_param", "era_length"}, "devnet", "--base-port", strconv.Itoa(base), "--param", "no_such_param=1")
	fails(t, []string{"era_length", "not a non-negative integer"}, "devnet", "--base-port", strconv.Itoa(base), "--param", "era_length=-1")
	cmd := exec.Command(binPath, "devnet", "--base-port", strconv.Itoa(base), "--pruntime-port", "0", "--param", "era_length=77", "--param", "dkg_timeout=9")
	cmd.Env = append(os.Environ(), "PHALA_HOME="+t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var home string
	deadline := time.After(3 * time.Minute)
	for ready := false; !ready; {
		select {
		case l, open := <-lines:
			if !open {
				t.Fatal("devnet exited before it was ready")
			}
			if h, ok := strings.CutPrefix(l, "home:"); ok {
				home = strings.TrimSpace(h)
			}
			ready = strings.HasPrefix(l, "devnet ready")
			// Not on the default ports: the suggested command says where.
			if want := fmt.Sprintf("try `go run ./cmd/phala status --node http://127.0.0.1:%d`", base+1); ready && !strings.Contains(l, want) {
				t.Errorf("ready line %q lacks %q", l, want)
			}
		case <-deadline:
			t.Fatal("devnet not ready in 3 minutes")
		}
	}
	if _, err := os.Stat(filepath.Join(home, "gatekeeper")); err != nil {
		t.Fatalf("devnet home %q: %v", home, err)
	}
	// Its ports are taken now: a second devnet says how to choose others.
	fails(t, []string{"--base-port", "--pruntime-port"}, "devnet", "--base-port", strconv.Itoa(base))
	// --param made its genesis; on an existing devnet it is refused.
	doc, err := os.ReadFile(filepath.Join(home, "nodes", "node0", "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	var genesis struct {
		AppState struct {
			Params api.Params `json:"params"`
		} `json:"app_state"`
	}
	if err := json.Unmarshal(doc, &genesis); err != nil {
		t.Fatal(err)
	}
	if p := genesis.AppState.Params; p.EraLength != 77 || p.DkgTimeout != 9 {
		t.Errorf("genesis era_length %d, dkg_timeout %d; want 77 and 9 (--param)", p.EraLength, p.DkgTimeout)
	}
	fails(t, []string{"exists", "gov propose params era_length=70"}, "devnet", "--home", home, "--param", "era_length=70")
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range lines {
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("devnet stopped with %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("devnet did not stop")
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Fatalf("the throwaway devnet left %s behind (%v)", home, err)
	}
}

// runDevnet starts `phala devnet args...` and reads its output until
// "devnet ready", returning the command and its output lines so far; the
// rest of the output is drained.
func runDevnet(t *testing.T, args ...string) (*exec.Cmd, []string) {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"devnet"}, args...)...)
	cmd.Env = append(os.Environ(), "PHALA_HOME="+t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var seen []string
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case l, open := <-lines:
			if !open {
				cmd.Wait()
				t.Fatalf("devnet exited before it was ready:\n%s\n%s", strings.Join(seen, "\n"), stderr.String())
			}
			seen = append(seen, l)
			if strings.HasPrefix(l, "devnet ready") {
				go func() {
					for range lines {
					}
				}()
				return cmd, seen
			}
		case <-deadline:
			t.Fatalf("devnet not ready in 2 minutes:\n%s", strings.Join(seen, "\n"))
		}
	}
}

// The ready line's suggested command carries the flags that reach the
// devnet: --node off the default RPC address, --data-dir off the default
// trust directory, --genesis when its genesis was recorded nowhere.
func TestDevnetTry(t *testing.T) {
	t.Setenv("PHALA_HOME", "/home/u/.phala")
	for _, c := range []struct{ rpc, dataDir, want string }{
		{defaultNode, "/home/u/.phala", "go run ./cmd/phala status"},
		{"http://127.0.0.1:36657", "/home/u/.phala", "go run ./cmd/phala status --node http://127.0.0.1:36657"},
		{defaultNode, "/tmp/d", "go run ./cmd/phala status --data-dir /tmp/d"},
		{"http://127.0.0.1:36657", "", "go run ./cmd/phala status --node http://127.0.0.1:36657 --data-dir '' --genesis /g.json"},
	} {
		if got := devnetTry(c.rpc, c.dataDir, "/g.json"); got != c.want {
			t.Errorf("devnetTry(%q, %q) = %q, want %q", c.rpc, c.dataDir, got, c.want)
		}
	}
}

// alive reports whether process pid runs: signal 0 succeeds and, where
// /proc tells, it is not a zombie (an exited orphan that a container's
// init has not reaped yet).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}

// `phala devnet --pruntime-binary --pherry-binary` runs every pRuntime and
// pherry as a child process, names each one's pid and log file, and leaves
// none behind: not when the devnet dies by SIGKILL (Linux: the children
// get SIGTERM from the kernel), nor when it is stopped with Ctrl-C after
// resuming the same home.
func TestDevnetProcesses(t *testing.T) {
	bins := partBins(t)
	home := t.TempDir()
	args := []string{"--home", home, "--workers", "1", "--base-port", strconv.Itoa(twoFreePorts(t)), "--pruntime-port", "0",
		"--pruntime-binary", bins["pruntime"], "--pherry-binary", bins["pherry"]}
	procRE := regexp.MustCompile(`processes \[(\d+) (\d+)\], logs (\S+) (\S+)$`)
	start := func() (*exec.Cmd, []int) {
		cmd, out := runDevnet(t, args...)
		var pids []int
		for _, l := range out {
			m := procRE.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			for _, s := range m[1:3] {
				pid, _ := strconv.Atoi(s)
				if !alive(pid) {
					t.Fatalf("process %d named in %q does not run", pid, l)
				}
				pids = append(pids, pid)
			}
			for _, f := range m[3:] {
				if b, err := os.ReadFile(f); err != nil || len(b) == 0 || !strings.HasPrefix(f, home) {
					t.Fatalf("log %s named in %q: %v, %d bytes", f, l, err, len(b))
				}
			}
		}
		if len(pids) != 4 {
			t.Fatalf("devnet output names processes %v, want a pRuntime and a pherry for the gatekeeper and the worker:\n%s", pids, strings.Join(out, "\n"))
		}
		return cmd, pids
	}
	gone := func(what string, pids []int) {
		t.Helper()
		testnet.WaitFor(t, 30*time.Second, what, func() (bool, error) {
			for _, pid := range pids {
				if alive(pid) {
					return false, nil
				}
			}
			return true, nil
		})
	}

	cmd, pids := start()
	if runtime.GOOS == "linux" {
		cmd.Process.Kill()
		cmd.Wait()
		gone("the children of a killed devnet to exit", pids)
	} else {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		gone("the children of a stopped devnet to exit", pids)
	}
	// The same home resumes (the stale lock taken over), and Ctrl-C stops
	// every child before the devnet exits.
	cmd, pids = start()
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("devnet stopped with %v", err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d outlived its devnet", pid)
		}
	}
}
