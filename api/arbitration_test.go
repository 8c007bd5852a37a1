package api

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/phalago/phala/crypto"
)

func arbitrationSeeds() [][]byte {
	k := crypto.MustKeyPairFromURI("//K").Public()
	grant := (&ContractKeyGrant{Upload: [32]byte{1}, Identity: k, Ecdh: k, Era: 2, Round: [32]byte{7}, Workers: []crypto.PublicKey{k}}).Encode()
	return [][]byte{
		EncodeCall(&ArbitrationRequest{Contract: k, Height: 12}),
		(&StateVote{Contract: k, Height: 12, Root: [32]byte{3}}).Encode(),
		(&ArbitrationOpened{Contract: k, Height: 12, Root: [32]byte{3}, PrevHeight: 4, PrevRoot: EmptyStateRoot, EntriesHeight: 9, Requester: k}).Encode(),
		(&ArbitersAssigned{Contract: k, Height: 12, Arbiters: []crypto.PublicKey{k, k}, Grant: grant}).Encode(),
		(&ArbitrationVerdict{Contract: k, Height: 12, Outcome: ArbitrationOverturned, Root: [32]byte{5}, Slashed: []crypto.PublicKey{k}, RollbackHeight: 4, RollbackRoot: EmptyStateRoot}).Encode(),
		(&Arbitration{Height: 12, Root: [32]byte{3}, PrevHeight: 4, PrevRoot: EmptyStateRoot, EntriesHeight: 9, Requester: k, Bond: 10 * Unit, Opened: 10, Arbiters: []crypto.PublicKey{k}}).Encode(),
		(&Arbitration{Height: 1, Requester: k}).Encode(),
	}
}

// Every arbitration payload and the arbitration record round-trip; the
// decoders refuse trailing bytes, truncations, an unknown outcome, a
// non-positive request height.
func TestArbitrationCodec(t *testing.T) {
	s := arbitrationSeeds()
	decoders := []func([]byte) ([]byte, error){
		func(b []byte) ([]byte, error) {
			c, err := DecodeCall(CallArbitrationRequest, b)
			if err != nil {
				return nil, err
			}
			return EncodeCall(c), nil
		},
		func(b []byte) ([]byte, error) { v, err := DecodeStateVote(b); return enc(v, err) },
		func(b []byte) ([]byte, error) { v, err := DecodeArbitrationOpened(b); return enc(v, err) },
		func(b []byte) ([]byte, error) { v, err := DecodeArbitersAssigned(b); return enc(v, err) },
		func(b []byte) ([]byte, error) { v, err := DecodeArbitrationVerdict(b); return enc(v, err) },
		func(b []byte) ([]byte, error) { v, err := DecodeArbitration(b); return enc(v, err) },
		func(b []byte) ([]byte, error) { v, err := DecodeArbitration(b); return enc(v, err) },
	}
	for i, b := range s {
		got, err := decoders[i](b)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("seed %d: %x %v", i, got, err)
		}
		if _, err := decoders[i](append(bytes.Clone(b), 0)); err == nil {
			t.Errorf("seed %d: trailing byte accepted", i)
		}
		if _, err := decoders[i](b[:len(b)-1]); err == nil {
			t.Errorf("seed %d: truncation accepted", i)
		}
	}
	k := crypto.MustKeyPairFromURI("//K").Public()
	if _, err := DecodeArbitrationVerdict((&ArbitrationVerdict{Contract: k, Outcome: 4}).Encode()); !errors.Is(err, ErrMalformed) {
		t.Errorf("outcome 4: %v", err)
	}
	if _, err := DecodeCall(CallArbitrationRequest, EncodeCall(&ArbitrationRequest{Contract: k})); !errors.Is(err, ErrMalformed) {
		t.Errorf("height 0: %v", err)
	}
	if a, err := DecodeArbitration(s[6]); err != nil || a.Arbiters != nil {
		t.Errorf("no arbiters: %+v %v", a, err)
	}
	if key, err := QueryKey(QueryArbitration, k[:]); err != nil || !bytes.Equal(key, ArbitrationKey(k)) {
		t.Errorf("query key %x %v", key, err)
	}
}

type encoder interface{ Encode() []byte }

func enc[T encoder](v T, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return v.Encode(), nil
}

// FuzzDecodeArbitration: the arbitration request, the pushed votes and
// arbiter grants (untrusted), the module's announcements and its record
// decode strictly: whatever decodes re-encodes to the same bytes.
func FuzzDecodeArbitration(f *testing.F) {
	for _, b := range arbitrationSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := DecodeCall(CallArbitrationRequest, b); err == nil && !bytes.Equal(EncodeCall(c), b) {
			t.Fatalf("request mismatch %x", b)
		}
		if v, err := DecodeStateVote(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("vote mismatch %x", b)
		}
		if v, err := DecodeArbitrationOpened(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("opened mismatch %x", b)
		}
		if v, err := DecodeArbitersAssigned(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("arbiters assigned mismatch %x", b)
		}
		if v, err := DecodeArbitrationVerdict(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("verdict mismatch %x", b)
		}
		if v, err := DecodeArbitration(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("arbitration mismatch %x", b)
		}
	})
}

// The arbitration window may not outgrow what a pRuntime keeps to rebuild
// the oldest disputable checkpoint (MaxRecoverBlocks/2).
func TestArbitrationWindowBound(t *testing.T) {
	p := DefaultParams()
	p.ArbitrationWindow = MaxRecoverBlocks / 2
	if err := p.Validate(); err != nil {
		t.Fatalf("window %d: %v", p.ArbitrationWindow, err)
	}
	p.ArbitrationWindow++
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "arbitration_window must be at most") {
		t.Fatalf("window %d: %v", p.ArbitrationWindow, err)
	}
}
