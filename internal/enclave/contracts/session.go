package contracts

import (
	"container/heap"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/enclave/vm"
)

// Query sessions (api.QuerySessionOpen): one signed handshake per client,
// then queries and answers authenticated by AES-GCM under the session's
// keys. Sessions live in the worker's memory only: a restarted worker
// knows none, so nothing sent in a session before can be answered again
// (the client opens a new one).

// Bounds of query sessions.
const (
	// MaxSessionTTL bounds a session's NotAfter (block time): the open's
	// nonce stays in the replay guard until then, like a query's.
	MaxSessionTTL = MaxQueryTTL
	// MaxSessions bounds the sessions a worker keeps; opening one more
	// drops the one that expires soonest (an expired one first; its
	// client opens again), found in O(log n).
	MaxSessions = 10_000
	// MaxSessionsPerAccount bounds the sessions one account (From) keeps
	// on a worker; its next open drops its own oldest, not someone
	// else's: a client that opens a session per query churns only its
	// own.
	MaxSessionsPerAccount = 16
	// SessionWindow is how far behind the highest query number a session
	// has seen a query may be and still be answered (queries of one
	// session sent concurrently arrive out of order); older ones are
	// refused like replays.
	SessionWindow = 256
)

// ErrUnknownSession means the worker keeps no session of that ID
// (expired, dropped, or the worker restarted): open a new one.
var ErrUnknownSession = errors.New("unknown query session")

// Session is a query session's worker side.
type Session struct {
	ID       [api.SessionIDSize]byte
	Contract crypto.PublicKey
	From     crypto.PublicKey // the caller of every query of the session
	NotAfter int64            // unix seconds, block time
	keys     *channel.Session

	mu  sync.Mutex
	top uint64                     // the highest query number answered
	win [SessionWindow / 64]uint64 // bit i: query top-i was answered
}

// Sessions is a worker's table of query sessions. Safe for concurrent use.
type Sessions struct {
	mu sync.Mutex
	m  map[[api.SessionIDSize]byte]*Session
	// byFrom: each account's sessions, oldest first (at most
	// MaxSessionsPerAccount).
	byFrom map[crypto.PublicKey][][api.SessionIDSize]byte
	// expiry: every kept session by NotAfter, soonest first, so a full
	// table drops the expired, then the soonest to expire, in O(log n)
	// each instead of a scan. Entries of sessions removed otherwise stay
	// until they surface (or the heap is rebuilt at twice the table).
	expiry expiryHeap
}

// expiryEntry is a session in the expiry heap.
type expiryEntry struct {
	notAfter int64
	s        *Session
}

// expiryHeap is a min-heap of sessions by NotAfter (container/heap).
type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].notAfter < h[j].notAfter }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// NewSessions returns an empty table.
func NewSessions() *Sessions {
	return &Sessions{m: map[[api.SessionIDSize]byte]*Session{}, byFrom: map[crypto.PublicKey][][api.SessionIDSize]byte{}}
}

// Len returns the number of sessions kept.
func (t *Sessions) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

func (t *Sessions) add(s *Session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if own := t.byFrom[s.From]; len(own) >= MaxSessionsPerAccount {
		t.remove(own[0])
	}
	// Full: the expired go, then the soonest to expire.
	for len(t.m) >= MaxSessions && len(t.expiry) > 0 {
		e := heap.Pop(&t.expiry).(expiryEntry)
		if t.m[e.s.ID] == e.s {
			t.remove(e.s.ID)
		}
	}
	t.m[s.ID] = s
	t.byFrom[s.From] = append(t.byFrom[s.From], s.ID)
	heap.Push(&t.expiry, expiryEntry{s.NotAfter, s})
	if len(t.expiry) > 2*len(t.m)+64 {
		// Drop the entries of sessions removed otherwise.
		live := t.expiry[:0]
		for _, e := range t.expiry {
			if t.m[e.s.ID] == e.s {
				live = append(live, e)
			}
		}
		clear(t.expiry[len(live):])
		t.expiry = live
		heap.Init(&t.expiry)
	}
}

// remove drops session id from both indexes. The caller holds t.mu.
func (t *Sessions) remove(id [api.SessionIDSize]byte) {
	s, ok := t.m[id]
	if !ok {
		return
	}
	delete(t.m, id)
	own := t.byFrom[s.From]
	for i, o := range own {
		if o == id {
			own = append(own[:i:i], own[i+1:]...)
			break
		}
	}
	if len(own) == 0 {
		delete(t.byFrom, s.From)
	} else {
		t.byFrom[s.From] = own
	}
}

// Get returns session id if it is kept and unexpired at block time now;
// ErrUnknownSession otherwise.
func (t *Sessions) Get(id [api.SessionIDSize]byte, now time.Time) (*Session, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.m[id]
	if !ok {
		return nil, fmt.Errorf("%w: open a new session", ErrUnknownSession)
	}
	if s.NotAfter < now.Unix() {
		t.remove(id)
		return nil, fmt.Errorf("%w: it expired at %s (block time %s): open a new session", ErrUnknownSession,
			time.Unix(s.NotAfter, 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return s, nil
}

// OpenSession checks a session open (address, signature, expiry within
// MaxSessionTTL of block time now, nonce through the replay guard g like
// a query's), makes the session with a fresh ephemeral key, adds it to t
// and returns the accept, signed by the contract. Errors wrap
// ErrQueryRefused. Safe for concurrent use.
func (c *Contract) OpenSession(g *QueryGuard, t *Sessions, o *api.QuerySessionOpen, now time.Time) (*api.QuerySessionAccept, error) {
	if o.Contract != c.ID() {
		return nil, fmt.Errorf("%w: session for contract %s sent to %s", ErrQueryRefused, o.Contract.Short(), c.ID().Short())
	}
	if !o.From.Verify(api.ContextQuerySession, o.SignBytes(), o.Signature) {
		return nil, fmt.Errorf("%w: session open: signature does not verify", ErrQueryRefused)
	}
	if err := g.record(o.From, o.Nonce, o.NotAfter, now); err != nil {
		return nil, err
	}
	eph, _, err := crypto.GenerateKeyPair()
	if err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	shared, err := eph.SharedSecret(o.Ephemeral)
	if err != nil {
		return nil, fmt.Errorf("%w: session open: client ephemeral key: %v", ErrQueryRefused, err)
	}
	a := &api.QuerySessionAccept{Open: o.Hash(), Ephemeral: eph.Public()}
	if _, err := rand.Read(a.ID[:]); err != nil {
		return nil, fmt.Errorf("session id: %w", err)
	}
	keys, err := channel.NewSession(shared, api.SessionTranscript(o, a))
	if err != nil {
		return nil, err
	}
	a.Signature = c.keys.Load().Identity.Sign(api.ContextQuerySessionAccept, a.SignBytes())
	t.add(&Session{ID: a.ID, Contract: c.ID(), From: o.From, NotAfter: o.NotAfter, keys: keys})
	return a, nil
}

// OpenQuery decrypts query q of the session and marks its number used;
// ErrQueryRefused if it does not open (forged, tampered, sealed under
// another session's keys, or an answer reflected back) or its number was
// answered already or is more than SessionWindow behind the highest.
func (s *Session) OpenQuery(q *api.SessionQuery) ([]byte, error) {
	if q.ID != s.ID {
		return nil, fmt.Errorf("%w: query of session %x sent to session %x", ErrQueryRefused, q.ID[:4], s.ID[:4])
	}
	if q.Seq == 0 {
		return nil, fmt.Errorf("%w: query number 0 (numbers start at 1)", ErrQueryRefused)
	}
	input, err := s.keys.OpenQuery(q.Seq, q.Ciphertext, api.SessionQueryAD(s.ID, q.Seq))
	if err != nil {
		return nil, fmt.Errorf("%w: session query does not open under the session's key (forged, tampered or of another session): %v", ErrQueryRefused, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.mark(q.Seq); err != nil {
		return nil, err
	}
	return input, nil
}

// mark records seq in the window (s.mu held).
func (s *Session) mark(seq uint64) error {
	switch {
	case seq > s.top:
		shiftWindow(&s.win, seq-s.top)
		s.top = seq
		s.win[0] |= 1
		return nil
	case s.top-seq >= SessionWindow:
		return fmt.Errorf("%w: query number %d is more than %d behind the session's highest (%d): resend it with a new number", ErrQueryRefused, seq, SessionWindow, s.top)
	}
	d := s.top - seq
	w, b := d/64, d%64
	if s.win[w]&(1<<b) != 0 {
		return fmt.Errorf("%w: replayed (query number %d of the session already answered)", ErrQueryRefused, seq)
	}
	s.win[w] |= 1 << b
	return nil
}

// shiftWindow moves the window up by n numbers: bit i becomes bit i+n.
func shiftWindow(win *[SessionWindow / 64]uint64, n uint64) {
	if n >= SessionWindow {
		*win = [SessionWindow / 64]uint64{}
		return
	}
	words, bits := int(n/64), n%64
	for i := len(win) - 1; i >= 0; i-- {
		var v uint64
		if j := i - words; j >= 0 {
			v = win[j] << bits
			if bits > 0 && j-1 >= 0 {
				v |= win[j-1] >> (64 - bits)
			}
		}
		win[i] = v
	}
}

// Answer seals the answer to session query q at height (res and err from
// the query's call). Safe for concurrent use.
func (s *Session) Answer(q *api.SessionQuery, height int64, res *Result, err error) *api.SessionAnswer {
	pt := answerPlaintext(res, err)
	return &api.SessionAnswer{Seq: q.Seq, Height: height, Ciphertext: s.keys.SealAnswer(q.Seq, pt, api.SessionAnswerAD(s.ID, q.Seq, height))}
}

// answerPlaintext is an answer's status byte (0 ok, 1 error) and the
// output or error message (a contract's own failure keeps its output),
// padded (api.Pad) so the sealed answer's size hides its exact length.
func answerPlaintext(res *Result, err error) []byte {
	status := byte(0)
	var out []byte
	if res != nil {
		out = res.Output
	}
	if err != nil {
		status = 1
		if !errors.Is(err, vm.ErrFailed) {
			out = []byte(err.Error())
		}
	}
	b := make([]byte, 0, 1+len(out)+api.PadBlock)
	return api.Pad(append(append(b, status), out...))
}

// HandleSessionQuery opens, answers (on the live store, like Query) and
// seals session query q at height (the last block this worker
// dispatched, whose time is now). The engine's path is the same on a
// published view (Session.OpenQuery, QueryView, Session.Answer).
func (c *Contract) HandleSessionQuery(ctx context.Context, s *Session, q *api.SessionQuery, height int64, now time.Time) (*api.SessionAnswer, error) {
	if s.Contract != c.ID() {
		return nil, fmt.Errorf("%w: session of contract %s used with %s", ErrQueryRefused, s.Contract.Short(), c.ID().Short())
	}
	input, err := s.OpenQuery(q)
	if err != nil {
		return nil, err
	}
	res, err := c.Query(ctx, s.From, input, height, now)
	return s.Answer(q, height, res, err), nil
}
