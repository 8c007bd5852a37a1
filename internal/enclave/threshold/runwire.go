package threshold

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"reflect"

	"go.dedis.ch/kyber/v3"
	dkg "go.dedis.ch/kyber/v3/share/dkg/pedersen"
	vss "go.dedis.ch/kyber/v3/share/vss/pedersen"
	"go.dedis.ch/protobuf"
	"golang.org/x/crypto/hkdf"

	"github.com/phalago/phala/api/codec"
)

// The wire forms of a Run's messages and results (docs/keys.md, "As
// built: the DKG run"). Every decoder is strict (bounded, canonical,
// nothing trailing; what it accepts re-encodes to the same bytes).

// Response message kinds (the first byte of what OnDeals returns and
// OnResponse takes). Only kyber's Response remains: the complaint with
// proof of the first version (kind 2, which revealed x·DHKey for a DHKey
// the dealer chose) is gone and refused.
const msgResponse = 1 // kyber's Response (EncodeResponse)

const (
	maxDealBytes = maxCipher + 512
	gcmNonceSize = 12
	scalarSize   = 32
)

// ErrBadShare wraps every refusal of DecodeShare and DecodeResult.
var ErrBadShare = errors.New("invalid DKG share or result")

// AddressedDeal is one deal of a deals message and its recipient's index.
type AddressedDeal struct {
	To   int
	Deal *dkg.Deal
}

// DealsMessage is a dealer's deals message: its public polynomial's
// commitments in clear (Pedersen's broadcast commitments, from which
// every member computes the dealer's kyber session ID, so that a member
// whose deal does not open can still complain in kyber's form) and one
// encrypted deal per other member.
type DealsMessage struct {
	Commits []kyber.Point
	Deals   []AddressedDeal
}

// EncodeDeals returns a deals message: the commitment count (uvarint) and
// the commitments (32 bytes each), then the deal count (uvarint) and per
// deal, in strictly ascending recipient order, the recipient (uvarint)
// and the deal (EncodeDeal, length-prefixed).
func EncodeDeals(m *DealsMessage) []byte {
	w := codec.NewWriter(16 + 32*len(m.Commits) + len(m.Deals)*800)
	w.Uvarint(uint64(len(m.Commits)))
	for _, c := range m.Commits {
		b, err := c.MarshalBinary()
		if err != nil {
			b = make([]byte, pointSize) // not a point: refused by the decoder
		}
		w.Fixed(b)
	}
	w.Uvarint(uint64(len(m.Deals)))
	for _, d := range m.Deals {
		w.Uvarint(uint64(d.To))
		w.BytesField(EncodeDeal(d.Deal))
	}
	return w.Bytes()
}

// DecodeDeals strictly decodes a deals message: 1 to MaxMembers canonical
// commitments, at most MaxMembers deals, recipients below MaxMembers and
// strictly ascending, each deal strict (DecodeDeal). Errors:
// ErrBadDKGMessage.
func DecodeDeals(b []byte) (*DealsMessage, error) {
	r := codec.NewReader(b)
	nc := r.Uvarint()
	if r.Err() == nil && (nc == 0 || nc > MaxMembers || nc > uint64(r.Remaining()/pointSize)) {
		r.Fail(fmt.Errorf("%d commitments", nc))
	}
	var pbs [][pointSize]byte
	for ; r.Err() == nil && nc > 0; nc-- {
		var pb [pointSize]byte
		r.Fixed(pb[:])
		pbs = append(pbs, pb)
	}
	n := r.Uvarint()
	if r.Err() == nil && (n > MaxMembers || n > uint64(r.Remaining()/2)) {
		r.Fail(fmt.Errorf("%d deals", n))
	}
	var raw [][]byte
	var to []int
	for ; r.Err() == nil && n > 0; n-- {
		i := int(index(r))
		if r.Err() == nil && len(to) > 0 && i <= to[len(to)-1] {
			r.Fail(fmt.Errorf("recipient %d after %d", i, to[len(to)-1]))
		}
		to = append(to, i)
		raw = append(raw, r.BytesField(maxDealBytes))
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: deals: %v", ErrBadDKGMessage, err)
	}
	commits, err := decodePoints(pbs)
	if err != nil {
		return nil, fmt.Errorf("%w: deals: %v", ErrBadDKGMessage, err)
	}
	out := &DealsMessage{Commits: commits, Deals: make([]AddressedDeal, len(raw))}
	for k, db := range raw {
		d, err := DecodeDeal(db)
		if err != nil {
			return nil, fmt.Errorf("deal to %d: %w", to[k], err)
		}
		out.Deals[k] = AddressedDeal{To: to[k], Deal: d}
	}
	return out, canonical(b, EncodeDeals(out), "deals")
}

// EncodeResponseMessage returns a response message: the kind byte, then
// kyber's Response (EncodeResponse).
func EncodeResponseMessage(p *dkg.Response) []byte {
	return append([]byte{msgResponse}, EncodeResponse(p)...)
}

// DecodeResponseMessage strictly decodes a response message. Errors:
// ErrBadDKGMessage.
func DecodeResponseMessage(b []byte) (*dkg.Response, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty response message", ErrBadDKGMessage)
	}
	if b[0] != msgResponse {
		return nil, fmt.Errorf("%w: response message kind %d", ErrBadDKGMessage, b[0])
	}
	return DecodeResponse(b[1:])
}

// openDeal opens dealer's encrypted deal to member to with the DH secret
// pre, as kyber's vss.Verifier does (its context hash, HKDF-SHA256 to an
// AES-256-GCM key, the deal in kyber's protobuf form), and checks that it
// holds to's share and no empty field kyber would trip on.
func openDeal(members []kyber.Point, dealer, to int, pre kyber.Point, e *vss.EncryptedDeal) (d *vss.Deal, err error) {
	h := Suite.Hash()
	h.Write([]byte("vss-dealer"))
	members[dealer].MarshalTo(h)
	h.Write([]byte("vss-verifiers"))
	for _, m := range members {
		m.MarshalTo(h)
	}
	ctx := h.Sum(nil)
	preB, err := pre.MarshalBinary()
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(Suite.Hash, preB, nil, ctx), key); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(e.Nonce) != gcm.NonceSize() {
		return nil, errors.New("bad nonce size")
	}
	plain, err := gcm.Open(nil, e.Nonce, e.Cipher, ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			d, err = nil, fmt.Errorf("deal does not decode: %v", p)
		}
	}()
	var point kyber.Point
	var scalar kyber.Scalar
	cons := protobuf.Constructors{
		reflect.TypeOf(&point).Elem():  func() interface{} { return Suite.Point() },
		reflect.TypeOf(&scalar).Elem(): func() interface{} { return Suite.Scalar() },
	}
	d = &vss.Deal{}
	if err := protobuf.DecodeWithConstructors(plain, d, cons); err != nil {
		return nil, err
	}
	if d.SecShare == nil || d.SecShare.V == nil || d.SecShare.I != to {
		return nil, errors.New("the deal is not the recipient's share")
	}
	for _, c := range d.Commitments {
		if c == nil {
			return nil, errors.New("an empty commitment")
		}
	}
	return d, nil
}

// Encode returns the share's canonical bytes (for sealing): index, T, N
// (uvarints), V (32 bytes), then the T commitments (32 bytes each).
func (s *Share) Encode() ([]byte, error) {
	w := codec.NewWriter(8 + 32*(1+len(s.Commits)))
	w.Uvarint(uint64(s.Index))
	w.Uvarint(uint64(s.T))
	w.Uvarint(uint64(s.N))
	b, err := s.V.MarshalBinary()
	if err != nil {
		return nil, err
	}
	w.Fixed(b)
	for _, c := range s.Commits {
		if b, err = c.MarshalBinary(); err != nil {
			return nil, err
		}
		w.Fixed(b)
	}
	return w.Bytes(), nil
}

// DecodeShare strictly decodes a share: 0 <= index < N <= MaxMembers, 2 <=
// T <= N, exactly T commitments, canonical scalar and points, and V·G is
// the member's commitment. Errors: ErrBadShare.
func DecodeShare(b []byte) (*Share, error) {
	r := codec.NewReader(b)
	s := &Share{Index: int(index(r)), T: int(index(r)), N: int(r.Uvarint())}
	if r.Err() == nil && (s.N > MaxMembers || s.Index >= s.N || s.T < 2 || s.T > s.N || s.T > r.Remaining()/pointSize) {
		r.Fail(fmt.Errorf("index %d, threshold %d of %d", s.Index, s.T, s.N))
	}
	var vb [scalarSize]byte
	r.Fixed(vb[:])
	var pbs [][pointSize]byte
	for i := 0; r.Err() == nil && i < s.T; i++ {
		var pb [pointSize]byte
		r.Fixed(pb[:])
		pbs = append(pbs, pb)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: share: %v", ErrBadShare, err)
	}
	s.V = Suite.Scalar()
	if err := s.V.UnmarshalBinary(vb[:]); err != nil {
		return nil, fmt.Errorf("%w: share: %v", ErrBadShare, err)
	}
	commits, err := decodePoints(pbs)
	if err != nil {
		return nil, err
	}
	s.Commits = commits
	if again, err := s.Encode(); err != nil || !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%w: share not in canonical form", ErrBadShare)
	}
	if !s.Commitment(s.Index).Equal(Suite.Point().Mul(s.V, nil)) {
		return nil, fmt.Errorf("%w: the share does not match its commitments", ErrBadShare)
	}
	return s, nil
}

// EncodeResult returns the canonical bytes of a DKG's result as members
// post it and the chain compares them: the QUAL count and indices
// (uvarints, strictly ascending), then the commitment count (uvarint) and
// the commitments (32 bytes each; the first is the MasterKey's public
// key).
func EncodeResult(qual []int, commits []kyber.Point) ([]byte, error) {
	w := codec.NewWriter(8 + 2*len(qual) + 32*len(commits))
	w.Uvarint(uint64(len(qual)))
	for _, q := range qual {
		w.Uvarint(uint64(q))
	}
	w.Uvarint(uint64(len(commits)))
	for _, c := range commits {
		b, err := c.MarshalBinary()
		if err != nil {
			return nil, err
		}
		w.Fixed(b)
	}
	return w.Bytes(), nil
}

// DecodeResult strictly decodes a result: at most MaxMembers QUAL indices
// below MaxMembers, strictly ascending; 1 to MaxMembers commitments in
// canonical form. Errors: ErrBadShare.
func DecodeResult(b []byte) ([]int, []kyber.Point, error) {
	r := codec.NewReader(b)
	nq := r.Uvarint()
	if r.Err() == nil && (nq > MaxMembers || nq > uint64(r.Remaining())) {
		r.Fail(fmt.Errorf("%d qualified members", nq))
	}
	var qual []int
	for ; r.Err() == nil && nq > 0; nq-- {
		q := int(index(r))
		if r.Err() == nil && len(qual) > 0 && q <= qual[len(qual)-1] {
			r.Fail(fmt.Errorf("member %d after %d", q, qual[len(qual)-1]))
		}
		qual = append(qual, q)
	}
	nc := r.Uvarint()
	if r.Err() == nil && (nc == 0 || nc > MaxMembers || nc > uint64(r.Remaining()/pointSize)) {
		r.Fail(fmt.Errorf("%d commitments", nc))
	}
	var pbs [][pointSize]byte
	for ; r.Err() == nil && nc > 0; nc-- {
		var pb [pointSize]byte
		r.Fixed(pb[:])
		pbs = append(pbs, pb)
	}
	if err := r.Done(); err != nil {
		return nil, nil, fmt.Errorf("%w: result: %v", ErrBadShare, err)
	}
	commits, err := decodePoints(pbs)
	if err != nil {
		return nil, nil, err
	}
	if again, err := EncodeResult(qual, commits); err != nil || !bytes.Equal(again, b) {
		return nil, nil, fmt.Errorf("%w: result not in canonical form", ErrBadShare)
	}
	return qual, commits, nil
}

func decodePoints(pbs [][pointSize]byte) ([]kyber.Point, error) {
	out := make([]kyber.Point, len(pbs))
	for i, pb := range pbs {
		out[i] = Suite.Point()
		if err := out[i].UnmarshalBinary(pb[:]); err != nil {
			return nil, fmt.Errorf("%w: commitment %d: %v", ErrBadShare, i, err)
		}
	}
	return out, nil
}
