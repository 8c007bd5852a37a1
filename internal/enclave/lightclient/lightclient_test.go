package lightclient

import (
	"testing"

	cmttypes "github.com/cometbft/cometbft/types"
)

// FuzzDecodeHeader: untrusted protobuf never panics the decoder.
func FuzzDecodeHeader(f *testing.F) {
	vals, _ := cmttypes.RandValidatorSet(2, 10)
	vp, _ := vals.ToProto()
	vb, _ := vp.Marshal()
	f.Add([]byte{}, vb)
	f.Add([]byte{0x0a, 0x02, 0x08, 0x01}, vb)
	f.Fuzz(func(t *testing.T, shb, vb []byte) {
		sh, v, err := DecodeHeader(shb, vb)
		if err == nil && (sh == nil || v == nil) {
			t.Fatal("nil result without error")
		}
	})
}

func TestVerifyRefusesIncomplete(t *testing.T) {
	vals, _ := cmttypes.RandValidatorSet(1, 10)
	c := New(&Genesis{ChainID: "c", InitialHeight: 1, Validators: vals}, nil)
	if err := c.Verify(nil, vals); err == nil {
		t.Fatal("nil header accepted")
	}
	if err := c.Verify(&cmttypes.SignedHeader{Header: &cmttypes.Header{Height: 1}}, vals); err == nil {
		t.Fatal("header without commit accepted")
	}
	if c.Height() != 0 {
		t.Fatal("height moved")
	}
}
