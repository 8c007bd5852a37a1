package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/phalago/phala/internal/testnet"
)

// The other programs, built once per test binary next to phala.
var (
	partsOnce sync.Once
	partsErr  error
)

// partBins builds pruntime, pherry and phala-node into the directory of
// the phala binary and returns the four paths by name.
func partBins(t *testing.T) map[string]string {
	t.Helper()
	bin(t)
	partsOnce.Do(func() {
		out, err := exec.Command("go", "build", "-o", buildDir+string(filepath.Separator), "../pruntime", "../pherry", "../phala-node").CombinedOutput()
		if err != nil {
			partsErr = fmt.Errorf("build pruntime, pherry, phala-node: %v\n%s", err, out)
		}
	})
	if partsErr != nil {
		t.Fatal(partsErr)
	}
	bins := map[string]string{"phala": binPath}
	for _, n := range []string{"pruntime", "pherry", "phala-node"} {
		bins[n] = filepath.Join(buildDir, n)
	}
	return bins
}

// readmeByHand returns the command lines of the README's walk-through
// ("## More", up to "Other commands:"): every code line, without the
// lines that show output (starting with #).
func readmeByHand(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## More")
	sec, _, ok2 := strings.Cut(sec, "\nOther commands:")
	if !ok || !ok2 {
		t.Fatal("README: no \"## More\" section ending at \"Other commands:\"")
	}
	var lines []string
	for _, l := range strings.Split(sec, "\n") {
		if !strings.HasPrefix(l, "    ") {
			continue
		}
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestReadmeNetworkByHand runs the README's walk-through line by line, as
// written, with real processes on loopback: a gatekeeper's keys (pruntime
// init, identity), a genesis naming it (phala-node init --gatekeeper
// --measurement), the node, the gatekeeper's and a worker's pruntime and
// pherry, the worker's registration, the counter uploaded, a command and a
// query answered by the worker. The only changes to the lines: bin/ is the
// test's build, $NET a temporary directory, the ports free ones (phala-node
// init gets --rpc and --p2p, phala --node), the placeholders (0x7c35...,
// 60a5...) the values the earlier lines printed. A line whose comment says
// "again" is run again until it succeeds, within a deadline. Then, as the
// README says, the parts stopped with SIGTERM (kill) and their lines run
// again resume the network: the worker answers the query again.
func TestReadmeNetworkByHand(t *testing.T) {
	bins := partBins(t)
	lines := readmeByHand(t)
	if len(lines) < 14 {
		t.Fatalf("README walk-through has %d command lines:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	netDir, phalaHome := t.TempDir(), t.TempDir()
	ports := freePortList(t, 6)
	rpc := "127.0.0.1:" + strconv.Itoa(ports[0])
	portsOf := strings.NewReplacer(
		"127.0.0.1:26657", rpc,
		"127.0.0.1:8000", "127.0.0.1:"+strconv.Itoa(ports[2]),
		"127.0.0.1:8001", "127.0.0.1:"+strconv.Itoa(ports[3]),
		"127.0.0.1:8002", "127.0.0.1:"+strconv.Itoa(ports[4]),
		"127.0.0.1:8003", "127.0.0.1:"+strconv.Itoa(ports[5]),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	type bg struct {
		prog string
		args []string
		cmd  *exec.Cmd
		log  string
		done chan struct{}
	}
	var procs []*bg
	// start runs a background part, its output in its log file (the
	// README's "> FILE 2>&1 &").
	start := func(p *bg) {
		t.Helper()
		f, err := os.Create(p.log)
		if err != nil {
			t.Fatal(err)
		}
		p.cmd = exec.Command(bins[p.prog], p.args...)
		p.cmd.Dir, p.cmd.Stdout, p.cmd.Stderr = root, f, f
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p.done = make(chan struct{})
		go func() { p.cmd.Wait(); f.Close(); close(p.done) }()
		t.Logf("started in the background: %s %s", p.prog, strings.Join(p.args, " "))
	}
	// stopAll stops the background parts in reverse order (the README's
	// kill %5 ... %1), each with its clean shutdown, and reports those
	// that had exited before.
	stopAll := func() {
		for _, p := range slices.Backward(procs) {
			select {
			case <-p.done:
				t.Errorf("%s %s had exited", p.prog, strings.Join(p.args, " "))
			default:
			}
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				t.Errorf("%s did not stop on SIGTERM", p.prog)
				p.cmd.Process.Kill()
				<-p.done
			}
			if t.Failed() {
				b, _ := os.ReadFile(p.log)
				if len(b) > 3000 {
					b = b[len(b)-3000:]
				}
				t.Logf("%s (%s), last lines:\n%s", p.prog, p.log, b)
			}
		}
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			stopAll()
		}
	})

	var identity, measurement, contract string
	identityRE := regexp.MustCompile(`(?m)^identity (0x[0-9a-f]{64})$`)
	measurementRE := regexp.MustCompile(`(?m)^measurement ([0-9a-f]{64})$`)
	contractRE := regexp.MustCompile(`contract (0x[0-9a-f]{64}) running`)
	var registered, queried bool
	var query func() (bool, error) // the walk-through's query, to ask again
	for _, line := range lines {
		text, comment, _ := strings.Cut(line, "  #")
		text = strings.TrimSpace(text)
		switch {
		case strings.HasPrefix(text, "go build -o bin/ "):
			for _, p := range []string{"./cmd/phala", "./cmd/phala-node", "./cmd/pruntime", "./cmd/pherry"} {
				if !slices.Contains(strings.Fields(text), p) {
					t.Fatalf("README build line %q does not build %s", text, p)
				}
			}
			continue // built by partBins
		case text == "NET=$(mktemp -d)":
			continue
		}
		words := strings.Fields(text)
		background := words[len(words)-1] == "&"
		var logFile string
		if background {
			words = words[:len(words)-1]
			if n := len(words); n >= 3 && words[n-3] == ">" && words[n-1] == "2>&1" {
				logFile, words = words[n-2], words[:n-3]
			}
		}
		prog, ok := strings.CutPrefix(words[0], "bin/")
		if !ok || bins[prog] == "" {
			t.Fatalf("README line %q: not one of the built programs", line)
		}
		args := []string{}
		for i, w := range words[1:] {
			w = portsOf.Replace(strings.ReplaceAll(w, "$NET", netDir))
			if strings.HasSuffix(w, "...") {
				switch {
				case i > 0 && words[i] == "--measurement":
					w = measurement
				case prog == "phala" && words[1] == "contract":
					w = contract
				case strings.HasPrefix(w, "0x"):
					w = identity
				}
				if w == "" {
					t.Fatalf("README line %q: placeholder %s before any line printed its value", line, words[i+1])
				}
			}
			args = append(args, w)
		}
		switch {
		case prog == "phala":
			args = append(args, "--node", "http://"+rpc)
		case prog == "phala-node" && words[1] == "init":
			args = append(args, "--rpc", rpc, "--p2p", "127.0.0.1:"+strconv.Itoa(ports[1]))
		}
		if background {
			if logFile == "" {
				t.Fatalf("README line %q: a background part without a log file", line)
			}
			p := &bg{prog: prog, args: args, log: strings.ReplaceAll(logFile, "$NET", netDir)}
			start(p)
			procs = append(procs, p)
			continue
		}
		// A foreground line: it must succeed (and, for a query, print
		// the value its comment names), at once or, if its comment says
		// so, when run again.
		var want string
		if prog == "phala" && len(words) > 2 && words[1] == "contract" && words[2] == "query" {
			want = strings.Fields(comment)[0] + "\n"
		}
		if prog == "phala" && words[1] == "worker" {
			want = "status:        active"
		}
		var last string
		attempt := func() (bool, error) {
			cmd := exec.CommandContext(ctx, bins[prog], args...)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "PHALA_HOME="+phalaHome)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			last = fmt.Sprintf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", prog, strings.Join(args, " "), err, out.String(), errb.String())
			if err != nil || !strings.Contains(out.String(), want) {
				return false, nil
			}
			if m := identityRE.FindStringSubmatch(out.String()); m != nil {
				identity = m[1]
			}
			if m := measurementRE.FindStringSubmatch(out.String()); m != nil {
				measurement = m[1]
			}
			if m := contractRE.FindStringSubmatch(out.String()); m != nil {
				contract = m[1]
			}
			return true, nil
		}
		if strings.Contains(comment, "again") {
			ok := false
			testnet.WaitFor(t, 90*time.Second, "README line "+line, func() (bool, error) {
				ok, _ = attempt()
				return ok, ctx.Err()
			})
			if !ok {
				t.Fatal(last)
			}
		} else if ok, _ := attempt(); !ok {
			t.Fatalf("README line %q failed:\n%s", line, last)
		}
		t.Logf("%s", last)
		registered = registered || (prog == "phala" && words[1] == "worker")
		if want != "" && words[1] == "contract" {
			queried, query = true, attempt
		}
	}
	if !registered || !queried || contract == "" {
		t.Fatalf("the walk-through did not check the worker's registration (%v), upload (%q) and query (%v)", registered, contract, queried)
	}
	if len(procs) != 5 {
		t.Fatalf("the walk-through started %d background parts, want the node, 2 pruntimes and 2 pherries", len(procs))
	}
	// Stopped (SIGTERM, as kill does) and started again with the same
	// lines, the network resumes: the worker answers the query again.
	stopAll()
	stopped = true
	if t.Failed() {
		t.FailNow()
	}
	for _, p := range procs {
		start(p)
	}
	stopped = false
	testnet.WaitFor(t, 90*time.Second, "the query answered after the network resumed", func() (bool, error) {
		ok, _ := query()
		return ok, ctx.Err()
	})
}

// freePortList returns n distinct ports free on loopback now.
func freePortList(t *testing.T, n int) []int {
	t.Helper()
	var ps []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ps = append(ps, l.Addr().(*net.TCPAddr).Port)
	}
	return ps
}
