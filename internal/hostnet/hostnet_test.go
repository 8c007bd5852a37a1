package hostnet

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/client/pruntime"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/netns"
	"github.com/phalago/phala/internal/testnet"
)

const (
	p2pPort     = 26656
	rpcPort     = 26657
	publicPort  = 8000
	controlPort = 8001
)

// proc is a program running on a host of the network.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// start runs bin with args on host h, logging to dir/<name>.log, and stops
// it when the test ends (SIGINT, SIGKILL after 10 s). The kernel kills it
// if the test process dies first.
func start(t *testing.T, h *netns.Host, dir, name, bin string, args ...string) *proc {
	t.Helper()
	path := filepath.Join(dir, name+".log")
	logf, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s on %s: %v", name, h.Name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: path}
	go func() { cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- last lines of %s:\n%s", path, tail(path, 15))
		}
	})
	return p
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// worker is a pRuntime host with its pherry.
type worker struct {
	host    *netns.Host
	api     *pruntime.Client // control API, reached over the network
	public  *pruntime.Public
	id      crypto.PublicKey
	pherry  *proc
	runtime *proc
}

// subnet is this run's /24, derived from the pid so that two runs at once
// do not share one.
func subnet() netip.Prefix {
	pid := os.Getpid()
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + pid%100), byte(pid / 100 % 256), 0}), 24)
}

// TestNetworkAcrossHosts: 4 validators, 2 gatekeepers and 3 workers, each on
// its own host (network namespace) with its own address, configured with
// `phala-node testnet --hosts`; every pherry on its pRuntime's host relays a
// validator on another host. The token runs on 2 of the workers. Then one
// link at a time is cut and restored: a validator (3 of 4 keep
// committing; it catches up to the tip), a replica's worker (the other
// replica keeps executing; the cut one catches up to the same state root),
// the gatekeepers (commands on the running contract keep executing; a new
// deployment, which needs a gatekeeper, waits and completes once they are
// back). Balances stay exact throughout.
func TestNetworkAcrossHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and runs 9 hosts")
	}
	if err := netns.Available(); err != nil {
		t.Skipf("skipped: this test builds hosts out of Linux network namespaces, which cannot be made here (%v); run it as root on Linux with iproute2", err)
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "../../cmd/phala-node", "../../cmd/pruntime", "../../cmd/pherry").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	phalaNode, pruntimeBin, pherryBin := filepath.Join(bin, "phala-node"), filepath.Join(bin, "pruntime"), filepath.Join(bin, "pherry")
	t.Logf("built the binaries in %s", time.Since(began).Round(time.Millisecond))

	n := netns.New(t, subnet())
	var vals []*netns.Host
	for i := 0; i < 4; i++ {
		vals = append(vals, n.AddHost("v"+strconv.Itoa(i)))
	}
	gkHosts := []*netns.Host{n.AddHost("g0"), n.AddHost("g1")}
	wHosts := []*netns.Host{n.AddHost("w0"), n.AddHost("w1"), n.AddHost("w2")}
	rpc := func(h *netns.Host) string { return "http://" + h.Addr.String() + ":" + strconv.Itoa(rpcPort) }

	// The genesis gatekeepers' keys, then the validators' homes with the
	// operator's command.
	// HOSTNET_LOGS=DIR keeps every part's data and log in DIR (empty) for a
	// look after the run; by default they go with the test's temp dir.
	dir := t.TempDir()
	if keep := os.Getenv("HOSTNET_LOGS"); keep != "" {
		dir = keep
		t.Logf("keeping every part's data and log in %s", dir)
	}
	var gkIDs []string
	var measurement string
	for _, h := range gkHosts {
		out, err := exec.Command(pruntimeBin, "init", "--data-dir", filepath.Join(dir, h.Name)).CombinedOutput()
		if err != nil {
			t.Fatalf("pruntime init: %v\n%s", err, out)
		}
		fields := map[string]string{}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), " "); ok {
				fields[k] = v
			}
		}
		gkIDs, measurement = append(gkIDs, fields["identity"]), fields["measurement"]
	}
	var hosts []string
	for _, h := range vals {
		hosts = append(hosts, h.Addr.String())
	}
	args := []string{"testnet", "--output", filepath.Join(dir, "nodes"), "--chain-id", "phala-hosts", "--hosts", strings.Join(hosts, ","),
		"--base-port", strconv.Itoa(p2pPort), "--timeout-commit", "300ms", "--measurement", measurement}
	for _, id := range gkIDs {
		args = append(args, "--gatekeeper", id)
	}
	if out, err := exec.Command(phalaNode, args...).CombinedOutput(); err != nil {
		t.Fatalf("phala-node %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	genesis := filepath.Join(dir, "nodes", "node0", "config", "genesis.json")
	doc, err := cmttypes.GenesisDocFromFile(genesis)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range vals {
		start(t, h, dir, "node"+strconv.Itoa(i), phalaNode, "start", "--home", filepath.Join(dir, "nodes", "node"+strconv.Itoa(i)), "--log-level", "warn")
	}
	dial := func(h *netns.Host) *client.Client {
		var c *client.Client
		testnet.WaitFor(t, time.Minute, "the RPC of "+h.Name, func() (bool, error) {
			cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
			defer ccancel()
			var err error
			if c, err = client.DialOptions(cctx, rpc(h), client.Options{Genesis: doc}); err != nil {
				return false, nil
			}
			hh, err := c.Height(cctx)
			return err == nil && hh >= 2, nil
		})
		return c
	}
	c := dial(vals[0])
	height := func(c *client.Client) int64 {
		hctx, hcancel := context.WithTimeout(ctx, 3*time.Second)
		defer hcancel()
		h, err := c.Height(hctx)
		if err != nil {
			return -1
		}
		return h
	}
	vclients := []*client.Client{c}
	for _, h := range vals[1:] {
		vclients = append(vclients, dial(h))
	}
	t.Logf("4 validators on %v commit (height %d)", hosts, height(c))

	// The users: //Alice deploys and mints; a fresh account (funded now)
	// trades with her. The pherries' operators are other dev accounts.
	alice := crypto.MustKeyPairFromURI("//Alice")
	user := crypto.MustKeyPairFromURI("//Alice//hosts")
	as, us := c.NewSigner(alice), c.NewSigner(user)
	if _, err := as.Submit(ctx, &api.Transfer{To: user.Public(), Amount: 10_000 * api.Unit}); err != nil {
		t.Fatal(err)
	}

	// pRuntimes on their hosts, public and control APIs on the host's
	// address (the control API admits this private network only), each
	// pherry beside its pRuntime relaying a validator on another host.
	operators := []string{"//Charlie", "//Dave", "//Eve", "//Ferdie", "//Bob"}
	relayed := []*netns.Host{vals[0], vals[1], vals[0], vals[1], vals[2]} // v3 serves no pherry: it is the one cut
	var runtimes []*worker
	for i, h := range append(append([]*netns.Host{}, gkHosts...), wHosts...) {
		addr := h.Addr.String()
		control := "http://" + addr + ":" + strconv.Itoa(controlPort)
		w := &worker{host: h, api: pruntime.NewClient(control), public: pruntime.NewPublic("http://" + addr + ":" + strconv.Itoa(publicPort))}
		w.runtime = start(t, h, dir, h.Name+"-pruntime", pruntimeBin, "--data-dir", filepath.Join(dir, h.Name), "--genesis", genesis,
			"--listen", addr+":"+strconv.Itoa(publicPort), "--control-listen", addr+":"+strconv.Itoa(controlPort),
			"--control-allow", subnet().String(), "--log-level", "info")
		w.pherry = start(t, h, dir, h.Name+"-pherry", pherryBin, "--node", rpc(relayed[i]), "--pruntime-control", control,
			"--operator", operators[i], "--poll", "200ms", "--log-level", "info")
		runtimes = append(runtimes, w)
	}
	gks, workers := runtimes[:2], runtimes[2:]
	info := func(w *worker) *api.PRuntimeInfo {
		ictx, icancel := context.WithTimeout(ctx, 3*time.Second)
		defer icancel()
		i, err := w.api.Info(ictx)
		if err != nil {
			return nil
		}
		return i
	}
	caughtUp := func(w *worker) bool {
		i := info(w)
		return i != nil && i.Dispatched >= height(c)-2
	}
	testnet.WaitFor(t, 2*time.Minute, "the MasterKey published, 3 workers registered, every pRuntime caught up", func() (bool, error) {
		pv, err := c.Prove(ctx, api.QueryMasterKey, nil)
		if err != nil || pv.Value == nil {
			return false, nil
		}
		for _, w := range runtimes {
			i := info(w)
			if i == nil || !caughtUp(w) {
				return false, nil
			}
			id, err := crypto.ParsePublicKey(i.IdentityKey)
			if err != nil {
				return false, err
			}
			w.id = id
		}
		for _, w := range workers {
			pv, err := c.Prove(ctx, api.QueryWorker, w.id[:])
			if err != nil || pv.Value == nil {
				return false, nil
			}
			wr, err := api.DecodeWorkerRecord(pv.Value)
			if err != nil {
				return false, err
			}
			if want := "http://" + w.host.Addr.String() + ":" + strconv.Itoa(publicPort); wr.Info.Endpoint != want {
				return false, fmt.Errorf("worker on %s registered endpoint %q, want %q", w.host.Name, wr.Info.Endpoint, want)
			}
		}
		return true, nil
	})
	t.Logf("network ready at height %d, %s after start", height(c), time.Since(began).Round(time.Millisecond))

	// The token on 2 of the 3 workers.
	code := contracttest.Build(t, filepath.Join("..", "..", "examples", "contracts", "token"))
	upload, _, err := as.Upload(ctx, code, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.WaitContract(ctx, upload)
	if err != nil {
		t.Fatal(err)
	}
	testnet.WaitFor(t, time.Minute, "the token on 2 workers", func() (bool, error) {
		r, err := c.ContractByUpload(ctx, upload)
		if err != nil {
			return false, nil
		}
		rec = r
		return len(r.Workers) == 2 && r.Status == api.ContractRunning, nil
	})
	replica := func(k int) *worker {
		for _, w := range workers {
			if w.id == rec.Workers[k] {
				return w
			}
		}
		t.Fatalf("replica %d %s is none of the workers", k, rec.Workers[k].Short())
		return nil
	}
	r0, r1 := replica(0), replica(1)
	t.Logf("token %s on %s and %s", rec.Identity.Short(), r0.host.Name, r1.host.Name)

	balances := map[*crypto.KeyPair]uint64{}
	signers := map[*crypto.KeyPair]*client.Signer{alice: as, user: us}
	run := func(s *client.Signer, input string) {
		t.Helper()
		ectx, ecancel := context.WithTimeout(ctx, time.Minute)
		defer ecancel()
		r, _, err := s.Execute(ectx, rec, []byte(input))
		if err == nil {
			err = r.Err()
		}
		if err != nil {
			t.Fatalf("%s: %v", strings.Fields(input)[0], err)
		}
	}
	mint := func(k *crypto.KeyPair, amount uint64) {
		run(as, fmt.Sprintf("mint %s %d", k.Public().Hex(), amount))
		balances[k] += amount
	}
	transfer := func(from, to *crypto.KeyPair, amount uint64) {
		run(signers[from], fmt.Sprintf("transfer %s %d", to.Public().Hex(), amount))
		balances[from] -= amount
		balances[to] += amount
	}
	exact := func(when string) {
		t.Helper()
		for k, want := range balances {
			w := strconv.FormatUint(want, 10)
			testnet.WaitFor(t, time.Minute, "exact balance "+when, func() (bool, error) {
				qctx, qcancel := context.WithTimeout(ctx, 15*time.Second)
				defer qcancel()
				out, _, err := c.QueryContract(qctx, k, rec, []byte("balance"))
				return err == nil && string(out) == w, nil
			})
		}
	}
	trade := func(round int) {
		transfer(alice, user, uint64(1_000+round))
		transfer(user, alice, uint64(100+round))
	}
	sameRoot := func(what string) {
		testnet.WaitFor(t, time.Minute, what, func() (bool, error) {
			a, b := info(r0), info(r1)
			return a != nil && b != nil && a.Contracts[rec.Identity.Hex()] != "" && a.Contracts[rec.Identity.Hex()] == b.Contracts[rec.Identity.Hex()], nil
		})
	}
	mint(alice, 1_000_000)
	mint(user, 500_000)
	trade(1)
	exact("before any cut")
	committing := func(during string) {
		t.Helper()
		h0 := height(c)
		testnet.WaitFor(t, time.Minute, "5 more blocks "+during, func() (bool, error) { return height(c) >= h0+5, nil })
	}

	// step logs how long a phase has taken so far (where the time goes
	// when this test runs slow).
	phase := time.Now()
	step := func(what string) { t.Logf("  %6.1fs %s (height %d)", time.Since(phase).Seconds(), what, height(c)) }

	// 1. A validator off: 3 of 4 keep committing; back, it catches up.
	if err := vals[3].Cut(); err != nil {
		t.Fatal(err)
	}
	committing("with validator v3 cut off")
	step("5 blocks with v3 cut off")
	trade(2)
	exact("with v3 cut off")
	step("trades executed, balances exact")
	cutAt := height(c)
	if err := vals[3].Restore(); err != nil {
		t.Fatal(err)
	}
	testnet.WaitFor(t, 90*time.Second, "v3 back at the tip", func() (bool, error) {
		h3 := height(vclients[3])
		return h3 > cutAt && h3 >= height(c)-1, nil
	})
	t.Logf("validator cut and rejoined in %s (tip %d)", time.Since(phase).Round(time.Millisecond), height(c))

	// 2. A replica's worker off: the other replica executes; back, its
	// pherry catches up and its replica reaches the same state root.
	phase = time.Now()
	if err := r1.host.Cut(); err != nil {
		t.Fatal(err)
	}
	committing("with worker " + r1.host.Name + " cut off")
	step("5 blocks with " + r1.host.Name + " cut off")
	trade(3)
	trade(4)
	exact("with a replica cut off")
	step("trades executed by the other replica, balances exact")
	if err := r1.host.Restore(); err != nil {
		t.Fatal(err)
	}
	testnet.WaitFor(t, 90*time.Second, r1.host.Name+" caught up", func() (bool, error) { return caughtUp(r1), nil })
	step(r1.host.Name + " restored and caught up")
	sameRoot("both replicas at one state root after " + r1.host.Name + " rejoined")
	t.Logf("worker cut and rejoined in %s", time.Since(phase).Round(time.Millisecond))

	// 3. The gatekeepers off: the running contract keeps executing (its
	// keys are granted); a new deployment needs a gatekeeper and waits.
	phase = time.Now()
	for _, g := range gks {
		if err := g.host.Cut(); err != nil {
			t.Fatal(err)
		}
	}
	second, _, err := us.Upload(ctx, code, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	committing("with the gatekeepers cut off")
	step("5 blocks with the gatekeepers cut off")
	trade(5)
	exact("with the gatekeepers cut off")
	step("trades executed, balances exact")
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
	if r, err := c.WaitContract(wctx, second); err == nil {
		t.Fatalf("a contract was deployed with no gatekeeper reachable: %+v", r)
	}
	wcancel()
	for _, g := range gks {
		if err := g.host.Restore(); err != nil {
			t.Fatal(err)
		}
	}
	dctx, dcancel := context.WithTimeout(ctx, 90*time.Second)
	if _, err := c.WaitContract(dctx, second); err != nil {
		t.Fatalf("the deployment waiting for a gatekeeper: %v", err)
	}
	dcancel()
	step("the waiting deployment ran once the gatekeepers returned")
	testnet.WaitFor(t, 90*time.Second, "the gatekeepers answer and caught up", func() (bool, error) {
		for _, g := range gks {
			pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
			pi, err := g.public.Info(pctx)
			pcancel()
			if err != nil || pi.MasterKey == "" || !caughtUp(g) {
				return false, nil
			}
		}
		return true, nil
	})
	t.Logf("gatekeepers cut and rejoined in %s", time.Since(phase).Round(time.Millisecond))

	// Everything together again: one more round, every validator at the
	// tip, every pRuntime caught up, the replicas at one root.
	trade(6)
	exact("after every link returned")
	sameRoot("both replicas at one state root at the end")
	testnet.WaitFor(t, time.Minute, "every validator and pRuntime at the tip", func() (bool, error) {
		tip := height(c)
		for _, vc := range vclients {
			if height(vc) < tip-1 {
				return false, nil
			}
		}
		for _, w := range runtimes {
			if !caughtUp(w) {
				return false, nil
			}
		}
		return true, nil
	})
	for _, w := range runtimes {
		select {
		case <-w.pherry.done:
			t.Fatalf("the pherry of %s exited (see %s)", w.host.Name, w.pherry.log)
		case <-w.runtime.done:
			t.Fatalf("the pRuntime of %s exited (see %s)", w.host.Name, w.runtime.log)
		default:
		}
	}
	t.Logf("done at height %d: %s in all (binaries built in the first part)", height(c), time.Since(began).Round(time.Millisecond))
}
