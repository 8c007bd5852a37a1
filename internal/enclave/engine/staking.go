package engine

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Stake (docs/economy.md "Nodes and their stake"): the chain's staking
// module tells pRuntimes every change of a node's total stake
// (api.TopicNodeStake); the engine keeps the totals and min_worker_stake
// (the genesis one, then as governance set it) so that its gatekeeper
// assigns contracts only to workers with enough stake, as the chain's
// contracts module requires of a grant.

// stakingModule is the origin name of the chain's staking module.
const stakingModule = "staking"

// maxStakeEntries bounds the node totals a checkpoint may hold (one per
// registered node that ever had stake).
const maxStakeEntries = 1 << 20

// onNodeStake records a node's total stake. A worker reaching
// min_worker_stake makes the gatekeeper grant the uploads waiting for a
// worker (grantWaiting).
func (e *Engine) onNodeStake(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin(stakingModule) {
		return fmt.Errorf("node stake from %s, not staking", m.Origin)
	}
	u, err := api.DecodeNodeStakeUpdate(m.Payload)
	if err != nil {
		return err
	}
	was := e.assignable(u.Node)
	if u.Total == 0 {
		delete(e.st.nodeStake, u.Node)
	} else {
		e.st.nodeStake[u.Node] = u.Total
	}
	if !was && e.assignable(u.Node) && e.st.workers[u.Node] != nil {
		e.grantWaiting(ctx.Height)
	}
	return nil
}

// assignable reports whether the worker key may be given new contracts:
// it has the stake the chain requires (staking.Assignable applies the
// same rule) and the chain did not find it unresponsive at the last era
// end (computation.Responsive).
func (e *Engine) assignable(key crypto.PublicKey) bool {
	return e.st.nodeStake[key] >= e.st.params.MinWorkerStake && !e.st.unassignable[key]
}

// encodeStaking writes the staking part of the chain-derived state: the
// node totals in ascending key order (min_worker_stake is in the params).
func (s *state) encodeStaking(w *codec.Writer) {
	ks := make([]crypto.PublicKey, 0, len(s.nodeStake))
	for k := range s.nodeStake {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return bytes.Compare(ks[i][:], ks[j][:]) < 0 })
	w.Uvarint(uint64(len(ks)))
	for _, k := range ks {
		w.Fixed(k[:])
		w.Uvarint(s.nodeStake[k])
	}
}

func (s *state) decodeStaking(r *codec.Reader) {
	n := r.Uvarint()
	if n > maxStakeEntries || n > uint64(r.Remaining()/(crypto.PublicKeySize+1)) {
		r.Fail(fmt.Errorf("%w: %d node stakes", codec.ErrTooLong, n))
		return
	}
	for ; r.Err() == nil && n > 0; n-- {
		var k crypto.PublicKey
		r.Fixed(k[:])
		s.nodeStake[k] = r.Uvarint()
	}
}
