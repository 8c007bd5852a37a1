package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
)

// contract watch: a contract's public messages as blocks bring them.

func contractWatchCmd(g *globals) *cobra.Command {
	var from int64
	var count int
	c := &cobra.Command{
		Use:   "watch <contract id>",
		Short: "Follow new blocks and print the contract's public messages as they arrive",
		Long: `watch follows the chain block by block and prints the public messages the
contract put in the queue (messages whose origin is the contract: signed by
its identity key, pushed to the chain by a relayer): height, topic,
sequence, and the payload in hex. Messages to the contract (commands) are
encrypted and not shown.

Each block's messages are checked against the app hash of the next header,
verified from the trust root (see ` + "`phala --help`" + `), so a message is printed
once the block after it exists. watch starts at the latest block, or at
--from-height (an earlier block, to replay; a later one, to wait for it),
and runs until Ctrl-C or until --count messages were printed. --timeout
bounds only the connection, not how long watch follows. With --json it
prints one JSON object per line.`,
		Example: `  phala contract watch 0x1ee8...
  phala contract watch 0x1ee8... --from-height 1 --count 10 --json`,
		Args: exactArgs(1, "a contract id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if from < 0 {
				return fmt.Errorf("--from-height %d: give a positive height (0: the latest block)", from)
			}
			if count < 0 {
				return fmt.Errorf("--count %d: give a positive number of messages (0: no limit)", count)
			}
			pk, err := parseContractID(args[0])
			if err != nil {
				return err
			}
			dctx, cl, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			if _, err := cl.Contract(dctx, pk); err != nil {
				if errors.Is(err, client.ErrNoSuchContract) {
					return fmt.Errorf("no contract %s on chain %s (see `phala contract show`)", pk.Hex(), cl.ChainID())
				}
				return g.nodeError(err)
			}
			if from == 0 {
				if from, err = cl.Height(dctx); err != nil {
					return g.nodeError(err)
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			w := cmd.OutOrStdout()
			if !g.json {
				fmt.Fprintf(cmd.ErrOrStderr(), "watching contract %s from block %d (Ctrl-C stops)\n", pk.Hex(), from)
			}
			err = watchContract(ctx, cl, pk, from, count, func(m contractMessageJSON) error {
				if g.json {
					return json.NewEncoder(w).Encode(m)
				}
				_, err := fmt.Fprintf(w, "block %d  seq %d  topic %q  %d bytes  %s\n", m.Height, m.Seq, m.Topic, m.PayloadBytes, m.Payload)
				return err
			})
			if err != nil && ctx.Err() != nil && cmd.Context().Err() == nil {
				return nil // Ctrl-C
			}
			if err != nil {
				return g.nodeError(err)
			}
			return nil
		},
	}
	c.Flags().Int64Var(&from, "from-height", 0, "first block to read (default: the latest)")
	c.Flags().IntVar(&count, "count", 0, "stop after this many messages (default: follow until Ctrl-C)")
	return c
}

// contractMessageJSON is one public message of a contract.
type contractMessageJSON struct {
	Contract     string `json:"contract"`
	Height       int64  `json:"height"`
	Topic        string `json:"topic"`
	Seq          uint64 `json:"seq"`
	PayloadBytes int    `json:"payload_bytes"`
	Payload      string `json:"payload"` // hex, 0x-prefixed
}

// watchContract reads the verified queue messages of blocks from, from+1,
// ... (waiting for each next header) and hands emit those whose origin is
// the contract, until ctx ends, emit fails, or count (> 0) were emitted.
func watchContract(ctx context.Context, cl *client.Client, contract crypto.PublicKey, from int64, count int, emit func(contractMessageJSON) error) error {
	origin := api.KeyOrigin(api.OriginContract, contract)
	n := 0
	for h := from; ; h++ {
		bm, _, err := cl.VerifiedMessages(ctx, h)
		if err != nil {
			return err
		}
		for i := range bm.Messages {
			m := &bm.Messages[i]
			if m.Origin != origin {
				continue
			}
			if err := emit(contractMessageJSON{Contract: contract.Hex(), Height: bm.Height, Topic: m.Topic, Seq: m.Seq,
				PayloadBytes: len(m.Payload), Payload: "0x" + hex.EncodeToString(m.Payload)}); err != nil {
				return err
			}
			if n++; count > 0 && n >= count {
				return nil
			}
		}
	}
}
