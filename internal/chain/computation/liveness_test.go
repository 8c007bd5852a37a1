package computation

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/registry"
	"github.com/phalago/phala/internal/chain/store"
)

// Down's rule: at least two challenges after the latest one answered in
// time closed unanswered; one miss is not enough, nor two with an answer
// between; a late answer is a miss; misses dropped from the outstanding
// list are remembered; an answer in time clears them; never while
// heartbeats are off. Every block challenges the node (heartbeats_per_era
// = era_length), the window is 2 blocks: challenge c closes before block
// c+3.
func TestDown(t *testing.T) {
	node := crypto.PublicKey{7}
	p := api.DefaultParams()
	p.EraLength, p.HeartbeatsPerEra, p.HeartbeatWindow = 100, 100, 2
	off := p
	off.HeartbeatsPerEra = 0
	type check struct {
		height int64
		down   bool
	}
	for _, tc := range []struct {
		name string
		// answer: the challenges answered (each in the block after it).
		answer func(c int64) bool
		to     int64 // blocks run (each challenges the node)
		p      api.Params
		checks []check
	}{
		{name: "answered", answer: func(int64) bool { return true }, to: 20, p: p,
			checks: []check{{10, false}, {21, false}}},
		{name: "one missed", answer: func(c int64) bool { return c != 5 }, to: 20, p: p,
			checks: []check{{10, false}, {21, false}}},
		{name: "two missed with an answer between", answer: func(c int64) bool { return c != 5 && c != 7 }, to: 20, p: p,
			checks: []check{{11, false}, {21, false}}},
		{name: "two missed in a row", answer: func(c int64) bool { return c <= 5 }, to: 9, p: p,
			// 6 closes before 9, 7 before 10.
			checks: []check{{9, false}, {10, true}}},
		{name: "two missed, dropped from the outstanding list", answer: func(c int64) bool { return c <= 5 }, to: 30, p: p,
			checks: []check{{31, true}}},
		{name: "answering again clears", answer: func(c int64) bool { return c <= 5 || c >= 12 }, to: 20, p: p,
			checks: []check{{12, true}, {14, false}, {21, false}}},
		{name: "heartbeats off", answer: func(c int64) bool { return c <= 5 }, to: 20, p: off,
			checks: []check{{21, false}}},
		{name: "two missed, read with heartbeats off", answer: func(c int64) bool { return c <= 5 }, to: 20, p: p,
			checks: []check{{21, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv, err := store.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { kv.Close() })
			registry.SetAttestation(kv, &api.AttestationSettings{Measurements: []api.HexBytes{{1}}})
			rec := &api.WorkerRecord{Info: api.WorkerInfo{IdentityKey: node}, Measurement: []byte{1}, RegisteredAt: 1, ExpiresAt: 1 << 40}
			kv.Set(api.WorkerKey(node), rec.Encode())
			hash := func(h int64) []byte {
				return binary.BigEndian.AppendUint64(make([]byte, api.BlockHashSize-8), uint64(h))
			}
			kv.Set(api.BlockHashKey(1), hash(1))
			beat := func(ctx *block.Context, c int64) {
				hb := &api.Heartbeat{Height: c, Seed: [api.BlockHashSize]byte(hash(c - 1))}
				OnHeartbeat(ctx, &api.Message{Origin: api.KeyOrigin(api.OriginWorker, node), Topic: api.TopicHeartbeat, Payload: hb.Encode()})
			}
			read := tc.p
			if tc.name == "two missed, read with heartbeats off" {
				read = off
			}
			// Each check reads the state before its block.
			checks := slices.Clone(tc.checks)
			for h := int64(2); len(checks) > 0; h++ {
				for len(checks) > 0 && checks[0].height == h {
					if got := Down(kv, node, h, read); got != checks[0].down {
						t.Errorf("Down at %d = %v, want %v (record %+v, outstanding %v)", h, got, checks[0].down, loadLiveness(kv, node), outstanding(kv, node))
					}
					checks = checks[1:]
				}
				if h > tc.to {
					continue
				}
				ctx := &block.Context{KV: kv, Height: h, Params: tc.p}
				if err := BeginBlock(ctx); err != nil {
					t.Fatal(err)
				}
				if tc.p.HeartbeatsPerEra > 0 && !slices.Contains(outstanding(kv, node), h) {
					t.Fatalf("block %d did not challenge the node", h)
				}
				if c := h - 1; c >= 2 && tc.answer(c) {
					beat(ctx, c)
				}
				kv.Set(api.BlockHashKey(h), hash(h))
			}
			if tc.name == "two missed, dropped from the outstanding list" && loadLiveness(kv, node).missed < DownAfter {
				t.Errorf("the misses dropped from the outstanding list were not counted: %+v", loadLiveness(kv, node))
			}
			if Down(kv, crypto.PublicKey{8}, tc.to, tc.p) {
				t.Error("a node never challenged is down")
			}
		})
	}
}

// A late answer removes its challenge from the outstanding list and
// counts as a miss: a node answering every challenge too late is down.
func TestDownLateAnswer(t *testing.T) {
	node := crypto.PublicKey{7}
	p := api.DefaultParams()
	p.HeartbeatWindow = 2
	kv := memKV{}
	setOutstanding(kv, node, []int64{6, 7})
	kv.Set(api.BlockHashKey(5), make([]byte, api.BlockHashSize))
	ctx := &block.Context{KV: kv, Height: 10, Params: p}
	hb := &api.Heartbeat{Height: 6}
	OnHeartbeat(ctx, &api.Message{Origin: api.KeyOrigin(api.OriginWorker, node), Topic: api.TopicHeartbeat, Payload: hb.Encode()})
	if got := outstanding(kv, node); !slices.Equal(got, []int64{7}) || loadLiveness(kv, node).missed != 1 {
		t.Fatalf("after a late answer: outstanding %v, record %+v", got, loadLiveness(kv, node))
	}
	if !Down(kv, node, 10, p) {
		t.Fatal("a node whose two last challenges closed (one answered late) is not down")
	}
	// An answer in time to a later challenge clears it.
	setOutstanding(kv, node, []int64{7, 9})
	kv.Set(api.BlockHashKey(8), make([]byte, api.BlockHashSize))
	OnHeartbeat(ctx, &api.Message{Origin: api.KeyOrigin(api.OriginWorker, node), Topic: api.TopicHeartbeat, Payload: (&api.Heartbeat{Height: 9}).Encode()})
	if Down(kv, node, 12, p) {
		t.Fatalf("down after answering in time: record %+v, outstanding %v", loadLiveness(kv, node), outstanding(kv, node))
	}
}

// memKV is a state for tests that iterate nothing.
type memKV map[string][]byte

func (m memKV) Get(k []byte) []byte { return m[string(k)] }
func (m memKV) Set(k, v []byte)     { m[string(k)] = append([]byte(nil), v...) }
func (m memKV) Delete(k []byte)     { delete(m, string(k)) }
