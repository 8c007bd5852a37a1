package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
)

// arbitrationHelp explains state update arbitration in two sentences
// (docs/availability.md, "Arbitration"), with the default parameters.
var arbitrationHelp = func() string {
	p := api.DefaultParams()
	return fmt.Sprintf(`Within arbitration_window blocks (default %d) of the chain accepting a contract's
state update, its deployer (for free) or anyone posting arbitration_bond
(default %s) may dispute it: extra workers (arbiters) recompute the update
from the checkpoint before it and a majority of them decides within
arbitration_timeout blocks (default %d; without a verdict the dispute expires,
nothing changes and the bond is returned). If they confirm the update the
bond is lost (paid to the arbiters); if not, the chain rolls the contract's
state back to the checkpoint before it, returns the bond, and every worker
that vouched for the wrong root loses arbitration_slash_ppm of its stake
(default %s) and is removed from the contract (`+"`phala status`"+` shows the
chain's values).`, p.ArbitrationWindow, pha(p.ArbitrationBond), p.ArbitrationTimeout, ppm(p.ArbitrationSlashPPM))
}()

// contractArbitrateCmd sends arbitration_request (call 60): dispute a
// contract's state update.
func contractArbitrateCmd(g *globals) *cobra.Command {
	var from string
	var wait bool
	c := &cobra.Command{
		Use:   "arbitrate --from <account> <contract id> <update height> [--wait]",
		Short: "Dispute a contract's state update on chain: arbiters recompute it, a liar is slashed",
		Long: `arbitrate disputes the state update of <contract id> cut at <update height>
(the checkpoint height ` + "`phala contract show`" + ` and ` + "`phala contract checkpoints`" + ` print).
--from signs and pays the fee; it posts the bond unless it is the contract's
deployer. It prints whether a bond was posted and how to follow the dispute;
with --wait it waits (up to --timeout: give a dispute that may expire that
long) for the verdict and prints it.

` + arbitrationHelp,
		Example: `  phala contract arbitrate --from //Alice 0x1ee8... 1042
  phala contract arbitrate --from //Bob --wait --timeout 5m 0x1ee8... 1042`,
		Args: exactArgs(2, "a contract id and an update height"),
		RunE: func(cmd *cobra.Command, args []string) error {
			contract, err := parseContractID(args[0])
			if err != nil {
				return err
			}
			height, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || height <= 0 {
				return fmt.Errorf("update height %q: want a positive block height (the checkpoint height `phala contract show` prints)", args[1])
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
			res, err := cl.NewSigner(key).Submit(ctx, &api.ArbitrationRequest{Contract: contract, Height: height})
			if err != nil {
				return g.submitError(err, res, "arbitration request", ", no bond was taken")
			}
			// The dispute as the request's block left it (a verdict may
			// close it soon after).
			a, err := cl.ArbitrationAt(ctx, contract, res.Height)
			if err == nil && (a == nil || a.Height != height || a.Opened != res.Height) {
				err = fmt.Errorf("the chain holds no dispute of that update after block %d", res.Height)
			}
			if err != nil {
				return fmt.Errorf("arbitration request committed at height %d (tx %X); reading the dispute: %w", res.Height, res.Hash, g.nodeError(err))
			}
			out := map[string]any{"contract": contract.Hex(), "tx": fmt.Sprintf("%X", res.Hash), "arbitration": arbitrationJSON(a)}
			human := func(w io.Writer) {
				fmt.Fprintf(w, "dispute of contract %s's state update at height %d opened at block %d (tx %X)\n", contract.Hex(), height, res.Height, res.Hash)
				if a.Bond == 0 {
					fmt.Fprintln(w, "bond: none (you are the contract's deployer)")
				} else {
					fmt.Fprintf(w, "bond: %s posted, held by the chain: paid to the arbiters if they uphold the update, returned otherwise\n", api.FormatAmountUnits(a.Bond))
				}
				p := cl.Params()
				fmt.Fprintf(w, "a gatekeeper assigns up to %d arbiter(s), which recompute the update and vote; without a verdict within %d blocks the dispute expires\n", p.Arbiters, p.ArbitrationTimeout)
				if !wait {
					fmt.Fprintf(w, "follow it: `phala contract arbitration %s` (or arbitrate with --wait)\n", contract.Hex())
				}
			}
			if !wait {
				return g.output(cmd, out, human)
			}
			if !g.json {
				human(cmd.OutOrStdout())
			}
			v, vh, err := cl.WaitVerdict(ctx, contract, height, res.Height)
			if err != nil {
				return fmt.Errorf("the dispute is open (block %d); waiting for its verdict: %w\nfollow it with `phala contract arbitration %s`", res.Height, g.nodeError(err), contract.Hex())
			}
			out["verdict"] = verdictJSON(v, vh)
			if g.json {
				return g.output(cmd, out, nil)
			}
			printVerdict(cmd.OutOrStdout(), v, vh)
			return nil
		},
	}
	c.Flags().StringVar(&from, "from", "", "secret URI of the requester (pays the fee and, unless the contract's deployer, the bond), or - for stdin")
	c.Flags().BoolVar(&wait, "wait", false, "wait for the verdict (up to --timeout) and print it")
	return c
}

// contractArbitrationCmd shows a contract's open dispute.
func contractArbitrationCmd(g *globals) *cobra.Command {
	var at int64
	c := &cobra.Command{
		Use:   "arbitration <contract id>",
		Short: "Show a contract's open state update dispute (proved), or that none is open",
		Long: `arbitration reads the contract's open dispute from the chain (proved): the
disputed update (height, root), the checkpoint the arbiters recompute it from,
who asked and the bond posted, the block that opened it, the arbiters
assigned, their votes so far (read from the verified queue since the
opening) and the verdict deadline. --height N shows it as of block N (a dispute
closed since). Open one with ` + "`phala contract arbitrate`" + `.

` + arbitrationHelp,
		Example: `  phala contract arbitration 0x1ee8...
  phala contract arbitration --height 1050 0x1ee8... --json`,
		Args: exactArgs(1, "a contract id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if at < 0 {
				return fmt.Errorf("--height %d: give a positive block height (0: the latest)", at)
			}
			ctx, cancel := g.withTimeout(cmd)
			defer cancel()
			cl, rec, err := g.contract(cmd, ctx, args[0])
			if err != nil {
				return err
			}
			var a *api.Arbitration
			h := at
			if at > 0 {
				a, err = cl.ArbitrationAt(ctx, rec.Identity, at)
			} else {
				a, h, err = cl.Arbitration(ctx, rec.Identity)
			}
			if err != nil {
				return g.nodeError(err)
			}
			out := map[string]any{"contract": rec.Identity.Hex(), "proved_at": h, "open": a != nil}
			var votes []client.ArbiterVote
			if a != nil {
				if votes, err = cl.ArbiterVotes(ctx, rec.Identity, a, h); err != nil {
					return g.nodeError(err)
				}
				j := arbitrationJSON(a)
				j["expires_after"] = a.Opened + int64(cl.Params().ArbitrationTimeout) + 1
				vj := []map[string]any{}
				for _, v := range votes {
					vj = append(vj, map[string]any{"arbiter": v.Arbiter.Hex(), "root": hex.EncodeToString(v.Root[:]), "block": v.Block, "confirms": v.Root == a.Root})
				}
				j["votes"] = vj
				out["arbitration"] = j
			}
			return g.output(cmd, out, func(w io.Writer) {
				if a == nil {
					fmt.Fprintf(w, "contract %s: no open dispute (as of block %d)\n", rec.Identity.Hex(), h)
					return
				}
				fmt.Fprintf(w, "Dispute of contract %s (proved at block %d)\n", rec.Identity.Hex(), h)
				fmt.Fprintf(w, "  update:     height %d, root %x\n", a.Height, a.Root)
				fmt.Fprintf(w, "  recomputed from: checkpoint at height %d (root %x; entries as of block %d)\n", a.PrevHeight, a.PrevRoot, a.EntriesHeight)
				fmt.Fprintf(w, "  requester:  %s\n", a.Requester.Address())
				if a.Bond == 0 {
					fmt.Fprintln(w, "  bond:       none (the deployer asked)")
				} else {
					fmt.Fprintf(w, "  bond:       %s\n", api.FormatAmountUnits(a.Bond))
				}
				fmt.Fprintf(w, "  opened:     block %d; expires without a verdict after block %d\n", a.Opened, a.Opened+int64(cl.Params().ArbitrationTimeout)+1)
				if len(a.Arbiters) == 0 {
					fmt.Fprintln(w, "  arbiters:   none assigned yet (a gatekeeper assigns eligible workers that do not run the contract)")
				}
				for _, ar := range a.Arbiters {
					fmt.Fprintf(w, "  arbiter:    %s\n", ar.Hex())
				}
				if len(a.Arbiters) > 0 {
					fmt.Fprintf(w, "  votes:      %d of %d (a majority of %d decides)\n", len(votes), len(a.Arbiters), len(a.Arbiters)/2+1)
				}
				for _, v := range votes {
					verb := "confirms the update"
					if v.Root != a.Root {
						verb = fmt.Sprintf("computed another root %x", v.Root)
					}
					fmt.Fprintf(w, "  vote:       %s at block %d %s\n", v.Arbiter.Hex(), v.Block, verb)
				}
			})
		},
	}
	c.Flags().Int64Var(&at, "height", 0, "show the dispute as of this block (0: the latest)")
	return c
}

func arbitrationJSON(a *api.Arbitration) map[string]any {
	ars := []string{}
	for _, k := range a.Arbiters {
		ars = append(ars, k.Hex())
	}
	return map[string]any{"height": a.Height, "root": hex.EncodeToString(a.Root[:]), "prev_height": a.PrevHeight,
		"prev_root": hex.EncodeToString(a.PrevRoot[:]), "entries_height": a.EntriesHeight, "requester": a.Requester.Address(),
		"bond": strconv.FormatUint(a.Bond, 10), "bond_pha": api.FormatAmount(a.Bond), "opened": a.Opened, "arbiters": ars}
}

// outcomeName names an api.ArbitrationVerdict outcome.
func outcomeName(o uint8) string {
	switch o {
	case api.ArbitrationUpheld:
		return "upheld"
	case api.ArbitrationOverturned:
		return "overturned"
	case api.ArbitrationExpired:
		return "expired"
	}
	return fmt.Sprintf("outcome %d", o)
}

func verdictJSON(v *api.ArbitrationVerdict, block int64) map[string]any {
	sl := []string{}
	for _, k := range v.Slashed {
		sl = append(sl, k.Hex())
	}
	return map[string]any{"block": block, "outcome": outcomeName(v.Outcome), "root": hex.EncodeToString(v.Root[:]), "slashed": sl,
		"checkpoint_height": v.RollbackHeight, "checkpoint_root": hex.EncodeToString(v.RollbackRoot[:])}
}

func printVerdict(w io.Writer, v *api.ArbitrationVerdict, block int64) {
	fmt.Fprintf(w, "verdict at block %d: %s\n", block, outcomeName(v.Outcome))
	switch v.Outcome {
	case api.ArbitrationUpheld:
		fmt.Fprintf(w, "the arbiters computed the disputed root %x: the update stands (a bond, if any, went to them)\n", v.Root)
	case api.ArbitrationOverturned:
		fmt.Fprintf(w, "the arbiters computed root %x: the chain rolled the contract back to its checkpoint at height %d (root %x); the bond, if any, was returned\n", v.Root, v.RollbackHeight, v.RollbackRoot)
	case api.ArbitrationExpired:
		fmt.Fprintln(w, "no majority of arbiters voted in time: nothing changed; the bond, if any, was returned")
	}
	for _, k := range v.Slashed {
		fmt.Fprintf(w, "slashed:    %s (vouched for another root; removed from the contract)\n", k.Hex())
	}
}
