package api

import (
	"fmt"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Recovery (docs/availability.md, "Recovery"): a worker added to a
// contract that already ran (a replacement, or a worker that lost its
// data) rebuilds the contract's state from the chain. pRuntime makes no
// network call: it says in its info what it needs (RecoveryNeed), its
// relayer reads it from the node and posts it (RecoverRequest), and
// pRuntime checks all of it against what it verified itself: the entries
// against the checkpoint root it followed in the queue, the blocks against
// the app hashes it kept.

// MaxRecoverBytes bounds a RecoverRequest (a contract's whole on-chain
// state plus the blocks since its checkpoint).
const MaxRecoverBytes = 1 << 30

// MaxRecoverBlocks bounds the blocks since a contract's checkpoint that a
// recovery replays (pRuntime keeps their app hashes only up to this many
// per contract).
const MaxRecoverBlocks = 10_000

// RecoveryNeed is what a recovering contract needs, as pRuntime's info
// (GET /info, "recovering") lists it: the contract's entries as the
// chain's state holds them at EntriesHeight (the block that accepted the
// checkpoint pRuntime follows; 0: the contract has no checkpoint, no
// entries), and the messages of the blocks at Heights (ascending: the
// blocks since the checkpoint with an input for the contract).
type RecoveryNeed struct {
	// Purpose: RecoverContract (a contract this worker now runs) or
	// RecoverArbitration (an arbiter recomputing a disputed update).
	Purpose          string  `json:"purpose"`
	Contract         string  `json:"contract"`
	CheckpointHeight int64   `json:"checkpoint_height"`
	EntriesHeight    int64   `json:"entries_height"`
	Heights          []int64 `json:"heights"`
}

// Purposes of a recovery (RecoverRequest.Purpose; RecoveryNeed.Purpose
// names them "contract" and "arbitration").
const (
	RecoverContract    uint8 = 0
	RecoverArbitration uint8 = 1
)

// RecoverPurposeName is the name of purpose p in a RecoveryNeed.
func RecoverPurposeName(p uint8) string {
	if p == RecoverArbitration {
		return "arbitration"
	}
	return "contract"
}

// RecoverRequest is the body of the control API's POST /recover: what a
// RecoveryNeed asks for.
type RecoverRequest struct {
	Purpose  uint8 // RecoverContract or RecoverArbitration
	Contract crypto.PublicKey
	Entries  []StateChange // ascending locations, values never nil
	Blocks   []BlockMessages
}

// Encode returns the canonical bytes.
func (q *RecoverRequest) Encode() []byte {
	n := 64
	for _, e := range q.Entries {
		n += 40 + len(e.Value)
	}
	w := codec.NewWriter(n)
	w.U8(q.Purpose)
	w.Fixed(q.Contract[:])
	encodeEntries(w, q.Entries)
	w.Uvarint(uint64(len(q.Blocks)))
	for i := range q.Blocks {
		w.BytesField(q.Blocks[i].Encode())
	}
	return w.Bytes()
}

// DecodeRecoverRequest strictly decodes a RecoverRequest: at most
// MaxRecoverBytes, locations strictly ascending, values of at least their
// 8-byte write counter, at most MaxRecoverBlocks blocks that decode.
func DecodeRecoverRequest(b []byte) (*RecoverRequest, error) {
	if len(b) > MaxRecoverBytes {
		return nil, fmt.Errorf("%w: recover request of %d bytes", ErrTooLarge, len(b))
	}
	q := &RecoverRequest{}
	r := codec.NewReader(b)
	q.Purpose = r.U8()
	if r.Err() == nil && q.Purpose > RecoverArbitration {
		r.Fail(fmt.Errorf("%w: purpose %d", codec.ErrBadFormat, q.Purpose))
	}
	r.Fixed(q.Contract[:])
	q.Entries = decodeEntries(r)
	nb := r.Uvarint()
	if nb > MaxRecoverBlocks || nb > uint64(r.Remaining()) {
		r.Fail(fmt.Errorf("%w: %d blocks", codec.ErrTooLong, nb))
	}
	for i := uint64(0); r.Err() == nil && i < nb; i++ {
		raw := r.BytesField(MaxSyncPayloadBytes)
		if r.Err() != nil {
			break
		}
		bm, err := DecodeBlockMessages(raw)
		if err != nil {
			return nil, fmt.Errorf("recover request: block %d: %w", i, err)
		}
		q.Blocks = append(q.Blocks, *bm)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: recover request: %v", ErrMalformed, err)
	}
	return q, nil
}

// RecoverAnswer is the JSON answer of POST /recover: the entries
// restored, the blocks replayed and the contract's state root after.
type RecoverAnswer struct {
	Entries  int    `json:"entries"`
	Replayed int    `json:"blocks_replayed"`
	Root     string `json:"state_root"`
}
