// Package httpapi serves pRuntime's two HTTP APIs and owns their access
// rules. Bodies of the sync, egress and query endpoints are the binary
// encodings of package api; info and errors are JSON.
//
// The public API (PublicHandler) is what the world reaches, at the endpoint
// in the worker's WorkerInfo. No call on it changes pRuntime's state:
//
//	GET  /info            PRuntimePublicInfo (JSON)
//	POST /query           ContractQuery -> ContractQueryResponse (both binary)
//	POST /session/open    QuerySessionOpen -> QuerySessionAccept (both binary)
//	POST /session/query   SessionQuery -> SessionAnswer (both binary); 422
//	                      with an "unknown query session" error: open a new one
//	GET  /receipt/{contract}/{from}/{nonce}
//	                      a command's api.Receipt (binary), sealed to from;
//	                      404 with {"dispatched": h} while it has none
//
// The control API (ControlHandler) is the host's: pherry feeds the chain
// and collects the egress through it. It serves only loopback callers and
// the networks its options allow (403 otherwise):
//
//	GET  /info            PRuntimeInfo (JSON)
//	POST /registration    {"operator": "<SS58 or 0x>"} -> encoded register_worker call
//	POST /sync/headers    HeaderBatch -> {"synced": h}
//	POST /sync/blocks     BlockBatch  -> {"dispatched": h}
//	GET  /egress          ?max_bytes=N&after=C -> encoded signed messages (one page)
//
// Each API answers 404 for the other's paths. Errors: 400 malformed, 403 a
// control caller not allowed, 404 unknown path, 405 wrong method, 409 a
// block whose header is not synced yet, 413 too large, 422 input that does
// not verify, 503 the sync byte budget is busy; the JSON body says why. No
// endpoint returns secret material.
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/engine"
)

// PublicHandler returns the public API of e: GET /info (public facts only),
// POST /query, the query sessions' POST /session/open and POST
// /session/query, and GET /receipt. Nothing it serves changes e's state.
func PublicHandler(e *engine.Engine, log *slog.Logger) http.Handler {
	s := newAPIServer(e, log, ControlOptions{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /info", s.publicInfo)
	mux.HandleFunc("POST /query", s.query)
	mux.HandleFunc("POST /session/open", s.sessionOpen)
	mux.HandleFunc("POST /session/query", s.sessionQuery)
	mux.HandleFunc("GET /receipt/{contract}/{from}/{nonce}", s.receipt)
	return mux
}

// Timeouts of the two listeners: how long a client may take to send its
// request. Queries are small, so a slow client holds a public connection
// at most PublicReadTimeout; sync bodies are large (and hold their share of
// the sync budget while they arrive).
const (
	PublicReadTimeout  = 10 * time.Second
	ControlReadTimeout = 2 * time.Minute
)

// PublicServer is the HTTP server of the public API, with its timeouts.
func PublicServer(e *engine.Engine, log *slog.Logger) *http.Server {
	return &http.Server{Handler: PublicHandler(e, log), ReadHeaderTimeout: PublicReadTimeout, ReadTimeout: PublicReadTimeout}
}

// ControlServer is the HTTP server of the control API, with its timeouts.
func ControlServer(e *engine.Engine, log *slog.Logger, opts ControlOptions) *http.Server {
	return &http.Server{Handler: ControlHandler(e, log, opts), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: ControlReadTimeout}
}

// ControlHandler returns the control API of e (info, registration, sync,
// egress) behind its access check: a caller whose remote address is not
// loopback and not in opts.Allow gets 403 and nothing else.
func ControlHandler(e *engine.Engine, log *slog.Logger, opts ControlOptions) http.Handler {
	return newAPIServer(e, log, opts).control()
}

func newAPIServer(e *engine.Engine, log *slog.Logger, opts ControlOptions) *server {
	opts = opts.withDefaults()
	return &server{e: e, log: log, queries: make(chan struct{}, MaxConcurrentQueries), opts: opts,
		budget: newByteBudget(opts.SyncBudgetBytes)}
}

func (s *server) control() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /info", s.info)
	mux.HandleFunc("POST /registration", s.registration)
	mux.HandleFunc("POST /sync/headers", s.headers)
	mux.HandleFunc("POST /sync/blocks", s.blocks)
	mux.HandleFunc("GET /egress", s.egress)
	mux.HandleFunc("POST /recover", s.recover)
	return s.allowOnly(mux)
}

// MaxConcurrentQueries bounds the queries pRuntime works on at once; more
// wait for a slot until their request ends.
const MaxConcurrentQueries = 64

type server struct {
	e       *engine.Engine
	log     *slog.Logger
	queries chan struct{}
	opts    ControlOptions
	budget  *byteBudget
}

type errorBody struct {
	Error      string `json:"error"`
	Synced     *int64 `json:"synced,omitempty"`
	Dispatched *int64 `json:"dispatched,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, errorBody{Error: err.Error()})
}

func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeErr(w, http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes", max))
		return nil, false
	}
	if err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("read body: %w", err))
		return nil, false
	}
	return b, true
}

func (s *server) info(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.e.Info())
}

func (s *server) publicInfo(w http.ResponseWriter, _ *http.Request) {
	info := s.e.Info()
	writeJSON(w, http.StatusOK, info.Public())
}

func (s *server) registration(w http.ResponseWriter, r *http.Request) {
	b, ok := readBody(w, r, 4096)
	if !ok {
		return
	}
	var req struct {
		Operator string `json:"operator"`
	}
	if err := json.Unmarshal(b, &req); err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("body must be {\"operator\": \"<address>\"}: %w", err))
		return
	}
	op, err := crypto.ParsePublicKey(req.Operator)
	if err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("operator: %w", err))
		return
	}
	call, err := s.e.Registration(op)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(api.EncodeCall(call))
}

// recover rebuilds a recovering contract (engine.Recover) from the body,
// an api.RecoverRequest of at most api.MaxRecoverBytes. Answers: 200 with
// an api.RecoverAnswer; 400 malformed; 409 not recovering that contract; 422
// the request does not match what the recovery needs (entries of another
// root, other blocks).
func (s *server) recover(w http.ResponseWriter, r *http.Request) {
	b, ok := readBody(w, r, api.MaxRecoverBytes)
	if !ok {
		return
	}
	req, err := api.DecodeRecoverRequest(b)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	res, err := s.e.Recover(req)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, api.RecoverAnswer{Entries: res.Entries, Replayed: res.Replayed, Root: fmt.Sprintf("%x", res.Root)})
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, engine.ErrNotSynced):
		return http.StatusConflict
	case errors.Is(err, engine.ErrBadInput):
		return http.StatusUnprocessableEntity
	case errors.Is(err, engine.ErrUpgradeRequired):
		return http.StatusUpgradeRequired
	case errors.Is(err, engine.ErrBusy):
		return http.StatusServiceUnavailable
	case errors.Is(err, engine.ErrNotRecovering):
		return http.StatusConflict
	case errors.Is(err, engine.ErrRetired):
		return http.StatusGone
	}
	return http.StatusInternalServerError
}

func (s *server) headers(w http.ResponseWriter, r *http.Request) {
	b, release, ok := s.readSyncBody(w, r)
	if !ok {
		return
	}
	defer release()
	batch, err := api.DecodeHeaderBatch(b)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	h, err := s.e.SyncHeaders(batch)
	if err != nil {
		writeJSON(w, statusOf(err), errorBody{Error: err.Error(), Synced: &h})
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"synced": h})
}

func (s *server) blocks(w http.ResponseWriter, r *http.Request) {
	b, release, ok := s.readSyncBody(w, r)
	if !ok {
		return
	}
	defer release()
	batch, err := api.DecodeBlockBatch(b)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	h, err := s.e.DispatchBlocks(batch)
	if err != nil {
		writeJSON(w, statusOf(err), errorBody{Error: err.Error(), Dispatched: &h})
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"dispatched": h})
}

func (s *server) query(w http.ResponseWriter, r *http.Request) {
	b, release, ok := s.queryBody(w, r, api.MaxQueryBytes+512)
	if !ok {
		return
	}
	defer release()
	q, err := api.DecodeContractQuery(b)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	resp, err := s.e.Query(r.Context(), q)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(resp.Encode())
}

func (s *server) receipt(w http.ResponseWriter, r *http.Request) {
	contract, err := crypto.ParsePublicKey(r.PathValue("contract"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("contract: %w", err))
		return
	}
	from, err := crypto.ParsePublicKey(r.PathValue("from"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("sender: %w", err))
		return
	}
	nonce, err := strconv.ParseUint(r.PathValue("nonce"), 10, 64)
	if err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("nonce: %w", err))
		return
	}
	rc, err := s.e.Receipt(r.Context(), contract, from, nonce)
	var none *engine.NoReceiptError
	switch {
	case errors.As(err, &none):
		writeJSON(w, http.StatusNotFound, errorBody{Error: err.Error(), Dispatched: &none.Dispatched})
		return
	case errors.Is(err, engine.ErrBadInput):
		writeErr(w, http.StatusNotFound, err)
		return
	case err != nil:
		writeErr(w, statusOf(err), err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(rc.Encode())
}

// queryBody reads a query endpoint's body and takes one of the public
// query slots (release it when done); false: the answer was written.
func (s *server) queryBody(w http.ResponseWriter, r *http.Request, limit int64) (b []byte, release func(), ok bool) {
	// The body first (small, and bounded in time by the server's read
	// timeout): a client that sends it slowly holds its connection, not
	// one of the slots every query needs.
	b, ok = readBody(w, r, limit)
	if !ok {
		return nil, nil, false
	}
	select {
	case s.queries <- struct{}{}:
		return b, func() { <-s.queries }, true
	case <-r.Context().Done():
		writeErr(w, http.StatusServiceUnavailable, fmt.Errorf("busy: %d queries in progress", MaxConcurrentQueries))
		return nil, nil, false
	}
}

func (s *server) sessionOpen(w http.ResponseWriter, r *http.Request) {
	b, release, ok := s.queryBody(w, r, 512)
	if !ok {
		return
	}
	defer release()
	o, err := api.DecodeQuerySessionOpen(b)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	a, err := s.e.OpenQuerySession(r.Context(), o)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(a.Encode())
}

func (s *server) sessionQuery(w http.ResponseWriter, r *http.Request) {
	b, release, ok := s.queryBody(w, r, api.MaxQueryBytes+512)
	if !ok {
		return
	}
	defer release()
	q, err := api.DecodeSessionQuery(b)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	a, err := s.e.SessionQuery(r.Context(), q)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(a.Encode())
}
