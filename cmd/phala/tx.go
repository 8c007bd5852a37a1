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

	"github.com/spf13/cobra"

	"github.com/phalago/phala/client"
	"github.com/phalago/phala/internal/chainview"
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

// The views of transactions, blocks and queue messages are
// internal/chainview's, shared with `phala explorer`.
type (
	txJSON      = chainview.Tx
	blockJSON   = chainview.Block
	messageJSON = chainview.Message
)

func txToJSON(info *client.TxInfo) txJSON { return chainview.DescribeTxInfo(info) }

func blockToJSON(b *client.BlockInfo) blockJSON { return chainview.DescribeBlock(b) }
