package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Subnets (issue 11, "Subnets and requirements"; module subnet, keys "sn/"
// and "sq/"): a subnet is a worker whitelist its owner creates and edits
// on chain. A contract deployed to a subnet (Requirements.Subnet) runs
// only on its members: gatekeepers pick only members, and the chain
// refuses a grant naming a non-member.

// Calls of the subnet module.
const (
	CallSubnetCreate CallKind = 50
	CallSubnetAdd    CallKind = 51
	CallSubnetRemove CallKind = 52
)

func init() {
	callNames[CallSubnetCreate] = "subnet_create"
	callNames[CallSubnetAdd] = "subnet_add"
	callNames[CallSubnetRemove] = "subnet_remove"
}

// Limits of subnets.
const (
	MaxSubnetNameBytes = 64
	MaxSubnetMembers   = 256
)

// Subnet errors; each wraps the result code a client branches on.
var (
	ErrNotSubnetOwner = fmt.Errorf("%w: not the subnet's owner", ErrInvalidCall)
	ErrNoSuchSubnet   = fmt.Errorf("%w: no such subnet", ErrInvalidCall)
	ErrSubnetFull     = fmt.Errorf("%w: subnet full", ErrInvalidCall)
)

// TopicSubnetChanged: payload SubnetChanged, origin module "subnet": a
// subnet's complete member list after a create, add or remove. pRuntimes
// follow membership through it (their gatekeepers assign by it).
const TopicSubnetChanged = "phala/subnet/changed"

// Query paths of the subnet module.
const (
	QuerySubnet    = "/subnet"     // data: subnet id (32 bytes); value: SubnetRecord (proved)
	QuerySubnetSeq = "/subnet/seq" // data: owner; value: big-endian u64 count of its subnets (proved)
)

// SubnetKey is the state key of a subnet's record.
func SubnetKey(id [32]byte) []byte { return append([]byte("sn/"), id[:]...) }

// SubnetSeqKey is the state key of an owner's subnet count.
func SubnetSeqKey(owner crypto.PublicKey) []byte { return append([]byte("sq/"), owner[:]...) }

// SubnetID is the id of the seq-th subnet (from 0) created by owner:
// SHA-256("phala/subnet: id v1" ‖ owner ‖ seq as big-endian u64).
func SubnetID(owner crypto.PublicKey, seq uint64) [32]byte {
	h := sha256.New()
	h.Write([]byte("phala/subnet: id v1"))
	h.Write(owner[:])
	h.Write(binary.BigEndian.AppendUint64(nil, seq))
	var id [32]byte
	copy(id[:], h.Sum(nil))
	return id
}

// SubnetCreate creates a subnet owned by the signer, with no member; its
// id is SubnetID(signer, the signer's subnet count).
type SubnetCreate struct {
	Name string // at most MaxSubnetNameBytes, printable; may be empty
}

func (*SubnetCreate) Kind() CallKind           { return CallSubnetCreate }
func (c *SubnetCreate) encode(w *codec.Writer) { w.String(c.Name) }

// SubnetMember adds (CallSubnetAdd) or removes (CallSubnetRemove) a worker
// of a subnet; only the subnet's owner may.
type SubnetMember struct {
	Remove bool // CallSubnetRemove; not encoded (the call kind says it)
	Subnet [32]byte
	Worker crypto.PublicKey // the worker's identity key
}

func (c *SubnetMember) Kind() CallKind {
	if c.Remove {
		return CallSubnetRemove
	}
	return CallSubnetAdd
}
func (c *SubnetMember) encode(w *codec.Writer) {
	w.Fixed(c.Subnet[:])
	w.Fixed(c.Worker[:])
}

func decodeSubnetCall(kind CallKind, r *codec.Reader) Call {
	if kind == CallSubnetCreate {
		// The length is checked here rather than by r.String so that the
		// refusal names the subnet name and its limit.
		n := r.Uvarint()
		if r.Err() == nil && n > MaxSubnetNameBytes {
			r.Fail(fmt.Errorf("%w: subnet name is %d bytes, at most %d", codec.ErrTooLong, n, MaxSubnetNameBytes))
		}
		if r.Err() != nil {
			return &SubnetCreate{}
		}
		name := make([]byte, n)
		r.Fixed(name)
		c := &SubnetCreate{Name: string(name)}
		if r.Err() == nil {
			if err := CheckSubnetName(c.Name); err != nil {
				r.Fail(fmt.Errorf("%w: %w", codec.ErrBadFormat, err))
			}
		}
		return c
	}
	c := &SubnetMember{Remove: kind == CallSubnetRemove}
	r.Fixed(c.Subnet[:])
	r.Fixed(c.Worker[:])
	return c
}

// CheckSubnetName returns nil for a valid subnet name (at most
// MaxSubnetNameBytes bytes of printable ASCII, 0x20 to 0x7e; may be empty),
// else an error saying what is wrong ("subnet name is 65 bytes, at most
// 64"). The chain's decoder of subnet_create applies it; clients check
// with it before they sign.
func CheckSubnetName(name string) error {
	if len(name) > MaxSubnetNameBytes {
		return fmt.Errorf("subnet name is %d bytes, at most %d", len(name), MaxSubnetNameBytes)
	}
	for i, c := range []byte(name) {
		if c < 0x20 || c > 0x7e {
			return fmt.Errorf("subnet name has byte 0x%02x at offset %d: use printable ASCII (0x20 to 0x7e)", c, i)
		}
	}
	return nil
}

func printable(s string) bool {
	for _, c := range []byte(s) {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// SubnetRecord is a subnet's chain entry. Members are ascending and
// distinct, at most MaxSubnetMembers.
type SubnetRecord struct {
	Owner     crypto.PublicKey
	Name      string
	Sequence  uint64 // the owner's count at creation (SubnetID)
	CreatedAt int64  // height
	Members   []crypto.PublicKey
}

// Encode returns the canonical bytes.
func (s *SubnetRecord) Encode() []byte {
	w := codec.NewWriter(64 + len(s.Name) + 32*len(s.Members))
	w.Fixed(s.Owner[:])
	w.String(s.Name)
	w.Uvarint(s.Sequence)
	w.Varint(s.CreatedAt)
	encodeMembers(w, s.Members)
	return w.Bytes()
}

// DecodeSubnetRecord strictly decodes a record (ErrMalformed).
func DecodeSubnetRecord(b []byte) (*SubnetRecord, error) {
	s := &SubnetRecord{}
	r := codec.NewReader(b)
	r.Fixed(s.Owner[:])
	s.Name = r.String(MaxSubnetNameBytes)
	s.Sequence = r.Uvarint()
	s.CreatedAt = r.Varint()
	s.Members = decodeMembers(r)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: subnet record: %v", ErrMalformed, err)
	}
	return s, nil
}

// Member reports whether worker is in the subnet.
func (s *SubnetRecord) Member(worker crypto.PublicKey) bool { return HasMember(s.Members, worker) }

// HasMember reports whether k is in the ascending keys members.
func HasMember(members []crypto.PublicKey, k crypto.PublicKey) bool {
	_, ok := searchKey(members, k)
	return ok
}

// searchKey finds k in the ascending keys ks.
func searchKey(ks []crypto.PublicKey, k crypto.PublicKey) (int, bool) {
	lo, hi := 0, len(ks)
	for lo < hi {
		m := (lo + hi) / 2
		if bytes.Compare(ks[m][:], k[:]) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(ks) && ks[lo] == k
}

// AddMember returns members with k inserted in order (unchanged, false if
// present).
func AddMember(members []crypto.PublicKey, k crypto.PublicKey) ([]crypto.PublicKey, bool) {
	i, ok := searchKey(members, k)
	if ok {
		return members, false
	}
	out := make([]crypto.PublicKey, 0, len(members)+1)
	out = append(append(append(out, members[:i]...), k), members[i:]...)
	return out, true
}

// RemoveMember returns members without k (unchanged, false if absent).
func RemoveMember(members []crypto.PublicKey, k crypto.PublicKey) ([]crypto.PublicKey, bool) {
	i, ok := searchKey(members, k)
	if !ok {
		return members, false
	}
	out := make([]crypto.PublicKey, 0, len(members)-1)
	return append(append(out, members[:i]...), members[i+1:]...), true
}

func encodeMembers(w *codec.Writer, ms []crypto.PublicKey) {
	w.Uvarint(uint64(len(ms)))
	for _, k := range ms {
		w.Fixed(k[:])
	}
}

// decodeMembers reads an ascending, distinct member list of at most
// MaxSubnetMembers.
func decodeMembers(r *codec.Reader) []crypto.PublicKey {
	n := r.Uvarint()
	if n > MaxSubnetMembers {
		r.Fail(fmt.Errorf("%w: %d subnet members, at most %d", codec.ErrTooLong, n, MaxSubnetMembers))
		return nil
	}
	var ms []crypto.PublicKey
	for i := uint64(0); r.Err() == nil && i < n; i++ {
		var k crypto.PublicKey
		r.Fixed(k[:])
		if len(ms) > 0 && bytes.Compare(ms[len(ms)-1][:], k[:]) >= 0 {
			r.Fail(fmt.Errorf("%w: subnet members not ascending", codec.ErrBadFormat))
			return nil
		}
		ms = append(ms, k)
	}
	return ms
}

// SubnetChanged is the payload of TopicSubnetChanged: a subnet's members
// (ascending) after a change.
type SubnetChanged struct {
	Subnet  [32]byte
	Members []crypto.PublicKey
}

// Encode returns the canonical bytes.
func (c *SubnetChanged) Encode() []byte {
	w := codec.NewWriter(40 + 32*len(c.Members))
	w.Fixed(c.Subnet[:])
	encodeMembers(w, c.Members)
	return w.Bytes()
}

// DecodeSubnetChanged strictly decodes the payload (ErrMalformed).
func DecodeSubnetChanged(b []byte) (*SubnetChanged, error) {
	c := &SubnetChanged{}
	r := codec.NewReader(b)
	r.Fixed(c.Subnet[:])
	c.Members = decodeMembers(r)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: subnet changed: %v", ErrMalformed, err)
	}
	return c, nil
}

// Requirements are a deployment's constraints on the workers that may run
// it (UploadContract, ContractUploaded, UploadPending, ContractRecord);
// the zero value requires nothing. Gatekeepers assign only workers that
// satisfy them, and the chain refuses a grant naming one that does not.
type Requirements struct {
	// Subnet, if not zero, is the subnet (SubnetID) whose members alone
	// may run the contract.
	Subnet [32]byte
	// Platform, if not empty, is the attestation platform the worker's
	// registration was admitted with (PlatformTDX, PlatformSim).
	Platform string
	// MinCores and MinMemoryMB bound the worker's declared resources
	// (WorkerInfo.Cores, WorkerInfo.MemoryMB: covered by its attestation
	// report, stated by its pRuntime, not measured by the chain).
	MinCores    uint32
	MinMemoryMB uint64 // MiB
	// MinRuntimeVersion bounds the worker's pRuntime version
	// (WorkerInfo.RuntimeVersion).
	MinRuntimeVersion uint32
}

// IsZero reports whether q requires nothing.
func (q *Requirements) IsZero() bool { return *q == Requirements{} }

func (q *Requirements) encode(w *codec.Writer) {
	w.Fixed(q.Subnet[:])
	w.String(q.Platform)
	w.Uvarint(uint64(q.MinCores))
	w.Uvarint(q.MinMemoryMB)
	w.Uvarint(uint64(q.MinRuntimeVersion))
}

// Encode returns the canonical bytes (as embedded in the upload and
// contract encodings).
func (q *Requirements) Encode() []byte {
	w := codec.NewWriter(64)
	q.encode(w)
	return w.Bytes()
}

// DecodeRequirements strictly decodes Encode's bytes (ErrMalformed).
func DecodeRequirements(b []byte) (*Requirements, error) {
	q := &Requirements{}
	r := codec.NewReader(b)
	q.decode(r)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: requirements: %v", ErrMalformed, err)
	}
	return q, nil
}

func (q *Requirements) decode(r *codec.Reader) {
	r.Fixed(q.Subnet[:])
	q.Platform = r.String(MaxPlatformBytes)
	q.MinCores = decodeU32Field(r, "min cores")
	q.MinMemoryMB = r.Uvarint()
	q.MinRuntimeVersion = decodeU32Field(r, "min runtime version")
	if r.Err() == nil && !printable(q.Platform) {
		r.Fail(fmt.Errorf("%w: platform is not printable", codec.ErrBadFormat))
	}
}

func decodeU32Field(r *codec.Reader, what string) uint32 {
	v := r.Uvarint()
	if v > math.MaxUint32 {
		r.Fail(fmt.Errorf("%w: %s %d over 32 bits", codec.ErrBadFormat, what, v))
		return 0
	}
	return uint32(v)
}

// Unmet says which of the hardware requirements (all but the subnet) the
// worker rec does not meet; "" if it meets them all.
func (q *Requirements) Unmet(rec *WorkerRecord) string {
	var why []string
	if q.Platform != "" && rec.Platform != q.Platform {
		why = append(why, fmt.Sprintf("platform %q, not %q", rec.Platform, q.Platform))
	}
	if rec.Info.Cores < q.MinCores {
		why = append(why, fmt.Sprintf("%d cores, fewer than %d", rec.Info.Cores, q.MinCores))
	}
	if rec.Info.MemoryMB < q.MinMemoryMB {
		why = append(why, fmt.Sprintf("%d MiB of memory, less than %d", rec.Info.MemoryMB, q.MinMemoryMB))
	}
	if rec.Info.RuntimeVersion < q.MinRuntimeVersion {
		why = append(why, fmt.Sprintf("pRuntime version %d, older than %d", rec.Info.RuntimeVersion, q.MinRuntimeVersion))
	}
	return strings.Join(why, ", ")
}

// String describes the requirements ("none" if zero).
func (q *Requirements) String() string {
	var s []string
	if q.Subnet != ([32]byte{}) {
		s = append(s, fmt.Sprintf("subnet %x", q.Subnet))
	}
	if q.Platform != "" {
		s = append(s, "platform "+q.Platform)
	}
	if q.MinCores > 0 {
		s = append(s, fmt.Sprintf("at least %d cores", q.MinCores))
	}
	if q.MinMemoryMB > 0 {
		s = append(s, fmt.Sprintf("at least %d MiB of memory", q.MinMemoryMB))
	}
	if q.MinRuntimeVersion > 0 {
		s = append(s, fmt.Sprintf("pRuntime version at least %d", q.MinRuntimeVersion))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
