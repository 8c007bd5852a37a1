package api

import (
	"crypto/sha256"
	"fmt"
	"math"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Limits of the envelope, enforced by the decoder before anything else.
const (
	TxVersion       = 1
	MaxTxBytes      = 4 << 20 // hard ceiling; the chain's params may set a lower one
	MaxChainIDBytes = 50
	MaxCallBytes    = MaxTxBytes
)

// Tx is the signed transaction envelope.
//
// Encoding: version u8 | chain id string | signer [32] | nonce uvarint |
// fee uvarint | call kind uvarint | call body bytes | signature [64].
// The signature covers every byte before it, under [ContextTx].
type Tx struct {
	ChainID   string
	Signer    crypto.PublicKey
	Nonce     uint64
	Fee       uint64
	Call      Call
	Signature crypto.Signature
}

// NewTx builds and signs a transaction.
func NewTx(chainID string, signer *crypto.KeyPair, nonce, fee uint64, call Call) *Tx {
	tx := &Tx{ChainID: chainID, Signer: signer.Public(), Nonce: nonce, Fee: fee, Call: call}
	tx.Signature = signer.Sign(ContextTx, tx.SignBytes())
	return tx
}

// SignBytes returns the bytes the signature covers.
func (tx *Tx) SignBytes() []byte {
	w := codec.NewWriter(128)
	tx.encodeUnsigned(w)
	return w.Bytes()
}

func (tx *Tx) encodeUnsigned(w *codec.Writer) {
	w.U8(TxVersion)
	w.String(tx.ChainID)
	w.Fixed(tx.Signer[:])
	w.Uvarint(tx.Nonce)
	w.Uvarint(tx.Fee)
	w.Uvarint(uint64(tx.Call.Kind()))
	w.BytesField(EncodeCall(tx.Call))
}

// Encode returns the canonical bytes of the signed transaction.
func (tx *Tx) Encode() []byte {
	w := codec.NewWriter(192)
	tx.encodeUnsigned(w)
	w.Fixed(tx.Signature[:])
	return w.Bytes()
}

// Hash is the SHA-256 of the encoded transaction (CometBFT's tx hash).
func TxHash(b []byte) [32]byte { return sha256.Sum256(b) }

// VerifySignature checks the signature over the encoded bytes b of tx. It
// does not consult any cache; the chain caches results by tx hash.
func (tx *Tx) VerifySignature(b []byte) bool {
	if len(b) < crypto.SignatureSize {
		return false
	}
	return tx.Signer.Verify(ContextTx, b[:len(b)-crypto.SignatureSize], tx.Signature)
}

// DecodeTx strictly decodes an envelope. Errors wrap ErrMalformed,
// ErrTooLarge, ErrUnsupportedVersion or ErrUnknownCall.
func DecodeTx(b []byte) (*Tx, error) {
	if len(b) > MaxTxBytes {
		return nil, fmt.Errorf("%w: transaction of %d bytes exceeds %d", ErrTooLarge, len(b), MaxTxBytes)
	}
	r := codec.NewReader(b)
	if v := r.U8(); r.Err() == nil && v != TxVersion {
		return nil, fmt.Errorf("%w: transaction version %d, this node speaks %d (submit the raw binary transaction, not hex or base64 text)", ErrUnsupportedVersion, v, TxVersion)
	}
	tx := &Tx{}
	tx.ChainID = r.String(MaxChainIDBytes)
	r.Fixed(tx.Signer[:])
	tx.Nonce = r.Uvarint()
	tx.Fee = r.Uvarint()
	rawKind := r.Uvarint()
	body := r.BytesField(MaxCallBytes)
	r.Fixed(tx.Signature[:])
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: transaction: %v", ErrMalformed, err)
	}
	if rawKind > math.MaxUint16 {
		return nil, fmt.Errorf("%w: kind %d", ErrUnknownCall, rawKind)
	}
	call, err := DecodeCall(CallKind(rawKind), body)
	if err != nil {
		return nil, err
	}
	tx.Call = call
	return tx, nil
}
