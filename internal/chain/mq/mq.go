// Package mq owns the chain side of the message queue: per-origin
// sequences, and the admission of messages into a block's queue. Messages of
// chain origins (modules, transaction signers) get the next sequence of
// their origin; messages of off-chain origins (workers, contracts,
// gatekeepers) are admitted only when signed by the origin's registered key
// and carrying exactly the next sequence: no gaps, no repeats.
package mq

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/module"
	"github.com/phalago/phala/internal/chain/store"
)

// ReservedTopicPrefix starts the topics only chain modules may post to, so
// a handler of such a topic knows its messages come from the chain.
const ReservedTopicPrefix = "phala/"

// NextSeq returns the sequence the next message of o will carry.
func NextSeq(kv store.KV, o api.Origin) uint64 {
	v := kv.Get(api.NextSeqKey(o))
	if v == nil {
		return 0
	}
	n, k := binary.Uvarint(v)
	if k <= 0 {
		panic(fmt.Sprintf("corrupt sequence of %s", o))
	}
	return n
}

// SkipTo moves o's next sequence forward to next (nothing when it is
// already at or past next): every message of o with a sequence below next
// is then refused as stale (api.ErrAlreadyAccepted), and o's next message
// must carry next. The contracts module uses it when an arbitration
// overturns a contract's state update (docs/availability.md,
// "Arbitration"): the messages of the wrong history still in flight die.
func SkipTo(kv store.KV, o api.Origin, next uint64) {
	if next > NextSeq(kv, o) {
		setNextSeq(kv, o, next)
	}
}

func setNextSeq(kv store.KV, o api.Origin, n uint64) {
	kv.Set(api.NextSeqKey(o), binary.AppendUvarint(nil, n))
}

// Emit enqueues a message from a chain origin (a module or a signer),
// assigning its sequence.
func Emit(ctx *block.Context, o api.Origin, topic string, payload []byte) error {
	switch {
	case o.Kind.OffChain():
		return fmt.Errorf("%w: %s messages must be pushed signed", api.ErrInvalidCall, o.Kind)
	case o.Kind == api.OriginModule && (o.Module == "" || len(o.Module) > api.MaxModuleNameBytes):
		return fmt.Errorf("%w: module name must be 1 to %d bytes", api.ErrInvalidCall, api.MaxModuleNameBytes)
	case o.Kind != api.OriginModule && o.Kind != api.OriginAccount:
		return fmt.Errorf("%w: unknown origin kind %d", api.ErrInvalidCall, o.Kind)
	case o.Kind == api.OriginAccount && strings.HasPrefix(topic, ReservedTopicPrefix):
		return fmt.Errorf("%w: topics under %q are reserved for the chain's modules", api.ErrInvalidCall, ReservedTopicPrefix)
	}
	if err := checkShape(topic, payload); err != nil {
		return err
	}
	seq := NextSeq(ctx.KV, o)
	setNextSeq(ctx.KV, o, seq+1)
	enqueue(ctx, api.Message{Origin: o, Topic: topic, Seq: seq, Payload: payload})
	return nil
}

// Authorizer says whether key is currently allowed to send as an origin of
// the given kind (a registered, unexpired worker; a gatekeeper; a deployed
// contract).
type Authorizer func(kv store.KV, kind api.OriginKind, key crypto.PublicKey, height int64) error

// Push admits a signed message from an off-chain origin.
func Push(ctx *block.Context, m *api.SignedMessage, authorized Authorizer) error {
	o := m.Message.Origin
	if !o.Kind.OffChain() {
		return fmt.Errorf("%w: %s messages are created by the chain, not pushed", api.ErrUnknownOrigin, o.Kind)
	}
	if err := checkShape(m.Message.Topic, m.Message.Payload); err != nil {
		return err
	}
	if err := authorized(ctx.KV, o.Kind, o.Key, ctx.Height); err != nil {
		return err
	}
	if !m.Verify(ctx.ChainID) {
		return fmt.Errorf("%w: message of %s is not signed by its origin", api.ErrBadSignature, o)
	}
	want := NextSeq(ctx.KV, o)
	if m.Message.Seq < want {
		return fmt.Errorf("%w: %s sequence %d (the next expected is %d)", api.ErrAlreadyAccepted, o, m.Message.Seq, want)
	}
	if m.Message.Seq != want {
		return fmt.Errorf("%w: %s sent sequence %d, the next expected is %d", api.ErrBadSequence, o, m.Message.Seq, want)
	}
	setNextSeq(ctx.KV, o, want+1)
	enqueue(ctx, m.Message)
	return nil
}

func checkShape(topic string, payload []byte) error {
	if topic == "" || len(topic) > api.MaxTopicBytes {
		return fmt.Errorf("%w: topic must be 1 to %d bytes", api.ErrInvalidCall, api.MaxTopicBytes)
	}
	if len(payload) > api.MaxPayloadBytes {
		return fmt.Errorf("%w: payload of %d bytes exceeds %d", api.ErrTooLarge, len(payload), api.MaxPayloadBytes)
	}
	return nil
}

func enqueue(ctx *block.Context, m api.Message) {
	ctx.Emit(m)
	ctx.Event("message", "origin", m.Origin.String(), "topic", m.Topic, "seq", strconv.FormatUint(m.Seq, 10))
}

// Router is what the queue needs of the module table to admit and route
// pushed messages: the authorizer of each off-chain origin kind, and the
// module consuming each (origin kind, topic).
type Router interface {
	Authorize(kv store.KV, kind api.OriginKind, key crypto.PublicKey, height int64) error
	Deliver(ctx *block.Context, m *api.Message)
}

// Spec returns the queue's entry in the chain's module table: it owns the
// sequences ("q/"), executes post_message and push_message (admitting a
// pushed message through r, then handing it to the module that consumes
// it; it stays in the queue whatever that module makes of it), and serves
// the next-sequence reads and a block's messages.
func Spec(r Router) *module.Module {
	return &module.Module{
		Name:        "mq",
		KeyPrefixes: []string{"q/"},
		Calls: map[api.CallKind]module.CallHandler{
			api.CallPostMessage: func(ctx *block.Context, signer crypto.PublicKey, c api.Call) error {
				p := c.(*api.PostMessage)
				return Emit(ctx, api.KeyOrigin(api.OriginAccount, signer), p.Topic, p.Payload)
			},
			api.CallPushMessage: func(ctx *block.Context, _ crypto.PublicKey, c api.Call) error {
				p := c.(*api.PushMessage)
				if err := Push(ctx, &p.Message, r.Authorize); err != nil {
					return err
				}
				r.Deliver(ctx, &p.Message.Message)
				return nil
			},
		},
		StateQueries: []string{api.QueryNextSeq},
		Queries:      map[string]module.Querier{api.QueryMessages: queryMessages},
	}
}

// queryMessages answers a block's messages (the last committed block at
// height 0), verified by the client against the app hash.
func queryMessages(st *store.Store, req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	h := req.Height
	if h == 0 {
		h = st.Height()
	}
	bm, err := st.Messages(h)
	if err != nil {
		return nil, err
	}
	return &abci.ResponseQuery{Height: h, Value: bm.Encode()}, nil
}
