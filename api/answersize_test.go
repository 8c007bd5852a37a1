package api

import "testing"

// A query answer's plaintext is Pad(status byte ‖ output), and a
// contract's output may be MaxQueryBytes (vm.MaxOutputBytes) long; sealed
// (12-byte nonce, 16-byte tag) that is up to MaxQueryBytes+93 bytes, which
// the decoders must accept (MaxSealedAnswerBytes); session answers (tag
// only) likewise.
func TestPaddedMaxAnswerDecodes(t *testing.T) {
	for _, n := range []int{MaxQueryBytes - 1, MaxQueryBytes} {
		pt := Pad(make([]byte, 1+n))
		resp := &ContractQueryResponse{Height: 1, Ciphertext: make([]byte, 12+16+len(pt))}
		if _, err := DecodeContractQueryResponse(resp.Encode()); err != nil {
			t.Errorf("one-shot answer to a %d-byte output (sealed %d bytes): %v", n, len(resp.Ciphertext), err)
		}
		a := &SessionAnswer{Seq: 1, Height: 1, Ciphertext: make([]byte, 16+len(pt))}
		if _, err := DecodeSessionAnswer(a.Encode()); err != nil {
			t.Errorf("session answer to a %d-byte output (sealed %d bytes): %v", n, len(a.Ciphertext), err)
		}
	}
}
