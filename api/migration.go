package api

import (
	"fmt"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Runtime migration (docs/keys.md, "State migration"; the specification's
// "State Migration" improvement): governance approves a new pRuntime build
// by its measurement (ActionMigrateRuntime); the chain then assigns
// contracts and gatekeeper seats to that build only, hands each contract
// from its old-build workers to new-build ones (the new ones get the
// contract's key from the key set's members, sealed to their attested
// EcdhKey, and its state from the on-chain checkpoint; ReplicaReady says
// one has caught up), and, once no contract and no unretired key set
// depends on an old build, revokes the old measurements
// (RuntimeMigrated). Old-build pRuntimes then stop serving.

// MigrationModule is the migration module's origin name in the queue.
const MigrationModule = "migration"

// Topics of the migration.
const (
	// TopicMigrationStarted: payload RuntimeMigration, origin module
	// "migration": a motion started a migration.
	TopicMigrationStarted = "phala/migration/started"
	// TopicMigrationCompleted: payload RuntimeMigrated, origin module
	// "migration": the old measurements are revoked.
	TopicMigrationCompleted = "phala/migration/completed"
	// TopicMigrationCancelled: payload RuntimeMigrated (Cancelled),
	// origin module "migration": a cancel_migration motion ended the
	// running migration; nothing was revoked, every allowed build may be
	// given new work again.
	TopicMigrationCancelled = "phala/migration/cancelled"
	// TopicReplicaReady: payload ReplicaReady, origin a worker: the
	// worker, added to a contract that ran before, rebuilt its state and
	// runs in step with the chain.
	TopicReplicaReady = "phala/contracts/replica_ready"
)

// Query paths of the migration module.
const (
	QueryMigration     = "/migration"      // value: RuntimeMigration of the running migration (absent: none)
	QueryLastMigration = "/migration/last" // value: RuntimeMigrated of the last completed or cancelled migration (absent: none)
)

// State keys of the migration module.
var (
	KeyRuntimeMigration = []byte("m/running")
	KeyRuntimeMigrated  = []byte("m/last")
)

// RemovedMigrated is the reason a contract's worker running an old
// pRuntime build is removed once new-build replicas caught up.
const RemovedMigrated = "handed over to the new pRuntime build (runtime migration)"

// RuntimeMigration is a running migration to the build of measurement
// Target; From are the other measurements the allowlist held at Start
// (the height of the motion's enactment), revoked at the end. At its
// last check (height Checked, 0 before the first) OldContracts contracts
// still had a worker of an old build and OldKeyHolders gatekeepers or
// key set members ran one.
type RuntimeMigration struct {
	Target        HexBytes
	From          []HexBytes
	Start         int64
	Checked       int64
	OldContracts  uint32
	OldKeyHolders uint32
}

// Encode returns the canonical bytes of m.
func (m *RuntimeMigration) Encode() []byte {
	w := codec.NewWriter(64 + 33*len(m.From))
	w.BytesField(m.Target)
	w.Fixed(EncodeMeasurements(m.From))
	w.Varint(m.Start)
	w.Varint(m.Checked)
	w.Uvarint(uint64(m.OldContracts))
	w.Uvarint(uint64(m.OldKeyHolders))
	return w.Bytes()
}

// DecodeRuntimeMigration strictly decodes a RuntimeMigration.
func DecodeRuntimeMigration(b []byte) (*RuntimeMigration, error) {
	m := &RuntimeMigration{}
	r := codec.NewReader(b)
	m.Target = r.BytesField(MaxMeasurementBytes)
	m.From = readMeasurements(r)
	m.Start = r.Varint()
	m.Checked = r.Varint()
	m.OldContracts = decodeU32(r)
	m.OldKeyHolders = decodeU32(r)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: runtime migration: %v", ErrMalformed, err)
	}
	if len(m.Target) == 0 || m.Start < 0 || (m.Checked != 0 && m.Checked < m.Start) {
		return nil, fmt.Errorf("%w: runtime migration: empty target or heights out of order", ErrMalformed)
	}
	return m, nil
}

// IsOld reports whether measurement runs a build the migration retires
// (anything but its target).
func (m *RuntimeMigration) IsOld(measurement []byte) bool {
	return string(measurement) != string(m.Target)
}

// RuntimeMigrated is an ended migration: Target and Start are the
// migration's, Height when it ended. A completed one revoked Retired; a
// cancelled one (Cancelled, api.ActionCancelMigration) revoked nothing
// (Retired empty) and carries PrevCompleted, the height of the last
// completion before it (0: none), which the contracts' rekey rule
// follows.
type RuntimeMigrated struct {
	Target        HexBytes
	Retired       []HexBytes
	Start         int64
	Height        int64
	Cancelled     bool
	PrevCompleted int64
}

// Encode returns the canonical bytes of m. A cancelled migration's
// record ends with a byte 1 and PrevCompleted; a completed one's has
// nothing after Height (as before cancellation existed).
func (m *RuntimeMigrated) Encode() []byte {
	w := codec.NewWriter(64 + 33*len(m.Retired))
	w.BytesField(m.Target)
	w.Fixed(EncodeMeasurements(m.Retired))
	w.Varint(m.Start)
	w.Varint(m.Height)
	if m.Cancelled {
		w.U8(1)
		w.Varint(m.PrevCompleted)
	}
	return w.Bytes()
}

// DecodeRuntimeMigrated strictly decodes a RuntimeMigrated.
func DecodeRuntimeMigrated(b []byte) (*RuntimeMigrated, error) {
	m := &RuntimeMigrated{}
	r := codec.NewReader(b)
	m.Target = r.BytesField(MaxMeasurementBytes)
	m.Retired = readMeasurements(r)
	m.Start = r.Varint()
	m.Height = r.Varint()
	if r.Err() == nil && r.Remaining() > 0 {
		if r.U8() != 1 {
			r.Fail(fmt.Errorf("%w: runtime migrated: bad cancellation flag", codec.ErrBadFormat))
		}
		m.Cancelled = true
		m.PrevCompleted = r.Varint()
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: runtime migrated: %v", ErrMalformed, err)
	}
	if len(m.Target) == 0 || m.Start < 0 || m.Height < m.Start {
		return nil, fmt.Errorf("%w: runtime migrated: empty target or heights out of order", ErrMalformed)
	}
	if m.Cancelled && (len(m.Retired) != 0 || m.PrevCompleted < 0 || m.PrevCompleted > m.Start) {
		return nil, fmt.Errorf("%w: runtime migrated: a cancelled migration retires nothing and follows its previous completion", ErrMalformed)
	}
	return m, nil
}

// LastCompleted is the height of the last completed migration as of m
// (m's own for a completion, PrevCompleted for a cancellation; 0: none).
func (m *RuntimeMigrated) LastCompleted() int64 {
	if m.Cancelled {
		return m.PrevCompleted
	}
	return m.Height
}

// Retires reports whether measurement is one the migration revoked.
func (m *RuntimeMigrated) Retires(measurement []byte) bool {
	for _, x := range m.Retired {
		if string(x) == string(measurement) {
			return true
		}
	}
	return false
}

// readMeasurements reads an EncodeMeasurements list inline.
func readMeasurements(r *codec.Reader) []HexBytes {
	n := r.Uvarint()
	if n > MaxMeasurements || n > uint64(r.Remaining()) {
		r.Fail(fmt.Errorf("%w: %d measurements", codec.ErrTooLong, n))
		return nil
	}
	var ms []HexBytes
	for i := uint64(0); r.Err() == nil && i < n; i++ {
		m := r.BytesField(MaxMeasurementBytes)
		if r.Err() == nil && len(m) == 0 {
			r.Fail(fmt.Errorf("%w: empty measurement", codec.ErrBadFormat))
		}
		ms = append(ms, m)
	}
	return ms
}

// ReplicaReady is the payload of TopicReplicaReady: the worker that
// pushed it rebuilt Contract's state (from its on-chain checkpoint and
// the blocks since) and has dispatched the queue through Height.
type ReplicaReady struct {
	Contract crypto.PublicKey
	Height   int64
}

// Encode returns the canonical bytes of m.
func (m *ReplicaReady) Encode() []byte {
	w := codec.NewWriter(48)
	w.Fixed(m.Contract[:])
	w.Varint(m.Height)
	return w.Bytes()
}

// DecodeReplicaReady strictly decodes a ReplicaReady.
func DecodeReplicaReady(b []byte) (*ReplicaReady, error) {
	m := &ReplicaReady{}
	r := codec.NewReader(b)
	r.Fixed(m.Contract[:])
	m.Height = r.Varint()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: replica ready: %v", ErrMalformed, err)
	}
	if m.Height < 1 {
		return nil, fmt.Errorf("%w: replica ready: height %d", ErrMalformed, m.Height)
	}
	return m, nil
}
