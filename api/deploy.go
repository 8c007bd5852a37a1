package api

import (
	"fmt"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Deployment and reassignment (docs/availability.md, "Reassignment"): the
// contracts module alone decides which workers run a contract. It records
// the first grant a gatekeeper sends for an upload (the deployment), adds
// the workers of later grants while the contract has fewer than the
// replicas its deployer asked for, and removes a worker whose registration
// expired or whose measurement was revoked, whose stake fell below
// min_worker_stake, that the chain found unresponsive, or that its
// deployer asked to replace. Each change is announced in the queue as one
// ContractDeployed, which every pRuntime follows: a worker starts a
// contract (or recovers it from its on-chain checkpoint) only on the
// ContractDeployed that adds it, stops it on the one that removes it, and a
// gatekeeper grants replacement workers when the set falls short.

// TopicContractDeployed: payload ContractDeployed, origin module
// "contracts".
const TopicContractDeployed = "phala/contracts/deployed"

// CallContractReassign is the deployer's request to replace one worker of
// its contract.
const CallContractReassign CallKind = 10

func init() { callNames[CallContractReassign] = "contract_reassign" }

// Why a contract's worker set changed (ContractDeployed.Reason).
const (
	DeployedFirst        = "deployed"
	DeployedAdded        = "replica added"
	RemovedExpired       = "registration expired or measurement revoked"
	RemovedStake         = "stake below min_worker_stake"
	RemovedUnresponsive  = "unresponsive at the last era end"
	RemovedByDeployer    = "reassigned by the deployer"
	RemovedGatekeeper    = "became a gatekeeper (gatekeepers run no contract)"
	MaxDeployedReason    = 128
	MaxExcludedWorkers   = 32
	maxDeployedGrantSize = 192 + 32*MaxReplicas
)

// ContractDeployed announces a change of a contract's worker set: either
// workers added by a completed round of key partials (Grant: the
// ContractKeyGrant the chain built, naming exactly the added workers), or
// workers removed (Removed, with Grant empty). Workers is the whole set
// after the change; Reason one of the Deployed*/Removed* strings.
type ContractDeployed struct {
	Contract crypto.PublicKey
	Upload   [32]byte
	Workers  []crypto.PublicKey
	Removed  []crypto.PublicKey
	Reason   string
	Grant    []byte // an encoded ContractKeyGrant; empty for a removal
}

// Added returns the workers the change added (from its grant), nil for a
// removal or an undecodable grant.
func (d *ContractDeployed) Added() []crypto.PublicKey {
	if len(d.Grant) == 0 {
		return nil
	}
	g, err := DecodeContractKeyGrant(d.Grant)
	if err != nil {
		return nil
	}
	return g.Workers
}

// Encode returns the canonical bytes.
func (d *ContractDeployed) Encode() []byte {
	w := codec.NewWriter(128 + 32*(len(d.Workers)+len(d.Removed)) + len(d.Reason) + len(d.Grant))
	w.Fixed(d.Contract[:])
	w.Fixed(d.Upload[:])
	w.BytesField(EncodeKeys(d.Workers))
	w.BytesField(EncodeKeys(d.Removed))
	w.String(d.Reason)
	w.BytesField(d.Grant)
	return w.Bytes()
}

// DecodeContractDeployed strictly decodes a ContractDeployed: at most
// MaxReplicas workers and removed workers, a grant that decodes (or none).
func DecodeContractDeployed(b []byte) (*ContractDeployed, error) {
	d := &ContractDeployed{}
	r := codec.NewReader(b)
	r.Fixed(d.Contract[:])
	r.Fixed(d.Upload[:])
	ws := r.BytesField(8 + 32*MaxReplicas)
	rs := r.BytesField(8 + 32*MaxReplicas)
	d.Reason = r.String(MaxDeployedReason)
	d.Grant = r.BytesField(maxDeployedGrantSize)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: contract deployed: %v", ErrMalformed, err)
	}
	var err error
	if d.Workers, err = DecodeKeys(ws); err != nil {
		return nil, err
	}
	if d.Removed, err = DecodeKeys(rs); err != nil {
		return nil, err
	}
	if len(d.Workers) > MaxReplicas || len(d.Removed) > MaxReplicas {
		return nil, fmt.Errorf("%w: contract deployed: over %d workers", ErrMalformed, MaxReplicas)
	}
	if len(d.Grant) > 0 {
		if _, err := DecodeContractKeyGrant(d.Grant); err != nil {
			return nil, err
		}
	} else {
		d.Grant = nil
	}
	return d, nil
}

// ContractReassign asks the chain to remove Worker from the contract's
// workers (only the contract's deployer may). The worker stops running it,
// is not assigned it again while it stays among the record's Excluded,
// and a gatekeeper grants a replacement when one is eligible.
type ContractReassign struct {
	Contract crypto.PublicKey
	Worker   crypto.PublicKey
}

func (*ContractReassign) Kind() CallKind { return CallContractReassign }
func (c *ContractReassign) encode(w *codec.Writer) {
	w.Fixed(c.Contract[:])
	w.Fixed(c.Worker[:])
}

func decodeContractReassign(r *codec.Reader) Call {
	c := &ContractReassign{}
	r.Fixed(c.Contract[:])
	r.Fixed(c.Worker[:])
	return c
}
