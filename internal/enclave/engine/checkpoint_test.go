package engine

import (
	"bytes"
	"testing"

	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/contracts"
)

// The checkpoint's core and contract part decoders are strict: whatever
// decodes re-encodes to the same bytes.
func FuzzDecodeCore(f *testing.F) {
	a, b := crypto.PublicKey{1}, crypto.PublicKey{2}
	c := &core{gen: 7, state: []byte("state"), egress: partRef{gen: 7, digest: [32]byte{9}},
		refs: map[crypto.PublicKey]partRef{a: {gen: 3, digest: [32]byte{1}}, b: {gen: 7, digest: [32]byte{2}}}, order: []crypto.PublicKey{a, b}}
	f.Add(c.encode())
	f.Add((&core{gen: 1, egress: partRef{gen: 1}, refs: map[crypto.PublicKey]partRef{}}).encode())
	f.Add([]byte{checkpointVersion, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeCore(data)
		if err != nil {
			return
		}
		if !bytes.Equal(c.encode(), data) {
			t.Fatalf("core %x re-encodes differently", data)
		}
	})
}

func FuzzDecodeContractFile(f *testing.F) {
	cf := &contractFile{upload: [32]byte{1}, seed: [crypto.SeedSize]byte{2}, calls: 5, root: [32]byte{3}, snap: []byte("snapshot"),
		nonces: map[crypto.PublicKey]uint64{{4}: 1, {5}: 9}, epochs: []contracts.EpochKey{{Epoch: 0, Key: [32]byte{6}}, {Epoch: 1, Key: [32]byte{7}}}}
	f.Add(cf.encode())
	f.Add((&contractFile{}).encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		cf, err := decodeContractFile(data)
		if err != nil {
			return
		}
		if !bytes.Equal(cf.encode(), data) {
			t.Fatalf("contract part %x re-encodes differently", data)
		}
	})
}
