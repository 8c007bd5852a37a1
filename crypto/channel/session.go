package channel

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"io"

	"golang.org/x/crypto/hkdf"
)

const sessionDomain = "phala/channel: query session v1"

// Session is one side of a query session's keys: one AES-256-GCM key per
// direction (client to worker, worker to client), derived with
// HKDF-SHA256 from the ECDH of the two sides' ephemeral keys and the
// handshake's transcript hash. Messages are numbered by their sequence
// number, which is the GCM nonce: the caller never seals two messages of
// one direction with the same number (the client numbers its queries, the
// worker answers each number once). A message sealed in one direction
// does not open in the other (different keys), so a host cannot reflect
// a query back to its client as an answer.
type Session struct {
	toWorker, toClient cipher.AEAD
}

// SessionOverhead is what sealing adds to a plaintext (the GCM tag; the
// nonce is the sequence number, sent by the caller).
const SessionOverhead = 16

// NewSession derives a session's keys from the ephemeral ECDH result
// shared and the hash of the handshake transcript (both sides compute the
// same).
func NewSession(shared [32]byte, transcript [32]byte) (*Session, error) {
	var keys [64]byte
	if _, err := io.ReadFull(hkdf.New(sha256.New, shared[:], transcript[:], []byte(sessionDomain)), keys[:]); err != nil {
		panic(err) // HKDF-SHA256 yields up to 8160 bytes
	}
	s := &Session{}
	var err error
	if s.toWorker, err = gcm(keys[:32]); err != nil {
		return nil, err
	}
	if s.toClient, err = gcm(keys[32:]); err != nil {
		return nil, err
	}
	return s, nil
}

func gcm(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func seqNonce(seq uint64) []byte {
	var n [NonceSize]byte
	binary.BigEndian.PutUint64(n[4:], seq)
	return n[:]
}

// SealQuery seals a client's query number seq (client side).
func (s *Session) SealQuery(seq uint64, plaintext, ad []byte) []byte {
	return s.toWorker.Seal(nil, seqNonce(seq), plaintext, ad)
}

// OpenQuery opens query number seq (worker side); ErrOpen if it was not
// sealed by the client of this session for seq and ad, ErrShort if it is
// shorter than a tag.
func (s *Session) OpenQuery(seq uint64, sealed, ad []byte) ([]byte, error) {
	return open(s.toWorker, seq, sealed, ad)
}

// SealAnswer seals the answer to query number seq (worker side).
func (s *Session) SealAnswer(seq uint64, plaintext, ad []byte) []byte {
	return s.toClient.Seal(nil, seqNonce(seq), plaintext, ad)
}

// OpenAnswer opens the answer to query number seq (client side); errors
// as OpenQuery.
func (s *Session) OpenAnswer(seq uint64, sealed, ad []byte) ([]byte, error) {
	return open(s.toClient, seq, sealed, ad)
}

func open(a cipher.AEAD, seq uint64, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < SessionOverhead {
		return nil, ErrShort
	}
	pt, err := a.Open(nil, seqNonce(seq), sealed, ad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}
