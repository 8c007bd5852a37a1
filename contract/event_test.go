package contract

import (
	"bytes"
	"testing"
)

// FuzzHandleEvent: HandleEvent never panics on any input; an input it
// hands to a handler is exactly the encoding of what the handler got
// (EncodeDeposit, EncodePayoutResult), so the decoding is canonical; any
// other input is an error.
func FuzzHandleEvent(f *testing.F) {
	f.Add(EncodeDeposit(Address{1, 2}, 40))
	f.Add(EncodePayoutResult(Payout{ID: 7, To: Address{3}, Amount: 250, Paid: true}))
	f.Add(EncodePayoutResult(Payout{ID: 1 << 63, To: Address{3}, Amount: 1, Reason: "escrow balance too low"}))
	f.Add([]byte{})
	f.Add([]byte{EventDeposit})
	f.Add([]byte{3, 1, 2})
	f.Add(append(EncodePayoutResult(Payout{ID: 1}), 2))
	f.Fuzz(func(t *testing.T, in []byte) {
		var got []byte
		h := Handlers{
			Deposit: func(_ *Context, from Address, amount uint64) error {
				got = EncodeDeposit(from, amount)
				return nil
			},
			PayoutResult: func(_ *Context, p Payout) error {
				got = EncodePayoutResult(p)
				return nil
			},
		}
		_, err := HandleEvent(h, NewContext(nil), in)
		if err == nil && !bytes.Equal(got, in) {
			t.Fatalf("input %x handed over as %x", in, got)
		}
		if err != nil && got != nil {
			t.Fatalf("input %x: a handler ran and the event failed: %v", in, err)
		}
	})
}

// Without a Deposit handler a deposit fails (pRuntime refunds it); without
// a PayoutResult handler a result is ignored.
func TestHandleEventWithoutHandlers(t *testing.T) {
	if _, err := HandleEvent(Handlers{}, NewContext(nil), EncodeDeposit(Address{1}, 5)); err == nil {
		t.Fatal("a deposit taken by a contract without a Deposit handler")
	}
	if _, err := HandleEvent(Handlers{}, NewContext(nil), EncodePayoutResult(Payout{ID: 1})); err != nil {
		t.Fatalf("payout result without a handler: %v", err)
	}
}
