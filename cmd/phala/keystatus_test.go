package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.dedis.ch/kyber/v3/group/edwards25519"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/testnet"
)

// TestKeysStatusCLI: `phala keys status` on a real chain, text and
// --json: no serving key set before the genesis MasterKey; after the
// gatekeeper announces it, era 0's key set (T = 1, the gatekeeper as
// share 1, the announced point as master public key, printed as a point,
// not an address) and no DKG. --era and --contract refuse what the chain
// does not have, with the reason; the helps say what `keys` is and how it
// differs from `key`.
func TestKeysStatusCLI(t *testing.T) {
	bin(t)
	measurement := [32]byte{8, 9}
	gk := crypto.MustKeyPairFromURI("//PhalaTestGatekeeper")
	genesis := node.DevGenesisState(measurement[:])
	genesis.Gatekeepers = []crypto.PublicKey{gk.Public()}
	n := testnet.New(t, testnet.Options{Genesis: genesis})
	c := n.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	registerSimWorker(t, ctx, n, crypto.MustKeyPairFromURI("//Charlie"), gk, measurement)
	phala := func(args ...string) []string {
		return append(args, "--node", n.RPC(0), "--genesis", filepath.Join(n.Homes[0], "config", "genesis.json"))
	}

	var s keyStatusJSON
	okJSON(t, &s, phala("keys", "status")...)
	if s.ChainID != n.ChainID || s.Height < 1 || s.ServingEra != nil || s.Serving != nil || s.Dkg != nil || s.Election != nil {
		t.Fatalf("before the MasterKey: %+v", s)
	}
	if out := ok(t, phala("keys", "status")...); !strings.Contains(out, "Serving key era: none yet") || !strings.Contains(out, "DKG: none runs") {
		t.Errorf("before the MasterKey:\n%s", out)
	}

	suite := edwards25519.NewBlakeSHA256Ed25519()
	pt, err := suite.Point().Pick(suite.RandomStream()).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	msg := api.SignMessage(n.ChainID, api.Message{Origin: api.KeyOrigin(api.OriginGatekeeper, gk.Public()), Topic: api.TopicMasterKey, Payload: pt}, gk)
	if _, err := c.NewSigner(crypto.MustKeyPairFromURI("//Dave")).Submit(ctx, &api.PushMessage{Message: msg}); err != nil {
		t.Fatalf("publish the master key: %v", err)
	}
	testnet.WaitFor(t, 30*time.Second, "the serving key era", func() (bool, error) {
		_, ok, _, err := c.ServingKeyEra(ctx)
		return ok, err
	})
	mk := hex0x([32]byte(pt))
	okJSON(t, &s, phala("keys", "status", "--era", "0")...)
	if s.ServingEra == nil || *s.ServingEra != 0 || s.Serving == nil || s.Serving.Era != 0 || s.Serving.Threshold != 1 || s.Serving.MasterPublicKey != mk ||
		len(s.Serving.Commitments) != 1 || s.Serving.Commitments[0] != mk || len(s.Serving.Members) != 1 ||
		s.Serving.Members[0] != (keyMemberJSON{Share: 1, Address: gk.Public().Address(), PublicKey: gk.Public().Hex()}) ||
		len(s.Others) != 0 || s.Dkg != nil || s.Election != nil || s.Contract != nil {
		t.Fatalf("after the MasterKey: %+v", s)
	}
	out := ok(t, phala("keys", "status")...)
	for _, want := range []string{"Keys of " + n.ChainID + " at height ", "Serving key era: 0", "Serving key set of era 0: threshold 1 of 1 members",
		"master public key: " + mk + " (an edwards25519 point, not an account)", "share 1: " + gk.Public().Address(), "DKG: none runs"} {
		if !strings.Contains(out, want) {
			t.Errorf("keys status lacks %q:\n%s", want, out)
		}
	}

	fails(t, []string{"no key set was adopted for era 5", "proved absent", "the serving key era is 0"}, phala("keys", "status", "--era", "5")...)
	fails(t, []string{`invalid argument "-2" for "--era"`, "phala keys status --help"}, phala("keys", "status", "--era", "-2")...)
	fails(t, []string{"no such contract " + gk.Public().Hex(), "proved absent"}, phala("keys", "status", "--contract", gk.Public().Hex())...)
	fails(t, []string{`"0x12" is not a contract id`}, phala("keys", "status", "--contract", "0x12")...)
	fails(t, []string{"takes no arguments", "got 1 argument (see"}, phala("keys", "status", "0")...)
	fails(t, []string{"phala keys status` (plural)"}, phala("key", "status")...)
	fails(t, []string{`unknown command "frobnicate" for "phala keys"`}, "keys", "frobnicate")

	help := ok(t, "keys", "status", "--help")
	for _, want := range []string{"A key era is", "threshold T", "collecting keys, dealing,\nclosing", "not a failure", "retired", "docs/keys.md", "`phala key` (singular)", "Examples:", "--json", "--contract"} {
		if !strings.Contains(help, want) {
			t.Errorf("keys status --help lacks %q:\n%s", want, help)
		}
	}
	if help := ok(t, "key", "--help"); !strings.Contains(help, "`phala keys status` (plural)") {
		t.Errorf("key --help does not point to keys status:\n%s", help)
	}
}

// The DKG, election and contract views: deadlines from the parameters,
// each member's progress, identical results against T, who confirmed.
func TestPrintKeyStatusDkg(t *testing.T) {
	m := make([]crypto.PublicKey, 4)
	for i := range m {
		m[i] = crypto.MustKeyPairFromURI("//M" + string(rune('A'+i))).Public()
	}
	r1, r2 := [32]byte{1}, [32]byte{2}
	d := &api.DkgState{Era: 3, Attempt: 2, Phase: api.DkgDealing, PhaseStart: 100, Members: m, Keys: [][32]byte{{9}, {9}, {}, {9}},
		Participants: []crypto.PublicKey{m[0], m[1], m[3]}, T: 3, Dealt: []bool{true, true, false}, Results: [][32]byte{r1, r1, r2}}
	p := api.DefaultParams()
	p.DkgTimeout, p.EraLength = 10, 600
	st := &client.KeyStatus{Height: 104, HasEra: true, Era: 1, Dkg: d, Params: p,
		Serving:  &api.KeySet{Era: 1, T: 1, Members: m[:1], Commits: [][32]byte{{5}}},
		Election: &api.ElectionRecord{Era: 3, Members: m, Backing: make([]api.MemberBacking, 4), Confirmed: m[:2], Status: api.ElectionPending, StatusHeight: 90}}
	j := keyStatusOf("phala-x", st)
	j.Contract = &contractKeyJSON{Contract: "0xc0", KeyEra: 0, KeyEpoch: 4}
	dj := j.Dkg
	if dj.Phase != "dealing" || dj.Deadline != 110 || dj.DealWindowEnd != 105 || dj.KeysPosted != 3 || dj.Participants != 3 || dj.Dealt != 2 || dj.Results != 3 || dj.Identical != 2 ||
		dj.Members[2].Participant != 0 || dj.Members[3].Participant != 3 || dj.Members[3].Result != hex0x(r2) {
		t.Fatalf("dkg view: %+v", dj)
	}
	var b bytes.Buffer
	printKeyStatus(&b, &j)
	for _, want := range []string{
		"DKG of era 3, attempt 2: dealing (participants deal, respond and post results) since height 100, phase deadline height 110",
		"deals count until height 105",
		"3 of 4 members posted a DKG key; 3 participants, threshold 3; 2 dealt; 3 results posted, 2 identical (the key set is adopted at 3)",
		m[2].Address() + "  no key\n",
		m[3].Address() + "  key posted, participant 3, not dealt, result 0x0200000000000000…",
		"Set elected for era 3: pending since height 90; confirmed (DKG result adopted) by 2 of 4",
		m[1].Address() + "  confirmed",
		m[2].Address() + "  not confirmed",
		"Contract 0xc0: key era 0, key epoch 4 (no key set of era 0 is recorded)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("lacks %q:\n%s", want, b.String())
		}
	}
}

// A DKG in kyber's timed_out phase is named for users as closing, not a
// failure (the JSON value stays timed_out); retired key sets say when
// and why they were retired, in text and JSON.
func TestPrintKeyStatusClosingAndRetired(t *testing.T) {
	m := crypto.MustKeyPairFromURI("//MA").Public()
	p := api.DefaultParams()
	st := &client.KeyStatus{Height: 1300, HasEra: true, Era: 2, Params: p,
		Serving: &api.KeySet{Era: 2, T: 1, Members: []crypto.PublicKey{m}, Commits: [][32]byte{{5}}},
		Dkg: &api.DkgState{Era: 21, Attempt: 1, Phase: api.DkgTimedOut, PhaseStart: 1266, Members: []crypto.PublicKey{m}, Keys: [][32]byte{{9}},
			Participants: []crypto.PublicKey{m}, T: 1, Dealt: []bool{true}, Results: [][32]byte{{1}}}}
	j := keyStatusOf("phala-x", st)
	for _, c := range []struct {
		era    uint64
		r      *api.KeyEraRetirement
		reason string
	}{{0, &api.KeyEraRetirement{Height: 700, Reason: api.KeyEraRetiredUnused}, "unused"}, {1, &api.KeyEraRetirement{Height: 900, Reason: api.KeyEraRetiredDeadline}, "deadline"}, {3, nil, ""}} {
		ks := keySetOf(&api.KeySet{Era: c.era, T: 1, Members: []crypto.PublicKey{m}, Commits: [][32]byte{{6}}})
		ks.Retired = retiredOf(c.r)
		if (c.r == nil) != (ks.Retired == nil) || (c.r != nil && (ks.Retired.Height != c.r.Height || ks.Retired.Reason != c.reason)) {
			t.Fatalf("era %d: retired %+v from %+v", c.era, ks.Retired, c.r)
		}
		j.Others = append(j.Others, ks)
	}
	if j.Dkg.Phase != "timed_out" {
		t.Errorf("JSON phase %q, want the stable timed_out", j.Dkg.Phase)
	}
	var b bytes.Buffer
	printKeyStatus(&b, &j)
	out := b.String()
	for _, want := range []string{
		"DKG of era 21, attempt 1: closing (the last window for members to post their results; a normal phase, not a failure) since height 1266",
		"Retired key set of era 0: threshold 1 of 1 members; retired at height 700 (unused: no contract needed it), its shares destroyed",
		"Retired key set of era 1: threshold 1 of 1 members; retired at height 900 (deadline passed: contracts still under it are stranded)",
		"Older key set of era 3: threshold 1 of 1 members\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "timed out") {
		t.Errorf("still says timed out:\n%s", out)
	}
	js, err := json.Marshal(j.Others[:2])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"retired":{"height":700,"reason":"unused"}`) || !strings.Contains(string(js), `"retired":{"height":900,"reason":"deadline"}`) {
		t.Errorf("JSON: %s", js)
	}
}

// last_migration's counts of what ran an old build: 0 for a completed
// migration (it completes at 0), null (unknown) for a cancelled one, not
// a misleading 0; the running one's counts as checked.
func TestKeyStatusMigrationCounts(t *testing.T) {
	target := []byte{0x5e}
	st := &client.KeyStatus{Height: 50, Migration: &api.RuntimeMigration{Target: target, Start: 10, Checked: 40, OldContracts: 1, OldKeyHolders: 1},
		LastMigration: &api.RuntimeMigrated{Target: target, Start: 5, Height: 8, Cancelled: true}}
	j := keyStatusOf("phala-x", st)
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Migration     map[string]any `json:"migration"`
		LastMigration map[string]any `json:"last_migration"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Migration["contracts_on_old_builds"] != 1.0 || got.Migration["key_holders_on_old_builds"] != 1.0 {
		t.Errorf("running: %v", got.Migration)
	}
	if v, ok := got.LastMigration["contracts_on_old_builds"]; !ok || v != nil || got.LastMigration["key_holders_on_old_builds"] != nil || got.LastMigration["cancelled"] != 8.0 {
		t.Errorf("cancelled: %v, want null counts", got.LastMigration)
	}
	st.LastMigration = &api.RuntimeMigrated{Target: target, Retired: []api.HexBytes{{1}}, Start: 5, Height: 8}
	j = keyStatusOf("phala-x", st)
	if c := j.LastMigration; c.OldContracts == nil || *c.OldContracts != 0 || c.OldKeyHolders == nil || *c.OldKeyHolders != 0 || c.Completed != 8 {
		t.Errorf("completed: %+v", c)
	}
	var out bytes.Buffer
	printKeyStatus(&out, &j)
	if !strings.Contains(out.String(), "at height 40: 1 contract(s) still on an old build, 1 gatekeeper(s)") {
		t.Errorf("text:\n%s", out.String())
	}
}
