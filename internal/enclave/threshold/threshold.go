// Package threshold owns the threshold pieces of the key lifecycle
// (docs/keys.md, issue 12): the MasterKey of an era exists only as shares
// held by its gatekeepers (made by a Pedersen DKG, go.dedis.ch/kyber/v3's
// share/dkg/pedersen); a contract key is a threshold DH-PRF of it. Each
// gatekeeper evaluates its share on a point hashed from the contract and
// key epoch (Evaluate) with a DLEQ proof that the evaluation uses the
// share it committed to; a worker checks each partial against that
// member's public commitment (Verify) and combines any t of them by
// Lagrange interpolation in the exponent (Combine) into the contract seed
// (ContractSeed), without the MasterKey ever existing in one place.
//
// It also owns one member's side of an era's DKG (Run, run.go): a
// deterministic, replayable state machine over kyber's DistKeyGenerator,
// with the wire forms of its messages, share and result (runwire.go).
//
// Group: edwards25519 (kyber's Ed25519 suite). Everything here is pure;
// the messages that carry shares and partials, and their sealing, belong
// to the engine.
package threshold

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/group/edwards25519"
	"go.dedis.ch/kyber/v3/proof/dleq"
	"go.dedis.ch/kyber/v3/share"
)

// Suite is the group and hashes every threshold piece uses.
var Suite = edwards25519.NewBlakeSHA256Ed25519()

// Errors callers branch on.
var (
	ErrBadPartial = errors.New("invalid partial evaluation")
	ErrTooFew     = errors.New("fewer valid partial evaluations than the threshold")
)

// ContractPoint is H(upload, epoch, era): the point a contract key is
// evaluated on, hashed to the group (unknown discrete log) from the
// upload id, the contract's key epoch and the era whose MasterKey
// derives it.
func ContractPoint(upload [32]byte, epoch, era uint64) kyber.Point {
	seed := append([]byte("phala/contract-key v2"), upload[:]...)
	seed = binary.BigEndian.AppendUint64(seed, epoch)
	seed = binary.BigEndian.AppendUint64(seed, era)
	return Suite.Point().Pick(Suite.XOF(seed))
}

// Partial is member Index's evaluation x_i·H of its share on a contract
// point, with a DLEQ proof that log_G(X_i) = log_H(x_i·H).
type Partial struct {
	Index int // the member's share index (0-based, as kyber's)
	V     kyber.Point
	Proof *dleq.Proof
}

// Evaluate computes member s's partial on h.
func Evaluate(s *share.PriShare, h kyber.Point) (*Partial, error) {
	proof, _, xH, err := dleq.NewDLEQProof(Suite, Suite.Point().Base(), h, s.V)
	if err != nil {
		return nil, err
	}
	return &Partial{Index: s.I, V: xH, Proof: proof}, nil
}

// Verify checks p on h against the member's public commitment xi (X_i =
// x_i·G, from the DKG's public polynomial: MemberCommitment). Kyber's
// dleq.Proof.Verify checks the two equations with the proof's own
// challenge; here the challenge is also recomputed from the transcript
// (Fiat-Shamir, as NewDLEQProof made it), without which a proof could be
// made for any value. Errors: ErrBadPartial.
func Verify(xi, h kyber.Point, p *Partial) error {
	if p == nil || p.V == nil || p.Proof == nil || p.Proof.C == nil || p.Proof.R == nil || p.Proof.VG == nil || p.Proof.VH == nil {
		return fmt.Errorf("%w: incomplete", ErrBadPartial)
	}
	if err := verifyDLEQ(Suite.Point().Base(), h, xi, p.V, p.Proof); err != nil {
		return fmt.Errorf("%w: member %d: %v", ErrBadPartial, p.Index, err)
	}
	return nil
}

// MemberCommitment is X_i for member index i of the DKG whose public
// polynomial commitments are commits (kyber's DistKeyShare.Commitments;
// commits[0] is the master public key).
func MemberCommitment(commits []kyber.Point, i int) kyber.Point {
	return share.NewPubPoly(Suite, Suite.Point().Base(), commits).Eval(i).V
}

// Combine interpolates x·H from t verified partials of distinct members
// of an n-member set (more are fine: any t of them give the same point).
// Errors: ErrTooFew.
func Combine(ps []*Partial, t, n int) (kyber.Point, error) {
	shares := make([]*share.PubShare, 0, len(ps))
	seen := map[int]bool{}
	for _, p := range ps {
		if p.Index < 0 || p.Index >= n || seen[p.Index] {
			continue
		}
		seen[p.Index] = true
		shares = append(shares, &share.PubShare{I: p.Index, V: p.V})
	}
	if len(shares) < t {
		return nil, fmt.Errorf("%w: %d of %d", ErrTooFew, len(shares), t)
	}
	xh, err := share.RecoverCommit(Suite, shares, t, n)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTooFew, err)
	}
	return xh, nil
}

// ContractSeed is the contract's key seed of epoch epoch from x·H:
// SHA-256("phala/contract-seed v2" ‖ x·H ‖ upload ‖ epoch).
func ContractSeed(xh kyber.Point, upload [32]byte, epoch uint64) ([32]byte, error) {
	b, err := xh.MarshalBinary()
	if err != nil {
		return [32]byte{}, err
	}
	h := sha256.New()
	h.Write([]byte("phala/contract-seed v2"))
	h.Write(b)
	h.Write(upload[:])
	h.Write(binary.BigEndian.AppendUint64(nil, epoch))
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out, nil
}

// PartialSize is the size of an encoded Partial.
const PartialSize = 4 + 5*32

// MaxMembers bounds a member index (a gatekeeper set is far smaller).
const MaxMembers = 1 << 16

// Encode returns the canonical bytes: the index (4 bytes, big-endian),
// then x_i·H, the challenge, the response, and the two commitments (32
// bytes each).
func (p *Partial) Encode() ([]byte, error) {
	out := binary.BigEndian.AppendUint32(make([]byte, 0, PartialSize), uint32(p.Index))
	for _, m := range []interface{ MarshalBinary() ([]byte, error) }{p.V, p.Proof.C, p.Proof.R, p.Proof.VG, p.Proof.VH} {
		b, err := m.MarshalBinary()
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}

// DecodePartial strictly decodes a Partial: exactly PartialSize bytes, an
// index below MaxMembers, points and scalars in their canonical encoding
// (what re-encodes to the same bytes). It does not verify the proof
// (Verify does). Errors: ErrBadPartial.
func DecodePartial(b []byte) (*Partial, error) {
	if len(b) != PartialSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrBadPartial, len(b), PartialSize)
	}
	idx := binary.BigEndian.Uint32(b)
	if idx >= MaxMembers {
		return nil, fmt.Errorf("%w: member index %d", ErrBadPartial, idx)
	}
	p := &Partial{Index: int(idx), V: Suite.Point(), Proof: &dleq.Proof{C: Suite.Scalar(), R: Suite.Scalar(), VG: Suite.Point(), VH: Suite.Point()}}
	for i, m := range []interface{ UnmarshalBinary([]byte) error }{p.V, p.Proof.C, p.Proof.R, p.Proof.VG, p.Proof.VH} {
		if err := m.UnmarshalBinary(b[4+32*i : 4+32*(i+1)]); err != nil {
			return nil, fmt.Errorf("%w: field %d: %v", ErrBadPartial, i, err)
		}
	}
	if again, err := p.Encode(); err != nil || string(again) != string(b) {
		return nil, fmt.Errorf("%w: not canonical", ErrBadPartial)
	}
	return p, nil
}
