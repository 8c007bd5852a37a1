package api

import (
	"fmt"

	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Limits of messages.
const (
	MaxTopicBytes      = 128
	MaxModuleNameBytes = 32
	MaxPayloadBytes    = 4 << 20
	MaxBlockMessages   = 1 << 20

	minMessageBytes = 5 // module origin with an empty name, empty topic, seq, empty payload
)

// Topics of messages the chain's modules emit.
const (
	// TopicWorkerRegistered: payload is the encoded WorkerRegistered (the
	// WorkerRecord of a new or renewed registration and the attestation
	// report that admitted it; origin: module "registry").
	TopicWorkerRegistered = "phala/registry/worker"
	// TopicMasterKey: payload is the 32-byte master public key the genesis
	// gatekeeper created (origin: that gatekeeper).
	TopicMasterKey = "phala/gatekeeper/master_key"
)

// OriginKind says who sent a message.
type OriginKind uint8

// Origins. Module and Account messages are created by the chain itself and
// carry no signature; the others are pushed by relayers and must be signed by
// the origin's registered key.
const (
	OriginModule     OriginKind = 1 // a chain module, by name
	OriginAccount    OriginKind = 2 // a transaction's signer
	OriginWorker     OriginKind = 3 // a registered worker's identity key
	OriginContract   OriginKind = 4 // a contract's identity key
	OriginGatekeeper OriginKind = 5 // a gatekeeper's identity key
)

func (k OriginKind) String() string {
	switch k {
	case OriginModule:
		return "module"
	case OriginAccount:
		return "account"
	case OriginWorker:
		return "worker"
	case OriginContract:
		return "contract"
	case OriginGatekeeper:
		return "gatekeeper"
	}
	return fmt.Sprintf("origin#%d", uint8(k))
}

// OffChain reports whether messages of this origin are pushed by relayers
// and must be signed.
func (k OriginKind) OffChain() bool {
	return k == OriginWorker || k == OriginContract || k == OriginGatekeeper
}

// Origin is the sender of a message: a module name or a 32-byte key.
type Origin struct {
	Kind   OriginKind
	Key    crypto.PublicKey // for every kind but OriginModule
	Module string           // for OriginModule
}

// ModuleOrigin returns the origin of a chain module.
func ModuleOrigin(name string) Origin { return Origin{Kind: OriginModule, Module: name} }

// KeyOrigin returns an origin identified by a public key.
func KeyOrigin(kind OriginKind, key crypto.PublicKey) Origin { return Origin{Kind: kind, Key: key} }

func (o Origin) String() string {
	if o.Kind == OriginModule {
		return "module:" + o.Module
	}
	return o.Kind.String() + ":" + o.Key.Hex()
}

// Encode returns the canonical bytes of the origin (also its state key).
func (o Origin) Encode() []byte {
	w := codec.NewWriter(34)
	o.encode(w)
	return w.Bytes()
}

func (o Origin) encode(w *codec.Writer) {
	w.U8(uint8(o.Kind))
	if o.Kind == OriginModule {
		w.String(o.Module)
	} else {
		w.Fixed(o.Key[:])
	}
}

func (o *Origin) decode(r *codec.Reader) {
	o.Kind = OriginKind(r.U8())
	switch o.Kind {
	case OriginModule:
		o.Module = r.String(MaxModuleNameBytes)
	case OriginAccount, OriginWorker, OriginContract, OriginGatekeeper:
		r.Fixed(o.Key[:])
	default:
		r.Fail(fmt.Errorf("%w: origin kind %d", codec.ErrBadFormat, o.Kind))
	}
}

// DecodeOrigin strictly decodes an origin.
func DecodeOrigin(b []byte) (Origin, error) {
	var o Origin
	r := codec.NewReader(b)
	o.decode(r)
	if err := r.Done(); err != nil {
		return o, fmt.Errorf("%w: origin: %v", ErrMalformed, err)
	}
	return o, nil
}

// Message is one entry of the queue: from Origin to the handlers of Topic,
// the Seq-th message of that origin (starting at 0).
type Message struct {
	Origin  Origin
	Topic   string
	Seq     uint64
	Payload []byte
}

func (m *Message) encode(w *codec.Writer) {
	m.Origin.encode(w)
	w.String(m.Topic)
	w.Uvarint(m.Seq)
	w.BytesField(m.Payload)
}

func (m *Message) decode(r *codec.Reader) {
	m.Origin.decode(r)
	m.Topic = r.String(MaxTopicBytes)
	m.Seq = r.Uvarint()
	m.Payload = r.BytesField(MaxPayloadBytes)
}

// Encode returns the canonical bytes of the message (the Merkle leaf).
func (m *Message) Encode() []byte {
	w := codec.NewWriter(64 + len(m.Payload))
	m.encode(w)
	return w.Bytes()
}

// DecodeMessage strictly decodes one message.
func DecodeMessage(b []byte) (*Message, error) {
	m := &Message{}
	r := codec.NewReader(b)
	m.decode(r)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: message: %v", ErrMalformed, err)
	}
	return m, nil
}

// SignedMessage is a message from an off-chain origin with the origin's
// signature over (chain id, message) under [ContextMessage].
type SignedMessage struct {
	Message   Message
	Signature crypto.Signature
}

// SignBytes returns the bytes an off-chain origin signs.
func (m *Message) SignBytes(chainID string) []byte {
	w := codec.NewWriter(96 + len(m.Payload))
	w.String(chainID)
	m.encode(w)
	return w.Bytes()
}

// SignMessage signs m for chainID with the origin's key.
func SignMessage(chainID string, m Message, key *crypto.KeyPair) SignedMessage {
	return SignedMessage{Message: m, Signature: key.Sign(ContextMessage, m.SignBytes(chainID))}
}

// Verify checks the signature against the origin's key.
func (s *SignedMessage) Verify(chainID string) bool {
	return s.Message.Origin.Kind.OffChain() &&
		s.Message.Origin.Key.Verify(ContextMessage, s.Message.SignBytes(chainID), s.Signature)
}

func (s *SignedMessage) encode(w *codec.Writer) {
	s.Message.encode(w)
	w.Fixed(s.Signature[:])
}

func decodeSignedMessage(r *codec.Reader) SignedMessage {
	var s SignedMessage
	s.Message.decode(r)
	r.Fixed(s.Signature[:])
	return s
}

// MessagesRoot is the Merkle root (RFC 6962 style, CometBFT's
// crypto/merkle) over the encoded messages of one block, in queue order.
func MessagesRoot(msgs []Message) []byte {
	leaves := make([][]byte, len(msgs))
	for i := range msgs {
		leaves[i] = msgs[i].Encode()
	}
	return merkle.HashFromByteSlices(leaves)
}

// BlockMessages is the answer to the mq query of one height: the block's
// messages and the state root of the same block, which together with the
// messages' root hash to the app hash in the header of Height+1.
type BlockMessages struct {
	Height    int64
	StateRoot []byte
	Messages  []Message
}

// Encode returns the canonical bytes.
func (b *BlockMessages) Encode() []byte {
	w := codec.NewWriter(64)
	w.Uvarint(uint64(b.Height))
	w.BytesField(b.StateRoot)
	w.Uvarint(uint64(len(b.Messages)))
	for i := range b.Messages {
		b.Messages[i].encode(w)
	}
	return w.Bytes()
}

// DecodeBlockMessages strictly decodes an mq query answer.
func DecodeBlockMessages(data []byte) (*BlockMessages, error) {
	r := codec.NewReader(data)
	b := &BlockMessages{}
	b.Height = int64(r.Uvarint())
	b.StateRoot = r.BytesField(64)
	n := r.Uvarint()
	// The smallest message encodes in minMessageBytes: bound the count by
	// the input before allocating.
	if n > MaxBlockMessages || n > uint64(r.Remaining()/minMessageBytes) {
		r.Fail(fmt.Errorf("%w: %d messages", codec.ErrTooLong, n))
	}
	for i := uint64(0); r.Err() == nil && i < n; i++ {
		var m Message
		m.decode(r)
		b.Messages = append(b.Messages, m)
	}
	if b.Height < 0 {
		r.Fail(codec.ErrBadFormat)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: block messages: %v", ErrMalformed, err)
	}
	return b, nil
}

// AppHash combines a block's state root and messages root into the app hash
// CometBFT commits to in the next header.
func AppHash(stateRoot, messagesRoot []byte) []byte {
	return merkle.HashFromByteSlices([][]byte{[]byte(DomainAppHash), stateRoot, messagesRoot})
}

// Verify checks the messages against an app hash (taken from the verified
// header of Height+1).
func (b *BlockMessages) Verify(appHash []byte) error {
	if got := AppHash(b.StateRoot, MessagesRoot(b.Messages)); string(got) != string(appHash) {
		return fmt.Errorf("%w: messages of height %d do not hash to the app hash", ErrBadProof, b.Height)
	}
	return nil
}
