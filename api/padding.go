package api

import "fmt"

// PadBlock is the block size, in bytes, that a worker pads the plaintext
// of what it seals to a client (query answers, receipt bodies) to, so a
// host or relayer that sees the ciphertext learns the answer's length
// only to within PadBlock bytes (e.g. not the number of digits of a
// balance).
const PadBlock = 64

// MaxSealedAnswerBytes bounds a sealed query answer (one-shot or in a
// session): a status byte and an output of up to MaxQueryBytes, padded
// (at most PadBlock more), with the AEAD's nonce and tag.
const MaxSealedAnswerBytes = MaxQueryBytes + 1 + PadBlock + 12 + 16

// Pad returns b followed by ISO/IEC 7816-4 padding: one 0x80 byte, then
// zero bytes up to the next multiple of PadBlock (1 to PadBlock bytes
// are always added). It appends to b's backing array when it has room.
func Pad(b []byte) []byte {
	n := PadBlock - len(b)%PadBlock
	b = append(b, 0x80)
	for range n - 1 {
		b = append(b, 0)
	}
	return b
}

// Unpad strips Pad's padding and returns b without it (a sub-slice of b).
// It is strict, so a padded plaintext has one encoding: the length must
// be a positive multiple of PadBlock, and the last block must end in
// 0x80 followed only by zeros. Errors: ErrMalformed.
func Unpad(b []byte) ([]byte, error) {
	if len(b) == 0 || len(b)%PadBlock != 0 {
		return nil, fmt.Errorf("%w: padded plaintext of %d bytes, not a positive multiple of %d", ErrMalformed, len(b), PadBlock)
	}
	for i := len(b) - 1; i >= len(b)-PadBlock; i-- {
		switch b[i] {
		case 0:
			continue
		case 0x80:
			return b[:i], nil
		}
		break
	}
	return nil, fmt.Errorf("%w: bad padding", ErrMalformed)
}
