package api

import (
	"crypto/sha512"
	"fmt"
	"math"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Limits of registry records.
const (
	MaxEndpointBytes    = 256
	MaxPlatformBytes    = 16
	MaxQuoteBytes       = 64 << 10
	MaxMeasurementBytes = TDXMeasurementSize
	ReportDataSize      = 64
	BlockHashSize       = 32 // a CometBFT block (header) hash, SHA-256
)

// Sizes of a pRuntime measurement, per attestation platform: what a
// verified report's Evidence.Measurement holds, hence every allowlist
// entry that can ever admit a worker.
const (
	// SimMeasurementSize: the sim platform's measurement, the SHA-256 of
	// the pRuntime executable (platform.ExecutableMeasurement, SimQuote).
	SimMeasurementSize = 32
	// TDXMeasurementSize: a TDX measurement, MRTD‖RTMR0‖RTMR1‖RTMR2, four
	// 48-byte registers (attestation.TDXMeasurement).
	TDXMeasurementSize = 4 * 48
)

// CheckMeasurement says whether m has the size of a measurement some
// platform produces (SimMeasurementSize or TDXMeasurementSize): no
// pRuntime can ever report a measurement of another size, so allowing,
// revoking or migrating to one is a mistake.
func CheckMeasurement(m []byte) error {
	switch len(m) {
	case SimMeasurementSize, TDXMeasurementSize:
		return nil
	}
	return fmt.Errorf("measurement of %d bytes: a pRuntime measurement is %d bytes (sim: SHA-256 of the pruntime executable) or %d bytes (tdx: MRTD||RTMR0||RTMR1||RTMR2), as pruntime's /info reports it",
		len(m), SimMeasurementSize, TDXMeasurementSize)
}

// Attestation platforms.
const (
	PlatformSim = "sim"
	PlatformTDX = "tdx"
)

// WorkerInfo is what a pRuntime states about itself when it registers; its
// attestation report commits to ReportData().
type WorkerInfo struct {
	ChainID     string
	IdentityKey crypto.PublicKey
	EcdhKey     crypto.PublicKey
	Endpoint    string           // base URL of the worker's pRuntime API for off-chain queries
	Operator    crypto.PublicKey // account paid for the worker's work; it must sign the register_worker transaction
	// BlockHeight and BlockHash name a recent block of this chain as the
	// pRuntime verified it: the block before its last verified header,
	// whose hash that header commits to (LastBlockID). Covered by
	// ReportData, they make a report fresh: the chain refuses a report whose
	// block is older than the attestation_window parameter (in blocks),
	// unknown, or of another hash (another chain or fork).
	BlockHeight int64
	BlockHash   [BlockHashSize]byte
	// Cores, MemoryMB (MiB) and RuntimeVersion are what the pRuntime
	// declares of its machine and itself (deployment requirements,
	// api.Requirements, are checked against them). Covered by ReportData:
	// the attested pRuntime states them, the chain does not measure them.
	Cores          uint32
	MemoryMB       uint64
	RuntimeVersion uint32
}

func (i *WorkerInfo) encode(w *codec.Writer) {
	w.String(i.ChainID)
	w.Fixed(i.IdentityKey[:])
	w.Fixed(i.EcdhKey[:])
	w.String(i.Endpoint)
	w.Fixed(i.Operator[:])
	w.Uvarint(uint64(i.BlockHeight))
	w.Fixed(i.BlockHash[:])
	w.Uvarint(uint64(i.Cores))
	w.Uvarint(i.MemoryMB)
	w.Uvarint(uint64(i.RuntimeVersion))
}

func (i *WorkerInfo) decode(r *codec.Reader) {
	i.ChainID = r.String(MaxChainIDBytes)
	r.Fixed(i.IdentityKey[:])
	r.Fixed(i.EcdhKey[:])
	i.Endpoint = r.String(MaxEndpointBytes)
	r.Fixed(i.Operator[:])
	h := r.Uvarint()
	if h > math.MaxInt64 {
		r.Fail(fmt.Errorf("%w: block height %d", codec.ErrBadFormat, h))
	}
	i.BlockHeight = int64(h)
	r.Fixed(i.BlockHash[:])
	i.Cores = decodeU32Field(r, "cores")
	i.MemoryMB = r.Uvarint()
	i.RuntimeVersion = decodeU32Field(r, "runtime version")
}

// Encode returns the canonical bytes.
func (i *WorkerInfo) Encode() []byte {
	w := codec.NewWriter(200)
	i.encode(w)
	return w.Bytes()
}

// ReportData is the 64 bytes an attestation report must carry:
// SHA-512(DomainWorkerInfo || Encode()).
func (i *WorkerInfo) ReportData() [ReportDataSize]byte {
	h := sha512.New()
	h.Write([]byte(DomainWorkerInfo))
	h.Write(i.Encode())
	var out [ReportDataSize]byte
	copy(out[:], h.Sum(nil))
	return out
}

// AttestationReport is a platform's quote.
type AttestationReport struct {
	Platform string
	Quote    []byte
}

func (a *AttestationReport) encode(w *codec.Writer) {
	w.String(a.Platform)
	w.BytesField(a.Quote)
}

func (a *AttestationReport) decode(r *codec.Reader) {
	a.Platform = r.String(MaxPlatformBytes)
	a.Quote = r.BytesField(MaxQuoteBytes)
}

// SimQuote is the quote of the sim platform: a statement signed by the
// development attestation key. It protects nothing from the machine's
// operator and is accepted only where the genesis allows it.
type SimQuote struct {
	Measurement [SimMeasurementSize]byte
	ReportData  [ReportDataSize]byte
	IssuedAt    int64 // unix seconds
	Signature   crypto.Signature
}

// SignBytes returns the bytes the development key signs.
func (q *SimQuote) SignBytes() []byte {
	w := codec.NewWriter(112)
	w.Fixed(q.Measurement[:])
	w.Fixed(q.ReportData[:])
	w.Varint(q.IssuedAt)
	return w.Bytes()
}

// Encode returns the canonical bytes.
func (q *SimQuote) Encode() []byte {
	return append(q.SignBytes(), q.Signature[:]...)
}

// DecodeSimQuote strictly decodes a sim quote.
func DecodeSimQuote(b []byte) (*SimQuote, error) {
	q := &SimQuote{}
	r := codec.NewReader(b)
	r.Fixed(q.Measurement[:])
	r.Fixed(q.ReportData[:])
	q.IssuedAt = r.Varint()
	r.Fixed(q.Signature[:])
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: sim quote: %v", ErrMalformed, err)
	}
	return q, nil
}

// WorkerRecord is the chain's entry for a registered worker.
type WorkerRecord struct {
	Info         WorkerInfo
	Platform     string
	Measurement  []byte
	RegisteredAt int64 // height of the (latest) registration
	ExpiresAt    int64 // first height at which the registration is no longer valid
	// ActiveSince is the height from which the worker has been registered
	// without a lapse: RegisteredAt for a first registration or one after
	// the previous expired, the previous record's ActiveSince for a renewal
	// made while it was still valid (pherry renews at every era's first
	// block to rotate the worker's EcdhKey; a renewal is not a newcomer,
	// so the era-end verdicts judge it: computation's Exempt).
	ActiveSince int64
	// AttestedAt is the time (unix seconds) the admitting report says it
	// was issued (for TDX: the block time of the registration). Replays are
	// refused by Info.BlockHeight instead: a renewal must cite a strictly
	// newer block than the registration it replaces.
	AttestedAt int64
}

// Active reports whether the registration is valid at height h.
func (w *WorkerRecord) Active(h int64) bool { return h < w.ExpiresAt }

// Encode returns the canonical bytes.
func (w *WorkerRecord) Encode() []byte {
	cw := codec.NewWriter(200)
	w.Info.encode(cw)
	cw.String(w.Platform)
	cw.BytesField(w.Measurement)
	cw.Uvarint(uint64(w.RegisteredAt))
	cw.Uvarint(uint64(w.ExpiresAt))
	cw.Varint(w.AttestedAt)
	if w.ActiveSince != w.RegisteredAt {
		// Only a renewal's: a first registration encodes as before.
		cw.Uvarint(uint64(w.ActiveSince))
	}
	return cw.Bytes()
}

// DecodeWorkerRecord strictly decodes a worker record.
func DecodeWorkerRecord(b []byte) (*WorkerRecord, error) {
	w := &WorkerRecord{}
	r := codec.NewReader(b)
	w.Info.decode(r)
	w.Platform = r.String(MaxPlatformBytes)
	w.Measurement = r.BytesField(MaxMeasurementBytes)
	w.RegisteredAt = int64(r.Uvarint())
	w.ExpiresAt = int64(r.Uvarint())
	w.AttestedAt = r.Varint()
	w.ActiveSince = w.RegisteredAt
	if r.Err() == nil && r.Remaining() > 0 {
		w.ActiveSince = int64(r.Uvarint())
		if r.Err() == nil && (w.ActiveSince < 0 || w.ActiveSince >= w.RegisteredAt) {
			r.Fail(fmt.Errorf("%w: active since %d, not before the registration at %d", codec.ErrBadFormat, w.ActiveSince, w.RegisteredAt))
		}
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: worker record: %v", ErrMalformed, err)
	}
	return w, nil
}

// maxWorkerRecordBytes bounds an encoded WorkerRecord inside a
// WorkerRegistered message (the record's own fields are bounded far below).
const maxWorkerRecordBytes = 4096

// WorkerRegistered is the payload of TopicWorkerRegistered: the record the
// registry stored and the attestation report that admitted it. The report
// travels with the record so that every pRuntime verifies it itself
// (attestation.Verify against the genesis settings and the allowlist as
// governance changed it, at the block time of the message) instead of
// trusting what the chain's validators state: a key leaves an enclave only
// sealed to a peer whose attestation the enclave checked. The chain state
// keeps the record only (a quote is up to MaxQuoteBytes); the report stays
// provable in the block's messages.
type WorkerRegistered struct {
	Record WorkerRecord
	Report AttestationReport
}

// Encode returns the canonical bytes: the record (length-prefixed), then
// the report.
func (m *WorkerRegistered) Encode() []byte {
	w := codec.NewWriter(256 + len(m.Report.Quote))
	w.BytesField(m.Record.Encode())
	m.Report.encode(w)
	return w.Bytes()
}

// DecodeWorkerRegistered strictly decodes a TopicWorkerRegistered payload.
// Errors wrap ErrMalformed.
func DecodeWorkerRegistered(b []byte) (*WorkerRegistered, error) {
	m := &WorkerRegistered{}
	r := codec.NewReader(b)
	rec := r.BytesField(maxWorkerRecordBytes)
	m.Report.decode(r)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: worker registration: %v", ErrMalformed, err)
	}
	wr, err := DecodeWorkerRecord(rec)
	if err != nil {
		return nil, fmt.Errorf("worker registration: %w", err)
	}
	m.Record = *wr
	return m, nil
}

// Account is the chain's entry for an account.
type Account struct {
	Balance uint64
	Nonce   uint64 // the nonce its next transaction must carry
}

// Encode returns the canonical bytes.
func (a *Account) Encode() []byte {
	w := codec.NewWriter(20)
	w.Uvarint(a.Balance)
	w.Uvarint(a.Nonce)
	return w.Bytes()
}

// DecodeAccount strictly decodes an account.
func DecodeAccount(b []byte) (*Account, error) {
	a := &Account{}
	r := codec.NewReader(b)
	a.Balance = r.Uvarint()
	a.Nonce = r.Uvarint()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: account: %v", ErrMalformed, err)
	}
	return a, nil
}

// EncodeKeys encodes a list of public keys (the gatekeeper list).
func EncodeKeys(keys []crypto.PublicKey) []byte {
	w := codec.NewWriter(1 + 32*len(keys))
	w.Uvarint(uint64(len(keys)))
	for _, k := range keys {
		w.Fixed(k[:])
	}
	return w.Bytes()
}

// DecodeKeys strictly decodes a list of public keys.
func DecodeKeys(b []byte) ([]crypto.PublicKey, error) {
	r := codec.NewReader(b)
	n := r.Uvarint()
	if n > uint64(r.Remaining()/crypto.PublicKeySize) {
		r.Fail(codec.ErrTooLong)
	}
	var keys []crypto.PublicKey
	if r.Err() == nil {
		keys = make([]crypto.PublicKey, n)
		for i := range keys {
			r.Fixed(keys[i][:])
		}
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: key list: %v", ErrMalformed, err)
	}
	return keys, nil
}
