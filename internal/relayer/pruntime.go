package relayer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// pRuntime's HTTP API as the relayer uses it (the server is
// internal/enclave/httpapi). This package keeps its own small client rather
// than importing httpapi: httpapi imports the engine, whose tests import
// this package, and Go refuses that cycle in tests.

// RuntimeInfo is the part of pRuntime's GET /info the relayer reads.
type RuntimeInfo struct {
	ChainID     string    `json:"chain_id"`
	Role        string    `json:"role"`
	IdentityKey string    `json:"identity_key"`
	Synced      int64     `json:"synced_header"`
	Dispatched  int64     `json:"dispatched_block"`
	BlockTime   time.Time `json:"block_time"`
	Egress      int       `json:"egress"`
}

// RuntimeError is a refusal by pRuntime (an HTTP status other than 200),
// with the heights it reports having reached, when it says.
type RuntimeError struct {
	Status     int
	Message    string
	Synced     *int64
	Dispatched *int64
}

func (e *RuntimeError) Error() string {
	return fmt.Sprintf("pruntime refused (%d): %s", e.Status, e.Message)
}

type runtimeClient struct {
	base string
	http *http.Client
}

func newRuntimeClient(base string) *runtimeClient {
	return &runtimeClient{
		base: strings.TrimRight(base, "/"),
		// A batch of a few hundred headers verifies in well under a
		// second; the timeout only catches a pRuntime that hangs.
		http: &http.Client{Timeout: 2 * time.Minute},
	}
}

func (c *runtimeClient) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("pruntime at %s: %w", c.base, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, api.MaxSyncPayloadBytes))
	if err != nil {
		return nil, fmt.Errorf("pruntime at %s: %s %s: %w", c.base, method, path, err)
	}
	if res.StatusCode != http.StatusOK {
		var eb struct {
			Error      string `json:"error"`
			Synced     *int64 `json:"synced"`
			Dispatched *int64 `json:"dispatched"`
		}
		if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(string(b[:min(len(b), 200)]))
		}
		return nil, &RuntimeError{Status: res.StatusCode, Message: eb.Error, Synced: eb.Synced, Dispatched: eb.Dispatched}
	}
	return b, nil
}

func (c *runtimeClient) Info(ctx context.Context) (*RuntimeInfo, error) {
	b, err := c.do(ctx, http.MethodGet, "/info", nil)
	if err != nil {
		return nil, err
	}
	var info RuntimeInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("pruntime info: %w", err)
	}
	return &info, nil
}

func (c *runtimeClient) Registration(ctx context.Context, operator crypto.PublicKey) (*api.RegisterWorker, error) {
	body, _ := json.Marshal(map[string]string{"operator": operator.Address()})
	b, err := c.do(ctx, http.MethodPost, "/registration", body)
	if err != nil {
		return nil, err
	}
	call, err := api.DecodeCall(api.CallRegisterWorker, b)
	if err != nil {
		return nil, fmt.Errorf("pruntime registration: %w", err)
	}
	reg, ok := call.(*api.RegisterWorker)
	if !ok {
		return nil, errors.New("pruntime registration: not a register_worker call")
	}
	return reg, nil
}

func (c *runtimeClient) SyncHeaders(ctx context.Context, b *api.HeaderBatch) (int64, error) {
	return c.height(ctx, "/sync/headers", b.Encode(), "synced")
}

func (c *runtimeClient) DispatchBlocks(ctx context.Context, b *api.BlockBatch) (int64, error) {
	return c.height(ctx, "/sync/blocks", b.Encode(), "dispatched")
}

func (c *runtimeClient) height(ctx context.Context, path string, body []byte, field string) (int64, error) {
	b, err := c.do(ctx, http.MethodPost, path, body)
	if err != nil {
		return 0, err
	}
	var out map[string]int64
	if err := json.Unmarshal(b, &out); err != nil {
		return 0, fmt.Errorf("pruntime %s: %w", path, err)
	}
	h, ok := out[field]
	if !ok {
		return 0, fmt.Errorf("pruntime %s: answer has no %q", path, field)
	}
	return h, nil
}

func (c *runtimeClient) Egress(ctx context.Context) ([]api.SignedMessage, error) {
	b, err := c.do(ctx, http.MethodGet, "/egress", nil)
	if err != nil {
		return nil, err
	}
	ms, err := api.DecodeSignedMessages(b)
	if err != nil {
		return nil, fmt.Errorf("pruntime egress: %w", err)
	}
	return ms, nil
}
