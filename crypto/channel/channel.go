// Package channel owns the end-to-end encrypted channels between two
// entities (a client and a contract, a gatekeeper and a worker): the key
// CommKey(A, B) and the authenticated encryption of messages under it.
//
// CommKey(A, B) = HKDF-SHA256(ikm = ECDH(A, B) on ristretto255,
// info = "phala/channel: v1" || purpose || the two public keys in byte
// order). Both sides derive the same key; a different purpose gives an
// unrelated key. Messages are AES-256-GCM with a random 96-bit nonce; the
// additional data binds the purpose, the sender's and the recipient's
// public keys and the caller's own additional data, so a message cannot be
// re-addressed, reflected back to its sender, or moved to another purpose.
// Phala itself uses the raw ECDH point as the AES key with no KDF and no
// additional data.
package channel

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/hkdf"

	"github.com/phalago/phala/crypto"
)

// NonceSize is the size of the nonce prefixed to every sealed message.
const NonceSize = 12

// Overhead is what sealing adds to a plaintext (nonce and GCM tag).
const Overhead = NonceSize + 16

const domain = "phala/channel: v1"

// Errors.
var (
	// ErrOpen means the message was not sealed for this channel: wrong key,
	// wrong sender or recipient, wrong purpose or additional data, or
	// tampered bytes. GCM cannot tell these apart, by design.
	ErrOpen = errors.New("cannot open message: not sealed by the peer for this key and purpose, or tampered")
	// ErrShort means the sealed message is shorter than nonce and tag.
	ErrShort = errors.New("sealed message too short")
)

// Channel is one side of CommKey(self, peer) for a purpose.
type Channel struct {
	self, peer crypto.PublicKey
	purpose    string
	aead       cipher.AEAD
}

// New derives the channel between the holder of self and peer.
func New(self *crypto.KeyPair, peer crypto.PublicKey, purpose string) (*Channel, error) {
	shared, err := self.SharedSecret(peer)
	if err != nil {
		return nil, fmt.Errorf("channel to %s: %w", peer.Short(), err)
	}
	key := CommKey(shared, self.Public(), peer, purpose)
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Channel{self: self.Public(), peer: peer, purpose: purpose, aead: aead}, nil
}

// CommKey derives the 32-byte AES key from an ECDH shared secret.
func CommKey(shared [32]byte, a, b crypto.PublicKey, purpose string) [32]byte {
	lo, hi := a, b
	if bytes.Compare(lo[:], hi[:]) > 0 {
		lo, hi = hi, lo
	}
	info := make([]byte, 0, len(domain)+len(purpose)+66)
	info = append(info, domain...)
	info = append(info, byte(len(purpose)))
	info = append(info, purpose...)
	info = append(info, lo[:]...)
	info = append(info, hi[:]...)
	var key [32]byte
	if _, err := io.ReadFull(hkdf.New(sha256.New, shared[:], nil, info), key[:]); err != nil {
		panic(err) // HKDF-SHA256 yields up to 8160 bytes
	}
	return key
}

// Peer returns the other side's public key.
func (c *Channel) Peer() crypto.PublicKey { return c.peer }

func (c *Channel) ad(from, to crypto.PublicKey, extra []byte) []byte {
	ad := make([]byte, 0, len(domain)+1+len(c.purpose)+64+len(extra))
	ad = append(ad, domain...)
	ad = append(ad, byte(len(c.purpose)))
	ad = append(ad, c.purpose...)
	ad = append(ad, from[:]...)
	ad = append(ad, to[:]...)
	return append(ad, extra...)
}

// Seal encrypts plaintext from self to peer, binding ad. The result is
// nonce || ciphertext || tag.
func (c *Channel) Seal(plaintext, ad []byte) []byte {
	out := make([]byte, NonceSize, Overhead+len(plaintext))
	if _, err := rand.Read(out); err != nil {
		panic(fmt.Sprintf("channel nonce: %v", err))
	}
	return c.aead.Seal(out, out[:NonceSize], plaintext, c.ad(c.self, c.peer, ad))
}

// Open decrypts a message the peer sealed to self with the same ad.
func (c *Channel) Open(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, ErrShort
	}
	pt, err := c.aead.Open(nil, sealed[:NonceSize], sealed[NonceSize:], c.ad(c.peer, c.self, ad))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}
