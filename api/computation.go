package api

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// The computation module: heartbeat challenges, activity counters, the
// 1/4 unresponsiveness rule and era rewards (docs/economy.md; the
// specification's "Offline Worker Detection", whitepaper 4.10).
const (
	// TopicChallenge: payload Challenge (origin module computation), at
	// most one per block: the nodes challenged in that block.
	TopicChallenge = "phala/computation/challenge"
	// TopicHeartbeat: payload Heartbeat (origin a worker or gatekeeper:
	// the challenged node itself), its pRuntime's answer.
	TopicHeartbeat = "phala/computation/heartbeat"
	// TopicAssignable: payload Assignability (origin module computation),
	// sent when a node's responsiveness verdict changes.
	TopicAssignable = "phala/computation/assignable"
	// TopicExecuted: payload Executed (origin a worker running the
	// contract): the worker executed the contract's commands up to
	// Height (sent for contracts with an execution timeout, at most once
	// per contract per block that had commands for it).
	TopicExecuted = "phala/computation/executed"
	// ComputationModule is the module's origin name.
	ComputationModule = "computation"
	// MaxChallengedPerBlock bounds a Challenge's node list.
	MaxChallengedPerBlock = 100_000
)

// HeartbeatSelector returns the value deciding whether node is challenged
// at the block whose previous block has hash prev: it is, iff
// HeartbeatSelector(prev, node) mod era_length < heartbeats_per_era.
func HeartbeatSelector(prev []byte, node crypto.PublicKey) uint64 {
	h := sha256.New()
	h.Write([]byte("phala/heartbeat v1"))
	h.Write(prev)
	h.Write(node[:])
	return binary.BigEndian.Uint64(h.Sum(nil)[:8])
}

// Challenge lists the nodes a block challenges; Seed is the hash of the
// block before it (which made the selection).
type Challenge struct {
	Seed  [BlockHashSize]byte
	Nodes []crypto.PublicKey
}

// Encode returns the canonical bytes.
func (c *Challenge) Encode() []byte {
	w := codec.NewWriter(40 + 32*len(c.Nodes))
	w.Fixed(c.Seed[:])
	w.Uvarint(uint64(len(c.Nodes)))
	for _, n := range c.Nodes {
		w.Fixed(n[:])
	}
	return w.Bytes()
}

// DecodeChallenge strictly decodes a challenge.
func DecodeChallenge(b []byte) (*Challenge, error) {
	c := &Challenge{}
	r := codec.NewReader(b)
	r.Fixed(c.Seed[:])
	n := r.Uvarint()
	if n > MaxChallengedPerBlock || n > uint64(r.Remaining()/crypto.PublicKeySize) {
		r.Fail(fmt.Errorf("%w: %d nodes", codec.ErrTooLong, n))
	}
	for i := uint64(0); r.Err() == nil && i < n; i++ {
		var k crypto.PublicKey
		r.Fixed(k[:])
		c.Nodes = append(c.Nodes, k)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: challenge: %v", ErrMalformed, err)
	}
	return c, nil
}

// Heartbeat answers the challenge of block Height with its seed.
type Heartbeat struct {
	Height int64
	Seed   [BlockHashSize]byte
}

// Encode returns the canonical bytes.
func (h *Heartbeat) Encode() []byte {
	w := codec.NewWriter(48)
	w.Varint(h.Height)
	w.Fixed(h.Seed[:])
	return w.Bytes()
}

// DecodeHeartbeat strictly decodes a heartbeat.
func DecodeHeartbeat(b []byte) (*Heartbeat, error) {
	h := &Heartbeat{}
	r := codec.NewReader(b)
	h.Height = r.Varint()
	r.Fixed(h.Seed[:])
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: heartbeat: %v", ErrMalformed, err)
	}
	return h, nil
}

// Assignability says whether a node may be given new contracts, as far as
// its responsiveness goes (its stake is the staking module's part).
type Assignability struct {
	Node       crypto.PublicKey
	Assignable bool
	Reason     string
}

// Encode returns the canonical bytes.
func (a *Assignability) Encode() []byte {
	w := codec.NewWriter(48 + len(a.Reason))
	w.Fixed(a.Node[:])
	w.Bool(a.Assignable)
	w.BytesField([]byte(a.Reason))
	return w.Bytes()
}

// DecodeAssignability strictly decodes the payload.
func DecodeAssignability(b []byte) (*Assignability, error) {
	a := &Assignability{}
	r := codec.NewReader(b)
	r.Fixed(a.Node[:])
	a.Assignable = r.Bool()
	a.Reason = string(r.BytesField(256))
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: assignability: %v", ErrMalformed, err)
	}
	return a, nil
}

// Activity is a node's activity counters in one era.
type Activity struct {
	Challenged uint64 // challenges issued to it
	Answered   uint64 // answered within the window
	Egress     uint64 // other messages of its own the queue accepted
}

// Count is c_n of whitepaper 4.10: answered challenges plus accepted
// egress.
func (a *Activity) Count() uint64 { return a.Answered + a.Egress }

// Encode returns the canonical bytes.
func (a *Activity) Encode() []byte {
	w := codec.NewWriter(16)
	w.Uvarint(a.Challenged)
	w.Uvarint(a.Answered)
	w.Uvarint(a.Egress)
	return w.Bytes()
}

// DecodeActivity strictly decodes activity counters.
func DecodeActivity(b []byte) (*Activity, error) {
	a := &Activity{}
	r := codec.NewReader(b)
	a.Challenged = r.Uvarint()
	a.Answered = r.Uvarint()
	a.Egress = r.Uvarint()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: activity: %v", ErrMalformed, err)
	}
	return a, nil
}

// NodeVerdict is one node's outcome of an era.
type NodeVerdict struct {
	Node         crypto.PublicKey
	Gatekeeper   bool
	Count        uint64 // c_n
	Unresponsive bool
	Exempt       bool   // registered during the era: not judged
	Slashed      uint64 // units burned
	Reward       uint64 // units minted to it and its stakers
}

// EraReport is what the chain decided at the end of an era.
type EraReport struct {
	Era        uint64
	Height     int64  // the era's last block
	Budget     uint64 // units the era's inflation allowed
	MaxWorker  uint64 // max c_n over workers
	MaxGateKpr uint64 // max c_n over gatekeepers
	Nodes      []NodeVerdict
}

// Encode returns the canonical bytes.
func (e *EraReport) Encode() []byte {
	w := codec.NewWriter(64 + 64*len(e.Nodes))
	w.Uvarint(e.Era)
	w.Varint(e.Height)
	w.Uvarint(e.Budget)
	w.Uvarint(e.MaxWorker)
	w.Uvarint(e.MaxGateKpr)
	w.Uvarint(uint64(len(e.Nodes)))
	for _, n := range e.Nodes {
		w.Fixed(n.Node[:])
		w.Bool(n.Gatekeeper)
		w.Uvarint(n.Count)
		w.Bool(n.Unresponsive)
		w.Bool(n.Exempt)
		w.Uvarint(n.Slashed)
		w.Uvarint(n.Reward)
	}
	return w.Bytes()
}

// MaxEraReportNodes bounds an era report.
const MaxEraReportNodes = 100_000

// DecodeEraReport strictly decodes an era report.
func DecodeEraReport(b []byte) (*EraReport, error) {
	e := &EraReport{}
	r := codec.NewReader(b)
	e.Era = r.Uvarint()
	e.Height = r.Varint()
	e.Budget = r.Uvarint()
	e.MaxWorker = r.Uvarint()
	e.MaxGateKpr = r.Uvarint()
	n := r.Uvarint()
	if n > MaxEraReportNodes || n > uint64(r.Remaining()/37) {
		r.Fail(fmt.Errorf("%w: %d nodes", codec.ErrTooLong, n))
	}
	for i := uint64(0); r.Err() == nil && i < n; i++ {
		var v NodeVerdict
		r.Fixed(v.Node[:])
		v.Gatekeeper = r.Bool()
		v.Count = r.Uvarint()
		v.Unresponsive = r.Bool()
		v.Exempt = r.Bool()
		v.Slashed = r.Uvarint()
		v.Reward = r.Uvarint()
		e.Nodes = append(e.Nodes, v)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: era report: %v", ErrMalformed, err)
	}
	return e, nil
}

// State keys and queries of the computation module.
const (
	QueryActivity  = "/computation/activity"  // data: era (big-endian u64) ‖ node; value: Activity
	QueryEraReport = "/computation/era"       // data: era (big-endian u64); value: EraReport
	QueryChallenge = "/computation/challenge" // data: node; value: big-endian u64 heights of its unanswered challenges
	QueryExecuted  = "/computation/executed"  // data: contract ‖ worker; value: big-endian u64 height acknowledged
)

// ActivityKey is the state key of a node's activity in an era.
func ActivityKey(era uint64, node crypto.PublicKey) []byte {
	return append(binary.BigEndian.AppendUint64([]byte("cm/act/"), era), node[:]...)
}

// ActivityPrefix is the state key prefix of an era's activity.
func ActivityPrefix(era uint64) []byte { return binary.BigEndian.AppendUint64([]byte("cm/act/"), era) }

// EraReportKey is the state key of an era's report.
func EraReportKey(era uint64) []byte { return binary.BigEndian.AppendUint64([]byte("cm/era/"), era) }

// ChallengeKey is the state key of a node's unanswered challenges (the
// heights, big-endian u64 each, ascending).
func ChallengeKey(node crypto.PublicKey) []byte { return append([]byte("cm/ch/"), node[:]...) }

// UnresponsiveKey is the state key holding the era in which a node was
// last found unresponsive (it is not assignable during the next era).
func UnresponsiveKey(node crypto.PublicKey) []byte { return append([]byte("cm/un/"), node[:]...) }

// Executed acknowledges that a worker executed a contract's commands of
// the blocks up to Height.
type Executed struct {
	Contract crypto.PublicKey
	Height   int64
}

// Encode returns the canonical bytes.
func (x *Executed) Encode() []byte {
	w := codec.NewWriter(48)
	w.Fixed(x.Contract[:])
	w.Varint(x.Height)
	return w.Bytes()
}

// DecodeExecuted strictly decodes the payload.
func DecodeExecuted(b []byte) (*Executed, error) {
	x := &Executed{}
	r := codec.NewReader(b)
	r.Fixed(x.Contract[:])
	x.Height = r.Varint()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: executed: %v", ErrMalformed, err)
	}
	return x, nil
}

// TimeoutKey is the state key of the execution-timeout check of contract
// due at height deadline (value: big-endian u64 height of the command).
func TimeoutKey(deadline int64, contract crypto.PublicKey) []byte {
	return append(TimeoutPrefix(deadline), contract[:]...)
}

// TimeoutPrefix is the state key prefix of the checks due at deadline.
func TimeoutPrefix(deadline int64) []byte {
	return binary.BigEndian.AppendUint64([]byte("cm/to/"), uint64(deadline))
}

// ExecutedKey is the state key of the highest height up to which worker
// acknowledged executing contract's commands.
func ExecutedKey(contract, worker crypto.PublicKey) []byte {
	return append(append([]byte("cm/ex/"), contract[:]...), worker[:]...)
}
