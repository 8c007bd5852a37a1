package api

import (
	"bytes"
	"errors"
	"testing"

	"github.com/phalago/phala/crypto"
)

// FuzzDecodeGatekeeper covers the gatekeeper election's records, payloads
// and call: whatever decodes re-encodes to the same bytes.
func FuzzDecodeGatekeeper(f *testing.F) {
	k := crypto.MustKeyPairFromURI("//K").Public()
	f.Add(EncodeCall(&GatekeeperCandidacy{Node: k, On: true}))
	f.Add((&Candidacy{Node: k, Operator: k, Since: 9}).Encode())
	f.Add((&ElectionRecord{Era: 3, Height: 30, Members: []crypto.PublicKey{k}, Backing: []MemberBacking{{Total: 9, Own: 4}}, Confirmed: []crypto.PublicKey{k}, Status: ElectionActive, StatusHeight: 31}).Encode())
	f.Add((&Exposure{Era: 3, Member: k, Total: 9, Own: 4, Others: []Backer{{Who: k, Amount: 5}}}).Encode())
	f.Add((&GatekeeperSet{Era: 4, Members: []crypto.PublicKey{k, k}}).Encode())
	f.Add((&GatekeeperReady{Era: 1 << 40}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, err := DecodeCall(CallGatekeeperCandidacy, b); err == nil && !bytes.Equal(EncodeCall(got), b) {
			t.Fatalf("candidacy call mismatch: %x", b)
		}
		if got, err := DecodeCandidacy(b); err == nil && !bytes.Equal(got.Encode(), b) {
			t.Fatalf("candidacy mismatch: %x", b)
		}
		if got, err := DecodeElectionRecord(b); err == nil && (!bytes.Equal(got.Encode(), b) || len(got.Backing) != len(got.Members)) {
			t.Fatalf("election record mismatch: %x", b)
		}
		if got, err := DecodeExposure(b); err == nil && !bytes.Equal(got.Encode(), b) {
			t.Fatalf("exposure mismatch: %x", b)
		}
		if got, err := DecodeGatekeeperSet(b); err == nil && !bytes.Equal(got.Encode(), b) {
			t.Fatalf("gatekeeper set mismatch: %x", b)
		}
		if got, err := DecodeGatekeeperReady(b); err == nil && !bytes.Equal(got.Encode(), b) {
			t.Fatalf("ready mismatch: %x", b)
		}
	})
}

// The election's records decode strictly: out-of-range values and
// trailing bytes are refused, not wrapped or ignored.
func TestGatekeeperRecordsStrict(t *testing.T) {
	k := crypto.MustKeyPairFromURI("//K").Public()
	good := ElectionRecord{Era: 2, Height: 20, Members: []crypto.PublicKey{k}, Backing: []MemberBacking{{Total: 5, Own: 5}}, Status: ElectionPending, StatusHeight: 20}
	if got, err := DecodeElectionRecord(good.Encode()); err != nil || got.Members[0] != k || got.Backing[0] != good.Backing[0] {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	ownOver := good
	ownOver.Backing = []MemberBacking{{Total: 5, Own: 6}}
	badStatus := good
	badStatus.Status = 3
	tooMany := good
	tooMany.Members = make([]crypto.PublicKey, MaxGatekeepers+1)
	tooMany.Backing = make([]MemberBacking, MaxGatekeepers+1)
	moreConfirmed := good
	moreConfirmed.Confirmed = []crypto.PublicKey{k, k}
	for name, b := range map[string][]byte{
		"own over total":                ownOver.Encode(),
		"unknown status":                badStatus.Encode(),
		"over MaxGatekeepers":           tooMany.Encode(),
		"more confirmations than seats": moreConfirmed.Encode(),
		"trailing byte":                 append(good.Encode(), 0),
	} {
		if _, err := DecodeElectionRecord(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	c := (&Candidacy{Node: k, Operator: k, Since: 1}).Encode()
	big := append(c[:64:64], 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x41) // 2^62 + 2^56: over the height bound
	if _, err := DecodeCandidacy(big); !errors.Is(err, ErrMalformed) {
		t.Errorf("candidacy height over 2^62: %v", err)
	}
	if _, err := DecodeGatekeeperReady([]byte{0x80, 0x00}); !errors.Is(err, ErrMalformed) {
		t.Errorf("non-canonical ready: %v", err)
	}
	if _, err := DecodeCall(CallGatekeeperCandidacy, append(k[:], 2)); !errors.Is(err, ErrMalformed) {
		t.Errorf("candidacy with on = 2: %v", err)
	}
}
