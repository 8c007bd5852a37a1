// Package httpapi serves pRuntime's API over HTTP and is its client. Bodies
// of the sync and egress endpoints are the binary encodings of package api;
// info and errors are JSON.
//
//	GET  /info            Info (JSON)
//	POST /registration    {"operator": "<SS58 or 0x>"} -> encoded register_worker call
//	POST /sync/headers    HeaderBatch -> {"synced": h}
//	POST /sync/blocks     BlockBatch  -> {"dispatched": h}
//	GET  /egress          encoded signed messages
//	POST /query           ContractQuery -> ContractQueryResponse (both binary)
//
// Errors: 400 malformed, 404 unknown path, 405 wrong method, 409 a block
// whose header is not synced yet, 413 too large, 422 input that does not
// verify; the JSON body says why. No endpoint returns secret material.
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/engine"
)

// Handler returns the API of e.
func Handler(e *engine.Engine, log *slog.Logger) http.Handler {
	s := &server{e: e, log: log, queries: make(chan struct{}, MaxConcurrentQueries)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /info", s.info)
	mux.HandleFunc("POST /registration", s.registration)
	mux.HandleFunc("POST /sync/headers", s.headers)
	mux.HandleFunc("POST /sync/blocks", s.blocks)
	mux.HandleFunc("GET /egress", s.egress)
	mux.HandleFunc("POST /query", s.query)
	return mux
}

// MaxConcurrentQueries bounds the queries pRuntime works on at once; more
// wait for a slot until their request ends.
const MaxConcurrentQueries = 64

type server struct {
	e       *engine.Engine
	log     *slog.Logger
	queries chan struct{}
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
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(api.EncodeCall(call))
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, engine.ErrNotSynced):
		return http.StatusConflict
	case errors.Is(err, engine.ErrBadInput):
		return http.StatusUnprocessableEntity
	}
	return http.StatusInternalServerError
}

func (s *server) headers(w http.ResponseWriter, r *http.Request) {
	b, ok := readBody(w, r, api.MaxSyncPayloadBytes)
	if !ok {
		return
	}
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
	b, ok := readBody(w, r, api.MaxSyncPayloadBytes)
	if !ok {
		return
	}
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

func (s *server) egress(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(api.EncodeSignedMessages(s.e.Egress()))
}

func (s *server) query(w http.ResponseWriter, r *http.Request) {
	select {
	case s.queries <- struct{}{}:
		defer func() { <-s.queries }()
	case <-r.Context().Done():
		writeErr(w, http.StatusServiceUnavailable, fmt.Errorf("busy: %d queries in progress", MaxConcurrentQueries))
		return
	}
	b, ok := readBody(w, r, api.MaxQueryBytes+512)
	if !ok {
		return
	}
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
