package api

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Contract lifecycle topics (origin: module "contracts" or a gatekeeper).
const (
	// TopicContractUploaded: payload ContractUploaded (origin module contracts).
	TopicContractUploaded = "phala/contracts/uploaded"
	// TopicContractCommand: payload ContractCommandMessage (origin module
	// contracts), in chain order.
	TopicContractCommand = "phala/contracts/command"
	// TopicContractStatus: payload ContractStatusReport (origin the
	// contract, emitted by pRuntime, never by contract code): whether the
	// contract started on a worker (validation, instantiation and init
	// passed) or why it failed. The chain keeps the first report.
	TopicContractStatus = "phala/contracts/status"
	// ReservedTopicPrefix starts the topics only pRuntime and the chain
	// emit: contract code cannot emit them.
	ReservedTopicPrefix = "phala/"
	// ChannelPurposeContractKey and ChannelPurposeCommand are the channel
	// purposes of key grants and command inputs.
	ChannelPurposeCommand = "contract command"
	MaxCodeBytes          = 3 << 20 // compressed
	MaxReplicas           = 16
)

// UploadContract uploads contract code (gzip-compressed WebAssembly); the
// chain emits ContractUploaded and gatekeepers provision the contract's key
// to Replicas workers, which run Init with InitInput. Code and InitInput
// are public: secrets go to the contract as commands.
type UploadContract struct {
	Code      []byte
	Replicas  uint8
	InitInput []byte
	// ExecTimeout, if not 0, is the contract's execution timeout in
	// blocks: a replica that has not acknowledged a command's execution
	// within it pays Params.TimeoutPenaltyPPM of its stake
	// (docs/economy.md). At most MaxExecTimeout.
	ExecTimeout uint64
	// CheckpointInterval, if not 0, is the blocks between the contract's
	// state updates on chain (default DefaultCheckpointInterval; at most
	// MaxCheckpointInterval).
	CheckpointInterval uint64
	// Requirements constrain the workers that may run the contract
	// (zero: any attested, staked, responsive worker).
	Requirements Requirements
}

// MaxExecTimeout bounds a contract's execution timeout (blocks).
const MaxExecTimeout = 100_000

func (*UploadContract) Kind() CallKind { return CallUploadContract }
func (u *UploadContract) encode(w *codec.Writer) {
	w.BytesField(u.Code)
	w.U8(u.Replicas)
	w.BytesField(u.InitInput)
	w.Uvarint(u.ExecTimeout)
	u.Requirements.encode(w)
	w.Uvarint(u.CheckpointInterval)
}
func decodeUploadContract(r *codec.Reader) *UploadContract {
	u := &UploadContract{Code: r.BytesField(MaxCodeBytes), Replicas: r.U8(), InitInput: r.BytesField(MaxPayloadBytes), ExecTimeout: r.Uvarint()}
	u.Requirements.decode(r)
	u.CheckpointInterval = r.Uvarint()
	return u
}

// ContractCommand sends a command to a deployed contract: Sealed is the
// input, padded (Pad: the chain and everyone reading it learn its length
// only to within PadBlock bytes), sealed with CommKey(signer, contract
// EcdhKey) for ChannelPurposeCommand with CommandAD(contract, signer,
// nonce) bound. The
// contract executes each (signer, nonce) at most once; nonces must increase.
//
// GasLimit is the most gas the command may use on each replica, in [1,
// Params.MaxCommandGas]; its sender pays Params.GasFee(GasLimit) on top of
// the size fee, whether the command succeeds or not, and the chain admits
// at most Params.MaxWorkerGasPerBlock of declared limits per worker per
// block (docs/economy.md, "Execution is paid for").
type ContractCommand struct {
	Contract crypto.PublicKey
	Nonce    uint64
	GasLimit uint64 // gas
	Sealed   []byte
}

func (*ContractCommand) Kind() CallKind { return CallContractCommand }
func (c *ContractCommand) encode(w *codec.Writer) {
	w.Fixed(c.Contract[:])
	w.Uvarint(c.Nonce)
	w.Uvarint(c.GasLimit)
	w.BytesField(c.Sealed)
}
func decodeContractCommand(r *codec.Reader) *ContractCommand {
	c := &ContractCommand{}
	r.Fixed(c.Contract[:])
	c.Nonce = r.Uvarint()
	c.GasLimit = r.Uvarint()
	c.Sealed = r.BytesField(MaxPayloadBytes)
	return c
}

// CommandAD is the additional data bound to a command's sealed input.
func CommandAD(contract, from crypto.PublicKey, nonce uint64) []byte {
	b := make([]byte, 0, 72)
	b = append(b, contract[:]...)
	b = append(b, from[:]...)
	return binary.BigEndian.AppendUint64(b, nonce)
}

// UploadID identifies an upload before the contract's keys exist.
func UploadID(deployer crypto.PublicKey, codeHash [32]byte, sequence uint64) [32]byte {
	h := sha256.New()
	h.Write([]byte("phala/contracts: upload v1"))
	h.Write(deployer[:])
	h.Write(codeHash[:])
	h.Write(binary.BigEndian.AppendUint64(nil, sequence))
	var id [32]byte
	copy(id[:], h.Sum(nil))
	return id
}

// ContractUploaded announces an upload (the whitepaper's
// ContractUploaded(deployer, code_hash, sequence)).
type ContractUploaded struct {
	Deployer    crypto.PublicKey
	CodeHash    [32]byte
	Sequence    uint64
	Replicas    uint8
	Code        []byte // gzip-compressed
	InitInput   []byte
	ExecTimeout uint64 // blocks; 0: none
	// Requirements on the workers that may run it (zero: none).
	Requirements Requirements
	// CheckpointInterval: blocks between state updates (0: the default).
	CheckpointInterval uint64
}

// Encode returns the canonical bytes.
func (u *ContractUploaded) Encode() []byte {
	w := codec.NewWriter(80 + len(u.Code))
	w.Fixed(u.Deployer[:])
	w.Fixed(u.CodeHash[:])
	w.Uvarint(u.Sequence)
	w.U8(u.Replicas)
	w.BytesField(u.Code)
	w.BytesField(u.InitInput)
	w.Uvarint(u.ExecTimeout)
	u.Requirements.encode(w)
	w.Uvarint(u.CheckpointInterval)
	return w.Bytes()
}

// DecodeContractUploaded strictly decodes the payload.
func DecodeContractUploaded(b []byte) (*ContractUploaded, error) {
	u := &ContractUploaded{}
	r := codec.NewReader(b)
	r.Fixed(u.Deployer[:])
	r.Fixed(u.CodeHash[:])
	u.Sequence = r.Uvarint()
	u.Replicas = r.U8()
	u.Code = r.BytesField(MaxCodeBytes)
	u.InitInput = r.BytesField(MaxPayloadBytes)
	u.ExecTimeout = r.Uvarint()
	u.Requirements.decode(r)
	u.CheckpointInterval = r.Uvarint()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: contract uploaded: %v", ErrMalformed, err)
	}
	return u, nil
}

// ContractKeyGrant is a provisioning of a contract's keys the chain
// accepted: a round of KeyPartials (Round) that T members of the key set
// of Era completed for Workers, and the contract's public keys (from its
// record, or for a first deployment from the report of one of the round's
// workers, ContractKeyed). The chain builds it; it travels inside
// ContractDeployed and ArbitersAssigned, and each named worker takes the
// key it combined from the round's partials (docs/keys.md).
type ContractKeyGrant struct {
	Upload   [32]byte
	Identity crypto.PublicKey // the contract's
	Ecdh     crypto.PublicKey // the contract's
	Era      uint64           // the key set that derived it
	Epoch    uint64           // the contract's key epoch
	Round    [32]byte         // the round of partials (KeyPartials.Round)
	Workers  []crypto.PublicKey
}

// Encode returns the canonical bytes.
func (g *ContractKeyGrant) Encode() []byte {
	w := codec.NewWriter(192 + 32*len(g.Workers))
	w.Fixed(g.Upload[:])
	w.Fixed(g.Identity[:])
	w.Fixed(g.Ecdh[:])
	w.Uvarint(g.Era)
	w.Uvarint(g.Epoch)
	w.Fixed(g.Round[:])
	w.Fixed(EncodeKeys(g.Workers))
	return w.Bytes()
}

// DecodeContractKeyGrant strictly decodes the payload (1 to MaxReplicas
// workers).
func DecodeContractKeyGrant(b []byte) (*ContractKeyGrant, error) {
	g := &ContractKeyGrant{}
	r := codec.NewReader(b)
	r.Fixed(g.Upload[:])
	r.Fixed(g.Identity[:])
	r.Fixed(g.Ecdh[:])
	g.Era = r.Uvarint()
	g.Epoch = r.Uvarint()
	r.Fixed(g.Round[:])
	g.Workers = readKeys(r, MaxReplicas)
	if r.Err() == nil && len(g.Workers) == 0 {
		r.Fail(fmt.Errorf("no worker"))
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: contract key grant: %v", ErrMalformed, err)
	}
	return g, nil
}

// ContractCommandMessage is a command as the chain queues it: From is the
// transaction's signer, verified by the chain; GasLimit the limit its
// sender declared and paid for (a worker runs the command with at most
// that much gas, and at most its own cap).
type ContractCommandMessage struct {
	Contract crypto.PublicKey
	From     crypto.PublicKey
	Nonce    uint64
	GasLimit uint64 // gas
	Sealed   []byte
}

// Encode returns the canonical bytes.
func (m *ContractCommandMessage) Encode() []byte {
	w := codec.NewWriter(90 + len(m.Sealed))
	w.Fixed(m.Contract[:])
	w.Fixed(m.From[:])
	w.Uvarint(m.Nonce)
	w.Uvarint(m.GasLimit)
	w.BytesField(m.Sealed)
	return w.Bytes()
}

// DecodeContractCommandMessage strictly decodes the payload.
func DecodeContractCommandMessage(b []byte) (*ContractCommandMessage, error) {
	m := &ContractCommandMessage{}
	r := codec.NewReader(b)
	r.Fixed(m.Contract[:])
	r.Fixed(m.From[:])
	m.Nonce = r.Uvarint()
	m.GasLimit = r.Uvarint()
	m.Sealed = r.BytesField(MaxPayloadBytes)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: contract command: %v", ErrMalformed, err)
	}
	return m, nil
}

// ContractStatus is where a deployed contract is in its start.
type ContractStatus uint8

// Contract statuses. Before a gatekeeper has provisioned an upload, it
// has no record: it is pending (UploadPending).
const (
	// ContractStarting: keys granted to its workers; none has reported
	// starting it yet.
	ContractStarting ContractStatus = 0
	// ContractRunning: a worker validated, instantiated and initialized
	// it.
	ContractRunning ContractStatus = 1
	// ContractFailed: its module failed validation or instantiation, or
	// its init failed (Reason says how); commands to it are refused.
	ContractFailed ContractStatus = 2
)

func (s ContractStatus) String() string {
	switch s {
	case ContractStarting:
		return "starting"
	case ContractRunning:
		return "running"
	case ContractFailed:
		return "failed"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// MaxStatusReasonBytes bounds a failure's reason.
const MaxStatusReasonBytes = 1024

// ContractStatusReport is a contract's start report (TopicContractStatus).
// Reason is public: it is about public code and public init input.
type ContractStatusReport struct {
	Status ContractStatus // ContractRunning or ContractFailed
	Reason string         // why it failed; empty when running
}

// Encode returns the canonical bytes.
func (r *ContractStatusReport) Encode() []byte {
	w := codec.NewWriter(8 + len(r.Reason))
	w.U8(uint8(r.Status))
	w.BytesField([]byte(r.Reason))
	return w.Bytes()
}

// DecodeContractStatusReport strictly decodes the payload. Errors:
// ErrMalformed (including a status other than running or failed).
func DecodeContractStatusReport(b []byte) (*ContractStatusReport, error) {
	rep := &ContractStatusReport{}
	r := codec.NewReader(b)
	rep.Status = ContractStatus(r.U8())
	rep.Reason = string(r.BytesField(MaxStatusReasonBytes))
	if r.Err() == nil && rep.Status != ContractRunning && rep.Status != ContractFailed {
		r.Fail(fmt.Errorf("%w: reported status %d", codec.ErrBadFormat, rep.Status))
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: contract status: %v", ErrMalformed, err)
	}
	return rep, nil
}

// ContractRecord is the chain's entry for a deployed contract (keyed by
// its identity key): who deployed what, the workers running it, and its
// status as its first worker reported it.
type ContractRecord struct {
	Upload   [32]byte
	Deployer crypto.PublicKey
	CodeHash [32]byte
	Sequence uint64
	Identity crypto.PublicKey
	Ecdh     crypto.PublicKey
	Workers  []crypto.PublicKey
	Status   ContractStatus
	Reason   string // why it failed (ContractFailed)
	// StatusHeight is the block that set Status (the grant's for
	// ContractStarting).
	StatusHeight int64
	ExecTimeout  uint64 // blocks; 0: none (UploadContract.ExecTimeout)
	// Requirements on its workers (UploadContract.Requirements).
	Requirements Requirements
	// CheckpointInterval: blocks between state updates (0: the default).
	CheckpointInterval uint64
	// Excluded: workers removed from the contract by its deployer
	// (ContractReassign), never assigned it again; the oldest is
	// forgotten beyond MaxExcludedWorkers.
	Excluded []crypto.PublicKey
	// KeyEra and KeyEpoch: the key set whose MasterKey derives the
	// contract's current key, and its key epoch (docs/keys.md).
	KeyEra, KeyEpoch uint64
	// EpochHeight: the block that made KeyEpoch the write epoch.
	EpochHeight int64
	// Migrating: entries may still be under PrevKeyEra/PrevKeyEpoch,
	// the epoch before; the workers re-encrypt them (docs/keys.md).
	Migrating                bool
	PrevKeyEra, PrevKeyEpoch uint64
}

// Encode returns the canonical bytes.
func (c *ContractRecord) Encode() []byte {
	w := codec.NewWriter(220 + 32*len(c.Workers) + len(c.Reason))
	w.Fixed(c.Upload[:])
	w.Fixed(c.Deployer[:])
	w.Fixed(c.CodeHash[:])
	w.Uvarint(c.Sequence)
	w.Fixed(c.Identity[:])
	w.Fixed(c.Ecdh[:])
	w.BytesField(EncodeKeys(c.Workers))
	w.U8(uint8(c.Status))
	w.BytesField([]byte(c.Reason))
	w.Varint(c.StatusHeight)
	w.Uvarint(c.ExecTimeout)
	c.Requirements.encode(w)
	w.Uvarint(c.CheckpointInterval)
	w.BytesField(EncodeKeys(c.Excluded))
	w.Uvarint(c.KeyEra)
	w.Uvarint(c.KeyEpoch)
	w.Varint(c.EpochHeight)
	w.Bool(c.Migrating)
	w.Uvarint(c.PrevKeyEra)
	w.Uvarint(c.PrevKeyEpoch)
	return w.Bytes()
}

// DecodeContractRecord strictly decodes a record.
func DecodeContractRecord(b []byte) (*ContractRecord, error) {
	c := &ContractRecord{}
	r := codec.NewReader(b)
	r.Fixed(c.Upload[:])
	r.Fixed(c.Deployer[:])
	r.Fixed(c.CodeHash[:])
	c.Sequence = r.Uvarint()
	r.Fixed(c.Identity[:])
	r.Fixed(c.Ecdh[:])
	ws := r.BytesField(32*MaxReplicas + 8)
	c.Status = ContractStatus(r.U8())
	c.Reason = string(r.BytesField(MaxStatusReasonBytes))
	c.StatusHeight = r.Varint()
	c.ExecTimeout = r.Uvarint()
	c.Requirements.decode(r)
	c.CheckpointInterval = r.Uvarint()
	xs := r.BytesField(8 + 32*MaxExcludedWorkers)
	c.KeyEra = r.Uvarint()
	c.KeyEpoch = r.Uvarint()
	c.EpochHeight = r.Varint()
	c.Migrating = r.Bool()
	c.PrevKeyEra = r.Uvarint()
	c.PrevKeyEpoch = r.Uvarint()
	if r.Err() == nil && c.Status > ContractFailed {
		r.Fail(fmt.Errorf("%w: contract status %d", codec.ErrBadFormat, c.Status))
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: contract record: %v", ErrMalformed, err)
	}
	var err error
	if c.Workers, err = DecodeKeys(ws); err != nil {
		return nil, err
	}
	if c.Excluded, err = DecodeKeys(xs); err != nil {
		return nil, err
	}
	if len(c.Excluded) == 0 {
		c.Excluded = nil
	}
	return c, nil
}

// UploadPending is an upload no gatekeeper has provisioned yet: it has no
// keys, no workers, no record.
type UploadPending struct {
	Deployer    crypto.PublicKey
	CodeHash    [32]byte
	Sequence    uint64
	Replicas    uint8
	Height      int64  // the block of the upload
	ExecTimeout uint64 // blocks; 0: none
	// Requirements on its workers (UploadContract.Requirements).
	Requirements Requirements
	// CheckpointInterval: blocks between state updates (0: the default).
	CheckpointInterval uint64
}

// Encode returns the canonical bytes.
func (p *UploadPending) Encode() []byte {
	w := codec.NewWriter(96)
	w.Fixed(p.Deployer[:])
	w.Fixed(p.CodeHash[:])
	w.Uvarint(p.Sequence)
	w.U8(p.Replicas)
	w.Varint(p.Height)
	w.Uvarint(p.ExecTimeout)
	p.Requirements.encode(w)
	w.Uvarint(p.CheckpointInterval)
	return w.Bytes()
}

// DecodeUploadPending strictly decodes a pending upload.
func DecodeUploadPending(b []byte) (*UploadPending, error) {
	p := &UploadPending{}
	r := codec.NewReader(b)
	r.Fixed(p.Deployer[:])
	r.Fixed(p.CodeHash[:])
	p.Sequence = r.Uvarint()
	p.Replicas = r.U8()
	p.Height = r.Varint()
	p.ExecTimeout = r.Uvarint()
	p.Requirements.decode(r)
	p.CheckpointInterval = r.Uvarint()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: pending upload: %v", ErrMalformed, err)
	}
	return p, nil
}

// State keys and queries of the contracts module.
const (
	QueryContract       = "/contract"         // data: contract identity key; value: ContractRecord
	QueryContractUpload = "/contract/upload"  // data: upload id; value: the contract's identity key once provisioned
	QueryDeployerSeq    = "/contract/uploads" // data: deployer; value: big-endian u64 count of its uploads
	QueryUploadPending  = "/contract/pending" // data: upload id; value: UploadPending (kept after provisioning)
)

// ContractKey is the state key of a contract record.
func ContractKey(id crypto.PublicKey) []byte { return append([]byte("c/"), id[:]...) }

// ContractUploadKey is the state key mapping an upload to its contract.
func ContractUploadKey(upload [32]byte) []byte { return append([]byte("cu/"), upload[:]...) }

// UploadPendingKey is the state key of an upload's UploadPending.
func UploadPendingKey(upload [32]byte) []byte { return append([]byte("cp/"), upload[:]...) }

// WorkerGasKey is the state key of the gas the current block's commands
// declared for one worker: 16 bytes, the block height then the gas
// (big-endian u64 each); a value of an earlier height counts as zero.
func WorkerGasKey(worker crypto.PublicKey) []byte { return append([]byte("cg/"), worker[:]...) }

// DeployerSeqKey is the state key of a deployer's upload count.
func DeployerSeqKey(d crypto.PublicKey) []byte { return append([]byte("cs/"), d[:]...) }

// Master key sharing between gatekeepers.
const (
	// TopicMasterKeyShare: payload MasterKeyShare (origin a gatekeeper
	// holding the MasterKey), sent when another gatekeeper registers.
	TopicMasterKeyShare = "phala/gatekeeper/master_key_share"
	// ChannelPurposeMasterKey is the channel purpose of MasterKey shares.
	ChannelPurposeMasterKey = "master key"
)

// MasterKeyShare is the MasterKey sealed from one gatekeeper's pRuntime to
// another's: CommKey(FromEcdh, ToEcdh) for ChannelPurposeMasterKey, with
// the other fields bound as additional data.
type MasterKeyShare struct {
	Era      uint64           // the key era the receiver holds it for
	To       crypto.PublicKey // the receiving gatekeeper's identity
	ToEcdh   crypto.PublicKey
	FromEcdh crypto.PublicKey
	Master   crypto.PublicKey // the master public key being shared
	Sealed   []byte
}

// AD returns the additional data bound to Sealed.
func (s *MasterKeyShare) AD() []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 136), s.Era)
	for _, k := range []crypto.PublicKey{s.To, s.ToEcdh, s.FromEcdh, s.Master} {
		b = append(b, k[:]...)
	}
	return b
}

// Encode returns the canonical bytes.
func (s *MasterKeyShare) Encode() []byte {
	w := codec.NewWriter(200)
	w.Fixed(s.AD())
	w.BytesField(s.Sealed)
	return w.Bytes()
}

// DecodeMasterKeyShare strictly decodes the payload.
func DecodeMasterKeyShare(b []byte) (*MasterKeyShare, error) {
	s := &MasterKeyShare{}
	r := codec.NewReader(b)
	var era [8]byte
	r.Fixed(era[:])
	s.Era = binary.BigEndian.Uint64(era[:])
	for _, k := range []*crypto.PublicKey{&s.To, &s.ToEcdh, &s.FromEcdh, &s.Master} {
		r.Fixed(k[:])
	}
	s.Sealed = r.BytesField(256)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: master key share: %v", ErrMalformed, err)
	}
	return s, nil
}

// The on-chain query path, the fallback when no worker's endpoint answers.
const (
	// TopicContractQuery: payload an encoded ContractQuery (origin module
	// contracts).
	TopicContractQuery = "phala/contracts/query"
	// TopicContractReturn: payload an encoded ContractQueryResponse
	// (origin the contract).
	TopicContractReturn = "phala/contracts/return"
	// QueryContractReturn reads the answer to an on-chain query: data is
	// the contract's identity key followed by the query's hash; value an
	// encoded ContractQueryResponse signed by that contract.
	QueryContractReturn = "/contract/return"
)

// ContractQueryCall puts a signed, sealed contract query on chain
// (ContractQuery(query_id, contract, client, encrypted_data) of the
// specification); a worker running the contract answers with a
// ContractReturn message the chain stores under the query's hash.
type ContractQueryCall struct{ Query ContractQuery }

func (*ContractQueryCall) Kind() CallKind           { return CallContractQuery }
func (c *ContractQueryCall) encode(w *codec.Writer) { w.BytesField(c.Query.Encode()) }
func decodeContractQueryCall(r *codec.Reader) *ContractQueryCall {
	b := r.BytesField(MaxQueryBytes + 256)
	if r.Err() != nil {
		return &ContractQueryCall{}
	}
	q, err := DecodeContractQuery(b)
	if err != nil {
		r.Fail(err)
		return &ContractQueryCall{}
	}
	return &ContractQueryCall{Query: *q}
}

// ContractReturnKey is the state key of a contract's answer to an
// on-chain query.
func ContractReturnKey(contract crypto.PublicKey, query [32]byte) []byte {
	return append(append([]byte("cr/"), contract[:]...), query[:]...)
}
