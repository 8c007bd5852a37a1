package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/spf13/cobra"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
)

// Commands that show what the chain did: tx (a transaction decoded, with
// its result and events) and block (a header, its transactions and its
// queue messages). Like cast's `tx` and `block`. Encrypted payloads
// (commands, queries, sealed keys) are shown as sizes only.

func txCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tx <hash>",
		Short: "Show a committed transaction: its call decoded, result code, log and events (proved)",
		Long: `tx looks up a committed transaction by its hash (64 hex digits, as
` + "`phala transfer`" + ` and the other commands print it, 0x optional) and prints its
signer, nonce and fee, its call and the call's fields, the height and index
where it was committed, its result code and log, and the events it emitted.
Encrypted payloads (a command's or query's ciphertext) are shown as sizes:
they are never decrypted.

The transaction is proved to be in its block (a Merkle proof against the
block's DataHash), and its result code against the next header's
LastResultsHash, both headers verified from the trust root (see
` + "`phala --help`" + `); so tx waits for the block after the transaction's. The
log and events are not covered by any header: they are the node's word.
A node indexes transactions by default; one that does not knows none.`,
		Example: `  phala tx 3f0a9c...e1
  phala tx 0x3f0a9c...e1 --json`,
		Args: exactArgs(1, "one transaction hash"),
		RunE: func(cmd *cobra.Command, args []string) error {
			hash, err := parseTxHash(args[0])
			if err != nil {
				return err
			}
			ctx, c, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			info, err := c.Tx(ctx, hash)
			if errors.Is(err, client.ErrTxNotFound) {
				return fmt.Errorf("no transaction %X on the node at %s: it was never committed there (a refused or dropped transaction is not kept; resend it), or the node does not index transactions", hash, g.nodeURL())
			}
			if err != nil {
				return g.nodeError(err)
			}
			out := txToJSON(info)
			return g.output(cmd, out, func(w io.Writer) {
				fmt.Fprintf(w, "Transaction %s\n", out.Hash)
				fmt.Fprintf(w, "  block:   %d (index %d)\n", out.Height, out.Index)
				result := "ok"
				if out.Code != 0 {
					result = fmt.Sprintf("FAILED (code %d, %s): %s", out.Code, out.CodeName, out.Log)
				} else if out.Log != "" {
					result += " (" + out.Log + ")"
				}
				fmt.Fprintf(w, "  result:  %s\n", result)
				printTxBody(w, "  ", out)
				if len(out.Events) > 0 {
					fmt.Fprintln(w, "  events:")
					for _, e := range out.Events {
						fmt.Fprintf(w, "    %s\n", e)
					}
				}
				fmt.Fprintf(w, "  (in block %d by a Merkle proof, result code by header %d; log and events as the node reports them)\n", out.Height, out.Height+1)
			})
		},
	}
}

// parseTxHash reads a transaction hash: 64 hex digits, 0x optional.
func parseTxHash(s string) ([32]byte, error) {
	var h [32]byte
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	b, err := hex.DecodeString(t)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("transaction hash %q: want 64 hex digits (the hash a command printed; 0x optional)", s)
	}
	copy(h[:], b)
	return h, nil
}

// txJSON is a transaction as tx prints it (and block, without events).
type txJSON struct {
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

func txToJSON(info *client.TxInfo) txJSON {
	out := describeTx(info.Hash, info.Bytes, info.Tx, info.DecodeErr)
	out.Height, out.Index = info.Height, info.Index
	out.Code, out.CodeName, out.Log = uint32(info.Code), info.Code.String(), info.Log
	out.Events = eventStrings(info.Events)
	return out
}

// describeTx decodes what a transaction says, without its result.
func describeTx(hash [32]byte, b []byte, tx *api.Tx, decodeErr error) txJSON {
	out := txJSON{Hash: fmt.Sprintf("%X", hash), Size: len(b)}
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
	out.Fee, out.FeePHA = strconv.FormatUint(tx.Fee, 10), formatAmount(tx.Fee)
	out.Call = tx.Call.Kind().String()
	out.Fields, out.Summary = describeCall(tx.Call)
	return out
}

// describeCall returns a call's fields (sizes for payloads: encrypted
// ones are never decrypted; public ones may be large) and a one-line
// summary.
func describeCall(call api.Call) (map[string]any, string) {
	size := func(b []byte) string { return fmt.Sprintf("%d bytes", len(b)) }
	switch c := call.(type) {
	case *api.Transfer:
		return map[string]any{"to": c.To.Address(), "amount": strconv.FormatUint(c.Amount, 10), "amount_pha": formatAmount(c.Amount)},
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
		d := describeAction(&c.Action)
		return map[string]any{"action": c.Action.Kind.String(), "description": d}, "gov_propose: " + d
	case *api.GovVote:
		vote := "nay"
		if c.Aye {
			vote = "aye"
		}
		return map[string]any{"motion": c.Motion, "vote": vote}, fmt.Sprintf("gov_vote %s on motion %d", vote, c.Motion)
	case *api.StakeBond:
		return map[string]any{"amount": strconv.FormatUint(c.Amount, 10), "amount_pha": formatAmount(c.Amount)}, "stake_bond " + pha(c.Amount)
	case *api.StakeAllocate:
		return map[string]any{"node": c.Node.Hex(), "amount": strconv.FormatUint(c.Amount, 10), "amount_pha": formatAmount(c.Amount)},
			fmt.Sprintf("stake_allocate %s to %s", pha(c.Amount), c.Node.Hex())
	case *api.StakeUnbond:
		return map[string]any{"node": c.Node.Hex(), "amount": strconv.FormatUint(c.Amount, 10), "amount_pha": formatAmount(c.Amount)},
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

func printTxBody(w io.Writer, indent string, t txJSON) {
	if t.DecodeError != "" {
		fmt.Fprintf(w, "%sbytes:   %d, do not decode: %s\n", indent, t.Size, t.DecodeError)
		return
	}
	fmt.Fprintf(w, "%ssigner:  %s\n", indent, t.Signer)
	fmt.Fprintf(w, "%snonce:   %d\n", indent, t.Nonce)
	fmt.Fprintf(w, "%sfee:     %s PHA\n", indent, t.FeePHA)
	fmt.Fprintf(w, "%scall:    %s\n", indent, t.Call)
	keys := make([]string, 0, len(t.Fields))
	for k := range t.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s  %-17s %v\n", indent, k+":", t.Fields[k])
	}
}

// eventStrings renders events as "type key=value ...".
func eventStrings(evs []abci.Event) []string {
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

func blockCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "block <height | latest>",
		Short: "Show a block: header, its transactions decoded, its queue messages (proved)",
		Long: `block prints a block's header (height, time, hash, proposer, app hash), each
of its transactions on one line (hash, result, signer and call; encrypted
payloads as sizes), and the messages the block put in the queue (origin,
topic, sequence, payload size).

The header is verified from the trust root (see ` + "`phala --help`" + `); the
transactions are checked against its DataHash, their result codes against
the next header's LastResultsHash, and the queue messages against the next
header's app hash. So block waits for the next block (about one block
time), also for ` + "`latest`" + `.`,
		Example: `  phala block latest
  phala block 1200 --json`,
		Args: exactArgs(1, "a height or latest"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var height int64
			if args[0] != "latest" {
				h, err := strconv.ParseInt(args[0], 10, 64)
				if err != nil || h < 1 {
					return fmt.Errorf("block %q: give a height (a positive integer) or latest", args[0])
				}
				height = h
			}
			ctx, c, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			b, err := c.Block(ctx, height)
			if errors.Is(err, client.ErrBeyondTip) {
				return fmt.Errorf("%w (see `phala status`, or `phala block latest`)", err)
			}
			if err != nil {
				return g.nodeError(err)
			}
			out := blockToJSON(b)
			return g.output(cmd, out, func(w io.Writer) {
				fmt.Fprintf(w, "Block %d of %s\n", out.Height, out.ChainID)
				fmt.Fprintf(w, "  time:      %s\n", out.Time.Format(time.RFC3339Nano))
				fmt.Fprintf(w, "  hash:      %s\n", out.Hash)
				fmt.Fprintf(w, "  proposer:  %s\n", out.Proposer)
				fmt.Fprintf(w, "  app hash:  %s (state after block %d)\n", out.AppHash, out.Height-1)
				fmt.Fprintf(w, "Transactions: %d\n", len(out.Txs))
				for _, t := range out.Txs {
					result := "ok"
					if t.Code != 0 {
						result = fmt.Sprintf("FAILED %d %s", t.Code, t.CodeName)
					}
					from := ""
					if t.Signer != "" {
						from = " from " + t.Signer
					}
					fmt.Fprintf(w, "  %s  %s%s: %s\n", t.Hash, result, from, t.Summary)
				}
				fmt.Fprintf(w, "Queue messages: %d\n", len(out.Messages))
				for _, m := range out.Messages {
					fmt.Fprintf(w, "  %s  %q  seq %d  payload %d bytes\n", m.Origin, m.Topic, m.Seq, m.PayloadBytes)
				}
			})
		},
	}
}

type messageJSON struct {
	Height       int64  `json:"height"`
	Origin       string `json:"origin"`
	Topic        string `json:"topic"`
	Seq          uint64 `json:"seq"`
	PayloadBytes int    `json:"payload_bytes"`
}

type blockJSON struct {
	ChainID  string        `json:"chain_id"`
	Height   int64         `json:"height"`
	Time     time.Time     `json:"time"`
	Hash     string        `json:"hash"`
	Proposer string        `json:"proposer"` // the validator's address (hex)
	AppHash  string        `json:"app_hash"`
	Txs      []txJSON      `json:"txs"`
	Messages []messageJSON `json:"messages"`
}

func blockToJSON(b *client.BlockInfo) blockJSON {
	h := b.Header
	out := blockJSON{ChainID: h.ChainID, Height: h.Height, Time: h.Time.UTC(), Hash: fmt.Sprintf("%X", h.Hash()),
		Proposer: h.ProposerAddress.String(), AppHash: fmt.Sprintf("%X", h.AppHash), Txs: []txJSON{}, Messages: []messageJSON{}}
	for i, raw := range b.Txs {
		tx, err := api.DecodeTx(raw)
		t := describeTx([32]byte(raw.Hash()), raw, tx, err)
		t.Height, t.Index = h.Height, uint32(i)
		r := b.Results[i]
		t.Code, t.CodeName, t.Log = r.Code, api.Code(r.Code).String(), r.Log
		out.Txs = append(out.Txs, t)
	}
	for _, m := range b.Messages.Messages {
		out.Messages = append(out.Messages, messageToJSON(b.Messages.Height, &m))
	}
	return out
}

func messageToJSON(height int64, m *api.Message) messageJSON {
	return messageJSON{Height: height, Origin: m.Origin.String(), Topic: m.Topic, Seq: m.Seq, PayloadBytes: len(m.Payload)}
}
