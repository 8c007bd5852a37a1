package app

import (
	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/gatekeeper/dkgplay"
)

// dkgMembers are workers of an app harness playing their elected set's
// DKG (dkgPlayers): the messages they post go into the next block as
// push_message transactions (origin WORKER, signed by the member, paid
// by alice), and they read every block's queue from the chain's
// messages query.
type dkgMembers struct {
	*dkgplay.Players
	h    *harness
	keys map[crypto.PublicKey]*crypto.KeyPair
	outs []api.Message
}

// dkgMembers returns players for the workers ws.
func (h *harness) dkgMembers(ws ...*worker) *dkgMembers {
	d := &dkgMembers{h: h, keys: map[crypto.PublicKey]*crypto.KeyPair{}}
	var nodes []crypto.PublicKey
	for _, w := range ws {
		nodes = append(nodes, w.identity.Public())
		d.keys[w.identity.Public()] = w.identity
	}
	d.Players = dkgplay.New(h.t, h.params(), nodes...)
	return d
}

// params are the chain's parameters.
func (h *harness) params() api.Params {
	h.t.Helper()
	p, err := api.DecodeParams(h.app.store.Get(api.KeyParams))
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// post has w post a DKG message of topic in the next block, before the
// members' own.
func (d *dkgMembers) post(w *worker, topic string, m *api.DkgMessage) {
	d.keys[w.identity.Public()] = w.identity
	d.outs = append([]api.Message{{Origin: api.KeyOrigin(api.OriginWorker, w.identity.Public()), Topic: topic, Payload: m.Encode()}}, d.outs...)
}

// read has the members read the queue of the last block.
func (d *dkgMembers) read() {
	d.h.t.Helper()
	d.outs = append(d.outs, d.Feed(d.h.height, d.h.messages(d.h.height).Messages)...)
}

// block commits the next block with the messages posted for it (every
// push must be accepted), then has the members read its queue.
func (d *dkgMembers) block() *abci.ResponseFinalizeBlock {
	d.h.t.Helper()
	var txs [][]byte
	n := d.h.nonce(alice)
	for i, m := range d.outs {
		txs = append(txs, d.h.tx(alice, n+uint64(i), d.h.signed(d.keys[m.Origin.Key], m.Origin.Kind, m.Topic, m.Payload)))
	}
	res := d.h.block(txs...)
	for i, r := range res.TxResults {
		if r.Code != 0 {
			d.h.t.Fatalf("push of %s: %s", d.outs[i].Topic, r.Log)
		}
	}
	d.outs = nil
	d.read()
	return res
}
