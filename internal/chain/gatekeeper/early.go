package gatekeeper

// The early (mid-era) re-election (docs/keys.md, "A third of the set
// down"; issue 12's P4): when at least a third of the serving gatekeepers
// are down (VoterSource.Down: the computation module's heartbeat
// liveness), the set of the next era is elected now instead of at the
// era's last block. It keeps the numbering: the set elected early in
// economy era e is the set of era e+1 (its election record, exposures and
// key era are e+1's); once its DKG is adopted it serves for the rest of
// era e and for era e+1, and the era-end election of era e, finding e+1's
// set active, does not run. At most one early election per economy era.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/eras"
	"github.com/phalago/phala/internal/chain/store"
)

// ErrNoEarlyElection: ElectEarly cannot elect at this block (the error
// says why); nothing changed.
var ErrNoEarlyElection = errors.New("no early gatekeeper election")

// ReasonThirdDown is the reason the liveness trigger gives ElectEarly.
const ReasonThirdDown = "a third of the serving set is down"

// earlyKey is the state key of economy era's early election ("gk/early/"
// ‖ era, 8 bytes big-endian): varint height of the election ‖ u8 1 once
// the event saying the set is down again was emitted, else 0.
func earlyKey(era uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte("gk/early/"), era)
}

type earlyRecord struct {
	height int64
	// downAgain: the event saying a third of the serving set is down
	// again, with no early election left in the era, was emitted.
	downAgain bool
}

func loadEarly(kv store.KV, era uint64) (earlyRecord, bool) {
	v := kv.Get(earlyKey(era))
	if v == nil {
		return earlyRecord{}, false
	}
	r := codec.NewReader(v)
	x := earlyRecord{height: r.Varint()}
	flag := r.U8()
	if err := r.Done(); err != nil || flag > 1 {
		panic(fmt.Sprintf("corrupt early election record of era %d: %v", era, err))
	}
	x.downAgain = flag == 1
	return x, true
}

func (x earlyRecord) save(kv store.KV, era uint64) {
	w := codec.NewWriter(12)
	w.Varint(x.height)
	w.Bool(x.downAgain)
	kv.Set(earlyKey(era), w.Bytes())
}

// EarlyElection returns the height at which economy era held its early
// election, ok false if it held none.
func EarlyElection(kv store.KV, era uint64) (height int64, ok bool) {
	x, ok := loadEarly(kv, era)
	return x.height, ok
}

// DownMembers returns the serving gatekeepers (Gatekeepers) that src
// finds down at this block, in list order.
func DownMembers(ctx *block.Context, src VoterSource) []crypto.PublicKey {
	var down []crypto.PublicKey
	for _, m := range Gatekeepers(ctx.KV) {
		if src.Down(ctx, m) {
			down = append(down, m)
		}
	}
	return down
}

// ElectEarly elects the set of era e+1 now, e being the economy era of
// this block (not its last: the era-end election runs there), as the
// era-end election would (the same candidates, Down ones excluded, the
// same Phragmén, record gk/era/<e+1>, exposures, phala/gatekeeper/elected
// and the DKG), recording gk/early/<e> and emitting
// gatekeeper_early_election {era e+1, during_era e, reason, down: the
// serving members src finds down}. The election counts as e's one early
// election even when it elects nobody (its event says so, the serving set
// stays). Errors (nothing changed) wrap ErrNoEarlyElection:
// n_gatekeepers is 0; this is an era's last block; an elected set's DKG
// runs (Pending); era e already held an early election; the set of e+1
// already serves. The trigger (EndBlock) calls it with ReasonThirdDown;
// a governance motion may call it with its own reason.
func ElectEarly(ctx *block.Context, src VoterSource, reason string) error {
	sched := eras.Of(ctx)
	era, last := sched.Era(ctx.Height)
	if ctx.Params.NGatekeepers == 0 {
		return fmt.Errorf("%w: n_gatekeepers is 0", ErrNoEarlyElection)
	}
	if last {
		return fmt.Errorf("%w: height %d is the last block of era %d, whose election of era %d runs now", ErrNoEarlyElection, ctx.Height, era, era+1)
	}
	if p, ok := Pending(ctx.KV); ok {
		return fmt.Errorf("%w: the set elected for era %d is running its DKG", ErrNoEarlyElection, p)
	}
	if h, ok := EarlyElection(ctx.KV, era); ok {
		return fmt.Errorf("%w: era %d held its early election at height %d (one per era); the next election is at height %d",
			ErrNoEarlyElection, era, h, sched.End(era))
	}
	if rec := Election(ctx.KV, era+1); rec != nil && rec.Status == api.ElectionActive {
		return fmt.Errorf("%w: the set of era %d serves already", ErrNoEarlyElection, era+1)
	}
	earlyRecord{height: ctx.Height}.save(ctx.KV, era)
	ctx.Event("gatekeeper_early_election", "era", strconv.FormatUint(era+1, 10), "during_era", strconv.FormatUint(era, 10),
		"reason", reason, "down", hexKeys(DownMembers(ctx, src)))
	return elect(ctx, src, era+1)
}

// checkLiveness is the early election's trigger, run at every block but
// an era's last: when n_gatekeepers > 0, no elected set's DKG runs, and
// at least ⌈n/3⌉ of the n serving gatekeepers are down, it calls
// ElectEarly (ReasonThirdDown); if era already held its early election,
// it emits gatekeeper_set_down {era, down, early_election} once instead
// and nothing more happens until the era end.
func checkLiveness(ctx *block.Context, src VoterSource, era uint64) error {
	if ctx.Params.NGatekeepers == 0 {
		return nil
	}
	if _, ok := Pending(ctx.KV); ok {
		return nil
	}
	n := len(Gatekeepers(ctx.KV))
	down := DownMembers(ctx, src)
	if n == 0 || 3*len(down) < n { // fewer than ⌈n/3⌉
		return nil
	}
	if x, ok := loadEarly(ctx.KV, era); ok {
		if !x.downAgain {
			x.downAgain = true
			x.save(ctx.KV, era)
			ctx.Event("gatekeeper_set_down", "era", strconv.FormatUint(era, 10), "down", hexKeys(down),
				"early_election", strconv.FormatInt(x.height, 10),
				"reason", "a third of the serving set is down and this era's early election was held; the next election is at the era's end")
		}
		return nil
	}
	if rec := Election(ctx.KV, era+1); rec != nil && rec.Status == api.ElectionActive {
		return nil
	}
	return ElectEarly(ctx, src, ReasonThirdDown)
}

func hexKeys(ks []crypto.PublicKey) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = k.Hex()
	}
	return strings.Join(s, ",")
}
