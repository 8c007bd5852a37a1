package api

import (
	"encoding/binary"
	"fmt"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Governance: a council of accounts proposes and votes motions; a motion
// whose ayes reach the council's threshold is enacted at the end of the
// block where it was approved. A motion below threshold is never enacted
// and expires after the voting period (Params.GovVotingPeriod blocks).

// Limits of governance records.
const (
	MaxCouncilMembers = 64
	// MaxMotionVotes bounds each of a motion's aye and nay lists (council
	// changes while a motion is open can bring new voters).
	MaxMotionVotes = 4 * MaxCouncilMembers
	// MaxValidatorPower bounds one validator's voting power, so that the
	// total stays far below CometBFT's MaxTotalVotingPower.
	MaxValidatorPower = 1 << 40
	MaxValidators     = 256
	ValidatorKeySize  = 32 // ed25519 public key
)

// Governance errors. Each wraps the result code a client branches on.
var (
	ErrNotCouncilMember = fmt.Errorf("%w: not a council member", ErrInvalidCall)
	ErrAlreadyVoted     = fmt.Errorf("%w: already voted", ErrInvalidCall)
	ErrUnknownMotion    = fmt.Errorf("%w: unknown motion", ErrNotFound)
	ErrMotionClosed     = fmt.Errorf("%w: motion is closed", ErrInvalidCall)
	ErrInvalidAction    = fmt.Errorf("%w: invalid governance action", ErrInvalidCall)
)

// Governance calls.
const (
	CallGovPropose CallKind = 8
	CallGovVote    CallKind = 9
)

func init() {
	callNames[CallGovPropose] = "gov_propose"
	callNames[CallGovVote] = "gov_vote"
}

// Topics of the governance module's queue messages (origin: module
// "governance"), for pRuntimes.
const (
	// TopicGovAllowlist: payload EncodeMeasurements of the pRuntime
	// measurements allowed after an enacted change; workers with any other
	// measurement are no longer active (no new contract key grants).
	TopicGovAllowlist = "phala/governance/allowlist"
	// TopicGovMinRuntimeVersion: payload EncodeRuntimeVersion of the
	// minimum pRuntime version the chain requires from this message on; an
	// older pRuntime stops dispatching.
	TopicGovMinRuntimeVersion = "phala/governance/min_runtime_version"
	// TopicGovParams: payload Params.Encode() of the chain parameters an
	// enacted set_params motion sets (in force from the next block).
	// pRuntimes follow attestation_window from it: they keep the hashes of
	// the blocks a registration's report may cite.
	TopicGovParams = "phala/governance/params"
)

// Query paths of governance state (proved).
const (
	QueryCouncil           = "/gov/council"             // value: Council
	QueryMotion            = "/gov/motion"              // data: motion id, big-endian u64; value: Motion
	QueryNextMotion        = "/gov/next_motion"         // value: big-endian u64 id of the next motion (absent = 0)
	QueryMinRuntimeVersion = "/gov/min_runtime_version" // value: EncodeRuntimeVersion (absent = 0)
	QueryValidators        = "/gov/validators"          // value: ValidatorSet as the chain last told CometBFT
)

// State keys of governance.
var (
	KeyCouncil           = []byte("gov/council")
	KeyNextMotion        = []byte("gov/next")
	KeyMinRuntimeVersion = []byte("gov/min_version")
	KeyValidators        = []byte("gov/validators")
)

// MotionKey is the state key of a motion.
func MotionKey(id uint64) []byte { return binary.BigEndian.AppendUint64([]byte("gov/m/"), id) }

// GovernanceGenesis is the governance part of the genesis app state.
type GovernanceGenesis struct {
	Council   []crypto.PublicKey `json:"council"`
	Threshold uint32             `json:"threshold"`
}

// Council is who may propose and vote, and how many ayes approve a motion.
type Council struct {
	Members   []crypto.PublicKey
	Threshold uint32
}

// IsMember reports whether pk is on the council.
func (c *Council) IsMember(pk crypto.PublicKey) bool {
	for _, m := range c.Members {
		if m == pk {
			return true
		}
	}
	return false
}

// Validate checks a council: distinct valid members, 1 <= threshold <=
// members (an empty council with threshold 0 disables governance).
func (c *Council) Validate() error {
	if len(c.Members) > MaxCouncilMembers {
		return fmt.Errorf("council of %d members exceeds %d", len(c.Members), MaxCouncilMembers)
	}
	seen := map[crypto.PublicKey]bool{}
	for _, m := range c.Members {
		if !m.Valid() {
			return fmt.Errorf("council member %s is not a valid sr25519 public key", m.Hex())
		}
		if seen[m] {
			return fmt.Errorf("council member %s listed twice", m)
		}
		seen[m] = true
	}
	if len(c.Members) == 0 && c.Threshold == 0 {
		return nil
	}
	if c.Threshold == 0 || int(c.Threshold) > len(c.Members) {
		return fmt.Errorf("council threshold %d must be in [1, %d members]", c.Threshold, len(c.Members))
	}
	return nil
}

func (c *Council) encode(w *codec.Writer) {
	w.Uvarint(uint64(len(c.Members)))
	for _, m := range c.Members {
		w.Fixed(m[:])
	}
	w.Uvarint(uint64(c.Threshold))
}

func (c *Council) decode(r *codec.Reader) {
	n := r.Uvarint()
	if n > MaxCouncilMembers || n > uint64(r.Remaining()/crypto.PublicKeySize) {
		r.Fail(fmt.Errorf("%w: council of %d members", codec.ErrTooLong, n))
		return
	}
	c.Members = make([]crypto.PublicKey, n)
	for i := range c.Members {
		r.Fixed(c.Members[i][:])
	}
	c.Threshold = decodeU32(r)
}

// Encode returns the canonical bytes.
func (c *Council) Encode() []byte {
	w := codec.NewWriter(8 + 32*len(c.Members))
	c.encode(w)
	return w.Bytes()
}

// DecodeCouncil strictly decodes a council.
func DecodeCouncil(b []byte) (*Council, error) {
	c := &Council{}
	r := codec.NewReader(b)
	c.decode(r)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: council: %v", ErrMalformed, err)
	}
	return c, nil
}

func decodeU32(r *codec.Reader) uint32 {
	v := r.Uvarint()
	if v > 1<<32-1 {
		r.Fail(fmt.Errorf("%w: %d does not fit 32 bits", codec.ErrBadFormat, v))
	}
	return uint32(v)
}

// ActionKind says what a motion does when enacted.
type ActionKind uint8

// Actions.
const (
	ActionAllowMeasurement     ActionKind = 1 // Measurement: add to the allowlist
	ActionRevokeMeasurement    ActionKind = 2 // Measurement: remove; registrations with it stop being active
	ActionSetMinRuntimeVersion ActionKind = 3 // Version: the minimum pRuntime version
	ActionSetParams            ActionKind = 4 // Params: the chain parameters, from the next block
	ActionSetCouncil           ActionKind = 5 // Council: members and threshold
	ActionSetValidator         ActionKind = 6 // Validator: add (power > 0), change power, or remove (power 0)
	ActionMigrateRuntime       ActionKind = 7 // Measurement: migrate every contract and gatekeeper seat to this pRuntime build (docs/keys.md, "State migration")
	ActionCancelMigration      ActionKind = 8 // no argument: end the running migration without revoking anything (docs/keys.md, "State migration")
)

var actionNames = map[ActionKind]string{
	ActionAllowMeasurement:     "allow_measurement",
	ActionRevokeMeasurement:    "revoke_measurement",
	ActionSetMinRuntimeVersion: "set_min_runtime_version",
	ActionSetParams:            "set_params",
	ActionSetCouncil:           "set_council",
	ActionSetValidator:         "set_validator",
	ActionMigrateRuntime:       "migrate_runtime",
	ActionCancelMigration:      "cancel_migration",
}

func (k ActionKind) String() string {
	if n, ok := actionNames[k]; ok {
		return n
	}
	return fmt.Sprintf("action#%d", uint8(k))
}

// ActionKindByName returns the kind named n (as String gives it).
func ActionKindByName(n string) (ActionKind, bool) {
	for k, name := range actionNames {
		if name == n {
			return k, true
		}
	}
	return 0, false
}

// Validator is one CometBFT validator: its ed25519 public key and power
// (0 removes it).
type Validator struct {
	PubKey [ValidatorKeySize]byte
	Power  uint64
}

// Action is what a motion enacts. Only the field of its Kind is encoded.
type Action struct {
	Kind        ActionKind
	Measurement HexBytes  // allow/revoke measurement, migrate_runtime
	Version     uint32    // set_min_runtime_version
	Params      Params    // set_params
	Council     Council   // set_council
	Validator   Validator // set_validator
}

func (a *Action) encode(w *codec.Writer) {
	w.U8(uint8(a.Kind))
	switch a.Kind {
	case ActionAllowMeasurement, ActionRevokeMeasurement, ActionMigrateRuntime:
		w.BytesField(a.Measurement)
	case ActionSetMinRuntimeVersion:
		w.Uvarint(uint64(a.Version))
	case ActionSetParams:
		w.BytesField(a.Params.Encode())
	case ActionSetCouncil:
		a.Council.encode(w)
	case ActionSetValidator:
		w.Fixed(a.Validator.PubKey[:])
		w.Uvarint(a.Validator.Power)
	}
}

func (a *Action) decode(r *codec.Reader) {
	a.Kind = ActionKind(r.U8())
	switch a.Kind {
	case ActionAllowMeasurement, ActionRevokeMeasurement, ActionMigrateRuntime:
		a.Measurement = r.BytesField(MaxMeasurementBytes)
	case ActionSetMinRuntimeVersion:
		a.Version = decodeU32(r)
	case ActionSetParams:
		p, err := DecodeParams(r.BytesField(256))
		if r.Err() == nil && err != nil {
			r.Fail(err)
		}
		a.Params = p
	case ActionSetCouncil:
		a.Council.decode(r)
	case ActionSetValidator:
		r.Fixed(a.Validator.PubKey[:])
		a.Validator.Power = r.Uvarint()
	case ActionCancelMigration:
	default:
		r.Fail(fmt.Errorf("%w: action kind %d", codec.ErrBadFormat, a.Kind))
	}
}

// Validate checks what can be checked without state.
func (a *Action) Validate() error {
	switch a.Kind {
	case ActionAllowMeasurement, ActionRevokeMeasurement, ActionMigrateRuntime:
		if err := CheckMeasurement(a.Measurement); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidAction, err)
		}
	case ActionSetMinRuntimeVersion:
		if a.Version == 0 {
			return fmt.Errorf("%w: minimum pRuntime version must be positive", ErrInvalidAction)
		}
	case ActionSetParams:
		if err := a.Params.Validate(); err != nil {
			return fmt.Errorf("%w: params: %v", ErrInvalidAction, err)
		}
	case ActionSetCouncil:
		if len(a.Council.Members) == 0 {
			return fmt.Errorf("%w: the council cannot be emptied", ErrInvalidAction)
		}
		if err := a.Council.Validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidAction, err)
		}
	case ActionSetValidator:
		if a.Validator.Power > MaxValidatorPower {
			return fmt.Errorf("%w: validator power %d exceeds %d", ErrInvalidAction, a.Validator.Power, uint64(MaxValidatorPower))
		}
		if a.Validator.PubKey == ([ValidatorKeySize]byte{}) {
			return fmt.Errorf("%w: validator key is all zeros", ErrInvalidAction)
		}
	case ActionCancelMigration:
	default:
		return fmt.Errorf("%w: unknown action kind %d", ErrInvalidAction, a.Kind)
	}
	return nil
}

// GovPropose proposes a motion; the signer must be a council member, and
// its proposal counts as its aye.
type GovPropose struct {
	Action Action
}

func (*GovPropose) Kind() CallKind           { return CallGovPropose }
func (p *GovPropose) encode(w *codec.Writer) { p.Action.encode(w) }
func decodeGovPropose(r *codec.Reader) *GovPropose {
	p := &GovPropose{}
	p.Action.decode(r)
	return p
}

// GovVote votes on an open motion (aye or nay); the signer must be a
// council member that has not voted on it.
type GovVote struct {
	Motion uint64
	Aye    bool
}

func (*GovVote) Kind() CallKind { return CallGovVote }
func (v *GovVote) encode(w *codec.Writer) {
	w.Uvarint(v.Motion)
	w.Bool(v.Aye)
}
func decodeGovVote(r *codec.Reader) *GovVote { return &GovVote{Motion: r.Uvarint(), Aye: r.Bool()} }

// MotionStatus is where a motion is in its life.
type MotionStatus uint8

// Motion statuses.
const (
	MotionOpen     MotionStatus = 1 // voting
	MotionApproved MotionStatus = 2 // reached the threshold; enacted at the end of DecidedAt's block
	MotionEnacted  MotionStatus = 3
	MotionExpired  MotionStatus = 4 // the voting period ended below threshold; never enacted
	MotionFailed   MotionStatus = 5 // approved, but its action was invalid against the state at enactment
)

func (s MotionStatus) String() string {
	switch s {
	case MotionOpen:
		return "open"
	case MotionApproved:
		return "approved"
	case MotionEnacted:
		return "enacted"
	case MotionExpired:
		return "expired"
	case MotionFailed:
		return "failed"
	}
	return fmt.Sprintf("status#%d", uint8(s))
}

// Motion is a proposal of the council and its votes.
type Motion struct {
	ID         uint64
	Proposer   crypto.PublicKey
	Action     Action
	ProposedAt int64 // height
	// ExpiresAt is the first height at which the motion takes no votes.
	ExpiresAt int64
	Ayes      []crypto.PublicKey
	Nays      []crypto.PublicKey
	Status    MotionStatus
	DecidedAt int64  // height it was approved, enacted, failed or expired (0 while open)
	Reason    string // why enactment failed
}

// MaxReasonBytes bounds a failed motion's reason.
const MaxReasonBytes = 256

func containsKey(s []crypto.PublicKey, k crypto.PublicKey) bool {
	for _, x := range s {
		if x == k {
			return true
		}
	}
	return false
}

// Voted reports whether pk voted on the motion.
func (m *Motion) Voted(pk crypto.PublicKey) bool {
	return containsKey(m.Ayes, pk) || containsKey(m.Nays, pk)
}

func (s MotionStatus) valid() bool { return s >= MotionOpen && s <= MotionFailed }

func encodeKeyList(w *codec.Writer, keys []crypto.PublicKey) {
	w.Uvarint(uint64(len(keys)))
	for _, k := range keys {
		w.Fixed(k[:])
	}
}

func decodeKeyList(r *codec.Reader, max int) []crypto.PublicKey {
	n := r.Uvarint()
	if n > uint64(max) || n > uint64(r.Remaining()/crypto.PublicKeySize) {
		r.Fail(fmt.Errorf("%w: %d keys", codec.ErrTooLong, n))
		return nil
	}
	keys := make([]crypto.PublicKey, n)
	for i := range keys {
		r.Fixed(keys[i][:])
	}
	return keys
}

// Encode returns the canonical bytes.
func (m *Motion) Encode() []byte {
	w := codec.NewWriter(256)
	w.Uvarint(m.ID)
	w.Fixed(m.Proposer[:])
	m.Action.encode(w)
	w.Uvarint(uint64(m.ProposedAt))
	w.Uvarint(uint64(m.ExpiresAt))
	encodeKeyList(w, m.Ayes)
	encodeKeyList(w, m.Nays)
	w.U8(uint8(m.Status))
	w.Uvarint(uint64(m.DecidedAt))
	w.String(m.Reason)
	return w.Bytes()
}

// DecodeMotion strictly decodes a motion.
func DecodeMotion(b []byte) (*Motion, error) {
	m := &Motion{}
	r := codec.NewReader(b)
	m.ID = r.Uvarint()
	r.Fixed(m.Proposer[:])
	m.Action.decode(r)
	m.ProposedAt = decodeHeight(r)
	m.ExpiresAt = decodeHeight(r)
	m.Ayes = decodeKeyList(r, MaxMotionVotes)
	m.Nays = decodeKeyList(r, MaxMotionVotes)
	m.Status = MotionStatus(r.U8())
	if r.Err() == nil && !m.Status.valid() {
		r.Fail(fmt.Errorf("%w: motion status %d", codec.ErrBadFormat, m.Status))
	}
	m.DecidedAt = decodeHeight(r)
	m.Reason = r.String(MaxReasonBytes)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: motion: %v", ErrMalformed, err)
	}
	return m, nil
}

func decodeHeight(r *codec.Reader) int64 {
	v := r.Uvarint()
	if v > 1<<62 {
		r.Fail(fmt.Errorf("%w: height %d", codec.ErrBadFormat, v))
	}
	return int64(v)
}

// ValidatorSet is the chain's record of CometBFT's validators, sorted by
// public key.
type ValidatorSet []Validator

// TotalPower sums the powers.
func (s ValidatorSet) TotalPower() uint64 {
	var t uint64
	for _, v := range s {
		t += v.Power
	}
	return t
}

// Encode returns the canonical bytes.
func (s ValidatorSet) Encode() []byte {
	w := codec.NewWriter(1 + 40*len(s))
	w.Uvarint(uint64(len(s)))
	for _, v := range s {
		w.Fixed(v.PubKey[:])
		w.Uvarint(v.Power)
	}
	return w.Bytes()
}

// DecodeValidatorSet strictly decodes a validator set (sorted, distinct,
// positive powers).
func DecodeValidatorSet(b []byte) (ValidatorSet, error) {
	r := codec.NewReader(b)
	n := r.Uvarint()
	if n > MaxValidators || n > uint64(r.Remaining()/(ValidatorKeySize+1)) {
		r.Fail(fmt.Errorf("%w: %d validators", codec.ErrTooLong, n))
	}
	var s ValidatorSet
	for i := uint64(0); r.Err() == nil && i < n; i++ {
		var v Validator
		r.Fixed(v.PubKey[:])
		v.Power = r.Uvarint()
		if r.Err() == nil && (v.Power == 0 || v.Power > MaxValidatorPower) {
			r.Fail(fmt.Errorf("%w: validator power %d", codec.ErrBadFormat, v.Power))
		}
		if r.Err() == nil && i > 0 && string(s[i-1].PubKey[:]) >= string(v.PubKey[:]) {
			r.Fail(fmt.Errorf("%w: validators not sorted and distinct", codec.ErrBadFormat))
		}
		s = append(s, v)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: validator set: %v", ErrMalformed, err)
	}
	return s, nil
}

// EncodeRuntimeVersion encodes a pRuntime version (the payload of
// TopicGovMinRuntimeVersion and the value of KeyMinRuntimeVersion).
func EncodeRuntimeVersion(v uint32) []byte { return binary.AppendUvarint(nil, uint64(v)) }

// DecodeRuntimeVersion strictly decodes a pRuntime version.
func DecodeRuntimeVersion(b []byte) (uint32, error) {
	r := codec.NewReader(b)
	v := decodeU32(r)
	if err := r.Done(); err != nil {
		return 0, fmt.Errorf("%w: runtime version: %v", ErrMalformed, err)
	}
	return v, nil
}

// EncodeMeasurements encodes a measurement allowlist (the payload of
// TopicGovAllowlist).
func EncodeMeasurements(ms []HexBytes) []byte {
	w := codec.NewWriter(8 + 33*len(ms))
	w.Uvarint(uint64(len(ms)))
	for _, m := range ms {
		w.BytesField(m)
	}
	return w.Bytes()
}

// MaxMeasurements bounds an allowlist.
const MaxMeasurements = 1024

// DecodeMeasurements strictly decodes a measurement allowlist.
func DecodeMeasurements(b []byte) ([]HexBytes, error) {
	r := codec.NewReader(b)
	ms := readMeasurements(r)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: measurements: %v", ErrMalformed, err)
	}
	return ms, nil
}
