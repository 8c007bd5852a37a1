package api

import (
	"fmt"
	"time"

	"github.com/phalago/phala/api/codec"
)

// Limits of pRuntime sync payloads.
const (
	MaxHeaderBytes      = 1 << 20
	MaxValidatorsBytes  = 4 << 20
	MaxSyncBatch        = 10_000
	MaxSyncPayloadBytes = 64 << 20
)

// HeaderSync is one header for pRuntime's light client: the CometBFT
// signed header and its validator set, both protobuf-encoded.
type HeaderSync struct {
	SignedHeader []byte
	Validators   []byte
}

// HeaderBatch is a run of consecutive headers, sent to pRuntime's header
// sync endpoint.
type HeaderBatch struct{ Headers []HeaderSync }

// Encode returns the canonical bytes.
func (b *HeaderBatch) Encode() []byte {
	w := codec.NewWriter(1024 * len(b.Headers))
	w.Uvarint(uint64(len(b.Headers)))
	for _, h := range b.Headers {
		w.BytesField(h.SignedHeader)
		w.BytesField(h.Validators)
	}
	return w.Bytes()
}

// DecodeHeaderBatch strictly decodes a header batch.
func DecodeHeaderBatch(data []byte) (*HeaderBatch, error) {
	r := codec.NewReader(data)
	n := r.Uvarint()
	if n > MaxSyncBatch || n > uint64(r.Remaining()/2) {
		r.Fail(fmt.Errorf("%w: %d headers", codec.ErrTooLong, n))
	}
	b := &HeaderBatch{}
	for i := uint64(0); r.Err() == nil && i < n; i++ {
		b.Headers = append(b.Headers, HeaderSync{SignedHeader: r.BytesField(MaxHeaderBytes), Validators: r.BytesField(MaxValidatorsBytes)})
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: header batch: %v", ErrMalformed, err)
	}
	return b, nil
}

// BlockBatch is a run of consecutive blocks' messages, sent to pRuntime's
// dispatch endpoint.
type BlockBatch struct{ Blocks []BlockMessages }

// Encode returns the canonical bytes.
func (b *BlockBatch) Encode() []byte {
	w := codec.NewWriter(64 * len(b.Blocks))
	w.Uvarint(uint64(len(b.Blocks)))
	for i := range b.Blocks {
		w.BytesField(b.Blocks[i].Encode())
	}
	return w.Bytes()
}

// DecodeBlockBatch strictly decodes a block batch.
func DecodeBlockBatch(data []byte) (*BlockBatch, error) {
	r := codec.NewReader(data)
	n := r.Uvarint()
	if n > MaxSyncBatch || n > uint64(r.Remaining()) {
		r.Fail(fmt.Errorf("%w: %d blocks", codec.ErrTooLong, n))
	}
	b := &BlockBatch{}
	for i := uint64(0); r.Err() == nil && i < n; i++ {
		raw := r.BytesField(MaxSyncPayloadBytes)
		if r.Err() != nil {
			break
		}
		bm, err := DecodeBlockMessages(raw)
		if err != nil {
			return nil, fmt.Errorf("block %d of batch: %w", i, err)
		}
		b.Blocks = append(b.Blocks, *bm)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: block batch: %v", ErrMalformed, err)
	}
	return b, nil
}

// EncodeSignedMessages encodes pRuntime's egress.
func EncodeSignedMessages(ms []SignedMessage) []byte {
	w := codec.NewWriter(128 * len(ms))
	w.Uvarint(uint64(len(ms)))
	for i := range ms {
		ms[i].encode(w)
	}
	return w.Bytes()
}

// DecodeSignedMessages strictly decodes pRuntime's egress.
func DecodeSignedMessages(data []byte) ([]SignedMessage, error) {
	r := codec.NewReader(data)
	n := r.Uvarint()
	if n > uint64(r.Remaining()/(minMessageBytes+64)) {
		r.Fail(fmt.Errorf("%w: %d messages", codec.ErrTooLong, n))
	}
	var ms []SignedMessage
	for i := uint64(0); r.Err() == nil && i < n; i++ {
		ms = append(ms, decodeSignedMessage(r))
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: signed messages: %v", ErrMalformed, err)
	}
	return ms, nil
}

// PRuntimePublicInfo is what a pRuntime tells anyone on its public API (GET
// /info there, at the endpoint in its WorkerInfo): the facts a client needs
// to address it (identity and ECDH keys, role, platform, measurement, chain)
// and how far it follows the chain (heights in blocks, the last block's
// time). Nothing an outsider could use to watch its load or its contracts.
type PRuntimePublicInfo struct {
	ChainID     string    `json:"chain_id"`
	Role        string    `json:"role"`
	Platform    string    `json:"platform"`
	Measurement string    `json:"measurement"`
	IdentityKey string    `json:"identity_key"`
	EcdhKey     string    `json:"ecdh_key"`
	MasterKey   string    `json:"master_public_key,omitempty"`
	Synced      int64     `json:"synced_header"`
	Dispatched  int64     `json:"dispatched_block"`
	BlockTime   time.Time `json:"block_time"`
	// RetiredAt: the height at which a completed runtime migration
	// retired this pRuntime's build (docs/keys.md, "State migration");
	// it serves nothing since. 0: it serves.
	RetiredAt int64 `json:"retired_at,omitempty"`
}

// PRuntimeInfo is what a pRuntime tells its host on the control API (GET
// /info there): the public facts and, beside them in the same JSON object,
// operational detail that the public API leaves out (egress backlog,
// memory, contract state roots); no secret.
type PRuntimeInfo struct {
	PRuntimePublicInfo
	Egress      int               `json:"egress"`
	Workers     int               `json:"known_workers"`
	StateRoot   string            `json:"state_root"`
	Contracts   map[string]string `json:"contracts,omitempty"` // contract identity -> encrypted state root
	MemoryBytes uint64            `json:"memory_bytes"`
	// Version is the pRuntime's version; MinVersion the minimum the chain's
	// governance announced so far (dispatch stops at a higher one).
	Version    uint32 `json:"runtime_version"`
	MinVersion uint32 `json:"min_runtime_version"`
	// Recovering: the contracts this worker was assigned and is
	// rebuilding from the chain, with what its relayer must bring
	// (POST /recover).
	Recovering []RecoveryNeed `json:"recovering,omitempty"`
}

// Public returns the subset of i the public API serves.
func (i *PRuntimeInfo) Public() PRuntimePublicInfo { return i.PRuntimePublicInfo }
