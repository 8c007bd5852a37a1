// Package chainview owns the public, human-readable view of what the chain
// records: a transaction decoded (signer, nonce, fee, its call and the
// call's public fields), a block (header, transactions with their results,
// queue messages), a governance action in one line. The CLI (cmd/phala: tx,
// block, gov) prints these views and the explorer (internal/explorer)
// renders them as pages, so both show the same fields decoded the same way.
//
// Encrypted payloads (a command's or query's ciphertext, sealed keys, a
// message's payload) are shown as sizes only: a view never holds more than
// the chain makes public. Field names are the JSON names `phala --json`
// prints; changing one changes the CLI's output.
package chainview

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
)

// Tx is a transaction as `phala tx` prints it (and `phala block`, without
// events).
type Tx struct {
	Hash     string `json:"hash"`
	Height   int64  `json:"height"`
	Index    uint32 `json:"index"`
	Code     uint32 `json:"code"`
	CodeName string `json:"code_name"`
	Log      string `json:"log,omitempty"`
	Size     int    `json:"size"` // bytes
	// Signer, nonce, fee and call are absent when the bytes do not decode
	// (DecodeError says why).
	Signer      string         `json:"signer,omitempty"`
	Nonce       uint64         `json:"nonce"`
	Fee         string         `json:"fee,omitempty"` // units of 10^-12 PHA
	FeePHA      string         `json:"fee_pha,omitempty"`
	Call        string         `json:"call,omitempty"`
	Fields      map[string]any `json:"fields,omitempty"`
	Summary     string         `json:"summary,omitempty"`
	DecodeError string         `json:"decode_error,omitempty"`
	Events      []string       `json:"events,omitempty"`
}

// DescribeTxInfo is the view of a committed transaction with its result
// and events.
func DescribeTxInfo(info *client.TxInfo) Tx {
	out := DescribeTx(info.Hash, info.Bytes, info.Tx, info.DecodeErr)
	out.Height, out.Index = info.Height, info.Index
	out.Code, out.CodeName, out.Log = uint32(info.Code), info.Code.String(), info.Log
	out.Events = EventStrings(info.Events)
	return out
}

// DescribeTx decodes what a transaction says, without its result. tx is
// b decoded (nil when it does not decode: decodeErr says why).
func DescribeTx(hash [32]byte, b []byte, tx *api.Tx, decodeErr error) Tx {
	out := Tx{Hash: fmt.Sprintf("%X", hash), Size: len(b)}
	if tx == nil {
		if decodeErr == nil {
			decodeErr = errors.New("not decoded")
		}
		out.DecodeError = decodeErr.Error()
		out.Summary = "undecodable: " + out.DecodeError
		return out
	}
	out.Signer = tx.Signer.Address()
	out.Nonce = tx.Nonce
	out.Fee, out.FeePHA = strconv.FormatUint(tx.Fee, 10), api.FormatAmount(tx.Fee)
	out.Call = tx.Call.Kind().String()
	out.Fields, out.Summary = DescribeCall(tx.Call)
	return out
}

// pha prints units as "<amount> PHA".
func pha(units uint64) string { return api.FormatAmount(units) + " " + api.TokenSymbol }

// DescribeCall returns a call's fields (sizes for payloads: encrypted
// ones are never decrypted; public ones may be large) and a one-line
// summary. Keys that name accounts hold SS58 addresses; keys that name
// workers, gatekeepers or contracts hold 0x-hex public keys.
func DescribeCall(call api.Call) (map[string]any, string) {
	size := func(b []byte) string { return fmt.Sprintf("%d bytes", len(b)) }
	switch c := call.(type) {
	case *api.Transfer:
		return map[string]any{"to": c.To.Address(), "amount": strconv.FormatUint(c.Amount, 10), "amount_pha": api.FormatAmount(c.Amount)},
			fmt.Sprintf("transfer %s to %s", pha(c.Amount), c.To.Address())
	case *api.PostMessage:
		return map[string]any{"topic": c.Topic, "payload_bytes": len(c.Payload)},
			fmt.Sprintf("post_message topic %q, payload %s", c.Topic, size(c.Payload))
	case *api.PushMessage:
		m := &c.Message.Message
		return map[string]any{"origin": m.Origin.String(), "topic": m.Topic, "seq": m.Seq, "payload_bytes": len(m.Payload)},
			fmt.Sprintf("push_message from %s topic %q seq %d, payload %s", m.Origin, m.Topic, m.Seq, size(m.Payload))
	case *api.RegisterWorker:
		i := &c.Info
		return map[string]any{"identity": i.IdentityKey.Hex(), "ecdh_key": i.EcdhKey.Hex(), "endpoint": i.Endpoint, "operator": i.Operator.Address(),
				"chain_id": i.ChainID, "report_block": i.BlockHeight, "platform": c.Report.Platform, "quote_bytes": len(c.Report.Quote)},
			fmt.Sprintf("register_worker %s at %s (%s)", i.IdentityKey.Hex(), i.Endpoint, c.Report.Platform)
	case *api.UploadContract:
		return map[string]any{"code_bytes": len(c.Code), "replicas": c.Replicas, "init_input_bytes": len(c.InitInput)},
			fmt.Sprintf("upload_contract code %s (gzip), %d replicas, init input %s", size(c.Code), c.Replicas, size(c.InitInput))
	case *api.ContractCommand:
		return map[string]any{"contract": c.Contract.Hex(), "command_nonce": c.Nonce, "sealed_bytes": len(c.Sealed)},
			fmt.Sprintf("contract_command to %s, encrypted input %s", c.Contract.Hex(), size(c.Sealed))
	case *api.ContractQueryCall:
		q := &c.Query
		return map[string]any{"contract": q.Contract.Hex(), "from": q.From.Address(), "not_after": q.NotAfter, "ciphertext_bytes": len(q.Ciphertext)},
			fmt.Sprintf("contract_query to %s, encrypted query %s", q.Contract.Hex(), size(q.Ciphertext))
	case *api.GovPropose:
		d := DescribeAction(&c.Action)
		return map[string]any{"action": c.Action.Kind.String(), "description": d}, "gov_propose: " + d
	case *api.GovVote:
		vote := "nay"
		if c.Aye {
			vote = "aye"
		}
		return map[string]any{"motion": c.Motion, "vote": vote}, fmt.Sprintf("gov_vote %s on motion %d", vote, c.Motion)
	case *api.StakeBond:
		return map[string]any{"amount": strconv.FormatUint(c.Amount, 10), "amount_pha": api.FormatAmount(c.Amount)}, "stake_bond " + pha(c.Amount)
	case *api.StakeAllocate:
		return map[string]any{"node": c.Node.Hex(), "amount": strconv.FormatUint(c.Amount, 10), "amount_pha": api.FormatAmount(c.Amount)},
			fmt.Sprintf("stake_allocate %s to %s", pha(c.Amount), c.Node.Hex())
	case *api.StakeUnbond:
		return map[string]any{"node": c.Node.Hex(), "amount": strconv.FormatUint(c.Amount, 10), "amount_pha": api.FormatAmount(c.Amount)},
			fmt.Sprintf("stake_unbond %s from %s", pha(c.Amount), c.Node.Hex())
	case *api.StakeWithdraw:
		return map[string]any{}, "stake_withdraw"
	case *api.StakeNominate:
		ts := make([]string, len(c.Targets))
		for i, t := range c.Targets {
			ts[i] = t.Hex()
		}
		return map[string]any{"targets": ts}, fmt.Sprintf("stake_nominate %d candidate(s)", len(ts))
	}
	return nil, call.Kind().String()
}

// EventStrings renders events as "type key=value ...".
func EventStrings(evs []abci.Event) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		var b strings.Builder
		b.WriteString(e.Type)
		for _, a := range e.Attributes {
			fmt.Fprintf(&b, " %s=%s", a.Key, a.Value)
		}
		out = append(out, b.String())
	}
	return out
}

// Message is a queue message as `phala block` prints it: who sent it,
// on which topic, its sequence, and its payload's size (never its bytes).
type Message struct {
	Height       int64  `json:"height"`
	Origin       string `json:"origin"`
	Topic        string `json:"topic"`
	Seq          uint64 `json:"seq"`
	PayloadBytes int    `json:"payload_bytes"`
}

// Block is a block as `phala block` prints it.
type Block struct {
	ChainID  string    `json:"chain_id"`
	Height   int64     `json:"height"`
	Time     time.Time `json:"time"`
	Hash     string    `json:"hash"`
	Proposer string    `json:"proposer"` // the validator's address (hex)
	AppHash  string    `json:"app_hash"`
	Txs      []Tx      `json:"txs"`
	Messages []Message `json:"messages"`
}

// DescribeBlock is the view of a block the client checked (client.Block).
func DescribeBlock(b *client.BlockInfo) Block {
	h := b.Header
	out := Block{ChainID: h.ChainID, Height: h.Height, Time: h.Time.UTC(), Hash: fmt.Sprintf("%X", h.Hash()),
		Proposer: h.ProposerAddress.String(), AppHash: fmt.Sprintf("%X", h.AppHash), Txs: []Tx{}, Messages: []Message{}}
	for i, raw := range b.Txs {
		tx, err := api.DecodeTx(raw)
		t := DescribeTx([32]byte(raw.Hash()), raw, tx, err)
		t.Height, t.Index = h.Height, uint32(i)
		r := b.Results[i]
		t.Code, t.CodeName, t.Log = r.Code, api.Code(r.Code).String(), r.Log
		out.Txs = append(out.Txs, t)
	}
	for _, m := range b.Messages.Messages {
		out.Messages = append(out.Messages, DescribeMessage(b.Messages.Height, &m))
	}
	return out
}

// DescribeMessage is the view of a queue message of height.
func DescribeMessage(height int64, m *api.Message) Message {
	return Message{Height: height, Origin: m.Origin.String(), Topic: m.Topic, Seq: m.Seq, PayloadBytes: len(m.Payload)}
}

// DescribeAction says what a governance action does, in one line.
func DescribeAction(a *api.Action) string {
	switch a.Kind {
	case api.ActionAllowMeasurement:
		return "allow pRuntime measurement " + a.Measurement.String()
	case api.ActionRevokeMeasurement:
		return "revoke pRuntime measurement " + a.Measurement.String()
	case api.ActionMigrateRuntime:
		return "migrate every contract and gatekeeper seat to the pRuntime build of measurement " + a.Measurement.String() + ", then revoke the others"
	case api.ActionCancelMigration:
		return "cancel the running runtime migration (revoke nothing; every allowed build gets new work again)"
	case api.ActionSetMinRuntimeVersion:
		return fmt.Sprintf("require pRuntime version %d or newer", a.Version)
	case api.ActionSetParams:
		b, _ := json.Marshal(a.Params)
		return "set chain parameters " + string(b)
	case api.ActionSetCouncil:
		var ms []string
		for _, m := range a.Council.Members {
			ms = append(ms, m.Address())
		}
		return fmt.Sprintf("set the council to %d of [%s]", a.Council.Threshold, strings.Join(ms, " "))
	case api.ActionSetValidator:
		k := base64.StdEncoding.EncodeToString(a.Validator.PubKey[:])
		if a.Validator.Power == 0 {
			return "remove validator " + k
		}
		return fmt.Sprintf("set validator %s to power %d", k, a.Validator.Power)
	}
	return a.Kind.String()
}
