package client

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
	"github.com/phalago/phala/crypto/channel"
)

// Errors of receipts.
var (
	// ErrNoReceipt: no worker running the contract holds the receipt,
	// though they dispatched the command's block (older than their
	// retention, or a nonce that did not increase, which is never
	// executed).
	ErrNoReceipt = errors.New("no receipt")
	// ErrNotYourReceipt: the receipt is sealed to another account.
	ErrNotYourReceipt = errors.New("the receipt is sealed to another account")
	// ErrCommandFailed: the receipt says the contract did not execute the
	// command successfully (see *CommandError).
	ErrCommandFailed = errors.New("command failed")
)

// Receipt is an opened command receipt (api.Receipt): what became of one
// command, checked to be signed by the contract.
type Receipt struct {
	Contract crypto.PublicKey
	From     crypto.PublicKey
	Nonce    uint64
	// Height is the block that delivered the command; the contract's
	// state after it.
	Height  int64
	Status  api.ReceiptStatus
	GasUsed uint64 // gas units
	// GasLimit is the gas the command declared (and paid for), when the
	// caller knows it (Execute sets it; Client.Receipt cannot: zero).
	GasLimit uint64
	// Output is the contract's output, or its error message (or what
	// stopped the call) when Status is not api.ReceiptOK.
	Output []byte
	Worker crypto.PublicKey // the worker that served it
}

// Err returns nil for a command the contract executed, else a
// *CommandError (errors.Is ErrCommandFailed) with its message.
func (r *Receipt) Err() error {
	if r.Status == api.ReceiptOK {
		return nil
	}
	return &CommandError{Status: r.Status, Message: string(r.Output), Height: r.Height}
}

// CommandError is a command the contract refused, or that failed.
type CommandError struct {
	Status  api.ReceiptStatus
	Message string
	Height  int64
}

func (e *CommandError) Error() string {
	if e.Status == api.ReceiptRejected {
		return fmt.Sprintf("command rejected at block %d: %s", e.Height, e.Message)
	}
	return fmt.Sprintf("the contract refused the command at block %d: %s", e.Height, e.Message)
}

func (e *CommandError) Unwrap() error { return ErrCommandFailed }

// OpenReceipt checks rc against the contract's record and opens it with
// key, the command's sender. Errors: ErrNotYourReceipt (rc is another
// account's), api.ErrBadSignature (not signed by the contract, or another
// command's receipt), or a body that does not open.
func OpenReceipt(key *crypto.KeyPair, rec *api.ContractRecord, rc *api.Receipt) (*Receipt, error) {
	if rc.From != key.Public() {
		return nil, fmt.Errorf("%w: the command's sender is %s, the key given is %s: only the sender's key opens it", ErrNotYourReceipt, rc.From.Address(), key.Public().Address())
	}
	if rc.Contract != rec.Identity || !rc.Verify() {
		return nil, fmt.Errorf("%w: receipt not signed by contract %s", api.ErrBadSignature, rec.Identity.Short())
	}
	ch, err := channel.New(key, rec.Ecdh, api.ChannelPurposeReceipt)
	if err != nil {
		return nil, err
	}
	plain, err := ch.Open(rc.Sealed, rc.Header())
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", errReceiptDoesNotOpen, err)
	}
	body, err := api.DecodeReceiptBody(plain)
	if err != nil {
		return nil, err
	}
	return &Receipt{Contract: rc.Contract, From: rc.From, Nonce: rc.Nonce, Height: rc.Height,
		Status: body.Status, GasUsed: body.GasUsed, Output: body.Output}, nil
}

// FetchReceipt asks a worker's public API for the receipt of command
// (contract, from, nonce). ok is false while the worker holds none; then
// dispatched is the height it has dispatched (-1 if it does not run the
// contract).
func FetchReceipt(ctx context.Context, endpoint string, contract, from crypto.PublicKey, nonce uint64) (rc *api.Receipt, dispatched int64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(endpoint, "/")+api.ReceiptPath(contract, from, nonce), nil)
	if err != nil {
		return nil, 0, err
	}
	res, err := queryHTTP.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, api.MaxReceiptOutputBytes+4096))
	if err != nil {
		return nil, 0, err
	}
	switch res.StatusCode {
	case http.StatusOK:
		rc, err := api.DecodeReceipt(b)
		return rc, 0, err
	case http.StatusNotFound:
		var body struct {
			Error      string `json:"error"`
			Dispatched *int64 `json:"dispatched"`
		}
		if json.NewDecoder(bytes.NewReader(b)).Decode(&body) == nil {
			if body.Dispatched != nil {
				return nil, *body.Dispatched, nil
			}
			return nil, -1, nil
		}
	}
	return nil, 0, fmt.Errorf("%s: %s", res.Status, strings.TrimSpace(string(b)))
}

// Receipt returns the receipt of the command key sent to rec with nonce,
// committed at height (its TxResult's), from the first of the contract's
// workers (contractWorkers) that holds it, opened with key. It waits
// while the workers have not dispatched height yet, until ctx ends. The
// workers are asked at once, each again while it has not dispatched
// height, so a replica that does not answer (its host down or cut off)
// holds up no other replica's receipt.
// Errors: ErrNoReceipt (every worker dispatched height and holds none),
// ErrNotYourReceipt, ErrNoWorker, the workers' errors.
func (c *Client) Receipt(ctx context.Context, key *crypto.KeyPair, rec *api.ContractRecord, nonce uint64, height int64) (*Receipt, error) {
	return receiptRereading(ctx, c.contractWorkers, func(ctx context.Context) (*api.ContractRecord, error) { return c.Contract(ctx, rec.Identity) }, key, rec, nonce, height)
}

// receiptRereading asks rec's workers (from workers) for the receipt; if
// it does not open with rec's ECDH key, it reads the record again
// (reread) and, if the key changed, asks once more. A worker seals a
// receipt when asked, under the contract's current ECDH key, which
// rotates with its key epoch: rec may be older than that.
func receiptRereading(ctx context.Context, workers func(context.Context, *api.ContractRecord) ([]WorkerEndpointInfo, error), reread func(context.Context) (*api.ContractRecord, error), key *crypto.KeyPair, rec *api.ContractRecord, nonce uint64, height int64) (*Receipt, error) {
	ws, err := workers(ctx, rec)
	if err != nil {
		return nil, err
	}
	r, err := receiptFrom(ctx, ws, key, rec, nonce, height)
	if err == nil || !errors.Is(err, errReceiptDoesNotOpen) {
		return r, err
	}
	fresh, ferr := reread(ctx)
	if ferr != nil || fresh.Ecdh == rec.Ecdh {
		return nil, err
	}
	if ws, err = workers(ctx, fresh); err != nil {
		return nil, err
	}
	return receiptFrom(ctx, ws, key, fresh, nonce, height)
}

// errReceiptDoesNotOpen: a receipt signed by the contract whose body does
// not open with the record's ECDH key (the record is older than the
// contract's key epoch) or was altered.
var errReceiptDoesNotOpen = errors.New("receipt does not open with this key and the contract's ECDH key (re-read the contract's record: it rotates with the contract's key epoch), or it was altered")

// workerAnswer is one worker's answer to a receipt request.
type workerAnswer struct {
	i      int
	r      *Receipt
	err    error
	behind bool // it has not dispatched the command's height (or does not run the contract yet)
}

// receiptFrom asks the workers ws for the receipt, each in a goroutine of
// its own: a worker is asked again (backing off from 50 ms to 500 ms) until
// one holds the receipt, or none is behind and every worker has answered.
func receiptFrom(ctx context.Context, ws []WorkerEndpointInfo, key *crypto.KeyPair, rec *api.ContractRecord, nonce uint64, height int64) (*Receipt, error) {
	if len(ws) == 0 {
		return nil, fmt.Errorf("%w: contract %s", ErrNoWorker, rec.Identity.Short())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ask := func(i int) workerAnswer {
		w := ws[i]
		a := workerAnswer{i: i}
		rc, dispatched, err := FetchReceipt(ctx, w.Endpoint, rec.Identity, key.Public(), nonce)
		switch {
		case err != nil:
			a.err = explainWorkerError(fmt.Errorf("worker %s at %s: %w", w.Key.Short(), w.Endpoint, err))
		case rc != nil:
			if rc.From != key.Public() || rc.Nonce != nonce {
				a.err = fmt.Errorf("%w: worker %s answered another command's receipt", api.ErrBadSignature, w.Key.Short())
				break
			}
			r, err := OpenReceipt(key, rec, rc)
			if err != nil {
				a.err = fmt.Errorf("worker %s: %w", w.Key.Short(), err)
				break
			}
			r.Worker = w.Key
			a.r = r
		case dispatched < 0:
			a.err = fmt.Errorf("worker %s does not run contract %s yet (%s)", w.Key.Short(), rec.Identity.Short(), notRunningHint)
			a.behind = true
		case dispatched < height:
			a.behind = true
		default:
			a.err = fmt.Errorf("%w for nonce %d of %s: worker %s dispatched block %d and holds none (receipts are kept for the latest commands only; a nonce that did not increase is never executed)",
				ErrNoReceipt, nonce, key.Public().Address(), w.Key.Short(), dispatched)
		}
		return a
	}
	answers := make(chan workerAnswer)
	for i := range ws {
		go func() {
			delay := 50 * time.Millisecond
			for {
				a := ask(i)
				select {
				case answers <- a:
				case <-ctx.Done():
					return
				}
				if a.r != nil {
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(delay):
				}
				delay = min(delay*2, 500*time.Millisecond)
			}
		}()
	}
	latest := make([]*workerAnswer, len(ws)) // nil: no answer yet
	for {
		select {
		case a := <-answers:
			if a.r != nil {
				return a.r, nil
			}
			latest[a.i] = &a
			done, lastErr := true, error(nil)
			for _, l := range latest {
				if l == nil || l.behind {
					done = false
					break
				}
				if l.err != nil {
					lastErr = l.err
				}
			}
			if done {
				return nil, lastErr
			}
		case <-ctx.Done():
			var lastErr error
			for _, l := range latest {
				if l != nil && l.err != nil {
					lastErr = l.err
				}
			}
			if lastErr == nil {
				lastErr = fmt.Errorf("the contract's workers have not dispatched block %d yet (are their pherries running?)", height)
			}
			return nil, fmt.Errorf("wait for the receipt: %w (%v)", ctx.Err(), lastErr)
		}
	}
}

// Execute sends a command (Command, with opts) and waits for its receipt
// (Client.Receipt): the SDK's one call for "run this and tell me what
// happened". The receipt's Err says whether the contract executed it.
// Errors: Command's, then Receipt's (the TxResult is returned with them:
// the command is on chain).
func (s *Signer) Execute(ctx context.Context, rec *api.ContractRecord, input []byte, opts ...CommandOption) (*Receipt, *TxResult, error) {
	o := commandOptions{}
	for _, f := range opts {
		f(&o)
	}
	if o.gas == 0 {
		o.gas = s.c.DefaultGasLimit()
	}
	res, err := s.Command(ctx, rec, input, WithGas(o.gas))
	if err != nil {
		return nil, res, err
	}
	r, err := s.c.Receipt(ctx, s.key, rec, res.Nonce, res.Height)
	if r != nil {
		r.GasLimit = o.gas
	}
	return r, res, err
}
