package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/enclave/vm"
)

// Every command gets a receipt (executed, refused, or not opening), sealed
// to its sender only, signed by the contract, and kept across a restart.
func TestReceipts(t *testing.T) {
	dir := t.TempDir()
	b := newBare(t, dir, false)
	ok := b.nextCommand(t, 2, 1, 10)
	failed := b.nextCommand(t, 3, vm.MaxEmitsPerCall+1, 10)
	rejected := b.rawCommand(t, 4, []byte("not sealed to the contract"))
	// Sealed to the contract but not padded (api.Pad): refused as well,
	// so a client cannot leak its input's exact length by mistake.
	unpadded := func() uint64 {
		n, _ := nonces.Load(b.e)
		next := *n.(*uint64) + 1
		ch, err := channel.New(alice, b.ck.Ecdh.Public(), api.ChannelPurposeCommand)
		if err != nil {
			t.Fatal(err)
		}
		in := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 1), 10)
		return b.rawCommand(t, 5, ch.Seal(in, api.CommandAD(b.id, alice.Public(), next)))
	}()
	rec := &api.ContractRecord{Identity: b.id, Ecdh: b.ck.Ecdh.Public()}

	check := func(b *bare) {
		t.Helper()
		for _, c := range []struct {
			nonce  uint64
			height int64
			status api.ReceiptStatus
			output string
		}{
			{ok, 2, api.ReceiptOK, ""},
			{failed, 3, api.ReceiptFailed, vm.ErrEmitLimit.Error()},
			{rejected, 4, api.ReceiptRejected, "does not open"},
			{unpadded, 5, api.ReceiptRejected, "not padded"},
		} {
			rc, err := b.e.Receipt(context.Background(), b.id, alice.Public(), c.nonce)
			if err != nil {
				t.Fatalf("nonce %d: %v", c.nonce, err)
			}
			r, err := client.OpenReceipt(alice, rec, rc)
			if err != nil {
				t.Fatalf("nonce %d: %v", c.nonce, err)
			}
			if r.Status != c.status || r.Height != c.height || !bytes.Contains(r.Output, []byte(c.output)) {
				t.Fatalf("nonce %d: receipt %v at %d %q, want %v at %d containing %q", c.nonce, r.Status, r.Height, r.Output, c.status, c.height, c.output)
			}
			if c.status != api.ReceiptRejected && r.GasUsed == 0 {
				t.Fatalf("nonce %d: no gas used", c.nonce)
			}
			// Only the sender opens it: another key is refused, and
			// forcing the channel open with it fails.
			if _, err := client.OpenReceipt(bob, rec, rc); !errors.Is(err, client.ErrNotYourReceipt) {
				t.Fatalf("bob opened alice's receipt: %v", err)
			}
			ch, err := channel.New(bob, rec.Ecdh, api.ChannelPurposeReceipt)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ch.Open(rc.Sealed, rc.Header()); err == nil {
				t.Fatal("bob's CommKey opens alice's receipt")
			}
			// Another command's receipt under this header is refused.
			forged := *rc
			forged.Nonce++
			if _, err := client.OpenReceipt(alice, rec, &forged); !errors.Is(err, api.ErrBadSignature) {
				t.Fatalf("receipt with another nonce: %v", err)
			}
		}
		var none *NoReceiptError
		if _, err := b.e.Receipt(context.Background(), b.id, alice.Public(), unpadded+1); !errors.As(err, &none) || !errors.Is(err, ErrNoReceipt) {
			t.Fatalf("receipt of a command never sent: %v", err)
		}
		if _, err := b.e.Receipt(context.Background(), alice.Public(), alice.Public(), ok); !errors.Is(err, ErrBadInput) {
			t.Fatalf("receipt of an unknown contract: %v", err)
		}
	}
	check(b)
	if err := b.e.Close(); err != nil {
		t.Fatal(err)
	}
	restarted := newBare(t, dir, false)
	check(restarted)
}

// nextCommand runs an emitter command and returns its nonce.
func (b *bare) nextCommand(t *testing.T, height int64, count, size uint32) uint64 {
	t.Helper()
	b.command(t, height, count, size)
	n, _ := nonces.Load(b.e)
	return *n.(*uint64)
}

// rawCommand delivers a command whose sealed input is sealed bytes.
func (b *bare) rawCommand(t *testing.T, height int64, sealed []byte) uint64 {
	t.Helper()
	n, _ := nonces.LoadOrStore(b.e, new(uint64))
	*n.(*uint64)++
	nonce := *n.(*uint64)
	cm := &api.ContractCommandMessage{Contract: b.id, From: alice.Public(), Nonce: nonce, GasLimit: testGas, Sealed: sealed}
	m := &api.Message{Origin: api.ModuleOrigin("contracts"), Topic: api.TopicContractCommand, Payload: cm.Encode()}
	b.e.mu.Lock()
	defer b.e.mu.Unlock()
	if err := b.e.onCommand(&Context{e: b.e, Height: height, Time: time.Unix(height, 0)}, m); err != nil {
		t.Fatal(err)
	}
	return nonce
}

// The receipt log keeps the latest MaxReceipts receipts and at most
// MaxReceiptBytes of outputs, the first receipt of a nonce, and round
// trips through its strict encoding.
func TestReceiptLogRetention(t *testing.T) {
	l := newReceiptLog()
	from := alice.Public()
	for i := range uint64(MaxReceipts + 10) {
		l.add(receiptEntry{key: receiptKey{from, i}, height: int64(i / 100), body: api.ReceiptBody{Output: []byte{byte(i)}}})
	}
	if len(l.entries) != MaxReceipts {
		t.Fatalf("%d receipts kept", len(l.entries))
	}
	if _, ok := l.get(receiptKey{from, 9}); ok {
		t.Fatal("the oldest receipt was kept")
	}
	if e, ok := l.get(receiptKey{from, 10}); !ok || e.body.Output[0] != 10 {
		t.Fatal("the oldest kept receipt is wrong")
	}
	l.add(receiptEntry{key: receiptKey{from, MaxReceipts + 9}, height: 1 << 40, body: api.ReceiptBody{Status: api.ReceiptFailed}})
	if e, _ := l.get(receiptKey{from, MaxReceipts + 9}); e.body.Status != api.ReceiptOK {
		t.Fatal("a second receipt of a nonce replaced the first")
	}
	w := codec.NewWriter(0)
	l.encode(w)
	r := codec.NewReader(w.Bytes())
	got := decodeReceiptLog(r)
	if err := r.Done(); err != nil || len(got.entries) != len(l.entries) || got.bytes != l.bytes {
		t.Fatalf("round trip: %v, %d entries", err, len(got.entries))
	}

	big := newReceiptLog()
	out := make([]byte, api.MaxReceiptOutputBytes)
	for i := range uint64(20) {
		big.add(receiptEntry{key: receiptKey{from, i}, body: api.ReceiptBody{Output: out}})
	}
	if big.bytes > MaxReceiptBytes || len(big.entries) != MaxReceiptBytes/api.MaxReceiptOutputBytes {
		t.Fatalf("%d receipts of %d bytes kept", len(big.entries), big.bytes)
	}
}

// FuzzDecodeReceiptLog: a contract part's receipts (sealed, but read back
// from disk) decode strictly: what decodes re-encodes to the same bytes,
// within the retention bounds.
func FuzzDecodeReceiptLog(f *testing.F) {
	l := newReceiptLog()
	k := crypto.MustKeyPairFromURI("//K").Public()
	l.add(receiptEntry{key: receiptKey{k, 1}, height: 3, body: api.ReceiptBody{Status: api.ReceiptFailed, GasUsed: 9, Output: []byte("no")}})
	l.add(receiptEntry{key: receiptKey{k, 2}, height: 4})
	w := codec.NewWriter(0)
	l.encode(w)
	f.Add(w.Bytes())
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := codec.NewReader(b)
		got := decodeReceiptLog(r)
		if r.Done() != nil {
			return
		}
		w := codec.NewWriter(0)
		got.encode(w)
		if !bytes.Equal(w.Bytes(), b) {
			t.Fatalf("receipt log mismatch %x", b)
		}
		if len(got.entries) > MaxReceipts || (got.bytes > MaxReceiptBytes && len(got.entries) > 1) {
			t.Fatal("bounds exceeded")
		}
	})
}
