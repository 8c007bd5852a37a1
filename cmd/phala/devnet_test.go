package main

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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
	cmd := exec.Command(binPath, "devnet", "--base-port", strconv.Itoa(base), "--pruntime-port", "0")
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
		case <-deadline:
			t.Fatal("devnet not ready in 3 minutes")
		}
	}
	if _, err := os.Stat(filepath.Join(home, "gatekeeper")); err != nil {
		t.Fatalf("devnet home %q: %v", home, err)
	}
	// Its ports are taken now: a second devnet says how to choose others.
	fails(t, []string{"--base-port", "--pruntime-port"}, "devnet", "--base-port", strconv.Itoa(base))
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
