package client

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
)

// Errors of contract reads.
var (
	// ErrNotDeployed means an upload has not been provisioned to a worker
	// yet.
	ErrNotDeployed = errors.New("contract not deployed yet")
	// ErrNoSuchContract means no contract has the id (proved absent).
	ErrNoSuchContract = errors.New("no such contract")
)

// Upload uploads contract code (raw WebAssembly; compressed here) to run on
// replicas workers, and returns its upload id. The contract's keys exist
// once a gatekeeper has provisioned it: see WaitContract.
func (s *Signer) Upload(ctx context.Context, code []byte, replicas uint8, initInput []byte) ([32]byte, *TxResult, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(code)
	zw.Close()
	seq, err := s.c.deployerSeq(ctx, s.key.Public())
	if err != nil {
		return [32]byte{}, nil, err
	}
	res, err := s.Submit(ctx, &api.UploadContract{Code: buf.Bytes(), Replicas: replicas, InitInput: initInput})
	if err != nil {
		return [32]byte{}, res, err
	}
	return api.UploadID(s.key.Public(), sha256.Sum256(code), seq), res, nil
}

func (c *Client) proveValue(ctx context.Context, path string, data []byte) ([]byte, error) {
	pv, err := c.Prove(ctx, path, data)
	if err != nil {
		return nil, err
	}
	return pv.Value, nil
}

// proveRecentValue is proveValue with ProveRecent (no wait for a block).
func (c *Client) proveRecentValue(ctx context.Context, path string, data []byte) ([]byte, error) {
	pv, err := c.ProveRecent(ctx, path, data)
	if err != nil {
		return nil, err
	}
	return pv.Value, nil
}

// deployerSeq reads how many contracts deployer uploaded (the sequence of
// its next upload).
func (c *Client) deployerSeq(ctx context.Context, d crypto.PublicKey) (uint64, error) {
	v, err := c.proveValue(ctx, api.QueryDeployerSeq, d[:])
	if err != nil || len(v) != 8 {
		return 0, err
	}
	var n uint64
	for _, b := range v {
		n = n<<8 | uint64(b)
	}
	return n, nil
}

// Contract reads a deployed contract's record (proved, as of a recent
// block: see ProveRecent).
func (c *Client) Contract(ctx context.Context, id crypto.PublicKey) (*api.ContractRecord, error) {
	pv, err := c.ProveRecent(ctx, api.QueryContract, id[:])
	if err != nil {
		return nil, err
	}
	if pv.Value == nil {
		return nil, fmt.Errorf("%w %s on chain %s (proved absent at height %d): contract ids are what `phala contract upload` prints once the contract is deployed",
			ErrNoSuchContract, id.Hex(), c.chainID, pv.Height)
	}
	return api.DecodeContractRecord(pv.Value)
}

// ContractByUpload returns the record of the contract an upload became.
func (c *Client) ContractByUpload(ctx context.Context, upload [32]byte) (*api.ContractRecord, error) {
	v, err := c.proveRecentValue(ctx, api.QueryContractUpload, upload[:])
	if err != nil {
		return nil, err
	}
	if len(v) != crypto.PublicKeySize {
		return nil, ErrNotDeployed
	}
	return c.Contract(ctx, crypto.PublicKey(v))
}

// WaitContract waits until an upload is deployed to at least one worker.
func (c *Client) WaitContract(ctx context.Context, upload [32]byte) (*api.ContractRecord, error) {
	for {
		rec, err := c.ContractByUpload(ctx, upload)
		if err == nil && len(rec.Workers) > 0 {
			return rec, nil
		}
		if err != nil && !errors.Is(err, ErrNotDeployed) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for the contract to be deployed (are a gatekeeper, a registered worker and their pherries running?): %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Command sends an encrypted command to a contract: the input is sealed
// with CommKey(signer, contract) and bound to the transaction's nonce,
// which is also the command's nonce, so a replayed payload runs once.
func (s *Signer) Command(ctx context.Context, rec *api.ContractRecord, input []byte) (*TxResult, error) {
	ch, err := channel.New(s.key, rec.Ecdh, api.ChannelPurposeCommand)
	if err != nil {
		return nil, err
	}
	tx, err := s.signFor(ctx, func(nonce uint64) api.Call {
		return &api.ContractCommand{Contract: rec.Identity, Nonce: nonce, Sealed: ch.Seal(input, api.CommandAD(rec.Identity, s.key.Public(), nonce))}
	})
	if err != nil {
		return nil, err
	}
	return s.submit(ctx, tx)
}

// QueryContract asks one of the contract's workers (found through their
// on-chain WorkerInfo) off-chain, and returns the decrypted answer with the
// block height it reflects. Only workers the chain still admits are asked:
// registered, unexpired, with a pRuntime measurement on the allowlist (a
// measurement governance revoked expires every registration made with
// it), all proved.
func (c *Client) QueryContract(ctx context.Context, key *crypto.KeyPair, rec *api.ContractRecord, input []byte) ([]byte, int64, error) {
	ws, err := c.contractWorkers(ctx, rec)
	if err != nil {
		return nil, 0, err
	}
	var lastErr error
	for _, w := range ws {
		// Bound to this worker: no other replica answers it.
		p, err := NewQuery(key, rec.Identity, rec.Ecdh, w.Key, input, time.Now().Add(time.Minute))
		if err != nil {
			return nil, 0, err
		}
		resp, err := postQuery(ctx, w.Endpoint, p.Query)
		if err != nil {
			lastErr = fmt.Errorf("worker %s at %s: %w", w.Key.Short(), w.Endpoint, err)
			continue
		}
		return p.Open(resp)
	}
	return nil, 0, lastErr
}

// WorkerEndpointInfo is a worker running a contract, and the API endpoint
// its WorkerInfo names.
type WorkerEndpointInfo struct {
	Key      crypto.PublicKey
	Endpoint string
}

// contractWorkers returns the workers of rec the chain still admits
// (registered, unexpired, measurement allowed), all proved, in the
// record's order; an error saying why none is when none is.
func (c *Client) contractWorkers(ctx context.Context, rec *api.ContractRecord) ([]WorkerEndpointInfo, error) {
	spv, err := c.ProveRecent(ctx, api.QueryAttestation, nil)
	if err != nil {
		return nil, fmt.Errorf("attestation settings: %w", err)
	}
	settings, err := api.DecodeAttestationSettings(spv.Value)
	if err != nil {
		return nil, fmt.Errorf("attestation settings at height %d: %w", spv.Height, err)
	}
	var out []WorkerEndpointInfo
	var lastErr error
	for _, w := range rec.Workers {
		pv, err := c.ProveRecent(ctx, api.QueryWorker, w[:])
		if err != nil || pv.Value == nil {
			lastErr = fmt.Errorf("worker %s: not registered", w.Short())
			continue
		}
		wr, err := api.DecodeWorkerRecord(pv.Value)
		if err != nil {
			lastErr = err
			continue
		}
		if !wr.Active(pv.Height) {
			lastErr = fmt.Errorf("worker %s: its registration expired at height %d", w.Short(), wr.ExpiresAt)
			continue
		}
		if !settings.MeasurementAllowed(wr.Measurement) {
			lastErr = fmt.Errorf("worker %s: its pRuntime measurement %x is no longer allowed (revoked by governance)", w.Short(), wr.Measurement)
			continue
		}
		out = append(out, WorkerEndpointInfo{Key: w, Endpoint: wr.Info.Endpoint})
	}
	if len(out) == 0 {
		if lastErr == nil {
			lastErr = ErrNotDeployed
		}
		return nil, lastErr
	}
	return out, nil
}

var queryHTTP = &http.Client{Timeout: 10 * time.Second}

func postQuery(ctx context.Context, endpoint string, q *api.ContractQuery) (*api.ContractQueryResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(endpoint, "/")+"/query", bytes.NewReader(q.Encode()))
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
	return api.DecodeContractQueryResponse(b)
}

// Send sends the query to a worker's API endpoint (from its WorkerInfo)
// and opens the answer.
func (p *PendingQuery) Send(ctx context.Context, endpoint string) ([]byte, int64, error) {
	resp, err := postQuery(ctx, endpoint, p.Query)
	if err != nil {
		return nil, 0, err
	}
	return p.Open(resp)
}

// WorkerEndpoint returns the API endpoint a worker registered (proved).
func (c *Client) WorkerEndpoint(ctx context.Context, worker crypto.PublicKey) (string, error) {
	v, err := c.proveRecentValue(ctx, api.QueryWorker, worker[:])
	if err != nil {
		return "", err
	}
	if v == nil {
		return "", fmt.Errorf("worker %s is not registered", worker.Hex())
	}
	wr, err := api.DecodeWorkerRecord(v)
	if err != nil {
		return "", err
	}
	return wr.Info.Endpoint, nil
}

// QueryOnChain is the fallback query path: the signed, sealed query goes on
// chain in a transaction, a worker running the contract answers through
// the chain, and the answer is read back with a proof. Slower and paid
// for; use it when no worker endpoint answers.
func (s *Signer) QueryOnChain(ctx context.Context, rec *api.ContractRecord, input []byte) ([]byte, int64, error) {
	p, err := NewQuery(s.key, rec.Identity, rec.Ecdh, crypto.PublicKey{}, input, time.Now().Add(time.Minute))
	if err != nil {
		return nil, 0, err
	}
	if _, err := s.Submit(ctx, &api.ContractQueryCall{Query: *p.Query}); err != nil {
		return nil, 0, err
	}
	h := p.Query.Hash()
	for {
		v, err := s.c.proveValue(ctx, api.QueryContractReturn, append(rec.Identity[:], h[:]...))
		if err != nil {
			return nil, 0, err
		}
		if v != nil {
			resp, err := api.DecodeContractQueryResponse(v)
			if err != nil {
				return nil, 0, err
			}
			return p.Open(resp)
		}
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("wait for the contract's answer on chain: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
