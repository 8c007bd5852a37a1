package api

import (
	"encoding/binary"
	"fmt"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Interoperability (docs/interop.md; the whitepaper's sections 2.2 and
// 4.8: every write command, from users, contracts or the chain, is
// timestamped on the chain and treated equally).
//
//   - Contract → contract: a contract's command sends ContractCall as its
//     own signed message (TopicContractCall); the queue keeps it once,
//     whatever number of replicas push it (by the sender's sequence); the
//     receiver's workers run it in chain order as a command whose caller
//     is the sending contract, with the gas the sender forwarded from its
//     own (paid) limit. Its payload is sealed to the receiver's ECDH key
//     when the sender asks (SenderEcdh set).
//   - Chain → contract: every contract has an escrow account
//     (EscrowAccount); a PHA transfer to it is delivered to the contract
//     in the same block as a Deposit (TopicContractDeposit).
//   - Contract → chain: a contract asks the chain to pay PHA out of its
//     escrow (PayoutRequest, TopicPayout, its own message: executed once);
//     the chain pays or refuses (beyond the escrow's balance, an id used
//     before) and tells the contract (PayoutResult, TopicPayoutResult),
//     keeping the result (ContractPayoutKey).

// Topics of interoperability.
const (
	// TopicContractCall: payload ContractCall, origin the sending
	// contract.
	TopicContractCall = "phala/contracts/call"
	// TopicContractDeposit: payload Deposit, origin module "contracts".
	TopicContractDeposit = "phala/contracts/deposit"
	// TopicPayout: payload PayoutRequest, origin the paying contract.
	TopicPayout = "phala/contracts/payout"
	// TopicPayoutResult: payload PayoutResult, origin module "contracts".
	TopicPayoutResult = "phala/contracts/payout_result"
)

// QueryContractPayout reads a payout's result: data is the contract's
// identity ‖ the payout id (8 bytes big-endian); value PayoutResult
// (absent: no request with that id reached the chain).
const QueryContractPayout = "/contract/payout"

// QueryEscrowOwner reads which contract an escrow account belongs to:
// data is the account (32 bytes); value the contract's identity (absent:
// not the escrow account of any contract deployed so far).
const QueryEscrowOwner = "/contract/escrow_owner"

// ChannelPurposeContractCall is the channel purpose of a sealed
// ContractCall (sender contract's ECDH key → receiver's).
const ChannelPurposeContractCall = "contract call"

// MaxCallPayloadBytes bounds a ContractCall's payload (sealed or not).
const MaxCallPayloadBytes = 256 << 10

// DepositGas is the gas limit a contract's deposit handler runs with (the
// depositor's transfer fee covers it), and PayoutResultGas its payout
// result handler's.
const (
	DepositGas      = 10_000_000
	PayoutResultGas = 10_000_000
)

// escrowDomain separates escrow accounts from every other derived key.
const escrowDomain = "phala/escrow v1"

// EscrowAccount is contract's escrow account: a valid sr25519 public key
// derived from the contract's identity whose secret key nobody knows
// (crypto.DerivedAccount): PHA sent to it can leave only by the chain's
// payout of a PayoutRequest the contract signed.
func EscrowAccount(contract crypto.PublicKey) crypto.PublicKey {
	return crypto.DerivedAccount(escrowDomain, contract[:])
}

// ContractCall is a message from one contract to another. Gas is the
// limit the receiver's command runs with (forwarded out of the sender's
// own limit). A sealed call (SenderEcdh non-zero) carries Payload sealed
// with the channel from the sender's ECDH key SenderEcdh to To's current
// ECDH key (ChannelPurposeContractCall, additional data CallAD); a plain
// one carries it as is (the chain then stores it in the clear).
type ContractCall struct {
	To         crypto.PublicKey
	Gas        uint64
	SenderEcdh crypto.PublicKey
	Nonce      [16]byte
	Payload    []byte
}

// Sealed reports whether the payload is sealed to the receiver.
func (c *ContractCall) Sealed() bool { return c.SenderEcdh != (crypto.PublicKey{}) }

// CallAD is the additional data of a sealed call's payload: the sender,
// the receiver and the call's nonce.
func CallAD(from, to crypto.PublicKey, nonce [16]byte) []byte {
	b := make([]byte, 0, 80)
	b = append(b, from[:]...)
	b = append(b, to[:]...)
	return append(b, nonce[:]...)
}

// Encode returns the canonical bytes of c.
func (c *ContractCall) Encode() []byte {
	w := codec.NewWriter(96 + len(c.Payload))
	w.Fixed(c.To[:])
	w.Uvarint(c.Gas)
	w.Fixed(c.SenderEcdh[:])
	w.Fixed(c.Nonce[:])
	w.BytesField(c.Payload)
	return w.Bytes()
}

// DecodeContractCall strictly decodes a ContractCall (payload at most
// MaxCallPayloadBytes, a non-zero receiver and gas).
func DecodeContractCall(b []byte) (*ContractCall, error) {
	c := &ContractCall{}
	r := codec.NewReader(b)
	r.Fixed(c.To[:])
	c.Gas = r.Uvarint()
	r.Fixed(c.SenderEcdh[:])
	r.Fixed(c.Nonce[:])
	c.Payload = r.BytesField(MaxCallPayloadBytes)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: contract call: %v", ErrMalformed, err)
	}
	if c.To == (crypto.PublicKey{}) || c.Gas == 0 {
		return nil, fmt.Errorf("%w: contract call: no receiver or no gas", ErrMalformed)
	}
	return c, nil
}

// Deposit is a PHA transfer From → the escrow account of Contract,
// delivered to the contract.
type Deposit struct {
	Contract crypto.PublicKey
	From     crypto.PublicKey
	Amount   uint64 // PHA base units
}

// Encode returns the canonical bytes of d.
func (d *Deposit) Encode() []byte {
	w := codec.NewWriter(80)
	w.Fixed(d.Contract[:])
	w.Fixed(d.From[:])
	w.Uvarint(d.Amount)
	return w.Bytes()
}

// DecodeDeposit strictly decodes a Deposit.
func DecodeDeposit(b []byte) (*Deposit, error) {
	d := &Deposit{}
	r := codec.NewReader(b)
	r.Fixed(d.Contract[:])
	r.Fixed(d.From[:])
	d.Amount = r.Uvarint()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: deposit: %v", ErrMalformed, err)
	}
	if d.Amount == 0 {
		return nil, fmt.Errorf("%w: deposit of zero", ErrMalformed)
	}
	return d, nil
}

// PayoutRequest asks the chain to pay Amount PHA base units from the
// sending contract's escrow account to To. ID is the contract's own
// number for it: the chain pays an id once.
type PayoutRequest struct {
	ID     uint64
	To     crypto.PublicKey
	Amount uint64
}

// Encode returns the canonical bytes of p.
func (p *PayoutRequest) Encode() []byte {
	w := codec.NewWriter(64)
	w.Uvarint(p.ID)
	w.Fixed(p.To[:])
	w.Uvarint(p.Amount)
	return w.Bytes()
}

// DecodePayoutRequest strictly decodes a PayoutRequest.
func DecodePayoutRequest(b []byte) (*PayoutRequest, error) {
	p := &PayoutRequest{}
	r := codec.NewReader(b)
	p.ID = r.Uvarint()
	r.Fixed(p.To[:])
	p.Amount = r.Uvarint()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: payout request: %v", ErrMalformed, err)
	}
	return p, nil
}

// MaxPayoutReasonBytes bounds PayoutResult.Reason.
const MaxPayoutReasonBytes = 256

// PayoutResult is what the chain did with Contract's payout request ID:
// paid Amount to To, or refused it for Reason.
type PayoutResult struct {
	Contract crypto.PublicKey
	ID       uint64
	To       crypto.PublicKey
	Amount   uint64
	Paid     bool
	Reason   string // "" when paid
	Height   int64  // the block that executed or refused it
}

// Encode returns the canonical bytes of p.
func (p *PayoutResult) Encode() []byte {
	w := codec.NewWriter(128 + len(p.Reason))
	w.Fixed(p.Contract[:])
	w.Uvarint(p.ID)
	w.Fixed(p.To[:])
	w.Uvarint(p.Amount)
	w.Bool(p.Paid)
	w.String(p.Reason)
	w.Varint(p.Height)
	return w.Bytes()
}

// DecodePayoutResult strictly decodes a PayoutResult.
func DecodePayoutResult(b []byte) (*PayoutResult, error) {
	p := &PayoutResult{}
	r := codec.NewReader(b)
	r.Fixed(p.Contract[:])
	p.ID = r.Uvarint()
	r.Fixed(p.To[:])
	p.Amount = r.Uvarint()
	p.Paid = r.Bool()
	p.Reason = r.String(MaxPayoutReasonBytes)
	p.Height = r.Varint()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: payout result: %v", ErrMalformed, err)
	}
	if p.Paid != (p.Reason == "") || p.Height < 1 {
		return nil, fmt.Errorf("%w: payout result: a paid result has no reason, a refused one has one; height %d", ErrMalformed, p.Height)
	}
	return p, nil
}

// ContractPayoutKey is the state key of contract's payout id's result.
func ContractPayoutKey(contract crypto.PublicKey, id uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte("co/"), contract[:]...), id)
}

// EscrowOwnerKey is the state key mapping an escrow account to its
// contract.
func EscrowOwnerKey(escrow crypto.PublicKey) []byte { return append([]byte("cw/"), escrow[:]...) }
