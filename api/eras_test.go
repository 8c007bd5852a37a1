package api

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

// schedule builds a schedule from genesis length l0 and changes applied
// in order (each at an era's first block).
func schedule(t testing.TB, l0 uint64, changes ...struct {
	h int64
	l uint64
}) *EraSchedule {
	t.Helper()
	s := GenesisEras(l0)
	for _, c := range changes {
		if err := s.Change(c.h, c.l); err != nil {
			t.Fatalf("change at %d to %d: %v", c.h, c.l, err)
		}
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	return s
}

type change = struct {
	h int64
	l uint64
}

func TestEraSchedule(t *testing.T) {
	// Genesis 10; from era 2 (height 21) 3; from era 5 (height 30) 100.
	multi := schedule(t, 10, change{21, 3}, change{30, 100})
	for _, tc := range []struct {
		name   string
		s      *EraSchedule
		h      int64
		era    uint64
		last   bool
		start  int64 // Start(era)
		end    int64 // End(era)
		length uint64
	}{
		{"height 0", GenesisEras(10), 0, 0, false, 1, 10, 10},
		{"negative height", GenesisEras(10), -5, 0, false, 1, 10, 10},
		{"first block", GenesisEras(10), 1, 0, false, 1, 10, 10},
		{"era 0 last", GenesisEras(10), 10, 0, true, 1, 10, 10},
		{"era 1 first", GenesisEras(10), 11, 1, false, 11, 20, 10},
		{"length 1: every block last", GenesisEras(1), 7, 6, true, 7, 7, 1},
		{"multi: era 1 keeps its range", multi, 20, 1, true, 11, 20, 10},
		{"multi: first block of the new length", multi, 21, 2, false, 21, 23, 3},
		{"multi: last of era 2", multi, 23, 2, true, 21, 23, 3},
		{"multi: era 4", multi, 27, 4, false, 27, 29, 3},
		{"multi: era 4 last, before the second change", multi, 29, 4, true, 27, 29, 3},
		{"multi: era 5 first of length 100", multi, 30, 5, false, 30, 129, 100},
		{"multi: era 5 last", multi, 129, 5, true, 30, 129, 100},
		{"multi: era 6", multi, 130, 6, false, 130, 229, 100},
		{"huge height", GenesisEras(600), math.MaxInt64, uint64(math.MaxInt64-1) / 600, false,
			int64(uint64(math.MaxInt64-1)/600*600 + 1), math.MaxInt64, 600},
		{"huge height, multi", multi, math.MaxInt64, 5 + uint64(math.MaxInt64-30)/100, uint64(math.MaxInt64-30+1)%100 == 0,
			30 + int64(uint64(math.MaxInt64-30)/100*100), math.MaxInt64, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			era, last := tc.s.Era(tc.h)
			if era != tc.era || last != tc.last {
				t.Fatalf("Era(%d) = %d, %v; want %d, %v", tc.h, era, last, tc.era, tc.last)
			}
			if st, en, l := tc.s.Start(era), tc.s.End(era), tc.s.Length(era); st != tc.start || en != tc.end || l != tc.length {
				t.Fatalf("era %d: start %d end %d length %d; want %d %d %d", era, st, en, l, tc.start, tc.end, tc.length)
			}
		})
	}
	// Start and End saturate beyond int64 heights.
	if s, e := multi.Start(math.MaxUint64), multi.End(math.MaxUint64); s != math.MaxInt64 || e != math.MaxInt64 {
		t.Fatalf("era MaxUint64: start %d end %d", s, e)
	}
	// Era and Start/End agree at every height of the multi schedule.
	for h := int64(1); h < 400; h++ {
		era, last := multi.Era(h)
		if h < multi.Start(era) || h > multi.End(era) || last != (h == multi.End(era)) {
			t.Fatalf("height %d: era %d [%d, %d] last %v", h, era, multi.Start(era), multi.End(era), last)
		}
		if next, _ := multi.Era(h + 1); last && next != era+1 || !last && next != era {
			t.Fatalf("height %d → %d: eras %d → %d", h, h+1, era, next)
		}
	}
}

func TestEraScheduleChange(t *testing.T) {
	for _, tc := range []struct {
		name    string
		s       *EraSchedule
		h       int64
		l       uint64
		wantErr bool
		segs    int
	}{
		{"same length: nothing", GenesisEras(10), 15, 10, false, 1},
		{"at a boundary", GenesisEras(10), 11, 4, false, 2},
		{"mid-era", GenesisEras(10), 15, 4, true, 1},
		{"at the genesis start", GenesisEras(10), 1, 4, true, 1},
		{"length 0", GenesisEras(10), 11, 0, true, 1},
		{"length too large", GenesisEras(10), 11, MaxEraLength + 1, true, 1},
		{"before the current segment", schedule(t, 10, change{21, 3}), 11, 5, true, 2},
		{"at the current segment's start", schedule(t, 10, change{21, 3}), 21, 5, true, 2},
		{"after a change, at its boundary", schedule(t, 10, change{21, 3}), 24, 5, false, 3},
		{"after a change, at an old boundary", schedule(t, 10, change{21, 3}), 31, 5, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Change(tc.h, tc.l)
			if (err != nil) != tc.wantErr || len(tc.s.Segments) != tc.segs {
				t.Fatalf("err %v, %d segments; want error %v, %d segments", err, len(tc.s.Segments), tc.wantErr, tc.segs)
			}
			if err != nil && !errors.Is(err, ErrEraSchedule) {
				t.Fatalf("error %v does not wrap ErrEraSchedule", err)
			}
			if err := tc.s.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Full: MaxEraSegments segments, then refused.
	s := GenesisEras(1)
	for i := 1; i < MaxEraSegments; i++ {
		l := uint64(1 + i%2)
		if err := s.Change(s.End(s.EraOf(s.Current().Start))+1, l); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	if !s.Full() || s.Validate() != nil {
		t.Fatalf("%d segments, full %v, valid %v", len(s.Segments), s.Full(), s.Validate())
	}
	if err := s.Change(s.End(s.EraOf(s.Current().Start))+1, 7); !errors.Is(err, ErrEraSchedule) {
		t.Fatalf("change of a full schedule: %v", err)
	}
	b := s.Encode()
	if d, err := DecodeEraSchedule(b); err != nil || !bytes.Equal(d.Encode(), b) {
		t.Fatalf("full schedule round trip: %v", err)
	}
}

func TestEraScheduleDecodeRejects(t *testing.T) {
	good := schedule(t, 10, change{21, 3}).Encode()
	enc := func(segs ...EraSegment) []byte { return (&EraSchedule{Segments: segs}).Encode() }
	for name, b := range map[string][]byte{
		"empty":             {},
		"no segments":       {0},
		"trailing":          append(append([]byte{}, good...), 0),
		"truncated":         good[:len(good)-1],
		"first not at 1":    enc(EraSegment{Start: 2, Length: 10}),
		"first not era 0":   enc(EraSegment{Start: 1, FirstEra: 1, Length: 10}),
		"length 0":          enc(EraSegment{Start: 1, Length: 0}),
		"mid-era segment":   enc(EraSegment{Start: 1, Length: 10}, EraSegment{Start: 15, FirstEra: 1, Length: 3}),
		"same length twice": enc(EraSegment{Start: 1, Length: 10}, EraSegment{Start: 11, FirstEra: 1, Length: 10}),
		"era not after":     enc(EraSegment{Start: 1, Length: 10}, EraSegment{Start: 1, FirstEra: 0, Length: 3}),
		"non-canonical":     {0x81, 0x00, 1, 0, 10},
	} {
		if _, err := DecodeEraSchedule(b); !errors.Is(err, ErrEraSchedule) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if s, err := DecodeEraSchedule(good); err != nil || !bytes.Equal(s.Encode(), good) {
		t.Fatalf("good schedule: %v", err)
	}
}

// FuzzDecodeEraSchedule: anything that decodes is valid, re-encodes to
// the same bytes, and answers Era/Start/End consistently.
func FuzzDecodeEraSchedule(f *testing.F) {
	f.Add(GenesisEras(600).Encode())
	f.Add(schedule(f, 10, change{21, 3}, change{30, 100}).Encode())
	f.Add([]byte{1, 1, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeEraSchedule(b)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("decoded an invalid schedule: %v", err)
		}
		if !bytes.Equal(s.Encode(), b) {
			t.Fatalf("re-encoding differs: %x vs %x", s.Encode(), b)
		}
		for _, g := range s.Segments {
			for _, h := range []int64{g.Start - 1, g.Start, g.Start + 1} {
				era, last := s.Era(h)
				if h >= 1 && (h < s.Start(era) || h > s.End(era) || last != (h == s.End(era))) {
					t.Fatalf("height %d: era %d [%d, %d] last %v", h, era, s.Start(era), s.End(era), last)
				}
			}
		}
	})
}
