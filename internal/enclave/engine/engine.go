// Package engine is pRuntime's core: it holds the entity keys, verifies the
// chain through the light client, dispatches verified queue messages to
// handlers in block order, keeps the signed egress until the chain echoes
// it back, and checkpoints all of it sealed after every call, so a crash at
// any moment resumes from the last checkpoint and replays to the same state.
//
// Roles: a genesis gatekeeper's duties and its MasterKey live in package
// gatekeeper, which the engine calls through gatekeeperRole (roles.go),
// giving it a read-only view of the chain-derived state and its egress. The
// worker's duties (opening contract key grants, running contracts,
// commands and queries: worker.go) are still here.
//
// What it trusts: the genesis it is started with, and what it verifies.
// Time is the verified headers' time, never the host clock.
package engine

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"go.dedis.ch/kyber/v3"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/lightclient"
	"github.com/phalago/phala/internal/enclave/platform"
	"github.com/phalago/phala/internal/enclave/sealing"
	"github.com/phalago/phala/internal/enclave/vm"
)

// Errors callers branch on.
var (
	ErrBadInput  = errors.New("invalid input")
	ErrNotSynced = errors.New("not synced")
)

// StateFile is the sealed checkpoint's name in the data directory.
const StateFile = "runtime.sealed"

// maxAhead bounds how many verified headers may wait for their blocks.
const maxAhead = 100_000

// Roles of a pRuntime.
const (
	RoleWorker     = "worker"
	RoleGatekeeper = "gatekeeper"
)

// Config of an engine.
type Config struct {
	DataDir  string
	Genesis  *cmttypes.GenesisDoc
	Endpoint string // the public URL of this pRuntime's API, put in WorkerInfo
	Platform platform.Platform
	Log      *slog.Logger
	// Cores and MemoryMB (MiB) are declared in WorkerInfo (deployment
	// requirements are checked against them); 0: this machine's
	// (runtime.NumCPU, MemTotal of /proc/meminfo).
	Cores    uint32
	MemoryMB uint64
}

// Handler handles the messages of one topic.
type Handler func(ctx *Context, m *api.Message) error

// Context is what a handler sees.
type Context struct {
	e      *Engine
	Height int64
	Time   time.Time
	// appHash: the app hash that commits to this block (kept for the
	// blocks a recovery may replay).
	appHash []byte
}

// Emit queues a message from this pRuntime (origin: its identity as
// worker, or as gatekeeper) into the egress.
func (c *Context) Emit(kind api.OriginKind, topic string, payload []byte) {
	c.e.emit(kind, topic, payload)
}

// Engine is a running pRuntime core. Its methods are safe for concurrent use.
type Engine struct {
	mu     sync.Mutex
	cfg    Config
	log    *slog.Logger
	entity *keys.Entity
	sealer *sealing.Sealer // bound to the chain and this identity
	gk     gatekeeperRole  // nil unless this pRuntime is a genesis gatekeeper (roles.go)
	// entitySealer seals the entity keys (the chain's binding, no
	// identity): their EcdhKey rotates (keys.Entity.StartRotation).
	entitySealer *sealing.Sealer
	// memberCommits caches each key era's member commitments X_i
	// (keys.go), derived from chain state: not checkpointed.
	memberCommits map[uint64][]kyber.Point
	role          string
	// toAck: contracts with an execution timeout whose commands the
	// block being dispatched executed (ackExecuted empties it).
	toAck    map[crypto.PublicKey]bool
	chainID  string
	genState *api.GenesisState
	lc       *lightclient.Client
	st       *state
	routes   map[string]Handler // by exact topic
	vm       *vm.VM
	running  map[crypto.PublicKey]*running
	guard    *contracts.QueryGuard
	sessions *contracts.Sessions // query sessions (querysession.go), in memory only
	resState                     // bounded resources: checkpoint parts, egress pages, query slots (egress.go)

	// What queries read, published after each dispatched block (publish)
	// under pubMu, never under mu: queries do not wait for dispatch.
	pubMu sync.RWMutex
	pub   published
	// retired: a runtime migration retired this pRuntime's build
	// (migration.go); read by queries off the lock.
	retired atomic.Bool
	// cnt: monitoring counters (stats.go), read off the lock.
	cnt counters
}

// published is the running contracts' committed state as of one
// dispatched block: each contract's view after all of that block's
// messages, the block's height and time.
type published struct {
	height    int64
	blockTime int64 // unix nanoseconds
	views     map[crypto.PublicKey]publishedView
}

type publishedView struct {
	c     *contracts.Contract
	view  *contracts.View
	calls uint64 // the contract's call counter when view was taken
}

// publish (under mu, between blocks) makes the running contracts' current
// state what queries read: a new view for each contract whose state
// changed since the last publication (its call counter moved), the old
// view otherwise (views are O(1), copy on write, but a new one makes the
// next command copy the store's index).
func (e *Engine) publish() {
	e.pubMu.RLock()
	old := e.pub.views
	e.pubMu.RUnlock()
	views := make(map[crypto.PublicKey]publishedView, len(e.running))
	for id, r := range e.running {
		if p, ok := old[id]; ok && p.c == r.c && p.calls == r.c.Calls() {
			views[id] = p
			continue
		}
		views[id] = publishedView{c: r.c, view: r.c.View(), calls: r.c.Calls()}
	}
	e.pubMu.Lock()
	e.pub = published{height: e.st.dispatched, blockTime: e.st.blockTime, views: views}
	e.pubMu.Unlock()
	e.noteHeights()
}

// queryView returns what a query to contract reads: the contract, its
// view and the block it reflects.
func (e *Engine) queryView(contract crypto.PublicKey) (publishedView, int64, time.Time, bool) {
	e.pubMu.RLock()
	defer e.pubMu.RUnlock()
	p, ok := e.pub.views[contract]
	return p, e.pub.height, time.Unix(0, e.pub.blockTime), ok
}

// New opens (or initializes) a pRuntime in cfg.DataDir.
func New(cfg Config) (*Engine, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	g, err := lightclient.GenesisFromDoc(cfg.Genesis)
	if err != nil {
		return nil, err
	}
	gs, err := api.DecodeGenesisState(cfg.Genesis.AppState)
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, log: cfg.Log.With("module", "pruntime"), chainID: g.ChainID, genState: gs, role: RoleWorker,
		running: map[crypto.PublicKey]*running{}, guard: contracts.NewQueryGuard(), sessions: contracts.NewSessions(), routes: map[string]Handler{}}
	// Every sealed file is bound to this chain; all but the entity keys
	// also to this pRuntime's identity.
	chainSealer := sealing.NewSealer(cfg.Platform, sealing.Binding{ChainID: g.ChainID, GenesisHash: g.Hash})
	if err := orphans(cfg.DataDir); err != nil {
		return nil, err
	}
	var est keys.EntityState
	if e.entity, est, err = keys.LoadOrCreateEntity(chainSealer, cfg.DataDir); err != nil {
		return nil, err
	}
	e.sealer = chainSealer.ForIdentity(e.entity.Identity.Public())
	e.entitySealer = chainSealer
	switch est {
	case keys.EntityCreated:
		e.log.Info("entity keys created", "identity", e.entity.Identity.Public().Hex(), "ecdh", e.entity.Ecdh.Public().Hex(), "chain", chainSealer.Binding().Chain())
	case keys.EntityPreGenesis:
		e.log.Info("pre-genesis entity keys: first start, binding them to this chain", "identity", e.entity.Identity.Public().Hex(), "chain", chainSealer.Binding().Chain())
	}
	e.st = newState()
	var trusted *cmttypes.SignedHeader
	data, err := e.sealer.Load(filepath.Join(cfg.DataDir, StateFile))
	switch {
	case err == nil:
		if derr := e.restoreCheckpoint(data); derr != nil {
			return nil, fmt.Errorf("%w: %s: %v", sealing.ErrCorrupt, StateFile, derr)
		}
		if len(e.st.trustedHeader) > 0 {
			if trusted, _, err = decodeTrusted(e.st.trustedHeader); err != nil {
				return nil, fmt.Errorf("%w: %s: %v", sealing.ErrCorrupt, StateFile, err)
			}
		}
	case errors.Is(err, sealing.ErrNotExist):
		e.st.headerHeight = g.InitialHeight - 1
		e.st.dispatched = g.InitialHeight - 1
		e.st.allowlist = gs.Attestation.Measurements
		e.st.params = gs.Params
		e.st.eras = api.GenesisEras(gs.Params.EraLength)
		e.st.gatekeepers = slices.Clone(gs.Gatekeepers)
		e.st.hashFloor = g.InitialHeight
	default:
		return nil, fmt.Errorf("load runtime state: %w", err)
	}
	e.lc = lightclient.New(g, trusted)
	e.handle(api.TopicWorkerRegistered, e.onWorkerRegistered)
	e.handle(api.TopicContractUploaded, e.onUploaded)
	e.handle(api.TopicContractDeployed, e.onDeployed)
	e.handle(api.TopicContractStatus, e.onContractStatus)
	e.handle(api.TopicArbitrationOpened, e.onArbitrationOpened)
	e.handle(api.TopicArbitersAssigned, e.onArbitersAssigned)
	e.handle(api.TopicArbitrationVerdict, e.onVerdict)
	e.handle(api.TopicContractCommand, e.onCommand)
	e.handle(api.TopicContractQuery, e.onChainQuery)
	e.handle(api.TopicContractCall, e.onContractCall)
	e.handle(api.TopicContractDeposit, e.onDeposit)
	e.handle(api.TopicPayoutResult, e.onPayoutResult)
	e.handle(api.TopicMasterKey, e.onMasterKeyAnnounced)
	e.handle(api.TopicMasterKeyShare, e.onMasterKeyShare)
	e.handle(api.TopicKeyRotationReady, e.onKeyRotationReady)
	e.handle(api.TopicKeyPartials, e.onKeyPartials)
	e.handle(api.TopicRekey, e.onRekey)
	e.handle(api.TopicRekeyed, e.onRekeyed)
	e.handle(api.TopicKeyEraRetired, e.onKeyEraRetired)
	e.handle(api.TopicDkgRound, e.onDkgRound)
	e.handle(api.TopicDkgDeals, e.onDkgDeals)
	e.handle(api.TopicDkgResponse, e.onDkgResponse)
	e.handle(api.TopicDkgJustification, e.onDkgJustification)
	e.handle(api.TopicDkgTimeout, e.onDkgTimeout)
	e.handle(api.TopicGovAllowlist, e.onAllowlist)
	e.handle(api.TopicGovMinRuntimeVersion, e.onMinVersion)
	e.handle(api.TopicGovParams, e.onParams)
	e.handle(api.TopicEraSchedule, e.onEraSchedule)
	e.handle(api.TopicNodeStake, e.onNodeStake)
	e.handle(api.TopicChallenge, e.onChallenge)
	e.handle(api.TopicAssignable, e.onAssignable)
	e.handle(api.TopicGatekeeperElected, e.onGatekeeperElected)
	e.handle(api.TopicGatekeeperActive, e.onGatekeeperActive)
	e.handle(api.TopicContractState, e.onStateUpdate)
	e.handle(api.TopicSubnetChanged, e.onSubnetChanged)
	e.handle(api.TopicMigrationStarted, e.onMigrationStarted)
	e.handle(api.TopicMigrationCompleted, e.onMigrationCompleted)
	e.handle(api.TopicMigrationCancelled, e.onMigrationCancelled)
	e.retired.Store(e.st.retiredAt > 0)
	me := e.entity.Identity.Public()
	if e.isGatekeeper(me) || e.isElected(me) {
		e.role = RoleGatekeeper
	}
	// A member of a past key set keeps serving the contracts under its
	// era (and destroys its share when the era retires); a member in a
	// DKG continues it.
	if e.role == RoleGatekeeper || e.keySetMember(me) || e.st.dkg != nil {
		if err := e.startGatekeeper(est == keys.EntityPreGenesis); err != nil {
			return nil, err
		}
	}
	if est == keys.EntityPreGenesis {
		// After the MasterKey is sealed: a crash before this line starts
		// over as a first start, one after it finds the MasterKey.
		if err := e.entity.Bind(chainSealer, cfg.DataDir); err != nil {
			return nil, fmt.Errorf("bind entity keys to the chain: %w", err)
		}
	}
	e.publish()
	e.log.Info("pRuntime ready", "version", Version, "role", e.role, "identity", e.entity.Identity.Public().Hex(), "platform", cfg.Platform.Name(),
		"synced", e.st.headerHeight, "dispatched", e.st.dispatched, "egress", len(e.st.egress))
	return e, e.checkpoint()
}

// orphans refuses to create new entity keys next to sealed files of the
// identity whose keys are gone (they would be refused anyway, after a new
// identity had been made): nothing changes, and the error says what to do.
func orphans(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, keys.EntityFile)); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	for _, f := range []string{keys.MasterFile, StateFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("%w: %s is in %s without %s: it belongs to the identity whose keys are gone; move it away to start as a new pRuntime", sealing.ErrOtherIdentity, f, dir, keys.EntityFile)
		}
	}
	return nil
}

func decodeTrusted(b []byte) (*cmttypes.SignedHeader, *cmttypes.ValidatorSet, error) {
	// The checkpoint stores only the header; an empty validator set
	// placeholder keeps one decoder for both.
	return lightclient.DecodeHeaderOnly(b)
}

// handle routes the messages of exactly topic to h (one handler per
// topic; a second registration is a programming error).
func (e *Engine) handle(topic string, h Handler) {
	if _, ok := e.routes[topic]; ok {
		panic(fmt.Sprintf("engine: topic %q handled twice", topic))
	}
	e.routes[topic] = h
}

// Handle registers the handler of exactly topic (not a prefix). Call it
// before serving. A chain module's message on a topic without a handler
// stops dispatch (ErrUpgradeRequired).
func (e *Engine) Handle(topic string, h Handler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.handle(topic, h)
}

func (e *Engine) emit(kind api.OriginKind, topic string, payload []byte) {
	o := api.KeyOrigin(kind, e.entity.Identity.Public())
	key := string(o.Encode())
	seq := e.st.egressSeq[key]
	e.st.egressSeq[key] = seq + 1
	e.st.egress = append(e.st.egress, api.SignMessage(e.chainID, api.Message{Origin: o, Topic: topic, Seq: seq, Payload: payload}, e.entity.Identity))
}

// Close writes a last checkpoint (so what changed since the last sync
// call, such as queries remembered by the replay guard, survives a clean
// stop). The engine must not be used afterwards.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ck.final = true
	return e.checkpoint()
}

// SyncHeaders verifies consecutive headers. It stops at the first header
// that does not verify, keeping those before it, and returns the height
// reached with the error.
func (e *Engine) SyncHeaders(b *api.HeaderBatch) (int64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ferr error
	n := 0
	for n < len(b.Headers) && ferr == nil {
		var k int
		k, ferr = e.syncHeaders(b.Headers[n:min(len(b.Headers), n+syncChunk)], n)
		n += k
	}
	if n > 0 {
		if err := e.checkpoint(); err != nil {
			return e.st.headerHeight, err
		}
	}
	e.noteHeights()
	if ferr != nil {
		e.log.Warn("header sync refused", "height", e.st.headerHeight, "err", ferr)
	}
	return e.st.headerHeight, ferr
}

// syncChunk is how many headers SyncHeaders decodes and verifies
// together: enough for batch verification of their signatures to pay off
// fully, few enough to keep the decoded headers' memory small.
const syncChunk = 512

// syncHeaders decodes hs (each once), verifies them together
// (lightclient.VerifyBatch, which accepts exactly what one by one would)
// and records those accepted. first is the index of hs[0] in the batch,
// for errors. It returns how many it accepted and the error that stopped
// it.
func (e *Engine) syncHeaders(hs []api.HeaderSync, first int) (int, error) {
	var ferr error
	dec, errs := decodeHeaders(hs)
	waiting := len(e.st.appHash)
	for i, err := range errs {
		if waiting >= maxAhead {
			ferr = fmt.Errorf("%w: %d verified headers wait for their blocks; dispatch blocks first", ErrBadInput, waiting)
			dec = dec[:i]
			break
		}
		if err != nil {
			ferr = fmt.Errorf("%w: header %d of the batch: %v", ErrBadInput, first+i, err)
			dec = dec[:i]
			break
		}
		// A header decoded without its header field is refused by
		// VerifyBatch; it waits for nothing.
		if sh := dec[i].Header; sh.Header != nil && sh.Height > e.cfg.Genesis.InitialHeight {
			waiting++
		}
	}
	n, err := e.lc.VerifyBatch(dec)
	if err != nil {
		// It refused a header before any that did not decode.
		ferr = fmt.Errorf("%w: header %d of the batch: %v", ErrBadInput, first+n, err)
	}
	for _, h := range dec[:n] {
		sh := h.Header
		if sh.Height > e.cfg.Genesis.InitialHeight {
			e.st.appHash[sh.Height-1] = sh.AppHash
		}
		e.st.headerTime[sh.Height] = sh.Time.UnixNano()
		e.rememberBlockHash(sh)
		e.st.headerHeight = sh.Height
	}
	return n, ferr
}

// decodeHeaders decodes hs (lightclient.DecodeHeader), in contiguous
// ranges on a goroutine per CPU; errs[i] is header i's decoding error.
func decodeHeaders(hs []api.HeaderSync) ([]lightclient.Signed, []error) {
	dec := make([]lightclient.Signed, len(hs))
	errs := make([]error, len(hs))
	workers := max(1, min(runtime.GOMAXPROCS(0), len(hs)/32))
	per := (len(hs) + workers - 1) / workers
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * per; i < min(len(hs), (w+1)*per); i++ {
				sh, vals, err := lightclient.DecodeHeader(hs[i].SignedHeader, hs[i].Validators)
				dec[i], errs[i] = lightclient.Signed{Header: sh, Validators: vals}, err
			}
		}()
	}
	wg.Wait()
	return dec, errs
}

// DispatchBlocks verifies and dispatches consecutive blocks' messages. It
// stops at the first block that does not verify, keeping those before it.
func (e *Engine) DispatchBlocks(b *api.BlockBatch) (int64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ferr error
	n := 0
	for i := range b.Blocks {
		if err := e.dispatchBlock(&b.Blocks[i]); err != nil {
			ferr = fmt.Errorf("block %d of the batch: %w", i, err)
			break
		}
		n++
	}
	if n > 0 {
		if err := e.checkpoint(); err != nil {
			return e.st.dispatched, err
		}
	}
	switch {
	case errors.Is(ferr, ErrUpgradeRequired):
		e.log.Error("dispatch stopped: the chain requires a newer pRuntime; upgrade it", "version", Version, "dispatched", e.st.dispatched, "err", ferr)
	case ferr != nil:
		e.log.Warn("block dispatch refused", "dispatched", e.st.dispatched, "err", ferr)
	}
	return e.st.dispatched, ferr
}

func (e *Engine) dispatchBlock(bm *api.BlockMessages) error {
	want := e.st.dispatched + 1
	if bm.Height != want {
		return fmt.Errorf("%w: got block %d, expected %d", ErrBadInput, bm.Height, want)
	}
	appHash, ok := e.st.appHash[bm.Height]
	if !ok {
		return fmt.Errorf("%w: header %d, which commits to block %d, is not verified yet", ErrNotSynced, bm.Height+1, bm.Height)
	}
	if err := bm.Verify(appHash); err != nil {
		return fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	// Sequences: check the whole block before changing anything.
	seen := map[string]uint64{}
	for i := range bm.Messages {
		m := &bm.Messages[i]
		k := string(m.Origin.Encode())
		next, ok := seen[k]
		if !ok {
			next = e.st.nextSeq[k]
		}
		if m.Seq != next {
			return fmt.Errorf("%w: message %d from %s has sequence %d, expected %d", ErrBadInput, i, m.Origin, m.Seq, next)
		}
		seen[k] = next + 1
	}
	if err := e.checkVersion(bm); err != nil {
		return err
	}
	for k, v := range seen {
		e.st.nextSeq[k] = v
	}
	e.st.blockTime = e.st.headerTime[bm.Height]
	t := time.Unix(0, e.st.blockTime).UTC()
	delete(e.st.appHash, bm.Height)
	delete(e.st.headerTime, bm.Height)
	e.st.dispatched = bm.Height
	ctx := &Context{e: e, Height: bm.Height, Time: t, appHash: appHash}
	for i := range bm.Messages {
		m := &bm.Messages[i]
		e.ack(m)
		if m.Origin.Kind == api.OriginContract {
			// Its acknowledgement changes the contract's pending egress
			// (part of its egress budget): a rebuild replays it.
			e.noteInput(ctx, m.Origin.Key)
		}
		if h, ok := e.routes[m.Topic]; ok {
			if err := h(ctx, m); err != nil {
				// A message the chain ordered cannot be refused; its
				// handler's failure is recorded, the queue moves on.
				e.log.Warn("message handler failed", "height", bm.Height, "origin", m.Origin.String(), "topic", m.Topic, "seq", m.Seq, "err", err)
			}
		}
	}
	e.ackExecuted(bm.Height)
	e.cutStates(bm.Height)
	if bm.Height%regrantInterval == 0 {
		e.pruneRounds(bm.Height)
		e.grantWaiting(bm.Height)
	}
	e.pruneBlockHashes(bm.Height)
	e.publish()
	e.cnt.blocks.Add(1)
	e.cnt.messages.Add(uint64(len(bm.Messages)))
	return nil
}

// ack drops egress the chain has accepted (it comes back in the queue).
func (e *Engine) ack(m *api.Message) {
	switch {
	case !m.Origin.Kind.OffChain():
		return
	case m.Origin.Kind == api.OriginContract:
		// A contract this pRuntime emitted for: one it runs, or one whose
		// failed start it reported (and does not run).
		if _, ok := e.st.egressSeq[string(m.Origin.Encode())]; !ok {
			return
		}
	case m.Origin.Key != e.entity.Identity.Public():
		return
	}
	e.st.egress = slices.DeleteFunc(e.st.egress, func(s api.SignedMessage) bool {
		return s.Message.Origin == m.Origin && s.Message.Seq <= m.Seq
	})
}

// Egress returns the signed messages waiting to be put on chain.
func (e *Engine) Egress() []api.SignedMessage {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.st.egress)
}

// Info is what pRuntime tells about itself (the wire type of GET /info).
type Info = api.PRuntimeInfo

// Info returns the public facts of this pRuntime.
func (e *Engine) Info() Info {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	root := e.st.root()
	info := Info{
		PRuntimePublicInfo: api.PRuntimePublicInfo{
			ChainID: e.chainID, Role: e.role, Platform: e.cfg.Platform.Name(), Measurement: fmt.Sprintf("%x", e.cfg.Platform.Measurement()),
			IdentityKey: e.entity.Identity.Public().Hex(), EcdhKey: e.entity.Ecdh.Public().Hex(),
			Synced: e.st.headerHeight, Dispatched: e.st.dispatched, BlockTime: time.Unix(0, e.st.blockTime).UTC(), RetiredAt: e.st.retiredAt,
		},
		Egress: len(e.st.egress), Workers: len(e.st.workers), StateRoot: fmt.Sprintf("%x", root), MemoryBytes: ms.HeapAlloc,
		Version: Version, MinVersion: e.st.minVersion,
	}
	if e.gk != nil {
		if eras := e.gk.Eras(); len(eras) > 0 {
			pub, _ := e.gk.Public(eras[len(eras)-1])
			info.MasterKey = "0x" + hex.EncodeToString(pub[:])
		}
	}
	info.Recovering = e.recoveryNeeds()
	if len(info.Recovering) == 0 {
		info.Recovering = nil
	}
	for id, r := range e.running {
		if info.Contracts == nil {
			info.Contracts = map[string]string{}
		}
		root := r.c.StateRoot()
		info.Contracts[id.Hex()] = fmt.Sprintf("%x", root)
	}
	return info
}

// StateRoot is the root over the chain-derived state.
func (e *Engine) StateRoot() [32]byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st.root()
}

// WorkerInfo returns what this pRuntime registers on chain.
func (e *Engine) WorkerInfo(operator crypto.PublicKey) api.WorkerInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.workerInfo(operator)
}

// workerInfo is WorkerInfo under the engine's lock: the EcdhKey is the
// pending one while a rotation is under way (the registration carries
// it).
func (e *Engine) workerInfo(operator crypto.PublicKey) api.WorkerInfo {
	ecdh := e.entity.Ecdh
	if e.entity.Pending != nil {
		ecdh = e.entity.Pending
	}
	cores, mem := e.cfg.Cores, e.cfg.MemoryMB
	if cores == 0 {
		cores = machineCores()
	}
	if mem == 0 {
		mem = machineMemoryMB()
	}
	return api.WorkerInfo{ChainID: e.chainID, IdentityKey: e.entity.Identity.Public(), EcdhKey: ecdh.Public(), Endpoint: e.cfg.Endpoint, Operator: operator,
		Cores: cores, MemoryMB: mem, RuntimeVersion: Version}
}

// Registration returns a register_worker call: the worker info for operator
// and the platform's attestation report over it, issued at the time of the
// last verified header. The info cites a recent block, so the report is
// fresh: the block before the last verified header, by the hash that header
// commits to (LastBlockID). That block is committed on chain whenever the
// header exists, so the chain always knows its hash (the last header's own
// block may still be executing). The operator must sign the transaction.
// Errors: ErrBadInput (invalid operator), ErrNotSynced (fewer than two
// headers verified), or the platform's quote error.
func (e *Engine) Registration(operator crypto.PublicKey) (*api.RegisterWorker, error) {
	if !operator.Valid() {
		return nil, fmt.Errorf("%w: operator %s is not a valid account", ErrBadInput, operator.Hex())
	}
	if e.retired.Load() {
		return nil, ErrRetired
	}
	e.mu.Lock()
	// The EcdhKey rotates once per era (docs/keys.md, "EcdhKey
	// rotation"): a renewal in a later era than the registration it
	// renews carries a fresh key.
	me := e.entity.Identity.Public()
	if rec := e.st.workers[me]; rec != nil && e.st.eras.EraOf(rec.RegisteredAt) < e.st.eras.EraOf(e.st.dispatched) {
		if err := e.entity.StartRotation(e.entitySealer, e.cfg.DataDir); err != nil {
			e.mu.Unlock()
			return nil, fmt.Errorf("rotate the ECDH key: %w", err)
		}
	}
	info := e.workerInfo(operator)
	at := e.lc.Time()
	trusted := e.lc.Trusted()
	ok := trusted != nil && len(trusted.LastBlockID.Hash) == api.BlockHashSize
	if ok {
		info.BlockHeight = trusted.Height - 1
		copy(info.BlockHash[:], trusted.LastBlockID.Hash)
	}
	e.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: a registration cites the block before the last verified header; verify at least two headers first", ErrNotSynced)
	}
	rep, err := e.cfg.Platform.Quote(info.ReportData(), at)
	if err != nil {
		return nil, fmt.Errorf("attestation quote: %w", err)
	}
	return &api.RegisterWorker{Info: info, Report: *rep}, nil
}

// Identity returns the identity public key.
func (e *Engine) Identity() crypto.PublicKey { return e.entity.Identity.Public() }
