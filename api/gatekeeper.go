package api

import (
	"encoding/binary"
	"fmt"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Gatekeeper election (docs/economy.md "Gatekeeper election"; module
// gatekeeper, keys "g/" and "gk/"). At the last block of era e the chain
// elects the set of era e+1 by sequential Phragmén among the declared,
// attested candidates with enough stake; the set becomes the serving
// gatekeeper list once each member confirmed it holds the MasterKey.

// Gatekeeper election errors; each wraps the result code a client
// branches on.
var (
	ErrNotNodeOperator    = fmt.Errorf("%w: not the node's operator", ErrInvalidCall)
	ErrCandidacyUnchanged = fmt.Errorf("%w: candidacy unchanged", ErrInvalidCall)
	ErrTooManyCandidates  = fmt.Errorf("%w: too many gatekeeper candidates", ErrInvalidCall)
)

// CallGatekeeperCandidacy declares (or withdraws) a node as a gatekeeper
// candidate.
const CallGatekeeperCandidacy CallKind = 30

func init() { callNames[CallGatekeeperCandidacy] = "gatekeeper_candidacy" }

// Topics of the gatekeeper module's queue messages.
const (
	// TopicGatekeeperElected: payload GatekeeperSet, origin module
	// "gatekeeper": the set elected for Era at the end of era Era-1.
	TopicGatekeeperElected = "phala/gatekeeper/elected"
	// TopicGatekeeperActive: payload GatekeeperSet, origin module
	// "gatekeeper": the set's DKG completed (its key set adopted,
	// TopicKeyRotationReady); its participants are the gatekeeper list
	// from this message on.
	TopicGatekeeperActive = "phala/gatekeeper/active"
)

// Query paths of the gatekeeper module.
const (
	QueryGatekeeperEra        = "/gatekeeper/era"        // data: era (big-endian u64); value: ElectionRecord (proved)
	QueryGatekeeperExposure   = "/gatekeeper/exposure"   // data: era (big-endian u64) ‖ member; value: Exposure (proved)
	QueryGatekeeperCandidacy  = "/gatekeeper/candidacy"  // data: node; value: Candidacy (proved)
	QueryGatekeeperCandidates = "/gatekeeper/candidates" // value: key list of the declared candidates, ascending (proved)
)

// MaxGatekeeperCandidates bounds the declared candidates (the election
// reads them all at every era end).
const MaxGatekeeperCandidates = 1_000

// KeyGatekeeperCandidates is the state key of the declared candidates (a
// key list, ascending).
var KeyGatekeeperCandidates = []byte("gk/cands")

// GatekeeperEraKey is the state key of the set elected for era.
func GatekeeperEraKey(era uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte("gk/era/"), era)
}

// GatekeeperExposureKey is the state key of the exposure of the voters to
// member in era's election.
func GatekeeperExposureKey(era uint64, member crypto.PublicKey) []byte {
	return append(binary.BigEndian.AppendUint64([]byte("gk/exp/"), era), member[:]...)
}

// CandidacyKey is the state key of a node's gatekeeper candidacy.
func CandidacyKey(node crypto.PublicKey) []byte { return append([]byte("gk/cand/"), node[:]...) }

// GatekeeperCandidacy is the call gatekeeper_candidacy: the operator of a
// registered, attested node (WorkerRecord.Info.Operator) declares it a
// gatekeeper candidate (On) or withdraws it.
type GatekeeperCandidacy struct {
	Node crypto.PublicKey
	On   bool
}

func (*GatekeeperCandidacy) Kind() CallKind { return CallGatekeeperCandidacy }
func (c *GatekeeperCandidacy) encode(w *codec.Writer) {
	w.Fixed(c.Node[:])
	w.Bool(c.On)
}
func decodeGatekeeperCandidacy(r *codec.Reader) *GatekeeperCandidacy {
	c := &GatekeeperCandidacy{}
	r.Fixed(c.Node[:])
	c.On = r.Bool()
	return c
}

// maxHeight bounds heights in records so they convert to int64.
const maxHeight = 1 << 62

func readHeight(r *codec.Reader) int64 {
	h := r.Uvarint()
	if h > maxHeight {
		r.Fail(fmt.Errorf("%w: height %d", codec.ErrBadFormat, h))
		return 0
	}
	return int64(h)
}

// Candidacy is a declared gatekeeper candidate: the node, the operator
// that declared it and the height of the declaration.
type Candidacy struct {
	Node     crypto.PublicKey
	Operator crypto.PublicKey
	Since    int64
}

func (c *Candidacy) encode(w *codec.Writer) {
	w.Fixed(c.Node[:])
	w.Fixed(c.Operator[:])
	w.Uvarint(uint64(c.Since))
}
func (c *Candidacy) decode(r *codec.Reader) {
	r.Fixed(c.Node[:])
	r.Fixed(c.Operator[:])
	c.Since = readHeight(r)
}

// Encode returns the canonical bytes of c.
func (c *Candidacy) Encode() []byte {
	w := codec.NewWriter(80)
	c.encode(w)
	return w.Bytes()
}

// DecodeCandidacy strictly decodes a Candidacy.
func DecodeCandidacy(b []byte) (*Candidacy, error) {
	c := &Candidacy{}
	r := codec.NewReader(b)
	c.decode(r)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: candidacy: %v", ErrMalformed, err)
	}
	return c, nil
}

// ElectionStatus is where an elected set stands.
type ElectionStatus uint8

const (
	// ElectionPending: elected, waiting for its members' confirmations.
	ElectionPending ElectionStatus = 0
	// ElectionActive: every member confirmed; the set became the
	// gatekeeper list (it may since have been replaced by a later one).
	ElectionActive ElectionStatus = 1
	// ElectionExpired: not confirmed by the next era end; replaced.
	ElectionExpired ElectionStatus = 2
)

func (s ElectionStatus) String() string {
	switch s {
	case ElectionPending:
		return "pending"
	case ElectionActive:
		return "active"
	case ElectionExpired:
		return "expired"
	}
	return fmt.Sprintf("status#%d", uint8(s))
}

// MemberBacking is an elected member's backing: Total units exposed to it,
// Own of them from allocations to the node (self-votes), the rest from
// nominators (listed in its Exposure).
type MemberBacking struct {
	Total uint64
	Own   uint64
}

// ElectionRecord is the set elected for Era (at the last block of era
// Era-1, Height): the members in election order with their backing, the
// members that confirmed, and the status (StatusHeight: when it last
// changed).
type ElectionRecord struct {
	Era          uint64
	Height       int64
	Members      []crypto.PublicKey
	Backing      []MemberBacking // one per member
	Confirmed    []crypto.PublicKey
	Status       ElectionStatus
	StatusHeight int64
}

// Encode returns the canonical bytes of e.
func (e *ElectionRecord) Encode() []byte {
	w := codec.NewWriter(64 + 64*len(e.Members))
	w.Uvarint(e.Era)
	w.Uvarint(uint64(e.Height))
	w.Fixed(EncodeKeys(e.Members))
	for _, b := range e.Backing {
		w.Uvarint(b.Total)
		w.Uvarint(b.Own)
	}
	w.Fixed(EncodeKeys(e.Confirmed))
	w.U8(uint8(e.Status))
	w.Uvarint(uint64(e.StatusHeight))
	return w.Bytes()
}

func readKeys(r *codec.Reader, max int) []crypto.PublicKey {
	n := r.Len(max)
	if r.Err() != nil {
		return nil
	}
	if n > r.Remaining()/crypto.PublicKeySize {
		r.Fail(codec.ErrShort)
		return nil
	}
	var keys []crypto.PublicKey
	if n > 0 {
		keys = make([]crypto.PublicKey, n)
		for i := range keys {
			r.Fixed(keys[i][:])
		}
	}
	return keys
}

// DecodeElectionRecord strictly decodes an ElectionRecord: at most
// MaxGatekeepers members, one backing each, Own ≤ Total, at most as many
// confirmations as members, a known status.
func DecodeElectionRecord(b []byte) (*ElectionRecord, error) {
	e := &ElectionRecord{}
	r := codec.NewReader(b)
	e.Era = r.Uvarint()
	e.Height = readHeight(r)
	e.Members = readKeys(r, MaxGatekeepers)
	for range e.Members {
		mb := MemberBacking{Total: r.Uvarint(), Own: r.Uvarint()}
		if mb.Own > mb.Total {
			r.Fail(fmt.Errorf("%w: own backing over total", codec.ErrBadFormat))
		}
		e.Backing = append(e.Backing, mb)
	}
	e.Confirmed = readKeys(r, len(e.Members))
	e.Status = ElectionStatus(r.U8())
	if e.Status > ElectionExpired {
		r.Fail(fmt.Errorf("%w: election status %d", codec.ErrBadFormat, e.Status))
	}
	e.StatusHeight = readHeight(r)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: election record: %v", ErrMalformed, err)
	}
	return e, nil
}

// Backer is a nominator's exposure (units) to an elected member.
type Backer struct {
	Who    crypto.PublicKey
	Amount uint64
}

// Exposure is what backs an elected member in an era's election: Total =
// Own (allocations to the node) + Σ Others (nominators, ascending by
// account). The staking module slashes a nominator's exposure with the
// member.
type Exposure struct {
	Era    uint64
	Member crypto.PublicKey
	Total  uint64
	Own    uint64
	Others []Backer
}

// Encode returns the canonical bytes of x.
func (x *Exposure) Encode() []byte {
	w := codec.NewWriter(64 + 40*len(x.Others))
	w.Uvarint(x.Era)
	w.Fixed(x.Member[:])
	w.Uvarint(x.Total)
	w.Uvarint(x.Own)
	w.Uvarint(uint64(len(x.Others)))
	for _, o := range x.Others {
		w.Fixed(o.Who[:])
		w.Uvarint(o.Amount)
	}
	return w.Bytes()
}

// DecodeExposure strictly decodes an Exposure.
func DecodeExposure(b []byte) (*Exposure, error) {
	x := &Exposure{}
	r := codec.NewReader(b)
	x.Era = r.Uvarint()
	r.Fixed(x.Member[:])
	x.Total = r.Uvarint()
	x.Own = r.Uvarint()
	n := r.Uvarint()
	if n > uint64(r.Remaining()/(crypto.PublicKeySize+1)) {
		r.Fail(codec.ErrTooLong)
	}
	if r.Err() == nil && n > 0 {
		x.Others = make([]Backer, n)
		for i := range x.Others {
			r.Fixed(x.Others[i].Who[:])
			x.Others[i].Amount = r.Uvarint()
		}
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: exposure: %v", ErrMalformed, err)
	}
	return x, nil
}

// GatekeeperSet is the payload of TopicGatekeeperElected and
// TopicGatekeeperActive: an era and its members in election order.
type GatekeeperSet struct {
	Era     uint64
	Members []crypto.PublicKey
}

// Encode returns the canonical bytes of s.
func (s *GatekeeperSet) Encode() []byte {
	w := codec.NewWriter(8 + 32*len(s.Members))
	w.Uvarint(s.Era)
	w.Fixed(EncodeKeys(s.Members))
	return w.Bytes()
}

// DecodeGatekeeperSet strictly decodes a GatekeeperSet (at most
// MaxGatekeepers members).
func DecodeGatekeeperSet(b []byte) (*GatekeeperSet, error) {
	s := &GatekeeperSet{}
	r := codec.NewReader(b)
	s.Era = r.Uvarint()
	s.Members = readKeys(r, MaxGatekeepers)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: gatekeeper set: %v", ErrMalformed, err)
	}
	return s, nil
}

// GatekeeperReady names the era of the elected set whose DKG runs (the
// gatekeeper module's pending era).
type GatekeeperReady struct{ Era uint64 }

// Encode returns the canonical bytes of g.
func (g *GatekeeperReady) Encode() []byte { return binary.AppendUvarint(nil, g.Era) }

// DecodeGatekeeperReady strictly decodes a GatekeeperReady.
func DecodeGatekeeperReady(b []byte) (*GatekeeperReady, error) {
	r := codec.NewReader(b)
	g := &GatekeeperReady{Era: r.Uvarint()}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: gatekeeper ready: %v", ErrMalformed, err)
	}
	return g, nil
}
