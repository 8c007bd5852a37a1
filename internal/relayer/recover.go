package relayer

import (
	"bytes"
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
	if need.EntriesHeight > 0 {
		if req.Entries, err = r.f.Entries(ctx, id, need.EntriesHeight); err != nil {
			return fmt.Errorf("entries at height %d: %w", need.EntriesHeight, err)
		}
	}
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
	fetched := time.Since(start) // the entries and the blocks
	res, err := r.pr.Recover(ctx, req)
	if err != nil {
		return err
	}
	r.log.Info("contract recovered", "contract", id.Short(), "checkpoint_height", need.CheckpointHeight, "entries", res.Entries,
		"blocks_replayed", res.Replayed, "state_root", res.Root, "fetch", fetched.Round(time.Millisecond), "total", time.Since(start).Round(time.Millisecond))
	return nil
}

// Entries returns all of a contract's encrypted entries as the chain's
// state held them at height, in location order: every page is read at
// that height, so they are one consistent snapshot.
func (f *Fetcher) Entries(ctx context.Context, contract crypto.PublicKey, height int64) ([]api.StateChange, error) {
	var out []api.StateChange
	data := contract[:]
	for {
		res, err := f.rpc().ABCIQueryWithOptions(ctx, api.QueryContractEntries, data, rpcQueryOpts(height))
		if err != nil {
			return nil, err
		}
		if rr := res.Response; rr.Code != 0 {
			return nil, &api.TxError{Code: api.Code(rr.Code), Log: rr.Log}
		}
		p, err := api.DecodeEntryPage(res.Response.Value)
		if err != nil {
			return nil, err
		}
		if len(out) > 0 && len(p.Entries) > 0 && bytes.Compare(out[len(out)-1].Location[:], p.Entries[0].Location[:]) >= 0 {
			return nil, fmt.Errorf("%w: entry pages overlap", api.ErrBadProof)
		}
		out = append(out, p.Entries...)
		if !p.More || len(p.Entries) == 0 {
			return out, nil
		}
		last := p.Entries[len(p.Entries)-1].Location
		data = append(contract[:len(contract):len(contract)], last[:]...)
	}
}
