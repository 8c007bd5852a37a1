package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cometbft/cometbft/crypto/ed25519"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/attestation"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/testnet"
)

// parseAction refuses a measurement of a size no pRuntime has (with the
// valid sizes), takes cancel-migration with no argument, and describes it.
func TestParseGovAction(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		kind api.ActionKind
		err  string
	}{
		{"migrate-runtime", []string{"0x1234"}, 0, "measurement of 2 bytes"},
		{"allow-measurement", []string{"0x" + strings.Repeat("ab", 31)}, 0, "measurement of 31 bytes"},
		{"revoke-measurement", []string{"0x" + strings.Repeat("ab", 48)}, 0, "measurement of 48 bytes"},
		{"migrate-runtime", []string{"0x" + strings.Repeat("ab", 193)}, 0, "measurement of 193 bytes"},
		{"migrate-runtime", []string{"0x" + strings.Repeat("ab", 32)}, api.ActionMigrateRuntime, ""},
		{"allow-measurement", []string{strings.Repeat("ab", 192)}, api.ActionAllowMeasurement, ""},
		{"cancel-migration", nil, api.ActionCancelMigration, ""},
		{"cancel-migration", []string{"0x" + strings.Repeat("ab", 32)}, 0, "takes no arguments"},
	} {
		a, err := parseAction(tc.name, tc.args, api.DefaultParams())
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "32 bytes") && !strings.Contains(tc.err, "arguments") {
				t.Errorf("%s %v: %v, want an error saying %q and the valid sizes", tc.name, tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || a.Kind != tc.kind || a.Validate() != nil {
			t.Errorf("%s %v: %+v %v", tc.name, tc.args, a, err)
		}
	}
	if d := describeAction(&api.Action{Kind: api.ActionCancelMigration}); !strings.Contains(d, "cancel the running runtime migration") {
		t.Errorf("described as %q", d)
	}
}

// TestGov runs `phala gov` against an in-process chain whose council is
// the dev genesis's (Alice, Bob, Charlie; 2 of 3): refusals, a motion
// enacted by the second aye, and a validator added by motion that shows up
// in CometBFT's validator set.
func TestGov(t *testing.T) {
	bin(t)
	measurement := [32]byte{4, 5, 6}
	n := testnet.New(t, testnet.Options{Genesis: node.DevGenesisState(measurement[:])})
	genesisFile := filepath.Join(n.Homes[0], "config", "genesis.json")
	phala := func(args ...string) []string { return append(args, "--node", n.RPC(0), "--genesis", genesisFile) }

	var l govListJSON
	okJSON(t, &l, phala("gov", "list")...)
	if len(l.Council) != 3 || l.Threshold != 2 || len(l.Motions) != 0 || l.MinRuntimeVersion != 0 {
		t.Fatalf("list: %+v", l)
	}

	fails(t, []string{"not a council member"}, phala("gov", "propose", "--from", "//Dave", "min-runtime-version", "2")...)
	fails(t, []string{"unknown action", "frobnicate"}, phala("gov", "propose", "--from", "//Alice", "frobnicate", "1")...)
	fails(t, []string{"no_such_param", "gov_voting_period"}, phala("gov", "propose", "--from", "//Alice", "params", "no_such_param=1")...)
	fails(t, []string{"invalid", "version"}, phala("gov", "propose", "--from", "//Alice", "min-runtime-version", "0")...)
	// dkg_timeout below the DKG phase's minimum is refused, not clamped;
	// status shows the phase in use.
	fails(t, []string{"dkg_timeout must be in [4, "}, phala("gov", "propose", "--from", "//Alice", "params", "dkg_timeout=2")...)
	if out := ok(t, phala("status")...); !strings.Contains(out, "DKG phase:             20 blocks (dkg_timeout 20, at most a third of era_length, at least 4)") {
		t.Errorf("status lacks the DKG phase:\n%s", out)
	}
	fails(t, []string{"unknown motion"}, phala("gov", "show", "9")...)
	// The user trial's 2-byte "measurement" is refused before sending; a
	// cancellation without a running migration by the chain.
	fails(t, []string{"migrate-runtime 0x1234", "measurement of 2 bytes", "32 bytes", "192 bytes"}, phala("gov", "propose", "--from", "//Alice", "migrate-runtime", "0x1234")...)
	fails(t, []string{"no runtime migration runs"}, phala("gov", "propose", "--from", "//Alice", "cancel-migration")...)
	fails(t, []string{"aye or nay"}, phala("gov", "vote", "--from", "//Bob", "0", "maybe")...)

	var m motionJSON
	okJSON(t, &m, phala("gov", "propose", "--from", "//Alice", "min-runtime-version", "2")...)
	if m.ID != 0 || m.Status != "open" || len(m.Ayes) != 1 || m.Action != "set_min_runtime_version" {
		t.Fatalf("proposed: %+v", m)
	}
	fails(t, []string{"already voted"}, phala("gov", "vote", "--from", "//Alice", "0", "aye")...)
	fails(t, []string{"not a council member"}, phala("gov", "vote", "--from", "//Dave", "0", "aye")...)
	okJSON(t, &m, phala("gov", "vote", "--from", "//Bob", "0", "aye")...)
	if m.Status != "enacted" || len(m.Ayes) != 2 {
		t.Fatalf("after the second aye: %+v", m)
	}
	out := ok(t, phala("gov", "show", "0")...)
	if !strings.Contains(out, "require pRuntime version 2 or newer") || !strings.Contains(out, "status:    enacted") {
		t.Fatalf("show:\n%s", out)
	}
	// A vote on an enacted motion says when it was enacted, not when its
	// voting period would have ended.
	fails(t, []string{"motion is closed", fmt.Sprintf("motion 0 was enacted at height %d", m.DecidedAt)}, phala("gov", "vote", "--from", "//Charlie", "0", "nay")...)

	// A validator (power 1 next to the genesis validator's 10, so the chain
	// keeps its quorum without it signing).
	v := ed25519.GenPrivKeyFromSecret([]byte("cli test validator")).PubKey()
	key := base64.StdEncoding.EncodeToString(v.Bytes())
	okJSON(t, &m, phala("gov", "propose", "--from", "//Alice", "validator", key, "1")...)
	okJSON(t, &m, phala("gov", "vote", "--from", "//Charlie", "1", "aye")...)
	if m.Status != "enacted" {
		t.Fatalf("validator motion: %+v", m)
	}
	c := n.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		h, err := c.Height(ctx)
		if err != nil {
			t.Fatal(err)
		}
		vals, err := c.Validators(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		if _, val := vals.GetByAddress(v.Address()); val != nil {
			if val.VotingPower != 1 || vals.TotalVotingPower() != 11 {
				t.Fatalf("validator set %v", vals)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the validator added at height %d never joined CometBFT's set", m.DecidedAt)
		case <-time.After(100 * time.Millisecond):
		}
	}
	// Removing a validator that is not in the set is refused.
	fails(t, []string{"not in the set"}, phala("gov", "propose", "--from", "//Alice", "validator", "0x"+strings.Repeat("11", 32), "0")...)

	// A registered worker whose measurement the council revokes is shown
	// expired.
	identity, _, _ := crypto.GenerateKeyPair()
	dave := crypto.MustKeyPairFromURI("//Dave")
	h, err := c.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recent, err := c.SignedHeader(ctx, h-1) // the report cites a recent block
	if err != nil {
		t.Fatal(err)
	}
	info := api.WorkerInfo{ChainID: n.ChainID, IdentityKey: identity.Public(), EcdhKey: identity.Public(), Endpoint: "http://127.0.0.1:8000", Operator: dave.Public(),
		BlockHeight: recent.Height, BlockHash: [api.BlockHashSize]byte(recent.Hash())}
	report := attestation.SignSimQuote(crypto.MustKeyPairFromURI(api.DevAttestationURI), measurement, info.ReportData(), time.Now())
	if _, err := c.NewSigner(dave).Submit(ctx, &api.RegisterWorker{Info: info, Report: *report}); err != nil {
		t.Fatalf("register worker: %v", err)
	}
	var w workerJSON
	okJSON(t, &w, phala("worker", identity.Public().Hex())...)
	if !w.Active || w.Revoked {
		t.Fatalf("registered worker: %+v", w)
	}
	okJSON(t, &m, phala("gov", "propose", "--from", "//Alice", "revoke-measurement", "0x"+hex.EncodeToString(measurement[:]))...)
	okJSON(t, &m, phala("gov", "vote", "--from", "//Bob", "2", "aye")...)
	if m.Status != "enacted" {
		t.Fatalf("revocation: %+v", m)
	}
	okJSON(t, &w, phala("worker", identity.Public().Hex())...)
	if w.Active || !w.Revoked {
		t.Fatalf("worker after revocation: %+v", w)
	}
	if out := ok(t, phala("worker", identity.Public().Hex())...); !strings.Contains(out, "governance revoked its pRuntime measurement") {
		t.Fatalf("worker after revocation:\n%s", out)
	}
	if out := ok(t, phala("workers")...); !strings.Contains(out, identity.Public().Hex()+"  http://127.0.0.1:8000") || !strings.Contains(out, "EXPIRED: governance revoked its pRuntime measurement") {
		t.Fatalf("workers after revocation:\n%s", out)
	}

	out = ok(t, phala("gov", "list")...)
	for _, want := range []string{"Council (2 of 3 approve)", "Minimum pRuntime version: 2", "#2    enacted   revoke pRuntime measurement", "#1    enacted   set validator", "#0    enacted   require pRuntime version 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
}
