package api

import "github.com/phalago/phala/crypto"

// Signing contexts. Each signed structure has exactly one.
const (
	// ContextTx signs a transaction envelope.
	ContextTx crypto.Context = "phala/tx: v1"
	// ContextMessage signs a message an off-chain origin (worker, contract,
	// gatekeeper) pushes into the queue.
	ContextMessage crypto.Context = "phala/mq: message v1"
	// ContextSimQuote signs a sim attestation quote with the development
	// attestation key.
	ContextSimQuote crypto.Context = "phala/attestation: sim quote v1"
)

// Hash domains, prefixed to the input of every hash the protocol commits to.
const (
	DomainWorkerInfo = "phala/registry: worker info v1"
	DomainAppHash    = "phala/app: hash v1"
)
