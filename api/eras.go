package api

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sort"

	"github.com/phalago/phala/api/codec"
)

// The era schedule (docs/economy.md, "Eras"; module eras). Eras number
// the chain's blocks in consecutive ranges: era 0 starts at height 1.
// Governance may change era_length at any block, but a change takes
// effect at the next era boundary: eras already started or past keep
// their ranges. The chain keeps the ranges as segments of equal-length
// eras, one segment per change, and every era computation on chain and
// off chain reads them (EraSchedule.Era), never height / era_length.
const (
	// ErasModule is the eras module's origin name.
	ErasModule = "eras"
	// TopicEraSchedule: payload EraSchedule (origin module eras), sent in
	// the block that starts a segment (the first block of an era whose
	// length differs from the previous era's): the whole schedule.
	TopicEraSchedule = "phala/eras/schedule"
	// QueryEraSchedule: value EraSchedule (KeyEraSchedule), proved.
	QueryEraSchedule = "/eras/schedule"
)

// KeyEraSchedule is the state key of the era schedule.
var KeyEraSchedule = []byte("era/schedule")

// MaxEraSegments bounds the schedule: each change of era_length adds one
// segment; governance refuses a change once the schedule is full.
const MaxEraSegments = 256

// MaxEraLength bounds era_length, in blocks, so that era arithmetic
// cannot overflow.
const MaxEraLength = MaxRegistrationLifetime

// ErrEraSchedule is the error of a malformed or inconsistent era schedule
// (decoding, or a change that is not at an era boundary).
var ErrEraSchedule = errors.New("era schedule")

// EraSegment is a run of eras of one length: era FirstEra starts at
// height Start, and each era of the segment lasts Length blocks, up to
// the next segment's first era.
type EraSegment struct {
	Start    int64  // height of the first block of era FirstEra (≥ 1)
	FirstEra uint64 // the segment's first era
	Length   uint64 // blocks per era, in [1, MaxEraLength]
}

// EraSchedule is the chain's era numbering: segments in increasing order
// of Start, the first one from height 1 and era 0; each next one starts at
// the first block of an era of the previous one, with another length.
// The zero value is invalid: use GenesisEras.
type EraSchedule struct {
	Segments []EraSegment
}

// GenesisEras returns the schedule of a chain whose genesis era_length
// is length (blocks): one segment, era 0 from height 1.
func GenesisEras(length uint64) *EraSchedule {
	return &EraSchedule{Segments: []EraSegment{{Start: 1, FirstEra: 0, Length: length}}}
}

// Era returns the era of height and whether height is that era's last
// block. Heights below 1 (before the first block) are era 0, not last.
func (s *EraSchedule) Era(height int64) (era uint64, last bool) {
	if height < 1 || len(s.Segments) == 0 {
		return 0, false
	}
	i := sort.Search(len(s.Segments), func(i int) bool { return s.Segments[i].Start > height }) - 1
	if i < 0 {
		return 0, false
	}
	g := s.Segments[i]
	off := uint64(height - g.Start)
	return g.FirstEra + off/g.Length, (off+1)%g.Length == 0
}

// EraOf is Era without the last flag.
func (s *EraSchedule) EraOf(height int64) uint64 {
	e, _ := s.Era(height)
	return e
}

// segment returns the segment era belongs to.
func (s *EraSchedule) segment(era uint64) EraSegment {
	i := sort.Search(len(s.Segments), func(i int) bool { return s.Segments[i].FirstEra > era }) - 1
	if i < 0 {
		return EraSegment{Start: 1, Length: 1}
	}
	return s.Segments[i]
}

// Length returns the length of era, in blocks.
func (s *EraSchedule) Length(era uint64) uint64 {
	if len(s.Segments) == 0 {
		return 1
	}
	return s.segment(era).Length
}

// Start returns the height of era's first block; math.MaxInt64 when it
// lies beyond that (an era number no chain reaches).
func (s *EraSchedule) Start(era uint64) int64 {
	if len(s.Segments) == 0 {
		return 1
	}
	g := s.segment(era)
	hi, lo := bits.Mul64(era-g.FirstEra, g.Length)
	if hi != 0 || lo > uint64(math.MaxInt64-g.Start) {
		return math.MaxInt64
	}
	return g.Start + int64(lo)
}

// End returns the height of era's last block; math.MaxInt64 when it lies
// beyond that.
func (s *EraSchedule) End(era uint64) int64 {
	st := s.Start(era)
	l := s.Length(era)
	if l-1 > uint64(math.MaxInt64-st) {
		return math.MaxInt64
	}
	return st + int64(l-1)
}

// Current returns the last segment (the one eras from now on follow until
// the next change).
func (s *EraSchedule) Current() EraSegment { return s.Segments[len(s.Segments)-1] }

// Full reports whether no further segment can be added.
func (s *EraSchedule) Full() bool { return len(s.Segments) >= MaxEraSegments }

// Change starts a segment of eras of length blocks at height, which must
// be the first block of an era after the last segment's start (the block
// after an era's last). It does nothing when length is the current one.
// Errors wrap ErrEraSchedule: not an era's first block, a length out of
// [1, MaxEraLength], a full schedule.
func (s *EraSchedule) Change(height int64, length uint64) error {
	cur := s.Current()
	if length == cur.Length {
		return nil
	}
	if length == 0 || length > MaxEraLength {
		return fmt.Errorf("%w: era length %d out of [1, %d]", ErrEraSchedule, length, MaxEraLength)
	}
	if height <= cur.Start {
		return fmt.Errorf("%w: height %d is not after the current segment's start %d", ErrEraSchedule, height, cur.Start)
	}
	prev, last := s.Era(height - 1)
	if !last {
		return fmt.Errorf("%w: height %d is not the first block of an era", ErrEraSchedule, height)
	}
	if s.Full() {
		return fmt.Errorf("%w: %d segments, the most a schedule holds", ErrEraSchedule, MaxEraSegments)
	}
	s.Segments = append(s.Segments, EraSegment{Start: height, FirstEra: prev + 1, Length: length})
	return nil
}

// Equal reports whether s and o have the same segments.
func (s *EraSchedule) Equal(o *EraSchedule) bool {
	if len(s.Segments) != len(o.Segments) {
		return false
	}
	for i := range s.Segments {
		if s.Segments[i] != o.Segments[i] {
			return false
		}
	}
	return true
}

// Clone returns a copy that shares nothing with s.
func (s *EraSchedule) Clone() *EraSchedule {
	return &EraSchedule{Segments: append([]EraSegment(nil), s.Segments...)}
}

// Validate checks the schedule's shape: 1 to MaxEraSegments segments, the
// first from height 1 and era 0, each next one starting at an era
// boundary of the previous one with a larger first era and another
// length, every length in [1, MaxEraLength].
func (s *EraSchedule) Validate() error {
	n := len(s.Segments)
	if n == 0 || n > MaxEraSegments {
		return fmt.Errorf("%w: %d segments, want 1 to %d", ErrEraSchedule, n, MaxEraSegments)
	}
	if g := s.Segments[0]; g.Start != 1 || g.FirstEra != 0 {
		return fmt.Errorf("%w: the first segment starts at height %d era %d, want height 1 era 0", ErrEraSchedule, g.Start, g.FirstEra)
	}
	for i, g := range s.Segments {
		if g.Length == 0 || g.Length > MaxEraLength {
			return fmt.Errorf("%w: segment %d: era length %d out of [1, %d]", ErrEraSchedule, i, g.Length, MaxEraLength)
		}
		if i == 0 {
			continue
		}
		p := s.Segments[i-1]
		if g.FirstEra <= p.FirstEra || g.Length == p.Length {
			return fmt.Errorf("%w: segment %d: first era %d and length %d do not follow segment %d's (%d, %d)", ErrEraSchedule, i, g.FirstEra, g.Length, i-1, p.FirstEra, p.Length)
		}
		hi, lo := bits.Mul64(g.FirstEra-p.FirstEra, p.Length)
		if hi != 0 || lo > uint64(math.MaxInt64-p.Start) || p.Start+int64(lo) != g.Start {
			return fmt.Errorf("%w: segment %d: starts at height %d, not at era %d's first block", ErrEraSchedule, i, g.Start, g.FirstEra)
		}
	}
	return nil
}

// Encode returns the schedule's canonical bytes: uvarint count, then per
// segment uvarint start ‖ uvarint first era ‖ uvarint length.
func (s *EraSchedule) Encode() []byte {
	w := codec.NewWriter(1 + 16*len(s.Segments))
	w.Uvarint(uint64(len(s.Segments)))
	for _, g := range s.Segments {
		w.Uvarint(uint64(g.Start))
		w.Uvarint(g.FirstEra)
		w.Uvarint(g.Length)
	}
	return w.Bytes()
}

// DecodeEraSchedule decodes and validates an EraSchedule (strict: no
// trailing bytes, canonical varints). Errors wrap ErrEraSchedule.
func DecodeEraSchedule(b []byte) (*EraSchedule, error) {
	r := codec.NewReader(b)
	n := r.Uvarint()
	if r.Err() == nil && (n == 0 || n > MaxEraSegments || n > uint64(r.Remaining()/3)) {
		r.Fail(fmt.Errorf("%w: %d segments", codec.ErrTooLong, n))
	}
	s := &EraSchedule{}
	for i := uint64(0); r.Err() == nil && i < n; i++ {
		start := r.Uvarint()
		g := EraSegment{FirstEra: r.Uvarint(), Length: r.Uvarint()}
		if start > math.MaxInt64 {
			r.Fail(fmt.Errorf("start height %d out of range", start))
		}
		g.Start = int64(start)
		s.Segments = append(s.Segments, g)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEraSchedule, err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}
