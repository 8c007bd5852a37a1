package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/internal/chainview"
)

// Commands of on-chain governance: propose, vote, show, list.

func govCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "gov",
		Short: "Propose and vote governance motions on the chain's trust roots",
		Long: `gov works with the chain's governance: a council of accounts (listed in the
genesis, changed by the council itself) proposes motions and votes on them.
A motion whose ayes reach the council's threshold is enacted at the end of
the block that approved it; one still short of the threshold when its
voting period (the chain parameter gov_voting_period, in blocks) ends
expires and is never enacted.

A motion can allow or revoke a pRuntime measurement (revoking expires every
registration made with it: those workers get no new contract keys), start or
cancel a runtime migration to a new pRuntime build, set the
minimum pRuntime version (older pRuntimes stop until upgraded), change the
chain parameters, change the council, or add, change or remove a CometBFT
validator. Reads are proved against signed headers.`,
	}
	c.AddCommand(govProposeCmd(g), govVoteCmd(g), govShowCmd(g), govListCmd(g))
	return c
}

func govProposeCmd(g *globals) *cobra.Command {
	var from string
	c := &cobra.Command{
		Use:   "propose --from <secret-uri> <action> <arguments...>",
		Short: "Propose a motion (your proposal counts as your aye)",
		Long: `propose submits a motion of --from, who must be on the council; the proposal
counts as its aye, so with a threshold of 1 it is enacted at once. It prints
the motion's id (for vote and show) and its status. Actions:

  allow-measurement <0x-hex>      allow a pRuntime measurement
  revoke-measurement <0x-hex>     revoke one: registrations with it expire
  migrate-runtime <0x-hex>        migrate to a new pRuntime build: allow it,
                                  assign contracts and gatekeeper seats to
                                  it only, hand every contract over to its
                                  workers, then revoke every other
                                  measurement (follow it with
                                  ` + "`phala keys status`" + `; docs/keys.md)
  cancel-migration                end the running migration, revoking
                                  nothing: every allowed build gets
                                  contracts and gatekeeper seats again;
                                  what was handed over stays (use it when
                                  the target build never comes)
  min-runtime-version <n>         older pRuntimes stop dispatching
  params <name>=<value>...        change chain parameters (the others keep
                                  their current values; names as in
                                  ` + "`phala status --json`" + `)
  council <threshold> <member>... replace the council (members: SS58, 0x-hex
                                  or //Dev URIs)
  validator <ed25519 key> <power> add or change a CometBFT validator; power 0
                                  removes it (key: base64 as in genesis.json,
                                  or 0x-hex)

A measurement is 32 bytes (sim: the SHA-256 of the pruntime executable) or
192 bytes (tdx: MRTD||RTMR0||RTMR1||RTMR2), in 0x-hex as pruntime's /info
reports it; any other size is refused before sending. The chain refuses a
motion that does not apply (revoking a measurement not on the allowlist, a
migration while one runs, cancelling a migration when none runs, removing
the last voting power, invalid parameters).`,
		Example: `  phala gov propose --from //Alice revoke-measurement 0x5f3c...
  phala gov propose --from //Alice migrate-runtime 0x9a41...
  phala gov propose --from //Alice cancel-migration
  phala gov propose --from //Alice min-runtime-version 2
  phala gov propose --from //Alice params gov_voting_period=100 fee_base=2000000
  phala gov propose --from //Alice council 2 //Alice //Bob //Dave
  phala gov propose --from //Alice validator 3m4o...Yw== 10 --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 && (len(args) == 0 || args[0] != "cancel-migration") {
				return fmt.Errorf("%s takes an action and its arguments (see `%s --help`)", cmd.CommandPath(), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := signerKey(cmd, from)
			if err != nil {
				return err
			}
			ctx, cl, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			a, err := parseAction(args[0], args[1:], cl.Params())
			if err != nil {
				return err
			}
			if err := a.Validate(); err != nil {
				return err
			}
			id, res, err := cl.NewSigner(key).Propose(ctx, *a)
			if err != nil {
				return fmt.Errorf("propose: %w", err)
			}
			m, h, err := cl.Motion(ctx, id)
			if err != nil {
				return g.nodeError(err)
			}
			return g.output(cmd, newMotionJSON(m, h), func(w io.Writer) {
				fmt.Fprintf(w, "motion %d proposed at height %d (tx %X)\n", id, res.Height, res.Hash)
				printMotion(w, m)
			})
		},
	}
	c.Flags().StringVar(&from, "from", "", "secret URI of a council member (pays the fee), or - for stdin")
	return c
}

func govVoteCmd(g *globals) *cobra.Command {
	var from string
	c := &cobra.Command{
		Use:   "vote --from <secret-uri> <motion id> aye|nay",
		Short: "Vote on an open motion",
		Long: `vote records the vote of --from, a council member, on an open motion; each
member votes once. The aye that reaches the threshold approves the motion,
which is enacted at the end of that block. It prints the motion afterwards.`,
		Example: `  phala gov vote --from //Bob 0 aye
  phala gov vote --from //Charlie 3 nay --json`,
		Args: exactArgs(2, "a motion id and aye or nay"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("motion id %q is not a number (see `phala gov list`)", args[0])
			}
			var aye bool
			switch strings.ToLower(args[1]) {
			case "aye", "yes":
				aye = true
			case "nay", "no":
			default:
				return fmt.Errorf("vote %q: say aye or nay", args[1])
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
			res, err := cl.NewSigner(key).Vote(ctx, id, aye)
			if err != nil {
				return fmt.Errorf("vote: %w", err)
			}
			m, h, err := cl.Motion(ctx, id)
			if err != nil {
				return g.nodeError(err)
			}
			return g.output(cmd, newMotionJSON(m, h), func(w io.Writer) {
				fmt.Fprintf(w, "vote committed at height %d (tx %X)\n", res.Height, res.Hash)
				printMotion(w, m)
			})
		},
	}
	c.Flags().StringVar(&from, "from", "", "secret URI of a council member (pays the fee), or - for stdin")
	return c
}

func govShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show <motion id>",
		Short: "Show a motion: its action, votes and status (proved)",
		Long: `show reads a motion with a proof checked against a signed header: what it
does, who proposed it, the ayes and nays, and its status (open, approved,
enacted, expired, or failed with the reason).`,
		Example: `  phala gov show 0
  phala gov show 0 --json`,
		Args: exactArgs(1, "a motion id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("motion id %q is not a number (see `phala gov list`)", args[0])
			}
			ctx, cl, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			m, h, err := cl.Motion(ctx, id)
			if err != nil {
				return g.nodeError(err)
			}
			return g.output(cmd, newMotionJSON(m, h), func(w io.Writer) { printMotion(w, m) })
		},
	}
}

func govListCmd(g *globals) *cobra.Command {
	var limit int
	c := &cobra.Command{
		Use:   "list",
		Short: "Show the council, the minimum pRuntime version and the latest motions (proved)",
		Long: `list reads, each with a proof, the council (members and threshold), the
minimum pRuntime version governance set, and the latest --limit motions,
newest first.`,
		Example: `  phala gov list
  phala gov list --limit 5 --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return fmt.Errorf("--limit must be positive")
			}
			ctx, cl, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			council, h, err := cl.Council(ctx)
			if err != nil {
				return g.nodeError(err)
			}
			minV, err := cl.MinRuntimeVersion(ctx)
			if err != nil {
				return g.nodeError(err)
			}
			ms, err := cl.Motions(ctx, limit)
			if err != nil {
				return g.nodeError(err)
			}
			out := govListJSON{Threshold: council.Threshold, MinRuntimeVersion: minV, Height: h, Council: []string{}, Motions: []motionJSON{}}
			for _, m := range council.Members {
				out.Council = append(out.Council, m.Address())
			}
			for _, m := range ms {
				out.Motions = append(out.Motions, newMotionJSON(m, 0))
			}
			return g.output(cmd, out, func(w io.Writer) {
				if len(council.Members) == 0 {
					fmt.Fprintln(w, "Council: none (this chain has no governance)")
				} else {
					fmt.Fprintf(w, "Council (%d of %d approve):\n", council.Threshold, len(council.Members))
					for _, a := range out.Council {
						fmt.Fprintf(w, "  %s\n", a)
					}
				}
				fmt.Fprintf(w, "Minimum pRuntime version: %d\n", minV)
				if len(ms) == 0 {
					fmt.Fprintln(w, "No motions yet.")
				}
				for _, m := range ms {
					fmt.Fprintf(w, "#%-4d %-9s %s (ayes %d, nays %d)\n", m.ID, m.Status, describeAction(&m.Action), len(m.Ayes), len(m.Nays))
				}
			})
		},
	}
	c.Flags().IntVar(&limit, "limit", 20, "show at most this many motions")
	return c
}

type govListJSON struct {
	Council           []string     `json:"council"`
	Threshold         uint32       `json:"threshold"`
	MinRuntimeVersion uint32       `json:"min_runtime_version"`
	Motions           []motionJSON `json:"motions"`
	Height            int64        `json:"height"`
}

type motionJSON struct {
	ID         uint64   `json:"id"`
	Action     string   `json:"action"`
	Summary    string   `json:"summary"`
	Proposer   string   `json:"proposer"`
	Status     string   `json:"status"`
	ProposedAt int64    `json:"proposed_at"`
	ExpiresAt  int64    `json:"expires_at"`
	DecidedAt  int64    `json:"decided_at,omitempty"`
	Ayes       []string `json:"ayes"`
	Nays       []string `json:"nays"`
	Reason     string   `json:"reason,omitempty"`
	Height     int64    `json:"height,omitempty"` // proved at
}

func newMotionJSON(m *api.Motion, height int64) motionJSON {
	out := motionJSON{ID: m.ID, Action: m.Action.Kind.String(), Summary: describeAction(&m.Action), Proposer: m.Proposer.Address(),
		Status: m.Status.String(), ProposedAt: m.ProposedAt, ExpiresAt: m.ExpiresAt, DecidedAt: m.DecidedAt, Reason: m.Reason,
		Height: height, Ayes: []string{}, Nays: []string{}}
	for _, a := range m.Ayes {
		out.Ayes = append(out.Ayes, a.Address())
	}
	for _, a := range m.Nays {
		out.Nays = append(out.Nays, a.Address())
	}
	return out
}

func printMotion(w io.Writer, m *api.Motion) {
	fmt.Fprintf(w, "motion:    %d\naction:    %s\nproposer:  %s\n", m.ID, describeAction(&m.Action), m.Proposer.Address())
	switch m.Status {
	case api.MotionOpen:
		fmt.Fprintf(w, "status:    open (votes until height %d)\n", m.ExpiresAt-1)
	case api.MotionFailed:
		fmt.Fprintf(w, "status:    failed at height %d: %s\n", m.DecidedAt, m.Reason)
	default:
		fmt.Fprintf(w, "status:    %s at height %d\n", m.Status, m.DecidedAt)
	}
	for _, a := range m.Ayes {
		fmt.Fprintf(w, "aye:       %s\n", a.Address())
	}
	for _, a := range m.Nays {
		fmt.Fprintf(w, "nay:       %s\n", a.Address())
	}
}

// parseAction reads the action of `gov propose`; params start from cur.
func parseAction(name string, args []string, cur api.Params) (*api.Action, error) {
	need := func(n int, what string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %s, got %s", name, what, argCount(len(args)))
		}
		return nil
	}
	switch name {
	case "allow-measurement", "revoke-measurement", "migrate-runtime":
		if err := need(1, "a measurement in 0x-hex"); err != nil {
			return nil, err
		}
		m, err := hex.DecodeString(strings.TrimPrefix(args[0], "0x"))
		if err != nil || len(m) == 0 {
			return nil, fmt.Errorf("measurement %q is not hex (give it as pruntime's /info reports it)", args[0])
		}
		if err := api.CheckMeasurement(m); err != nil {
			return nil, fmt.Errorf("%s %s: %w", name, args[0], err)
		}
		kind := api.ActionAllowMeasurement
		switch name {
		case "revoke-measurement":
			kind = api.ActionRevokeMeasurement
		case "migrate-runtime":
			kind = api.ActionMigrateRuntime
		}
		return &api.Action{Kind: kind, Measurement: m}, nil
	case "cancel-migration":
		if err := need(0, "no arguments"); err != nil {
			return nil, err
		}
		return &api.Action{Kind: api.ActionCancelMigration}, nil
	case "min-runtime-version":
		if err := need(1, "a version number"); err != nil {
			return nil, err
		}
		v, err := strconv.ParseUint(args[0], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("version %q is not a number", args[0])
		}
		return &api.Action{Kind: api.ActionSetMinRuntimeVersion, Version: uint32(v)}, nil
	case "params":
		p, err := editParams(cur, args)
		if err != nil {
			return nil, err
		}
		return &api.Action{Kind: api.ActionSetParams, Params: p}, nil
	case "council":
		if len(args) < 2 {
			return nil, fmt.Errorf("council takes a threshold and the members")
		}
		t, err := strconv.ParseUint(args[0], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("threshold %q is not a number", args[0])
		}
		a := &api.Action{Kind: api.ActionSetCouncil, Council: api.Council{Threshold: uint32(t)}}
		for _, s := range args[1:] {
			pk, err := parseAccount("member", s)
			if err != nil {
				return nil, err
			}
			a.Council.Members = append(a.Council.Members, pk)
		}
		return a, nil
	case "validator":
		if err := need(2, "an ed25519 public key and a power"); err != nil {
			return nil, err
		}
		pk, err := parseValidatorKey(args[0])
		if err != nil {
			return nil, err
		}
		power, err := strconv.ParseUint(args[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("power %q is not a number (0 removes the validator)", args[1])
		}
		return &api.Action{Kind: api.ActionSetValidator, Validator: api.Validator{PubKey: pk, Power: power}}, nil
	}
	return nil, fmt.Errorf("unknown action %q: use allow-measurement, revoke-measurement, migrate-runtime, cancel-migration, min-runtime-version, params, council or validator (see `phala gov propose --help`)", name)
}

func parseValidatorKey(s string) ([32]byte, error) {
	var pk [32]byte
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil || !strings.HasPrefix(s, "0x") {
		b, err = base64.StdEncoding.DecodeString(s)
	}
	if err != nil || len(b) != len(pk) {
		return pk, fmt.Errorf("validator key %q is not a 32-byte ed25519 public key in base64 (as in genesis.json's validators) or 0x-hex", s)
	}
	copy(pk[:], b)
	return pk, nil
}

// editParams applies name=value changes to p, by the JSON names of
// api.Params.
func editParams(p api.Params, args []string) (api.Params, error) {
	b, _ := json.Marshal(p)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return p, err
	}
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, kv := range args {
		name, value, ok := strings.Cut(kv, "=")
		old, known := fields[name]
		if !ok || !known {
			return p, fmt.Errorf("parameter %q: give name=value with a name among %s", kv, strings.Join(names, ", "))
		}
		if _, err := strconv.ParseUint(value, 10, 64); err != nil {
			return p, fmt.Errorf("parameter %s: %q is not a non-negative integer", name, value)
		}
		if bytes.HasPrefix(old, []byte(`"`)) {
			value = strconv.Quote(value)
		}
		fields[name] = json.RawMessage(value)
	}
	b, _ = json.Marshal(fields)
	var out api.Params
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return p, err
	}
	if err := out.Validate(); err != nil {
		return p, fmt.Errorf("the parameters would be invalid: %w", err)
	}
	return out, nil
}

// describeAction says what an action does, in one line.
func describeAction(a *api.Action) string { return chainview.DescribeAction(a) }
