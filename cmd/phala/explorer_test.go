package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/testnet"
)

// `phala explorer` against an in-process chain: it prints where it
// serves, the home page answers, and SIGINT stops it with exit 0. Without
// a node it fails like the other commands. (The pages themselves are
// tested in internal/explorer, in a browser too.)
func TestExplorerCLI(t *testing.T) {
	bin(t)
	n := testnet.New(t, testnet.Options{Genesis: node.DevGenesisState([]byte{7})})
	cmd := exec.Command(bin(t), "explorer", "--listen", "127.0.0.1:0", "--node", n.RPC(0),
		"--genesis", filepath.Join(n.Homes[0], "config", "genesis.json"), "--data-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "PHALA_HOME="+filepath.Join(buildDir, "home"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
	}()
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
		io.Copy(io.Discard, out)
		exited <- cmd.Wait()
	}()
	var first string
	select {
	case first = <-line:
	case <-time.After(time.Minute):
		t.Fatal("phala explorer printed nothing in a minute")
	}
	m := regexp.MustCompile(`^explorer of phala-test \(node .*\) on (http://127\.0\.0\.1:\d+)\n$`).FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("phala explorer printed %q", first)
	}
	testnet.WaitFor(t, time.Minute, "the explorer's home page", func() (bool, error) {
		res, err := http.Get(m[1] + "/")
		if err != nil {
			return false, err
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode == 200 && strings.Contains(string(b), `href="/block/`), nil
	})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("phala explorer after SIGINT: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("phala explorer did not stop on SIGINT")
	}
	dead := "http://127.0.0.1:" + strings.TrimPrefix(regexp.MustCompile(`:\d+$`).FindString(m[1]), ":")
	fails(t, []string{"does not answer"}, "explorer", "--listen", "127.0.0.1:0", "--node", dead)
}
