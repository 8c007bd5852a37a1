package api

import "testing"

// Review 12 (failing on purpose until fixed): a query answer's plaintext is
// Pad(status byte ‖ output), and a contract's output may be MaxQueryBytes
// (vm.MaxOutputBytes) long; sealed (12-byte nonce, 16-byte tag) that is
// MaxQueryBytes+92 bytes, but the decoders still bound the sealed answer at
// MaxQueryBytes+64 (set before the padding), so the client refuses a
// worker's answer to a maximum-size output as malformed. Session answers
// (tag only) likewise.
func TestReview12PaddedMaxAnswerDecodes(t *testing.T) {
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
