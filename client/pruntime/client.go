// Package pruntime is the client of a pRuntime's two HTTP APIs (the server
// is internal/enclave/httpapi). Client talks to the control API (info,
// registration, header sync, block dispatch, paged egress): the relayer,
// the devnet and tests use it on the pRuntime's host. Public talks to the
// public API at a worker's registered endpoint (public info, contract
// queries). Neither trusts what pRuntime says beyond what the caller checks
// (answers to queries are checked with client.PendingQuery.Open).
package pruntime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// Client calls a pRuntime's control API.
type Client struct {
	Base string // the control API, e.g. http://127.0.0.1:8001
	HTTP *http.Client
}

type errorBody struct {
	Error      string `json:"error"`
	Synced     *int64 `json:"synced,omitempty"`
	Dispatched *int64 `json:"dispatched,omitempty"`
}

// NewClient returns a client of the pRuntime whose control API is at base
// (pruntime's --control-listen).
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
	b, _, err := do(ctx, c.HTTP, c.Base, method, path, body)
	return b, c.hint(err)
}

// hint adds to a 404 the likely cause: the public API's URL given where the
// control API's belongs.
func (c *Client) hint(err error) error {
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound {
		e.Message += " (is " + c.Base + " pRuntime's control API, its --control-listen? The public API serves only /info and /query)"
	}
	return err
}

func do(ctx context.Context, hc *http.Client, base, method, path string, body []byte) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("pruntime at %s: %w", base, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, api.MaxSyncPayloadBytes))
	if err != nil {
		return nil, nil, err
	}
	if res.StatusCode != http.StatusOK {
		var eb errorBody
		if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(string(b[:min(len(b), 200)]))
		}
		return nil, nil, &Error{Status: res.StatusCode, Message: eb.Error, Synced: eb.Synced, Dispatched: eb.Dispatched}
	}
	return b, res.Header, nil
}

// Info returns pRuntime's info (the control API's: public facts and
// operational counters).
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

// Recover posts what a recovering contract needs (api.RecoveryNeed in
// Info) to POST /recover.
func (c *Client) Recover(ctx context.Context, req *api.RecoverRequest) (*api.RecoverAnswer, error) {
	b, err := c.do(ctx, http.MethodPost, "/recover", req.Encode())
	if err != nil {
		return nil, err
	}
	var out api.RecoverAnswer
	return &out, json.Unmarshal(b, &out)
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

// DefaultEgressPageBytes is the page size Egress asks for.
const DefaultEgressPageBytes = 4 << 20

// maxEgressPages bounds the pages Egress reads in one call.
const maxEgressPages = 100_000

// EgressPage returns one page of pRuntime's pending signed messages: those
// after the cursor after ("" for the first page), at most maxBytes of
// encoding (0: the server's default) but at least one message, and the
// cursor of the next page ("" after the last). A page may repeat messages
// of an earlier one (the chain acknowledged some meanwhile); it never
// skips one.
func (c *Client) EgressPage(ctx context.Context, after string, maxBytes int) ([]api.SignedMessage, string, error) {
	v := url.Values{}
	if maxBytes > 0 {
		v.Set("max_bytes", strconv.Itoa(maxBytes))
	}
	if after != "" {
		v.Set("after", after)
	}
	path := "/egress"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	b, h, err := do(ctx, c.HTTP, c.Base, http.MethodGet, path, nil)
	if err != nil {
		return nil, "", c.hint(err)
	}
	ms, err := api.DecodeSignedMessages(b)
	if err != nil {
		return nil, "", err
	}
	next := h.Get(egressNextHeader)
	if next != "" && len(ms) == 0 {
		return nil, "", fmt.Errorf("pruntime at %s: an empty egress page with a next cursor", c.Base)
	}
	return ms, next, nil
}

// egressNextHeader is httpapi.EgressNextHeader (not imported: the client
// does not link the enclave).
const egressNextHeader = "Phala-Egress-Next"

// Egress returns all of pRuntime's pending signed messages, read in pages
// of DefaultEgressPageBytes. Callers that must bound their memory read
// pages with EgressPage.
func (c *Client) Egress(ctx context.Context) ([]api.SignedMessage, error) {
	var all []api.SignedMessage
	after := ""
	for range maxEgressPages {
		ms, next, err := c.EgressPage(ctx, after, DefaultEgressPageBytes)
		if err != nil {
			return nil, err
		}
		all = append(all, ms...)
		if next == "" {
			return all, nil
		}
		after = next
	}
	return nil, fmt.Errorf("pruntime at %s: egress not read after %d pages", c.Base, maxEgressPages)
}

// Public calls a pRuntime's public API (the endpoint in its WorkerInfo).
type Public struct {
	Base string // e.g. http://127.0.0.1:8000
	HTTP *http.Client
}

// NewPublic returns a client of the public API at base.
func NewPublic(base string) *Public {
	return &Public{Base: strings.TrimRight(base, "/"), HTTP: &http.Client{Timeout: time.Minute}}
}

// Info returns the public facts pRuntime tells anyone.
func (p *Public) Info(ctx context.Context) (*api.PRuntimePublicInfo, error) {
	b, _, err := do(ctx, p.HTTP, p.Base, http.MethodGet, "/info", nil)
	if err != nil {
		return nil, err
	}
	var info api.PRuntimePublicInfo
	return &info, json.Unmarshal(b, &info)
}

// Query sends a contract query and returns the worker's (sealed, signed)
// response; open it with client.PendingQuery.Open.
func (p *Public) Query(ctx context.Context, q *api.ContractQuery) (*api.ContractQueryResponse, error) {
	b, _, err := do(ctx, p.HTTP, p.Base, http.MethodPost, "/query", q.Encode())
	if err != nil {
		return nil, err
	}
	return api.DecodeContractQueryResponse(b)
}
