package main

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
)

// `phala keys status`: the chain's key lifecycle (docs/keys.md), proved:
// the serving key era and its key set, the running DKG, who confirmed,
// and a contract's key era and epoch. Not `phala key` (keys.go), which
// works with local account keys.

const keysHelp = `A key era is the era whose key set derives new contracts' keys; a key set is that
era's gatekeepers, each holding a share of its MasterKey, any threshold T of them
needed to derive a contract key; a DKG (phases: collecting keys, dealing,
closing: the last window for results, a normal step, not a failure) makes an
elected set's key set; a key era is retired (its shares destroyed) once no
contract needs it or its deadline passed. See docs/keys.md.
Not to be confused with ` + "`phala key`" + ` (singular): local sr25519 account keys.`

func keysCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "keys",
		Short: "The chain's key eras, key sets and DKG (see `phala key` for local account keys)",
		Long:  "keys shows the chain's key lifecycle, read with proofs.\n\n" + keysHelp,
		Example: `  phala keys status
  phala keys status --contract 0x1ee8... --json`,
	}
	c.AddCommand(keysStatusCmd(g))
	return c
}

func keysStatusCmd(g *globals) *cobra.Command {
	var contract string
	var era uint64
	c := &cobra.Command{
		Use:   "status [--era N] [--contract <contract id>]",
		Short: "Show the serving key era and key set, the running DKG and who confirmed (proved)",
		Long: `status reads, at one height and with proofs, the serving key era (new
contracts derive their keys under it) and its key set (threshold, members in
share order, master public key: an edwards25519 point, not an account), the
running DKG of the elected set if any (era, attempt, phase, its deadline,
which members posted a DKG key, dealt, posted a result, and how many results
are identical against the T needed), and the election record of the era the
DKG makes (or of the serving era): its confirmed members are those whose DKG
result was adopted; and the running runtime migration (its target build and
what still runs an old build at its last check) or the last completed one.
--era N also shows the key set of era N (and whether it is retired); --contract ID shows that contract's
key era and key epoch (and its key set).

` + keysHelp,
		Example: `  phala keys status
  phala keys status --era 0
  phala keys status --contract 0x1ee8... --json`,
		Args: exactArgs(0, "no arguments (give --era or --contract)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			withEra := cmd.Flags().Changed("era")
			var id crypto.PublicKey
			if contract != "" {
				var err error
				if id, err = parseContractID(contract); err != nil {
					return err
				}
			}
			ctx, cl, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			st, err := cl.KeyStatus(ctx)
			if err != nil {
				return g.nodeError(err)
			}
			out := keyStatusOf(cl.ChainID(), st)
			other := map[uint64]bool{}
			if withEra {
				other[era] = true
			}
			if contract != "" {
				rec, err := cl.Contract(ctx, id)
				if err != nil {
					return g.nodeError(err)
				}
				out.Contract = &contractKeyJSON{Contract: id.Hex(), KeyEra: rec.KeyEra, KeyEpoch: rec.KeyEpoch, Serving: st.HasEra && rec.KeyEra == st.Era}
				other[rec.KeyEra] = true
			}
			for e := range other {
				if st.HasEra && e == st.Era {
					continue
				}
				s, _, err := cl.KeySetAt(ctx, e, st.Height)
				if err != nil {
					return g.nodeError(err)
				}
				if s == nil {
					if withEra && e == era {
						return fmt.Errorf("no key set was adopted for era %d (proved absent at height %d); %s", era, st.Height, servingPhrase(st))
					}
					continue // a contract's era whose key set is gone: shown as such
				}
				ks := keySetOf(s)
				r, err := cl.KeyEraRetiredAt(ctx, e, st.Height)
				if err != nil {
					return g.nodeError(err)
				}
				ks.Retired = retiredOf(r)
				out.Others = append(out.Others, ks)
			}
			slices.SortFunc(out.Others, func(a, b *keySetJSON) int { return cmp.Compare(a.Era, b.Era) })
			return g.output(cmd, out, func(w io.Writer) { printKeyStatus(w, &out) })
		},
	}
	c.Flags().Uint64Var(&era, "era", 0, "also show the key set of this key era (0: the genesis one)")
	c.Flags().StringVar(&contract, "contract", "", "show this contract's key era and key epoch (its id, 0x-hex or SS58)")
	return c
}

func servingPhrase(st *client.KeyStatus) string {
	if !st.HasEra {
		return "no key set serves yet (the genesis MasterKey is not announced)"
	}
	return fmt.Sprintf("the serving key era is %d", st.Era)
}

type keyStatusJSON struct {
	ChainID string `json:"chain_id"`
	Height  int64  `json:"height"` // the state after this block, proved by the next header
	// ServingEra is null before the genesis MasterKey is announced.
	ServingEra *uint64          `json:"serving_era"`
	Serving    *keySetJSON      `json:"serving"` // the serving key set
	Others     []*keySetJSON    `json:"other_key_sets,omitempty"`
	Dkg        *dkgJSON         `json:"dkg"`      // null: no DKG runs
	Election   *keyElectionRec  `json:"election"` // of the DKG's era, else of the serving era; null for era 0
	Contract   *contractKeyJSON `json:"contract,omitempty"`
	// Migration: the running runtime migration (null: none);
	// LastMigration: the last completed or cancelled one (null: none).
	Migration     *migrationJSON `json:"migration"`
	LastMigration *migrationJSON `json:"last_migration"`
}

type keySetJSON struct {
	Era             uint64          `json:"era"`
	Threshold       uint32          `json:"threshold"`
	MasterPublicKey string          `json:"master_public_key"` // 0x-hex edwards25519 point (Commits[0]); not an account
	Commitments     []string        `json:"commitments"`       // the public polynomial's T commitments, 0x-hex
	Members         []keyMemberJSON `json:"members"`           // in share-index order
	// Retired: null while the era is not retired (always for the serving
	// era); else when and why its key set was retired.
	Retired *retiredJSON `json:"retired,omitempty"`
}

// retiredJSON is a key era's retirement (proved query /keys/retired).
type retiredJSON struct {
	Height int64  `json:"height"`
	Reason string `json:"reason"` // "unused": no contract needed it; "deadline": its deadline passed (contracts under it are stranded)
}

func retiredOf(r *api.KeyEraRetirement) *retiredJSON {
	if r == nil {
		return nil
	}
	reason := "unused"
	if r.Reason == api.KeyEraRetiredDeadline {
		reason = "deadline"
	}
	return &retiredJSON{Height: r.Height, Reason: reason}
}

type keyMemberJSON struct {
	Share     int    `json:"share"` // share index + 1 (the point its share is evaluated at)
	Address   string `json:"address"`
	PublicKey string `json:"public_key"`
}

type dkgJSON struct {
	Era     uint64 `json:"era"`
	Attempt uint64 `json:"attempt"`
	// Phase: collecting_keys, dealing, timed_out (the chain's name for
	// closing, the last window for results: a normal phase, not a
	// failure), failed. The text output names them for users (dkgPhaseText).
	Phase      string `json:"phase"`
	PhaseStart int64  `json:"phase_start"`
	// Deadline: the block at which the phase ends (collecting keys →
	// dealing, dealing → timed out, timed out → failed):
	// phase_start + dkg_phase.
	Deadline int64 `json:"deadline"`
	// DealWindowEnd: the last block whose deals count (dealing only).
	DealWindowEnd int64  `json:"deal_window_end,omitempty"`
	Threshold     uint32 `json:"threshold"` // 0 while collecting keys
	KeysPosted    int    `json:"keys_posted"`
	Participants  int    `json:"participants"`
	Dealt         int    `json:"dealt"`
	Results       int    `json:"results"`
	// Identical: the most participants that posted one same result (the
	// key set is adopted when it reaches threshold).
	Identical int             `json:"identical_results"`
	Members   []dkgMemberJSON `json:"members"`
}

type dkgMemberJSON struct {
	Address     string `json:"address"`
	PublicKey   string `json:"public_key"`
	PostedKey   bool   `json:"posted_key"`
	Participant int    `json:"participant"` // share index + 1 among the participants; 0: not one (yet)
	Dealt       bool   `json:"dealt"`
	Result      string `json:"result,omitempty"` // 0x-hex SHA-256 of its posted result
}

type keyElectionRec struct {
	Era          uint64    `json:"era"`
	Status       string    `json:"status"`
	StatusHeight int64     `json:"status_height"`
	Members      []keyJSON `json:"members"`
	// Confirmed: the members whose DKG result was adopted.
	Confirmed []keyJSON `json:"confirmed"`
}

type contractKeyJSON struct {
	Contract string `json:"contract"`
	KeyEra   uint64 `json:"key_era"`
	KeyEpoch uint64 `json:"key_epoch"`
	Serving  bool   `json:"under_serving_era"` // its key era is the serving one
}

// migrationJSON is a runtime migration (docs/keys.md, "State migration").
type migrationJSON struct {
	Target string   `json:"target"` // the new build's measurement, 0x-hex
	Old    []string `json:"old"`    // the measurements it retires, 0x-hex
	Start  int64    `json:"start"`
	// Running: the last check's height and what still depends on an old
	// build then. In last_migration: 0 for a completed one (it completes
	// when both are 0), null (unknown: the chain keeps no count) for a
	// cancelled one.
	Checked       int64   `json:"checked,omitempty"`
	OldContracts  *uint32 `json:"contracts_on_old_builds"`
	OldKeyHolders *uint32 `json:"key_holders_on_old_builds"`
	// Completed: the height the old measurements were revoked at.
	Completed int64 `json:"completed,omitempty"`
	// Cancelled: the height a cancel_migration motion ended it at
	// (nothing revoked).
	Cancelled int64 `json:"cancelled,omitempty"`
}

func ptr[T any](v T) *T { return &v }

func measurementsHex(ms []api.HexBytes) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, "0x"+hex.EncodeToString(m))
	}
	return out
}

func hex0x(b [32]byte) string { return "0x" + hex.EncodeToString(b[:]) }

func keySetOf(s *api.KeySet) *keySetJSON {
	j := &keySetJSON{Era: s.Era, Threshold: s.T, MasterPublicKey: hex0x(s.Public()), Commitments: []string{}, Members: []keyMemberJSON{}}
	for _, c := range s.Commits {
		j.Commitments = append(j.Commitments, hex0x(c))
	}
	for i, m := range s.Members {
		j.Members = append(j.Members, keyMemberJSON{Share: i + 1, Address: m.Address(), PublicKey: m.Hex()})
	}
	return j
}

func dkgPhaseName(p uint8) string {
	switch p {
	case api.DkgCollectingKeys:
		return "collecting_keys"
	case api.DkgDealing:
		return "dealing"
	case api.DkgTimedOut:
		return "timed_out"
	case api.DkgFailed:
		return "failed"
	}
	return fmt.Sprintf("phase#%d", p)
}

// dkgPhaseText names a DKG phase (dkgPhaseName) for users: timed_out
// is kyber's name for the normal closing phase.
func dkgPhaseText(phase string) string {
	switch phase {
	case "collecting_keys":
		return "collecting keys (members post their DKG keys)"
	case "dealing":
		return "dealing (participants deal, respond and post results)"
	case "timed_out":
		return "closing (the last window for members to post their results; a normal phase, not a failure)"
	case "failed":
		return "failed (given up: the serving key set stays)"
	}
	return phase
}

func dkgOf(d *api.DkgState, p *api.Params) *dkgJSON {
	j := &dkgJSON{Era: d.Era, Attempt: d.Attempt, Phase: dkgPhaseName(d.Phase), PhaseStart: d.PhaseStart, Deadline: d.PhaseStart + p.DkgPhase(),
		Threshold: d.T, Participants: len(d.Participants), Members: []dkgMemberJSON{}}
	if d.Phase == api.DkgDealing {
		j.DealWindowEnd = d.PhaseStart + p.DkgDealWindow()
	}
	same := map[[32]byte]int{}
	for i, m := range d.Members {
		mj := dkgMemberJSON{Address: m.Address(), PublicKey: m.Hex(), PostedKey: d.Keys[i] != [32]byte{}}
		if mj.PostedKey {
			j.KeysPosted++
		}
		if k := slices.Index(d.Participants, m); k >= 0 {
			mj.Participant, mj.Dealt = k+1, d.Dealt[k]
			if r := d.Results[k]; r != ([32]byte{}) {
				mj.Result = hex0x(r)
				same[r]++
				j.Identical = max(j.Identical, same[r])
				j.Results++
			}
			if mj.Dealt {
				j.Dealt++
			}
		}
		j.Members = append(j.Members, mj)
	}
	return j
}

func keyStatusOf(chainID string, st *client.KeyStatus) keyStatusJSON {
	out := keyStatusJSON{ChainID: chainID, Height: st.Height}
	if st.HasEra {
		e := st.Era
		out.ServingEra, out.Serving = &e, keySetOf(st.Serving)
	}
	if st.Dkg != nil {
		out.Dkg = dkgOf(st.Dkg, &st.Params)
	}
	if r := st.Election; r != nil {
		el := &keyElectionRec{Era: r.Era, Status: r.Status.String(), StatusHeight: r.StatusHeight, Members: []keyJSON{}, Confirmed: []keyJSON{}}
		for _, m := range r.Members {
			el.Members = append(el.Members, keyJSON{Address: m.Address(), PublicKey: m.Hex()})
		}
		for _, m := range r.Confirmed {
			el.Confirmed = append(el.Confirmed, keyJSON{Address: m.Address(), PublicKey: m.Hex()})
		}
		out.Election = el
	}
	if m := st.Migration; m != nil {
		out.Migration = &migrationJSON{Target: "0x" + hex.EncodeToString(m.Target), Old: measurementsHex(m.From), Start: m.Start, Checked: m.Checked, OldContracts: ptr(m.OldContracts), OldKeyHolders: ptr(m.OldKeyHolders)}
	}
	if m := st.LastMigration; m != nil {
		out.LastMigration = &migrationJSON{Target: "0x" + hex.EncodeToString(m.Target), Old: measurementsHex(m.Retired), Start: m.Start, Completed: m.Height,
			OldContracts: ptr[uint32](0), OldKeyHolders: ptr[uint32](0)}
		if m.Cancelled {
			// The chain's record of a cancellation keeps no counts.
			out.LastMigration.Completed, out.LastMigration.Cancelled = 0, m.Height
			out.LastMigration.OldContracts, out.LastMigration.OldKeyHolders = nil, nil
		}
	}
	return out
}

func printMigrations(w io.Writer, s *keyStatusJSON) {
	if m := s.Migration; m != nil {
		fmt.Fprintf(w, "Runtime migration to build %s since height %d (retires %s)\n", m.Target, m.Start, strings.Join(m.Old, ", "))
		if m.Checked == 0 {
			fmt.Fprintln(w, "  not checked yet")
		} else {
			fmt.Fprintf(w, "  at height %d: %d contract(s) still on an old build, %d gatekeeper(s) or key set member(s) on an old build (it completes when both are 0)\n", m.Checked, *m.OldContracts, *m.OldKeyHolders)
		}
	}
	if m := s.LastMigration; m != nil && m.Cancelled != 0 {
		fmt.Fprintf(w, "Last runtime migration: to build %s, started at height %d, cancelled by governance at height %d (nothing revoked)\n", m.Target, m.Start, m.Cancelled)
	} else if m != nil {
		fmt.Fprintf(w, "Last runtime migration: to build %s, started at height %d, completed at height %d (revoked %s)\n", m.Target, m.Start, m.Completed, strings.Join(m.Old, ", "))
	}
}

func printKeySet(w io.Writer, s *keySetJSON, what string) {
	fmt.Fprintf(w, "%s key set of era %d: threshold %d of %d members", what, s.Era, s.Threshold, len(s.Members))
	if r := s.Retired; r != nil {
		why := "unused: no contract needed it"
		if r.Reason == "deadline" {
			why = "deadline passed: contracts still under it are stranded"
		}
		fmt.Fprintf(w, "; retired at height %d (%s), its shares destroyed", r.Height, why)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  master public key: %s (an edwards25519 point, not an account)\n", s.MasterPublicKey)
	for _, m := range s.Members {
		fmt.Fprintf(w, "  share %d: %s  %s\n", m.Share, m.Address, m.PublicKey)
	}
}

func printKeyStatus(w io.Writer, s *keyStatusJSON) {
	fmt.Fprintf(w, "Keys of %s at height %d (proved)\n", s.ChainID, s.Height)
	if s.ServingEra == nil {
		fmt.Fprintln(w, "Serving key era: none yet: the first genesis gatekeeper has not announced the genesis MasterKey, so no contract can be keyed")
	} else {
		fmt.Fprintf(w, "Serving key era: %d (new contracts derive their keys from its MasterKey)\n", *s.ServingEra)
		printKeySet(w, s.Serving, "Serving")
	}
	for _, o := range s.Others {
		what := "Older"
		if o.Retired != nil {
			what = "Retired"
		}
		printKeySet(w, o, what)
	}
	if d := s.Dkg; d == nil {
		fmt.Fprintln(w, "DKG: none runs (each era end that elects a gatekeeper set starts one; the serving key set above is the latest adopted)")
	} else {
		fmt.Fprintf(w, "DKG of era %d, attempt %d: %s since height %d, phase deadline height %d\n", d.Era, d.Attempt, dkgPhaseText(d.Phase), d.PhaseStart, d.Deadline)
		if d.DealWindowEnd > 0 {
			fmt.Fprintf(w, "  deals count until height %d\n", d.DealWindowEnd)
		}
		fmt.Fprintf(w, "  %d of %d members posted a DKG key", d.KeysPosted, len(d.Members))
		if d.Threshold > 0 {
			fmt.Fprintf(w, "; %d participants, threshold %d; %d dealt; %d results posted, %d identical (the key set is adopted at %d)", d.Participants, d.Threshold, d.Dealt, d.Results, d.Identical, d.Threshold)
		}
		fmt.Fprintln(w)
		for _, m := range d.Members {
			var parts []string
			if m.PostedKey {
				parts = append(parts, "key posted")
			} else {
				parts = append(parts, "no key")
			}
			if m.Participant > 0 {
				parts = append(parts, fmt.Sprintf("participant %d", m.Participant))
				if m.Dealt {
					parts = append(parts, "dealt")
				} else {
					parts = append(parts, "not dealt")
				}
				if m.Result != "" {
					parts = append(parts, "result "+m.Result[:18]+"…")
				} else {
					parts = append(parts, "no result")
				}
			}
			fmt.Fprintf(w, "  %s  %s\n", m.Address, strings.Join(parts, ", "))
		}
	}
	if el := s.Election; el != nil {
		fmt.Fprintf(w, "Set elected for era %d: %s since height %d; confirmed (DKG result adopted) by %d of %d\n", el.Era, el.Status, el.StatusHeight, len(el.Confirmed), len(el.Members))
		for _, m := range el.Members {
			conf := "not confirmed"
			if slices.Contains(el.Confirmed, m) {
				conf = "confirmed"
			}
			fmt.Fprintf(w, "  %s  %s\n", m.Address, conf)
		}
	}
	if c := s.Contract; c != nil {
		fmt.Fprintf(w, "Contract %s: key era %d, key epoch %d", c.Contract, c.KeyEra, c.KeyEpoch)
		switch {
		case c.Serving:
			fmt.Fprintln(w, " (under the serving key set)")
		case !slices.ContainsFunc(s.Others, func(o *keySetJSON) bool { return o.Era == c.KeyEra }):
			fmt.Fprintf(w, " (no key set of era %d is recorded)\n", c.KeyEra)
		default:
			fmt.Fprintf(w, " (under the key set of era %d, not the serving one)\n", c.KeyEra)
		}
	}
	printMigrations(w, s)
}
