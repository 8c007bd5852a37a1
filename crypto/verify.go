package crypto

import (
	"bytes"
	"sync"

	"github.com/gtank/merlin"
	"github.com/gtank/ristretto255"
	subkey "github.com/vedhavyas/go-subkey/v2"
)

// Signature verification without the decode/encode round trips.
//
// schnorrkel's PublicKey.Verify (sr25519 as Substrate defines it) decodes
// the public key and R, re-encodes both for the transcript, computes
// R' = s·B − k·A and compares R' with R as group elements: four square
// roots or inversions beside the double-base scalar multiplication. Verify
// below does the same check with one: it caches each public key's decoded
// (negated) point, puts the raw bytes of A and R in the transcript, and
// compares the canonical encoding of R' with the signature's R bytes.
//
// Why this accepts exactly the signatures schnorrkel accepts: ristretto255
// encodings are canonical (Decode refuses any byte string that is not
// Encode of its element, RFC 9496 §4.3.1), so for R bytes that decode, R'
// equals R as an element iff Encode(R') equals those bytes, and the
// transcript sees the same bytes schnorrkel's re-encoding would give; R
// bytes that do not decode never equal an encoding, so both refuse them.
// The public key is used only if it decodes, is not the identity and
// re-encodes to its own bytes. The scalar s must be canonical and the
// signature marked as schnorrkel (high bit of byte 63), as in
// schnorrkel's Signature.Decode. FuzzVerifyMatchesSchnorrkel checks the
// equivalence against the library.

// keyCacheSize bounds the decoded public keys and addresses kept (about
// 200 bytes each): the active accounts of a busy chain.
const keyCacheSize = 1 << 14

// point is a public key's decoded form: neg is −A for verification, nil
// when the bytes are not a valid key for signatures; valid is what Valid
// reports.
type point struct {
	neg   *ristretto255.Element
	valid bool
}

var (
	points    = newBoundedMap[point](keyCacheSize)
	addresses = newBoundedMap[string](keyCacheSize)
)

// decodePoint returns pk's decoded form, from the cache when it is there.
func decodePoint(pk PublicKey) point {
	if p, ok := points.get(pk); ok {
		return p
	}
	var p point
	var e ristretto255.Element
	if pk != (PublicKey{}) && e.Decode(pk[:]) == nil {
		p.valid = true
		var enc [PublicKeySize]byte
		if e.Equal(ristretto255.NewElement()) == 0 && bytes.Equal(e.Encode(enc[:0]), pk[:]) {
			p.neg = ristretto255.NewElement().Negate(&e)
		}
	}
	points.put(pk, p)
	return p
}

// schnorrkel's transcript labels (w3f/schnorrkel sign.rs, context.rs).
var (
	labelEmpty     = []byte("")
	labelSignBytes = []byte("sign-bytes")
	labelProto     = []byte("proto-name")
	protoSchnorr   = []byte("Schnorr-sig")
	labelPK        = []byte("sign:pk")
	labelR         = []byte("sign:R")
	labelC         = []byte("sign:c")
)

// verify is pk.Verify: see the comment at the top of this file.
func verify(pk PublicKey, ctx Context, msg []byte, sig *Signature) bool {
	if sig[63]&128 == 0 {
		return false
	}
	p := decodePoint(pk)
	if p.neg == nil {
		return false
	}
	var sb [32]byte
	copy(sb[:], sig[32:])
	sb[31] &= 127
	var s ristretto255.Scalar
	if s.Decode(sb[:]) != nil {
		return false
	}
	t := merlin.NewTranscript("SigningContext")
	t.AppendMessage(labelEmpty, []byte(ctx))
	t.AppendMessage(labelSignBytes, msg)
	t.AppendMessage(labelProto, protoSchnorr)
	t.AppendMessage(labelPK, pk[:])
	t.AppendMessage(labelR, sig[:32])
	var k ristretto255.Scalar
	k.FromUniformBytes(t.ExtractBytes(labelC, 64))
	var r ristretto255.Element
	r.VarTimeDoubleScalarBaseMult(&k, p.neg, &s)
	var enc [32]byte
	return bytes.Equal(r.Encode(enc[:0]), sig[:32])
}

// address is pk.Address, cached.
func address(pk PublicKey) string {
	if a, ok := addresses.get(pk); ok {
		return a
	}
	a := subkey.SS58Encode(pk[:], AddressFormat)
	addresses.put(pk, a)
	return a
}

// boundedMap is a concurrency-safe map from public keys that holds at
// most max entries, dropping an arbitrary one when full. It caches values
// that are a pure function of the key, so which entry goes only costs time.
type boundedMap[V any] struct {
	mu  sync.RWMutex
	m   map[PublicKey]V
	max int
}

func newBoundedMap[V any](max int) *boundedMap[V] {
	return &boundedMap[V]{m: make(map[PublicKey]V), max: max}
}

func (b *boundedMap[V]) get(k PublicKey) (V, bool) {
	b.mu.RLock()
	v, ok := b.m[k]
	b.mu.RUnlock()
	return v, ok
}

func (b *boundedMap[V]) put(k PublicKey, v V) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.m) >= b.max {
		for old := range b.m {
			delete(b.m, old)
			break
		}
	}
	b.m[k] = v
}
