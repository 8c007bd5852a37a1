package api

import (
	"bytes"
	"errors"
	"testing"

	"github.com/phalago/phala/crypto"
)

func deploymentSeeds() [][]byte {
	k := crypto.MustKeyPairFromURI("//K").Public()
	w := crypto.MustKeyPairFromURI("//W").Public()
	grant := (&ContractKeyGrant{Identity: k, Workers: []SealedKey{{Worker: w, Sealed: []byte{1, 2}}}}).Encode()
	bm := BlockMessages{Height: 7, StateRoot: []byte{1}, Messages: []Message{{Origin: ModuleOrigin("contracts"), Topic: TopicContractCommand, Payload: []byte{9}}}}
	return [][]byte{
		(&ContractDeployed{Contract: k, Workers: []crypto.PublicKey{w}, Reason: DeployedFirst, Grant: grant}).Encode(),
		(&ContractDeployed{Contract: k, Removed: []crypto.PublicKey{w}, Reason: RemovedByDeployer}).Encode(),
		(&RecoverRequest{Contract: k, Entries: []StateChange{{Location: [32]byte{1}, Value: make([]byte, 9)}, {Location: [32]byte{2}, Value: make([]byte, 8)}}, Blocks: []BlockMessages{bm}}).Encode(),
		(&RecoverRequest{Purpose: RecoverArbitration, Contract: k}).Encode(),
		EncodeCall(&ContractReassign{Contract: k, Worker: w}),
	}
}

// FuzzDecodeDeployment: the decoders of deployments, recovery requests
// (the control API's POST /recover body) and reassign calls never panic,
// and what they accept re-encodes to the same bytes.
func FuzzDecodeDeployment(f *testing.F) {
	for _, s := range deploymentSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := DecodeContractDeployed(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("deployed mismatch %x", b)
		}
		if v, err := DecodeRecoverRequest(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("recover request mismatch %x", b)
		}
		if c, err := DecodeCall(CallContractReassign, b); err == nil && !bytes.Equal(EncodeCall(c), b) {
			t.Fatalf("reassign mismatch %x", b)
		}
	})
}

// Bad deployments and recovery requests are refused.
func TestDeploymentDecodersRefuse(t *testing.T) {
	k := crypto.MustKeyPairFromURI("//K").Public()
	ok := (&RecoverRequest{Contract: k, Entries: []StateChange{{Location: [32]byte{1}, Value: make([]byte, 8)}, {Location: [32]byte{2}, Value: make([]byte, 8)}}}).Encode()
	if _, err := DecodeRecoverRequest(ok); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"entries out of order":  (&RecoverRequest{Contract: k, Entries: []StateChange{{Location: [32]byte{2}, Value: make([]byte, 8)}, {Location: [32]byte{1}, Value: make([]byte, 8)}}}).Encode(),
		"repeated location":     (&RecoverRequest{Contract: k, Entries: []StateChange{{Location: [32]byte{1}, Value: make([]byte, 8)}, {Location: [32]byte{1}, Value: make([]byte, 8)}}}).Encode(),
		"value without counter": (&RecoverRequest{Contract: k, Entries: []StateChange{{Location: [32]byte{1}, Value: make([]byte, 7)}}}).Encode(),
		"unknown purpose":       append([]byte{9}, ok[1:]...),
		"trailing byte":         append(bytes.Clone(ok), 0),
	} {
		if _, err := DecodeRecoverRequest(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("recover request, %s: %v", name, err)
		}
	}
	d := (&ContractDeployed{Contract: k, Workers: []crypto.PublicKey{k}, Grant: []byte{1, 2, 3}}).Encode()
	if _, err := DecodeContractDeployed(d); err == nil {
		t.Error("a deployment with an undecodable grant was accepted")
	}
}
