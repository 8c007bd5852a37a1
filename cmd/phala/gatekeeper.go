package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
)

// Commands of the gatekeeper election: declaring candidates, and the era
// with its elected set.

func gatekeeperCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "gatekeeper",
		Short: "Gatekeeper candidacy for the per-era election",
		Long: `gatekeeper works with the gatekeeper election: at the last block of each era
the chain elects n_gatekeepers gatekeepers for the next era among the
declared candidates (registered and attested nodes with at least
min_gatekeeper_stake) by sequential Phragmén over their stake and the
nominations. ` + "`phala era`" + ` shows an era's elected set.`,
	}
	c.AddCommand(candidacyCmd(g))
	return c
}

func candidacyCmd(g *globals) *cobra.Command {
	var from string
	var off bool
	c := &cobra.Command{
		Use:   "candidacy --from <operator> <node> [--off]",
		Short: "Declare a node a gatekeeper candidate (or withdraw it with --off)",
		Long: `candidacy declares the node (its pRuntime identity key, SS58 or 0x-hex) a
gatekeeper candidate. --from must be the node's operator (the account that
registered it), and the node must be registered and attested. With --off
it withdraws the candidacy (an expired node's operator may still do so).
The candidate stands at every era end while its stake reaches
min_gatekeeper_stake.`,
		Example: `  phala gatekeeper candidacy --from //Charlie 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY
  phala gatekeeper candidacy --from //Charlie 0xd435...a27d --off --json`,
		Args: exactArgs(1, "the node's identity key"),
		RunE: func(cmd *cobra.Command, args []string) error {
			node, err := parseAccount("node", args[0])
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
			res, err := cl.NewSigner(key).DeclareCandidacy(ctx, node, !off)
			if err != nil {
				return fmt.Errorf("candidacy of %s: %w", node, err)
			}
			cd, err := cl.Candidacy(ctx, node)
			if err != nil {
				return g.nodeError(err)
			}
			out := candidacyJSON{Node: node.Address(), NodeHex: node.Hex(), Candidate: cd != nil, Height: res.Height, Hash: fmt.Sprintf("%X", res.Hash)}
			if cd != nil {
				out.Operator, out.Since = cd.Operator.Address(), cd.Since
			}
			return g.output(cmd, out, func(w io.Writer) {
				if out.Candidate {
					fmt.Fprintf(w, "%s is a gatekeeper candidate since height %d (operator %s; tx %s)\n", out.Node, out.Since, out.Operator, out.Hash)
				} else {
					fmt.Fprintf(w, "%s is no longer a gatekeeper candidate (height %d, tx %s)\n", out.Node, out.Height, out.Hash)
				}
			})
		},
	}
	c.Flags().StringVar(&from, "from", "", "secret URI of the node's operator (pays the fee), or - for stdin")
	c.Flags().BoolVar(&off, "off", false, "withdraw the candidacy")
	return c
}

type candidacyJSON struct {
	Node      string `json:"node"`
	NodeHex   string `json:"node_hex"`
	Candidate bool   `json:"candidate"`
	Operator  string `json:"operator,omitempty"`
	Since     int64  `json:"since,omitempty"`
	Height    int64  `json:"height"`
	Hash      string `json:"hash"`
}

func eraCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "era [N]",
		Short: "Show an era: its heights, the gatekeepers elected for it, the nodes' activity, who was slashed and rewarded (proved)",
		Long: `era shows era N (default: the current one): its heights (era e covers
heights [1+e·L, (e+1)·L] with L = era_length), the gatekeepers serving now,
the declared candidates, and the set elected for era N at the last block
of era N-1 (or early, during era N-1, when a third of the serving set was
down, or on a governance motion: it then serves from its adoption on): its members in election order with their backing (own stake
and each nominator's exposure), whose DKG result was adopted (the set's confirmed members), and
its status (pending: its DKG runs, see phala keys status; active: its key
set was adopted and it became the gatekeeper list; expired: its DKG failed
or did not finish within an era). An era that has
not started is refused, unless its set is elected already (the era after
the current one, from the current era's last block or its early election). For the current era
it lists each registered node's activity so far (heartbeat challenges
issued and answered, accepted messages); for an ended era, the chain's
report: each node's activity, whether the 1/4 rule found it unresponsive,
what it was slashed and rewarded. Every read is proved against a signed
header (the node listing itself is not: each node's counters are).`,
		Example: `  phala era
  phala era 3 --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cl, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			latest, err := cl.Height(ctx)
			if err != nil {
				return g.nodeError(err)
			}
			// Eras by the chain's schedule: a change of era_length
			// applies from the next era boundary, past eras keep their
			// heights.
			sched, _, err := cl.EraSchedule(ctx)
			if err != nil {
				return g.nodeError(err)
			}
			current := sched.EraOf(latest)
			era := current
			if len(args) == 1 {
				if era, err = strconv.ParseUint(args[0], 10, 64); err != nil || era > 1<<40 {
					return fmt.Errorf("era %q is not an era number (the current era is %d)", args[0], current)
				}
			}
			p := cl.Params()
			if era > current && p.EraLength != sched.Current().Length {
				// A change of era_length waits for the next era boundary:
				// eras after the current one have the new length.
				proj := sched.Clone()
				if proj.Change(sched.End(current)+1, p.EraLength) == nil {
					sched = proj
				}
			}
			out := eraJSON{Era: era, Current: current, FirstHeight: uint64(sched.Start(era)), LastHeight: uint64(sched.End(era)), LatestHeight: latest,
				Seats: p.NGatekeepers, MinStake: strconv.FormatUint(p.MinGatekeeperStake, 10), MinStakePHA: formatAmount(p.MinGatekeeperStake),
				Gatekeepers: []keyJSON{}, Candidates: []candidateJSON{}}
			serving, err := cl.Gatekeepers(ctx)
			if err != nil {
				return g.nodeError(err)
			}
			for _, k := range serving {
				out.Gatekeepers = append(out.Gatekeepers, keyJSON{Address: k.Address(), PublicKey: k.Hex()})
			}
			cands, err := cl.GatekeeperCandidates(ctx)
			if err != nil {
				return g.nodeError(err)
			}
			mig, _, _, err := cl.Migrations(ctx, 0)
			if err != nil {
				return g.nodeError(err)
			}
			att, err := cl.AttestationSettings(ctx)
			if err != nil {
				return g.nodeError(err)
			}
			for _, k := range cands {
				why, err := candidateBar(ctx, cl, k, att, mig)
				if err != nil {
					return g.nodeError(err)
				}
				out.Candidates = append(out.Candidates, candidateJSON{Address: k.Address(), PublicKey: k.Hex(), NotEligible: why})
			}
			if mig != nil {
				out.Migration = &migrationJSON{Target: "0x" + hex.EncodeToString(mig.Target), Old: measurementsHex(mig.From), Start: mig.Start,
					Checked: mig.Checked, OldContracts: ptr(mig.OldContracts), OldKeyHolders: ptr(mig.OldKeyHolders)}
			}
			rec, _, err := cl.Election(ctx, era)
			if err != nil {
				return g.nodeError(err)
			}
			if era > current && rec == nil {
				// Only the era after the current one can have a set
				// (elected at the current era's last block): show it then.
				return fmt.Errorf("era %d has not started; the current era is %d (heights %d to %d, latest block %d)", era, current, sched.Start(current), sched.End(current), latest)
			}
			if rec != nil {
				el := &electionJSON{ElectedAt: rec.Height, Early: era > 0 && rec.Height < sched.Start(era)-1,
					Status: rec.Status.String(), StatusHeight: rec.StatusHeight, Members: []memberJSON{}}
				for i, m := range rec.Members {
					mj := memberJSON{Address: m.Address(), PublicKey: m.Hex(), Confirmed: slices.Contains(rec.Confirmed, m),
						Total: strconv.FormatUint(rec.Backing[i].Total, 10), Own: strconv.FormatUint(rec.Backing[i].Own, 10),
						TotalPHA: formatAmount(rec.Backing[i].Total), OwnPHA: formatAmount(rec.Backing[i].Own), Nominators: []backerJSON{}}
					x, err := cl.Exposure(ctx, era, m)
					if err != nil {
						return g.nodeError(err)
					}
					if x != nil {
						for _, o := range x.Others {
							mj.Nominators = append(mj.Nominators, backerJSON{Account: o.Who.Address(), Amount: strconv.FormatUint(o.Amount, 10), AmountPHA: formatAmount(o.Amount)})
						}
					}
					el.Members = append(el.Members, mj)
					if mj.Confirmed {
						el.Confirmed++
					}
				}
				out.Elected = el
			}
			if era <= current {
				if out.Responsiveness, err = responsiveness(ctx, cl, era, serving); err != nil {
					return g.nodeError(err)
				}
			}
			return g.output(cmd, out, func(w io.Writer) { printEra(w, cl.ChainID(), &out) })
		},
	}
}

func printEra(w io.Writer, chainID string, e *eraJSON) {
	state := "current"
	switch {
	case e.Era < e.Current:
		state = "past"
	case e.Era > e.Current:
		state = "future"
	}
	fmt.Fprintf(w, "Era %d of %s (%s): heights %d to %d (latest block %d, era %d)\n", e.Era, chainID, state, e.FirstHeight, e.LastHeight, e.LatestHeight, e.Current)
	fmt.Fprintf(w, "Election: %d seats at each era end, candidates need %s PHA of stake\n", e.Seats, e.MinStakePHA)
	if m := e.Migration; m != nil {
		fmt.Fprintf(w, "  a runtime migration to build %s runs since height %d: only candidates running that build are eligible (see phala keys status)\n", m.Target, m.Start)
	}
	fmt.Fprintf(w, "Gatekeepers serving now: %d\n", len(e.Gatekeepers))
	for _, k := range e.Gatekeepers {
		fmt.Fprintf(w, "  %s  %s\n", k.Address, k.PublicKey)
	}
	fmt.Fprintf(w, "Candidates declared now: %d\n", len(e.Candidates))
	for _, k := range e.Candidates {
		if k.NotEligible != "" {
			fmt.Fprintf(w, "  %s  not eligible: %s\n", k.Address, k.NotEligible)
		} else {
			fmt.Fprintf(w, "  %s\n", k.Address)
		}
	}
	if r := e.Responsiveness; r != nil {
		judged := slices.ContainsFunc(r.Nodes, func(n nodeActJSON) bool { return !n.Exempt })
		switch {
		case r.Ended && !judged:
			fmt.Fprintf(w, "Responsiveness (the era ended: nobody was judged, every node was exempt (registered during the era) or none was registered; %s PHA paid as rewards of a budget of %s PHA):\n", formatAmountString(r.Minted), formatAmountString(r.Budget))
		case r.Ended:
			fmt.Fprintf(w, "Responsiveness (the era ended: the 1/4 rule judged it; max activity %d of workers, %d of gatekeepers; %s PHA paid as rewards of a budget of %s PHA: exempt and unresponsive nodes earn nothing):\n", r.MaxWorker, r.MaxGatekeeper, formatAmountString(r.Minted), formatAmountString(r.Budget))
		case e.Era < e.Current:
			fmt.Fprintln(w, "Activity (challenges answered + accepted messages; the chain recorded no judgment of this era):")
		default:
			fmt.Fprintln(w, "Activity so far (challenges answered + accepted messages; judged at the era's last block):")
		}
		for _, n := range r.Nodes {
			kind := "worker"
			if n.Gatekeeper {
				kind = "gatekeeper"
			}
			verdict := ""
			switch {
			case !r.Ended:
				verdict = fmt.Sprintf("challenged %d, answered %d", n.Challenged, n.Answered)
			case n.Exempt:
				verdict = "exempt (registered during the era)"
			case n.Unresponsive:
				verdict = fmt.Sprintf("UNRESPONSIVE: slashed %s PHA, no reward, no new contracts next era", formatAmountString(n.Slashed))
			default:
				verdict = fmt.Sprintf("responsive: rewarded %s PHA", formatAmountString(n.Reward))
			}
			fmt.Fprintf(w, "  %s  %-10s activity %d  %s\n", n.Node, kind, n.Activity, verdict)
		}
	}
	el := e.Elected
	if el == nil {
		if e.Era == 0 {
			fmt.Fprintln(w, "No set is elected for era 0: the genesis gatekeepers serve it.")
		} else {
			if m := e.Migration; m != nil && uint64(m.Start) < e.FirstHeight {
				fmt.Fprintf(w, "No set was elected for era %d: at the end of era %d the runtime migration to build %s (since height %d) admitted only candidates running that build, and none stood with stake (or n_gatekeepers is 0): the serving list stays.\n", e.Era, e.Era-1, m.Target, m.Start)
			} else {
				fmt.Fprintf(w, "No set was elected for era %d (at the end of era %d nobody stood with stake, or n_gatekeepers is 0, or that era has not ended): the serving list stays.\n", e.Era, e.Era-1)
			}
		}
		return
	}
	early := ""
	if el.Early {
		early = fmt.Sprintf(" early (during era %d, not at its end)", e.Era-1)
	}
	fmt.Fprintf(w, "Set elected for era %d at height %d%s: %s since height %d, %d of %d confirmed\n", e.Era, el.ElectedAt, early, el.Status, el.StatusHeight, el.Confirmed, len(el.Members))
	for i, m := range el.Members {
		conf := "waiting for its confirmation"
		if m.Confirmed {
			conf = "confirmed"
		}
		fmt.Fprintf(w, "  %d. %s  backing %s PHA (own %s PHA, %d nominators)  %s\n", i+1, m.Address, m.TotalPHA, m.OwnPHA, len(m.Nominators), conf)
		for _, n := range m.Nominators {
			fmt.Fprintf(w, "       %s  %s PHA\n", n.Account, n.AmountPHA)
		}
	}
}

type eraJSON struct {
	Era          uint64          `json:"era"`
	Current      uint64          `json:"current_era"`
	FirstHeight  uint64          `json:"first_height"`
	LastHeight   uint64          `json:"last_height"`
	LatestHeight int64           `json:"latest_height"`
	Seats        uint64          `json:"n_gatekeepers"`        // seats elected at each era end (0: no election)
	MinStake     string          `json:"min_gatekeeper_stake"` // units a candidate needs
	MinStakePHA  string          `json:"min_gatekeeper_stake_pha"`
	Gatekeepers  []keyJSON       `json:"gatekeepers"` // serving now
	Candidates   []candidateJSON `json:"candidates"`  // declared now
	Elected      *electionJSON   `json:"elected"`     // null: no set elected for the era
	// Migration: the running runtime migration (null: none); while it
	// runs only candidates of its target build are eligible.
	Migration *migrationJSON `json:"migration"`
	// Responsiveness: the era's activity per node; once the era ended,
	// the verdicts of the 1/4 rule, slashes and rewards (its report).
	Responsiveness *responsivenessJSON `json:"responsiveness"`
}

// candidateJSON is a declared gatekeeper candidate; NotEligible says why
// the chain would not seat it now by its registration (a candidacy
// outlives the registration: a node whose build a runtime migration
// revoked stays declared but is never elected). Stake and
// responsiveness are judged at the election.
type candidateJSON struct {
	Address     string `json:"address"`
	PublicKey   string `json:"public_key"`
	NotEligible string `json:"not_eligible,omitempty"`
}

// candidateBar says why candidate k's registration keeps it from being
// elected now ("" if it does not): not registered, expired, its build no
// longer allowed (revoked by a runtime migration), or an old build while
// a migration runs. The chain's election checks the same (gatekeeper
// module: registry.Attested, migration.Admits).
func candidateBar(ctx context.Context, cl *client.Client, k crypto.PublicKey, att *api.AttestationSettings, mig *api.RuntimeMigration) (string, error) {
	w, h, err := cl.WorkerProved(ctx, k)
	switch {
	case errors.Is(err, api.ErrNotFound):
		return "not registered", nil
	case err != nil:
		return "", err
	case !att.MeasurementAllowed(w.Measurement):
		return fmt.Sprintf("its build 0x%s is no longer allowed (retired by a runtime migration or revoked by governance)", hex.EncodeToString(w.Measurement)), nil
	case !w.Active(h):
		return fmt.Sprintf("its registration expired at height %d", w.ExpiresAt), nil
	case mig != nil && mig.IsOld(w.Measurement):
		return "it runs a build the running runtime migration retires (only its target build is seated)", nil
	}
	return "", nil
}

type responsivenessJSON struct {
	Ended         bool          `json:"ended"`
	Budget        string        `json:"reward_budget,omitempty"` // units the era's inflation allowed (ended eras)
	Minted        string        `json:"rewards_paid,omitempty"`  // units actually paid to the nodes' stakers (ended eras)
	MaxWorker     uint64        `json:"max_worker_activity"`
	MaxGatekeeper uint64        `json:"max_gatekeeper_activity"`
	Nodes         []nodeActJSON `json:"nodes"`
}

type nodeActJSON struct {
	Node         string `json:"node"`
	Gatekeeper   bool   `json:"gatekeeper"`
	Activity     uint64 `json:"activity"` // c_n: answered challenges + accepted egress
	Challenged   uint64 `json:"challenged,omitempty"`
	Answered     uint64 `json:"answered,omitempty"`
	Unresponsive bool   `json:"unresponsive"`
	Exempt       bool   `json:"exempt"` // registered during the era: not judged
	Slashed      string `json:"slashed"`
	Reward       string `json:"reward"`
}

// maxLiveNodes bounds the nodes whose live activity era reads.
const maxLiveNodes = 200

// responsiveness reads era's report (ended) or the live activity of the
// registered nodes (current era).
func responsiveness(ctx context.Context, cl *client.Client, era uint64, gatekeepers []crypto.PublicKey) (*responsivenessJSON, error) {
	rep, _, err := cl.EraReport(ctx, era)
	if err != nil {
		return nil, err
	}
	out := &responsivenessJSON{Nodes: []nodeActJSON{}}
	if rep != nil {
		out.Ended, out.Budget, out.MaxWorker, out.MaxGatekeeper = true, strconv.FormatUint(rep.Budget, 10), rep.MaxWorker, rep.MaxGateKpr
		var paid uint64
		for _, n := range rep.Nodes {
			paid += n.Reward
		}
		out.Minted = strconv.FormatUint(paid, 10)
		for _, n := range rep.Nodes {
			out.Nodes = append(out.Nodes, nodeActJSON{Node: n.Node.Hex(), Gatekeeper: n.Gatekeeper, Activity: n.Count, Unresponsive: n.Unresponsive,
				Exempt: n.Exempt, Slashed: strconv.FormatUint(n.Slashed, 10), Reward: strconv.FormatUint(n.Reward, 10)})
		}
		return out, nil
	}
	ids, err := cl.WorkerIDs(ctx)
	if err != nil {
		return nil, err
	}
	if len(ids) > maxLiveNodes {
		ids = ids[:maxLiveNodes]
	}
	for _, id := range ids {
		a, _, err := cl.Activity(ctx, era, id)
		if err != nil {
			return nil, err
		}
		out.Nodes = append(out.Nodes, nodeActJSON{Node: id.Hex(), Gatekeeper: slices.Contains(gatekeepers, id), Activity: a.Count(), Challenged: a.Challenged, Answered: a.Answered, Slashed: "0", Reward: "0"})
	}
	return out, nil
}

type electionJSON struct {
	ElectedAt    int64        `json:"elected_at"`
	Early        bool         `json:"early"`  // elected before the last block of the era before (docs/keys.md, "A third of the set down")
	Status       string       `json:"status"` // pending, active, expired
	StatusHeight int64        `json:"status_height"`
	Confirmed    int          `json:"confirmed"`
	Members      []memberJSON `json:"members"` // in election order
}

type memberJSON struct {
	Address    string       `json:"address"`
	PublicKey  string       `json:"public_key"`
	Confirmed  bool         `json:"confirmed"`
	Total      string       `json:"total"` // units
	TotalPHA   string       `json:"total_pha"`
	Own        string       `json:"own"`
	OwnPHA     string       `json:"own_pha"`
	Nominators []backerJSON `json:"nominators"`
}

type backerJSON struct {
	Account   string `json:"account"`
	Amount    string `json:"amount"`
	AmountPHA string `json:"amount_pha"`
}

// formatAmountString formats a decimal string of units as PHA.
func formatAmountString(units string) string {
	v, err := strconv.ParseUint(units, 10, 64)
	if err != nil {
		return units
	}
	return formatAmount(v)
}
