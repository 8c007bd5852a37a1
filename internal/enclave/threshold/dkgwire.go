package threshold

import (
	"bytes"
	"errors"
	"fmt"

	"go.dedis.ch/kyber/v3/share"
	dkg "go.dedis.ch/kyber/v3/share/dkg/pedersen"
	vss "go.dedis.ch/kyber/v3/share/vss/pedersen"

	"github.com/phalago/phala/api/codec"
)

// The wire forms of the DKG's messages (kyber's share/dkg/pedersen Deal,
// Response, Justification), as they travel through the chain's queue
// (docs/keys.md, "Rotation per era"). Every decoder is strict: bounded
// fields, points and scalars in canonical form, nothing trailing, and
// what it accepts re-encodes to the same bytes. Signatures and the deals'
// encryption are kyber's (checked by its DistKeyGenerator).

// Bounds of DKG messages.
const (
	maxSessionID = 64
	maxSignature = 128
	maxNonce     = 64
	maxCipher    = 1 << 20
	pointSize    = 32
)

// ErrBadDKGMessage wraps every refusal of a DKG message's decoders.
var ErrBadDKGMessage = errors.New("invalid DKG message")

// EncodeDeal returns the canonical bytes of a deal.
func EncodeDeal(d *dkg.Deal) []byte {
	w := codec.NewWriter(160 + len(d.Deal.Cipher))
	w.Uvarint(uint64(d.Index))
	w.BytesField(d.Deal.DHKey)
	w.BytesField(d.Deal.Signature)
	w.BytesField(d.Deal.Nonce)
	w.BytesField(d.Deal.Cipher)
	w.BytesField(d.Signature)
	return w.Bytes()
}

// DecodeDeal strictly decodes a deal. Errors: ErrBadDKGMessage.
func DecodeDeal(b []byte) (*dkg.Deal, error) {
	r := codec.NewReader(b)
	d := &dkg.Deal{Deal: &vss.EncryptedDeal{}}
	d.Index = index(r)
	d.Deal.DHKey = r.BytesField(pointSize)
	d.Deal.Signature = r.BytesField(maxSignature)
	d.Deal.Nonce = r.BytesField(maxNonce)
	d.Deal.Cipher = r.BytesField(maxCipher)
	d.Signature = r.BytesField(maxSignature)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: deal: %v", ErrBadDKGMessage, err)
	}
	if len(d.Deal.DHKey) != pointSize {
		return nil, fmt.Errorf("%w: deal: a DH key of %d bytes", ErrBadDKGMessage, len(d.Deal.DHKey))
	}
	if err := Suite.Point().UnmarshalBinary(d.Deal.DHKey); err != nil {
		return nil, fmt.Errorf("%w: deal: DH key: %v", ErrBadDKGMessage, err)
	}
	return d, canonical(b, EncodeDeal(d), "deal")
}

// EncodeResponse returns the canonical bytes of a response.
func EncodeResponse(p *dkg.Response) []byte {
	w := codec.NewWriter(160)
	w.Uvarint(uint64(p.Index))
	encodeVSSResponse(w, p.Response)
	return w.Bytes()
}

func encodeVSSResponse(w *codec.Writer, p *vss.Response) {
	w.BytesField(p.SessionID)
	w.Uvarint(uint64(p.Index))
	w.Bool(p.Status)
	w.BytesField(p.Signature)
}

// DecodeResponse strictly decodes a response. Errors: ErrBadDKGMessage.
func DecodeResponse(b []byte) (*dkg.Response, error) {
	r := codec.NewReader(b)
	p := &dkg.Response{Index: index(r), Response: &vss.Response{}}
	p.Response.SessionID = r.BytesField(maxSessionID)
	p.Response.Index = index(r)
	p.Response.Status = r.Bool()
	p.Response.Signature = r.BytesField(maxSignature)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: response: %v", ErrBadDKGMessage, err)
	}
	return p, canonical(b, EncodeResponse(p), "response")
}

// EncodeJustification returns the canonical bytes of a justification
// (it reveals the deal a complaint was about, in clear, as the protocol
// requires).
func EncodeJustification(j *dkg.Justification) ([]byte, error) {
	w := codec.NewWriter(512)
	w.Uvarint(uint64(j.Index))
	v := j.Justification
	w.BytesField(v.SessionID)
	w.Uvarint(uint64(v.Index))
	d := v.Deal
	w.BytesField(d.SessionID)
	w.Uvarint(uint64(d.SecShare.I))
	s, err := d.SecShare.V.MarshalBinary()
	if err != nil {
		return nil, err
	}
	w.Fixed(s)
	w.Uvarint(uint64(d.T))
	w.Uvarint(uint64(len(d.Commitments)))
	for _, c := range d.Commitments {
		b, err := c.MarshalBinary()
		if err != nil {
			return nil, err
		}
		w.Fixed(b)
	}
	w.BytesField(v.Signature)
	return w.Bytes(), nil
}

// DecodeJustification strictly decodes a justification. Errors:
// ErrBadDKGMessage.
func DecodeJustification(b []byte) (*dkg.Justification, error) {
	r := codec.NewReader(b)
	j := &dkg.Justification{Index: index(r), Justification: &vss.Justification{Deal: &vss.Deal{}}}
	v := j.Justification
	v.SessionID = r.BytesField(maxSessionID)
	v.Index = index(r)
	d := v.Deal
	d.SessionID = r.BytesField(maxSessionID)
	i := index(r)
	var sb [32]byte
	r.Fixed(sb[:])
	d.T = index(r)
	n := r.Uvarint()
	if n > MaxMembers || n > uint64(r.Remaining()/pointSize) {
		r.Fail(fmt.Errorf("%d commitments", n))
	}
	var pbs [][pointSize]byte
	for ; r.Err() == nil && n > 0; n-- {
		var pb [pointSize]byte
		r.Fixed(pb[:])
		pbs = append(pbs, pb)
	}
	v.Signature = r.BytesField(maxSignature)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: justification: %v", ErrBadDKGMessage, err)
	}
	sc := Suite.Scalar()
	if err := sc.UnmarshalBinary(sb[:]); err != nil {
		return nil, fmt.Errorf("%w: justification: share: %v", ErrBadDKGMessage, err)
	}
	d.SecShare = &share.PriShare{I: int(i), V: sc}
	for _, pb := range pbs {
		p := Suite.Point()
		if err := p.UnmarshalBinary(pb[:]); err != nil {
			return nil, fmt.Errorf("%w: justification: commitment: %v", ErrBadDKGMessage, err)
		}
		d.Commitments = append(d.Commitments, p)
	}
	again, err := EncodeJustification(j)
	if err != nil {
		return nil, fmt.Errorf("%w: justification: %v", ErrBadDKGMessage, err)
	}
	return j, canonical(b, again, "justification")
}

// index reads a member index (below MaxMembers).
func index(r *codec.Reader) uint32 {
	v := r.Uvarint()
	if r.Err() == nil && v >= MaxMembers {
		r.Fail(fmt.Errorf("index %d", v))
	}
	return uint32(v)
}

func canonical(got, again []byte, what string) error {
	if !bytes.Equal(got, again) {
		return fmt.Errorf("%w: %s not in canonical form", ErrBadDKGMessage, what)
	}
	return nil
}
