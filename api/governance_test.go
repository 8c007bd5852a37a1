package api

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/phalago/phala/crypto"
)

func govSamples() (actions []Action, motion *Motion) {
	alice := crypto.MustKeyPairFromURI("//Alice").Public()
	bob := crypto.MustKeyPairFromURI("//Bob").Public()
	actions = []Action{
		{Kind: ActionAllowMeasurement, Measurement: bytes.Repeat([]byte{7}, 32)},
		{Kind: ActionRevokeMeasurement, Measurement: bytes.Repeat([]byte{1}, TDXMeasurementSize)},
		{Kind: ActionSetMinRuntimeVersion, Version: 3},
		{Kind: ActionSetParams, Params: DefaultParams()},
		{Kind: ActionSetCouncil, Council: Council{Members: []crypto.PublicKey{alice, bob}, Threshold: 2}},
		{Kind: ActionSetValidator, Validator: Validator{PubKey: [32]byte{9}, Power: 10}},
		{Kind: ActionMigrateRuntime, Measurement: bytes.Repeat([]byte{8}, 32)},
		{Kind: ActionCancelMigration},
	}
	motion = &Motion{ID: 4, Proposer: alice, Action: actions[4], ProposedAt: 10, ExpiresAt: 20, Ayes: []crypto.PublicKey{alice},
		Nays: []crypto.PublicKey{bob}, Status: MotionFailed, DecidedAt: 12, Reason: "no"}
	return actions, motion
}

// The governance calls round-trip through the transaction envelope, and
// every sample action is valid.
func TestGovernanceRoundTrip(t *testing.T) {
	actions, _ := govSamples()
	alice := crypto.MustKeyPairFromURI("//Alice")
	for _, a := range actions {
		if err := a.Validate(); err != nil {
			t.Fatalf("%s: %v", a.Kind, err)
		}
		for _, c := range []Call{&GovPropose{Action: a}, &GovVote{Motion: 3, Aye: true}} {
			b := NewTx("c", alice, 0, 1, c).Encode()
			tx, err := DecodeTx(b)
			if err != nil || !bytes.Equal(tx.Encode(), b) || !tx.VerifySignature(b) {
				t.Fatalf("%s %s: %v", a.Kind, c.Kind(), err)
			}
		}
	}
	for _, a := range []Action{{Kind: ActionMigrateRuntime}, {Kind: ActionMigrateRuntime, Measurement: make([]byte, MaxMeasurementBytes+1)}} {
		if err := a.Validate(); !errors.Is(err, ErrInvalidAction) {
			t.Fatalf("migrate_runtime to a measurement of %d bytes: %v", len(a.Measurement), err)
		}
	}
	if k, ok := ActionKindByName("cancel_migration"); !ok || k != ActionCancelMigration {
		t.Fatalf("cancel_migration is %v %v", k, ok)
	}
	if b := EncodeCall(&GovPropose{Action: Action{Kind: ActionCancelMigration}}); !bytes.Equal(b, []byte{byte(ActionCancelMigration)}) {
		t.Fatalf("cancel_migration encodes to %x, want its kind alone", b)
	}
	if ActionMigrateRuntime.String() != "migrate_runtime" {
		t.Fatalf("action name %q", ActionMigrateRuntime)
	}
	if err := (&Action{Kind: 99}).Validate(); !errors.Is(err, ErrInvalidCall) {
		t.Fatalf("unknown action: %v", err)
	}
	if _, err := DecodeCall(CallGovPropose, []byte{99}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unknown action kind decoded: %v", err)
	}
}

// A measurement in an allow, revoke or migrate action has the size of
// one a platform produces: 32 bytes (sim) or 192 (tdx). Every other size
// is refused by Validate (what the CLI checks before sending and the
// chain at proposal and enactment) with ErrInvalidAction and a message
// naming the valid sizes; a 2-byte "measurement" enacted a migration no
// pRuntime could ever serve.
func TestActionMeasurementSize(t *testing.T) {
	for _, kind := range []ActionKind{ActionAllowMeasurement, ActionRevokeMeasurement, ActionMigrateRuntime} {
		for _, tc := range []struct {
			size int
			ok   bool
		}{
			{0, false}, {1, false}, {2, false}, {20, false}, {31, false}, {32, true}, {33, false},
			{48, false}, {64, false}, {96, false}, {191, false}, {192, true}, {193, false},
		} {
			a := Action{Kind: kind, Measurement: bytes.Repeat([]byte{0x12}, tc.size)}
			err := a.Validate()
			if tc.ok != (err == nil) {
				t.Errorf("%s of a %d-byte measurement: %v", kind, tc.size, err)
			}
			if err != nil && (!errors.Is(err, ErrInvalidAction) || !strings.Contains(err.Error(), "32 bytes") || !strings.Contains(err.Error(), "192 bytes")) {
				t.Errorf("%s of a %d-byte measurement: error %q does not name the valid sizes", kind, tc.size, err)
			}
			if err := CheckMeasurement(a.Measurement); tc.ok != (err == nil) {
				t.Errorf("CheckMeasurement(%d bytes): %v", tc.size, err)
			}
		}
	}
	if MaxMeasurementBytes != TDXMeasurementSize || SimMeasurementSize != len(SimQuote{}.Measurement) {
		t.Fatal("measurement sizes out of step with the platforms'")
	}
}

// A cancelled migration's record round-trips; a completed one's encoding
// is what it was before cancellation existed (no trailing field).
func TestRuntimeMigratedCancelled(t *testing.T) {
	target := bytes.Repeat([]byte{5}, 32)
	done := &RuntimeMigrated{Target: target, Retired: []HexBytes{bytes.Repeat([]byte{6}, 32)}, Start: 3, Height: 9}
	c := &RuntimeMigrated{Target: target, Start: 12, Height: 20, Cancelled: true, PrevCompleted: 9}
	for _, m := range []*RuntimeMigrated{done, c} {
		got, err := DecodeRuntimeMigrated(m.Encode())
		if err != nil || got.Cancelled != m.Cancelled || got.PrevCompleted != m.PrevCompleted || got.Height != m.Height {
			t.Fatalf("%+v decoded as %+v: %v", m, got, err)
		}
	}
	if done.LastCompleted() != 9 || c.LastCompleted() != 9 || c.Retires(target) {
		t.Fatalf("last completed %d, %d", done.LastCompleted(), c.LastCompleted())
	}
	b := done.Encode()
	if b[len(b)-1] != 18 { // Varint(9), zig-zag
		t.Fatalf("completed record %x ends with more than its height", b)
	}
	for _, bad := range []*RuntimeMigrated{
		{Target: target, Retired: done.Retired, Start: 12, Height: 20, Cancelled: true},
		{Target: target, Start: 12, Height: 20, Cancelled: true, PrevCompleted: 13},
	} {
		if _, err := DecodeRuntimeMigrated(bad.Encode()); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%+v decoded: %v", bad, err)
		}
	}
}

func FuzzDecodeGovernance(f *testing.F) {
	actions, m := govSamples()
	f.Add(m.Encode())
	for _, a := range actions {
		f.Add(EncodeCall(&GovPropose{Action: a}))
	}
	f.Add(EncodeCall(&GovVote{Motion: 1 << 40}))
	f.Add((&Council{Members: m.Ayes, Threshold: 1}).Encode())
	f.Add(ValidatorSet{{PubKey: [32]byte{1}, Power: 1}, {PubKey: [32]byte{2}, Power: 5}}.Encode())
	f.Add(EncodeRuntimeVersion(7))
	f.Add(EncodeMeasurements([]HexBytes{{1, 2}, bytes.Repeat([]byte{3}, 48)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, err := DecodeMotion(b); err == nil && !bytes.Equal(got.Encode(), b) {
			t.Fatalf("motion mismatch: %x", b)
		}
		for _, k := range []CallKind{CallGovPropose, CallGovVote} {
			if got, err := DecodeCall(k, b); err == nil && !bytes.Equal(EncodeCall(got), b) {
				t.Fatalf("%s mismatch: %x", k, b)
			}
		}
		if got, err := DecodeCouncil(b); err == nil && !bytes.Equal(got.Encode(), b) {
			t.Fatalf("council mismatch: %x", b)
		}
		if got, err := DecodeValidatorSet(b); err == nil && !bytes.Equal(got.Encode(), b) {
			t.Fatalf("validator set mismatch: %x", b)
		}
		if got, err := DecodeRuntimeVersion(b); err == nil && !bytes.Equal(EncodeRuntimeVersion(got), b) {
			t.Fatalf("runtime version mismatch: %x", b)
		}
		if got, err := DecodeMeasurements(b); err == nil && !bytes.Equal(EncodeMeasurements(got), b) {
			t.Fatalf("measurements mismatch: %x", b)
		}
	})
}
