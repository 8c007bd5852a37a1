package engine

// Every pRuntime follows, from the queue alone, each contract's latest
// on-chain checkpoint (the state updates the chain accepts, by the
// chain's own rule) and the height of its latest command, run here or
// not: a worker later granted the contract knows which root the entries
// it is given must have, and whether commands after the checkpoint must
// be replayed (docs/availability.md, "Recovery").

import (
	"bytes"
	"sort"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// onStateUpdate applies the chain's acceptance rule for a contract's
// state update (contracts.OnState): the previous root is the last
// accepted one (api.EmptyStateRoot before the first) and the height
// comes after it and before this block. A refused update is ignored here
// as it is on chain.
func (e *Engine) onStateUpdate(ctx *Context, m *api.Message) error {
	if m.Origin.Kind != api.OriginContract {
		return nil
	}
	u, err := api.DecodeStateUpdate(m.Payload)
	if err != nil {
		return nil // refused on chain too
	}
	cp, ok := e.st.checkpoints[m.Origin.Key]
	if !ok {
		cp = api.Checkpoint{Root: api.EmptyStateRoot}
	}
	if u.PrevRoot != cp.Root || u.Height <= cp.Height || u.Height >= ctx.Height {
		return nil
	}
	cp.Height, cp.Seq, cp.Calls, cp.Root = u.Height, u.Seq, u.Calls, u.NewRoot
	e.accepted(ctx.Height, m.Origin.Key, cp, cpMeta{egressSeq: m.Seq + 1, acceptedAt: ctx.Height})
	e.endMigration(m.Origin.Key, u)
	return nil
}

// encodeCheckpoints writes the followed checkpoints (height, seq, calls,
// root) and latest command heights, by ascending contract key.
func (s *state) encodeCheckpoints(w *codec.Writer) {
	ids := make([]crypto.PublicKey, 0, len(s.checkpoints))
	for id := range s.checkpoints {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	w.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		cp := s.checkpoints[id]
		w.Fixed(id[:])
		w.Varint(cp.Height)
		w.Uvarint(cp.Seq)
		w.Uvarint(cp.Calls)
		w.Fixed(cp.Root[:])
	}
	ids = ids[:0]
	for id := range s.lastCommand {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	w.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		w.Fixed(id[:])
		w.Varint(s.lastCommand[id])
	}
}

func (s *state) decodeCheckpoints(r *codec.Reader) {
	n := r.Uvarint()
	if n > uint64(r.Remaining()/(crypto.PublicKeySize+34)) {
		r.Fail(codec.ErrTooLong)
	}
	for ; r.Err() == nil && n > 0; n-- {
		var id crypto.PublicKey
		var cp api.Checkpoint
		r.Fixed(id[:])
		cp.Height = r.Varint()
		cp.Seq = r.Uvarint()
		cp.Calls = r.Uvarint()
		r.Fixed(cp.Root[:])
		s.checkpoints[id] = cp
	}
	n = r.Uvarint()
	if n > uint64(r.Remaining()/(crypto.PublicKeySize+1)) {
		r.Fail(codec.ErrTooLong)
	}
	for ; r.Err() == nil && n > 0; n-- {
		var id crypto.PublicKey
		r.Fixed(id[:])
		s.lastCommand[id] = r.Varint()
	}
}
