package eras

import (
	"testing"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/module"
)

type memKV map[string][]byte

func (m memKV) Get(k []byte) []byte { return m[string(k)] }
func (m memKV) Set(k, v []byte)     { m[string(k)] = append([]byte(nil), v...) }
func (m memKV) Delete(k []byte)     { delete(m, string(k)) }

// BeginBlock starts a segment only at an era's first block and only when
// era_length differs from the current segment's; it writes a missing
// schedule (state from before it existed) as one segment of the current
// length; a full schedule refuses the change with an event.
func TestBeginBlock(t *testing.T) {
	p := api.DefaultParams()
	p.EraLength = 10
	run := func(kv memKV, h int64, length uint64) *block.Context {
		t.Helper()
		q := p
		q.EraLength = length
		ctx := &block.Context{KV: kv, Height: h, Params: q}
		if err := BeginBlock(ctx); err != nil {
			t.Fatalf("height %d: %v", h, err)
		}
		return ctx
	}
	segments := func(kv memKV) []api.EraSegment { return Schedule(kv, p).Segments }
	for _, tc := range []struct {
		name   string
		h      int64
		length uint64
		want   []api.EraSegment
		msgs   int
	}{
		{"same length at a boundary", 11, 10, []api.EraSegment{{Start: 1, FirstEra: 0, Length: 10}}, 0},
		{"new length mid-era", 15, 4, []api.EraSegment{{Start: 1, FirstEra: 0, Length: 10}}, 0},
		{"new length at an era's last block", 20, 4, []api.EraSegment{{Start: 1, FirstEra: 0, Length: 10}}, 0},
		{"new length at an era's first block", 21, 4, []api.EraSegment{{Start: 1, FirstEra: 0, Length: 10}, {Start: 21, FirstEra: 2, Length: 4}}, 1},
		{"first block of the chain", 1, 4, []api.EraSegment{{Start: 1, FirstEra: 0, Length: 10}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := memKV{}
			if err := initGenesis(kv, genesis(p)); err != nil {
				t.Fatal(err)
			}
			ctx := run(kv, tc.h, tc.length)
			if got := segments(kv); len(got) != len(tc.want) || got[len(got)-1] != tc.want[len(tc.want)-1] || len(ctx.Messages) != tc.msgs {
				t.Fatalf("segments %+v, %d messages", got, len(ctx.Messages))
			}
		})
	}
	// Legacy state: no schedule; written at the next block from the
	// current length, then changes apply at boundaries by it.
	kv := memKV{}
	run(kv, 7, 10)
	if kv.Get(api.KeyEraSchedule) == nil {
		t.Fatal("missing schedule not written")
	}
	run(kv, 11, 5)
	if got := segments(kv); len(got) != 2 || got[1] != (api.EraSegment{Start: 11, FirstEra: 1, Length: 5}) {
		t.Fatalf("segments %+v", got)
	}
	// Full: the change does not apply, an event says so.
	full := api.GenesisEras(10)
	for i := 1; i < api.MaxEraSegments; i++ {
		if err := full.Change(full.End(full.Current().FirstEra)+1, uint64(10-i%2)); err != nil {
			t.Fatal(err)
		}
	}
	kv = memKV{string(api.KeyEraSchedule): full.Encode()}
	h := full.End(full.Current().FirstEra) + 1
	ctx := run(kv, h, full.Current().Length+7)
	if len(segments(kv)) != api.MaxEraSegments || len(ctx.Messages) != 0 || len(ctx.Events) != 1 || ctx.Events[0].Type != "era_length_change_refused" {
		t.Fatalf("full schedule: %d segments, %d messages, events %+v", len(segments(kv)), len(ctx.Messages), ctx.Events)
	}
}

func genesis(p api.Params) *module.Genesis {
	return &module.Genesis{ChainID: "c", State: &api.GenesisState{Params: p}}
}
