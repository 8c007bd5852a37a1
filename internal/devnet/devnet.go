// Package devnet runs a whole development network on loopback: validators
// (phala-node), a gatekeeper pRuntime, worker pRuntimes, and one pherry per
// pRuntime, all in this process, or the pRuntimes and pherries as child
// processes of their own (Config.PRuntimeBinary, Config.PherryBinary). Its
// home directory keeps every part's data, so a stopped devnet resumes where
// it was.
package devnet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/phalago/phala/client/pruntime"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/engine"
	"github.com/phalago/phala/internal/enclave/httpapi"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/platform"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/relayer"
)

// Config of a devnet.
type Config struct {
	Home          string // data of every part; required
	ChainID       string
	Validators    int
	Workers       int
	BasePort      int   // validator i: p2p BasePort+2i, RPC BasePort+2i+1
	Ports         []int // if set: validator i uses Ports[2i] (p2p) and Ports[2i+1] (RPC)
	PRuntimePort  int   // public APIs: gatekeeper PRuntimePort, worker i PRuntimePort+i; 0: any free port
	ControlPort   int   // control APIs: gatekeeper ControlPort, worker i ControlPort+i; 0: PRuntimePort+100 (any free port if PRuntimePort is 0)
	TimeoutCommit time.Duration
	Log           *slog.Logger
	// PRuntimeBinary, if set, runs each pRuntime as its own process from
	// this executable (cmd/pruntime) instead of in-process; its
	// measurement is the one the genesis allows.
	PRuntimeBinary string
	// PherryBinary, if set, runs each pherry as its own process from this
	// executable (cmd/pherry) instead of in-process, logging to
	// <Home>/<pRuntime name>/pherry.log (Runtime.PherryLog). Process parts
	// log at level info, or debug if Log shows debug.
	PherryBinary string
	// EditGenesis, if set, edits the genesis state when the devnet is
	// created (tests: shorter eras, other parameters).
	EditGenesis func(*api.GenesisState)
}

// DefaultConfig is one validator (RPC on 26657), a gatekeeper and two
// workers (pRuntime public APIs on 8000-8002, control APIs on 8100-8102).
func DefaultConfig(home string) Config {
	return Config{Home: home, ChainID: "phala-devnet", Validators: 1, Workers: 2, BasePort: 26656, PRuntimePort: 8000, TimeoutCommit: 500 * time.Millisecond, Log: slog.Default()}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Home == "":
		return errors.New("devnet: a home directory is required")
	case c.Validators < 1 || c.Validators > 16:
		return errors.New("devnet: 1 to 16 validators")
	case c.Workers < 1 || c.Workers > 16:
		return errors.New("devnet: 1 to 16 workers")
	}
	return nil
}

// Operators of the pherries: each pRuntime's relayer pays with its own dev
// account, so their transactions never compete for one nonce.
var operators = []string{"//Charlie", "//Dave", "//Eve", "//Ferdie"}

// Runtime is one pRuntime of the devnet.
type Runtime struct {
	Name       string
	Dir        string
	Engine     *engine.Engine // nil when it runs as a process
	URL        string         // the public API (in the WorkerInfo)
	ControlURL string         // the control API (its pherry's)
	API        *pruntime.Client
	Log        string // the pRuntime process' log file; "" when in-process
	PherryLog  string // the pherry process' log file; "" when in-process
	srvs       []*http.Server
	cmd        *exec.Cmd
	exited     chan struct{} // closed when the process has exited
	pherry     *exec.Cmd
	pherryDone chan struct{} // closed when the pherry process has exited
	stopping   atomic.Bool   // set by Stop: a child exiting now is expected
	// pherryKilled is set by KillPherry: the pherry's exit is expected.
	pherryKilled atomic.Bool
	// How the pherry process was started (RestartPherry).
	pherryBin, pherryRPC, pherryOperator string
	pherryLogger                         *slog.Logger
	port                                 int
	cport                                int
	genesis                              string
	bin                                  string
	logLevel                             string // of the process' log file
}

// Devnet is a running development network.
type Devnet struct {
	cfg      Config
	nodes    []*node.Node
	Runtimes []*Runtime
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	genesis  *cmttypes.GenesisDoc
	unlock   func() // releases the home directory (lockHome)
	stopOnce sync.Once
	stopErr  error
}

func (c Config) nodeHomes() []string {
	homes := make([]string, c.Validators)
	for i := range homes {
		homes[i] = filepath.Join(c.Home, "nodes", "node"+strconv.Itoa(i))
	}
	return homes
}

// Exists reports whether home holds a devnet already (Start resumes it,
// and Config.EditGenesis does not apply).
func Exists(home string) bool {
	_, err := os.Stat(filepath.Join(Config{Home: home, Validators: 1}.nodeHomes()[0], "config", "genesis.json"))
	return err == nil
}

// Start creates (first time) or resumes the devnet and starts every part.
func Start(ctx context.Context, cfg Config) (*Devnet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Log
	unlock, err := lockHome(cfg.Home)
	if err != nil {
		return nil, err
	}
	homes := cfg.nodeHomes()
	gkDir := filepath.Join(cfg.Home, "gatekeeper")
	if _, err := os.Stat(filepath.Join(homes[0], "config", "genesis.json")); errors.Is(err, os.ErrNotExist) {
		if err := initialize(cfg, gkDir); err != nil {
			unlock()
			return nil, fmt.Errorf("initialize devnet in %s: %w", cfg.Home, err)
		}
		log.Info("devnet initialized", "home", cfg.Home)
	}
	d := &Devnet{cfg: cfg, unlock: unlock}
	for i, h := range homes {
		c, err := node.LoadCometConfig(h)
		if err != nil {
			d.Stop()
			return nil, err
		}
		n, err := node.New(c, log.With("part", "node"+strconv.Itoa(i)))
		if err != nil {
			d.Stop()
			return nil, err
		}
		if err := n.Start(); err != nil {
			d.Stop()
			return nil, err
		}
		d.nodes = append(d.nodes, n)
	}
	doc, err := cmttypes.GenesisDocFromFile(filepath.Join(homes[0], "config", "genesis.json"))
	if err != nil {
		d.Stop()
		return nil, err
	}
	d.genesis = doc
	if m, err := cfg.measurement(); err == nil && !allows(doc, m[:]) {
		log.Warn("this devnet's genesis does not allow the measurement of the pRuntime build now running (rebuilt, or --processes switched, since the devnet was created): workers that are not yet registered will be refused; use a new --home",
			"measurement", fmt.Sprintf("%x", m))
	}
	stake := workerStake(doc)
	rctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	names := []string{"gatekeeper"}
	for i := 1; i <= cfg.Workers; i++ {
		names = append(names, "worker"+strconv.Itoa(i))
	}
	for i, name := range names {
		port, cport := 0, 0
		if cfg.PRuntimePort != 0 {
			port, cport = cfg.PRuntimePort+i, cfg.PRuntimePort+100+i
		}
		if cfg.ControlPort != 0 {
			cport = cfg.ControlPort + i
		}
		var rt *Runtime
		if cfg.PRuntimeBinary != "" {
			rt, err = startProcess(cfg.PRuntimeBinary, name, filepath.Join(cfg.Home, name), filepath.Join(homes[0], "config", "genesis.json"), port, cport, fileLogLevel(log))
		} else {
			rt, err = d.startRuntime(name, filepath.Join(cfg.Home, name), doc, port, cport, log)
		}
		if err != nil {
			d.Stop()
			return nil, err
		}
		d.Runtimes = append(d.Runtimes, rt)
		operator := operators[i%len(operators)]
		if cfg.PherryBinary != "" {
			if err := rt.startPherry(cfg.PherryBinary, d.nodes[0].RPCAddress(), operator, stake, log); err != nil {
				d.Stop()
				return nil, err
			}
			continue
		}
		rc := relayer.DefaultConfig()
		rc.Node = d.nodes[0].RPCAddress()
		rc.PRuntime = rt.ControlURL
		rc.Operator = crypto.MustKeyPairFromURI(operator)
		rc.Stake = stake
		rc.Log = log.With("part", "pherry-"+name)
		r, err := relayer.New(rc)
		if err != nil {
			d.Stop()
			return nil, err
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := r.Run(rctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("pherry stopped", "pruntime", name, "err", err)
			}
		}()
	}
	return d, nil
}

// initialize writes the node homes and the genesis: the dev accounts
// funded, sim attestation with this executable's measurement allowed, and
// the gatekeeper pRuntime's identity (created now, pre-genesis: its first start binds it to this chain) as
// genesis gatekeeper.
func initialize(dc Config, gkDir string) error {
	p, err := platform.NewSim(gkDir, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	gk, err := keys.CreatePreGenesisEntity(p, gkDir)
	if err != nil {
		return err
	}
	m, err := dc.measurement()
	if err != nil {
		return err
	}
	g := node.DevGenesisState(m[:])
	g.Gatekeepers = []crypto.PublicKey{gk.Identity.Public()}
	// The devnet runs the economy (the dev genesis of tests keeps it
	// off): the stake rule (its pherries stake their workers:
	// workerStake), heartbeat challenges and the gatekeeper election
	// (nothing is elected until a staked candidate stands).
	d := api.DefaultParams()
	g.Params.MinWorkerStake, g.Params.HeartbeatsPerEra, g.Params.NGatekeepers = d.MinWorkerStake, d.HeartbeatsPerEra, d.NGatekeepers
	if dc.EditGenesis != nil {
		dc.EditGenesis(g)
	}
	_, err = node.Testnet(filepath.Join(dc.Home, "nodes"), node.TestnetOptions{
		ChainID: dc.ChainID, Validators: dc.Validators, BasePort: dc.BasePort, Ports: dc.Ports, Genesis: g,
		Override: func(_ int, c *cfg.Config) { c.Consensus.TimeoutCommit = dc.TimeoutCommit },
	})
	return err
}

// measurement is the sim measurement of the devnet's pRuntimes: that of
// PRuntimeBinary, or of this executable when they run in-process.
func (c Config) measurement() ([32]byte, error) {
	if c.PRuntimeBinary == "" {
		return platform.ExecutableMeasurement()
	}
	code, err := os.ReadFile(c.PRuntimeBinary)
	if err != nil {
		return [32]byte{}, fmt.Errorf("measure %s: %w", c.PRuntimeBinary, err)
	}
	return sha256.Sum256(code), nil
}

// workerStake is what each pherry of the devnet has its operator stake on
// its pRuntime: the genesis min_worker_stake, so that workers are
// assignable (0 in a devnet created before the economy: no staking).
func workerStake(doc *cmttypes.GenesisDoc) uint64 {
	var g api.GenesisState
	if err := json.Unmarshal(doc.AppState, &g); err != nil {
		return 0
	}
	return g.Params.MinWorkerStake
}

// allows reports whether the genesis allows measurement m (an empty list
// allows any).
func allows(doc *cmttypes.GenesisDoc, m []byte) bool {
	var g api.GenesisState
	if err := json.Unmarshal(doc.AppState, &g); err != nil || len(g.Attestation.Measurements) == 0 {
		return true
	}
	for _, a := range g.Attestation.Measurements {
		if bytes.Equal(a, m) {
			return true
		}
	}
	return false
}

func (d *Devnet) startRuntime(name, dir string, doc *cmttypes.GenesisDoc, port, cport int, log *slog.Logger) (*Runtime, error) {
	l := log.With("part", name)
	p, err := platform.NewSim(dir, nil, l)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("%s public API: %w", name, err)
	}
	cln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cport)))
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("%s control API: %w", name, err)
	}
	url, curl := "http://"+ln.Addr().String(), "http://"+cln.Addr().String()
	e, err := engine.New(engine.Config{DataDir: dir, Genesis: doc, Endpoint: url, Platform: p, Log: l})
	if err != nil {
		ln.Close()
		cln.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	srv, csrv := httpapi.PublicServer(e, l), httpapi.ControlServer(e, l, httpapi.ControlOptions{})
	go srv.Serve(ln)
	go csrv.Serve(cln)
	return &Runtime{Name: name, Dir: dir, Engine: e, URL: url, ControlURL: curl, API: pruntime.NewClient(curl), srvs: []*http.Server{srv, csrv}}, nil
}

// startProcess runs a pRuntime process and waits for its API.
func startProcess(bin, name, dir, genesis string, port, cport int, level string) (*Runtime, error) {
	var err error
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	if cport == 0 {
		if cport, err = freePort(); err != nil {
			return nil, err
		}
	}
	rt := &Runtime{Name: name, Dir: dir, port: port, cport: cport, genesis: genesis, bin: bin, logLevel: level}
	return rt, rt.Start()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start (re)starts a process pRuntime.
func (rt *Runtime) Start() error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(rt.port))
	caddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(rt.cport))
	rt.URL, rt.ControlURL = "http://"+addr, "http://"+caddr
	rt.API = pruntime.NewClient(rt.ControlURL)
	logf, err := os.OpenFile(filepath.Join(rt.Dir, "pruntime.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		if err := os.MkdirAll(rt.Dir, 0o700); err != nil {
			return err
		}
		if logf, err = os.OpenFile(filepath.Join(rt.Dir, "pruntime.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
			return err
		}
	}
	rt.Log = logf.Name()
	rt.cmd = exec.Command(rt.bin, "--data-dir", rt.Dir, "--genesis", rt.genesis, "--listen", addr, "--control-listen", caddr, "--log-level", rt.logLevel)
	rt.cmd.Stdout, rt.cmd.Stderr = logf, logf
	rt.cmd.SysProcAttr = childAttr()
	if err := rt.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", rt.Name, err)
	}
	exited := make(chan struct{})
	rt.exited = exited
	go func() { rt.cmd.Wait(); logf.Close(); close(exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := rt.API.Info(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited at start (see %s)", rt.Name, rt.Log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	// Leave no process behind that nobody will stop.
	rt.cmd.Process.Kill()
	<-exited
	return fmt.Errorf("%s did not answer on %s within 30 s (see %s)", rt.Name, rt.ControlURL, rt.Log)
}

// fileLogLevel is the --log-level of a child process: debug if the
// devnet's log shows debug, else info (its own file, so more than the
// devnet's terminal shows).
func fileLogLevel(l *slog.Logger) string {
	if l.Enabled(context.Background(), slog.LevelDebug) {
		return "debug"
	}
	return "info"
}

// startPherry runs the pherry process of rt, relaying the node at rpc
// with the development account operator paying, logging to
// <rt.Dir>/pherry.log, staking stake units on rt (--stake). It returns once the process has started; pherry
// retries the node and pRuntime until they answer.
func (rt *Runtime) startPherry(bin, rpc, operator string, stake uint64, log *slog.Logger) error {
	if err := os.MkdirAll(rt.Dir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(rt.Dir, "pherry.log")
	logf, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// The operator is a public development key (//Charlie...), so its
	// URI on the command line gives nothing away.
	args := []string{"--node", rpc, "--pruntime-control", rt.ControlURL, "--operator", operator, "--log-level", fileLogLevel(log)}
	if stake > 0 {
		args = append(args, "--stake", api.FormatAmount(stake))
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start pherry of %s: %w", rt.Name, err)
	}
	done := make(chan struct{})
	rt.pherry, rt.pherryDone, rt.PherryLog = cmd, done, path
	rt.pherryBin, rt.pherryRPC, rt.pherryOperator, rt.pherryLogger = bin, rpc, operator, log
	go func() {
		err := cmd.Wait()
		logf.Close()
		if !rt.stopping.Load() && !rt.pherryKilled.Swap(false) {
			log.Error("pherry process exited: its pRuntime is fed no more", "pruntime", rt.Name, "err", err, "log", path)
		}
		close(done)
	}()
	return nil
}

// PIDs returns the process ids of rt's pRuntime and pherry processes that
// have been started and not yet reaped (none for in-process parts).
func (rt *Runtime) PIDs() []int {
	var pids []int
	for _, pid := range []int{rt.PRuntimePID(), rt.PherryPID()} {
		if pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

// PRuntimePID and PherryPID are the process ids of the runtime's pRuntime
// and pherry processes, 0 for one that is not running (in-process, or
// exited).
func (rt *Runtime) PRuntimePID() int { return livePID(rt.cmd, rt.exited) }

// PherryPID: see PRuntimePID.
func (rt *Runtime) PherryPID() int { return livePID(rt.pherry, rt.pherryDone) }

func livePID(cmd *exec.Cmd, done chan struct{}) int {
	if cmd == nil || cmd.Process == nil {
		return 0
	}
	select {
	case <-done:
		return 0
	default:
		return cmd.Process.Pid
	}
}

// Kill sends SIGKILL to a process pRuntime (a crash, for tests).
func (rt *Runtime) Kill() error {
	if rt.cmd == nil || rt.cmd.Process == nil {
		return errors.New("not a process")
	}
	if err := rt.cmd.Process.Kill(); err != nil {
		return err
	}
	<-rt.exited
	return nil
}

// KillPherry kills rt's pherry process (SIGKILL), as a crash would, and
// waits until it has exited; RestartPherry starts it again.
func (rt *Runtime) KillPherry() error {
	if rt.pherry == nil || rt.pherry.Process == nil {
		return errors.New("pherry is not a process")
	}
	rt.pherryKilled.Store(true)
	if err := rt.pherry.Process.Kill(); err != nil {
		rt.pherryKilled.Store(false)
		return err
	}
	<-rt.pherryDone
	return nil
}

// RestartPherry starts rt's pherry process again, as it was first started
// but without staking again, after KillPherry (or its exit).
func (rt *Runtime) RestartPherry() error {
	if rt.pherry == nil {
		return errors.New("pherry is not a process")
	}
	select {
	case <-rt.pherryDone:
	default:
		return errors.New("pherry still runs")
	}
	return rt.startPherry(rt.pherryBin, rt.pherryRPC, rt.pherryOperator, 0, rt.pherryLogger)
}

// RPC returns the first validator's RPC URL.
func (d *Devnet) RPC() string { return d.nodes[0].RPCAddress() }

// GenesisFile is the path of the chain's genesis document.
func (d *Devnet) GenesisFile() string {
	return filepath.Join(d.cfg.nodeHomes()[0], "config", "genesis.json")
}

// Genesis returns the chain's genesis document.
func (d *Devnet) Genesis() *cmttypes.GenesisDoc { return d.genesis }

// Dial connects a client to the first validator, trusting the genesis
// validators (proved reads verified from them).
func (d *Devnet) Dial(ctx context.Context) (*client.Client, error) {
	return client.DialOptions(ctx, d.RPC(), client.Options{Genesis: d.genesis})
}

// WaitReady waits until the master key is published, every worker is
// registered and every pRuntime has caught up with the chain.
func (d *Devnet) WaitReady(ctx context.Context) error {
	c, err := d.Dial(ctx)
	if err != nil {
		return err
	}
	for {
		ready, err := d.ready(ctx, c)
		if err != nil {
			return err
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devnet not ready: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (d *Devnet) ready(ctx context.Context, c *client.Client) (bool, error) {
	pv, err := c.Prove(ctx, api.QueryMasterKey, nil)
	if err != nil || pv.Value == nil {
		return false, nil
	}
	h, err := c.Height(ctx)
	if err != nil {
		return false, nil
	}
	for _, rt := range d.Runtimes {
		info, err := rt.API.Info(ctx)
		if err != nil {
			return false, nil
		}
		if info.Dispatched < h-2 {
			return false, nil
		}
		if rt.Name == "gatekeeper" {
			continue
		}
		id, err := crypto.ParsePublicKey(info.IdentityKey)
		if err != nil {
			return false, err
		}
		pv, err := c.Prove(ctx, api.QueryWorker, id[:])
		if err != nil || pv.Value == nil {
			return false, nil
		}
	}
	return true, nil
}

// Stop stops every part: the pherries first (in-process ones cancelled,
// processes sent SIGINT), then the pRuntimes (each process sent SIGINT
// for its last checkpoint), then the validators. A child process that does
// not exit within 10 s is killed. Every child process has been reaped when
// Stop returns. Calling it again returns the first call's result.
func (d *Devnet) Stop() error {
	d.stopOnce.Do(func() { d.stopErr = d.stop() })
	return d.stopErr
}

func (d *Devnet) stop() error {
	if d.cancel != nil {
		d.cancel()
	}
	for _, rt := range d.Runtimes {
		rt.stopping.Store(true)
		if rt.pherry != nil && rt.pherry.Process != nil {
			rt.pherry.Process.Signal(os.Interrupt)
		}
	}
	d.wg.Wait()
	for _, rt := range d.Runtimes {
		if rt.pherry != nil {
			reap(rt.pherry, rt.pherryDone)
		}
	}
	for _, rt := range d.Runtimes {
		for _, srv := range rt.srvs {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			srv.Shutdown(ctx)
			cancel()
		}
		if rt.Engine != nil {
			// The last checkpoint (the query replay guard) before exit.
			if err := rt.Engine.Close(); err != nil {
				d.cfg.Log.Warn("pRuntime checkpoint at stop", "pruntime", rt.Name, "err", err)
			}
		}
		if rt.cmd != nil && rt.cmd.Process != nil {
			rt.cmd.Process.Signal(os.Interrupt)
		}
	}
	// Processes finish their last checkpoint; one that does not exit in
	// time is killed (a crash it recovers from at its next start).
	for _, rt := range d.Runtimes {
		if rt.exited != nil {
			reap(rt.cmd, rt.exited)
		}
	}
	var errs []error
	for _, n := range d.nodes {
		errs = append(errs, n.Stop())
	}
	if d.unlock != nil {
		d.unlock()
		d.unlock = nil
	}
	return errors.Join(errs...)
}

// reap waits for a signalled child process to exit (done closed by its
// waiter), killing it after 10 s.
func reap(cmd *exec.Cmd, done chan struct{}) {
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}
