package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
)

// ErrSessionGone means the worker no longer keeps the query session
// (expired, dropped, or the worker restarted): open a new one.
var ErrSessionGone = errors.New("query session gone")

// PendingSession is a signed query session open (api.QuerySessionOpen)
// waiting for the worker's accept.
type PendingSession struct {
	Open *api.QuerySessionOpen
	eph  *crypto.KeyPair
}

// NewQuerySessionOpen makes a session open from key (the caller of every
// query of the session) to the contract of identity contractID on the
// worker of identity worker, valid until notAfter (the worker's block
// time; at most 2 minutes ahead of it), with a fresh ephemeral key.
func NewQuerySessionOpen(key *crypto.KeyPair, contractID, worker crypto.PublicKey, notAfter time.Time) (*PendingSession, error) {
	eph, _, err := crypto.GenerateKeyPair()
	if err != nil {
		return nil, err
	}
	o := &api.QuerySessionOpen{Contract: contractID, Worker: worker, From: key.Public(), Ephemeral: eph.Public(), NotAfter: notAfter.Unix()}
	if _, err := rand.Read(o.Nonce[:]); err != nil {
		return nil, err
	}
	o.Signature = key.Sign(api.ContextQuerySession, o.SignBytes())
	return &PendingSession{Open: o, eph: eph}, nil
}

// Accept checks the worker's accept (it answers this open and is signed
// by the contract's identity key) and returns the session.
func (p *PendingSession) Accept(a *api.QuerySessionAccept) (*QuerySession, error) {
	if a.Open != p.Open.Hash() {
		return nil, fmt.Errorf("%w: session accept answers another open", api.ErrBadProof)
	}
	if !p.Open.Contract.Verify(api.ContextQuerySessionAccept, a.SignBytes(), a.Signature) {
		return nil, fmt.Errorf("%w: session accept is not signed by the contract", api.ErrBadProof)
	}
	shared, err := p.eph.SharedSecret(a.Ephemeral)
	if err != nil {
		return nil, fmt.Errorf("%w: session accept: worker ephemeral key: %v", api.ErrBadProof, err)
	}
	keys, err := channel.NewSession(shared, api.SessionTranscript(p.Open, a))
	if err != nil {
		return nil, err
	}
	return &QuerySession{Contract: p.Open.Contract, Worker: p.Open.Worker, ID: a.ID, NotAfter: time.Unix(p.Open.NotAfter, 0), keys: keys}, nil
}

// QuerySession is the client side of a query session: queries to one
// contract on one worker, each sealed under the session's key, each answer
// authenticated by it (bound to the session, the query's number and the
// height it states). Safe for concurrent use.
type QuerySession struct {
	Contract, Worker crypto.PublicKey
	ID               [api.SessionIDSize]byte
	NotAfter         time.Time // the session ends at this block time
	Endpoint         string    // the worker's API (OpenQuerySession sets it)
	keys             *channel.Session
	seq              atomic.Uint64
}

// OpenQuerySession opens a query session as key with the contract on the
// worker of identity worker at its API endpoint, valid for ttl (at most 2
// minutes).
func OpenQuerySession(ctx context.Context, key *crypto.KeyPair, contractID, worker crypto.PublicKey, endpoint string, ttl time.Duration) (*QuerySession, error) {
	p, err := NewQuerySessionOpen(key, contractID, worker, time.Now().Add(ttl))
	if err != nil {
		return nil, err
	}
	b, err := postBinary(ctx, endpoint, "/session/open", p.Open.Encode())
	if err != nil {
		return nil, fmt.Errorf("open query session: %w", err)
	}
	a, err := api.DecodeQuerySessionAccept(b)
	if err != nil {
		return nil, err
	}
	s, err := p.Accept(a)
	if err != nil {
		return nil, err
	}
	s.Endpoint = endpoint
	return s, nil
}

// Seal seals input as the session's next query.
func (s *QuerySession) Seal(input []byte) *api.SessionQuery {
	seq := s.seq.Add(1)
	return &api.SessionQuery{ID: s.ID, Seq: seq, Ciphertext: s.keys.SealQuery(seq, input, api.SessionQueryAD(s.ID, seq))}
}

// Open checks that a is the session's answer to q (sealed under the
// session's worker-to-client key for q's number and a's height) and
// returns the output and the height it reflects; ErrQueryFailed wraps
// the contract's refusal.
func (s *QuerySession) Open(q *api.SessionQuery, a *api.SessionAnswer) ([]byte, int64, error) {
	if a.Seq != q.Seq {
		return nil, 0, fmt.Errorf("%w: answer to query %d, not %d", api.ErrBadProof, a.Seq, q.Seq)
	}
	pt, err := s.keys.OpenAnswer(q.Seq, a.Ciphertext, api.SessionAnswerAD(s.ID, q.Seq, a.Height))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: cannot open the answer under the session's key: %v", api.ErrBadProof, err)
	}
	return answerOutput(pt, a.Height)
}

// Query sends input as the session's next query to its endpoint and
// opens the answer. ErrSessionGone: the worker does not know the session
// (open a new one).
func (s *QuerySession) Query(ctx context.Context, input []byte) ([]byte, int64, error) {
	q := s.Seal(input)
	b, err := postBinary(ctx, s.Endpoint, "/session/query", q.Encode())
	if err != nil {
		if strings.Contains(err.Error(), "unknown query session") {
			return nil, 0, fmt.Errorf("%w: %v", ErrSessionGone, err)
		}
		return nil, 0, err
	}
	a, err := api.DecodeSessionAnswer(b)
	if err != nil {
		return nil, 0, err
	}
	return s.Open(q, a)
}

// queryHTTP is the HTTP client of queries: it keeps enough idle
// connections per worker for many concurrent queries (the default
// transport keeps 2, so concurrent clients kept opening connections).
var queryHTTP = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
	Proxy:               http.ProxyFromEnvironment,
	MaxIdleConns:        256,
	MaxIdleConnsPerHost: 64,
	IdleConnTimeout:     90 * time.Second,
}}

// postBinary posts body to endpoint's path and returns the answer's body
// (an error with the status and the worker's message unless 200).
func postBinary(ctx context.Context, endpoint, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(endpoint, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	res, err := queryHTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, api.MaxQueryBytes+4096))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", res.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}
