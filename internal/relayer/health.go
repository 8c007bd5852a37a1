package relayer

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/phalago/phala/client/pruntime"
)

// Health conditions pherry watches (the names are the metric's and the
// log's "condition" attribute).
const (
	condNodeDown     = "node_down"     // the node does not answer within NodeTimeout
	condPRuntimeDown = "pruntime_down" // pRuntime does not answer (transport error or timeout)
	condChainStalled = "chain_stalled" // the node answers but its tip has not moved for StallAfter
	condBehind       = "pruntime_behind"
)

// condition is one watched fault. It is logged at Warn once when it
// starts (after it has lasted warnAfter), again at most once per
// interval while it lasts (with how long it has lasted), and at Info once
// when it ends.
type condition struct {
	name      string
	warnMsg   string
	okMsg     string
	warnAfter time.Duration // the condition is reported once it has lasted this long

	active   bool      // the fault holds now
	since    time.Time // when it started
	warned   bool      // a Warn line was written for this occurrence
	lastWarn time.Time
	cleared  bool // set(name, false) was called at least once
}

// health tracks pherry's conditions. It is called from the Run goroutine
// and read (Snapshot) by metrics scrapes.
type health struct {
	log      *slog.Logger
	interval time.Duration // at most one Warn per condition per interval

	mu    sync.Mutex
	conds map[string]*condition
}

func newHealth(log *slog.Logger, interval time.Duration, stallAfter time.Duration) *health {
	h := &health{log: log, interval: interval, conds: map[string]*condition{}}
	for _, c := range []*condition{
		{name: condNodeDown, warnMsg: "node does not answer", okMsg: "node answers again"},
		{name: condPRuntimeDown, warnMsg: "pRuntime does not answer", okMsg: "pRuntime answers again"},
		{name: condChainStalled, warnMsg: "chain tip has not moved; the chain may be halted or the node cut off from its peers", okMsg: "chain tip moves again"},
		{name: condBehind, warnMsg: "pRuntime is behind the chain tip", okMsg: "pRuntime caught up with the chain tip", warnAfter: stallAfter},
	} {
		h.conds[c.name] = c
	}
	return h
}

// set records whether condition name holds at now; attrs describe it (no
// secrets: heights, addresses, errors of transport).
func (h *health) set(name string, active bool, now time.Time, attrs ...any) {
	h.mu.Lock()
	c := h.conds[name]
	if !active {
		c.cleared = true
	}
	var msg string
	lvl := slog.LevelWarn
	var lasted time.Duration
	switch {
	case active && !c.active:
		c.active, c.since, c.warned = true, now, false
		if c.warnAfter == 0 {
			c.warned, c.lastWarn, msg = true, now, c.warnMsg
		}
	case active && (!c.warned && now.Sub(c.since) >= c.warnAfter || c.warned && now.Sub(c.lastWarn) >= h.interval):
		c.warned, c.lastWarn, msg = true, now, c.warnMsg
		lasted = now.Sub(c.since)
	case !active && c.active:
		c.active = false
		if c.warned {
			msg, lvl, lasted = c.okMsg, slog.LevelInfo, now.Sub(c.since)
		}
	}
	h.mu.Unlock()
	if msg == "" {
		return
	}
	attrs = append(attrs, "condition", name)
	if lasted > 0 {
		attrs = append(attrs, "for", lasted.Round(time.Second).String())
	}
	h.log.Log(context.Background(), lvl, msg, attrs...)
}

// isActive reports whether condition name holds (whatever its warnAfter).
func (h *health) isActive(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conds[name].active
}

// up reports whether the peer whose "down" condition is name answered
// its last request (false before the first).
func (h *health) up(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.conds[name]
	return c.cleared && !c.active
}

// reported reports whether condition name holds and has been warned of
// (what the metrics show).
func (h *health) reported(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.conds[name]
	return c.active && c.warned
}

// nodeError marks an error of a request to the node.
type nodeError struct{ err error }

func (e *nodeError) Error() string { return e.err.Error() }
func (e *nodeError) Unwrap() error { return e.err }

// pruntimeError marks a request pRuntime did not answer (transport error
// or timeout; a refusal is a *pruntime.Error and means it answered).
type pruntimeError struct{ err error }

func (e *pruntimeError) Error() string { return e.err.Error() }
func (e *pruntimeError) Unwrap() error { return e.err }

// prCalled records what a pRuntime request's error (err, nil on success)
// says of pRuntime's health and returns the error to handle: a
// *pruntimeError when pRuntime did not answer. ctx is the caller's (not
// the request's) context: a request cut by stopping says nothing.
func (r *Relayer) prCalled(ctx context.Context, err error) error {
	switch {
	case err == nil || !unanswered(err):
		r.health.set(condPRuntimeDown, false, time.Now(), "pruntime", r.cfg.PRuntime)
		return err
	case ctx.Err() != nil:
		return err
	default:
		r.health.set(condPRuntimeDown, true, time.Now(), "pruntime", r.cfg.PRuntime, "err", err)
		return &pruntimeError{err}
	}
}

// nodeCalled records what a node request's error (err, nil on success)
// says of the node's health and returns the error to handle, marked as a
// *nodeError. ctx is the caller's context.
func (r *Relayer) nodeCalled(ctx context.Context, err error) error {
	switch {
	case err == nil:
		r.health.set(condNodeDown, false, time.Now(), "node", r.cfg.Node)
		return nil
	case ctx.Err() != nil:
		return err
	case unanswered(err):
		r.health.set(condNodeDown, true, time.Now(), "node", r.cfg.Node, "err", err, "timeout", r.cfg.NodeTimeout)
	default:
		r.health.set(condNodeDown, false, time.Now(), "node", r.cfg.Node)
	}
	return &nodeError{err}
}

// unanswered reports whether err says the peer did not answer: a
// transport error (refused, reset, timed out) rather than an answer
// (a refusal, an RPC error, a malformed reply).
func unanswered(err error) bool {
	var ue *url.Error
	var ne net.Error
	var pe *pruntime.Error
	if errors.As(err, &pe) {
		return false
	}
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}

// logRoundError logs a failed round. A failure the health conditions
// already report (node or pRuntime not answering) is Debug; any other is
// Warn at most once per WarnInterval (Debug in between), with the number
// of failures since the last Warn.
func (r *Relayer) logRoundError(err error, retryIn time.Duration) {
	var ne *nodeError
	var pe *pruntimeError
	if (errors.As(err, &ne) && r.health.isActive(condNodeDown)) || (errors.As(err, &pe) && r.health.isActive(condPRuntimeDown)) {
		r.log.Debug("round failed; will retry", "err", err, "retry_in", retryIn.Round(time.Millisecond))
		return
	}
	r.roundFailures++
	now := time.Now()
	if !r.lastRoundWarn.IsZero() && now.Sub(r.lastRoundWarn) < r.cfg.WarnInterval {
		r.log.Debug("round failed; will retry", "err", err, "retry_in", retryIn.Round(time.Millisecond))
		return
	}
	r.log.Warn("round failed; will retry", "err", err, "retry_in", retryIn.Round(time.Millisecond), "failures", r.roundFailures)
	r.lastRoundWarn, r.roundFailures = now, 0
}
