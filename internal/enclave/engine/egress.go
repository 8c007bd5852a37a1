package engine

import (
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// Bounds on what contracts make this pRuntime hold and the relayer carry
// (seed: "no input stops the egress"). Messages and bytes count topics plus
// payloads. One message is at most vm.MaxTopicBytes + vm.MaxValueBytes
// (1 MiB + 128 B) plus about 150 bytes of origin, sequence and signature,
// so it always fits in a transaction (api.Params.MaxTxBytes, 4 MiB by
// default) and in an egress page of MinEgressPageBytes.
//
// Both bounds are functions of the chain alone (a contract's messages are
// emitted and acknowledged at the same heights on every replica), so every
// replica fails the same commands.
const (
	// MaxContractEgressPerBlock bounds what one contract emits in one block.
	MaxContractEgressPerBlock = 4 << 20
	// MaxContractPendingEgress bounds one contract's messages emitted but
	// not yet seen back on chain. A command that would exceed either bound
	// fails alone (contracts.ErrEgressBudget): its writes are reverted,
	// its messages dropped; the next command runs normally.
	MaxContractPendingEgress = 16 << 20
	// MinEgressPageBytes is the smallest page EgressPage needs to return
	// any message whole (a page always holds at least one message).
	MinEgressPageBytes = 2 << 20
)

// resState is the engine's bookkeeping for bounded resources.
type resState struct {
	ck ckpt
	// egressPos numbers egress messages in the order they were queued,
	// from 1 (positions are not persisted: they restart at 1 with the
	// process). egressNext is the next position.
	egressPos  map[string]uint64
	egressNext uint64
	// Queries: slots bound how many run at once.
	qonce  sync.Once
	qslots chan struct{}
}

func egressKey(m *api.Message) string {
	return string(binary.BigEndian.AppendUint64(m.Origin.Encode(), m.Seq))
}

// egressPositions numbers the messages queued since the last call and
// forgets acknowledged ones. New messages are only ever appended, so
// numbering lazily in list order is numbering in queue order.
func (e *Engine) egressPositions() {
	if e.egressPos == nil {
		e.egressPos = map[string]uint64{}
	}
	for i := range e.st.egress {
		k := egressKey(&e.st.egress[i].Message)
		if _, ok := e.egressPos[k]; !ok {
			e.egressNext++
			e.egressPos[k] = e.egressNext
		}
	}
	if len(e.egressPos) > 2*len(e.st.egress)+64 {
		live := make(map[string]uint64, len(e.st.egress))
		for i := range e.st.egress {
			k := egressKey(&e.st.egress[i].Message)
			live[k] = e.egressPos[k]
		}
		e.egressPos = live
	}
}

// EgressPage returns signed messages waiting to be put on chain, in queue
// order, starting after position after (0: from the first), up to
// maxBytes of encoded messages but always at least one if any is left, so
// a page of MinEgressPageBytes holds at least one whole message. next is
// the position of the page's last message (pass it as after for the next
// page; equal to after if the page is empty); more says whether messages
// follow. Positions restart at 1 when pRuntime restarts: a reader whose
// cursor is past the end gets an empty page and starts again from 0.
// Acknowledged messages leave the egress without shifting others.
func (e *Engine) EgressPage(after uint64, maxBytes int) (page []api.SignedMessage, next uint64, more bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.egressPositions()
	next = after
	size := 0
	for i := range e.st.egress {
		m := e.st.egress[i]
		pos := e.egressPos[egressKey(&m.Message)]
		if pos <= after {
			continue
		}
		n := len(api.EncodeSignedMessages([]api.SignedMessage{m}))
		if len(page) > 0 && size+n > maxBytes {
			return page, next, true
		}
		page = append(page, m)
		size += n
		next = pos
	}
	return page, next, false
}

// pendingEgress is the bytes (topics plus payloads) of o's messages not
// yet seen back on chain.
func (e *Engine) pendingEgress(o api.Origin) int {
	n := 0
	for i := range e.st.egress {
		if m := &e.st.egress[i].Message; m.Origin == o {
			n += len(m.Topic) + len(m.Payload)
		}
	}
	return n
}

// egressBudget is what contract r may still emit at height: the least of
// its per-block and its pending budget.
func (e *Engine) egressBudget(id crypto.PublicKey, r *running, height int64) int {
	r.atBlock(height)
	pending := e.pendingEgress(api.KeyOrigin(api.OriginContract, id))
	return max(0, min(MaxContractEgressPerBlock-r.blockBytes, MaxContractPendingEgress-pending))
}

// MaxStateChangePerBlock bounds the state changes (locations and
// encrypted values, as api.StateUpdate carries them) one contract's calls
// make in one block: a call that would exceed it fails alone
// (contracts.ErrStateBudget: its writes reverted). With the early cut at
// stateCutBytes (a block starts with less than that pending), every state
// update then fits in api.MaxStateUpdateBytes, so a contract's update
// never blocks its egress; one value of the largest size (1 MiB) fits.
const MaxStateChangePerBlock = 1<<20 + 256<<10

// stateBudget is what contract r's calls may still change at height.
func (r *running) stateBudget(height int64) int {
	r.atBlock(height)
	return max(0, MaxStateChangePerBlock-r.blockState)
}

// atBlock resets r's per-block counters when height is a new block.
func (r *running) atBlock(height int64) {
	if r.blockHeight != height {
		r.blockHeight, r.blockBytes, r.blockState = height, 0, 0
	}
}

// Query limits.
const (
	// QueryTimeout bounds a query's wait for a slot, and its contract
	// call's wall-clock time: the VM call stops when it passes (or when
	// the caller goes away).
	QueryTimeout = 2 * time.Second
	// MaxConcurrentQueries bounds the queries running at once; others wait
	// (within their timeout). Each may hold an instance of up to
	// vm.DefaultMemoryLimitPages.
	MaxConcurrentQueries = 4
)

// ErrBusy: a query waited for a free slot until its deadline or until its
// caller went away.
var ErrBusy = errors.New("busy")

func (e *Engine) querySlots() chan struct{} {
	e.qonce.Do(func() { e.qslots = make(chan struct{}, MaxConcurrentQueries) })
	return e.qslots
}
