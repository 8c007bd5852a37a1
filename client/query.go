package client

import (
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
)

// ErrQueryFailed is returned when the contract answered a query with an
// error (its message is in the error text).
var ErrQueryFailed = errors.New("contract refused the query")

// PendingQuery is a sealed, signed query and what is needed to open its
// answer.
type PendingQuery struct {
	Query    *api.ContractQuery
	ch       *channel.Channel
	contract crypto.PublicKey
}

// NewQuery seals input to the contract (identity contractID, ECDH key
// contractEcdh) for the one worker whose identity key is worker (the
// worker whose endpoint the query goes to; zero: an on-chain query, which
// workers refuse off-chain), and signs it with key, valid until notAfter.
func NewQuery(key *crypto.KeyPair, contractID, contractEcdh, worker crypto.PublicKey, input []byte, notAfter time.Time) (*PendingQuery, error) {
	ch, err := channel.New(key, contractEcdh, api.ChannelPurposeQuery)
	if err != nil {
		return nil, err
	}
	q := &api.ContractQuery{Contract: contractID, Worker: worker, From: key.Public(), NotAfter: notAfter.Unix()}
	if _, err := rand.Read(q.Nonce[:]); err != nil {
		return nil, err
	}
	q.Ciphertext = ch.Seal(input, q.Header())
	q.Signature = key.Sign(api.ContextQuery, q.SignBytes())
	return &PendingQuery{Query: q, ch: ch, contract: contractID}, nil
}

// Open checks a response's signature by the contract and that it answers
// this query, decrypts it, and returns the output and the height it
// reflects.
func (p *PendingQuery) Open(resp *api.ContractQueryResponse) ([]byte, int64, error) {
	if resp.Query != p.Query.Hash() {
		return nil, 0, fmt.Errorf("%w: response is for another query", api.ErrBadProof)
	}
	if !p.contract.Verify(api.ContextQueryResponse, resp.SignBytes(), resp.Signature) {
		return nil, 0, fmt.Errorf("%w: response is not signed by the contract", api.ErrBadProof)
	}
	pt, err := p.ch.Open(resp.Ciphertext, resp.AD())
	if err != nil {
		return nil, 0, fmt.Errorf("%w: cannot open the response: %v", api.ErrBadProof, err)
	}
	return answerOutput(pt, resp.Height)
}

// answerOutput reads an opened answer's plaintext (api.Pad of a status
// byte and the output or message) reflecting height: the output, or
// ErrQueryFailed with the contract's message, or api.ErrBadProof when it
// is not a well-formed answer.
func answerOutput(pt []byte, height int64) ([]byte, int64, error) {
	pt, err := api.Unpad(pt)
	switch {
	case err != nil:
		return nil, 0, fmt.Errorf("%w: the answer: %v", api.ErrBadProof, err)
	case len(pt) == 0:
		return nil, 0, fmt.Errorf("%w: the answer is empty", api.ErrBadProof)
	case pt[0] != 0:
		return nil, height, fmt.Errorf("%w: %s", ErrQueryFailed, pt[1:])
	}
	return pt[1:], height, nil
}
