package relayer

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// recoverCheckInterval is how often a caught-up relayer asks pRuntime
// whether a contract waits to be recovered.
const recoverCheckInterval = time.Second

// maxRecoverBackoff bounds the wait before a failed recovery is tried
// again: each failure doubles the wait from recoverCheckInterval, so a
// recovery that keeps failing (a node without the checkpoint's state, a
// request too large) does not refetch the contract's whole state every
// second.
const maxRecoverBackoff = time.Minute

// recoverBackoff is the wait after the n-th consecutive failure (n >= 1).
func recoverBackoff(n int) time.Duration {
	d := recoverCheckInterval
	for i := 1; i < n && d < maxRecoverBackoff; i++ {
		d *= 2
	}
	return min(d, maxRecoverBackoff)
}

// recoverRetry is a contract whose recovery failed: how many times in a
// row, and when to try again.
type recoverRetry struct {
	failures int
	next     time.Time
}

// maybeRecover brings each contract pRuntime is recovering what its info
// says it needs (api.RecoveryNeed): the checkpoint's entries, read from
// the node at the height that accepted the checkpoint, and the blocks
// since with an input for the contract. pRuntime checks all of it (the
// entries against the checkpoint root, the blocks against the app hashes
// it kept), so the relayer need not. A recovery that fails (pRuntime
// refused it: the node may have served a stale page) is tried again after
// recoverBackoff.
func (r *Relayer) maybeRecover(ctx context.Context) error {
	if time.Since(r.lastRecoverCheck) < recoverCheckInterval {
		return nil
	}
	r.lastRecoverCheck = time.Now()
	ictx, cancel := context.WithTimeout(ctx, r.cfg.PRuntimeTimeout)
	info, err := r.pr.Info(ictx)
	cancel()
	if err = r.prCalled(ctx, err); err != nil {
		return err
	}
	waiting := map[string]bool{}
	for _, need := range info.Recovering {
		waiting[need.Contract] = true
		retry := r.recoverRetries[need.Contract]
		if retry != nil && time.Now().Before(retry.next) {
			continue
		}
		err := r.recoverOne(ctx, need)
		if err == nil {
			delete(r.recoverRetries, need.Contract)
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if retry == nil {
			if r.recoverRetries == nil {
				r.recoverRetries = map[string]*recoverRetry{}
			}
			retry = &recoverRetry{}
			r.recoverRetries[need.Contract] = retry
		}
		retry.failures++
		wait := recoverBackoff(retry.failures)
		retry.next = time.Now().Add(wait)
		r.log.Warn("contract recovery failed; will retry", "contract", need.Contract, "checkpoint_height", need.CheckpointHeight,
			"failures", retry.failures, "retry_in", wait, "err", err)
	}
	for c := range r.recoverRetries {
		if !waiting[c] {
			delete(r.recoverRetries, c)
		}
	}
	return nil
}

// recoverOne fetches what need asks for and posts it to pRuntime.
func (r *Relayer) recoverOne(ctx context.Context, need api.RecoveryNeed) error {
	id, err := crypto.ParsePublicKey(need.Contract)
	if err != nil {
		return err
	}
	start := time.Now()
	req := &api.RecoverRequest{Contract: id}
	if need.Purpose == api.RecoverPurposeName(api.RecoverArbitration) {
		req.Purpose = api.RecoverArbitration
	}
	size := 0
	if need.EntriesHeight > 0 {
		if req.Entries, err = r.f.Entries(ctx, id, need.EntriesHeight); err != nil {
			return fmt.Errorf("entries at height %d: %w", need.EntriesHeight, err)
		}
		for i := range req.Entries {
			size += len(req.Entries[i].Location) + len(req.Entries[i].Value) + binary.MaxVarintLen64
		}
	}
	if req.Blocks, err = r.f.BlocksAt(ctx, need.Heights); err != nil {
		return fmt.Errorf("blocks to replay: %w", err)
	}
	for i := range req.Blocks {
		size += blockBytes(&req.Blocks[i])
	}
	if size > api.MaxRecoverBytes {
		return fmt.Errorf("the recovery needs %d entries and %d blocks, about %d bytes: more than pRuntime's limit of %d", len(req.Entries), len(req.Blocks), size, api.MaxRecoverBytes)
	}
	fetched := time.Since(start) // the entries and the blocks
	rctx, cancel := context.WithTimeout(ctx, r.cfg.BatchTimeout)
	res, err := r.pr.Recover(rctx, req)
	cancel()
	if err = r.prCalled(ctx, err); err != nil {
		return err
	}
	r.log.Info("contract recovered", "purpose", need.Purpose, "contract", id.Short(), "checkpoint_height", need.CheckpointHeight, "entries", res.Entries,
		"blocks_replayed", res.Replayed, "state_root", res.Root, "fetch", fetched.Round(time.Millisecond), "total", time.Since(start).Round(time.Millisecond))
	return nil
}
