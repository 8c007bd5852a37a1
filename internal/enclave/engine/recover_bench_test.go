package engine

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"sort"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/enclave/contracts"
)

// BenchmarkRecoverPRuntimeSide1M measures pRuntime's part of recovering a
// contract of 1,000,000 entries (docs/benchmarks.md, "Recovery from the
// on-chain checkpoint"; the node and pherry's part is
// internal/chain/app's BenchmarkRecoverEntries1M): "decode" (the
// POST /recover body, ~85 MB, decoded strictly), "rebuild"
// (contracts.StoreFromEntries with the root check, and the contract
// instance adopting the store), "seal" (the checkpoint that makes the
// recovered contract survive a restart: its part, encrypted and written).
// Entries are 52-byte values, as Store.Set writes small values. Excluded:
// the HTTP transfer on loopback and the replay of commands after the
// checkpoint (measured by the commands/s figures).
func BenchmarkRecoverPRuntimeSide1M(b *testing.B) {
	const n = 1_000_000
	entries := make([]api.StateChange, n)
	for i := range entries {
		rand.Read(entries[i].Location[:])
		entries[i].Value = make([]byte, 52)
		rand.Read(entries[i].Value)
		entries[i].Value[8] = 0 // key epoch 0
	}
	sort.Slice(entries, func(i, j int) bool { return bytes.Compare(entries[i].Location[:], entries[j].Location[:]) < 0 })
	const seq = n + 7
	root := contracts.RootOfEntries(seq, entries)
	body := (&api.RecoverRequest{Entries: entries}).Encode()
	bt := &testing.T{}
	x := newBare(bt, b.TempDir(), false)
	b.Logf("request body: %d bytes", len(body))
	var req *api.RecoverRequest
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			t := time.Now()
			var err error
			if req, err = api.DecodeRecoverRequest(body); err != nil {
				b.Fatal(err)
			}
			b.Logf("%s", time.Since(t).Round(time.Millisecond))
		}
	})
	b.Run("rebuild", func(b *testing.B) {
		for b.Loop() {
			t := time.Now()
			st, err := contracts.StoreFromEntries(x.ck.Storage, seq, req.Entries, root)
			if err != nil {
				b.Fatal(err)
			}
			x.e.mu.Lock()
			x.e.running[x.id].c.Adopt(st, 1)
			x.e.running[x.id].dirty = true
			x.e.mu.Unlock()
			b.Logf("%s", time.Since(t).Round(time.Millisecond))
		}
	})
	b.Run("seal", func(b *testing.B) {
		for b.Loop() {
			x.e.mu.Lock()
			x.e.running[x.id].dirty = true
			t := time.Now()
			err := x.e.checkpoint()
			d := time.Since(t)
			x.e.mu.Unlock()
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("%s", d.Round(time.Millisecond))
		}
	})
}

// BenchmarkReplay measures the replay rate of a recovery (Recover after
// the checkpoint's entries are in): the contract's commands in chain
// order, each opened (CommKey channel, AES-GCM) and executed, the state
// cut at the contract's cadence, as engine.replay runs them. 10,000
// commands of the emitter contract (each stores 64 bytes) in 100 blocks;
// the blocks' app hash checks (one SHA-256 tree per block) are not
// included.
func BenchmarkReplay(b *testing.B) {
	const blocks, perBlock = 100, 100
	x := newBare(&testing.T{}, b.TempDir(), false)
	var bms []api.BlockMessages
	nonce := uint64(0)
	ch, err := channel.New(alice, x.ck.Ecdh.Public(), api.ChannelPurposeCommand)
	if err != nil {
		b.Fatal(err)
	}
	in := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 0), 64)
	for h := int64(1); h <= blocks; h++ {
		bm := api.BlockMessages{Height: h}
		for range perBlock {
			nonce++
			cm := &api.ContractCommandMessage{Contract: x.id, From: alice.Public(), Nonce: nonce, GasLimit: contracts.DefaultGasLimit, Sealed: ch.Seal(api.Pad(in), api.CommandAD(x.id, alice.Public(), nonce))}
			bm.Messages = append(bm.Messages, api.Message{Origin: api.ModuleOrigin("contracts"), Topic: api.TopicContractCommand, Payload: cm.Encode()})
		}
		bms = append(bms, bm)
	}
	x.e.mu.Lock()
	defer x.e.mu.Unlock()
	for h := int64(1); h <= blocks; h++ {
		x.e.st.blockRefs[h] = &blockRef{time: h * 1e9}
	}
	for b.Loop() {
		r := x.e.running[x.id]
		r.lastNonce = map[crypto.PublicKey]uint64{}
		t := time.Now()
		if err := x.e.replay(x.id, r, bms, true, 0, 0, blocks); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t)
		b.ReportMetric(float64(blocks*perBlock)/d.Seconds(), "commands/s")
		x.e.st.egress = nil
	}
}
