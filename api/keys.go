package api

// The key lifecycle's messages and state (docs/keys.md): the MasterKey of
// each key era exists only as shares held by that era's key set; a
// contract's key is a threshold DH-PRF of it, each member sealing its
// partial evaluation to the assigned worker (KeyPartials), the worker
// checking and combining any T of them and, for a first deployment,
// reporting the contract's public keys (ContractKeyed).

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Topics and channel purpose of contract key provisioning.
const (
	// TopicKeyPartials: payload KeyPartials, origin kind WORKER: a member
	// of the key set of the partials' era (members of past sets keep
	// serving the contracts still under their era, so the gatekeeper
	// origin, the serving set only, does not fit).
	TopicKeyPartials = "phala/keys/partials"
	// TopicContractKeyed: payload ContractKeyed, origin kind WORKER: a
	// worker of a completed first-deployment round reporting the
	// contract's public keys it derived.
	TopicContractKeyed = "phala/keys/contract_keyed"
	// TopicKeyRotationReady: payload KeySet, origin module gatekeeper:
	// the chain adopted the key set of an era, which serves new contracts
	// from here (whitepaper 4.7's "Key Rotation Ready").
	TopicKeyRotationReady = "phala/keys/rotation_ready"
	// TopicRekey: payload Rekey, origin module contracts: a deployed
	// contract's next key epoch is due; the serving key set's members
	// send KeyForEpoch partials to its workers.
	TopicRekey = "phala/keys/rekey"
	// TopicRekeyed: payload ContractKeyGrant (built by the chain: the
	// contract's identity, its new ECDH key, the new era and epoch, the
	// round, its workers), origin module contracts: the workers add the
	// epoch's key and start the rolling re-encryption.
	TopicRekeyed = "phala/keys/rekeyed"
	// TopicKeyEraRetired: payload uvarint era, origin module gatekeeper:
	// no contract needs that key era any more (or its deadline passed);
	// its members destroy their shares.
	TopicKeyEraRetired = "phala/keys/era_retired"
	// ChannelPurposeKeyPartial is the channel purpose of a sealed partial
	// evaluation (CommKey(member EcdhKey, worker EcdhKey)).
	ChannelPurposeKeyPartial = "contract key partial"
)

// KeyPurpose says what a round of partials provisions.
type KeyPurpose uint8

// Key purposes.
const (
	// KeyForWorkers: the contract's workers (its first deployment, or
	// replicas added to it).
	KeyForWorkers KeyPurpose = 0
	// KeyForArbiters: the arbiters of the open dispute of Contract's
	// update at Disputed (docs/availability.md, "Arbitration").
	KeyForArbiters KeyPurpose = 1
	// KeyForEpoch: the next key epoch of deployed Contract, for its
	// current workers (docs/keys.md, "The epoch protocol").
	KeyForEpoch KeyPurpose = 2
)

// MaxPartialSize bounds one sealed partial evaluation (a 164-byte
// threshold.Partial plus the channel's nonce and tag).
const MaxPartialSize = 256

// KeyPartials is one key-set member's partial evaluations of a contract's
// key (docs/keys.md, "Contract key derivation"), each sealed to one
// worker: CommKey(MemberE, worker EcdhKey) for ChannelPurposeKeyPartial,
// additional data AD(worker). The round (Round) is everything but the
// member's own fields: the members of a set pick the same workers from the
// same queue, so their partials fall into one round, complete once T
// distinct members of the era's KeySet sent theirs.
type KeyPartials struct {
	Upload   [32]byte
	Era      uint64 // the key set whose shares evaluate
	Epoch    uint64 // the contract's key epoch
	Purpose  KeyPurpose
	Contract crypto.PublicKey // KeyForArbiters: the disputed contract; zero otherwise
	Disputed int64            // KeyForArbiters: the disputed update's height; 0 otherwise
	MemberE  crypto.PublicKey // the member's ECDH key that sealed
	Workers  []SealedKey      // one per worker, the round's workers in order
}

// SealedKey is key material sealed to one worker.
type SealedKey struct {
	Worker crypto.PublicKey // the worker's identity key
	Sealed []byte
}

// WorkerKeys returns the workers p provisions, in order.
func (p *KeyPartials) WorkerKeys() []crypto.PublicKey {
	out := make([]crypto.PublicKey, len(p.Workers))
	for i, k := range p.Workers {
		out[i] = k.Worker
	}
	return out
}

// Round identifies the round p belongs to: SHA-256 of its upload, era,
// epoch, purpose, contract, disputed height and workers.
func (p *KeyPartials) Round() [32]byte {
	w := codec.NewWriter(128 + 32*len(p.Workers))
	w.Fixed([]byte("phala/key-round"))
	p.encodeRound(w)
	w.Fixed(EncodeKeys(p.WorkerKeys()))
	return sha256.Sum256(w.Bytes())
}

func (p *KeyPartials) encodeRound(w *codec.Writer) {
	w.Fixed(p.Upload[:])
	w.Uvarint(p.Era)
	w.Uvarint(p.Epoch)
	w.U8(uint8(p.Purpose))
	w.Fixed(p.Contract[:])
	w.Varint(p.Disputed)
}

// AD returns the additional data bound to worker's sealed partial: the
// round, the worker and the sealing member's ECDH key.
func (p *KeyPartials) AD(worker crypto.PublicKey) []byte {
	r := p.Round()
	b := append(r[:], worker[:]...)
	return append(b, p.MemberE[:]...)
}

// Encode returns the canonical bytes.
func (p *KeyPartials) Encode() []byte {
	w := codec.NewWriter(160 + len(p.Workers)*(32+MaxPartialSize))
	p.encodeRound(w)
	w.Fixed(p.MemberE[:])
	w.Uvarint(uint64(len(p.Workers)))
	for _, k := range p.Workers {
		w.Fixed(k.Worker[:])
		w.BytesField(k.Sealed)
	}
	return w.Bytes()
}

// DecodeKeyPartials strictly decodes the payload: a known purpose, at
// most MaxReplicas workers (arbiters are fewer), each sealed partial at
// most MaxPartialSize bytes, no worker twice. Errors: ErrMalformed.
func DecodeKeyPartials(b []byte) (*KeyPartials, error) {
	p := &KeyPartials{}
	r := codec.NewReader(b)
	r.Fixed(p.Upload[:])
	p.Era = r.Uvarint()
	p.Epoch = r.Uvarint()
	p.Purpose = KeyPurpose(r.U8())
	r.Fixed(p.Contract[:])
	p.Disputed = r.Varint()
	r.Fixed(p.MemberE[:])
	n := r.Uvarint()
	if n == 0 || n > MaxReplicas {
		r.Fail(fmt.Errorf("%w: %d workers", codec.ErrTooLong, n))
	}
	seen := map[crypto.PublicKey]bool{}
	for i := uint64(0); r.Err() == nil && i < n; i++ {
		var k SealedKey
		r.Fixed(k.Worker[:])
		k.Sealed = r.BytesField(MaxPartialSize)
		if seen[k.Worker] {
			r.Fail(fmt.Errorf("worker %s twice", k.Worker.Short()))
		}
		seen[k.Worker] = true
		p.Workers = append(p.Workers, k)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: key partials: %v", ErrMalformed, err)
	}
	switch {
	case p.Purpose > KeyForEpoch:
		return nil, fmt.Errorf("%w: key partials: purpose %d", ErrMalformed, p.Purpose)
	case p.Purpose == KeyForEpoch && (p.Contract == crypto.PublicKey{} || p.Disputed != 0):
		return nil, fmt.Errorf("%w: key partials for a key epoch name no contract, or a dispute", ErrMalformed)
	case p.Purpose == KeyForWorkers && (p.Contract != crypto.PublicKey{} || p.Disputed != 0):
		return nil, fmt.Errorf("%w: key partials for workers name a dispute", ErrMalformed)
	case p.Purpose == KeyForArbiters && (p.Contract == crypto.PublicKey{} || p.Disputed <= 0):
		return nil, fmt.Errorf("%w: key partials for arbiters name no dispute", ErrMalformed)
	}
	return p, nil
}

// ContractKeyed is a worker's report of the public keys of the contract
// it derived from a completed first-deployment round (Round): the chain
// deploys the contract with the round's workers on the first report (the
// keys come from an enclave's derivation; docs/trust.md).
type ContractKeyed struct {
	Round    [32]byte
	Upload   [32]byte
	Identity crypto.PublicKey
	Ecdh     crypto.PublicKey
}

// Encode returns the canonical bytes.
func (k *ContractKeyed) Encode() []byte {
	b := make([]byte, 0, 128)
	b = append(b, k.Round[:]...)
	b = append(b, k.Upload[:]...)
	b = append(b, k.Identity[:]...)
	return append(b, k.Ecdh[:]...)
}

// DecodeContractKeyed strictly decodes the payload (exactly 128 bytes).
func DecodeContractKeyed(b []byte) (*ContractKeyed, error) {
	if len(b) != 128 {
		return nil, fmt.Errorf("%w: contract keyed: %d bytes, want 128", ErrMalformed, len(b))
	}
	k := &ContractKeyed{}
	copy(k.Round[:], b)
	copy(k.Upload[:], b[32:])
	copy(k.Identity[:], b[64:])
	copy(k.Ecdh[:], b[96:])
	return k, nil
}

// Rekey is the chain's call for a deployed contract's next key epoch:
// Epoch under the key set of Era (the serving one).
type Rekey struct {
	Contract crypto.PublicKey
	Upload   [32]byte
	Era      uint64
	Epoch    uint64
}

// Encode returns the canonical bytes.
func (k *Rekey) Encode() []byte {
	w := codec.NewWriter(80)
	w.Fixed(k.Contract[:])
	w.Fixed(k.Upload[:])
	w.Uvarint(k.Era)
	w.Uvarint(k.Epoch)
	return w.Bytes()
}

// DecodeRekey strictly decodes a Rekey. Errors: ErrMalformed.
func DecodeRekey(b []byte) (*Rekey, error) {
	k := &Rekey{}
	r := codec.NewReader(b)
	r.Fixed(k.Contract[:])
	r.Fixed(k.Upload[:])
	k.Era = r.Uvarint()
	k.Epoch = r.Uvarint()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: rekey: %v", ErrMalformed, err)
	}
	return k, nil
}

// KeySet is the key set of one key era (docs/keys.md, "Keys per era"):
// its members in share-index order (member i holds the share of index i,
// evaluated at i+1), the threshold T of partials a contract key needs, and
// the public polynomial's commitments (T of them, edwards25519 points;
// Commits[0] is the era's master public key). The genesis key set (era 0)
// is the genesis gatekeepers with T = 1 and one commitment: its MasterKey
// was created whole by the first of them (whitepaper 4.4).
type KeySet struct {
	Era     uint64
	T       uint32
	Members []crypto.PublicKey
	Commits [][32]byte
}

// Public returns the era's master public key (Commits[0]).
func (s *KeySet) Public() [32]byte { return s.Commits[0] }

// Index returns member's share index, -1 if it is not a member.
func (s *KeySet) Index(member crypto.PublicKey) int {
	for i, m := range s.Members {
		if m == member {
			return i
		}
	}
	return -1
}

// Encode returns the canonical bytes.
func (s *KeySet) Encode() []byte {
	w := codec.NewWriter(16 + 32*(len(s.Members)+len(s.Commits)))
	w.Uvarint(s.Era)
	w.Uvarint(uint64(s.T))
	w.Fixed(EncodeKeys(s.Members))
	w.Uvarint(uint64(len(s.Commits)))
	for _, c := range s.Commits {
		w.Fixed(c[:])
	}
	return w.Bytes()
}

// DecodeKeySet strictly decodes a KeySet: 1 ≤ T ≤ members ≤
// MaxGatekeepers, exactly T commitments, no member twice. Whether the
// commitments are group elements is the threshold package's check.
// Errors: ErrMalformed.
func DecodeKeySet(b []byte) (*KeySet, error) {
	s := &KeySet{}
	r := codec.NewReader(b)
	s.Era = r.Uvarint()
	t := r.Uvarint()
	s.Members = readKeys(r, MaxGatekeepers)
	n := r.Uvarint()
	if r.Err() == nil && (t == 0 || t > uint64(len(s.Members)) || n != t) {
		r.Fail(fmt.Errorf("threshold %d, %d members, %d commitments", t, len(s.Members), n))
	}
	s.T = uint32(t)
	for i := uint64(0); r.Err() == nil && i < n; i++ {
		var c [32]byte
		r.Fixed(c[:])
		s.Commits = append(s.Commits, c)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: key set: %v", ErrMalformed, err)
	}
	seen := map[crypto.PublicKey]bool{}
	for _, m := range s.Members {
		if seen[m] {
			return nil, fmt.Errorf("%w: key set: member %s twice", ErrMalformed, m.Short())
		}
		seen[m] = true
	}
	return s, nil
}

// KeySetKey is the state key of the key set of era (8 bytes big-endian).
func KeySetKey(era uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte("g/keyset/"), era)
}

// KeyEraRetiredKey is the state key of era's retirement (8 bytes
// big-endian; gatekeeper module): varint height ‖ reason byte, absent
// while the era is not retired.
func KeyEraRetiredKey(era uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte("g/retired/"), era)
}

// Key era retirement reasons (the reason byte of KeyEraRetiredKey's value).
const (
	KeyEraRetiredUnused   uint8 = 0 // no contract was under the era
	KeyEraRetiredDeadline uint8 = 1 // its deadline passed; contracts still under it are stranded
)

// KeyEraRetirement is the value of KeyEraRetiredKey: the height the era
// was retired at and why (KeyEraRetiredUnused or KeyEraRetiredDeadline).
type KeyEraRetirement struct {
	Height int64
	Reason uint8
}

// Encode returns varint height ‖ reason byte.
func (r KeyEraRetirement) Encode() []byte {
	w := codec.NewWriter(12)
	w.Varint(r.Height)
	w.U8(r.Reason)
	return w.Bytes()
}

// DecodeKeyEraRetirement decodes a KeyEraRetiredKey value. Errors
// (ErrMalformed): short or trailing bytes, a height below 1, an unknown
// reason.
func DecodeKeyEraRetirement(b []byte) (KeyEraRetirement, error) {
	r := codec.NewReader(b)
	x := KeyEraRetirement{Height: r.Varint(), Reason: r.U8()}
	if err := r.Done(); err != nil {
		return KeyEraRetirement{}, fmt.Errorf("%w: key era retirement: %v", ErrMalformed, err)
	}
	if x.Height < 1 || x.Reason > KeyEraRetiredDeadline {
		return KeyEraRetirement{}, fmt.Errorf("%w: key era retirement at height %d, reason %d", ErrMalformed, x.Height, x.Reason)
	}
	return x, nil
}

// KeyServingKeyEra is the state key of the serving key set's era (uvarint):
// new contracts are derived under it.
var KeyServingKeyEra = []byte("g/keyera")

// KeyRoundKey is the state key of a round of partials the chain counts
// (contracts module).
func KeyRoundKey(round [32]byte) []byte { return append([]byte("kr/"), round[:]...) }

// KeyRound is what the chain keeps of a round of partials: its first
// message's round fields and workers, the members that sent theirs, and
// the block of the first.
type KeyRound struct {
	Upload   [32]byte
	Era      uint64
	Epoch    uint64
	Purpose  KeyPurpose
	Contract crypto.PublicKey
	Disputed int64
	Workers  []crypto.PublicKey
	Members  []crypto.PublicKey
	Height   int64
}

// Encode returns the canonical bytes.
func (k *KeyRound) Encode() []byte {
	w := codec.NewWriter(160 + 32*(len(k.Workers)+len(k.Members)))
	p := KeyPartials{Upload: k.Upload, Era: k.Era, Epoch: k.Epoch, Purpose: k.Purpose, Contract: k.Contract, Disputed: k.Disputed}
	p.encodeRound(w)
	w.Fixed(EncodeKeys(k.Workers))
	w.Fixed(EncodeKeys(k.Members))
	w.Varint(k.Height)
	return w.Bytes()
}

// DecodeKeyRound strictly decodes a KeyRound (chain state).
func DecodeKeyRound(b []byte) (*KeyRound, error) {
	k := &KeyRound{}
	r := codec.NewReader(b)
	r.Fixed(k.Upload[:])
	k.Era = r.Uvarint()
	k.Epoch = r.Uvarint()
	k.Purpose = KeyPurpose(r.U8())
	r.Fixed(k.Contract[:])
	k.Disputed = r.Varint()
	k.Workers = readKeys(r, MaxReplicas)
	k.Members = readKeys(r, MaxGatekeepers)
	k.Height = r.Varint()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: key round: %v", ErrMalformed, err)
	}
	return k, nil
}

// The DKG of an elected set (docs/keys.md, "Rotation per era"). The chain
// announces each phase of each attempt (TopicDkgRound, payload DkgState,
// origin module gatekeeper): collecting keys, then dealing among the
// participants, or failed. Members (origin kind WORKER: they are not
// gatekeepers before the set serves) post their DKG key, then their
// deals, responses, justifications and result (DkgMessage); the chain
// forwards them in queue order, so every member sees the same transcript,
// and adopts the key set when T participants posted the same result
// (TopicKeyRotationReady). TopicDkgTimeout (payload DkgMessage without a
// body, origin module gatekeeper) tells the participants the dealing
// deadline passed.
const (
	TopicDkgKey           = "phala/keys/dkg_key"
	TopicDkgRound         = "phala/keys/dkg_round"
	TopicDkgDeals         = "phala/keys/dkg_deals"
	TopicDkgResponse      = "phala/keys/dkg_response"
	TopicDkgJustification = "phala/keys/dkg_justification"
	TopicDkgResult        = "phala/keys/dkg_result"
	TopicDkgTimeout       = "phala/keys/dkg_timeout"
)

// MaxDkgBody bounds a DKG message's body (a member's deals for
// MaxGatekeepers members).
const MaxDkgBody = 1 << 20

// DkgMessage is a member's DKG message of the DKG of era (its attempt):
// Body is a DKG key with its proof of possession (threshold.DKGKeyBody:
// the key, 32 bytes, then a 64-byte Schnorr signature), the member's
// deals, a response, a justification or a result, in the threshold
// package's encodings.
type DkgMessage struct {
	Era     uint64
	Attempt uint64
	Body    []byte
}

// Encode returns the canonical bytes.
func (m *DkgMessage) Encode() []byte {
	w := codec.NewWriter(24 + len(m.Body))
	w.Uvarint(m.Era)
	w.Uvarint(m.Attempt)
	w.BytesField(m.Body)
	return w.Bytes()
}

// DecodeDkgMessage strictly decodes a DkgMessage (a body of at most
// MaxDkgBody bytes). Errors: ErrMalformed.
func DecodeDkgMessage(b []byte) (*DkgMessage, error) {
	r := codec.NewReader(b)
	m := &DkgMessage{Era: r.Uvarint(), Attempt: r.Uvarint()}
	m.Body = r.BytesField(MaxDkgBody)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: dkg message: %v", ErrMalformed, err)
	}
	if !bytes.Equal(m.Encode(), b) {
		return nil, fmt.Errorf("%w: dkg message not in canonical form", ErrMalformed)
	}
	return m, nil
}

// Phases of a DKG (DkgState.Phase).
const (
	DkgCollectingKeys uint8 = 1 // members post their DKG keys
	DkgDealing        uint8 = 2 // participants deal, respond, justify and post results
	DkgTimedOut       uint8 = 3 // DkgTimeout sent: the last window for results
	DkgFailed         uint8 = 4 // given up: the serving set stays
)

// DkgState is the chain's record of the elected set's running DKG
// (KeyDkg): the era and attempt, the phase and the block it began, the
// elected members and each one's DKG key (zero: none posted), then, from
// DkgStart, the participants (the members with keys, in member order: a
// participant's share index is its place here), the threshold T, who
// posted deals, and each participant's result digest (zero: none).
type DkgState struct {
	Era          uint64
	Attempt      uint64
	Phase        uint8
	PhaseStart   int64
	Members      []crypto.PublicKey
	Keys         [][32]byte
	Participants []crypto.PublicKey
	T            uint32
	Dealt        []bool
	Results      [][32]byte
}

// Key returns participant's DKG key, zero if it is none.
func (s *DkgState) Key(participant crypto.PublicKey) [32]byte {
	if i := slices.Index(s.Members, participant); i >= 0 {
		return s.Keys[i]
	}
	return [32]byte{}
}

// Encode returns the canonical bytes.
func (s *DkgState) Encode() []byte {
	w := codec.NewWriter(64 + 64*len(s.Members) + 64*len(s.Participants))
	w.Uvarint(s.Era)
	w.Uvarint(s.Attempt)
	w.U8(s.Phase)
	w.Varint(s.PhaseStart)
	w.Fixed(EncodeKeys(s.Members))
	for _, k := range s.Keys {
		w.Fixed(k[:])
	}
	w.Fixed(EncodeKeys(s.Participants))
	w.Uvarint(uint64(s.T))
	for i := range s.Participants {
		w.Bool(s.Dealt[i])
		w.Fixed(s.Results[i][:])
	}
	return w.Bytes()
}

// DecodeDkgState strictly decodes a DkgState (chain state).
func DecodeDkgState(b []byte) (*DkgState, error) {
	s := &DkgState{}
	r := codec.NewReader(b)
	s.Era, s.Attempt, s.Phase, s.PhaseStart = r.Uvarint(), r.Uvarint(), r.U8(), r.Varint()
	s.Members = readKeys(r, MaxGatekeepers)
	s.Keys = make([][32]byte, len(s.Members))
	for i := range s.Keys {
		r.Fixed(s.Keys[i][:])
	}
	s.Participants = readKeys(r, MaxGatekeepers)
	if t := r.Uvarint(); t > MaxGatekeepers {
		r.Fail(fmt.Errorf("threshold %d", t))
	} else {
		s.T = uint32(t)
	}
	s.Dealt = make([]bool, len(s.Participants))
	s.Results = make([][32]byte, len(s.Participants))
	for i := range s.Participants {
		s.Dealt[i] = r.Bool()
		r.Fixed(s.Results[i][:])
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: dkg state: %v", ErrMalformed, err)
	}
	if !bytes.Equal(s.Encode(), b) {
		return nil, fmt.Errorf("%w: dkg state not in canonical form", ErrMalformed)
	}
	return s, nil
}

// KeyDkg is the state key of the running DKG (DkgState), absent when none
// runs.
var KeyDkg = []byte("g/dkg")
