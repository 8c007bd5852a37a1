package api

import (
	"errors"
	"fmt"
)

// Code is the ABCI result code of a transaction or query. Zero is success.
type Code uint32

// Codespace is the ABCI codespace of every code below.
const Codespace = "phala"

// Result codes. Each names one reason a transaction is refused, so that a
// client can act on it.
const (
	CodeOK Code = iota
	CodeMalformed
	CodeUnsupportedVersion
	CodeWrongChain
	CodeBadSignature
	CodeStaleNonce
	CodeFutureNonce
	CodeFeeTooLow
	CodeInsufficientBalance
	CodeTooLarge
	CodeUnknownCall
	CodeInvalidCall
	CodeAttestation
	CodeMeasurementNotAllowed
	CodeBadSequence
	CodeUnknownOrigin
	CodeNotFound
	CodeInternal
	CodeAlreadyAccepted
	CodeWorkerBlockFull
)

// Sentinel errors, one per code. Wrap them with context.
var (
	ErrMalformed             = errors.New("malformed")
	ErrUnsupportedVersion    = errors.New("unsupported version")
	ErrWrongChain            = errors.New("wrong chain id")
	ErrBadSignature          = errors.New("bad signature")
	ErrStaleNonce            = errors.New("stale nonce")
	ErrFutureNonce           = errors.New("future nonce")
	ErrFeeTooLow             = errors.New("fee too low")
	ErrInsufficientBalance   = errors.New("insufficient balance")
	ErrTooLarge              = errors.New("too large")
	ErrUnknownCall           = errors.New("unknown call")
	ErrInvalidCall           = errors.New("invalid call")
	ErrAttestation           = errors.New("attestation rejected")
	ErrMeasurementNotAllowed = errors.New("measurement not allowed")
	ErrBadSequence           = errors.New("bad message sequence")
	ErrUnknownOrigin         = errors.New("unknown message origin")
	ErrNotFound              = errors.New("not found")
	ErrInternal              = errors.New("internal error")
	// ErrAlreadyAccepted: an off-chain origin's message with this sequence
	// is already in the queue (another relayer submitted it). Relayers
	// treat it as success.
	ErrAlreadyAccepted = errors.New("message already accepted")
	// ErrWorkerBlockFull: the commands of this block already declare
	// max_worker_gas_per_block of gas for one of the command's contract's
	// workers. Nothing changed (no fee, no nonce): send it again in a
	// later block.
	ErrWorkerBlockFull = errors.New("worker's block gas budget is full")

	// ErrBadProof is returned by verifiers when data does not match the
	// commitment it is checked against.
	ErrBadProof = errors.New("proof does not verify")
)

var codeErrors = []error{
	nil, ErrMalformed, ErrUnsupportedVersion, ErrWrongChain, ErrBadSignature, ErrStaleNonce,
	ErrFutureNonce, ErrFeeTooLow, ErrInsufficientBalance, ErrTooLarge, ErrUnknownCall,
	ErrInvalidCall, ErrAttestation, ErrMeasurementNotAllowed, ErrBadSequence, ErrUnknownOrigin,
	ErrNotFound, ErrInternal, ErrAlreadyAccepted, ErrWorkerBlockFull,
}

// CodeOf maps an error to its result code (CodeInternal for an error that
// wraps none of the sentinels).
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	for i, e := range codeErrors {
		if e != nil && errors.Is(err, e) {
			return Code(i)
		}
	}
	return CodeInternal
}

// Err returns the sentinel error of a code.
func (c Code) Err() error {
	if int(c) < len(codeErrors) {
		return codeErrors[c]
	}
	return fmt.Errorf("unknown code %d", uint32(c))
}

// String names the code.
func (c Code) String() string {
	if c == CodeOK {
		return "ok"
	}
	return c.Err().Error()
}

// TxError is the error a client gets for a refused transaction: the code and
// the node's log line.
type TxError struct {
	Code Code
	Log  string
}

func (e *TxError) Error() string { return e.Log }

// Unwrap lets errors.Is match the sentinel of the code.
func (e *TxError) Unwrap() error { return e.Code.Err() }
