package api

import (
	"bytes"
	"errors"
	"testing"

	"github.com/phalago/phala/crypto"
)

// interopSeeds are valid encodings of the interop messages, and a few
// near misses.
func interopSeeds() [][]byte {
	a := crypto.MustKeyPairFromURI("//Alice").Public()
	b := crypto.MustKeyPairFromURI("//Bob").Public()
	out := [][]byte{
		(&ContractCall{To: a, Gas: 1_000_000, Payload: []byte("hello")}).Encode(),
		(&ContractCall{To: a, Gas: 1, SenderEcdh: b, Nonce: [16]byte{1, 2}, Payload: bytes.Repeat([]byte{9}, 40)}).Encode(),
		(&ContractCall{To: a, Gas: 1 << 40}).Encode(),
		(&Deposit{Contract: a, From: b, Amount: 5 * Unit}).Encode(),
		(&PayoutRequest{ID: 0, To: b, Amount: 1}).Encode(),
		(&PayoutRequest{ID: 1<<63 + 7, To: a, Amount: 1 << 62}).Encode(),
		(&PayoutResult{Contract: a, ID: 3, To: b, Amount: 9, Paid: true, Height: 12}).Encode(),
		(&PayoutResult{Contract: a, ID: 4, To: b, Amount: 9, Reason: "escrow holds 1 PHA", Height: 1 << 33}).Encode(),
		{},
		{0x80},
	}
	return out
}

// FuzzDecodeInterop: whatever decodes as a contract call, a deposit, a
// payout request or a payout result re-encodes to the same bytes (the
// decoders are canonical) and keeps the decoders' promises.
func FuzzDecodeInterop(f *testing.F) {
	for _, b := range interopSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := DecodeContractCall(b); err == nil {
			if !bytes.Equal(c.Encode(), b) {
				t.Fatalf("contract call mismatch %x", b)
			}
			if c.To == (crypto.PublicKey{}) || c.Gas == 0 || len(c.Payload) > MaxCallPayloadBytes {
				t.Fatalf("contract call accepted without receiver, gas or within size: %x", b)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("contract call error %v is not ErrMalformed", err)
		}
		if d, err := DecodeDeposit(b); err == nil {
			if !bytes.Equal(d.Encode(), b) || d.Amount == 0 {
				t.Fatalf("deposit mismatch %x", b)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("deposit error %v is not ErrMalformed", err)
		}
		if p, err := DecodePayoutRequest(b); err == nil {
			if !bytes.Equal(p.Encode(), b) {
				t.Fatalf("payout request mismatch %x", b)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("payout request error %v is not ErrMalformed", err)
		}
		if p, err := DecodePayoutResult(b); err == nil {
			if !bytes.Equal(p.Encode(), b) || p.Paid != (p.Reason == "") || p.Height < 1 {
				t.Fatalf("payout result mismatch %x", b)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("payout result error %v is not ErrMalformed", err)
		}
	})
}

// The decoders refuse what the chain could not act on, each with
// ErrMalformed.
func TestInteropDecodersRefuse(t *testing.T) {
	a := crypto.MustKeyPairFromURI("//Alice").Public()
	call := (&ContractCall{To: a, Gas: 5, Payload: []byte("x")}).Encode()
	res := (&PayoutResult{Contract: a, ID: 1, To: a, Amount: 2, Paid: true, Height: 3}).Encode()
	for name, tc := range map[string]struct {
		b      []byte
		decode func([]byte) error
	}{
		"call without receiver": {(&ContractCall{Gas: 5}).Encode(), decodeErr(DecodeContractCall)},
		"call without gas":      {(&ContractCall{To: a}).Encode(), decodeErr(DecodeContractCall)},
		"call trailing byte":    {append(call, 0), decodeErr(DecodeContractCall)},
		"call truncated":        {call[:len(call)-1], decodeErr(DecodeContractCall)},
		"call over size":        {(&ContractCall{To: a, Gas: 5, Payload: make([]byte, MaxCallPayloadBytes+1)}).Encode(), decodeErr(DecodeContractCall)},
		"deposit of zero":       {(&Deposit{Contract: a, From: a}).Encode(), decodeErr(DecodeDeposit)},
		"request truncated":     {(&PayoutRequest{ID: 1, To: a, Amount: 2}).Encode()[:20], decodeErr(DecodePayoutRequest)},
		"request non-minimal":   {append([]byte{0x81, 0x00}, (&PayoutRequest{To: a, Amount: 2}).Encode()[1:]...), decodeErr(DecodePayoutRequest)},
		"paid with a reason":    {(&PayoutResult{Contract: a, To: a, Paid: true, Reason: "no", Height: 1}).Encode(), decodeErr(DecodePayoutResult)},
		"refused, no reason":    {(&PayoutResult{Contract: a, To: a, Height: 1}).Encode(), decodeErr(DecodePayoutResult)},
		"result at height 0":    {(&PayoutResult{Contract: a, To: a, Paid: true}).Encode(), decodeErr(DecodePayoutResult)},
		"result trailing byte":  {append(res, 1), decodeErr(DecodePayoutResult)},
		"result bad bool":       {append(append(res[:len(res)-3:len(res)-3], 2), res[len(res)-2:]...), decodeErr(DecodePayoutResult)},
	} {
		if err := tc.decode(tc.b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func decodeErr[T any](decode func([]byte) (T, error)) func([]byte) error {
	return func(b []byte) error {
		_, err := decode(b)
		return err
	}
}

// /contract/payout maps contract ‖ id (big-endian) to the result's key,
// and refuses any other length.
func TestQueryContractPayoutKey(t *testing.T) {
	a := crypto.MustKeyPairFromURI("//Alice").Public()
	data := append(a.Bytes(), 0, 0, 0, 0, 0, 0, 1, 2)
	k, err := QueryKey(QueryContractPayout, data)
	if err != nil || !bytes.Equal(k, ContractPayoutKey(a, 0x102)) {
		t.Fatalf("key %x, %v", k, err)
	}
	for _, n := range []int{0, 32, 39, 41} {
		if _, err := QueryKey(QueryContractPayout, make([]byte, n)); !errors.Is(err, ErrInvalidCall) {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
}
