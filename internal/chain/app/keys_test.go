package app

// The shared helpers of contract key provisioning (docs/keys.md,
// "Contract key derivation"): the genesis gatekeeper announces the
// MasterKey's public key (the key set of era 0, threshold 1, is the
// genesis gatekeepers), its member sends partials sealed to the workers
// (api.KeyPartials), and for a first deployment one of the round's
// workers reports the contract's keys it derived (api.ContractKeyed).

import (
	"encoding/binary"
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"
	"go.dedis.ch/kyber/v3/group/edwards25519"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// nextSeq is the chain's next sequence of origin o.
func (h *harness) nextSeq(o api.Origin) uint64 {
	h.t.Helper()
	v := h.query(api.QueryNextSeq, o.Encode(), false).Value
	if v == nil {
		return 0
	}
	n, k := binary.Uvarint(v)
	if k <= 0 {
		h.t.Fatalf("next seq %x", v)
	}
	return n
}

// signed is a push_message of a message from key's origin of kind with
// the origin's next sequence: the chain's, or past the messages signed
// here for the block being built (several pushes in one block).
func (h *harness) signed(key *crypto.KeyPair, kind api.OriginKind, topic string, payload []byte) *api.PushMessage {
	h.t.Helper()
	o := api.KeyOrigin(kind, key.Public())
	if h.seqs == nil {
		h.seqs = map[string]blockSeq{}
	}
	seq := h.nextSeq(o)
	if s, ok := h.seqs[string(o.Encode())]; ok && s.height == h.height {
		seq = s.next
	}
	h.seqs[string(o.Encode())] = blockSeq{height: h.height, next: seq + 1}
	return &api.PushMessage{Message: api.SignMessage(chainID, api.Message{Origin: o, Topic: topic, Seq: seq, Payload: payload}, key)}
}

// pushed pushes a message (signed) in a block of its own, paid by Alice,
// and returns the push's result; the push must be accepted.
func (h *harness) pushed(key *crypto.KeyPair, kind api.OriginKind, topic string, payload []byte) *abci.ExecTxResult {
	h.t.Helper()
	r := h.block(h.tx(alice, h.nonce(alice), h.signed(key, kind, topic, payload))).TxResults[0]
	if r.Code != 0 {
		h.t.Fatalf("push of %s from %s refused: %s", topic, key.Public().Short(), r.Log)
	}
	return r
}

// masterPoint is a fresh MasterKey public key: a random edwards25519
// point, canonically encoded.
func masterPoint() [32]byte {
	suite := edwards25519.NewBlakeSHA256Ed25519()
	b, err := suite.Point().Pick(suite.RandomStream()).MarshalBinary()
	if err != nil {
		panic(err)
	}
	return [32]byte(b)
}

// announceMasterKey has gk, a registered genesis gatekeeper, announce a
// fresh MasterKey public key; the chain must adopt the key set of era 0
// (the genesis gatekeepers, T 1, that point) and serve it. It returns the
// point.
func (h *harness) announceMasterKey(gk *worker) [32]byte {
	h.t.Helper()
	pt := masterPoint()
	h.pushed(gk.identity, api.OriginGatekeeper, api.TopicMasterKey, pt[:])
	s := h.keySet(0)
	if s == nil || s.T != 1 || len(s.Commits) != 1 || s.Commits[0] != pt || s.Index(gk.identity.Public()) < 0 {
		h.t.Fatalf("key set of era 0 after the MasterKey announcement: %+v", s)
	}
	return pt
}

// keySet is the key set of era as stored, nil if none.
func (h *harness) keySet(era uint64) *api.KeySet {
	h.t.Helper()
	v := h.app.store.Get(api.KeySetKey(era))
	if v == nil {
		return nil
	}
	s, err := api.DecodeKeySet(v)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// keyRound is the stored round, nil if none.
func (h *harness) keyRound(round [32]byte) *api.KeyRound {
	h.t.Helper()
	v := h.app.store.Get(api.KeyRoundKey(round))
	if v == nil {
		return nil
	}
	r, err := api.DecodeKeyRound(v)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// keyPartials is member's partials of upload's key for the workers ws:
// key era 0, epoch 0, for workers, sealed with member's ECDH key (the
// sealed bytes are opaque to the chain).
func keyPartials(member *worker, upload [32]byte, ws ...*worker) *api.KeyPartials {
	p := &api.KeyPartials{Upload: upload, Purpose: api.KeyForWorkers, MemberE: member.ecdh.Public()}
	for i, w := range ws {
		p.Workers = append(p.Workers, api.SealedKey{Worker: w.identity.Public(), Sealed: []byte(fmt.Sprintf("partial %d", i))})
	}
	return p
}

// arbiterPartials is member's partials of the key of contract (of upload)
// for the arbiters ws of its dispute of the update at disputed.
func arbiterPartials(member *worker, upload [32]byte, contract crypto.PublicKey, disputed int64, ws ...*worker) *api.KeyPartials {
	p := keyPartials(member, upload, ws...)
	p.Purpose, p.Contract, p.Disputed = api.KeyForArbiters, contract, disputed
	return p
}

// sendPartials pushes member's partials p (worker origin) in a block of
// its own and returns the push's result.
func (h *harness) sendPartials(member *worker, p *api.KeyPartials) *abci.ExecTxResult {
	h.t.Helper()
	return h.pushed(member.identity, api.OriginWorker, api.TopicKeyPartials, p.Encode())
}

// reportKeys pushes w's report of the keys (id, ecdh) it derived from
// round of upload in a block of its own and returns the push's result.
func (h *harness) reportKeys(w *worker, round, upload [32]byte, id, ecdh crypto.PublicKey) *abci.ExecTxResult {
	h.t.Helper()
	k := &api.ContractKeyed{Round: round, Upload: upload, Identity: id, Ecdh: ecdh}
	return h.pushed(w.identity, api.OriginWorker, api.TopicContractKeyed, k.Encode())
}

// deployedAs is the identity of the contract deployed from upload, ok
// false before its deployment.
func (h *harness) deployedAs(upload [32]byte) (crypto.PublicKey, bool) {
	h.t.Helper()
	v := h.query(api.QueryContractUpload, upload[:], false).Value
	if v == nil {
		return crypto.PublicKey{}, false
	}
	return crypto.PublicKey(v), true
}

// provision is the key set's provisioning of upload's contract to the
// workers ws by member, the one member of the genesis key set (T 1): its
// partials and, when they complete the round of a contract not deployed
// yet, the reports of the contract's keys (id, ecdh) of a majority of ws
// (the first ones). It returns the result of the push in which the chain
// took or ignored the grant (the partials for a deployed contract, the
// last report otherwise), or of the partials if they were ignored.
func (h *harness) provision(member *worker, upload [32]byte, id, ecdh crypto.PublicKey, ws ...*worker) *abci.ExecTxResult {
	h.t.Helper()
	_, deployed := h.deployedAs(upload)
	p := keyPartials(member, upload, ws...)
	r := h.sendPartials(member, p)
	if deployed || event(r, "key_round_complete", "upload_id") == "" {
		return r
	}
	var r2 *abci.ExecTxResult
	for _, w := range ws[:len(ws)/2+1] { // a majority of the round's workers deploys
		r2 = h.reportKeys(w, p.Round(), upload, id, ecdh)
	}
	return r2
}
