package api

import (
	"fmt"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// State update arbitration (docs/availability.md, "Arbitration"; the
// specification's "State Update Arbitration" improvement). A state
// update is the contract's signed word: a worker that extracted the
// contract's key could post a wrong one. Every replica therefore also
// vouches for each update it cuts with its own identity (StateVote), and
// within Params.ArbitrationWindow blocks of an update's acceptance its
// deployer, or anyone posting Params.ArbitrationBond, may dispute it
// (ArbitrationRequest); the chain disputes it by itself when a replica's
// vote contradicts it (same previous root, another root), and a dispute
// of an earlier update takes over an open one (which expires). The chain
// announces the dispute
// (ArbitrationOpened); the key set seals the contract key's partials to
// Params.Arbiters extra workers (KeyPartials for KeyForArbiters, announced
// as ArbitersAssigned once T members sent theirs); each arbiter rebuilds the contract's state at the
// checkpoint before the disputed update from the chain, replays the inputs
// the update covers and votes the root it computes (a StateVote). A
// majority of the arbiters decides (ArbitrationVerdict): if they confirm
// the update, the request was frivolous and its bond is lost; if not, the
// chain rolls the contract's entries and checkpoint back to before the
// update, removes every replica that did not vote the arbiters' root, and
// moves the contract's message sequence ahead (the bond is returned).
// Either way every worker whose vote for it started from the update's
// previous root and differs from the arbiters' root is slashed
// Params.ArbitrationSlashPPM of its stake and removed from the contract
// (only votes attribute a root to a worker: the update itself is signed
// by the contract's key). Without a verdict within
// Params.ArbitrationTimeout blocks the dispute expires: nothing changes,
// the bond is returned.

// CallArbitrationRequest disputes a contract's state update.
const CallArbitrationRequest CallKind = 60

func init() { callNames[CallArbitrationRequest] = "arbitration_request" }

// Topics of arbitration.
const (
	// TopicStateVote: payload StateVote, origin a worker: the root the
	// worker computed for a contract at a cut height (a replica's, at
	// each update it cuts; an arbiter's, for the disputed update).
	TopicStateVote = "phala/contracts/state_vote"
	// TopicArbitrationOpened: payload ArbitrationOpened, origin module
	// "contracts".
	TopicArbitrationOpened = "phala/contracts/arbitration_opened"
	// TopicArbitersAssigned: payload ArbitersAssigned, origin module
	// "contracts": the grant the chain accepted.
	TopicArbitersAssigned = "phala/contracts/arbiters"
	// TopicArbitrationVerdict: payload ArbitrationVerdict, origin module
	// "contracts".
	TopicArbitrationVerdict = "phala/contracts/verdict"
)

// Errors of arbitration requests (each wraps ErrInvalidCall).
var (
	ErrArbitrationClosed = fmt.Errorf("%w: no state update of that height can be disputed", ErrInvalidCall)
	ErrArbitrationOpen   = fmt.Errorf("%w: an arbitration of this contract is already open", ErrInvalidCall)
)

// ArbitrationRequest disputes the state update of Contract cut at Height
// (a StateUpdate.Height the chain accepted within
// Params.ArbitrationWindow blocks). Its signer, unless the contract's
// deployer, posts Params.ArbitrationBond.
type ArbitrationRequest struct {
	Contract crypto.PublicKey
	Height   int64
}

func (*ArbitrationRequest) Kind() CallKind { return CallArbitrationRequest }
func (c *ArbitrationRequest) encode(w *codec.Writer) {
	w.Fixed(c.Contract[:])
	w.Varint(c.Height)
}

func decodeArbitrationRequest(r *codec.Reader) Call {
	c := &ArbitrationRequest{}
	r.Fixed(c.Contract[:])
	c.Height = r.Varint()
	if r.Err() == nil && c.Height <= 0 {
		r.Fail(fmt.Errorf("%w: height %d", codec.ErrBadFormat, c.Height))
	}
	return c
}

// StateVote is a worker's word on a contract's state at a cut height:
// the root it computed (signed by the worker's identity as the pushed
// message's origin).
type StateVote struct {
	Contract crypto.PublicKey
	Height   int64
	// PrevRoot: the root the worker computed from (its previous cut's,
	// or the rebuilt checkpoint's for an arbiter): a vote differing from
	// a verdict counts against its worker only if it started from the
	// same root as the disputed update.
	PrevRoot [32]byte
	Root     [32]byte
}

// Encode returns the canonical bytes.
func (v *StateVote) Encode() []byte {
	w := codec.NewWriter(112)
	w.Fixed(v.Contract[:])
	w.Varint(v.Height)
	w.Fixed(v.PrevRoot[:])
	w.Fixed(v.Root[:])
	return w.Bytes()
}

// DecodeStateVote strictly decodes a StateVote.
func DecodeStateVote(b []byte) (*StateVote, error) {
	v := &StateVote{}
	r := codec.NewReader(b)
	r.Fixed(v.Contract[:])
	v.Height = r.Varint()
	r.Fixed(v.PrevRoot[:])
	r.Fixed(v.Root[:])
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: state vote: %v", ErrMalformed, err)
	}
	return v, nil
}

// ArbitrationOpened announces a dispute of Contract's update at Height
// (new root Root), whose previous checkpoint is PrevHeight/PrevRoot, with
// that checkpoint's entries in the chain's state at EntriesHeight (the
// block before the one that accepted the disputed update). Requester is
// the zero key when the chain opened it from a contradicting vote.
type ArbitrationOpened struct {
	Contract      crypto.PublicKey
	Height        int64
	Root          [32]byte
	PrevHeight    int64
	PrevRoot      [32]byte
	EntriesHeight int64
	Requester     crypto.PublicKey
}

// Encode returns the canonical bytes.
func (o *ArbitrationOpened) Encode() []byte {
	w := codec.NewWriter(200)
	w.Fixed(o.Contract[:])
	w.Varint(o.Height)
	w.Fixed(o.Root[:])
	w.Varint(o.PrevHeight)
	w.Fixed(o.PrevRoot[:])
	w.Varint(o.EntriesHeight)
	w.Fixed(o.Requester[:])
	return w.Bytes()
}

// DecodeArbitrationOpened strictly decodes an ArbitrationOpened.
func DecodeArbitrationOpened(b []byte) (*ArbitrationOpened, error) {
	o := &ArbitrationOpened{}
	r := codec.NewReader(b)
	r.Fixed(o.Contract[:])
	o.Height = r.Varint()
	r.Fixed(o.Root[:])
	o.PrevHeight = r.Varint()
	r.Fixed(o.PrevRoot[:])
	o.EntriesHeight = r.Varint()
	r.Fixed(o.Requester[:])
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: arbitration opened: %v", ErrMalformed, err)
	}
	return o, nil
}

// ArbitersAssigned announces the arbiters the chain accepted (the first
// completed round of KeyForArbiters partials of the dispute): Arbiters,
// and the grant (an encoded ContractKeyGrant the chain built) naming the
// round whose partials they combine.
type ArbitersAssigned struct {
	Contract crypto.PublicKey
	Height   int64
	Arbiters []crypto.PublicKey
	Grant    []byte
}

// Encode returns the canonical bytes.
func (a *ArbitersAssigned) Encode() []byte {
	return encodeArbiters(a.Contract, a.Height, a.Arbiters, a.Grant)
}

func encodeArbiters(c crypto.PublicKey, h int64, ks []crypto.PublicKey, grant []byte) []byte {
	w := codec.NewWriter(64 + 32*len(ks) + len(grant))
	w.Fixed(c[:])
	w.Varint(h)
	w.BytesField(EncodeKeys(ks))
	w.BytesField(grant)
	return w.Bytes()
}

// DecodeArbitersAssigned strictly decodes an ArbitersAssigned.
func DecodeArbitersAssigned(b []byte) (*ArbitersAssigned, error) {
	a := &ArbitersAssigned{}
	r := codec.NewReader(b)
	r.Fixed(a.Contract[:])
	a.Height = r.Varint()
	ks := r.BytesField(8 + 32*MaxReplicas)
	a.Grant = r.BytesField(maxDeployedGrantSize)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: arbiters assigned: %v", ErrMalformed, err)
	}
	var err error
	if a.Arbiters, err = DecodeKeys(ks); err != nil {
		return nil, err
	}
	if len(a.Arbiters) > MaxReplicas {
		return nil, fmt.Errorf("%w: arbiters assigned: over %d arbiters", ErrMalformed, MaxReplicas)
	}
	if _, err := DecodeContractKeyGrant(a.Grant); err != nil {
		return nil, err
	}
	return a, nil
}

// Outcomes of an arbitration (ArbitrationVerdict.Outcome).
const (
	ArbitrationUpheld     = 1 // the arbiters computed the disputed root: the request was frivolous
	ArbitrationOverturned = 2 // they did not: the update is rolled back
	ArbitrationExpired    = 3 // no verdict in time: nothing changes
)

// ArbitrationVerdict closes the dispute of Contract's update at Height:
// Outcome, the arbiters' majority Root (zero when expired), and the
// workers slashed for voting another root from the update's previous
// root (at most 2×MaxReplicas listed). After an
// overturn the contract's checkpoint is the one before the update
// (RollbackHeight, RollbackRoot): every update from Height on was undone.
type ArbitrationVerdict struct {
	Contract       crypto.PublicKey
	Height         int64
	Outcome        uint8
	Root           [32]byte
	Slashed        []crypto.PublicKey
	RollbackHeight int64
	RollbackRoot   [32]byte
	// ResumeSeq (overturned only; 0 otherwise): the contract's next
	// message sequence from the verdict on. The chain moves it past every
	// sequence used or in flight (messages of the wrong history are
	// refused as stale), and a rebuilt replica numbers its messages after
	// the verdict from it.
	ResumeSeq uint64
}

// Encode returns the canonical bytes.
func (v *ArbitrationVerdict) Encode() []byte {
	w := codec.NewWriter(160 + 32*len(v.Slashed))
	w.Fixed(v.Contract[:])
	w.Varint(v.Height)
	w.U8(v.Outcome)
	w.Fixed(v.Root[:])
	w.BytesField(EncodeKeys(v.Slashed))
	w.Varint(v.RollbackHeight)
	w.Fixed(v.RollbackRoot[:])
	w.Uvarint(v.ResumeSeq)
	return w.Bytes()
}

// DecodeArbitrationVerdict strictly decodes an ArbitrationVerdict.
func DecodeArbitrationVerdict(b []byte) (*ArbitrationVerdict, error) {
	v := &ArbitrationVerdict{}
	r := codec.NewReader(b)
	r.Fixed(v.Contract[:])
	v.Height = r.Varint()
	v.Outcome = r.U8()
	r.Fixed(v.Root[:])
	ks := r.BytesField(8 + 32*2*MaxReplicas)
	v.RollbackHeight = r.Varint()
	r.Fixed(v.RollbackRoot[:])
	v.ResumeSeq = r.Uvarint()
	if r.Err() == nil && (v.Outcome < ArbitrationUpheld || v.Outcome > ArbitrationExpired) {
		r.Fail(fmt.Errorf("%w: outcome %d", codec.ErrBadFormat, v.Outcome))
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: arbitration verdict: %v", ErrMalformed, err)
	}
	var err error
	if v.Slashed, err = DecodeKeys(ks); err != nil {
		return nil, err
	}
	return v, nil
}

// RemovedByArbitration is the ContractDeployed.Reason of the workers an
// arbitration verdict removed (their vote, from the disputed update's
// previous root, differed from the arbiters'; or, at an overturn, they did
// not vouch for the arbiters' root).
const RemovedByArbitration = "wrong state update (arbitration)"

// QueryArbitration reads a contract's open arbitration (proved state).
// data: the contract's identity key; value: Arbitration (absent: none
// open).
const QueryArbitration = "/contract/arbitration"

// ArbitrationKey is the state key of a contract's open arbitration.
func ArbitrationKey(contract crypto.PublicKey) []byte { return append([]byte("ca/"), contract[:]...) }

// Arbitration is the contracts module's record of the open dispute of a
// contract's state update (ArbitrationKey, QueryArbitration): the
// disputed update (Height, Root), the checkpoint before it (PrevHeight,
// PrevRoot; 0 and EmptyStateRoot before the contract's first update) whose
// entries are in the state at EntriesHeight, the Requester and the Bond it
// posted (PHA base units held by the module; 0 when the deployer asked;
// the zero key and 0 when the chain opened it from a contradicting vote),
// the block that Opened it, and the Arbiters assigned (none until a
// round of KeyForArbiters partials completes).
type Arbitration struct {
	Height        int64
	Root          [32]byte
	PrevHeight    int64
	PrevRoot      [32]byte
	EntriesHeight int64
	Requester     crypto.PublicKey
	Bond          uint64
	Opened        int64
	Arbiters      []crypto.PublicKey
}

// Encode returns the canonical bytes.
func (a *Arbitration) Encode() []byte {
	w := codec.NewWriter(200 + 32*len(a.Arbiters))
	w.Varint(a.Height)
	w.Fixed(a.Root[:])
	w.Varint(a.PrevHeight)
	w.Fixed(a.PrevRoot[:])
	w.Varint(a.EntriesHeight)
	w.Fixed(a.Requester[:])
	w.Uvarint(a.Bond)
	w.Varint(a.Opened)
	w.BytesField(EncodeKeys(a.Arbiters))
	return w.Bytes()
}

// DecodeArbitration strictly decodes an Arbitration (at most MaxReplicas
// arbiters; Arbiters nil when none).
func DecodeArbitration(b []byte) (*Arbitration, error) {
	a := &Arbitration{}
	r := codec.NewReader(b)
	a.Height = r.Varint()
	r.Fixed(a.Root[:])
	a.PrevHeight = r.Varint()
	r.Fixed(a.PrevRoot[:])
	a.EntriesHeight = r.Varint()
	r.Fixed(a.Requester[:])
	a.Bond = r.Uvarint()
	a.Opened = r.Varint()
	ks := r.BytesField(8 + 32*MaxReplicas)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: arbitration: %v", ErrMalformed, err)
	}
	var err error
	if a.Arbiters, err = DecodeKeys(ks); err != nil {
		return nil, err
	}
	if len(a.Arbiters) > MaxReplicas {
		return nil, fmt.Errorf("%w: arbitration: over %d arbiters", ErrMalformed, MaxReplicas)
	}
	if len(a.Arbiters) == 0 {
		a.Arbiters = nil
	}
	return a, nil
}
