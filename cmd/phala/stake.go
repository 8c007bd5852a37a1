package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
)

// Commands of staking: bond, allocate, unbond, withdraw, nominate, show,
// node (docs/economy.md "Nodes and their stake").

func stakeCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "stake",
		Short: "Bond PHA, back workers and gatekeepers with it, unbond it",
		Long: `stake works with the chain's staking. An account bonds PHA (balance ->
bonded), allocates bonded stake to a node (a registered worker or gatekeeper
pRuntime, by identity: ` + "`phala workers`" + `), nominates gatekeeper candidates with
its unallocated bonded stake, and unbonds stake: it comes back to the
balance with withdraw after the chain's unbonding_period (blocks, see
` + "`phala status`" + `). Unbonding stake stays exposed to slashes of the node it
backed.

A worker is assigned contracts only while its stake (the sum of the
allocations to it) is at least min_worker_stake; its operator's pherry can
stake it (pherry --stake). Rewards of a node are paid to its stakers in
proportion to their allocations, the remainder to its operator.

Amounts are PHA, decimals allowed (at most 12). Reads are proved.`,
	}
	c.AddCommand(stakeBondCmd(g), stakeAllocateCmd(g), stakeUnbondCmd(g), stakeWithdrawCmd(g), stakeNominateCmd(g), stakeShowCmd(g), stakeNodeCmd(g))
	return c
}

// parseNode reads a node identity (SS58 or 0x-hex, as `phala workers`
// prints it).
func parseNode(flag, s string) (crypto.PublicKey, error) {
	pk, err := crypto.ParsePublicKey(s)
	if err != nil {
		return pk, fmt.Errorf("%s %q is not a node identity: give the 0x-hex identity `phala workers` lists", flag, s)
	}
	return pk, nil
}

// positive parses a --amount of PHA that must not be zero.
func positive(amount string) (uint64, error) {
	units, err := parseAmount(amount)
	if err != nil {
		return 0, fmt.Errorf("--amount: %w", err)
	}
	if units == 0 {
		return 0, errors.New("--amount: the chain refuses 0 PHA; give a positive amount")
	}
	return units, nil
}

// submitError explains a transaction that did not succeed: refused by
// the node (nothing happened), failed in a block (the fee was paid, and
// afterFee says what else did not happen), or of unknown outcome (check
// it before sending again). what names the action ("reassign").
func (g *globals) submitError(err error, res *client.TxResult, what, afterFee string) error {
	var refused *api.TxError
	var unknown *client.UnknownOutcomeError
	switch {
	case errors.As(err, &unknown):
		return g.nodeError(err)
	case errors.As(err, &refused) && res != nil:
		return fmt.Errorf("%s failed in block %d (%s): %s; the fee was paid%s", what, res.Height, refused.Code, refused.Log, afterFee)
	case errors.As(err, &refused):
		return fmt.Errorf("%s: refused by the node, nothing changed (%s): %s", what, refused.Code, refused.Log)
	}
	return fmt.Errorf("%s: %w", what, g.nodeError(err))
}

// stakeSubmit signs call with --from, submits it, waits for it, and
// prints the result and the signer's ledger afterwards.
func stakeSubmit(cmd *cobra.Command, g *globals, from string, call api.Call, what string) error {
	key, err := signerKey(cmd, from)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	ctx, c, cancel, err := g.connect(cmd)
	if err != nil {
		return err
	}
	defer cancel()
	res, err := c.NewSigner(key).Submit(ctx, call)
	if err != nil {
		return g.submitError(err, res, what, "")
	}
	l, h, err := c.StakeLedger(ctx, key.Public())
	if err != nil {
		return g.nodeError(err)
	}
	out := stakeTxJSON{Hash: fmt.Sprintf("%X", res.Hash), Height: res.Height, Call: call.Kind().String(), Ledger: newLedgerJSON(key.Public(), l, h)}
	return g.output(cmd, out, func(w io.Writer) {
		fmt.Fprintf(w, "%s: committed at height %d (tx %s)\n", what, res.Height, out.Hash)
		printLedger(w, &out.Ledger)
	})
}

type stakeTxJSON struct {
	Hash   string     `json:"hash"`
	Height int64      `json:"height"`
	Call   string     `json:"call"`
	Ledger ledgerJSON `json:"ledger"`
}

func stakeBondCmd(g *globals) *cobra.Command {
	var from, amount string
	c := &cobra.Command{
		Use:   "bond --from <secret-uri> --amount <PHA>",
		Short: "Bond PHA from the balance",
		Long:  `bond moves --amount PHA of --from's balance to its bonded stake (the fee is paid from the balance too).`,
		Example: `  phala stake bond --from //Charlie --amount 100
  phala stake bond --from - --amount 2.5 --json < my-secret.txt`,
		Args: exactArgs(0, "no arguments (use --from and --amount)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			units, err := positive(amount)
			if err != nil {
				return err
			}
			return stakeSubmit(cmd, g, from, &api.StakeBond{Amount: units}, "bond "+pha(units))
		},
	}
	c.Flags().StringVar(&from, "from", "", "secret URI of the staking account (pays the fee), or - for stdin")
	c.Flags().StringVar(&amount, "amount", "", "PHA to bond, decimals allowed")
	return c
}

func stakeAllocateCmd(g *globals) *cobra.Command {
	var from, amount string
	c := &cobra.Command{
		Use:   "allocate --from <secret-uri> <identity> --amount <PHA>",
		Short: "Back a worker or gatekeeper with bonded stake",
		Long: `allocate moves --amount PHA of --from's bonded (unallocated) stake to an
allocation backing the node <identity>, a registered pRuntime (0x-hex, as
` + "`phala workers`" + ` lists it). Bond first.`,
		Example: `  phala stake allocate --from //Charlie 0x8eaf...26a48 --amount 100`,
		Args:    exactArgs(1, "the identity of the node to back"),
		RunE: func(cmd *cobra.Command, args []string) error {
			units, err := positive(amount)
			if err != nil {
				return err
			}
			n, err := parseNode("identity", args[0])
			if err != nil {
				return err
			}
			return stakeSubmit(cmd, g, from, &api.StakeAllocate{Node: n, Amount: units}, fmt.Sprintf("allocate %s to %s", pha(units), n.Hex()))
		},
	}
	c.Flags().StringVar(&from, "from", "", "secret URI of the staking account (pays the fee), or - for stdin")
	c.Flags().StringVar(&amount, "amount", "", "PHA to allocate, decimals allowed")
	return c
}

func stakeUnbondCmd(g *globals) *cobra.Command {
	var from, amount string
	c := &cobra.Command{
		Use:   "unbond --from <secret-uri> [<identity>] --amount <PHA>",
		Short: "Start unbonding stake (withdraw it after the unbonding period)",
		Long: `unbond moves --amount PHA of --from's allocation to the node <identity>
(without one: of its unallocated bonded stake) to an unlocking entry; withdraw returns it
to the balance once the chain's unbonding_period (blocks) has passed.
Slashes of the node still apply to it until then.`,
		Example: `  phala stake unbond --from //Charlie 0x8eaf...26a48 --amount 50
  phala stake unbond --from //Charlie --amount 10`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			units, err := positive(amount)
			if err != nil {
				return err
			}
			var n crypto.PublicKey
			what := "unbond " + pha(units) + " of bonded stake"
			if len(args) == 1 {
				if n, err = parseNode("identity", args[0]); err != nil {
					return err
				}
				what = fmt.Sprintf("unbond %s from %s", pha(units), n.Hex())
			}
			return stakeSubmit(cmd, g, from, &api.StakeUnbond{Node: n, Amount: units}, what)
		},
	}
	c.Flags().StringVar(&from, "from", "", "secret URI of the staking account (pays the fee), or - for stdin")
	c.Flags().StringVar(&amount, "amount", "", "PHA to unbond, decimals allowed")
	return c
}

func stakeWithdrawCmd(g *globals) *cobra.Command {
	var from string
	c := &cobra.Command{
		Use:   "withdraw --from <secret-uri>",
		Short: "Move unlocked stake back to the balance",
		Long: `withdraw moves every unlocking entry of --from whose unbonding period is over
to its balance. ` + "`phala stake show`" + ` says when each entry unlocks.`,
		Example: `  phala stake withdraw --from //Charlie`,
		Args:    exactArgs(0, "no arguments (use --from)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return stakeSubmit(cmd, g, from, &api.StakeWithdraw{}, "withdraw unlocked stake")
		},
	}
	c.Flags().StringVar(&from, "from", "", "secret URI of the staking account (pays the fee), or - for stdin")
	return c
}

func stakeNominateCmd(g *globals) *cobra.Command {
	var from string
	var clear bool
	c := &cobra.Command{
		Use:   "nominate --from <secret-uri> <candidate>... | --clear",
		Short: "Vote for gatekeeper candidates with unallocated bonded stake",
		Long: fmt.Sprintf(`nominate replaces --from's nominations with the given gatekeeper candidates
(pRuntime identities, at most %d); --clear removes them. The gatekeeper
election at each era's end weighs each nominator by its bonded
(unallocated) stake.`, api.MaxNominations),
		Example: `  phala stake nominate --from //Dave 0x8eaf...26a48 0x90b5...fe22
  phala stake nominate --from //Dave --clear`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case clear && len(args) > 0:
				return errors.New("give candidates or --clear, not both")
			case !clear && len(args) == 0:
				return errors.New("name at least one candidate (or --clear to remove the nominations)")
			case len(args) > api.MaxNominations:
				return fmt.Errorf("%d candidates: at most %d", len(args), api.MaxNominations)
			}
			var targets []crypto.PublicKey
			for _, a := range args {
				n, err := parseNode("candidate", a)
				if err != nil {
					return err
				}
				targets = append(targets, n)
			}
			what := fmt.Sprintf("nominate %d candidate(s)", len(targets))
			if clear {
				what = "clear the nominations"
			}
			return stakeSubmit(cmd, g, from, &api.StakeNominate{Targets: targets}, what)
		},
	}
	c.Flags().StringVar(&from, "from", "", "secret URI of the nominating account (pays the fee), or - for stdin")
	c.Flags().BoolVar(&clear, "clear", false, "remove every nomination")
	return c
}

func stakeShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show <account>",
		Short: "Show an account's stake (proved)",
		Long: `show prints an account's staking ledger, read with a proof: bonded
(unallocated) stake, its allocations to nodes (with each node's total and
whether it reaches min_worker_stake), its nominations, and its unlocking
entries with the height from which withdraw returns them.`,
		Example: `  phala stake show //Charlie
  phala stake show 5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y --json`,
		Args: exactArgs(1, "one account"),
		RunE: func(cmd *cobra.Command, args []string) error {
			pk, err := parseAccount("account", args[0])
			if err != nil {
				return err
			}
			ctx, c, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			l, h, err := c.StakeLedger(ctx, pk)
			if err != nil {
				return g.nodeError(err)
			}
			out := newLedgerJSON(pk, l, h)
			for i, a := range l.Allocations {
				n, _, err := c.NodeStake(ctx, a.Node)
				if err != nil {
					return g.nodeError(err)
				}
				out.Allocations[i].NodeTotal, out.Allocations[i].NodeTotalPHA = fmt.Sprint(n.Total), formatAmount(n.Total)
				out.Allocations[i].Assignable = n.Total >= c.Params().MinWorkerStake
			}
			return g.output(cmd, out, func(w io.Writer) { printLedger(w, &out) })
		},
	}
}

func stakeNodeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "node <identity>",
		Short: "Show a node's stake and its stakers",
		Long: `node prints a worker's or gatekeeper's total stake (proved), whether it
reaches min_worker_stake (a worker below it is assigned no contract), and
the accounts backing it (a listing from the node).`,
		Example: `  phala stake node 0x8eaf...26a48`,
		Args:    exactArgs(1, "one node identity"),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseNode("identity", args[0])
			if err != nil {
				return err
			}
			ctx, c, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			ns, h, err := c.NodeStake(ctx, n)
			if err != nil {
				return g.nodeError(err)
			}
			list, err := c.NodeStakers(ctx, n)
			if err != nil {
				return g.nodeError(err)
			}
			min := c.Params().MinWorkerStake
			out := nodeStakeJSON{Node: n.Hex(), Total: fmt.Sprint(ns.Total), TotalPHA: formatAmount(ns.Total), Stakers: ns.Stakers,
				MinWorkerStakePHA: formatAmount(min), Assignable: ns.Total >= min, Height: h}
			for _, s := range list {
				out.List = append(out.List, stakerJSON{Account: s.Account.Address(), Amount: fmt.Sprint(s.Amount), AmountPHA: formatAmount(s.Amount)})
			}
			return g.output(cmd, out, func(w io.Writer) {
				fmt.Fprintf(w, "Node %s\n", out.Node)
				verdict := "reaches"
				if !out.Assignable {
					verdict = "is below"
				}
				fmt.Fprintf(w, "  stake:   %s from %d staker(s); %s min_worker_stake %s\n", pha(ns.Total), ns.Stakers, verdict, pha(min))
				for _, s := range list {
					fmt.Fprintf(w, "    %s  %s\n", s.Account.Address(), pha(s.Amount))
				}
				fmt.Fprintf(w, "  (proved at height %d)\n", h)
			})
		},
	}
}

type nodeStakeJSON struct {
	Node              string       `json:"node"`
	Total             string       `json:"total"` // units
	TotalPHA          string       `json:"total_pha"`
	Stakers           uint64       `json:"stakers"`
	MinWorkerStakePHA string       `json:"min_worker_stake_pha"`
	Assignable        bool         `json:"assignable"` // total ≥ min_worker_stake
	List              []stakerJSON `json:"staker_list"`
	Height            int64        `json:"height"`
}

type stakerJSON struct {
	Account   string `json:"account"`
	Amount    string `json:"amount"` // units
	AmountPHA string `json:"amount_pha"`
}

type ledgerJSON struct {
	Account     string           `json:"account"`
	Bonded      string           `json:"bonded"` // units, unallocated
	BondedPHA   string           `json:"bonded_pha"`
	Allocations []allocationJSON `json:"allocations"`
	Nominations []string         `json:"nominations"`
	Unlocking   []unlockingJSON  `json:"unlocking"`
	Total       string           `json:"total"` // units: bonded + allocations + unlocking
	TotalPHA    string           `json:"total_pha"`
	Height      int64            `json:"height"`
}

type allocationJSON struct {
	Node         string `json:"node"`
	Amount       string `json:"amount"` // units
	AmountPHA    string `json:"amount_pha"`
	NodeTotal    string `json:"node_total,omitempty"` // units (show only)
	NodeTotalPHA string `json:"node_total_pha,omitempty"`
	Assignable   bool   `json:"node_assignable,omitempty"` // node total ≥ min_worker_stake (show only)
}

type unlockingJSON struct {
	Amount    string `json:"amount"` // units
	AmountPHA string `json:"amount_pha"`
	Until     int64  `json:"until"`          // withdrawable from this height
	Node      string `json:"node,omitempty"` // the node it backed
	Unlocked  bool   `json:"unlocked"`       // withdrawable at the proved height
}

func newLedgerJSON(pk crypto.PublicKey, l *api.StakeLedger, h int64) ledgerJSON {
	out := ledgerJSON{Account: pk.Address(), Bonded: fmt.Sprint(l.Bonded), BondedPHA: formatAmount(l.Bonded),
		Allocations: []allocationJSON{}, Nominations: []string{}, Unlocking: []unlockingJSON{},
		Total: fmt.Sprint(l.Total()), TotalPHA: formatAmount(l.Total()), Height: h}
	for _, a := range l.Allocations {
		out.Allocations = append(out.Allocations, allocationJSON{Node: a.Node.Hex(), Amount: fmt.Sprint(a.Amount), AmountPHA: formatAmount(a.Amount)})
	}
	for _, n := range l.Nominations {
		out.Nominations = append(out.Nominations, n.Hex())
	}
	for _, u := range l.Unlocking {
		j := unlockingJSON{Amount: fmt.Sprint(u.Amount), AmountPHA: formatAmount(u.Amount), Until: u.Until, Unlocked: u.Until <= h+1}
		if u.Node != (crypto.PublicKey{}) {
			j.Node = u.Node.Hex()
		}
		out.Unlocking = append(out.Unlocking, j)
	}
	return out
}

func printLedger(w io.Writer, l *ledgerJSON) {
	fmt.Fprintf(w, "Stake of %s: %s PHA in all\n", l.Account, l.TotalPHA)
	fmt.Fprintf(w, "  bonded:      %s PHA (unallocated)\n", l.BondedPHA)
	for _, a := range l.Allocations {
		line := fmt.Sprintf("  allocated:   %s PHA to %s", a.AmountPHA, a.Node)
		if a.NodeTotalPHA != "" {
			state := "assignable"
			if !a.Assignable {
				state = "below min_worker_stake"
			}
			line += fmt.Sprintf(" (node total %s PHA, %s)", a.NodeTotalPHA, state)
		}
		fmt.Fprintln(w, line)
	}
	for _, n := range l.Nominations {
		fmt.Fprintf(w, "  nominates:   %s\n", n)
	}
	for _, u := range l.Unlocking {
		from := "bonded stake"
		if u.Node != "" {
			from = u.Node
		}
		state := fmt.Sprintf("withdrawable from height %d", u.Until)
		if u.Unlocked {
			state = "unlocked: withdraw it"
		}
		fmt.Fprintf(w, "  unbonding:   %s PHA from %s, %s\n", u.AmountPHA, from, state)
	}
	fmt.Fprintf(w, "  (proved at height %d)\n", l.Height)
}
