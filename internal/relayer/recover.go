package relayer

import (
	"context"
	"fmt"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// recoverCheckInterval is how often a caught-up relayer asks pRuntime
// whether a contract waits to be recovered.
const recoverCheckInterval = time.Second

// maybeRecover brings each contract pRuntime is recovering what its info
// says it needs (api.RecoveryNeed): the checkpoint's entries, read from
// the node at the height that accepted the checkpoint, and the blocks
// since with an input for the contract. pRuntime checks all of it (the
// entries against the checkpoint root, the blocks against the app hashes
// it kept), so the relayer need not. A recovery pRuntime refuses is
// retried at the next check (the node may have served a stale page).
func (r *Relayer) maybeRecover(ctx context.Context) error {
	if time.Since(r.lastRecoverCheck) < recoverCheckInterval {
		return nil
	}
	r.lastRecoverCheck = time.Now()
	info, err := r.pr.Info(ctx)
	if err != nil {
		return err
	}
	for _, need := range info.Recovering {
		if err := r.recoverOne(ctx, need); err != nil {
			r.log.Warn("contract recovery failed; will retry", "contract", need.Contract, "err", err)
		}
	}
	return nil
}

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
	if need.EntriesHeight > 0 {
		if req.Entries, err = r.f.Entries(ctx, id, need.EntriesHeight); err != nil {
			return fmt.Errorf("entries at height %d: %w", need.EntriesHeight, err)
		}
	}
	fetched := time.Since(start)
	for _, h := range need.Heights {
		b, err := r.f.Blocks(ctx, h, h)
		if err != nil {
			return err
		}
		if len(b.Blocks) != 1 {
			return fmt.Errorf("block %d: the node returned %d blocks", h, len(b.Blocks))
		}
		req.Blocks = append(req.Blocks, b.Blocks[0])
	}
	res, err := r.pr.Recover(ctx, req)
	if err != nil {
		return err
	}
	r.log.Info("contract recovered", "purpose", need.Purpose, "contract", id.Short(), "checkpoint_height", need.CheckpointHeight, "entries", res.Entries,
		"blocks_replayed", res.Replayed, "state_root", res.Root, "fetch", fetched.Round(time.Millisecond), "total", time.Since(start).Round(time.Millisecond))
	return nil
}
