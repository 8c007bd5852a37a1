package api

import (
	"crypto/sha256"
	"fmt"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Query sessions: a client's off-chain queries to one contract on one
// worker, after one signed handshake, authenticated by AES-GCM under the
// session's keys instead of a signature each way per query
// (docs/pruntime.md, "Query sessions").
//
//  1. The client sends QuerySessionOpen, signed by From under
//     ContextQuerySession: the contract, the worker, a fresh ephemeral
//     ECDH key, a nonce and the session's expiry (block time).
//  2. The worker checks it (signature, address, replay guard, expiry) and
//     answers QuerySessionAccept, signed by the contract's identity key
//     under ContextQuerySessionAccept: the open's hash, a session ID and
//     the worker's own fresh ephemeral ECDH key.
//  3. Both derive the session's two keys (channel.NewSessionKeys) from
//     ECDH(client ephemeral, worker ephemeral) and the hash of both
//     messages; SessionQuery and SessionAnswer are sealed under them, one
//     key per direction, numbered by Seq (also the AEAD nonce).
const (
	ContextQuerySession       crypto.Context = "phala/contract: query session open v1"
	ContextQuerySessionAccept crypto.Context = "phala/contract: query session accept v1"
	// SessionIDSize is the size of a session's ID (chosen by the worker).
	SessionIDSize = 16
)

// QuerySessionOpen is a client's request for a query session with a
// contract on one worker. From is the caller the contract sees for every
// query of the session.
type QuerySessionOpen struct {
	Contract  crypto.PublicKey // the contract's identity key
	Worker    crypto.PublicKey // the worker's identity key (never zero: sessions are off-chain)
	From      crypto.PublicKey // the client
	Ephemeral crypto.PublicKey // the client's fresh ECDH key for this session
	Nonce     [16]byte
	NotAfter  int64 // unix seconds (block time): the session ends then
	Signature crypto.Signature
}

// SignBytes returns the bytes From signs.
func (o *QuerySessionOpen) SignBytes() []byte {
	w := codec.NewWriter(160)
	w.Fixed(o.Contract[:])
	w.Fixed(o.Worker[:])
	w.Fixed(o.From[:])
	w.Fixed(o.Ephemeral[:])
	w.Fixed(o.Nonce[:])
	w.Varint(o.NotAfter)
	return w.Bytes()
}

// Encode returns the canonical bytes.
func (o *QuerySessionOpen) Encode() []byte { return append(o.SignBytes(), o.Signature[:]...) }

// Hash identifies the open (the accept and the session keys commit to it).
func (o *QuerySessionOpen) Hash() [32]byte { return sha256.Sum256(o.Encode()) }

// DecodeQuerySessionOpen strictly decodes an open.
func DecodeQuerySessionOpen(b []byte) (*QuerySessionOpen, error) {
	if len(b) > 256 {
		return nil, fmt.Errorf("%w: query session open of %d bytes", ErrTooLarge, len(b))
	}
	o := &QuerySessionOpen{}
	r := codec.NewReader(b)
	r.Fixed(o.Contract[:])
	r.Fixed(o.Worker[:])
	r.Fixed(o.From[:])
	r.Fixed(o.Ephemeral[:])
	r.Fixed(o.Nonce[:])
	o.NotAfter = r.Varint()
	r.Fixed(o.Signature[:])
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: query session open: %v", ErrMalformed, err)
	}
	return o, nil
}

// QuerySessionAccept is the worker's answer to an open, signed by the
// contract's identity key.
type QuerySessionAccept struct {
	Open      [32]byte // QuerySessionOpen.Hash
	ID        [SessionIDSize]byte
	Ephemeral crypto.PublicKey // the worker's fresh ECDH key for this session
	Signature crypto.Signature
}

// SignBytes returns the bytes the contract signs.
func (a *QuerySessionAccept) SignBytes() []byte {
	w := codec.NewWriter(96)
	w.Fixed(a.Open[:])
	w.Fixed(a.ID[:])
	w.Fixed(a.Ephemeral[:])
	return w.Bytes()
}

// Encode returns the canonical bytes.
func (a *QuerySessionAccept) Encode() []byte { return append(a.SignBytes(), a.Signature[:]...) }

// DecodeQuerySessionAccept strictly decodes an accept.
func DecodeQuerySessionAccept(b []byte) (*QuerySessionAccept, error) {
	if len(b) > 256 {
		return nil, fmt.Errorf("%w: query session accept of %d bytes", ErrTooLarge, len(b))
	}
	a := &QuerySessionAccept{}
	r := codec.NewReader(b)
	r.Fixed(a.Open[:])
	r.Fixed(a.ID[:])
	r.Fixed(a.Ephemeral[:])
	r.Fixed(a.Signature[:])
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: query session accept: %v", ErrMalformed, err)
	}
	return a, nil
}

// SessionQuery is one query of a session: the input sealed under the
// session's client-to-worker key with Seq as the nonce and SessionQueryAD
// as additional data. Seq starts at 1 and is never reused in a session.
type SessionQuery struct {
	ID         [SessionIDSize]byte
	Seq        uint64
	Ciphertext []byte
}

// SessionQueryAD is the additional data of a session query's ciphertext.
func SessionQueryAD(id [SessionIDSize]byte, seq uint64) []byte {
	w := codec.NewWriter(32)
	w.Fixed(id[:])
	w.Uvarint(seq)
	return w.Bytes()
}

// Encode returns the canonical bytes.
func (q *SessionQuery) Encode() []byte {
	w := codec.NewWriter(32 + len(q.Ciphertext))
	w.Fixed(q.ID[:])
	w.Uvarint(q.Seq)
	w.BytesField(q.Ciphertext)
	return w.Bytes()
}

// DecodeSessionQuery strictly decodes a session query.
func DecodeSessionQuery(b []byte) (*SessionQuery, error) {
	if len(b) > MaxQueryBytes+64 {
		return nil, fmt.Errorf("%w: session query of %d bytes", ErrTooLarge, len(b))
	}
	q := &SessionQuery{}
	r := codec.NewReader(b)
	r.Fixed(q.ID[:])
	q.Seq = r.Uvarint()
	q.Ciphertext = r.BytesField(MaxQueryBytes)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: session query: %v", ErrMalformed, err)
	}
	return q, nil
}

// SessionAnswer is the worker's answer to SessionQuery Seq: Pad(status
// byte (0 ok, 1 error) || output or message), sealed under the session's
// worker-to-client key with Seq as the nonce and SessionAnswerAD (the
// session, Seq and Height) as additional data.
type SessionAnswer struct {
	Seq        uint64
	Height     int64 // the block height the answer reflects
	Ciphertext []byte
}

// SessionAnswerAD is the additional data of an answer's ciphertext.
func SessionAnswerAD(id [SessionIDSize]byte, seq uint64, height int64) []byte {
	w := codec.NewWriter(40)
	w.Fixed(id[:])
	w.Uvarint(seq)
	w.Uvarint(uint64(height))
	return w.Bytes()
}

// Encode returns the canonical bytes.
func (a *SessionAnswer) Encode() []byte {
	w := codec.NewWriter(24 + len(a.Ciphertext))
	w.Uvarint(a.Seq)
	w.Uvarint(uint64(a.Height))
	w.BytesField(a.Ciphertext)
	return w.Bytes()
}

// DecodeSessionAnswer strictly decodes an answer.
func DecodeSessionAnswer(b []byte) (*SessionAnswer, error) {
	if len(b) > MaxSealedAnswerBytes+32 {
		return nil, fmt.Errorf("%w: session answer of %d bytes", ErrTooLarge, len(b))
	}
	a := &SessionAnswer{}
	r := codec.NewReader(b)
	a.Seq = r.Uvarint()
	h := r.Uvarint()
	a.Ciphertext = r.BytesField(MaxSealedAnswerBytes)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: session answer: %v", ErrMalformed, err)
	}
	if h > 1<<62 {
		return nil, fmt.Errorf("%w: session answer: height %d", ErrMalformed, h)
	}
	a.Height = int64(h)
	return a, nil
}

// SessionTranscript is the hash both sides derive a session's keys from:
// the whole signed open and the accept's signed bytes.
func SessionTranscript(o *QuerySessionOpen, a *QuerySessionAccept) [32]byte {
	h := sha256.New()
	h.Write(o.Encode())
	h.Write(a.SignBytes())
	var out [32]byte
	h.Sum(out[:0])
	return out
}
