package computation

// The mid-era liveness signal (docs/economy.md, "Liveness within an era";
// docs/keys.md, "A third of the set down"): the 1/4 rule judges a node
// once per era; Down says, at any block, whether a node has stopped
// answering its heartbeat challenges, so the gatekeeper module can
// re-elect a set with a third of its members down before the era ends.

import (
	"fmt"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/store"
)

// DownAfter is how many of a node's heartbeat challenges must go
// unanswered through their whole window, after the latest challenge it
// answered in time, for Down to report it: one miss is a relayer's
// hiccup, two in a row a node that stopped.
const DownAfter = 2

// maxMissed caps the counter kept in state (Down needs DownAfter).
const maxMissed = 255

// livenessKey is the state key of node's liveness record ("cm/lv/" ‖
// node): varint height of the latest challenge it answered within its
// window (0: none) ‖ uvarint count of its challenges after that one whose
// window closed unanswered and that left the outstanding list
// (api.ChallengeKey) since, capped at 255.
func livenessKey(node crypto.PublicKey) []byte { return append([]byte("cm/lv/"), node[:]...) }

// liveness is a node's liveness record (livenessKey).
type liveness struct {
	answered int64
	missed   uint64
}

func loadLiveness(kv store.KV, node crypto.PublicKey) liveness {
	v := kv.Get(livenessKey(node))
	if v == nil {
		return liveness{}
	}
	r := codec.NewReader(v)
	l := liveness{answered: r.Varint(), missed: r.Uvarint()}
	if err := r.Done(); err != nil {
		panic(fmt.Sprintf("corrupt liveness record of %s: %v", node.Hex(), err))
	}
	return l
}

func (l liveness) save(kv store.KV, node crypto.PublicKey) {
	w := codec.NewWriter(20)
	w.Varint(l.answered)
	w.Uvarint(l.missed)
	kv.Set(livenessKey(node), w.Bytes())
}

// answered records that node answered its challenge of height h in time:
// if h is its latest answered challenge, the misses counted before it no
// longer matter (every challenge dropped as missed so far is older).
func answered(kv store.KV, node crypto.PublicKey, h int64) {
	l := loadLiveness(kv, node)
	if h <= l.answered {
		return
	}
	liveness{answered: h}.save(kv, node)
}

// missed records that node's challenges of heights hs closed unanswered
// and left its outstanding list (dropped at its next challenge, or
// answered late); those older than its latest answered challenge do not
// count.
func missed(kv store.KV, node crypto.PublicKey, hs ...int64) {
	l := loadLiveness(kv, node)
	n := l.missed
	for _, h := range hs {
		if h > l.answered && n < maxMissed {
			n++
		}
	}
	if n != l.missed {
		l.missed = n
		l.save(kv, node)
	}
}

// Down reports whether node has stopped answering its heartbeat
// challenges as of block height: at least DownAfter (2) of its challenges
// issued after the latest one it answered within heartbeat_window went
// unanswered through their whole window (a window closes before height
// when challenge + heartbeat_window < height). Those still on its
// outstanding list (api.ChallengeKey) are counted here; those dropped
// from it are counted in its liveness record (cm/lv/<node>). A node never
// challenged, or whose last challenges are still open, is not down.
// Always false while heartbeats_per_era is 0. Cost: two state reads.
func Down(kv store.KV, node crypto.PublicKey, height int64, p api.Params) bool {
	if p.HeartbeatsPerEra == 0 {
		return false
	}
	l := loadLiveness(kv, node)
	n := l.missed
	for _, h := range outstanding(kv, node) {
		if h > l.answered && h+int64(p.HeartbeatWindow) < height {
			n++
		}
	}
	return n >= DownAfter
}
