package relayer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/client/pruntime"
	"github.com/phalago/phala/crypto"
)

// Config of a Relayer. Zero values of the optional fields mean their
// defaults (DefaultConfig).
type Config struct {
	Node     string          // the node's CometBFT RPC URL, e.g. http://127.0.0.1:26657
	PRuntime string          // pRuntime's control API URL (pruntime --control-listen), e.g. http://127.0.0.1:8001
	Operator *crypto.KeyPair // pays the fees of egress and registration txs; the worker's operator
	Register bool            // register (and renew) the worker on chain when needed
	// Stake: once the worker is registered with Operator, the operator
	// bonds and allocates to it until its allocation is at least this
	// many units (0: no staking). A worker needs min_worker_stake to be
	// assigned contracts.
	Stake uint64

	BatchSize     int           // headers or blocks per pRuntime call (default 500, at most api.MaxSyncBatch)
	MaxBatchBytes int           // a batch stops growing, while it is fetched, at this many bytes (default DefaultMaxBatchBytes, at most api.MaxSyncPayloadBytes)
	EgressPage    int           // bytes per page of pRuntime's egress read (default DefaultEgressPageBytes)
	PollInterval  time.Duration // how often to ask the node for a new height when caught up (default 250ms)
	Log           *slog.Logger  // default slog.Default(); records carry module=pherry
	Progress      io.Writer     // optional: a progress line while catching up (e.g. a terminal)

	FetchWorkers int           // concurrent node requests while fetching a batch (default DefaultFetchWorkers)
	MaxBackoff   time.Duration // cap of the delay before retrying after an error (default 5s)
	TxTimeout    time.Duration // wait this long for a submitted tx to commit before checking again (default 30s)
	RenewBefore  int64         // renew the registration this many blocks before it expires (default: a tenth of the chain's registration lifetime)

	// Timeouts and warnings (see docs/metrics.md for the matching metrics).
	NodeTimeout     time.Duration // every request to the node (default 10s)
	PRuntimeTimeout time.Duration // every request to pRuntime but header and block batches (default 10s)
	BatchTimeout    time.Duration // a header or block batch sent to pRuntime (default 2m)
	StallAfter      time.Duration // warn when the node's tip has not moved for this long (default 10s: 5x a 2s block interval)
	MaxLag          int64         // warn when pRuntime's dispatched height stays more than this many blocks behind the tip for StallAfter (default 50)
	WarnInterval    time.Duration // a warning that lasts is repeated at most this often (default 1m)
}

// DefaultConfig returns the defaults for a local development node and
// pRuntime. Operator is left empty: it is a secret the caller chooses.
func DefaultConfig() Config {
	return Config{
		Node:          "http://127.0.0.1:26657",
		PRuntime:      "http://127.0.0.1:8001",
		Register:      true,
		BatchSize:     500,
		MaxBatchBytes: DefaultMaxBatchBytes,
		EgressPage:    DefaultEgressPageBytes,
		PollInterval:  250 * time.Millisecond,
		FetchWorkers:  DefaultFetchWorkers,
		MaxBackoff:    5 * time.Second,
		TxTimeout:     30 * time.Second,

		NodeTimeout:     10 * time.Second,
		PRuntimeTimeout: 10 * time.Second,
		BatchTimeout:    2 * time.Minute,
		StallAfter:      10 * time.Second,
		MaxLag:          50,
		WarnInterval:    time.Minute,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	for _, u := range []struct{ name, v string }{{"node", c.Node}, {"pruntime", c.PRuntime}} {
		if u.v == "" {
			errs = append(errs, fmt.Errorf("%s URL is required", u.name))
			continue
		}
		p, err := url.Parse(u.v)
		if err != nil || p.Host == "" || (p.Scheme != "http" && p.Scheme != "https" && (u.name == "pruntime" || p.Scheme != "tcp")) {
			errs = append(errs, fmt.Errorf("%s URL %q: want http://host:port", u.name, u.v))
		}
	}
	if c.Operator == nil {
		errs = append(errs, errors.New("operator key is required (it pays for egress and registration transactions)"))
	}
	if c.BatchSize < 0 || c.BatchSize > api.MaxSyncBatch {
		errs = append(errs, fmt.Errorf("batch size %d: must be 1 to %d (0: default)", c.BatchSize, api.MaxSyncBatch))
	}
	if c.MaxBatchBytes < 0 || c.MaxBatchBytes > api.MaxSyncPayloadBytes {
		errs = append(errs, fmt.Errorf("batch bytes %d: must be 1 to %d (0: default)", c.MaxBatchBytes, api.MaxSyncPayloadBytes))
	}
	if c.EgressPage < 0 || c.EgressPage > maxEgressPageBytes {
		errs = append(errs, fmt.Errorf("egress page bytes %d: must be 1 to %d (0: default)", c.EgressPage, maxEgressPageBytes))
	}
	if c.PollInterval < 0 || c.MaxBackoff < 0 || c.TxTimeout < 0 {
		errs = append(errs, errors.New("poll interval, max backoff and tx timeout must not be negative"))
	}
	if c.NodeTimeout < 0 || c.PRuntimeTimeout < 0 || c.BatchTimeout < 0 || c.StallAfter < 0 || c.WarnInterval < 0 || c.MaxLag < 0 {
		errs = append(errs, errors.New("timeouts, stall-after, warn interval and max lag must not be negative"))
	}
	if c.FetchWorkers < 0 || c.FetchWorkers > 256 {
		errs = append(errs, fmt.Errorf("fetch workers %d: must be 1 to 256 (0: default)", c.FetchWorkers))
	}
	if c.RenewBefore < 0 {
		errs = append(errs, errors.New("renew-before must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = d.MaxBatchBytes
	}
	if c.EgressPage == 0 {
		c.EgressPage = d.EgressPage
	}
	if c.PollInterval == 0 {
		c.PollInterval = d.PollInterval
	}
	if c.FetchWorkers == 0 {
		c.FetchWorkers = d.FetchWorkers
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = d.MaxBackoff
	}
	if c.TxTimeout == 0 {
		c.TxTimeout = d.TxTimeout
	}
	if c.NodeTimeout == 0 {
		c.NodeTimeout = d.NodeTimeout
	}
	if c.PRuntimeTimeout == 0 {
		c.PRuntimeTimeout = d.PRuntimeTimeout
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = d.BatchTimeout
	}
	if c.StallAfter == 0 {
		c.StallAfter = d.StallAfter
	}
	if c.MaxLag == 0 {
		c.MaxLag = d.MaxLag
	}
	if c.WarnInterval == 0 {
		c.WarnInterval = d.WarnInterval
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// Stats are counters of a running Relayer.
type Stats struct {
	Tip        int64     // the node's height at the last round
	TipChanged time.Time // when the node's height last moved (zero: not read yet)
	Synced     int64     // pRuntime's verified header height, as last reported
	Dispatched int64     // pRuntime's dispatched block height, as last reported

	EgressSubmitted       int // push_message txs the node's mempool admitted
	EgressCommitted       int // ... committed successfully
	EgressAlreadyAccepted int // messages the chain answered "already accepted" (treated as success)
	EgressSkipped         int // times an egress message was skipped: its sequence is already on chain
	EgressRefused         int // push_message txs refused or failed (retried later)
	EgressTimedOut        int // push_message txs not committed within TxTimeout (checked and resubmitted)

	// RetiredAt: the height at which a runtime migration retired
	// pRuntime's build, as pRuntime reported it (0: it serves); its
	// egress is then pushed only every retiredRetry.
	RetiredAt int64

	Registrations       int // register_worker txs committed successfully
	RegistrationRefused int // register_worker txs refused or failed (retried later)

	Errors int // rounds that failed (node or pRuntime unavailable, refusals), each retried after a backoff
}

// Relayer forwards one node's chain to one pRuntime and pRuntime's signed
// egress back to the chain. It trusts neither: pRuntime verifies what it is
// fed, and the chain checks the egress signatures and sequences.
type Relayer struct {
	cfg     Config
	log     *slog.Logger
	pr      *pruntime.Client
	f       *Fetcher
	running atomic.Bool

	rpc     *rpchttp.HTTP // the node, for everything but the first contact
	hc      *http.Client  // rpc's HTTP client
	chainID string        // the node's, read at the first contact
	sub     *submitter    // also keeps the chain parameters (currentParams)
	// retiredSaid: the error that a runtime migration retired pRuntime's
	// build was logged (once, whichever of registration and egress found
	// it first).
	retiredSaid atomic.Bool

	// Owned by the Run goroutine.
	dialed     bool
	known      bool // synced, dispatched and identity were read from pRuntime
	synced     int64
	dispatched int64
	tip        int64
	tipChanged time.Time // when the node's tip last moved
	// lastReconnect: when idle connections to the node were last dropped
	// because its tip did not move.
	lastReconnect time.Time
	identity      crypto.PublicKey
	caughtUp      bool
	lastStatus    time.Time
	prog          *progress
	// lastRecoverCheck: when pRuntime's info was last read for contracts
	// to recover (maybeRecover).
	lastRecoverCheck time.Time
	// recoverRetries: contracts whose recovery failed, by id (hex).
	recoverRetries map[string]*recoverRetry
	// retired: what the relayer knows of pRuntime's retirement by a
	// runtime migration (egress.go).
	retired retiredState

	wg     sync.WaitGroup // tx waiters
	mu     sync.Mutex     // guards what the tx waiters touch
	egress map[string]*egressState
	reg    regState
	stake  stakeState
	stats  Stats
	health *health
	// lastRoundErr: when a failed round was last logged at Warn (the
	// rest are Debug until WarnInterval passes).
	lastRoundWarn time.Time
	roundFailures int // failed rounds since then
}

// New returns a relayer for cfg (see Config for defaults).
func New(cfg Config) (*Relayer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("relayer config: %w", err)
	}
	cfg = cfg.withDefaults()
	rpc, hc, err := newRPC(cfg.Node, cfg.FetchWorkers)
	if err != nil {
		return nil, err
	}
	hc.Timeout = cfg.NodeTimeout // every node request, whoever makes it
	pr := pruntime.NewClient(cfg.PRuntime)
	pr.HTTP.Timeout = max(cfg.BatchTimeout, cfg.PRuntimeTimeout) // the longest call's; shorter ones carry a context deadline
	log := cfg.Log.With("module", "pherry")
	r := &Relayer{
		cfg:    cfg,
		log:    log,
		pr:     pr,
		rpc:    rpc,
		hc:     hc,
		f:      &Fetcher{RPC: rpc, Workers: cfg.FetchWorkers, MaxBytes: cfg.MaxBatchBytes},
		egress: map[string]*egressState{},
		health: newHealth(log, cfg.WarnInterval, cfg.StallAfter),
	}
	if cfg.Progress != nil {
		r.prog = &progress{w: cfg.Progress}
	}
	return r, nil
}

// Stats returns a snapshot of the counters.
func (r *Relayer) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// fatalError stops Run: retrying cannot fix it.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// Run relays until ctx ends, then waits for its goroutines and returns nil.
// Errors of the node or pRuntime (down, restarting, refusing) are logged
// and retried with exponential backoff, resuming from the heights pRuntime
// reports. It returns an error only for what retrying cannot fix (pRuntime
// and node on different chains). Run may be called once.
func (r *Relayer) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("relayer: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		r.wg.Wait()
	}()
	r.log.Info("pherry starting", "node", r.cfg.Node, "pruntime", r.cfg.PRuntime, "operator", r.cfg.Operator.Address(),
		"batch", r.cfg.BatchSize, "register", r.cfg.Register, "stake", r.cfg.Stake)
	bo := backoff{min: 100 * time.Millisecond, max: r.cfg.MaxBackoff}
	for ctx.Err() == nil {
		progressed, err := r.round(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if f := (*fatalError)(nil); errors.As(err, &f) {
				r.log.Error("stopping", "err", f.err)
				return f.err
			}
			r.known = false // resume from what pRuntime reports
			r.caughtUp = false
			// Dial afresh: a connection kept alive to a server that went
			// away may still be in the pools.
			r.hc.CloseIdleConnections()
			r.pr.HTTP.CloseIdleConnections()
			r.mu.Lock()
			r.stats.Errors++
			r.mu.Unlock()
			d := bo.next()
			r.logRoundError(err, d)
			sleep(ctx, d)
			continue
		}
		bo.reset()
		if !progressed {
			sleep(ctx, r.cfg.PollInterval)
		}
	}
	if r.prog != nil {
		r.prog.finish(r.dispatched, r.tip-1)
	}
	r.log.Info("pherry stopped", "synced", r.synced, "dispatched", r.dispatched)
	return nil
}

// round does one step: connect if needed, sync a batch of headers, dispatch
// a batch of blocks, register if needed, push egress. progressed reports
// whether pRuntime advanced (the caller polls again at once).
func (r *Relayer) round(ctx context.Context) (progressed bool, err error) {
	if !r.dialed {
		dctx, cancel := context.WithTimeout(ctx, r.cfg.NodeTimeout)
		c, err := client.Dial(dctx, r.cfg.Node)
		cancel()
		if err = r.nodeCalled(ctx, err); err != nil {
			return false, err
		}
		r.chainID = c.ChainID()
		r.sub = &submitter{rpc: r.rpc, chainID: r.chainID, params: c.Params(), paramsAt: time.Now(), key: r.cfg.Operator, readParams: c.ReadParams}
		r.dialed = true
		r.log.Info("connected to node", "chain", r.chainID, "node", r.cfg.Node)
	}
	wasDown := r.health.isActive(condNodeDown)
	sctx, cancel := context.WithTimeout(ctx, r.cfg.NodeTimeout)
	st, err := r.rpc.Status(sctx)
	cancel()
	if err = r.nodeCalled(ctx, err); err != nil {
		return false, fmt.Errorf("node status: %w", err)
	}
	now := time.Now()
	tip := st.SyncInfo.LatestBlockHeight
	// A stall counts while the node answers: one that just came back (a
	// stopped process resumed) gets StallAfter to move its tip.
	if tip != r.tip || r.tipChanged.IsZero() || wasDown {
		r.tipChanged = now
		r.lastReconnect = now
	} else if now.Sub(r.lastReconnect) > stallTimeout {
		// The chain seems stalled. Dial afresh in case this relayer talks
		// to a stopped server over a connection kept alive.
		r.log.Debug("node height unchanged; reconnecting", "height", tip, "since", r.tipChanged)
		r.hc.CloseIdleConnections()
		r.lastReconnect = now
	}
	stalled := now.Sub(r.tipChanged) > r.cfg.StallAfter
	r.health.set(condChainStalled, stalled, now, "height", tip, "node", r.cfg.Node, "block_time", st.SyncInfo.LatestBlockTime.UTC().Format(time.RFC3339))
	r.tip = tip
	// Behind: from pRuntime's last reported height (also while it does
	// not answer). Block tip-1 is the last a synced tip lets it dispatch.
	if r.identity != (crypto.PublicKey{}) { // pRuntime reported its heights once
		lag := max(tip-1-r.dispatched, 0)
		r.health.set(condBehind, lag > r.cfg.MaxLag, now, "lag", lag, "tip", tip, "dispatched", r.dispatched, "max_lag", r.cfg.MaxLag)
	}
	r.mu.Lock()
	r.stats.Tip, r.stats.TipChanged = tip, r.tipChanged
	r.mu.Unlock()
	if !r.known {
		if err := r.resume(ctx); err != nil {
			return false, err
		}
	}
	if r.prog != nil {
		r.prog.update(r.dispatched, tip-1)
	}

	if r.synced < tip {
		if err := r.syncHeaders(ctx, tip); err != nil {
			return errors.Is(err, errResync), ignoreResync(err)
		}
		progressed = true
	}
	if r.dispatched < r.synced-1 {
		if err := r.dispatchBlocks(ctx); err != nil {
			return errors.Is(err, errResync), ignoreResync(err)
		}
		progressed = true
	}
	caughtUp := r.synced >= tip && r.dispatched >= r.synced-1
	if r.prog != nil {
		r.prog.update(r.dispatched, tip-1)
		if caughtUp {
			r.prog.finish(r.dispatched, tip-1)
		}
	}
	if caughtUp && !r.caughtUp {
		r.log.Info("caught up; following new blocks", "synced", r.synced, "dispatched", r.dispatched)
		r.lastStatus = time.Now()
	} else if caughtUp && time.Since(r.lastStatus) >= time.Minute {
		r.log.Info("following", "synced", r.synced, "dispatched", r.dispatched)
		r.lastStatus = time.Now()
	}
	r.caughtUp = caughtUp

	if r.cfg.Register && caughtUp {
		if err := r.maybeRegister(ctx, tip); err != nil {
			return progressed, err
		}
	}
	if r.cfg.Stake > 0 && caughtUp {
		if err := r.maybeStake(ctx); err != nil {
			return progressed, err
		}
	}
	if caughtUp {
		if err := r.maybeRecover(ctx); err != nil {
			return progressed, err
		}
	}
	if err := r.pushEgress(ctx); err != nil {
		return progressed, err
	}
	return progressed, nil
}

// resume reads pRuntime's heights and identity.
func (r *Relayer) resume(ctx context.Context) error {
	ictx, cancel := context.WithTimeout(ctx, r.cfg.PRuntimeTimeout)
	info, err := r.pr.Info(ictx)
	cancel()
	if err = r.prCalled(ctx, err); err != nil {
		return err
	}
	if info.ChainID != r.chainID {
		return &fatalError{fmt.Errorf("pRuntime at %s follows chain %q but the node at %s runs %q", r.cfg.PRuntime, info.ChainID, r.cfg.Node, r.chainID)}
	}
	id, err := crypto.ParsePublicKey(info.IdentityKey)
	if err != nil {
		return &fatalError{fmt.Errorf("pRuntime identity key %q: %w", info.IdentityKey, err)}
	}
	if id != r.identity {
		r.log.Info("pRuntime", "role", info.Role, "identity", id.Hex(), "synced", info.Synced, "dispatched", info.Dispatched, "egress", info.Egress)
		r.mu.Lock()
		// Another pRuntime (a new identity, e.g. after its data was
		// wiped): nothing is known of its registration or its stake.
		r.reg, r.stake = regState{}, stakeState{}
		r.stats.RetiredAt = 0
		r.retired = retiredState{}
		r.retiredSaid.Store(false)
		r.mu.Unlock()
	} else {
		r.log.Info("resuming from pRuntime's heights", "synced", info.Synced, "dispatched", info.Dispatched)
	}
	r.identity = id
	r.setHeights(info.Synced, info.Dispatched)
	r.known = true
	return nil
}

func (r *Relayer) setHeights(synced, dispatched int64) {
	r.synced, r.dispatched = synced, dispatched
	r.mu.Lock()
	r.stats.Synced, r.stats.Dispatched = synced, dispatched
	r.mu.Unlock()
}

// stallTimeout: after this long without a new block, the relayer drops its
// pooled connections to the node.
const stallTimeout = 10 * time.Second

// DefaultMaxBatchBytes caps a sync batch: well under pRuntime's request
// limit and its sync budget, so that a relayer's memory stays near twice
// this (the batch and its encoding) whatever the blocks hold.
const DefaultMaxBatchBytes = 16 << 20

// DefaultEgressPageBytes is the size of a page of egress the relayer reads.
const DefaultEgressPageBytes = 4 << 20

// maxEgressPageBytes is the largest page pRuntime serves
// (httpapi.MaxEgressPageBytes).
const maxEgressPageBytes = 32 << 20

func (r *Relayer) syncHeaders(ctx context.Context, tip int64) error {
	from, to := r.synced+1, min(tip, r.synced+int64(r.cfg.BatchSize))
	start := time.Now()
	hb, err := r.f.Headers(ctx, from, to) // stops at MaxBatchBytes
	if err != nil {
		return fmt.Errorf("fetch headers %d..%d: %w", from, to, r.nodeCalled(ctx, err))
	}
	fetched := time.Since(start)
	bctx, cancel := context.WithTimeout(ctx, r.cfg.BatchTimeout)
	h, err := r.pr.SyncHeaders(bctx, hb)
	cancel()
	if err = r.prCalled(ctx, err); err != nil {
		return r.refused(err, "sync headers", from)
	}
	r.setHeights(h, r.dispatched)
	r.logBatch("headers synced", from, h, fetched, time.Since(start))
	return nil
}

func (r *Relayer) dispatchBlocks(ctx context.Context) error {
	from, to := r.dispatched+1, min(r.synced-1, r.dispatched+int64(r.cfg.BatchSize))
	start := time.Now()
	bb, err := r.f.Blocks(ctx, from, to) // stops at MaxBatchBytes
	if err != nil {
		return fmt.Errorf("fetch blocks %d..%d: %w", from, to, r.nodeCalled(ctx, err))
	}
	fetched := time.Since(start)
	bctx, cancel := context.WithTimeout(ctx, r.cfg.BatchTimeout)
	h, err := r.pr.DispatchBlocks(bctx, bb)
	cancel()
	if err = r.prCalled(ctx, err); err != nil {
		return r.refused(err, "dispatch blocks", from)
	}
	r.setHeights(r.synced, h)
	r.logBatch("blocks dispatched", from, h, fetched, time.Since(start))
	return nil
}

// refused handles a failed pRuntime call. If pRuntime reports a height
// other than the one this relayer assumed (another relayer fed it, or it
// restarted from an older checkpoint), it returns errResync: the relayer
// resumes from pRuntime's heights at once. Otherwise the refusal is an
// error (retried with backoff).
func (r *Relayer) refused(err error, what string, from int64) error {
	var re *pruntime.Error
	if errors.As(err, &re) {
		var reported *int64
		assumed := from - 1
		if re.Synced != nil {
			reported = re.Synced
		} else if re.Dispatched != nil {
			reported = re.Dispatched
		}
		if reported != nil && *reported != assumed {
			// Ahead: another relayer feeds it too (normal, Debug). Behind:
			// it restarted from an older checkpoint (worth an Info line).
			lvl := slog.LevelDebug
			if *reported < assumed {
				lvl = slog.LevelInfo
			}
			r.log.Log(context.Background(), lvl, "pRuntime is elsewhere than assumed; resuming from its heights",
				"call", what, "assumed", assumed, "reported", *reported)
			r.known = false
			return errResync
		}
	}
	return fmt.Errorf("%s from %d: %w", what, from, err)
}

// errResync: pRuntime is not where the relayer assumed; the round ends and
// the next one starts from pRuntime's heights.
var errResync = errors.New("resync with pRuntime")

func ignoreResync(err error) error {
	if errors.Is(err, errResync) {
		return nil
	}
	return err
}

func (r *Relayer) logBatch(msg string, from, to int64, fetch, total time.Duration) {
	n := to - from + 1
	if n <= 0 {
		return
	}
	// Info while catching up; following the chain block by block is Debug.
	lvl := slog.LevelDebug
	if r.prog == nil && ((!r.caughtUp && n > 1) || n >= 10) {
		lvl = slog.LevelInfo
	}
	r.log.Log(context.Background(), lvl, msg, "from", from, "to", to, "count", n,
		"fetch_ms", fetch.Milliseconds(), "total_ms", total.Milliseconds())
}

type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	return min(b.cur, b.max)
}

func (b *backoff) reset() { b.cur = 0 }

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
