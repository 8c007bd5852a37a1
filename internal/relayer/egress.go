package relayer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	rpcclient "github.com/cometbft/cometbft/rpc/client"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
)

// retiredState is what the relayer knows of pRuntime's retirement: a
// runtime migration revoked its build, so the chain refuses its egress
// (heartbeat answers of a revoked build) for good.
type retiredState struct {
	at      int64     // the height pRuntime reports it was retired at; 0: not known retired
	pauseTo time.Time // egress is not pushed before then
	refused bool      // a push was refused since the last check (set under mu by egressFailed)
}

// egressState is what the relayer knows of one egress message (origin,
// sequence) it has tried to put on chain.
type egressState struct {
	inFlight  bool      // this relayer's tx carrying it is in the mempool or a block
	heldUntil time.Time // another relayer's tx carries it: leave it alone until then
	retryAt   time.Time // refused: this origin waits until then
	failures  int
}

func egressKey(m *api.Message) string {
	return fmt.Sprintf("%x/%d", m.Origin.Encode(), m.Seq)
}

// maxEgressPages bounds the egress pages read in one round (the next round
// starts over).
const maxEgressPages = 100_000

// pushEgress reads pRuntime's egress, page by page (Config.EgressPage
// bytes each, so that the relayer holds one page at a time), and submits
// each message the chain does not have yet and that is not already on its
// way, as a push_message paid by the operator. Messages of one origin go in
// sequence order; an origin whose earlier message waits for a retry is
// skipped this round.
func (r *Relayer) pushEgress(ctx context.Context) error {
	if r.retired.at > 0 && time.Now().Before(r.retired.pauseTo) {
		return nil // retired: see checkRetired
	}
	if err := r.pushEgressPages(ctx); err != nil {
		return err
	}
	return r.checkRetired(ctx)
}

// checkRetired asks pRuntime, after a round in which a push was refused,
// whether a runtime migration retired its build (its info's retired_at).
// If so it says so once and pauses the egress for retiredRetry: the chain
// refuses every message of a revoked build, so retrying every few
// seconds only fills the log (as for registrations, register.go).
func (r *Relayer) checkRetired(ctx context.Context) error {
	r.mu.Lock()
	refused := r.retired.refused
	r.retired.refused = false
	r.mu.Unlock()
	if !refused {
		return nil
	}
	ictx, cancel := context.WithTimeout(ctx, r.cfg.PRuntimeTimeout)
	info, err := r.pr.Info(ictx)
	cancel()
	if err = r.prCalled(ctx, err); err != nil {
		return err
	}
	if info.RetiredAt <= 0 {
		return nil
	}
	if r.retiredSaid.CompareAndSwap(false, true) {
		r.log.Error("pRuntime's build was retired by the chain's runtime migration: the chain refuses its egress for good, so it is pushed only every "+retiredRetry.String()+"; run the new build of pruntime with a new data directory",
			"identity", r.identity.Hex(), "retired_at", info.RetiredAt)
	} else {
		r.log.Debug("pRuntime still retired: egress paused again", "retired_at", info.RetiredAt, "for", retiredRetry)
	}
	r.retired.at, r.retired.pauseTo = info.RetiredAt, time.Now().Add(retiredRetry)
	r.mu.Lock()
	r.stats.RetiredAt = info.RetiredAt
	r.mu.Unlock()
	return nil
}

// pushEgressPages is one round of pushEgress.
func (r *Relayer) pushEgressPages(ctx context.Context) error {
	st := &egressRound{
		now:     time.Now(),
		live:    map[string]bool{},
		nextSeq: map[string]uint64{},
		blocked: map[string]bool{},
	}
	after := ""
	for page := 0; ; page++ {
		if page == maxEgressPages {
			return fmt.Errorf("egress: more than %d pages; the rest waits for the next round", maxEgressPages)
		}
		pctx, cancel := context.WithTimeout(ctx, r.cfg.PRuntimeTimeout)
		ms, next, err := r.pr.EgressPage(pctx, after, r.cfg.EgressPage)
		cancel()
		if err = r.prCalled(ctx, err); err != nil {
			return err
		}
		if err := r.pushPage(ctx, st, ms); err != nil {
			return err
		}
		if next == "" {
			break
		}
		after = next
	}
	// Forget what pRuntime no longer holds (the chain echoed it), unless a
	// tx is still on its way.
	r.mu.Lock()
	for k, es := range r.egress {
		if !st.live[k] && !es.inFlight {
			delete(r.egress, k)
		}
	}
	r.mu.Unlock()
	return nil
}

// egressRound is what pushEgress learns across the pages of one round.
type egressRound struct {
	now     time.Time
	live    map[string]bool   // messages pRuntime holds (seen this round)
	nextSeq map[string]uint64 // origin -> chain's next sequence, read once per round
	blocked map[string]bool   // origin -> an earlier message waits
}

// pushPage submits the messages of one egress page (see pushEgress).
func (r *Relayer) pushPage(ctx context.Context, rs *egressRound, ms []api.SignedMessage) error {
	now, live, nextSeq, blocked := rs.now, rs.live, rs.nextSeq, rs.blocked
	var err error
	for i := range ms {
		m := &ms[i].Message
		key, origin := egressKey(m), string(m.Origin.Encode())
		if live[key] {
			continue // a page repeated it (pRuntime's egress changed between pages)
		}
		live[key] = true
		if blocked[origin] {
			continue
		}
		r.mu.Lock()
		st := r.egress[key]
		pending := st != nil && (st.inFlight || now.Before(st.heldUntil))
		waiting := st != nil && now.Before(st.retryAt)
		r.mu.Unlock()
		if pending {
			continue // a tx carries it: later ones may follow it (the mempool checks on pending state)
		}
		if waiting {
			blocked[origin] = true
			continue
		}
		next, ok := nextSeq[origin]
		if !ok {
			if next, err = r.nextSeq(ctx, m.Origin); err != nil {
				return err
			}
			nextSeq[origin] = next
		}
		if m.Seq < next {
			// On chain already (this relayer's earlier tx, or another
			// relayer's); pRuntime drops it when it sees the echo.
			r.mu.Lock()
			r.stats.EgressSkipped++
			r.mu.Unlock()
			r.log.Debug("egress already on chain; skipped", "origin", m.Origin.String(), "topic", m.Topic, "seq", m.Seq, "chain_next", next)
			continue
		}
		hash, err := r.sub.broadcast(ctx, &api.PushMessage{Message: ms[i]})
		var refused *api.TxError
		switch {
		case err == nil:
		case errors.As(err, &refused) && refused.Code == api.CodeAlreadyAccepted:
			// Another relayer's tx carries it (pending or committed).
			// Leave it alone until the chain's sequence shows it, or
			// TxTimeout passes (that tx may yet be dropped).
			r.mu.Lock()
			r.stats.EgressAlreadyAccepted++
			r.egress[key] = &egressState{heldUntil: time.Now().Add(r.cfg.TxTimeout)}
			r.mu.Unlock()
			r.log.Info("egress already accepted by the chain", "origin", m.Origin.String(), "topic", m.Topic, "seq", m.Seq)
			continue
		case errors.As(err, &refused):
			r.egressFailed(key, m, err)
			blocked[origin] = true
			continue
		default:
			return fmt.Errorf("submit egress: %w", err)
		}
		r.mu.Lock()
		r.stats.EgressSubmitted++
		r.egress[key] = &egressState{inFlight: true, failures: failures(st)}
		r.mu.Unlock()
		r.log.Info("egress submitted", "origin", m.Origin.String(), "topic", m.Topic, "seq", m.Seq, "tx", fmt.Sprintf("%X", hash[:8]))
		meta := api.Message{Origin: m.Origin, Topic: m.Topic, Seq: m.Seq} // no payload kept
		r.wg.Add(1)
		go r.awaitEgress(ctx, key, &meta, hash)
	}
	return nil
}

func failures(st *egressState) int {
	if st == nil {
		return 0
	}
	return st.failures
}

// awaitEgress waits for a push_message tx and records its outcome. Until
// then the message counts as in flight and is not submitted again.
func (r *Relayer) awaitEgress(ctx context.Context, key string, m *api.Message, hash [32]byte) {
	defer r.wg.Done()
	wctx, cancel := context.WithTimeout(ctx, r.cfg.TxTimeout)
	res, err := waitTx(wctx, r.rpc, hash)
	cancel()
	switch {
	case ctx.Err() != nil:
		// Stopping. A later run checks the chain's sequence first.
	case err != nil:
		// Not committed in time (dropped by a restarted node's mempool, or
		// evicted). The next round reads the chain's sequence before
		// resubmitting; the nonce is re-read too.
		r.sub.reset()
		r.mu.Lock()
		r.stats.EgressTimedOut++
		r.mu.Unlock()
		r.log.Warn("egress tx not committed in time; will check the chain and resubmit", "origin", m.Origin.String(), "seq", m.Seq,
			"tx", fmt.Sprintf("%X", hash[:8]), "waited", r.cfg.TxTimeout)
	case res.Code == api.CodeOK:
		r.mu.Lock()
		r.stats.EgressCommitted++
		r.mu.Unlock()
		r.log.Info("egress on chain", "origin", m.Origin.String(), "topic", m.Topic, "seq", m.Seq, "height", res.Height)
	case res.Code == api.CodeAlreadyAccepted:
		r.mu.Lock()
		r.stats.EgressAlreadyAccepted++
		r.mu.Unlock()
		r.log.Info("egress already accepted by the chain", "origin", m.Origin.String(), "topic", m.Topic, "seq", m.Seq, "height", res.Height)
	default:
		r.egressFailed(key, m, res.Err())
		return
	}
	r.mu.Lock()
	if st := r.egress[key]; st != nil {
		st.inFlight = false
	}
	r.mu.Unlock()
}

// egressFailed records a refusal: the message is retried after a delay
// that doubles with each failure (capped by MaxBackoff).
func (r *Relayer) egressFailed(key string, m *api.Message, err error) {
	r.mu.Lock()
	st := r.egress[key]
	if st == nil {
		st = &egressState{}
		r.egress[key] = st
	}
	st.inFlight = false
	st.failures++
	d := min(time.Duration(1<<min(st.failures-1, 16))*200*time.Millisecond, r.cfg.MaxBackoff)
	st.retryAt = time.Now().Add(d)
	r.stats.EgressRefused++
	r.retired.refused = true
	r.mu.Unlock()
	r.log.Warn("egress refused; will retry", "origin", m.Origin.String(), "topic", m.Topic, "seq", m.Seq, "err", err, "retry_in", d)
}

// query reads a state value (unproved: it only steers what the relayer
// submits; the chain and pRuntime check everything).
func (r *Relayer) query(ctx context.Context, path string, data []byte) ([]byte, error) {
	res, err := r.rpc.ABCIQueryWithOptions(ctx, path, data, rpcclient.ABCIQueryOptions{})
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", path, err)
	}
	if res.Response.Code != 0 {
		return nil, fmt.Errorf("query %s: %w", path, &api.TxError{Code: api.Code(res.Response.Code), Log: res.Response.Log})
	}
	return res.Response.Value, nil
}

// nextSeq is the chain's next sequence of an origin.
func (r *Relayer) nextSeq(ctx context.Context, o api.Origin) (uint64, error) {
	v, err := r.query(ctx, api.QueryNextSeq, o.Encode())
	if err != nil || len(v) == 0 {
		return 0, err
	}
	cr := codec.NewReader(v)
	n := cr.Uvarint()
	if err := cr.Done(); err != nil {
		return 0, fmt.Errorf("next sequence of %s: %w", o, err)
	}
	return n, nil
}

// submitter signs and broadcasts the operator's transactions one at a
// time, keeping the nonce locally so that several can wait in the mempool.
type submitter struct {
	rpc     *rpchttp.HTTP
	chainID string
	key     *crypto.KeyPair
	// readParams reads the chain parameters from the node again
	// (client.Client.ReadParams): fees may change by governance.
	readParams func(context.Context) (api.Params, error)

	mu       sync.Mutex
	params   api.Params
	paramsAt time.Time // when params were read
	nonce    uint64
	known    bool
}

// paramsRefresh is how often the submitter reads the chain parameters
// again even when nothing was refused.
const paramsRefresh = time.Minute

// currentParams returns the chain parameters as last read.
func (s *submitter) currentParams() api.Params {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.params
}

// refreshParams reads the parameters again. The caller holds s.mu.
func (s *submitter) refreshParams(ctx context.Context) error {
	if s.readParams == nil {
		return nil
	}
	p, err := s.readParams(ctx)
	if err != nil {
		return err
	}
	s.params, s.paramsAt = p, time.Now()
	return nil
}

// broadcast signs call with the next nonce and submits it; it returns once
// the mempool admitted it (a refusal is an *api.TxError).
func (s *submitter) broadcast(ctx context.Context, call api.Call) ([32]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.known {
		n, err := s.accountNonce(ctx)
		if err != nil {
			return [32]byte{}, err
		}
		s.nonce, s.known = n, true
	}
	if time.Since(s.paramsAt) > paramsRefresh {
		_ = s.refreshParams(ctx) // kept as they were if the node does not answer
	}
	tx := client.BuildTx(s.chainID, s.params, s.key, s.nonce, call).Encode()
	res, err := s.rpc.BroadcastTxSync(ctx, tx)
	if err == nil && res.Code == uint32(api.CodeFeeTooLow) && s.refreshParams(ctx) == nil {
		// Governance raised the fees since they were read: sign again.
		tx = client.BuildTx(s.chainID, s.params, s.key, s.nonce, call).Encode()
		res, err = s.rpc.BroadcastTxSync(ctx, tx)
	}
	if err == nil && res.Code != 0 {
		err = &api.TxError{Code: api.Code(res.Code), Log: res.Log}
	}
	var refused *api.TxError
	switch {
	case err == nil:
		s.nonce++
	case errors.As(err, &refused):
		// Refused by CheckTx: the nonce is unused, unless the refusal is
		// about the nonce itself (another client of this key, or a tx
		// dropped from the mempool).
		if refused.Code == api.CodeStaleNonce || refused.Code == api.CodeFutureNonce {
			s.known = false
		}
		return [32]byte{}, err
	default:
		s.known = false // unknown whether the node admitted it
		return [32]byte{}, fmt.Errorf("broadcast: %w", err)
	}
	return api.TxHash(tx), nil
}

func (s *submitter) accountNonce(ctx context.Context) (uint64, error) {
	pk := s.key.Public()
	res, err := s.rpc.ABCIQueryWithOptions(ctx, api.QueryAccount, pk[:], rpcclient.ABCIQueryOptions{})
	if err != nil {
		return 0, fmt.Errorf("operator account: %w", err)
	}
	if r := res.Response; r.Code != 0 {
		return 0, fmt.Errorf("operator account: %w", &api.TxError{Code: api.Code(r.Code), Log: r.Log})
	}
	if res.Response.Value == nil {
		return 0, nil // unknown account: nonce 0 (its txs are refused for lack of funds)
	}
	a, err := api.DecodeAccount(res.Response.Value)
	if err != nil {
		return 0, fmt.Errorf("operator account: %w", err)
	}
	return a.Nonce, nil
}

// reset makes the next broadcast read the nonce from the chain.
func (s *submitter) reset() {
	s.mu.Lock()
	s.known = false
	s.mu.Unlock()
}

// waitTx polls the node until the transaction is committed (or ctx ends).
func waitTx(ctx context.Context, rpc *rpchttp.HTTP, hash [32]byte) (*client.TxResult, error) {
	delay := 20 * time.Millisecond
	for {
		res, err := rpc.Tx(ctx, hash[:], false)
		if err == nil {
			return &client.TxResult{Hash: hash, Height: res.Height, Code: api.Code(res.TxResult.Code), Log: res.TxResult.Log}, nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(delay*2, 250*time.Millisecond)
	}
}
