package api

import (
	"bytes"
	"errors"
	"testing"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

func recoverRequestSample() *RecoverRequest {
	return &RecoverRequest{
		Contract: crypto.MustKeyPairFromURI("//Alice").Public(),
		Entries:  []StateChange{{Location: [32]byte{1}, Value: make([]byte, 24)}, {Location: [32]byte{2}, Value: make([]byte, 8)}},
		Blocks: []BlockMessages{{Height: 9, StateRoot: bytes.Repeat([]byte{1}, 32), Messages: []Message{
			{Origin: ModuleOrigin("contracts"), Topic: TopicContractCommand, Seq: 1, Payload: []byte("x")}}}},
	}
}

// The control API's POST /recover body (from the operator's relayer, so
// not trusted to be well-formed): a request that decodes is canonical, and
// what the decoder's rules refuse is refused.
func FuzzDecodeRecoverRequest(f *testing.F) {
	f.Add(recoverRequestSample().Encode())
	f.Add((&RecoverRequest{}).Encode())
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeRecoverRequest(b)
		if err != nil {
			return
		}
		if !bytes.Equal(q.Encode(), b) {
			t.Fatalf("decode/encode mismatch: %x", b)
		}
		for i := range q.Entries {
			if len(q.Entries[i].Value) < 8 || i > 0 && bytes.Compare(q.Entries[i-1].Location[:], q.Entries[i].Location[:]) >= 0 {
				t.Fatalf("entry %d accepted against the rules: %x", i, b)
			}
		}
	})
}

// Each rule of DecodeRecoverRequest refuses its case.
func TestDecodeRecoverRequestRefuses(t *testing.T) {
	for name, tc := range map[string]func(q *RecoverRequest){
		"short value":        func(q *RecoverRequest) { q.Entries[1].Value = make([]byte, 7) },
		"locations reversed": func(q *RecoverRequest) { q.Entries[0], q.Entries[1] = q.Entries[1], q.Entries[0] },
		"location repeated":  func(q *RecoverRequest) { q.Entries[1].Location = q.Entries[0].Location },
	} {
		q := recoverRequestSample()
		tc(q)
		if _, err := DecodeRecoverRequest(q.Encode()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	b := recoverRequestSample().Encode()
	if _, err := DecodeRecoverRequest(append([]byte{RecoverArbitration + 1}, b[1:]...)); !errors.Is(err, ErrMalformed) {
		t.Errorf("unknown purpose: %v", err)
	}
	if _, err := DecodeRecoverRequest(append(b, 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("trailing byte: %v", err)
	}
	if _, err := DecodeRecoverRequest(b[:len(b)-1]); err == nil {
		t.Error("truncated: accepted")
	}
	if _, err := DecodeRecoverRequest(make([]byte, MaxRecoverBytes+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the limit: %v", err)
	}
	w := codec.NewWriter(64)
	w.Fixed(make([]byte, 32))
	w.Uvarint(0)
	w.Uvarint(MaxRecoverBlocks + 1)
	if _, err := DecodeRecoverRequest(w.Bytes()); err == nil {
		t.Error("more blocks than MaxRecoverBlocks: accepted")
	}
}
