package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/testnet"
)

// TestGatekeeperCLI: `phala gatekeeper candidacy` declares and withdraws a
// registered node as its operator only, and `phala era` shows the era, the
// serving gatekeepers, the candidates and (here, with no stake on the
// chain) that nobody was elected, across era boundaries.
func TestGatekeeperCLI(t *testing.T) {
	bin(t)
	measurement := [32]byte{4, 5, 6}
	gk := crypto.MustKeyPairFromURI("//PhalaTestGatekeeper")
	genesis := node.DevGenesisState(measurement[:])
	genesis.Gatekeepers = []crypto.PublicKey{gk.Public()}
	genesis.Params.EraLength, genesis.Params.NGatekeepers = 5, 1
	n := testnet.New(t, testnet.Options{Genesis: genesis})
	c := n.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	charlie := crypto.MustKeyPairFromURI("//Charlie")
	identity, _, _ := crypto.GenerateKeyPair()
	registerSimWorker(t, ctx, n, charlie, identity, measurement)
	phala := func(args ...string) []string {
		return append(args, "--node", n.RPC(0), "--genesis", filepath.Join(n.Homes[0], "config", "genesis.json"))
	}
	id := identity.Public()

	fails(t, []string{"not the node's operator", charlie.Address()}, phala("gatekeeper", "candidacy", "--from", "//Alice", id.Address())...)
	fails(t, []string{"no registration"}, phala("gatekeeper", "candidacy", "--from", "//Charlie", gk.Public().Address())...)
	var cj candidacyJSON
	okJSON(t, &cj, phala("gatekeeper", "candidacy", "--from", "//Charlie", id.Hex())...)
	if !cj.Candidate || cj.Node != id.Address() || cj.Operator != charlie.Address() || cj.Since != cj.Height || cj.Height <= 0 {
		t.Fatalf("candidacy: %+v", cj)
	}
	fails(t, []string{"already a gatekeeper candidate"}, phala("gatekeeper", "candidacy", "--from", "//Charlie", id.Hex())...)

	// Past an era end: the candidate had no stake, nobody was elected.
	testnet.WaitFor(t, 30*time.Second, "an era end after the candidacy", func() (bool, error) {
		h, err := c.Height(ctx)
		return h > cj.Height+5, err
	})
	var e eraJSON
	okJSON(t, &e, phala("era")...)
	if e.Current == 0 || e.Era != e.Current || e.Seats != 1 || e.MinStake != "0" || e.FirstHeight != e.Era*5+1 || e.LastHeight != e.Era*5+5 || e.Elected != nil ||
		len(e.Gatekeepers) != 1 || e.Gatekeepers[0].PublicKey != gk.Public().Hex() || len(e.Candidates) != 1 || e.Candidates[0].Address != id.Address() {
		t.Fatalf("era: %+v", e)
	}
	out := ok(t, phala("era", "0")...)
	for _, want := range []string{"Era 0 of " + n.ChainID + " (past): heights 1 to 5", "Election: 1 seats at each era end, candidates need 0 PHA", "Gatekeepers serving now: 1", gk.Public().Address(), "Candidates declared now: 1", "genesis gatekeepers serve it"} {
		if !strings.Contains(out, want) {
			t.Errorf("era 0 lacks %q:\n%s", want, out)
		}
	}
	out = ok(t, phala("era", "1")...)
	if !strings.Contains(out, "No set was elected for era 1") {
		t.Errorf("era 1:\n%s", out)
	}
	fails(t, []string{"not an era number"}, phala("era", "soon")...)
	fails(t, []string{"era 1000 has not started; the current era is "}, phala("era", "1000")...)

	if e.Candidates[0].NotEligible != "" {
		t.Fatalf("a registered candidate marked: %+v", e.Candidates[0])
	}
	// Its build revoked (as a runtime migration's completion does), the
	// candidacy stays declared but is marked: the chain never seats it.
	var m motionJSON
	okJSON(t, &m, phala("gov", "propose", "--from", "//Alice", "revoke-measurement", "0x"+hex.EncodeToString(measurement[:]))...)
	okJSON(t, &m, phala("gov", "vote", "--from", "//Bob", fmt.Sprint(m.ID), "aye")...)
	if m.Status != "enacted" {
		t.Fatalf("revocation: %+v", m)
	}
	okJSON(t, &e, phala("era")...)
	if len(e.Candidates) != 1 || !strings.Contains(e.Candidates[0].NotEligible, "its build 0x040506") {
		t.Fatalf("candidates after the revocation: %+v", e.Candidates)
	}
	if out := ok(t, phala("era")...); !strings.Contains(out, id.Address()+"  not eligible: its build 0x040506") {
		t.Errorf("era after the revocation:\n%s", out)
	}
	okJSON(t, &cj, phala("gatekeeper", "candidacy", "--from", "//Charlie", id.Address(), "--off")...)
	if cj.Candidate {
		t.Fatalf("withdrawn: %+v", cj)
	}
	okJSON(t, &e, phala("era")...)
	if len(e.Candidates) != 0 {
		t.Fatalf("candidates after withdrawal: %+v", e.Candidates)
	}
}

// printEra shows an elected set: members in order with backing,
// nominators and confirmations, and the status.
func TestPrintEra(t *testing.T) {
	e := &eraJSON{Era: 4, Current: 4, FirstHeight: 31, LastHeight: 40, LatestHeight: 33, Elected: &electionJSON{ElectedAt: 30, Status: "pending", StatusHeight: 30, Confirmed: 1,
		Members: []memberJSON{
			{Address: "5Member1", Confirmed: true, TotalPHA: "350", OwnPHA: "100", Nominators: []backerJSON{{Account: "5Nominator", AmountPHA: "250"}}},
			{Address: "5Member2", TotalPHA: "500", OwnPHA: "500"},
		}}}
	var b bytes.Buffer
	printEra(&b, "phala-x", e)
	for _, want := range []string{
		"Era 4 of phala-x (current): heights 31 to 40 (latest block 33, era 4)",
		"Set elected for era 4 at height 30: pending since height 30, 1 of 2 confirmed",
		"1. 5Member1  backing 350 PHA (own 100 PHA, 1 nominators)  confirmed",
		"5Nominator  250 PHA",
		"2. 5Member2  backing 500 PHA (own 500 PHA, 0 nominators)  waiting for its confirmation",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("lacks %q:\n%s", want, b.String())
		}
	}
	e.Elected.Early = true
	b.Reset()
	printEra(&b, "phala-x", e)
	if want := "Set elected for era 4 at height 30 early (during era 3, not at its end): pending"; !strings.Contains(b.String(), want) {
		t.Errorf("lacks %q:\n%s", want, b.String())
	}
}

// printEra's activity headings: a past era without a judgment says
// "Activity" (not "so far"); an ended era where every node was exempt
// says nobody was judged, not that the 1/4 rule judged it.
func TestPrintEraActivityWording(t *testing.T) {
	node := nodeActJSON{Node: "0xaa", Activity: 0, Exempt: true, Slashed: "0", Reward: "0"}
	for _, c := range []struct {
		name        string
		era, cur    uint64
		r           responsivenessJSON
		want, avoid string
	}{
		{"current", 4, 4, responsivenessJSON{Nodes: []nodeActJSON{node}}, "Activity so far (", "judged it"},
		{"past, no report", 3, 4, responsivenessJSON{Nodes: []nodeActJSON{node}}, "Activity (challenges answered + accepted messages; the chain recorded no judgment of this era):", "so far"},
		{"every node exempt", 3, 4, responsivenessJSON{Ended: true, Budget: "0", Minted: "0", Nodes: []nodeActJSON{node}}, "nobody was judged, every node was exempt", "1/4 rule"},
		{"judged", 3, 4, responsivenessJSON{Ended: true, Budget: "0", Minted: "0", MaxWorker: 2, Nodes: []nodeActJSON{{Node: "0xbb", Activity: 2, Slashed: "0", Reward: "0"}}}, "the 1/4 rule judged it; max activity 2", "nobody was judged"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := c.r
			var b bytes.Buffer
			printEra(&b, "phala-x", &eraJSON{Era: c.era, Current: c.cur, Responsiveness: &r})
			if !strings.Contains(b.String(), c.want) || strings.Contains(b.String(), c.avoid) {
				t.Errorf("want %q, not %q:\n%s", c.want, c.avoid, b.String())
			}
		})
	}
}

// During a runtime migration phala era says only target-build candidates
// are eligible, and an era without a set elected under it names the
// migration instead of "nobody stood with stake" alone.
func TestPrintEraDuringMigration(t *testing.T) {
	m := &migrationJSON{Target: "0x5e5e", Start: 100}
	e := &eraJSON{Era: 3, Current: 3, FirstHeight: 121, LastHeight: 180, Migration: m}
	var b bytes.Buffer
	printEra(&b, "phala-x", e)
	for _, want := range []string{
		"a runtime migration to build 0x5e5e runs since height 100: only candidates running that build are eligible",
		"No set was elected for era 3: at the end of era 2 the runtime migration to build 0x5e5e (since height 100) admitted only candidates running that build, and none stood with stake",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("lacks %q:\n%s", want, b.String())
		}
	}
	// A migration that began after the era's election did not decide it.
	m.Start = 150
	b.Reset()
	printEra(&b, "phala-x", e)
	if !strings.Contains(b.String(), "No set was elected for era 3 (at the end of era 2 nobody stood with stake") {
		t.Errorf("migration after the election:\n%s", b.String())
	}
}
