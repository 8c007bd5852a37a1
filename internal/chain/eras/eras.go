// Package eras owns the chain's era schedule (api.EraSchedule, state key
// api.KeyEraSchedule): which heights make up which era. Every module that
// works per era (computation's heartbeats, era reports and slashes; the
// gatekeeper elections, DKG and key-era retirement; contract assignment)
// reads Schedule, never height / era_length.
//
// Governance may change era_length at any block (set_params); the change
// takes effect at the next era boundary. At the first block of an era,
// before any other module's begin-block work, BeginBlock compares the
// era_length in force with the length of the schedule's current segment;
// if they differ it appends a segment starting at this block, records it
// and announces the whole schedule to pRuntimes (api.TopicEraSchedule).
// Eras already started or past never change their ranges.
package eras

import (
	"fmt"
	"strconv"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/module"
	"github.com/phalago/phala/internal/chain/mq"
	"github.com/phalago/phala/internal/chain/store"
)

// Name is the module's origin name in the queue.
const Name = api.ErasModule

// Schedule returns the era schedule in kv. State written before the
// schedule existed (and the bare stores of unit tests) has none: that
// reads as one segment of p's era_length from height 1, which is what
// such state always assumed; BeginBlock writes it at the next block.
// It panics on a corrupt schedule (a broken invariant: only this module
// writes it, validated).
func Schedule(kv store.KV, p api.Params) *api.EraSchedule {
	v := kv.Get(api.KeyEraSchedule)
	if v == nil {
		return api.GenesisEras(p.EraLength)
	}
	s, err := api.DecodeEraSchedule(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt era schedule: %v", err))
	}
	return s
}

// Of returns the schedule a block's work reads (Schedule of ctx's state
// and params).
func Of(ctx *block.Context) *api.EraSchedule { return Schedule(ctx.KV, ctx.Params) }

// Full reports whether the schedule holds api.MaxEraSegments segments
// already, so that no change of era_length can take effect: governance
// refuses such a change.
func Full(kv store.KV, p api.Params) bool { return Schedule(kv, p).Full() }

// BeginBlock starts a new segment at the first block of an era when the
// era_length in force (ctx.Params) differs from the current segment's
// length, and announces the schedule (event era_length_changed {era,
// start, length, previous}). It writes a missing schedule (state from
// before the schedule existed).
func BeginBlock(ctx *block.Context) error {
	v := ctx.KV.Get(api.KeyEraSchedule)
	s := Schedule(ctx.KV, ctx.Params)
	if v == nil {
		ctx.KV.Set(api.KeyEraSchedule, s.Encode())
	}
	cur := s.Current()
	if ctx.Height < 2 || ctx.Params.EraLength == cur.Length {
		return nil
	}
	if _, last := s.Era(ctx.Height - 1); !last {
		return nil
	}
	if s.Full() {
		// Governance refuses a change once the schedule is full; a change
		// enacted anyway (state from before that check) does not apply.
		ctx.Event("era_length_change_refused", "length", strconv.FormatUint(ctx.Params.EraLength, 10),
			"reason", "the era schedule is full")
		return nil
	}
	if err := s.Change(ctx.Height, ctx.Params.EraLength); err != nil {
		return fmt.Errorf("era schedule at height %d: %w", ctx.Height, err)
	}
	b := s.Encode()
	ctx.KV.Set(api.KeyEraSchedule, b)
	g := s.Current()
	ctx.Event("era_length_changed", "era", strconv.FormatUint(g.FirstEra, 10), "start", strconv.FormatInt(g.Start, 10),
		"length", strconv.FormatUint(g.Length, 10), "previous", strconv.FormatUint(cur.Length, 10))
	return mq.Emit(ctx, api.ModuleOrigin(Name), api.TopicEraSchedule, b)
}

func initGenesis(kv store.KV, g *module.Genesis) error {
	kv.Set(api.KeyEraSchedule, api.GenesisEras(g.State.Params.EraLength).Encode())
	return nil
}

// Spec returns the module's entry in the chain's module table: it owns
// the "era/" keys (the schedule, api.KeyEraSchedule), writes the genesis
// schedule, may start a segment at the beginning of a block (it must come
// before every module that reads eras in the table), and serves the
// proved query api.QueryEraSchedule.
func Spec() *module.Module {
	return &module.Module{
		Name:         Name,
		KeyPrefixes:  []string{"era/"},
		InitGenesis:  initGenesis,
		BeginBlock:   BeginBlock,
		StateQueries: []string{api.QueryEraSchedule},
	}
}
