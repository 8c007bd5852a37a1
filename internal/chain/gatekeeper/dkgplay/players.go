// Package dkgplay plays honest elected gatekeepers in their set's DKG for
// the chain's tests (internal/chain/gatekeeper at the module level,
// internal/chain/app through the app): each member runs a real
// threshold.Run and answers the chain's queue as its pRuntime does
// (internal/enclave/engine/dkg.go). Test support only.
package dkgplay

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"testing"

	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/xof/blake2xb"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/threshold"
)

// gatekeeperModule is the gatekeeper module's origin name (this package
// does not import the module, whose own tests use it).
const gatekeeperModule = "gatekeeper"

// Players are honest elected members taking part in their set's DKG
// as their pRuntimes do (internal/enclave/engine/dkg.go), each with a
// real threshold.Run: they read the chain's queue block by block, in
// order (feed), and answer with their DKG messages (origin WORKER) for
// the next block: a DKG key when the chain collects keys; deals when
// dealing begins (a single participant posts a result it made alone:
// threshold.EncodeResult([]int{0}, []kyber.Point{x·G})); a response to
// each participant's deals that came within the deal window; a
// justification to a complaint about their deal; the result once their
// Run is certified (or at the chain's timeout). A muted topic of a
// member (mute) is one it never posts: a late member.
type Players struct {
	tb     testing.TB
	params api.Params
	ps     []*Player
}

// Player is one member's state in the attempt it follows.
type Player struct {
	node   crypto.PublicKey
	mute   map[string]bool
	st     *api.DkgState // the attempt's last announced phase, nil if none
	Seed   [32]byte
	run    *threshold.Run
	Done   bool             // result made (posted unless muted)
	Share  *threshold.Share // the member's share once done
	Result []byte           // and its result's body
}

// New returns honest players for the members nodes.
func New(tb testing.TB, p api.Params, nodes ...crypto.PublicKey) *Players {
	d := &Players{tb: tb, params: p}
	for _, n := range nodes {
		d.ps = append(d.ps, &Player{node: n, mute: map[string]bool{}})
	}
	return d
}

// player returns node's player, nil if it plays none.
func (d *Players) Player(node crypto.PublicKey) *Player {
	for _, p := range d.ps {
		if p.node == node {
			return p
		}
	}
	return nil
}

// mute makes node never post messages of topics.
func (d *Players) Mute(node crypto.PublicKey, topics ...string) {
	for _, t := range topics {
		d.Player(node).mute[t] = true
	}
}

// feed has every player process the queue's messages of the block at
// height, in order, and returns the messages they post in reply.
func (d *Players) Feed(height int64, msgs []api.Message) []api.Message {
	d.tb.Helper()
	var out []api.Message
	for i := range msgs {
		m := &msgs[i]
		fromChain := m.Origin == api.ModuleOrigin(gatekeeperModule)
		for _, p := range d.ps {
			switch {
			case fromChain && m.Topic == api.TopicDkgRound:
				st, err := api.DecodeDkgState(m.Payload)
				if err != nil {
					d.tb.Fatalf("DKG round: %v", err)
				}
				out = append(out, d.onRound(p, st)...)
			case fromChain && m.Topic == api.TopicDkgTimeout:
				out = append(out, d.onTimeout(p, m)...)
			case m.Origin.Kind == api.OriginWorker && slices.Contains([]string{api.TopicDkgDeals, api.TopicDkgResponse, api.TopicDkgJustification}, m.Topic):
				out = append(out, d.onMessage(p, height, m)...)
			}
		}
	}
	return out
}

// post is p's message of topic with body in its attempt, nil if muted.
func (p *Player) post(topic string, body []byte) []api.Message {
	if p.mute[topic] {
		return nil
	}
	return []api.Message{{Origin: api.KeyOrigin(api.OriginWorker, p.node), Topic: topic,
		Payload: (&api.DkgMessage{Era: p.st.Era, Attempt: p.st.Attempt, Body: body}).Encode()}}
}

func (d *Players) onRound(p *Player, st *api.DkgState) []api.Message {
	d.tb.Helper()
	mine := p.st != nil && p.st.Era == st.Era && p.st.Attempt == st.Attempt
	switch st.Phase {
	case api.DkgFailed:
		if p.st != nil && p.st.Era == st.Era {
			*p = Player{node: p.node, mute: p.mute}
		}
	case api.DkgCollectingKeys:
		if !slices.Contains(st.Members, p.node) {
			return nil
		}
		*p = Player{node: p.node, mute: p.mute, st: st}
		p.Seed = sha256.Sum256(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(append([]byte("dkg seed"), p.node[:]...), st.Era), st.Attempt))
		return p.post(api.TopicDkgKey, threshold.DKGKeyBody(p.Seed, st.Era, st.Attempt, p.node[:]))
	case api.DkgDealing:
		if !mine || !slices.Contains(st.Participants, p.node) {
			return nil
		}
		p.st = st
		if len(st.Participants) == 1 {
			x := threshold.Suite.Scalar().Pick(blake2xb.New(append([]byte("solo"), p.Seed[:]...)))
			commits := []kyber.Point{threshold.Suite.Point().Mul(x, nil)}
			body, err := threshold.EncodeResult([]int{0}, commits)
			if err != nil {
				d.tb.Fatal(err)
			}
			p.Done, p.Share, p.Result = true, &threshold.Share{Index: 0, T: 1, N: 1, V: x, Commits: commits}, body
			return p.post(api.TopicDkgResult, body)
		}
		pts := make([]kyber.Point, len(st.Participants))
		for i, q := range st.Participants {
			k := st.Key(q)
			pts[i] = threshold.Suite.Point()
			if err := pts[i].UnmarshalBinary(k[:]); err != nil {
				d.tb.Fatalf("DKG key of %x: %v", q[:2], err)
			}
		}
		r, err := threshold.NewRun(p.Seed, pts, int(st.T))
		if err != nil {
			d.tb.Fatalf("start the DKG: %v", err)
		}
		p.run = r
		if p.mute[api.TopicDkgDeals] {
			return nil
		}
		deals, err := r.Deals()
		if err != nil {
			d.tb.Fatal(err)
		}
		return p.post(api.TopicDkgDeals, deals)
	}
	return nil
}

func (d *Players) onTimeout(p *Player, m *api.Message) []api.Message {
	d.tb.Helper()
	msg, err := api.DecodeDkgMessage(m.Payload)
	if err != nil {
		d.tb.Fatalf("DKG timeout: %v", err)
	}
	if p.run == nil || p.Done || p.st.Era != msg.Era || p.st.Attempt != msg.Attempt {
		return nil
	}
	p.run.Timeout()
	return d.result(p)
}

// onMessage processes a participant's deals (within the deal window, as
// members apply it), response or justification.
func (d *Players) onMessage(p *Player, height int64, m *api.Message) []api.Message {
	d.tb.Helper()
	if p.run == nil {
		return nil
	}
	msg, err := api.DecodeDkgMessage(m.Payload)
	if err != nil || msg.Era != p.st.Era || msg.Attempt != p.st.Attempt {
		return nil
	}
	from := slices.Index(p.st.Participants, m.Origin.Key)
	if from < 0 {
		return nil
	}
	var out []api.Message
	switch m.Topic {
	case api.TopicDkgDeals:
		if height-p.st.PhaseStart > d.params.DkgDealWindow() {
			return nil
		}
		resp, err := p.run.OnDeals(from, msg.Body)
		if err == nil && resp != nil {
			out = p.post(api.TopicDkgResponse, resp)
		}
	case api.TopicDkgResponse:
		just, err := p.run.OnResponse(msg.Body)
		if err == nil && just != nil {
			out = p.post(api.TopicDkgJustification, just)
		}
	case api.TopicDkgJustification:
		_ = p.run.OnJustification(msg.Body) // an error changes nothing, as on a pRuntime
	}
	return append(out, d.result(p)...)
}

// result makes p's result once its run is certified (once).
func (d *Players) result(p *Player) []api.Message {
	d.tb.Helper()
	if p.Done || !p.run.Certified() {
		return nil
	}
	sh, err := p.run.Result()
	if err != nil {
		d.tb.Fatalf("DKG result: %v", err)
	}
	body, err := threshold.EncodeResult(p.run.QUAL(), sh.Commits)
	if err != nil {
		d.tb.Fatal(err)
	}
	p.Done, p.Share, p.Result = true, sh, body
	return p.post(api.TopicDkgResult, body)
}
