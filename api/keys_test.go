package api

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
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

func dkgSeeds() [][]byte {
	k := crypto.MustKeyPairFromURI("//K").Public()
	w := crypto.MustKeyPairFromURI("//W").Public()
	return [][]byte{
		(&DkgMessage{Era: 3, Attempt: 1, Body: bytes.Repeat([]byte{7}, 96)}).Encode(),
		(&DkgMessage{Era: 1 << 40}).Encode(),
		(&DkgState{Era: 2, Phase: DkgCollectingKeys, PhaseStart: 30, Members: []crypto.PublicKey{k, w}, Keys: [][32]byte{{1}, {}}}).Encode(),
		(&DkgState{Era: 2, Attempt: 1, Phase: DkgDealing, PhaseStart: 34, Members: []crypto.PublicKey{k, w}, Keys: [][32]byte{{1}, {2}},
			Participants: []crypto.PublicKey{k, w}, T: 2, Dealt: []bool{true, false}, Results: [][32]byte{{3}, {}}}).Encode(),
	}
}

// FuzzDecodeDkgMessage: a member's DKG message (untrusted, any member
// posts it) decodes strictly: whatever decodes re-encodes to the same
// bytes.
func FuzzDecodeDkgMessage(f *testing.F) {
	for _, b := range dkgSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := DecodeDkgMessage(b); err == nil && !bytes.Equal(m.Encode(), b) {
			t.Fatalf("dkg message mismatch %x", b)
		}
	})
}

// FuzzDecodeDkgState: the chain's DKG record decodes strictly (a
// threshold beyond MaxGatekeepers, non-canonical varints and trailing
// bytes refused): whatever decodes re-encodes to the same bytes.
func FuzzDecodeDkgState(f *testing.F) {
	for _, b := range dkgSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := DecodeDkgState(b); err == nil {
			if !bytes.Equal(s.Encode(), b) {
				t.Fatalf("dkg state mismatch %x", b)
			}
			if s.T > MaxGatekeepers || len(s.Dealt) != len(s.Participants) || len(s.Keys) != len(s.Members) {
				t.Fatalf("dkg state out of bounds %x", b)
			}
		}
	})
}

// A DkgState whose threshold does not fit 32 bits (the first version
// truncated it) or exceeds MaxGatekeepers is refused; so is a trailing
// byte.
func TestDecodeDkgStateStrict(t *testing.T) {
	k := crypto.MustKeyPairFromURI("//K").Public()
	s := &DkgState{Era: 2, Phase: DkgDealing, Members: []crypto.PublicKey{k}, Keys: [][32]byte{{1}}, Participants: []crypto.PublicKey{k}, T: 1, Dealt: []bool{true}, Results: [][32]byte{{}}}
	good := s.Encode()
	if got, err := DecodeDkgState(good); err != nil || got.T != 1 {
		t.Fatalf("%v", err)
	}
	for name, tt := range map[string]uint64{"2^32+1": 1<<32 + 1, "MaxGatekeepers+1": MaxGatekeepers + 1} {
		// Re-encode with T written as a raw uvarint.
		b := s.Encode()
		i := len(b) - 1 - 1 - 32 // T = 1 (one byte), then Dealt[0] and Results[0]
		if b[i] != 1 {
			t.Fatal("layout")
		}
		bad := append(append(slices.Clone(b[:i]), binary.AppendUvarint(nil, tt)...), b[i+1:]...)
		if _, err := DecodeDkgState(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("T = %s: %v", name, err)
		}
	}
	if _, err := DecodeDkgState(append(slices.Clone(good), 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("trailing: %v", err)
	}
}
