package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/contracts"
)

// OpenQuerySession answers a client's query session open
// (api.QuerySessionOpen; contracts.Contract.OpenSession) for a contract
// this worker runs, at the block time of the last dispatched block. Like
// Query it never takes the engine's lock and uses a query slot. Errors:
// ErrRetired, ErrBadInput (another worker's, not our contract, refused),
// ErrBusy.
func (e *Engine) OpenQuerySession(ctx context.Context, o *api.QuerySessionOpen) (_ *api.QuerySessionAccept, err error) {
	if e.retired.Load() {
		return nil, ErrRetired
	}
	if err := e.addressedToMe(o.Worker); err != nil {
		return nil, err
	}
	p, _, at, err := e.queryTarget(o.Contract)
	if err != nil {
		return nil, err
	}
	release, err := e.querySlot(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	a, err := p.c.OpenSession(e.guard, e.sessions, o, at)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	return a, nil
}

// SessionQuery answers one query of a query session (api.SessionQuery)
// like Query answers a signed one: on the contract's view published after
// the last dispatched block, off the engine lock, in a query slot, its
// call bounded by QueryTimeout and ctx. Errors: ErrRetired, ErrBadInput
// (unknown or expired session: contracts.ErrUnknownSession; a query that
// does not open under the session's key, or replayed), ErrBusy.
func (e *Engine) SessionQuery(ctx context.Context, q *api.SessionQuery) (_ *api.SessionAnswer, err error) {
	start := time.Now()
	var callFailed bool
	defer func() { e.noteQuery(time.Since(start), err, callFailed) }()
	if e.retired.Load() {
		return nil, ErrRetired
	}
	_, _, at, _ := e.queryView(crypto.PublicKey{}) // the last dispatched block's time: sessions expire by it
	s, err := e.sessions.Get(q.ID, at)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	p, height, at, err := e.queryTarget(s.Contract)
	if err != nil {
		return nil, err
	}
	// The slot first: a query turned away busy has not used up its number.
	release, err := e.querySlot(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	input, err := s.OpenQuery(q)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	res, qerr := p.c.QueryView(ctx, p.view, s.From, input, height, at, QueryTimeout)
	callFailed = qerr != nil
	return s.Answer(q, height, res, qerr), nil
}

// addressedToMe refuses a query or session addressed to another worker
// (or to the chain: zero).
func (e *Engine) addressedToMe(worker crypto.PublicKey) error {
	if me := e.Identity(); worker != me {
		if worker == (crypto.PublicKey{}) {
			return fmt.Errorf("%w: %w: the query is for the chain only (no worker named)", ErrBadInput, contracts.ErrQueryRefused)
		}
		return fmt.Errorf("%w: %w: the query is addressed to worker %s, this is %s (the endpoint now serves another pRuntime: the worker the record names is gone)", ErrBadInput, contracts.ErrQueryRefused, worker.Hex(), me.Hex())
	}
	return nil
}

// queryTarget returns the published view of contract, the height and
// block time it reflects; ErrBadInput if this worker does not run it.
func (e *Engine) queryTarget(contract crypto.PublicKey) (publishedView, int64, time.Time, error) {
	p, height, at, ok := e.queryView(contract)
	if !ok {
		if e.recoveringNow(contract) {
			return p, 0, at, fmt.Errorf("%w: this worker is recovering contract %s from its on-chain checkpoint: retry shortly", ErrBadInput, contract.Hex())
		}
		return p, 0, at, fmt.Errorf("%w: this worker does not run contract %s", ErrBadInput, contract.Hex())
	}
	return p, height, at, nil
}

// querySlot waits (at most QueryTimeout, and while ctx lasts) for one of
// the MaxConcurrentQueries query slots; ErrBusy if none frees up. Call
// release when done.
func (e *Engine) querySlot(ctx context.Context) (release func(), err error) {
	slots := e.querySlots()
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	default:
	}
	wait, cancel := context.WithTimeout(ctx, QueryTimeout)
	defer cancel()
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-wait.Done():
		return nil, fmt.Errorf("%w: %d queries in progress (%v)", ErrBusy, MaxConcurrentQueries, wait.Err())
	}
}
