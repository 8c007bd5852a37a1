package api

import (
	"fmt"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Command receipts: what became of a command, for its sender only.
//
// Every command the chain queues for a contract (ContractCommandMessage)
// that a worker running the contract dispatches yields a receipt: the
// status, the contract's output or error message, and the gas used, sealed
// with CommKey(contract EcdhKey, sender) for ChannelPurposeReceipt (so only
// the sender's key and the contract open it), under a header naming the
// command (contract, sender, nonce) and the height of the block that
// delivered it, the whole signed by the contract's identity key. Receipts
// live in the workers (docs/pruntime.md, "Receipts"): kept in the sealed
// checkpoint, so a worker restart loses none, served on the public API at
// ReceiptPath, and computed identically by every replica.
const (
	ContextReceipt crypto.Context = "phala/contract: receipt v1"
	// ChannelPurposeReceipt is the channel purpose of receipt bodies.
	ChannelPurposeReceipt = "contract receipt"
	// MaxReceiptOutputBytes bounds a receipt's output (the VM's bound on
	// a call's output).
	MaxReceiptOutputBytes = 1 << 20
)

// ReceiptStatus is what became of a command.
type ReceiptStatus uint8

// Receipt statuses.
const (
	// ReceiptOK: executed; writes and messages committed; Output is the
	// contract's output.
	ReceiptOK ReceiptStatus = 0
	// ReceiptFailed: the contract refused the command (returned an error:
	// Output is its message) or the call failed (trap, out of gas, egress
	// over budget: Output says which); its writes and messages were
	// reverted.
	ReceiptFailed ReceiptStatus = 1
	// ReceiptRejected: not executed: the input does not open with the
	// sender's and the contract's CommKey (sealed to another contract, or
	// tampered with).
	ReceiptRejected ReceiptStatus = 2
)

func (s ReceiptStatus) String() string {
	switch s {
	case ReceiptOK:
		return "ok"
	case ReceiptFailed:
		return "failed"
	case ReceiptRejected:
		return "rejected"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// ReceiptBody is a receipt's sealed content.
type ReceiptBody struct {
	Status  ReceiptStatus
	GasUsed uint64 // gas units the call used
	Output  []byte // the contract's output, or the reason it failed
}

// Encode returns the canonical bytes: the fields, then Pad's padding (a
// sealed body's size tells its output's length only to within PadBlock
// bytes).
func (b *ReceiptBody) Encode() []byte {
	w := codec.NewWriter(16 + len(b.Output) + PadBlock)
	w.U8(uint8(b.Status))
	w.Uvarint(b.GasUsed)
	w.BytesField(b.Output)
	return Pad(w.Bytes())
}

// DecodeReceiptBody strictly decodes a receipt body (padding included).
// Errors: ErrMalformed.
func DecodeReceiptBody(b []byte) (*ReceiptBody, error) {
	b, err := Unpad(b)
	if err != nil {
		return nil, fmt.Errorf("receipt body: %w", err)
	}
	rb := &ReceiptBody{}
	r := codec.NewReader(b)
	rb.Status = ReceiptStatus(r.U8())
	rb.GasUsed = r.Uvarint()
	rb.Output = r.BytesField(MaxReceiptOutputBytes)
	if r.Err() == nil && rb.Status > ReceiptRejected {
		r.Fail(fmt.Errorf("%w: receipt status %d", codec.ErrBadFormat, rb.Status))
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: receipt body: %v", ErrMalformed, err)
	}
	return rb, nil
}

// Receipt is a command's receipt as a worker serves it.
type Receipt struct {
	Contract crypto.PublicKey // the contract's identity key (the signer)
	From     crypto.PublicKey // the command's sender (the transaction's signer)
	Nonce    uint64           // the command's nonce (its transaction's nonce)
	// Height is the block whose queue delivered the command; the receipt
	// reflects the contract's state after it.
	Height    int64
	Sealed    []byte // ReceiptBody sealed for ChannelPurposeReceipt, Header as additional data
	Signature crypto.Signature
}

// Header returns the receipt's public fields, bound to Sealed as
// additional data.
func (r *Receipt) Header() []byte {
	w := codec.NewWriter(96)
	w.Fixed(r.Contract[:])
	w.Fixed(r.From[:])
	w.Uvarint(r.Nonce)
	w.Varint(r.Height)
	return w.Bytes()
}

// SignBytes returns the bytes the contract signs.
func (r *Receipt) SignBytes() []byte {
	w := codec.NewWriter(128 + len(r.Sealed))
	w.Fixed(r.Header())
	w.BytesField(r.Sealed)
	return w.Bytes()
}

// Encode returns the canonical bytes.
func (r *Receipt) Encode() []byte { return append(r.SignBytes(), r.Signature[:]...) }

// Verify checks the contract's signature.
func (r *Receipt) Verify() bool {
	return r.Contract.Verify(ContextReceipt, r.SignBytes(), r.Signature)
}

// DecodeReceipt strictly decodes a receipt. Errors: ErrMalformed.
func DecodeReceipt(b []byte) (*Receipt, error) {
	rc := &Receipt{}
	r := codec.NewReader(b)
	r.Fixed(rc.Contract[:])
	r.Fixed(rc.From[:])
	rc.Nonce = r.Uvarint()
	rc.Height = r.Varint()
	rc.Sealed = r.BytesField(MaxReceiptOutputBytes + 128)
	r.Fixed(rc.Signature[:])
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: receipt: %v", ErrMalformed, err)
	}
	return rc, nil
}

// ReceiptPath is the public API path of a command's receipt at a worker:
// GET ReceiptPath(contract, from, nonce) answers an encoded Receipt (200),
// or 404 with the worker's dispatched height in its JSON body.
func ReceiptPath(contract, from crypto.PublicKey, nonce uint64) string {
	return fmt.Sprintf("/receipt/%s/%s/%d", contract.Hex(), from.Hex(), nonce)
}
