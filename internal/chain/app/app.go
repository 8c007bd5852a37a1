// Package app is the chain's ABCI++ application: a dispatcher. It decodes
// and checks transactions, charges fees, and routes everything else through
// the module table (newMux, package module): calls, pushed messages,
// genesis, begin/end-block work and queries. It collects each block's queue
// messages and commits to them and to the state in the app hash.
//
// Concurrency: CometBFT calls the consensus connection (InitChain,
// FinalizeBlock, Commit) from one goroutine; CheckTx and Query may run
// concurrently with it. CheckTx works on a pending-state cache over the last
// committed version, Query on committed versions; only Commit swaps them.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/internal/chain/accounts"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/computation"
	"github.com/phalago/phala/internal/chain/contracts"
	"github.com/phalago/phala/internal/chain/eras"
	"github.com/phalago/phala/internal/chain/gatekeeper"
	"github.com/phalago/phala/internal/chain/governance"
	chainmetrics "github.com/phalago/phala/internal/chain/metrics"
	"github.com/phalago/phala/internal/chain/migration"
	"github.com/phalago/phala/internal/chain/module"
	"github.com/phalago/phala/internal/chain/mq"
	"github.com/phalago/phala/internal/chain/registry"
	"github.com/phalago/phala/internal/chain/staking"
	"github.com/phalago/phala/internal/chain/store"
	"github.com/phalago/phala/internal/chain/subnet"
)

// Version is reported to CometBFT in Info.
const Version = "0.1.0"

var keyChainID = []byte("p/chain_id")

// App is the ABCI application.
type App struct {
	abci.BaseApplication

	log   *slog.Logger
	store *store.Store
	sigs  *sigCache
	mux   *module.Mux

	// Set at InitChain or on open; constant afterwards.
	chainID string
	// params are those of the next block: set at InitChain, on open and
	// at Commit (governance may change them). Written only by the consensus
	// connection, under mu; CheckTx reads them under mu.
	params api.Params

	// Consensus connection only.
	pending *pendingBlock

	// Guarded by mu: the committed view CheckTx and Query start from.
	mu         sync.Mutex
	check      *store.Cache
	lastHeight int64
	lastTime   time.Time

	// metrics: set by SetMetrics before the node starts; nil counts nothing.
	metrics *chainmetrics.App
}

type pendingBlock struct {
	height    int64
	time      time.Time
	msgs      []api.Message
	appHash   []byte
	stateRoot []byte
	params    api.Params // for the next block
}

// genesisHook, set only by tests (export_test.go), writes extra state
// into block 1 after the modules' genesis: a way to give an in-process
// node state (e.g. a contract's million entries) no genesis file holds.
var genesisHook func(kv store.KV)

// New opens the application's state in dir.
func New(dir string, log *slog.Logger) (*App, error) {
	st, err := store.Open(dir)
	if err != nil {
		return nil, err
	}
	a := &App{log: log.With("module", "app"), store: st, sigs: newSigCache(1 << 18), mux: newMux()}
	if st.Height() > 0 {
		snap, err := st.Snapshot(0)
		if err != nil {
			st.Close()
			return nil, err
		}
		a.chainID = string(snap.Get(keyChainID))
		if a.params, err = api.DecodeParams(snap.Get(api.KeyParams)); err != nil {
			st.Close()
			return nil, fmt.Errorf("load params: %w", err)
		}
		t, err := st.BlockTime(st.Height())
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("load last block time: %w", err)
		}
		a.resetCheck(snap, t)
		a.log.Info("state loaded", "height", st.Height(), "chain_id", a.chainID)
	}
	return a, nil
}

// SetMetrics makes the application count into m (internal/chain/metrics).
// Call it before the node starts.
func (a *App) SetMetrics(m *chainmetrics.App) { a.metrics = m }

// Workers returns the number of worker records (expired ones included) at
// the last committed block; 0 before the first.
func (a *App) Workers() int {
	snap, err := a.store.Snapshot(0)
	if err != nil {
		return 0
	}
	n := 0
	registry.ForEachWorker(snap, func(*api.WorkerRecord) bool { n++; return true })
	return n
}

// newMux is the chain's module table: every call, origin, pushed topic,
// state key prefix and query path has one owner here. Genesis and block
// hooks run in this order.
func newMux() *module.Mux {
	return newMuxWith(economy{})
}

// newMuxWith is the module table with the gatekeeper election reading its
// voters from voters.
func newMuxWith(voters gatekeeper.VoterSource) *module.Mux {
	x := &muxRef{}
	x.Mux = module.NewMux(
		chainSpec(),
		eras.Spec(), // before every module that reads eras
		accounts.Spec(deposits{}),
		registry.Spec(),
		staking.Spec(),
		gatekeeper.Spec(voters),
		mq.Spec(x),
		contracts.Spec(),
		governance.Spec(),
		computation.Spec(economy{}),
		subnet.Spec(),
		migration.Spec(progress{}),
	)
	return x.Mux
}

// progress is what the migration module counts of the contracts and
// gatekeeper modules.
type progress struct{}

func (progress) ContractsOnOld(kv store.KV, m *api.RuntimeMigration) int {
	return contracts.ContractsOnOld(kv, m)
}

func (progress) KeyHoldersOnOld(kv store.KV, m *api.RuntimeMigration) int {
	return gatekeeper.KeyHoldersOnOld(kv, m)
}

// chainSpec is the application's own entry: the chain id, written at
// genesis (by writeGenesis, before the modules' parts).
func chainSpec() *module.Module {
	return &module.Module{Name: "chain", KeyPrefixes: []string{string(keyChainID)}}
}

// muxRef lets the queue module route through the table it belongs to.
type muxRef struct{ *module.Mux }

// Close closes the state.
func (a *App) Close() error { return a.store.Close() }

// ChainID returns the chain id (empty before InitChain).
func (a *App) ChainID() string { return a.chainID }

func (a *App) resetCheck(snap *store.Snapshot, blockTime time.Time) {
	a.mu.Lock()
	a.check = store.NewCache(snap)
	a.lastHeight = snap.Height()
	a.lastTime = blockTime
	a.mu.Unlock()
}

// Info tells CometBFT where the application's state is.
func (a *App) Info(_ context.Context, _ *abci.RequestInfo) (*abci.ResponseInfo, error) {
	h := a.store.Height()
	hash, err := a.store.AppHash(h)
	if err != nil {
		return nil, err
	}
	return &abci.ResponseInfo{Data: "phala", Version: Version, AppVersion: 1, LastBlockHeight: h, LastBlockAppHash: hash}, nil
}

// InitChain writes the genesis state into the working version.
func (a *App) InitChain(_ context.Context, req *abci.RequestInitChain) (*abci.ResponseInitChain, error) {
	g, err := api.DecodeGenesisState(req.AppStateBytes)
	if err != nil {
		return nil, err
	}
	if len(req.ChainId) == 0 || len(req.ChainId) > api.MaxChainIDBytes {
		return nil, fmt.Errorf("chain id must be 1 to %d bytes", api.MaxChainIDBytes)
	}
	a.chainID = req.ChainId
	a.mu.Lock()
	a.params = g.Params
	a.mu.Unlock()
	st := a.store
	mg := &module.Genesis{ChainID: req.ChainId, State: g, Validators: req.Validators}
	if err := a.writeGenesis(st, mg); err != nil {
		return nil, err
	}
	if genesisHook != nil {
		genesisHook(st)
	}
	// CheckTx may run before block 1 is committed: give it the genesis state
	// over the empty committed version.
	empty := mustEmptySnapshot(st)
	check := store.NewCache(empty)
	if err := a.writeGenesis(check, mg); err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.check, a.lastHeight, a.lastTime = store.NewCache(check), 0, req.Time
	a.mu.Unlock()
	hash := api.AppHash(st.WorkingRoot(), api.MessagesRoot(nil))
	a.log.Info("genesis loaded", "chain_id", req.ChainId, "accounts", len(g.Accounts), "gatekeepers", len(g.Gatekeepers), "allow_sim", g.Attestation.AllowSim)
	return &abci.ResponseInitChain{AppHash: hash}, nil
}

// CheckTx admits a transaction to the mempool if it would apply on top of
// the committed state and the transactions already admitted.
func (a *App) CheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	return a.checkTx(req.Tx, true), nil
}

// DryCheckTx answers as CheckTx would but admits nothing: the pending
// state stays as it was (CometBFT's /check_tx RPC, which promises neither
// to execute the transaction nor to add it to the mempool).
func (a *App) DryCheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	return a.checkTx(req.Tx, false), nil
}

// checkTx checks b on the pending state, and admits it (keeps its writes
// there) if admit.
func (a *App) checkTx(b []byte, admit bool) *abci.ResponseCheckTx {
	a.mu.Lock()
	params := a.params
	a.mu.Unlock()
	tx, err := a.decodeAndVerify(b, params)
	if err == nil {
		a.mu.Lock()
		var kv store.KV = a.check
		if !admit {
			kv = store.NewCache(a.check)
		}
		ctx := &block.Context{KV: kv, ChainID: a.chainID, Height: a.lastHeight + 1, Time: a.lastTime, Params: a.params, Checking: true}
		err = a.execTx(ctx, tx, len(b))
		a.mu.Unlock()
	}
	if err != nil {
		return &abci.ResponseCheckTx{Code: uint32(api.CodeOf(err)), Codespace: api.Codespace, Log: err.Error()}
	}
	return &abci.ResponseCheckTx{Code: 0, GasWanted: 1}
}

// decodeAndVerify decodes a transaction and checks what needs no state:
// size, chain id and signature (each signature once per process).
func (a *App) decodeAndVerify(b []byte, params api.Params) (*api.Tx, error) {
	if max := params.MaxTxBytes; max > 0 && uint64(len(b)) > max {
		return nil, fmt.Errorf("%w: transaction of %d bytes exceeds the chain's max_tx_bytes %d", api.ErrTooLarge, len(b), max)
	}
	tx, err := api.DecodeTx(b)
	if err != nil {
		return nil, err
	}
	if tx.ChainID != a.chainID {
		return nil, fmt.Errorf("%w: transaction is for chain %q, this node runs %q", api.ErrWrongChain, tx.ChainID, a.chainID)
	}
	h := api.TxHash(b)
	valid, ok := a.sigs.get(h)
	if !ok {
		valid = tx.VerifySignature(b)
		a.sigs.put(h, valid)
	}
	if !valid {
		return nil, fmt.Errorf("%w: signature does not verify for signer %s", api.ErrBadSignature, tx.Signer)
	}
	return tx, nil
}

// execTx charges the fee and runs the call. In CheckTx a failed call leaves
// no trace; in a block the fee and nonce stay charged and the call's writes
// are reverted. A command's fee includes its declared gas (api.Params.
// ExecFee), and its admission (contracts.AdmitGas: gas limit and the
// block's per-worker gas budget) goes with the fee: a command refused
// there pays nothing and changes nothing.
func (a *App) execTx(ctx *block.Context, tx *api.Tx, size int) error {
	txc := store.NewCache(ctx.KV)
	feeCtx := *ctx
	feeCtx.KV = txc
	if err := accounts.ChargeFee(&feeCtx, tx.Signer, tx.Nonce, tx.Fee, size, ctx.Params.ExecFee(tx.Call)); err != nil {
		return err
	}
	if cc, ok := tx.Call.(*api.ContractCommand); ok {
		if err := contracts.AdmitGas(&feeCtx, cc); err != nil {
			return err
		}
	}
	callc := store.NewCache(txc)
	callCtx := *ctx
	callCtx.KV = callc
	callCtx.Messages, callCtx.Events = nil, nil
	err := a.mux.Execute(&callCtx, tx.Signer, tx.Call)
	if err != nil && ctx.Checking {
		return err
	}
	if err == nil {
		callc.Write()
		ctx.Messages = append(ctx.Messages, callCtx.Messages...)
		ctx.Events = append(ctx.Events, callCtx.Events...)
	}
	txc.Write()
	return err
}

// PrepareProposal drops transactions that no longer fit, in order.
func (a *App) PrepareProposal(_ context.Context, req *abci.RequestPrepareProposal) (*abci.ResponsePrepareProposal, error) {
	txs := make([][]byte, 0, len(req.Txs))
	var total int64
	for _, tx := range req.Txs {
		if total+int64(len(tx)) > req.MaxTxBytes {
			break
		}
		total += int64(len(tx))
		txs = append(txs, tx)
	}
	return &abci.ResponsePrepareProposal{Txs: txs}, nil
}

// ProcessProposal accepts any proposal: invalid transactions in a block are
// rejected one by one in FinalizeBlock without changing state.
func (a *App) ProcessProposal(context.Context, *abci.RequestProcessProposal) (*abci.ResponseProcessProposal, error) {
	return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_ACCEPT}, nil
}

// FinalizeBlock executes a decided block on the working version.
func (a *App) FinalizeBlock(_ context.Context, req *abci.RequestFinalizeBlock) (*abci.ResponseFinalizeBlock, error) {
	ctx := &block.Context{KV: a.store, ChainID: a.chainID, Height: req.Height, Time: req.Time, Params: a.params, BlockHash: req.Hash}
	if err := a.mux.BeginBlock(ctx); err != nil {
		return nil, err
	}
	blockEvents := ctx.Events
	results := make([]*abci.ExecTxResult, len(req.Txs))
	for i, b := range req.Txs {
		ctx.Events = nil
		tx, err := a.decodeAndVerify(b, a.params)
		if err == nil {
			err = a.execTx(ctx, tx, len(b))
		}
		res := &abci.ExecTxResult{Events: ctx.Events}
		if err != nil {
			res.Code, res.Codespace, res.Log = uint32(api.CodeOf(err)), api.Codespace, err.Error()
			if res.Code == uint32(api.CodeInternal) {
				a.log.Error("transaction failed internally", "height", req.Height, "index", i, "err", err)
			}
		}
		results[i] = res
		call := chainmetrics.CallInvalid
		if tx != nil {
			call = tx.Call.Kind().String()
		}
		a.metrics.Tx(call, res.Code)
	}
	ctx.Events = nil
	if err := a.mux.EndBlock(ctx); err != nil {
		return nil, err
	}
	blockEvents = append(blockEvents, ctx.Events...)
	params, err := api.DecodeParams(a.store.Get(api.KeyParams))
	if err != nil {
		return nil, fmt.Errorf("params after block %d: %w", req.Height, err)
	}
	root := a.store.WorkingRoot()
	hash := api.AppHash(root, api.MessagesRoot(ctx.Messages))
	a.pending = &pendingBlock{height: req.Height, time: req.Time, msgs: ctx.Messages, appHash: hash, stateRoot: root, params: params}
	return &abci.ResponseFinalizeBlock{Events: blockEvents, TxResults: results, AppHash: hash, ValidatorUpdates: ctx.ValidatorUpdates}, nil
}

// Commit persists the block and moves CheckTx and queries to it.
func (a *App) Commit(context.Context, *abci.RequestCommit) (*abci.ResponseCommit, error) {
	p := a.pending
	if p == nil {
		return nil, errors.New("commit without a finalized block")
	}
	a.pending = nil
	bm := &api.BlockMessages{Height: p.height, StateRoot: p.stateRoot, Messages: p.msgs}
	if err := a.store.Commit(p.height, p.time, bm, p.appHash); err != nil {
		return nil, err
	}
	snap, err := a.store.Snapshot(p.height)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.params = p.params
	a.mu.Unlock()
	a.resetCheck(snap, p.time)
	a.metrics.Committed(p.height, len(p.msgs))
	if len(p.msgs) > 0 {
		a.log.Debug("block committed", "height", p.height, "messages", len(p.msgs))
	}
	return &abci.ResponseCommit{}, nil
}

// writeGenesis writes the chain id, then every module's part of the
// genesis (governance writes the parameters).
func (a *App) writeGenesis(kv store.KV, g *module.Genesis) error {
	kv.Set(keyChainID, []byte(g.ChainID))
	return a.mux.InitGenesis(kv, g)
}

func mustEmptySnapshot(st *store.Store) *store.Snapshot {
	snap, err := st.Snapshot(0)
	if err != nil {
		panic(err)
	}
	return snap
}
