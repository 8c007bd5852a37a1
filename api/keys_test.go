package api

import (
	"bytes"
	"errors"
	"testing"

	"github.com/phalago/phala/crypto"
)

func keySeeds() [][]byte {
	k := crypto.MustKeyPairFromURI("//K").Public()
	w := crypto.MustKeyPairFromURI("//W").Public()
	return [][]byte{
		(&KeyPartials{Upload: [32]byte{1}, Era: 3, Epoch: 1, MemberE: k, Workers: []SealedKey{{Worker: k, Sealed: []byte("p")}, {Worker: w, Sealed: []byte("q")}}}).Encode(),
		(&KeyPartials{Upload: [32]byte{1}, Purpose: KeyForArbiters, Contract: k, Disputed: 40, MemberE: k, Workers: []SealedKey{{Worker: w, Sealed: []byte("p")}}}).Encode(),
		(&ContractKeyed{Round: [32]byte{2}, Upload: [32]byte{1}, Identity: k, Ecdh: w}).Encode(),
		(&KeyPartials{Upload: [32]byte{1}, Era: 2, Epoch: 3, Purpose: KeyForEpoch, Contract: k, MemberE: k, Workers: []SealedKey{{Worker: w, Sealed: []byte("p")}}}).Encode(),
		(&Rekey{Contract: k, Upload: [32]byte{1}, Era: 2, Epoch: 3}).Encode(),
		(&KeySet{Era: 2, T: 2, Members: []crypto.PublicKey{k, w}, Commits: [][32]byte{{1}, {2}}}).Encode(),
		(&KeyRound{Upload: [32]byte{1}, Era: 2, Workers: []crypto.PublicKey{w}, Members: []crypto.PublicKey{k}, Height: 9}).Encode(),
	}
}

func decodeKeyMessage(i int, b []byte) ([]byte, error) {
	switch i {
	case 0, 1:
		v, err := DecodeKeyPartials(b)
		return enc(v, err)
	case 2:
		v, err := DecodeContractKeyed(b)
		return enc(v, err)
	case 3:
		v, err := DecodeKeyPartials(b)
		return enc(v, err)
	case 4:
		v, err := DecodeRekey(b)
		return enc(v, err)
	case 5:
		v, err := DecodeKeySet(b)
		return enc(v, err)
	default:
		v, err := DecodeKeyRound(b)
		return enc(v, err)
	}
}

// The key lifecycle's payloads round-trip and their decoders refuse
// trailing bytes, truncations and inconsistent fields.
func TestKeyMessagesCodec(t *testing.T) {
	for i, b := range keySeeds() {
		got, err := decodeKeyMessage(i, b)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("seed %d: %x %v", i, got, err)
		}
		if _, err := decodeKeyMessage(i, append(bytes.Clone(b), 0)); err == nil {
			t.Errorf("seed %d: trailing byte accepted", i)
		}
		if _, err := decodeKeyMessage(i, b[:len(b)-1]); err == nil {
			t.Errorf("seed %d: truncation accepted", i)
		}
	}
	k := crypto.MustKeyPairFromURI("//K").Public()
	bad := []struct {
		name string
		b    []byte
	}{
		{"no worker", (&KeyPartials{MemberE: k}).Encode()},
		{"worker twice", (&KeyPartials{MemberE: k, Workers: []SealedKey{{Worker: k}, {Worker: k}}}).Encode()},
		{"unknown purpose", (&KeyPartials{Purpose: 7, MemberE: k, Workers: []SealedKey{{Worker: k}}}).Encode()},
		{"workers naming a dispute", (&KeyPartials{Disputed: 4, MemberE: k, Workers: []SealedKey{{Worker: k}}}).Encode()},
		{"arbiters without a dispute", (&KeyPartials{Purpose: KeyForArbiters, MemberE: k, Workers: []SealedKey{{Worker: k}}}).Encode()},
		{"an epoch without a contract", (&KeyPartials{Purpose: KeyForEpoch, MemberE: k, Workers: []SealedKey{{Worker: k}}}).Encode()},
		{"an epoch naming a dispute", (&KeyPartials{Purpose: KeyForEpoch, Contract: k, Disputed: 3, MemberE: k, Workers: []SealedKey{{Worker: k}}}).Encode()},
		{"oversized partial", (&KeyPartials{MemberE: k, Workers: []SealedKey{{Worker: k, Sealed: make([]byte, MaxPartialSize+1)}}}).Encode()},
	}
	for _, c := range bad {
		if _, err := DecodeKeyPartials(c.b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", c.name, err)
		}
	}
	sets := []KeySet{
		{T: 0, Members: []crypto.PublicKey{k}},
		{T: 2, Members: []crypto.PublicKey{k}, Commits: [][32]byte{{1}, {2}}},
		{T: 1, Members: []crypto.PublicKey{k}, Commits: [][32]byte{{1}, {2}}},
		{T: 1, Members: []crypto.PublicKey{k, k}, Commits: [][32]byte{{1}}},
	}
	for i, s := range sets {
		if _, err := DecodeKeySet(s.Encode()); !errors.Is(err, ErrMalformed) {
			t.Errorf("key set %d: %v, want ErrMalformed", i, err)
		}
	}
	// The round of a member's partials does not depend on the member.
	a := KeyPartials{Upload: [32]byte{1}, MemberE: k, Workers: []SealedKey{{Worker: k, Sealed: []byte("a")}}}
	b := a
	b.MemberE, b.Workers = crypto.PublicKey{9}, []SealedKey{{Worker: k, Sealed: []byte("b")}}
	if a.Round() != b.Round() || bytes.Equal(a.AD(k), b.AD(k)) {
		t.Fatal("round must bind the round's fields only, AD the member too")
	}
	b.Epoch = 1
	if a.Round() == b.Round() {
		t.Fatal("round ignores the epoch")
	}
}

// FuzzDecodeKeyMessages: what the key lifecycle's decoders accept
// re-encodes to the same bytes.
func FuzzDecodeKeyMessages(f *testing.F) {
	for _, s := range keySeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for i := range 7 {
			if got, err := decodeKeyMessage(i, b); err == nil && !bytes.Equal(got, b) {
				t.Fatalf("decoder %d: %x re-encodes to %x", i, b, got)
			}
		}
	})
}
