package httpapi

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
)

// Limits of the control API.
const (
	// DefaultSyncBudgetBytes bounds the bytes of sync request bodies
	// (headers and blocks) pRuntime holds at once: one request of the
	// largest size (api.MaxSyncPayloadBytes), or several smaller ones.
	// Decoding copies a body once, so the memory a sync takes is about
	// twice its budget share plus what the engine makes of it.
	DefaultSyncBudgetBytes = api.MaxSyncPayloadBytes
	// DefaultSyncWait is how long a sync request waits for its share of
	// the budget before it is refused with 503.
	DefaultSyncWait = 30 * time.Second

	// DefaultEgressPageBytes is the page size of GET /egress without
	// max_bytes; MaxEgressPageBytes the largest max_bytes accepted.
	DefaultEgressPageBytes = 4 << 20
	MaxEgressPageBytes     = 32 << 20
	// maxCursorChars bounds the after= parameter (a hex cursor).
	maxCursorChars = 256
)

// EgressNextHeader is the response header of GET /egress carrying the
// cursor of the next page (the after= value to send); absent on the last
// page.
const EgressNextHeader = "Phala-Egress-Next"

// ControlOptions configure the control API. Zero values mean the defaults.
type ControlOptions struct {
	// Allow lists the networks whose callers the control API serves
	// besides loopback (e.g. a relayer on another host of a private
	// network). Empty: loopback only.
	Allow []netip.Prefix
	// SyncBudgetBytes bounds the bytes of sync request bodies held at once
	// (default DefaultSyncBudgetBytes). A request larger than the budget
	// is refused with 413.
	SyncBudgetBytes int64
	// SyncWait is how long a sync request waits for budget before 503
	// (default DefaultSyncWait).
	SyncWait time.Duration
}

func (o ControlOptions) withDefaults() ControlOptions {
	if o.SyncBudgetBytes <= 0 {
		o.SyncBudgetBytes = DefaultSyncBudgetBytes
	}
	if o.SyncWait <= 0 {
		o.SyncWait = DefaultSyncWait
	}
	return o
}

// ErrForbidden: a control API caller neither on loopback nor in an allowed
// network.
var ErrForbidden = errors.New("the control API serves only loopback callers and the networks pruntime's --control-allow lists")

// allowed reports whether a caller at remoteAddr ("ip:port", as in
// http.Request.RemoteAddr) may use the control API.
func (o ControlOptions) allowed(remoteAddr string) bool {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	if a.IsLoopback() {
		return true
	}
	for _, p := range o.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// allowOnly refuses callers that are not allowed, before any of h runs.
func (s *server) allowOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.opts.allowed(r.RemoteAddr) {
			s.log.Warn("control API call refused", "remote", r.RemoteAddr, "path", r.URL.Path)
			writeErr(w, http.StatusForbidden, fmt.Errorf("caller %s: %w", r.RemoteAddr, ErrForbidden))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// byteBudget is a counting semaphore over bytes. It does not queue in
// order: a small request that fits goes ahead of a large one that waits,
// so a burst of large requests cannot hold up a normal one.
type byteBudget struct {
	mu    sync.Mutex
	max   int64
	used  int64
	freed chan struct{} // closed (and replaced) at every release
}

func newByteBudget(max int64) *byteBudget {
	return &byteBudget{max: max, freed: make(chan struct{})}
}

// acquire takes n bytes (n <= max), waiting until they are free or ctx ends.
func (b *byteBudget) acquire(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.used+n <= b.max {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		ch := b.freed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

func (b *byteBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// readSyncBody reads a sync request's body within the sync byte budget: it
// takes the request's share (its Content-Length, or the largest request
// size if the length is not declared) before reading a byte, reads at most
// that much, and keeps the share until release is called (after the
// engine is done with the body). A body over the limit is refused with
// 413 without being read; no share within DefaultSyncWait gives 503. On
// failure it has written the response and returns ok false.
func (s *server) readSyncBody(w http.ResponseWriter, r *http.Request) (body []byte, release func(), ok bool) {
	limit := min(int64(api.MaxSyncPayloadBytes), s.opts.SyncBudgetBytes)
	need := r.ContentLength
	if need < 0 {
		need = limit
	}
	if need > limit {
		writeErr(w, http.StatusRequestEntityTooLarge, fmt.Errorf("sync body of %d bytes: over the limit of %d bytes; send fewer headers or blocks per request", need, limit))
		return nil, nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.SyncWait)
	err := s.budget.acquire(ctx, need)
	cancel()
	if err != nil {
		w.Header().Set("Retry-After", "1")
		writeErr(w, http.StatusServiceUnavailable, fmt.Errorf("sync byte budget busy: %d of %d bytes held by requests in progress; this request of %d bytes waited %s; retry", s.budget.inUse(), s.opts.SyncBudgetBytes, need, s.opts.SyncWait))
		return nil, nil, false
	}
	release = func() { s.budget.release(need) }
	var b []byte
	if r.ContentLength >= 0 {
		b = make([]byte, need)
		_, err = io.ReadFull(r.Body, b)
	} else {
		b, err = io.ReadAll(http.MaxBytesReader(w, r.Body, need))
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeErr(w, http.StatusRequestEntityTooLarge, fmt.Errorf("sync body over the limit of %d bytes; send fewer headers or blocks per request", need))
	case err != nil:
		writeErr(w, http.StatusBadRequest, fmt.Errorf("read body: %w", err))
	default:
		return b, release, true
	}
	release()
	return nil, nil, false
}

// egressCursor names the last message of a page: its index in the egress
// at the time (a hint), origin and sequence. Hex of the codec encoding
// uvarint(index) ‖ bytes(origin) ‖ uvarint(seq) on the wire.
type egressCursor struct {
	index  uint64
	origin api.Origin
	seq    uint64
}

func (c egressCursor) String() string {
	w := codec.NewWriter(48)
	w.Uvarint(c.index)
	w.BytesField(c.origin.Encode())
	w.Uvarint(c.seq)
	return hex.EncodeToString(w.Bytes())
}

// parseEgressCursor strictly decodes an after= value: lower-case hex of the
// canonical encoding, no trailing bytes.
func parseEgressCursor(s string) (egressCursor, error) {
	var c egressCursor
	if len(s) > maxCursorChars {
		return c, fmt.Errorf("%w: egress cursor of %d characters", api.ErrMalformed, len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return c, fmt.Errorf("%w: egress cursor: %v", api.ErrMalformed, err)
	}
	r := codec.NewReader(b)
	c.index = r.Uvarint()
	ob := r.BytesField(64)
	c.seq = r.Uvarint()
	if err := r.Done(); err != nil {
		return c, fmt.Errorf("%w: egress cursor: %v", api.ErrMalformed, err)
	}
	if c.origin, err = api.DecodeOrigin(ob); err != nil {
		return c, fmt.Errorf("egress cursor: %w", err)
	}
	if c.String() != s {
		return c, fmt.Errorf("%w: egress cursor is not canonical", api.ErrMalformed)
	}
	return c, nil
}

// signedMessageBound is an upper bound of a signed message's encoded size.
func signedMessageBound(m *api.SignedMessage) int {
	const overhead = 1 + 32 + 64 + 4*binaryMaxVarint // kind, key, signature, length prefixes and seq
	return len(m.Message.Payload) + len(m.Message.Topic) + len(m.Message.Origin.Module) + overhead
}

const binaryMaxVarint = 10

// egressPage returns the messages of ms after the cursor, at most maxBytes
// of encoding but at least one message, and the cursor of the next page
// ("" when the page ends ms). A cursor whose message is gone (the chain
// echoed it since) restarts at the first message: a page may repeat a
// message, never skip one.
func egressPage(ms []api.SignedMessage, after *egressCursor, maxBytes int) ([]api.SignedMessage, string) {
	start := 0
	if after != nil {
		start = -1
		if i := after.index; i < uint64(len(ms)) && ms[i].Message.Origin == after.origin && ms[i].Message.Seq == after.seq {
			start = int(i) + 1
		}
		for i := 0; start < 0 && i < len(ms); i++ {
			if ms[i].Message.Origin == after.origin && ms[i].Message.Seq == after.seq {
				start = i + 1
			}
		}
		if start < 0 {
			start = 0
		}
	}
	size, end := binaryMaxVarint, start
	for end < len(ms) {
		n := signedMessageBound(&ms[end])
		if end > start && size+n > maxBytes {
			break
		}
		size += n
		end++
	}
	if end == len(ms) {
		return ms[start:end], ""
	}
	last := &ms[end-1].Message
	return ms[start:end], egressCursor{index: uint64(end - 1), origin: last.Origin, seq: last.Seq}.String()
}

// egress serves one page of the signed egress: ?max_bytes=N (1 to
// MaxEgressPageBytes, default DefaultEgressPageBytes) and ?after=<cursor
// from the previous page's EgressNextHeader>.
//
// TODO(res): once engine.EgressPage is merged, call it instead of slicing
// a copy of the whole egress here.
func (s *server) egress(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	maxBytes := DefaultEgressPageBytes
	if v := q.Get("max_bytes"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxEgressPageBytes {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("max_bytes %q: want 1 to %d", v, MaxEgressPageBytes))
			return
		}
		maxBytes = n
	}
	var after *egressCursor
	if v := q.Get("after"); v != "" {
		c, err := parseEgressCursor(v)
		if err != nil {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("after: %w", err))
			return
		}
		after = &c
	}
	page, next := egressPage(s.e.Egress(), after, maxBytes)
	if next != "" {
		w.Header().Set(EgressNextHeader, next)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(api.EncodeSignedMessages(page))
}
