package api

import (
	"bytes"
	"testing"

	"github.com/phalago/phala/crypto"
)

func deploymentSeeds() [][]byte {
	k := crypto.MustKeyPairFromURI("//K").Public()
	w := crypto.MustKeyPairFromURI("//W").Public()
	grant := (&ContractKeyGrant{Identity: k, Workers: []crypto.PublicKey{w}}).Encode()
	return [][]byte{
		(&ContractDeployed{Contract: k, Workers: []crypto.PublicKey{w}, Reason: DeployedFirst, Grant: grant}).Encode(),
		(&ContractDeployed{Contract: k, Removed: []crypto.PublicKey{w}, Reason: RemovedByDeployer}).Encode(),
		EncodeCall(&ContractReassign{Contract: k, Worker: w}),
	}
}

// FuzzDecodeDeployment: the decoders of deployments and reassign calls
// never panic, and what they accept re-encodes to the same bytes (recovery
// requests: FuzzDecodeRecoverRequest).
func FuzzDecodeDeployment(f *testing.F) {
	for _, s := range deploymentSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := DecodeContractDeployed(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("deployed mismatch %x", b)
		}
		if c, err := DecodeCall(CallContractReassign, b); err == nil && !bytes.Equal(EncodeCall(c), b) {
			t.Fatalf("reassign mismatch %x", b)
		}
	})
}

// A deployment whose grant does not decode is refused.
func TestDeploymentDecoderRefuses(t *testing.T) {
	k := crypto.MustKeyPairFromURI("//K").Public()
	d := (&ContractDeployed{Contract: k, Workers: []crypto.PublicKey{k}, Grant: []byte{1, 2, 3}}).Encode()
	if _, err := DecodeContractDeployed(d); err == nil {
		t.Error("a deployment with an undecodable grant was accepted")
	}
}
