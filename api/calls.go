package api

import (
	"fmt"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// CallKind identifies a call in the envelope.
type CallKind uint16

// Calls known to this version of the chain.
const (
	CallTransfer        CallKind = 1
	CallPostMessage     CallKind = 2
	CallPushMessage     CallKind = 3
	CallRegisterWorker  CallKind = 4
	CallUploadContract  CallKind = 5
	CallContractCommand CallKind = 6
	CallContractQuery   CallKind = 7
)

var callNames = map[CallKind]string{
	CallTransfer:        "transfer",
	CallPostMessage:     "post_message",
	CallPushMessage:     "push_message",
	CallRegisterWorker:  "register_worker",
	CallUploadContract:  "upload_contract",
	CallContractCommand: "contract_command",
	CallContractQuery:   "contract_query",
}

func (k CallKind) String() string {
	if n, ok := callNames[k]; ok {
		return n
	}
	return fmt.Sprintf("call#%d", uint16(k))
}

// Call is the body of a transaction.
type Call interface {
	Kind() CallKind
	encode(w *codec.Writer)
}

// EncodeCall returns the canonical body bytes of c.
func EncodeCall(c Call) []byte {
	w := codec.NewWriter(64)
	c.encode(w)
	return w.Bytes()
}

// DecodeCall strictly decodes a call body of the given kind.
func DecodeCall(kind CallKind, body []byte) (Call, error) {
	r := codec.NewReader(body)
	var c Call
	switch kind {
	case CallTransfer:
		c = decodeTransfer(r)
	case CallPostMessage:
		c = decodePostMessage(r)
	case CallPushMessage:
		c = &PushMessage{Message: decodeSignedMessage(r)}
	case CallRegisterWorker:
		c = decodeRegisterWorker(r)
	case CallUploadContract:
		c = decodeUploadContract(r)
	case CallContractCommand:
		c = decodeContractCommand(r)
	case CallContractQuery:
		c = decodeContractQueryCall(r)
	case CallContractReassign:
		c = decodeContractReassign(r)
	case CallArbitrationRequest:
		c = decodeArbitrationRequest(r)
	case CallGovPropose:
		c = decodeGovPropose(r)
	case CallGovVote:
		c = decodeGovVote(r)
	case CallStakeBond, CallStakeAllocate, CallStakeUnbond, CallStakeWithdraw, CallStakeNominate:
		c = decodeStakingCall(kind, r)
	case CallGatekeeperCandidacy:
		c = decodeGatekeeperCandidacy(r)
	case CallSubnetCreate, CallSubnetAdd, CallSubnetRemove:
		c = decodeSubnetCall(kind, r)
	default:
		return nil, fmt.Errorf("%w: kind %d (this node knows transfer, post_message, push_message, register_worker, upload_contract, contract_command, contract_query, contract_reassign, gov_propose, gov_vote, stake_bond, stake_allocate, stake_unbond, stake_withdraw, stake_nominate, gatekeeper_candidacy, subnet_create, subnet_add, subnet_remove, arbitration_request)", ErrUnknownCall, kind)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: %s body: %v", ErrMalformed, kind, err)
	}
	return c, nil
}

// Transfer moves Amount of the native token from the signer to To.
type Transfer struct {
	To     crypto.PublicKey
	Amount uint64
}

func (*Transfer) Kind() CallKind { return CallTransfer }
func (t *Transfer) encode(w *codec.Writer) {
	w.Fixed(t.To[:])
	w.Uvarint(t.Amount)
}
func decodeTransfer(r *codec.Reader) *Transfer {
	t := &Transfer{}
	r.Fixed(t.To[:])
	t.Amount = r.Uvarint()
	return t
}

// PostMessage enqueues a message from the signer's account (origin
// Account(signer)); the chain assigns its sequence.
type PostMessage struct {
	Topic   string
	Payload []byte
}

func (*PostMessage) Kind() CallKind { return CallPostMessage }
func (m *PostMessage) encode(w *codec.Writer) {
	w.String(m.Topic)
	w.BytesField(m.Payload)
}
func decodePostMessage(r *codec.Reader) *PostMessage {
	return &PostMessage{Topic: r.String(MaxTopicBytes), Payload: r.BytesField(MaxPayloadBytes)}
}

// PushMessage carries a message signed by an off-chain origin (a worker, a
// contract or a gatekeeper). Anyone may submit it; the chain checks the
// origin's registered key and that the sequence is exactly the next one.
type PushMessage struct {
	Message SignedMessage
}

func (*PushMessage) Kind() CallKind           { return CallPushMessage }
func (p *PushMessage) encode(w *codec.Writer) { p.Message.encode(w) }

// RegisterWorker registers (or renews) a worker: its info and the platform's
// attestation report whose report data is Info.ReportData().
type RegisterWorker struct {
	Info   WorkerInfo
	Report AttestationReport
}

func (*RegisterWorker) Kind() CallKind { return CallRegisterWorker }
func (c *RegisterWorker) encode(w *codec.Writer) {
	c.Info.encode(w)
	c.Report.encode(w)
}
func decodeRegisterWorker(r *codec.Reader) *RegisterWorker {
	c := &RegisterWorker{}
	c.Info.decode(r)
	c.Report.decode(r)
	return c
}
