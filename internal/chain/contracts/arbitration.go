package contracts

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/accounts"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/mq"
	"github.com/phalago/phala/internal/chain/staking"
	"github.com/phalago/phala/internal/chain/store"
)

// State update arbitration, the chain's side (docs/availability.md,
// "Arbitration"; the specification's "State Update Arbitration"). The
// module keeps, for every state update accepted within the last
// Params.ArbitrationWindow blocks, its undo record ("cx/<contract><height
// BE>": enough to restore the entries and the checkpoint record as they
// were before it) and the workers' votes on its root ("cv/<contract><height
// BE><worker>" → the vote's previous root then its root, 64 bytes); a
// dispute open on a contract is its arbitration record ("ca/<contract>",
// api.Arbitration).

// ResumeSeqGap is how far an overturn moves the contract's next message
// sequence (api.ArbitrationVerdict.ResumeSeq = the next sequence + 2^20):
// far more messages than the contract's replicas can have signed in the
// wrong history and not yet landed, so every one of them is refused as
// stale (mq.SkipTo) and the rebuilt replicas number theirs from ResumeSeq.
const ResumeSeqGap = 1 << 20

// voteValue is the stored form of a vote: its previous root, its root.
func voteValue(v *api.StateVote) []byte { return append(bytes.Clone(v.PrevRoot[:]), v.Root[:]...) }

// loadVote returns worker's recorded vote for contract's height (ok
// false: none).
func loadVote(kv store.KV, contract crypto.PublicKey, height int64, worker crypto.PublicKey) (prev, root [32]byte, ok bool) {
	return splitVote(kv.Get(voteKey(contract, height, worker)))
}

func splitVote(v []byte) (prev, root [32]byte, ok bool) {
	if len(v) != 64 {
		return prev, root, false
	}
	return [32]byte(v[:32]), [32]byte(v[32:]), true
}

// prevRoot is the root the update of u started from (api.EmptyStateRoot
// for a contract's first update).
func (u *undoRecord) prevRoot() [32]byte {
	if u.Prev == nil {
		return api.EmptyStateRoot
	}
	return u.Prev.Root
}

// undoRecord is what applying one state update overwrote: the checkpoint
// record before it (Prev; nil: the contract had none, it was its first
// update), the old value of every location the update changed (Value nil:
// absent before), locations ascending, the block that accepted it, the
// update's new root, and whether arbiters upheld it (Settled: it may not
// be disputed again).
type undoRecord struct {
	Accepted int64
	Root     [32]byte
	Prev     *api.Checkpoint
	Settled  bool
	Old      []api.StateChange
}

func (u *undoRecord) encode() []byte {
	n := 128
	for _, c := range u.Old {
		n += 40 + len(c.Value)
	}
	w := codec.NewWriter(n)
	w.Varint(u.Accepted)
	w.Fixed(u.Root[:])
	w.Bool(u.Prev != nil)
	if u.Prev != nil {
		w.BytesField(u.Prev.Encode())
	}
	w.Bool(u.Settled)
	w.Uvarint(uint64(len(u.Old)))
	for _, c := range u.Old {
		w.Fixed(c.Location[:])
		w.Bool(c.Value != nil)
		if c.Value != nil {
			w.BytesField(c.Value)
		}
	}
	return w.Bytes()
}

// maxUndoValue bounds one old value of an undo record (every entry was
// written by a state update, at most api.MaxStateUpdateBytes).
const maxUndoValue = api.MaxStateUpdateBytes

// decodeUndo strictly decodes an undo record: a positive accepting
// height, a previous checkpoint that decodes, locations strictly
// ascending, values at least a write counter long.
func decodeUndo(b []byte) (*undoRecord, error) {
	u := &undoRecord{}
	r := codec.NewReader(b)
	u.Accepted = r.Varint()
	r.Fixed(u.Root[:])
	if r.Bool() {
		cb := r.BytesField(128)
		if r.Err() == nil {
			cp, err := api.DecodeCheckpoint(cb)
			if err != nil {
				r.Fail(err)
			}
			u.Prev = cp
		}
	}
	u.Settled = r.Bool()
	n := r.Uvarint()
	if n > uint64(r.Remaining()/(api.StateLocationSize+1)) {
		r.Fail(fmt.Errorf("%w: %d old values", codec.ErrTooLong, n))
	}
	for i := uint64(0); r.Err() == nil && i < n; i++ {
		var c api.StateChange
		r.Fixed(c.Location[:])
		if r.Bool() {
			c.Value = r.BytesField(maxUndoValue)
			if r.Err() == nil && len(c.Value) < 8 {
				r.Fail(fmt.Errorf("%w: a value shorter than its write counter", codec.ErrBadFormat))
			}
		}
		if k := len(u.Old); k > 0 && bytes.Compare(u.Old[k-1].Location[:], c.Location[:]) >= 0 {
			r.Fail(fmt.Errorf("%w: locations out of order", codec.ErrBadFormat))
		}
		u.Old = append(u.Old, c)
	}
	if r.Err() == nil && u.Accepted <= 0 {
		r.Fail(fmt.Errorf("%w: accepting height %d", codec.ErrBadFormat, u.Accepted))
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: undo record: %v", api.ErrMalformed, err)
	}
	return u, nil
}

func undoPrefix(contract crypto.PublicKey) []byte { return append([]byte("cx/"), contract[:]...) }

func undoKey(contract crypto.PublicKey, height int64) []byte {
	return binary.BigEndian.AppendUint64(undoPrefix(contract), uint64(height))
}

func votePrefix(contract crypto.PublicKey) []byte { return append([]byte("cv/"), contract[:]...) }

func voteHeightPrefix(contract crypto.PublicKey, height int64) []byte {
	return binary.BigEndian.AppendUint64(votePrefix(contract), uint64(height))
}

func voteKey(contract crypto.PublicKey, height int64, worker crypto.PublicKey) []byte {
	return append(voteHeightPrefix(contract, height), worker[:]...)
}

func loadUndo(kv store.KV, contract crypto.PublicKey, height int64) *undoRecord {
	v := kv.Get(undoKey(contract, height))
	if v == nil {
		return nil
	}
	u, err := decodeUndo(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt undo record of %s at %d: %v", contract.Hex(), height, err))
	}
	return u
}

// loadArbitration returns contract's open arbitration, or nil.
func loadArbitration(kv store.KV, contract crypto.PublicKey) *api.Arbitration {
	v := kv.Get(api.ArbitrationKey(contract))
	if v == nil {
		return nil
	}
	a, err := api.DecodeArbitration(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt arbitration of %s: %v", contract.Hex(), err))
	}
	return a
}

// currentCheckpoint returns contract's checkpoint record (height 0 and
// api.EmptyStateRoot before its first update).
func currentCheckpoint(kv store.KV, contract crypto.PublicKey) *api.Checkpoint {
	v := kv.Get(api.CheckpointKey(contract))
	if v == nil {
		return &api.Checkpoint{Root: api.EmptyStateRoot}
	}
	cp, err := api.DecodeCheckpoint(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt checkpoint of %s: %v", contract.Hex(), err))
	}
	return cp
}

// captureUndo reads, before the state update u of contract is applied,
// what applying it overwrites; nil when arbitration is off
// (Params.ArbitrationWindow 0: no undo record is kept).
func captureUndo(ctx *block.Context, contract crypto.PublicKey, u *api.StateUpdate) *undoRecord {
	if ctx.Params.ArbitrationWindow == 0 && ctx.KV.Get(api.ArbitrationKey(contract)) == nil {
		return nil // an open dispute keeps the undo records of the updates after it whatever the window
	}
	rec := &undoRecord{Accepted: ctx.Height, Root: u.NewRoot, Old: make([]api.StateChange, len(u.Changes))}
	if v := ctx.KV.Get(api.CheckpointKey(contract)); v != nil {
		rec.Prev = currentCheckpoint(ctx.KV, contract)
	}
	for i, c := range u.Changes {
		rec.Old[i] = api.StateChange{Location: c.Location, Value: bytes.Clone(ctx.KV.Get(api.StateEntryKey(contract, c.Location)))}
	}
	return rec
}

// keepUndo stores the undo record of contract's update at height (just
// applied; nil: none kept) and prunes the records and votes no longer
// disputable.
func keepUndo(ctx *block.Context, contract crypto.PublicKey, height int64, u *undoRecord) {
	if u != nil {
		ctx.KV.Set(undoKey(contract, height), u.encode())
	}
	prune(ctx, contract)
	if u == nil {
		return
	}
	// Votes that reached the chain before the update may contradict it.
	rec := Record(ctx.KV, contract)
	var contra []*api.StateVote
	store.Iterate(ctx.KV, voteHeightPrefix(contract, height), func(k, val []byte) bool {
		if prev, root, ok := splitVote(val); ok && rec != nil && slices.Contains(rec.Workers, crypto.PublicKey(k[len(k)-32:])) {
			contra = append(contra, &api.StateVote{Contract: contract, Height: height, PrevRoot: prev, Root: root})
		}
		return true
	})
	for _, v := range contra {
		autoDispute(ctx, v, u)
	}
}

// prune deletes contract's undo records accepted more than
// Params.ArbitrationWindow blocks ago, except those after the open
// dispute's previous checkpoint (an overturn undoes them), then the votes for heights
// that have no undo record and are not after the checkpoint (votes for a
// height the chain has no update of yet wait for it: a replica's vote may
// reach the chain before the update it vouches for).
func prune(ctx *block.Context, contract crypto.PublicKey) {
	window := int64(ctx.Params.ArbitrationWindow)
	keepFrom := int64(-1)
	if a := loadArbitration(ctx.KV, contract); a != nil {
		keepFrom = a.PrevHeight + 1
	}
	var stale [][]byte
	store.Iterate(ctx.KV, undoPrefix(contract), func(k, v []byte) bool {
		h := int64(binary.BigEndian.Uint64(k[len(k)-8:]))
		u, err := decodeUndo(v)
		if err != nil {
			panic(fmt.Sprintf("corrupt undo record of %s at %d: %v", contract.Hex(), h, err))
		}
		if (keepFrom >= 0 && h >= keepFrom) || ctx.Height-u.Accepted <= window {
			return false // accepting heights grow with update heights: the rest is kept too
		}
		stale = append(stale, bytes.Clone(k))
		return true
	})
	for _, k := range stale {
		ctx.KV.Delete(k)
	}
	cpHeight := currentCheckpoint(ctx.KV, contract).Height
	stale = stale[:0]
	last, lastKept := int64(-1), false
	store.Iterate(ctx.KV, votePrefix(contract), func(k, _ []byte) bool {
		h := int64(binary.BigEndian.Uint64(k[len(k)-40 : len(k)-32]))
		if h > cpHeight {
			return false
		}
		if h != last {
			last, lastKept = h, ctx.KV.Get(undoKey(contract, h)) != nil
		}
		if !lastKept {
			stale = append(stale, bytes.Clone(k))
		}
		return true
	})
	for _, k := range stale {
		ctx.KV.Delete(k)
	}
}

// deleteVotes deletes contract's votes for heights from..to (inclusive),
// only the given workers' when workers is not nil.
func deleteVotes(ctx *block.Context, contract crypto.PublicKey, from, to int64, workers []crypto.PublicKey) {
	var stale [][]byte
	store.Iterate(ctx.KV, votePrefix(contract), func(k, _ []byte) bool {
		h := int64(binary.BigEndian.Uint64(k[len(k)-40 : len(k)-32]))
		if h > to {
			return false
		}
		if h >= from && (workers == nil || slices.Contains(workers, crypto.PublicKey(k[len(k)-32:]))) {
			stale = append(stale, bytes.Clone(k))
		}
		return true
	})
	for _, k := range stale {
		ctx.KV.Delete(k)
	}
}

// OnVote records a worker's api.StateVote (pushed as the worker's own
// message, so attributable) as "cv/<contract><height><worker>" → previous
// root, root: a current worker's vote for a height whose update is still
// disputable (its undo record is kept) or not yet on chain (an early
// vote: after the checkpoint by at most twice the contract's checkpoint
// interval, before this block), or an assigned arbiter's vote for the
// height its dispute is about; an arbiter's vote may decide the dispute
// (decide). A worker's first vote for a height stands. A current
// worker's vote that contradicts an accepted update (same previous root,
// another root) opens a dispute of it by itself (autoDispute). Anything
// else is ignored with a state_vote_ignored event: a malformed vote, an
// unknown contract, a voter that neither runs the contract nor
// arbitrates that height, a replica's vote while arbitration is off
// (Params.ArbitrationWindow 0) or for a height not disputable.
func OnVote(ctx *block.Context, worker crypto.PublicKey, payload []byte) {
	v, err := api.DecodeStateVote(payload)
	if err != nil {
		ctx.Event("state_vote_ignored", "worker", worker.Hex(), "reason", "malformed: "+err.Error())
		return
	}
	ignore := func(why string) {
		ctx.Event("state_vote_ignored", "contract", v.Contract.Hex(), "worker", worker.Hex(), "height", strconv.FormatInt(v.Height, 10), "reason", why)
	}
	rec := Record(ctx.KV, v.Contract)
	if rec == nil {
		ignore("no such contract")
		return
	}
	key := voteKey(v.Contract, v.Height, worker)
	if ctx.KV.Get(key) != nil {
		ignore("already voted for that height")
		return
	}
	a := loadArbitration(ctx.KV, v.Contract)
	if a != nil && a.Height == v.Height && slices.Contains(a.Arbiters, worker) {
		ctx.KV.Set(key, voteValue(v))
		ctx.Event("arbiter_vote", "contract", v.Contract.Hex(), "worker", worker.Hex(), "height", strconv.FormatInt(v.Height, 10))
		decide(ctx, v.Contract, a)
		return
	}
	switch {
	case !slices.Contains(rec.Workers, worker):
		ignore("neither runs the contract nor arbitrates that height")
		return
	case ctx.Params.ArbitrationWindow == 0:
		ignore("arbitration is off (arbitration_window 0)")
		return
	}
	u := loadUndo(ctx.KV, v.Contract, v.Height)
	if u == nil {
		interval := int64(rec.CheckpointInterval) // at most api.MaxCheckpointInterval
		if interval == 0 {
			interval = api.DefaultCheckpointInterval
		}
		if cp := currentCheckpoint(ctx.KV, v.Contract); v.Height <= cp.Height || v.Height >= ctx.Height || v.Height-cp.Height > 2*interval {
			ignore(fmt.Sprintf("no disputable update at that height (checkpoint at %d, early votes up to %d blocks after it)", cp.Height, 2*interval))
			return
		}
	}
	ctx.KV.Set(key, voteValue(v))
	if u != nil {
		autoDispute(ctx, v, u)
	}
}

// autoDispute opens, with no requester (the zero key) and no bond, the
// dispute of the update u of v.Contract at v.Height when the vote v of a
// current worker contradicts it (same previous root, another root),
// the update is still disputable (within Params.ArbitrationWindow, not
// upheld) and no dispute of the contract is open but one of a later
// height (which it takes over: that one expires).
func autoDispute(ctx *block.Context, v *api.StateVote, u *undoRecord) {
	window := int64(ctx.Params.ArbitrationWindow)
	if window == 0 || u.Settled || ctx.Height-u.Accepted > window || v.PrevRoot != u.prevRoot() || v.Root == u.Root {
		return
	}
	if _, err := live(ctx.KV, v.Contract); err != nil {
		return
	}
	if a := loadArbitration(ctx.KV, v.Contract); a != nil && a.Height <= v.Height {
		return
	}
	if err := open(ctx, v.Contract, v.Height, u, crypto.PublicKey{}, 0); err != nil {
		panic(fmt.Sprintf("open the dispute of %s at %d: %v", v.Contract.Hex(), v.Height, err)) // a module message of bounded size
	}
}

// Request opens a dispute of a contract's state update
// (api.ArbitrationRequest, call 60). A dispute of an earlier update than
// the open one takes over: the open one expires (api.ArbitrationExpired,
// its bond returned). Errors (each wraps
// api.ErrInvalidCall; nothing changes): the contract is not deployed or
// failed; api.ErrArbitrationOpen when a dispute of the contract at the
// same or an earlier height is open;
// api.ErrArbitrationClosed when no update of that height is on record,
// its acceptance is more than Params.ArbitrationWindow blocks old, or the
// arbiters already upheld it; api.ErrInsufficientBalance when the signer,
// not the contract's deployer, cannot post Params.ArbitrationBond (PHA
// base units, debited and held in the arbitration record). It records
// api.Arbitration ("ca/<contract>") and announces api.ArbitrationOpened.
func Request(ctx *block.Context, signer crypto.PublicKey, c *api.ArbitrationRequest) error {
	rec, err := live(ctx.KV, c.Contract)
	if err != nil {
		return err
	}
	if a := loadArbitration(ctx.KV, c.Contract); a != nil && a.Height <= c.Height {
		return fmt.Errorf("%w: the dispute of its update at height %d, opened at block %d", api.ErrArbitrationOpen, a.Height, a.Opened)
	}
	window := int64(ctx.Params.ArbitrationWindow)
	u := loadUndo(ctx.KV, c.Contract, c.Height)
	switch {
	case window == 0:
		return fmt.Errorf("%w: arbitration is off on this chain (arbitration_window 0)", api.ErrArbitrationClosed)
	case u == nil:
		return fmt.Errorf("%w: contract %s has no update of height %d within the last %d blocks (its checkpoint is at %d)",
			api.ErrArbitrationClosed, c.Contract.Hex(), c.Height, window, currentCheckpoint(ctx.KV, c.Contract).Height)
	case ctx.Height-u.Accepted > window:
		return fmt.Errorf("%w: the update of height %d was accepted at block %d, more than arbitration_window %d blocks ago",
			api.ErrArbitrationClosed, c.Height, u.Accepted, window)
	case u.Settled:
		return fmt.Errorf("%w: arbiters already upheld the update of height %d", api.ErrArbitrationClosed, c.Height)
	}
	var bond uint64
	if signer != rec.Deployer {
		bond = ctx.Params.ArbitrationBond
		if err := accounts.Debit(ctx.KV, signer, bond); err != nil {
			return fmt.Errorf("arbitration bond: %w", err)
		}
	}
	return open(ctx, c.Contract, c.Height, u, signer, bond)
}

// open records the dispute of contract's update u at height (requester
// posted bond; the zero key and 0 for a dispute the chain opened) and
// announces it, after expiring the open dispute of a later height if any.
func open(ctx *block.Context, contract crypto.PublicKey, height int64, u *undoRecord, requester crypto.PublicKey, bond uint64) error {
	if old := loadArbitration(ctx.KV, contract); old != nil {
		ctx.Event("arbitration_superseded", "contract", contract.Hex(), "height", strconv.FormatInt(old.Height, 10), "by", strconv.FormatInt(height, 10))
		closeArbitration(ctx, contract, old, api.ArbitrationExpired, [32]byte{})
	}
	a := &api.Arbitration{Height: height, Root: u.Root, PrevRoot: api.EmptyStateRoot, EntriesHeight: u.Accepted - 1, Requester: requester, Bond: bond, Opened: ctx.Height}
	// The state at EntriesHeight holds the entries of the checkpoint
	// before every update accepted in the disputed update's block (two
	// updates of a contract can land in one block): the arbiters rebuild
	// from the first of them's previous checkpoint and replay from there.
	for prev := u.Prev; prev != nil; {
		a.PrevHeight, a.PrevRoot = prev.Height, prev.Root
		pu := loadUndo(ctx.KV, contract, prev.Height)
		if pu == nil || pu.Accepted != u.Accepted {
			break
		}
		prev = pu.Prev
		if prev == nil {
			a.PrevHeight, a.PrevRoot = 0, api.EmptyStateRoot
		}
	}
	ctx.KV.Set(api.ArbitrationKey(contract), a.Encode())
	ctx.Event("arbitration_opened", "contract", contract.Hex(), "height", strconv.FormatInt(height, 10), "requester", requester.Address(), "bond", strconv.FormatUint(bond, 10))
	o := &api.ArbitrationOpened{Contract: contract, Height: a.Height, Root: a.Root, PrevHeight: a.PrevHeight, PrevRoot: a.PrevRoot, EntriesHeight: a.EntriesHeight, Requester: requester}
	return mq.Emit(ctx, api.ModuleOrigin(Module), api.TopicArbitrationOpened, o.Encode())
}

// assignArbiters records the arbiters of contract's open dispute of its
// update at disputed from a completed round of KeyForArbiters partials (g,
// built by OnPartials, which checked the dispute is open without
// arbiters) and announces them (api.ArbitersAssigned, carrying the
// grant). The round is ignored (arbiter_grant_ignored event) if it names
// more workers than Params.Arbiters, a worker twice, or a worker that may
// not be assigned the contract (ineligible: one running it or excluded
// from it, not attested, short of the deployment's requirements,
// under-staked or unresponsive).
func assignArbiters(ctx *block.Context, contract crypto.PublicKey, disputed int64, g *api.ContractKeyGrant) {
	ignore := func(why string) {
		ctx.Event("arbiter_grant_ignored", "contract", contract.Hex(), "height", strconv.FormatInt(disputed, 10), "reason", why)
	}
	a := loadArbitration(ctx.KV, contract)
	rec := Record(ctx.KV, contract)
	if uint64(len(g.Workers)) > ctx.Params.Arbiters {
		ignore(fmt.Sprintf("%d arbiter(s) granted, 1 to %d allowed", len(g.Workers), ctx.Params.Arbiters))
		return
	}
	p := loadPending(ctx.KV, rec.Upload)
	if p == nil {
		panic(fmt.Sprintf("contract %s without its upload record", rec.Identity.Hex()))
	}
	var arbiters []crypto.PublicKey
	for _, k := range g.Workers {
		if why := ineligible(ctx, p, rec, k); why != "" {
			ignore(fmt.Sprintf("worker %s: %s", k.Hex(), why))
			return
		}
		if slices.Contains(arbiters, k) {
			ignore(fmt.Sprintf("worker %s granted twice", k.Hex()))
			return
		}
		arbiters = append(arbiters, k)
	}
	// Votes an arbiter cast before (for a dispute of the same height that
	// expired) do not count.
	deleteVotes(ctx, contract, disputed, disputed, arbiters)
	a.Arbiters = arbiters
	ctx.KV.Set(api.ArbitrationKey(contract), a.Encode())
	for _, w := range arbiters {
		ctx.Event("arbiter_assigned", "contract", contract.Hex(), "height", strconv.FormatInt(disputed, 10), "worker", w.Hex(), "key_era", strconv.FormatUint(g.Era, 10))
	}
	as := &api.ArbitersAssigned{Contract: contract, Height: disputed, Arbiters: arbiters, Grant: g.Encode()}
	if err := mq.Emit(ctx, api.ModuleOrigin(Module), api.TopicArbitersAssigned, as.Encode()); err != nil {
		panic(fmt.Sprintf("announce the arbiters of %s: %v", contract.Hex(), err)) // a module message of bounded size
	}
}

// decide closes the dispute a of contract once a majority of its n
// arbiters (n/2+1) voted one root.
func decide(ctx *block.Context, contract crypto.PublicKey, a *api.Arbitration) {
	var roots [][32]byte
	var counts []int
	for _, w := range a.Arbiters {
		_, root, ok := loadVote(ctx.KV, contract, a.Height, w)
		if !ok {
			continue
		}
		i := slices.Index(roots, root)
		if i < 0 {
			roots, counts, i = append(roots, root), append(counts, 0), len(roots)
		}
		counts[i]++
		if counts[i] >= len(a.Arbiters)/2+1 {
			outcome := api.ArbitrationUpheld
			if roots[i] != a.Root {
				outcome = api.ArbitrationOverturned
			}
			closeArbitration(ctx, contract, a, uint8(outcome), roots[i])
			return
		}
	}
}

// closeArbitration applies a's outcome (docs/availability.md,
// "Arbitration"): upheld, the bond goes to the arbiters that voted root
// (split evenly, the remainder to the first) and the update may not be
// disputed again; overturned, every update of the contract after the
// dispute's previous checkpoint (a.PrevHeight: the disputed update and
// those after it, and those accepted in its block before it) is undone
// (rollback), the bond returned, and the contract's next message
// sequence moved ResumeSeqGap ahead (the verdict's ResumeSeq); expired,
// the bond is returned. Upheld or overturned, every worker whose vote for
// the disputed height (not an arbiter's) started from the disputed
// update's previous root and is not root is slashed
// Params.ArbitrationSlashPPM of its stake, and those still running the
// contract are removed from it and excluded (a vote from another
// previous root is no evidence: its worker followed another history).
// Overturned, every other current worker without a vote of root from
// that previous root is removed too, neither slashed nor excluded: the
// wrong update is signed by the contract's key, only votes attribute it,
// and a worker that withheld its vote may be the liar. It announces
// api.ArbitrationVerdict and deletes the record, the dispute's votes
// (all votes of the height; after an overturn every height undone; after
// an expiry the arbiters' only), and the undo records no longer needed.
func closeArbitration(ctx *block.Context, contract crypto.PublicKey, a *api.Arbitration, outcome uint8, root [32]byte) {
	ctx.KV.Delete(api.ArbitrationKey(contract))
	credit := func(who crypto.PublicKey, amount uint64) {
		if amount == 0 {
			return
		}
		if err := accounts.Credit(ctx.KV, who, amount); err != nil {
			panic(fmt.Sprintf("arbitration of %s: pay back %d held units: %v", contract.Hex(), amount, err)) // held units came from balances: no overflow
		}
	}
	// The disputed update's own previous root (read before a rollback
	// deletes its undo record; an open dispute keeps it).
	disputed := loadUndo(ctx.KV, contract, a.Height)
	v := &api.ArbitrationVerdict{Contract: contract, Height: a.Height, Outcome: outcome, Root: root}
	name := "expired"
	switch outcome {
	case api.ArbitrationUpheld:
		name = "upheld"
		var paid []crypto.PublicKey
		for _, w := range a.Arbiters {
			if _, r, ok := loadVote(ctx.KV, contract, a.Height, w); ok && r == root {
				paid = append(paid, w)
			}
		}
		share := a.Bond / uint64(len(paid))
		for i, w := range paid {
			amount := share
			if i == 0 {
				amount += a.Bond % uint64(len(paid))
			}
			credit(w, amount)
		}
		if disputed != nil {
			disputed.Settled = true
			ctx.KV.Set(undoKey(contract, a.Height), disputed.encode())
		}
	case api.ArbitrationOverturned:
		name = "overturned"
		rollback(ctx, contract, a.PrevHeight+1)
		credit(a.Requester, a.Bond)
		o := api.KeyOrigin(api.OriginContract, contract)
		next := mq.NextSeq(ctx.KV, o)
		if next > math.MaxUint64-ResumeSeqGap {
			panic(fmt.Sprintf("contract %s: message sequence %d exhausted", contract.Hex(), next)) // 2^64 messages: unreachable
		}
		v.ResumeSeq = next + ResumeSeqGap
		mq.SkipTo(ctx.KV, o, v.ResumeSeq)
	default:
		credit(a.Requester, a.Bond)
	}
	if outcome != api.ArbitrationExpired && disputed != nil {
		from := disputed.prevRoot()
		store.Iterate(ctx.KV, voteHeightPrefix(contract, a.Height), func(k, val []byte) bool {
			w := crypto.PublicKey(k[len(k)-32:])
			if prev, r, ok := splitVote(val); ok && !slices.Contains(a.Arbiters, w) && prev == from && r != root {
				v.Slashed = append(v.Slashed, w)
			}
			return true
		})
		rec := Record(ctx.KV, contract)
		var removed, excluded []crypto.PublicKey
		for _, w := range v.Slashed {
			staking.Slash(ctx, w, ctx.Params.ArbitrationSlashPPM, api.RemovedByArbitration)
			if slices.Contains(rec.Workers, w) {
				excluded = append(excluded, w)
			}
		}
		removed = append(removed, excluded...)
		if outcome == api.ArbitrationOverturned {
			for _, w := range rec.Workers {
				if prev, r, ok := loadVote(ctx.KV, contract, a.Height, w); !slices.Contains(excluded, w) && (!ok || prev != from || r != root) {
					removed = append(removed, w)
				}
			}
		}
		if len(v.Slashed) > 2*api.MaxReplicas { // the verdict lists at most that many (votes of workers since replaced add up)
			v.Slashed = v.Slashed[:2*api.MaxReplicas]
		}
		if len(excluded) > 0 {
			rec.Excluded = append(rec.Excluded, excluded...)
			if n := len(rec.Excluded); n > api.MaxExcludedWorkers {
				rec.Excluded = rec.Excluded[n-api.MaxExcludedWorkers:]
			}
		}
		if len(removed) > 0 {
			removeWorkers(ctx, rec, removed, api.RemovedByArbitration)
		}
	}
	switch outcome {
	case api.ArbitrationUpheld:
		deleteVotes(ctx, contract, a.Height, a.Height, nil)
	case api.ArbitrationOverturned:
		deleteVotes(ctx, contract, a.PrevHeight+1, 1<<62, nil)
	default:
		deleteVotes(ctx, contract, a.Height, a.Height, a.Arbiters)
	}
	prune(ctx, contract)
	cp := currentCheckpoint(ctx.KV, contract)
	v.RollbackHeight, v.RollbackRoot = cp.Height, cp.Root
	ctx.Event("arbitration_verdict", "contract", contract.Hex(), "height", strconv.FormatInt(a.Height, 10), "outcome", name,
		"slashed", strconv.Itoa(len(v.Slashed)), "checkpoint", strconv.FormatInt(cp.Height, 10))
	if err := mq.Emit(ctx, api.ModuleOrigin(Module), api.TopicArbitrationVerdict, v.Encode()); err != nil {
		panic(fmt.Sprintf("announce the verdict on %s: %v", contract.Hex(), err)) // a module message of bounded size
	}
}

// rollback undoes every update of contract from height on, newest first:
// each location an update changed takes its old value back, and the
// checkpoint record the one before the update (none before the first);
// their undo records are deleted.
func rollback(ctx *block.Context, contract crypto.PublicKey, height int64) {
	type entry struct {
		key []byte
		u   *undoRecord
	}
	var undone []entry
	store.Iterate(ctx.KV, undoPrefix(contract), func(k, v []byte) bool {
		if int64(binary.BigEndian.Uint64(k[len(k)-8:])) < height {
			return true
		}
		u, err := decodeUndo(v)
		if err != nil {
			panic(fmt.Sprintf("corrupt undo record %x: %v", k, err))
		}
		undone = append(undone, entry{bytes.Clone(k), u})
		return true
	})
	for i := len(undone) - 1; i >= 0; i-- {
		u := undone[i].u
		for _, c := range u.Old {
			if c.Value == nil {
				ctx.KV.Delete(api.StateEntryKey(contract, c.Location))
			} else {
				ctx.KV.Set(api.StateEntryKey(contract, c.Location), c.Value)
			}
		}
		if u.Prev == nil {
			ctx.KV.Delete(api.CheckpointKey(contract))
		} else {
			ctx.KV.Set(api.CheckpointKey(contract), u.Prev.Encode())
		}
		ctx.KV.Delete(undone[i].key)
	}
}

// expireArbitrations (end of every block) closes the disputes opened more
// than Params.ArbitrationTimeout blocks ago without a verdict
// (api.ArbitrationExpired: nothing changes, the bond is returned).
func expireArbitrations(ctx *block.Context) {
	type open struct {
		contract crypto.PublicKey
		a        *api.Arbitration
	}
	var expired []open
	store.Iterate(ctx.KV, []byte("ca/"), func(k, v []byte) bool {
		a, err := api.DecodeArbitration(v)
		if err != nil {
			panic(fmt.Sprintf("corrupt arbitration %x: %v", k, err))
		}
		if ctx.Height-a.Opened > int64(ctx.Params.ArbitrationTimeout) {
			expired = append(expired, open{crypto.PublicKey(k[3:]), a})
		}
		return true
	})
	for _, e := range expired {
		closeArbitration(ctx, e.contract, e.a, api.ArbitrationExpired, [32]byte{})
	}
}
