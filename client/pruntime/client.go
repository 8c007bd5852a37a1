// Package pruntime is the client of a pRuntime's HTTP API (the server is
// internal/enclave/httpapi): info, registration, header sync, block
// dispatch, egress and contract queries. The relayer, the devnet, the CLI
// and tests use it; it trusts nothing pRuntime says beyond what the caller
// checks (answers to queries are checked with client.PendingQuery.Open).
package pruntime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// Client calls a pRuntime's API.
type Client struct {
	Base string // e.g. http://127.0.0.1:8000
	HTTP *http.Client
}

type errorBody struct {
	Error      string `json:"error"`
	Synced     *int64 `json:"synced,omitempty"`
	Dispatched *int64 `json:"dispatched,omitempty"`
}

// NewClient returns a client of the pRuntime at base.
func NewClient(base string) *Client {
	// A batch of a few hundred headers verifies in well under a second;
	// the timeout only catches a pRuntime that hangs.
	return &Client{Base: strings.TrimRight(base, "/"), HTTP: &http.Client{Timeout: 2 * time.Minute}}
}

// Error is a refusal by pRuntime.
type Error struct {
	Status     int
	Message    string
	Synced     *int64
	Dispatched *int64
}

func (e *Error) Error() string { return fmt.Sprintf("pruntime: %d: %s", e.Status, e.Message) }

func (c *Client) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("pruntime at %s: %w", c.Base, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, api.MaxSyncPayloadBytes))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		var eb errorBody
		if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(string(b[:min(len(b), 200)]))
		}
		return nil, &Error{Status: res.StatusCode, Message: eb.Error, Synced: eb.Synced, Dispatched: eb.Dispatched}
	}
	return b, nil
}

// Info returns pRuntime's info.
func (c *Client) Info(ctx context.Context) (*api.PRuntimeInfo, error) {
	b, err := c.do(ctx, http.MethodGet, "/info", nil)
	if err != nil {
		return nil, err
	}
	var info api.PRuntimeInfo
	return &info, json.Unmarshal(b, &info)
}

// Registration asks for a register_worker call for operator.
func (c *Client) Registration(ctx context.Context, operator crypto.PublicKey) (*api.RegisterWorker, error) {
	body, _ := json.Marshal(map[string]string{"operator": operator.Address()})
	b, err := c.do(ctx, http.MethodPost, "/registration", body)
	if err != nil {
		return nil, err
	}
	call, err := api.DecodeCall(api.CallRegisterWorker, b)
	if err != nil {
		return nil, err
	}
	return call.(*api.RegisterWorker), nil
}

// SyncHeaders sends headers and returns the synced height.
func (c *Client) SyncHeaders(ctx context.Context, b *api.HeaderBatch) (int64, error) {
	return c.height(ctx, "/sync/headers", b.Encode(), "synced")
}

// DispatchBlocks sends blocks and returns the dispatched height.
func (c *Client) DispatchBlocks(ctx context.Context, b *api.BlockBatch) (int64, error) {
	return c.height(ctx, "/sync/blocks", b.Encode(), "dispatched")
}

func (c *Client) height(ctx context.Context, path string, body []byte, field string) (int64, error) {
	b, err := c.do(ctx, http.MethodPost, path, body)
	if err != nil {
		return 0, err
	}
	var out map[string]int64
	if err := json.Unmarshal(b, &out); err != nil {
		return 0, err
	}
	return out[field], nil
}

// Egress returns pRuntime's pending signed messages.
func (c *Client) Egress(ctx context.Context) ([]api.SignedMessage, error) {
	b, err := c.do(ctx, http.MethodGet, "/egress", nil)
	if err != nil {
		return nil, err
	}
	return api.DecodeSignedMessages(b)
}

// Query sends a contract query and returns the worker's (sealed, signed)
// response; open it with client.PendingQuery.Open.
func (c *Client) Query(ctx context.Context, q *api.ContractQuery) (*api.ContractQueryResponse, error) {
	b, err := c.do(ctx, http.MethodPost, "/query", q.Encode())
	if err != nil {
		return nil, err
	}
	return api.DecodeContractQueryResponse(b)
}
