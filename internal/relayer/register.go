package relayer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client/pruntime"
	"github.com/phalago/phala/crypto"
)

// regState is what the relayer knows of its worker's registration.
type regState struct {
	inFlight  bool
	expiresAt int64 // the on-chain record's expiry, when read (0: read it)
	// renewAt: the height from which it is renewed: the renewal margin
	// before expiry, or the next era's first block (pRuntime rotates its
	// EcdhKey once per era, docs/keys.md), whichever comes first.
	renewAt  int64
	retryAt  time.Time
	failures int
}

// retiredRetry is how often a relayer whose pRuntime was retired by a
// runtime migration asks it again (and says so again).
const retiredRetry = 10 * time.Minute

// Registration retries back off from 1s to this cap: a refused report
// (e.g. issued at a header time the chain finds stale) is fixed by pRuntime
// verifying newer headers, which takes blocks, not milliseconds.
const maxRegistrationBackoff = 30 * time.Second

// renewMargin is how many blocks before expiry a registration is renewed.
func (r *Relayer) renewMargin() int64 {
	if r.cfg.RenewBefore > 0 {
		return r.cfg.RenewBefore
	}
	return max(int64(r.sub.currentParams().RegistrationLifetime/10), 1)
}

// maybeRegister registers the worker (or gatekeeper) pRuntime if it is not
// registered on chain or its registration expires within the renewal
// margin. It is called only when pRuntime has verified the tip's header,
// because the report cites the block before pRuntime's last verified header
// and the chain refuses a report citing a block older than its
// attestation_window. The transaction is signed by the operator the report
// names (cfg.Operator): the chain accepts register_worker only from it.
func (r *Relayer) maybeRegister(ctx context.Context, tip int64) error {
	r.mu.Lock()
	st := r.reg
	r.mu.Unlock()
	margin := r.renewMargin()
	if st.inFlight || time.Now().Before(st.retryAt) || (st.renewAt > 0 && tip < st.renewAt) {
		return nil
	}
	v, err := r.query(ctx, api.QueryWorker, r.identity[:])
	if err != nil {
		return err
	}
	if v != nil {
		rec, err := api.DecodeWorkerRecord(v)
		if err != nil {
			return fmt.Errorf("worker record: %w", err)
		}
		sched, err := r.eraSchedule(ctx)
		if err != nil {
			return err
		}
		renewAt := renewHeight(rec, margin, sched)
		if tip < renewAt {
			r.mu.Lock()
			r.reg.expiresAt, r.reg.renewAt = rec.ExpiresAt, renewAt
			r.mu.Unlock()
			r.log.Info("worker is registered", "identity", r.identity.Hex(), "operator", rec.Info.Operator.Address(),
				"expires_at", rec.ExpiresAt, "renew_from", rec.ExpiresAt-margin)
			return nil
		}
		r.log.Info("renewing the worker registration (it expires soon, or a new era began: pRuntime rotates its ECDH key)", "identity", r.identity.Hex(), "expires_at", rec.ExpiresAt, "tip", tip)
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PRuntimeTimeout)
	call, err := r.pr.Registration(pctx, r.cfg.Operator.Public())
	cancel()
	err = r.prCalled(ctx, err)
	if perr := (*pruntime.Error)(nil); errors.As(err, &perr) && perr.Status == http.StatusConflict {
		// pRuntime has not verified the headers a registration cites yet
		// (right after start): the next rounds bring them.
		r.log.Debug("registration waits for pRuntime to verify more headers", "err", err)
		return nil
	} else if errors.As(err, &perr) && perr.Status == http.StatusGone {
		// A runtime migration retired the pRuntime's build: said once,
		// then asked again only every retiredRetry.
		r.mu.Lock()
		r.reg.retryAt = time.Now().Add(retiredRetry)
		r.mu.Unlock()
		if r.retiredSaid.CompareAndSwap(false, true) {
			r.log.Error("pRuntime's build was retired by the chain's runtime migration: it serves nothing and cannot register; run the new build of pruntime with a new data directory", "identity", r.identity.Hex())
		} else {
			r.log.Debug("pRuntime still retired: registration asked again later", "in", retiredRetry)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("registration from pRuntime: %w", err)
	}
	hash, err := r.sub.broadcast(ctx, call)
	var refused *api.TxError
	if errors.As(err, &refused) {
		r.registrationFailed(r.identity, err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("submit registration: %w", err)
	}
	r.mu.Lock()
	r.reg.inFlight = true
	r.mu.Unlock()
	r.log.Info("registration submitted", "identity", r.identity.Hex(), "operator", r.cfg.Operator.Address(), "tx", fmt.Sprintf("%X", hash[:8]))
	r.wg.Add(1)
	go r.awaitRegistration(ctx, hash, r.identity)
	return nil
}

func (r *Relayer) awaitRegistration(ctx context.Context, hash [32]byte, id crypto.PublicKey) {
	defer r.wg.Done()
	wctx, cancel := context.WithTimeout(ctx, r.cfg.TxTimeout)
	res, err := waitTx(wctx, r.rpc, hash)
	cancel()
	switch {
	case ctx.Err() != nil:
	case err != nil:
		r.sub.reset()
		r.registrationFailed(id, fmt.Errorf("not committed within %s", r.cfg.TxTimeout))
		return
	case res.Code != api.CodeOK:
		r.registrationFailed(id, res.Err())
		return
	default:
		r.mu.Lock()
		r.stats.Registrations++
		r.mu.Unlock()
		r.log.Info("worker registered", "identity", id.Hex(), "operator", r.cfg.Operator.Address(), "height", res.Height)
	}
	r.mu.Lock()
	r.reg = regState{} // read the new record (and its expiry) next round
	r.mu.Unlock()
}

func (r *Relayer) registrationFailed(id crypto.PublicKey, err error) {
	r.mu.Lock()
	r.reg.inFlight = false
	r.reg.failures++
	d := min(time.Duration(1<<min(r.reg.failures-1, 16))*time.Second, maxRegistrationBackoff)
	r.reg.retryAt = time.Now().Add(d)
	r.stats.RegistrationRefused++
	r.mu.Unlock()
	r.log.Warn("registration refused; will retry with a fresh report", "identity", id.Hex(), "err", err, "retry_in", d)
}

// renewHeight is the height from which rec is renewed: margin blocks
// before it expires, or the first block of the era after the one it was
// registered in (pRuntime rotates its EcdhKey once per era), whichever
// comes first. The registration's era has its range fixed once it
// started (sched: a change of era_length applies at the next boundary).
func renewHeight(rec *api.WorkerRecord, margin int64, sched *api.EraSchedule) int64 {
	return min(rec.ExpiresAt-margin, sched.End(sched.EraOf(rec.RegisteredAt))+1)
}

// eraSchedule reads the chain's era schedule (api.QueryEraSchedule); a
// chain from before the schedule existed has none: its eras are those of
// era_length from height 1.
func (r *Relayer) eraSchedule(ctx context.Context) (*api.EraSchedule, error) {
	v, err := r.query(ctx, api.QueryEraSchedule, nil)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return api.GenesisEras(r.sub.currentParams().EraLength), nil
	}
	s, err := api.DecodeEraSchedule(v)
	if err != nil {
		return nil, fmt.Errorf("era schedule: %w", err)
	}
	return s, nil
}
