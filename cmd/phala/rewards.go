package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// rewardsCmd shows what an account earned from the era rewards.
func rewardsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rewards <account>",
		Short: "Show the era rewards an account received as a staker or operator (proved)",
		Long: `rewards reads an account's reward log, proved against a verified header:
the lifetime total it received from era rewards and its latest rewards
(the era, the node whose reward it shared, the amount). At the end of each
era the chain mints the era's inflation and pays it to the responsive
workers (by their activity) and gatekeepers; each node's reward goes to the
accounts staking on it in proportion to their stake, the rounding remainder
to its operator (docs/economy.md). The log keeps the latest 32 rewards.`,
		Example: `  phala rewards //Alice
  phala rewards 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY --json`,
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
			l, h, err := c.Rewards(ctx, pk)
			if err != nil {
				return g.nodeError(err)
			}
			sched, _, err := c.EraSchedule(ctx)
			if err != nil {
				return g.nodeError(err)
			}
			type entry struct {
				Era       uint64 `json:"era"`
				Height    int64  `json:"height"`
				Node      string `json:"node"`
				Amount    string `json:"amount"`
				AmountPHA string `json:"amount_pha"`
			}
			out := struct {
				Account  string  `json:"account"`
				Total    string  `json:"total"`
				TotalPHA string  `json:"total_pha"`
				Latest   []entry `json:"latest"`
				Height   int64   `json:"height"`
			}{Account: pk.Address(), Total: fmt.Sprint(l.Total), TotalPHA: formatAmount(l.Total), Height: h, Latest: []entry{}}
			for _, e := range l.Entries {
				out.Latest = append(out.Latest, entry{Era: sched.EraOf(e.Height), Height: e.Height, Node: e.Node.Hex(), Amount: fmt.Sprint(e.Amount), AmountPHA: formatAmount(e.Amount)})
			}
			return g.output(cmd, out, func(w io.Writer) {
				fmt.Fprintf(w, "Rewards of %s: %s in total\n", out.Account, pha(l.Total))
				if len(l.Entries) == 0 {
					fmt.Fprintln(w, "  none yet (rewards are paid at the end of each era to the stakers of responsive nodes)")
				}
				for i := len(out.Latest) - 1; i >= 0; i-- {
					e := out.Latest[i]
					fmt.Fprintf(w, "  era %d (block %d): %s from node %s\n", e.Era, e.Height, pha(l.Entries[i].Amount), e.Node)
				}
				fmt.Fprintf(w, "  (proved at height %d of %s)\n", h, c.ChainID())
			})
		},
	}
}
