package main

import (
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/api"
)

// contractReassignCmd is the deployer's contract_reassign: remove one
// worker from a contract (docs/availability.md, "Reassignment").
func contractReassignCmd(g *globals) *cobra.Command {
	var from string
	c := &cobra.Command{
		Use:   "reassign --from <deployer> <contract id> <worker>",
		Short: "Remove a worker from your contract; a gatekeeper assigns a replacement",
		Long: `reassign asks the chain to take <worker> (its pRuntime identity key, 0x-hex or
SS58, as ` + "`phala contract show`" + ` lists it) off the contract. Only the contract's
deployer may (--from signs and pays the fee). The worker stops the contract
at once and is never assigned it again (the record lists it as excluded);
a gatekeeper then grants the contract to another eligible worker, which
recovers its state from the chain's checkpoint. Use it for a worker that
is down or misbehaves; the chain also removes, on its own, workers whose
registration expired, whose stake fell below min_worker_stake or that
were found unresponsive.`,
		Example: `  phala contract reassign --from //Alice 0x1ee8... 0xd435...a27d`,
		Args:    exactArgs(2, "a contract id and a worker"),
		RunE: func(cmd *cobra.Command, args []string) error {
			contract, err := parseContractID(args[0])
			if err != nil {
				return err
			}
			worker, err := parseAccount("worker", args[1])
			if err != nil {
				return err
			}
			key, err := signerKey(cmd, from)
			if err != nil {
				return err
			}
			ctx, cl, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			res, err := cl.NewSigner(key).Submit(ctx, &api.ContractReassign{Contract: contract, Worker: worker})
			if err != nil {
				return g.submitError(err, res, "reassign", "")
			}
			out := map[string]any{"contract": contract.Hex(), "removed": worker.Hex(), "height": res.Height, "tx": fmt.Sprintf("%X", res.Hash)}
			// The record after the transaction's block (Prove waits for
			// the header that proves it).
			pv, err := cl.Prove(ctx, api.QueryContract, contract[:])
			var rec *api.ContractRecord
			if err == nil {
				rec, err = api.DecodeContractRecord(pv.Value)
			}
			if err != nil {
				return fmt.Errorf("worker %s removed from contract %s at height %d (tx %X); reading the record afterwards: %w", worker.Hex(), contract.Hex(), res.Height, res.Hash, g.nodeError(err))
			}
			ws := []string{}
			for _, w := range rec.Workers {
				ws = append(ws, w.Hex())
			}
			out["workers"] = ws
			out["excluded"] = slices.Contains(rec.Excluded, worker)
			return g.output(cmd, out, func(w io.Writer) {
				fmt.Fprintf(w, "worker %s removed from contract %s at height %d (tx %X); it is excluded from this contract from now on\n", worker.Hex(), contract.Hex(), res.Height, res.Hash)
				fmt.Fprintf(w, "the contract now runs on %d worker(s); a gatekeeper will assign a replacement, which recovers the state from the chain: `phala contract show %s` lists its workers\n", len(rec.Workers), contract.Hex())
			})
		},
	}
	c.Flags().StringVar(&from, "from", "", "secret URI of the contract's deployer (pays the fee), or - for stdin")
	return c
}
