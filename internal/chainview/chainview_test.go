package chainview

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// Payloads the chain carries encrypted or opaque appear in a view as their
// size only: never their bytes, in any encoding.
func TestPayloadsAreSizesOnly(t *testing.T) {
	secret := bytes.Repeat([]byte("SECRET-PAYLOAD!"), 8) // 120 bytes
	contract := crypto.MustKeyPairFromURI("//contract").Public()
	for _, tc := range []struct {
		call api.Call
		size string // the field that holds the size
	}{
		{&api.ContractCommand{Contract: contract, Nonce: 3, Sealed: secret}, "sealed_bytes"},
		{&api.ContractQueryCall{Query: api.ContractQuery{Contract: contract, Ciphertext: secret}}, "ciphertext_bytes"},
		{&api.PostMessage{Topic: "t", Payload: secret}, "payload_bytes"},
		{&api.PushMessage{Message: api.SignedMessage{Message: api.Message{Origin: api.KeyOrigin(api.OriginWorker, contract), Topic: "t", Payload: secret}}}, "payload_bytes"},
		{&api.UploadContract{Code: secret, InitInput: secret}, "code_bytes"},
	} {
		fields, summary := DescribeCall(tc.call)
		if fields[tc.size] != len(secret) {
			t.Errorf("%s: %s = %v, want %d", tc.call.Kind(), tc.size, fields[tc.size], len(secret))
		}
		all := summary + fmt.Sprint(fields)
		for _, enc := range []string{string(secret[:15]), hex.EncodeToString(secret[:15]), strings.ToUpper(hex.EncodeToString(secret[:15]))} {
			if strings.Contains(all, enc) {
				t.Errorf("%s: the view shows the payload (%q): %s", tc.call.Kind(), enc, all)
			}
		}
	}
	m := DescribeMessage(7, &api.Message{Origin: api.ModuleOrigin("contracts"), Topic: "x", Seq: 2, Payload: secret})
	if m != (Message{Height: 7, Origin: "module:contracts", Topic: "x", Seq: 2, PayloadBytes: len(secret)}) {
		t.Errorf("message view: %+v", m)
	}
}

// A transfer's view names both accounts by SS58 address and the amount
// in units and PHA; bytes that do not decode say why.
func TestDescribeTx(t *testing.T) {
	alice := crypto.MustKeyPairFromURI("//Alice")
	bob := crypto.MustKeyPairFromURI("//Bob").Public()
	tx := &api.Tx{Signer: alice.Public(), Nonce: 4, Fee: 1500, Call: &api.Transfer{To: bob, Amount: 2 * api.Unit}}
	v := DescribeTx([32]byte{1}, []byte{1, 2, 3}, tx, nil)
	if v.Signer != alice.Public().Address() || v.Nonce != 4 || v.Fee != "1500" || v.Call != "transfer" || v.Size != 3 ||
		v.Fields["to"] != bob.Address() || v.Fields["amount"] != "2000000000000" || v.Summary != "transfer 2 PHA to "+bob.Address() {
		t.Errorf("transfer view: %+v", v)
	}
	bad := DescribeTx([32]byte{2}, []byte{9}, nil, fmt.Errorf("truncated"))
	if bad.DecodeError != "truncated" || bad.Signer != "" || !strings.HasPrefix(bad.Summary, "undecodable") {
		t.Errorf("undecodable view: %+v", bad)
	}
}
