package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/api"
)

// contractCheckpointCmd shows a contract's state on chain and checks that
// the chain alone holds it: its encrypted entries hash to the root the
// contract signed.
func contractCheckpointCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "checkpoints <contract id>",
		Aliases: []string{"checkpoint"},
		Short:   "Show a contract's latest state checkpoint on chain and verify its entries against the root",
		Long: `checkpoints (alias: checkpoint) reads a contract's latest on-chain checkpoint (proved: the height
of the last block whose commands it covers, the store's write counter, the
contract's call counter and the state root the contract signed), then
downloads every encrypted entry the chain holds for the contract and checks
that they hash to that root: the contract's state can be recovered from the
chain alone (docs/availability.md). Entries stay encrypted: only an enclave
holding the contract's key can read them. Its workers write a checkpoint every
few blocks (the contract's checkpoint interval) once its state changed.`,
		Example: `  phala contract checkpoints 0x1ee8...`,
		Args:    exactArgs(1, "a contract id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.withTimeout(cmd)
			defer cancel()
			cl, rec, err := g.contract(cmd, ctx, args[0])
			if err != nil {
				return err
			}
			cp, h, err := cl.Checkpoint(ctx, rec.Identity)
			if err != nil {
				return g.nodeError(err)
			}
			if cp == nil {
				return fmt.Errorf("contract %s has no checkpoint on chain yet (proved absent at height %d): its workers write one every few blocks once its state changes", rec.Identity.Hex(), h)
			}
			entries, err := cl.ContractEntries(ctx, rec.Identity)
			if err != nil {
				return g.nodeError(err)
			}
			got := api.StateRoot(cp.Seq, entries)
			out := map[string]any{"contract": rec.Identity.Hex(), "height": cp.Height, "seq": cp.Seq, "calls": cp.Calls,
				"root": fmt.Sprintf("%x", cp.Root), "entries": len(entries), "bytes": cp.Bytes, "verified": got == cp.Root, "proved_at": h}
			if err := g.output(cmd, out, func(w io.Writer) {
				fmt.Fprintf(w, "Checkpoint of contract %s (proved at height %d)\n", rec.Identity.Hex(), h)
				fmt.Fprintf(w, "  covers:  the commands of blocks up to %d\n", cp.Height)
				fmt.Fprintf(w, "  root:    %x (signed by the contract)\n", cp.Root)
				fmt.Fprintf(w, "  entries: %d encrypted, %d bytes on chain; write counter %d, call counter %d\n", len(entries), cp.Bytes, cp.Seq, cp.Calls)
				if got == cp.Root {
					fmt.Fprintln(w, "  verified: the entries on chain hash to the root: the state can be recovered from the chain alone")
				}
			}); err != nil {
				return err
			}
			if got != cp.Root {
				return fmt.Errorf("the %d entries the node returned hash to %x, not the checkpoint's root %x: the node lies, or a state update landed between the reads (run it again)", len(entries), got, cp.Root)
			}
			return nil
		},
	}
}
