package api

import (
	"bytes"
	"errors"
	"testing"

	"github.com/phalago/phala/crypto"
)

func govSamples() (actions []Action, motion *Motion) {
	alice := crypto.MustKeyPairFromURI("//Alice").Public()
	bob := crypto.MustKeyPairFromURI("//Bob").Public()
	actions = []Action{
		{Kind: ActionAllowMeasurement, Measurement: bytes.Repeat([]byte{7}, 32)},
		{Kind: ActionRevokeMeasurement, Measurement: []byte{1}},
		{Kind: ActionSetMinRuntimeVersion, Version: 3},
		{Kind: ActionSetParams, Params: DefaultParams()},
		{Kind: ActionSetCouncil, Council: Council{Members: []crypto.PublicKey{alice, bob}, Threshold: 2}},
		{Kind: ActionSetValidator, Validator: Validator{PubKey: [32]byte{9}, Power: 10}},
		{Kind: ActionMigrateRuntime, Measurement: bytes.Repeat([]byte{8}, 32)},
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
