package api

import (
	"crypto/sha256"
	"fmt"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Signing contexts and limits of off-chain contract queries.
const (
	ContextQuery         crypto.Context = "phala/contract: query v2"
	ContextQueryResponse crypto.Context = "phala/contract: query response v1"
	// ChannelPurposeQuery is the channel purpose of query payloads.
	ChannelPurposeQuery = "contract query"
	MaxQueryBytes       = 1 << 20
)

// ContractQuery is a client's query to a contract, sent off-chain to a
// worker. The input is sealed with CommKey(From, contract EcdhKey) for
// ChannelPurposeQuery with the query's header (everything before the
// ciphertext) as additional data; the whole query is signed by From.
//
// Worker binds the query to one worker: a worker answers off-chain only
// queries addressed to its identity key (so a captured query cannot be
// replayed to another replica, whose replay guard never saw it). The zero
// key means "on chain only": such a query is answered only when the chain
// orders it (TopicContractQuery), by every replica, and refused off-chain.
type ContractQuery struct {
	Contract   crypto.PublicKey // the contract's identity key
	Worker     crypto.PublicKey // the worker's identity key; zero: on chain only
	From       crypto.PublicKey // the client; also its ECDH key
	Nonce      [16]byte
	NotAfter   int64 // unix seconds; refused once the worker's block time passes it
	Ciphertext []byte
	Signature  crypto.Signature
}

// Header returns the bytes bound as additional data to the ciphertext.
func (q *ContractQuery) Header() []byte {
	w := codec.NewWriter(128)
	w.Fixed(q.Contract[:])
	w.Fixed(q.Worker[:])
	w.Fixed(q.From[:])
	w.Fixed(q.Nonce[:])
	w.Varint(q.NotAfter)
	return w.Bytes()
}

// SignBytes returns the bytes From signs.
func (q *ContractQuery) SignBytes() []byte {
	w := codec.NewWriter(160 + len(q.Ciphertext))
	w.Fixed(q.Header())
	w.BytesField(q.Ciphertext)
	return w.Bytes()
}

// Encode returns the canonical bytes.
func (q *ContractQuery) Encode() []byte { return append(q.SignBytes(), q.Signature[:]...) }

// Hash identifies the query (the response commits to it).
func (q *ContractQuery) Hash() [32]byte { return sha256.Sum256(q.Encode()) }

// DecodeContractQuery strictly decodes a query.
func DecodeContractQuery(b []byte) (*ContractQuery, error) {
	if len(b) > MaxQueryBytes+256 {
		return nil, fmt.Errorf("%w: query of %d bytes", ErrTooLarge, len(b))
	}
	q := &ContractQuery{}
	r := codec.NewReader(b)
	r.Fixed(q.Contract[:])
	r.Fixed(q.Worker[:])
	r.Fixed(q.From[:])
	r.Fixed(q.Nonce[:])
	q.NotAfter = r.Varint()
	q.Ciphertext = r.BytesField(MaxQueryBytes)
	r.Fixed(q.Signature[:])
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: query: %v", ErrMalformed, err)
	}
	return q, nil
}

// ContractQueryResponse is the worker's answer: sealed to the client on the
// same channel (additional data: query hash and height), signed by the
// contract's identity key, stating the block height the answer reflects.
type ContractQueryResponse struct {
	Query      [32]byte
	Height     int64
	Ciphertext []byte // sealed: Pad(status byte (0 ok, 1 error) || output or message)
	Signature  crypto.Signature
}

// AD returns the additional data bound to the response ciphertext.
func (r *ContractQueryResponse) AD() []byte {
	w := codec.NewWriter(48)
	w.Fixed(r.Query[:])
	w.Uvarint(uint64(r.Height))
	return w.Bytes()
}

// SignBytes returns the bytes the contract signs.
func (r *ContractQueryResponse) SignBytes() []byte {
	w := codec.NewWriter(64 + len(r.Ciphertext))
	w.Fixed(r.AD())
	w.BytesField(r.Ciphertext)
	return w.Bytes()
}

// Encode returns the canonical bytes.
func (r *ContractQueryResponse) Encode() []byte { return append(r.SignBytes(), r.Signature[:]...) }

// DecodeContractQueryResponse strictly decodes a response.
func DecodeContractQueryResponse(b []byte) (*ContractQueryResponse, error) {
	res := &ContractQueryResponse{}
	r := codec.NewReader(b)
	r.Fixed(res.Query[:])
	res.Height = int64(r.Uvarint())
	res.Ciphertext = r.BytesField(MaxSealedAnswerBytes)
	r.Fixed(res.Signature[:])
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: query response: %v", ErrMalformed, err)
	}
	return res, nil
}
