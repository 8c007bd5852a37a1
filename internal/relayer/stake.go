package relayer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/phalago/phala/api"
)

// stakeState is what the relayer knows of its worker's stake
// (Config.Stake).
type stakeState struct {
	done     bool // the operator's allocation to the worker reached Config.Stake
	inFlight bool
	retryAt  time.Time
	failures int
}

// maybeStake makes the operator back its registered worker with
// Config.Stake units (docs/economy.md: a worker needs min_worker_stake to
// be assigned contracts): if the operator's allocation to the worker is
// lower, it bonds what its bonded stake lacks and allocates the
// difference. It reads the chain each time, so it is idempotent across
// restarts; once the allocation is reached it stops checking. Nothing is
// done until the worker is registered with this operator.
func (r *Relayer) maybeStake(ctx context.Context) error {
	r.mu.Lock()
	st := r.stake
	r.mu.Unlock()
	if st.done || st.inFlight || time.Now().Before(st.retryAt) {
		return nil
	}
	v, err := r.query(ctx, api.QueryWorker, r.identity[:])
	if err != nil || v == nil {
		return err // not registered yet
	}
	rec, err := api.DecodeWorkerRecord(v)
	if err != nil {
		return fmt.Errorf("worker record: %w", err)
	}
	op := r.cfg.Operator.Public()
	if rec.Info.Operator != op {
		r.log.Warn("not staking: the worker is registered with another operator", "identity", r.identity.Hex(), "operator", rec.Info.Operator.Address())
		r.mu.Lock()
		r.stake.done = true
		r.mu.Unlock()
		return nil
	}
	ledger := &api.StakeLedger{}
	if v, err := r.query(ctx, api.QueryStakeLedger, op[:]); err != nil {
		return err
	} else if v != nil {
		if ledger, err = api.DecodeStakeLedger(v); err != nil {
			return fmt.Errorf("stake ledger: %w", err)
		}
	}
	have := ledger.Allocated(r.identity)
	if have >= r.cfg.Stake {
		r.mu.Lock()
		r.stake = stakeState{done: true}
		r.mu.Unlock()
		r.log.Info("worker staked", "identity", r.identity.Hex(), "operator", op.Address(), "allocated", api.FormatAmount(have)+" "+api.TokenSymbol)
		return nil
	}
	need := r.cfg.Stake - have
	if bond := need - min(need, ledger.Bonded); bond > 0 {
		if _, err := r.sub.broadcast(ctx, &api.StakeBond{Amount: bond}); err != nil {
			return r.stakeFailed(fmt.Errorf("bond %s %s: %w", api.FormatAmount(bond), api.TokenSymbol, err))
		}
	}
	hash, err := r.sub.broadcast(ctx, &api.StakeAllocate{Node: r.identity, Amount: need})
	if err != nil {
		return r.stakeFailed(fmt.Errorf("allocate %s %s: %w", api.FormatAmount(need), api.TokenSymbol, err))
	}
	r.mu.Lock()
	r.stake.inFlight = true
	r.mu.Unlock()
	r.log.Info("staking the worker", "identity", r.identity.Hex(), "operator", op.Address(), "allocating", api.FormatAmount(need)+" "+api.TokenSymbol)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		wctx, cancel := context.WithTimeout(ctx, r.cfg.TxTimeout)
		res, err := waitTx(wctx, r.rpc, hash)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.sub.reset()
			r.stakeFailed(fmt.Errorf("allocation not committed within %s", r.cfg.TxTimeout))
			return
		case res.Code != api.CodeOK:
			r.stakeFailed(fmt.Errorf("allocation refused: %w", res.Err()))
			return
		}
		r.mu.Lock()
		r.stake = stakeState{} // read the ledger again next round
		r.mu.Unlock()
	}()
	return nil
}

// stakeFailed backs off before the next attempt. A refusal (e.g. the
// operator lacks the balance) is logged, not returned: it is not the
// relay's error.
func (r *Relayer) stakeFailed(err error) error {
	r.mu.Lock()
	r.stake.inFlight = false
	r.stake.failures++
	d := min(time.Duration(1<<min(r.stake.failures-1, 16))*time.Second, maxRegistrationBackoff)
	r.stake.retryAt = time.Now().Add(d)
	r.mu.Unlock()
	if !errors.Is(err, context.Canceled) {
		r.log.Warn("staking the worker failed; will retry", "identity", r.identity.Hex(), "err", err, "retry_in", d)
	}
	return nil
}
