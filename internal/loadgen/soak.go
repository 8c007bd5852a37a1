package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/devnet"
	"github.com/phalago/phala/internal/node"
)

// SoakConfig is a soak run (issue 14, deliverable 4): a devnet of
// processes (one validator in this process; a gatekeeper and two worker
// pRuntimes, each with its pherry, as processes), the token on both
// workers, and for Duration a steady mixed load: Transfers goroutines
// sending PHA transfers, Commands goroutines sending sealed token
// transfers, Queries goroutines asking balances; every KillEvery, a
// random pRuntime or pherry is killed (SIGKILL) and started again
// RestartAfter later. Every Interval a sample is reported.
type SoakConfig struct {
	Home           string // the devnet's data; required (kept after the run)
	PRuntimeBinary string
	PherryBinary   string
	TokenCode      []byte // examples/contracts/token
	Duration       time.Duration
	Interval       time.Duration
	KillEvery      time.Duration // 0: no kills
	RestartAfter   time.Duration
	Transfers      int // goroutines
	Commands       int
	Queries        int
	TimeoutCommit  time.Duration
	Seed           uint64
	Out            io.Writer // samples and events as they happen
}

// SoakSample is one interval's figures.
type SoakSample struct {
	At                                  time.Duration
	Height                              int64
	TransfersPerSec, CommandsPerSec     float64
	QueriesPerSec                       float64
	Failed                              int               // operations that returned an error in the interval
	RSSMiB                              map[string]uint64 // by part: "devnet" (this process: node, load, devnet), "<runtime>", "<runtime>/pherry"
	RootsCompared, Diverged             int               // replica state roots compared at equal heights, and found different
	Kills                               []string
	transfers, commands, queries, fails int64
}

// SoakResult is the run's outcome.
type SoakResult struct {
	Samples       []SoakSample
	Kills         []string
	RootsCompared int
	Divergences   []string // "height H: worker1 root R1, worker2 root R2"
	BalancesExact bool     // every sender whose commands all had a known outcome holds what they imply
	Uncertain     int      // senders excluded (a command with an unknown outcome)
	Transfers     int64
	Commands      int64
	Queries       int64
	Failed        int64
}

// RunSoak performs the run. It returns an error only when the run could
// not be made; what it found (divergences, wrong balances) is in the
// result.
func RunSoak(ctx context.Context, cfg SoakConfig) (*SoakResult, error) {
	if cfg.Interval <= 0 || cfg.Duration < cfg.Interval || cfg.Transfers < 2 || cfg.Commands < 2 || cfg.Queries < 1 {
		return nil, errors.New("soak: an interval no longer than the duration, at least 2 transfer and 2 command goroutines and 1 query goroutine")
	}
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	ports, err := node.FreePorts(2)
	if err != nil {
		return nil, err
	}
	dcfg := devnet.DefaultConfig(cfg.Home)
	dcfg.Ports, dcfg.PRuntimePort = ports, 0
	dcfg.PRuntimeBinary, dcfg.PherryBinary = cfg.PRuntimeBinary, cfg.PherryBinary
	dcfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.TimeoutCommit > 0 {
		dcfg.TimeoutCommit = cfg.TimeoutCommit
	}
	d, err := devnet.Start(ctx, dcfg)
	if err != nil {
		return nil, err
	}
	defer d.Stop()
	if err := d.WaitReady(ctx); err != nil {
		return nil, err
	}
	c, err := d.Dial(ctx)
	if err != nil {
		return nil, err
	}
	say("devnet up in %s (RPC %s); pRuntime and pherry logs under it", cfg.Home, d.RPC())

	alice := c.NewSigner(crypto.MustKeyPairFromURI("//Alice"))
	upload, _, err := alice.Upload(ctx, cfg.TokenCode, 2, nil)
	if err != nil {
		return nil, fmt.Errorf("upload the token: %w", err)
	}
	rec, err := c.WaitContract(ctx, upload)
	if err != nil {
		return nil, err
	}
	for rec.Status != api.ContractRunning || len(rec.Workers) < 2 {
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
		if rec, err = c.Contract(ctx, rec.Identity); err != nil {
			return nil, err
		}
	}
	p := c.Params()
	fund := 1_000_000 * (p.MinFee(1024) + p.GasFee(TransferGas))
	newAccounts := func(n int) ([]*crypto.KeyPair, error) {
		ks := make([]*crypto.KeyPair, n)
		for i := range ks {
			var err error
			if ks[i], _, err = crypto.GenerateKeyPair(); err != nil {
				return nil, err
			}
			if _, err := alice.Submit(ctx, &api.Transfer{To: ks[i].Public(), Amount: fund}); err != nil {
				return nil, fmt.Errorf("fund: %w", err)
			}
		}
		return ks, nil
	}
	payers, err := newAccounts(cfg.Transfers)
	if err != nil {
		return nil, err
	}
	senders, err := newAccounts(cfg.Commands)
	if err != nil {
		return nil, err
	}
	const minted = 1 << 40
	for _, k := range senders {
		if _, err := alice.Command(ctx, rec, []byte(fmt.Sprintf("mint %s %d", k.Public().Hex(), minted))); err != nil {
			return nil, fmt.Errorf("mint: %w", err)
		}
	}
	say("token %s on %d workers; %d transfer, %d command and %d query goroutines; a kill every %s",
		rec.Identity.Short(), len(rec.Workers), cfg.Transfers, cfg.Commands, cfg.Queries, cfg.KillEvery)

	var transfers, commands, queries, fails atomic.Int64
	sent := make([]atomic.Int64, len(senders))
	uncertain := make([]atomic.Bool, len(senders))
	// The load stops at the stop flag, letting calls in flight finish
	// (a command cut off could commit unseen); the background tasks stop
	// with load.
	var stop atomic.Bool
	load, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	for i, k := range payers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, to := c.NewSigner(k), payers[(i+1)%len(payers)].Public()
			for !stop.Load() {
				if _, err := s.Submit(ctx, &api.Transfer{To: to, Amount: 1}); err != nil {
					fails.Add(1)
					sleepCtx(load, 100*time.Millisecond)
					continue
				}
				transfers.Add(1)
			}
		}()
	}
	for i, k := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, to := c.NewSigner(k), senders[(i+1)%len(senders)].Public().Hex()
			for !stop.Load() {
				_, err := s.Command(ctx, rec, []byte("transfer "+to+" 1"), client.WithGas(TransferGas))
				if err == nil {
					sent[i].Add(1)
					commands.Add(1)
					continue
				}
				fails.Add(1)
				var refused *api.TxError
				if !errors.As(err, &refused) {
					// Not refused by the mempool: it may have been
					// committed; this sender's balance is no longer known.
					uncertain[i].Store(true)
				}
				sleepCtx(load, 100*time.Millisecond)
			}
		}()
	}
	for i := 0; i < cfg.Queries; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := senders[i%len(senders)]
			for !stop.Load() {
				if _, _, err := c.QueryContract(ctx, k, rec, []byte("balance")); err != nil {
					fails.Add(1)
					sleepCtx(load, 100*time.Millisecond)
					continue
				}
				queries.Add(1)
			}
		}()
	}

	// The replicas' state roots, compared at equal heights.
	var partsMu sync.Mutex // kills restart parts: their API clients change
	res := &SoakResult{}
	var compared, diverged atomic.Int64
	var divMu sync.Mutex
	roots := map[string]map[int64]string{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for load.Err() == nil {
			partsMu.Lock()
			for _, rt := range d.Runtimes[1:] {
				ictx, cancel := context.WithTimeout(load, 2*time.Second)
				info, err := rt.API.Info(ictx)
				cancel()
				if err != nil {
					continue
				}
				root := info.Contracts[rec.Identity.Hex()]
				if root == "" {
					continue
				}
				m := roots[rt.Name]
				if m == nil {
					m = map[int64]string{}
					roots[rt.Name] = m
				}
				m[info.Dispatched] = root
			}
			partsMu.Unlock()
			a, b := roots[d.Runtimes[1].Name], roots[d.Runtimes[2].Name]
			for h, ra := range a {
				if rb, ok := b[h]; ok {
					compared.Add(1)
					if ra != rb {
						diverged.Add(1)
						divMu.Lock()
						res.Divergences = append(res.Divergences, fmt.Sprintf("height %d: %s root %s, %s root %s", h, d.Runtimes[1].Name, ra, d.Runtimes[2].Name, rb))
						divMu.Unlock()
					}
					delete(a, h)
					delete(b, h)
				}
			}
			for _, m := range roots { // forget heights the other never showed
				for h := range m {
					if len(m) > 200 {
						delete(m, h)
					}
				}
			}
			sleepCtx(load, 250*time.Millisecond)
		}
	}()

	// Kills.
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed))
	var killMu sync.Mutex
	var pendingKills []string
	if cfg.KillEvery > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sleepCtx(load, cfg.KillEvery) == nil {
				rt := d.Runtimes[rng.IntN(len(d.Runtimes))]
				pherry := rng.IntN(2) == 0
				what := rt.Name + " pRuntime"
				if pherry {
					what = rt.Name + "'s pherry"
				}
				partsMu.Lock()
				pid := rt.PRuntimePID()
				if pherry {
					pid = rt.PherryPID()
				}
				var err error
				if pherry {
					err = rt.KillPherry()
				} else {
					err = rt.Kill()
				}
				partsMu.Unlock()
				if err != nil {
					say("kill %s: %v", what, err)
					continue
				}
				sleepCtx(load, cfg.RestartAfter)
				partsMu.Lock()
				if pherry {
					err = rt.RestartPherry()
				} else {
					err = rt.Start()
				}
				partsMu.Unlock()
				ev := fmt.Sprintf("%s: killed %s (pid %d), restarted %s later", time.Now().Format(time.TimeOnly), what, pid, cfg.RestartAfter)
				if err != nil {
					ev += fmt.Sprintf(": restart failed: %v", err)
				}
				say("%s", ev)
				killMu.Lock()
				pendingKills = append(pendingKills, ev)
				res.Kills = append(res.Kills, ev)
				killMu.Unlock()
			}
		}()
	}

	// Samples.
	start := time.Now()
	last := SoakSample{}
	say("%8s %7s %11s %11s %11s %6s %9s  %s", "at", "height", "transfers/s", "commands/s", "queries/s", "failed", "roots=/≠", "RSS MiB")
	for time.Since(start) < cfg.Duration {
		if err := sleepCtx(ctx, cfg.Interval); err != nil {
			return nil, err
		}
		s := SoakSample{At: time.Since(start).Round(time.Second), RSSMiB: map[string]uint64{}}
		s.transfers, s.commands, s.queries, s.fails = transfers.Load(), commands.Load(), queries.Load(), fails.Load()
		secs := (s.At - last.At).Seconds()
		s.TransfersPerSec = float64(s.transfers-last.transfers) / secs
		s.CommandsPerSec = float64(s.commands-last.commands) / secs
		s.QueriesPerSec = float64(s.queries-last.queries) / secs
		s.Failed = int(s.fails - last.fails)
		s.Height, _ = c.Height(ctx)
		s.RSSMiB["devnet"] = rssMiB("self")
		partsMu.Lock()
		for _, rt := range d.Runtimes {
			// By role: a process being restarted is left out, not
			// mistaken for the other.
			if pid := rt.PRuntimePID(); pid > 0 {
				s.RSSMiB[rt.Name] = rssMiB(strconv.Itoa(pid))
			}
			if pid := rt.PherryPID(); pid > 0 {
				s.RSSMiB[rt.Name+"/pherry"] = rssMiB(strconv.Itoa(pid))
			}
		}
		partsMu.Unlock()
		s.RootsCompared, s.Diverged = int(compared.Load()), int(diverged.Load())
		killMu.Lock()
		s.Kills, pendingKills = pendingKills, nil
		killMu.Unlock()
		var mem []string
		for _, k := range slices.Sorted(maps.Keys(s.RSSMiB)) {
			mem = append(mem, fmt.Sprintf("%s %d", k, s.RSSMiB[k]))
		}
		say("%8s %7d %11.1f %11.1f %11.1f %6d %4d/%-4d  %s", s.At, s.Height, s.TransfersPerSec, s.CommandsPerSec, s.QueriesPerSec, s.Failed,
			s.RootsCompared, s.Diverged, strings.Join(mem, ", "))
		res.Samples = append(res.Samples, s)
		last = s
	}
	stop.Store(true)
	stopLoad()
	wg.Wait()
	res.Transfers, res.Commands, res.Queries, res.Failed = transfers.Load(), commands.Load(), queries.Load(), fails.Load()
	res.RootsCompared = int(compared.Load())

	// Balances: what each sender's committed commands imply, on both
	// replicas once they have caught up.
	tip, err := c.Height(ctx)
	if err != nil {
		return nil, err
	}
	for _, rt := range d.Runtimes[1:] {
		for {
			info, err := rt.API.Info(ctx)
			if err == nil && info.Dispatched >= tip {
				break
			}
			if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
				return nil, fmt.Errorf("%s did not catch up: %w", rt.Name, err)
			}
		}
	}
	res.BalancesExact = true
	for i, k := range senders {
		if uncertain[i].Load() || uncertain[(i+len(senders)-1)%len(senders)].Load() {
			res.Uncertain++
			continue
		}
		want := strconv.FormatUint(minted-uint64(sent[i].Load())+uint64(sent[(i+len(senders)-1)%len(senders)].Load()), 10)
		got, _, err := c.QueryContract(ctx, k, rec, []byte("balance"))
		if err != nil || string(got) != want {
			res.BalancesExact = false
			say("sender %d holds %q (%v), want %s", i, got, err, want)
		}
	}
	return res, nil
}

// rssMiB reads a process's resident set size (Linux /proc), 0 if unknown.
func rssMiB(pid string) uint64 {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb / 1024
		}
	}
	return 0
}
