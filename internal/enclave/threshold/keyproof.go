package threshold

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.dedis.ch/kyber/v3/group/edwards25519"
	"go.dedis.ch/kyber/v3/sign/schnorr"
)

// The proof of possession of a member's DKG key (docs/keys.md, "As
// built: the DKG run"). Without it a member could post, as its own,
// the key another member posted: kyber refuses a member list with a
// repeated key, so nobody could deal and every member would be slashed.
// With it a member can only post a key whose secret it holds, bound to
// its identity and the attempt.

// DKGKeyProofSize is the size of a proof (kyber's Schnorr signature on
// edwards25519: R ‖ s); DKGKeyBodySize is a DkgKey body's (the key, then
// its proof).
const (
	DKGKeyProofSize = 64
	DKGKeyBodySize  = pointSize + DKGKeyProofSize
)

// ErrBadKeyProof is VerifyDKGKeyProof's refusal.
var ErrBadKeyProof = errors.New("invalid proof of possession of a DKG key")

var dkgKeyProofDomain = []byte("phala/dkg-key-proof v1")

// keyProofMessage is what the proof signs: "phala/dkg-key-proof v1" ‖
// era ‖ attempt (big-endian uint64s) ‖ the member's identity key. The
// era and attempt are the DKG's numbers, the same on every chain.
func keyProofMessage(era, attempt uint64, member []byte) []byte {
	b := append([]byte{}, dkgKeyProofDomain...)
	b = binary.BigEndian.AppendUint64(b, era)
	b = binary.BigEndian.AppendUint64(b, attempt)
	return append(b, member...)
}

// DKGKeyProof returns the proof that the member whose identity key is
// member holds the DKG secret of seed (DKGKey) for attempt of era's DKG:
// kyber's Schnorr signature (sign/schnorr, edwards25519) with that secret
// over keyProofMessage, its nonce derived from the seed and the message
// (deterministic). DKGKeyProofSize bytes.
func DKGKeyProof(seed [32]byte, era, attempt uint64, member []byte) []byte {
	x, _ := DKGKey(seed)
	msg := keyProofMessage(era, attempt, member)
	rs := &opStream{seed: seed}
	rs.rekey("key-proof", 0, msg)
	sig, err := schnorr.Sign(edwards25519.NewBlakeSHA256Ed25519WithRand(rs), x, msg)
	if err != nil {
		panic(fmt.Sprintf("threshold: Schnorr signature: %v", err)) // kyber fails only on a bad suite
	}
	return sig
}

// DKGKeyBody returns the DkgKey message's body: the seed's DKG public key
// (32 bytes) then DKGKeyProof.
func DKGKeyBody(seed [32]byte, era, attempt uint64, member []byte) []byte {
	_, pub := DKGKey(seed)
	b, _ := pub.MarshalBinary()
	return append(b, DKGKeyProof(seed, era, attempt, member)...)
}

// VerifyDKGKeyProof checks proof for the DKG public key pub (32 bytes,
// canonical) posted by member for attempt of era. Errors: ErrBadKeyProof.
func VerifyDKGKeyProof(pub, proof []byte, era, attempt uint64, member []byte) error {
	if len(pub) != pointSize || len(proof) != DKGKeyProofSize {
		return fmt.Errorf("%w: %d-byte key, %d-byte proof", ErrBadKeyProof, len(pub), len(proof))
	}
	p := Suite.Point()
	if err := p.UnmarshalBinary(pub); err != nil {
		return fmt.Errorf("%w: %v", ErrBadKeyProof, err)
	}
	if err := schnorr.Verify(Suite, p, keyProofMessage(era, attempt, member), proof); err != nil {
		return fmt.Errorf("%w: %v", ErrBadKeyProof, err)
	}
	return nil
}
