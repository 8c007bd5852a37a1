package api

import (
	"bytes"
	"encoding/binary"
	"fmt"

	cmtcrypto "github.com/cometbft/cometbft/proto/tendermint/crypto"
	ics23 "github.com/cosmos/ics23/go"

	"github.com/phalago/phala/crypto"
)

// ABCI query paths. Data is the binary argument named in each comment.
const (
	QueryAccount     = "/account"     // data: public key [32]; value: Account
	QueryWorker      = "/worker"      // data: identity key [32]; value: WorkerRecord
	QueryGatekeepers = "/gatekeepers" // value: key list
	QueryMasterKey   = "/master_key"  // value: public key [32], absent until published
	QueryParams      = "/params"      // value: Params
	QueryAttestation = "/attestation" // value: AttestationSettings
	QueryNextSeq     = "/mq/next_seq" // data: origin; value: uvarint next sequence (absent = 0)
	QueryMessages    = "/mq/messages" // height from the request; value: BlockMessages (no proof op: verify with BlockMessages.Verify)
	QueryWorkers     = "/workers"     // a listing (unproved): key list of registered identities; prove each with /worker

	// The key lifecycle (docs/keys.md, module gatekeeper), proved.
	QueryKeyEra = "/keys/era" // value: uvarint era of the serving key set (KeyServingKeyEra), absent until the genesis MasterKey is announced
	QueryKeySet = "/keys/set" // data: era (big-endian u64); value: KeySet of that era (KeySetKey), absent if none was adopted
	QueryKeyDkg = "/keys/dkg" // value: DkgState of the running DKG (KeyDkg), absent when none runs
	// QueryKeyEraRetired: data: era (big-endian u64); value: varint height
	// of its retirement ‖ reason byte (0: no contract needed it; 1: its
	// deadline passed) (KeyEraRetiredKey), absent while it is not retired.
	QueryKeyEraRetired = "/keys/retired"
)

// State keys. Every proved query value lives under one of these.
var (
	KeyParams      = []byte("p/params")
	KeyAttestation = []byte("p/attestation")
	KeyGatekeepers = []byte("g/list")
	KeyMasterKey   = []byte("g/master")
	// KeyBlockHashFloor holds the lowest height (uvarint) whose hash may
	// still be under BlockHashKey; lower ones are pruned.
	KeyBlockHashFloor = []byte("b/floor")
)

// BlockHashKey is the state key of the hash of the block at height h (kept
// for the last attestation_window blocks). Heights are 8 bytes big-endian.
func BlockHashKey(h int64) []byte {
	return binary.BigEndian.AppendUint64([]byte("b/h/"), uint64(h))
}

// AccountKey is the state key of an account.
func AccountKey(pk crypto.PublicKey) []byte { return append([]byte("a/"), pk[:]...) }

// WorkerKey is the state key of a worker record.
func WorkerKey(pk crypto.PublicKey) []byte { return append([]byte("w/"), pk[:]...) }

// NextSeqKey is the state key of an origin's next message sequence.
func NextSeqKey(o Origin) []byte { return append([]byte("q/seq/"), o.Encode()...) }

// Proof operation types in an ABCI query response.
const (
	ProofOpIAVL    = "ics23:iavl"    // Data: ICS23 commitment proof of Key against the state root
	ProofOpAppHash = "phala:apphash" // Data: the block's messages root, hashed with the state root into the app hash
)

// ProofOps builds the proof operations of a query answer.
func ProofOps(key []byte, proof *ics23.CommitmentProof, messagesRoot []byte) (*cmtcrypto.ProofOps, error) {
	bz, err := proof.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode proof: %w", err)
	}
	return &cmtcrypto.ProofOps{Ops: []cmtcrypto.ProofOp{
		{Type: ProofOpIAVL, Key: key, Data: bz},
		{Type: ProofOpAppHash, Data: messagesRoot},
	}}, nil
}

// VerifyStateProof checks that key has value (or, with value nil, is absent)
// in the state committed by appHash, the app hash of the header of the
// height after the queried one. The proof ops come from an ABCI query with
// Prove set.
func VerifyStateProof(key, value []byte, ops *cmtcrypto.ProofOps, appHash []byte) error {
	if ops == nil || len(ops.Ops) != 2 || ops.Ops[0].Type != ProofOpIAVL || ops.Ops[1].Type != ProofOpAppHash {
		return fmt.Errorf("%w: expected proof ops [%s %s]", ErrBadProof, ProofOpIAVL, ProofOpAppHash)
	}
	if !bytes.Equal(ops.Ops[0].Key, key) {
		return fmt.Errorf("%w: proof is for another key", ErrBadProof)
	}
	var proof ics23.CommitmentProof
	if err := proof.Unmarshal(ops.Ops[0].Data); err != nil {
		return fmt.Errorf("%w: decode ics23 proof: %v", ErrBadProof, err)
	}
	root, err := proof.Calculate()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadProof, err)
	}
	if value != nil {
		if !ics23.VerifyMembership(ics23.IavlSpec, root, &proof, key, value) {
			return fmt.Errorf("%w: value does not match the proof", ErrBadProof)
		}
	} else if !ics23.VerifyNonMembership(ics23.IavlSpec, root, &proof, key) {
		return fmt.Errorf("%w: absence not proved", ErrBadProof)
	}
	if got := AppHash(root, ops.Ops[1].Data); !bytes.Equal(got, appHash) {
		return fmt.Errorf("%w: state root does not hash to the app hash", ErrBadProof)
	}
	return nil
}

// QueryKey returns the state key a state query path reads, so that a client
// can check a proof is for the key it asked about.
func QueryKey(path string, data []byte) ([]byte, error) {
	key32 := func() (crypto.PublicKey, error) {
		var pk crypto.PublicKey
		if len(data) != crypto.PublicKeySize {
			return pk, fmt.Errorf("%w: %s takes a 32-byte public key, got %d bytes", ErrInvalidCall, path, len(data))
		}
		copy(pk[:], data)
		return pk, nil
	}
	switch path {
	case QueryCheckpoint:
		pk, err := key32()
		return CheckpointKey(pk), err
	case QueryArbitration:
		pk, err := key32()
		return ArbitrationKey(pk), err
	case QueryActivity:
		if len(data) != 8+crypto.PublicKeySize {
			return nil, fmt.Errorf("%w: %s takes a big-endian u64 era and a 32-byte node key", ErrInvalidCall, path)
		}
		return ActivityKey(binary.BigEndian.Uint64(data), crypto.PublicKey(data[8:])), nil
	case QueryEraReport:
		if len(data) != 8 {
			return nil, fmt.Errorf("%w: %s takes a big-endian u64 era (8 bytes)", ErrInvalidCall, path)
		}
		return EraReportKey(binary.BigEndian.Uint64(data)), nil
	case QueryChallenge:
		pk, err := key32()
		return ChallengeKey(pk), err
	case QueryExecuted:
		if len(data) != 2*crypto.PublicKeySize {
			return nil, fmt.Errorf("%w: %s takes a contract key and a worker key (64 bytes)", ErrInvalidCall, path)
		}
		return ExecutedKey(crypto.PublicKey(data[:32]), crypto.PublicKey(data[32:])), nil
	case QueryAccount:
		pk, err := key32()
		return AccountKey(pk), err
	case QueryWorker:
		pk, err := key32()
		return WorkerKey(pk), err
	case QueryGatekeepers:
		return KeyGatekeepers, nil
	case QueryMasterKey:
		return KeyMasterKey, nil
	case QueryParams:
		return KeyParams, nil
	case QueryEraSchedule:
		return KeyEraSchedule, nil
	case QueryAttestation:
		return KeyAttestation, nil
	case QueryContract:
		pk, err := key32()
		return ContractKey(pk), err
	case QueryContractReturn:
		if len(data) != 64 {
			return nil, fmt.Errorf("%w: %s takes a contract key and a query hash (64 bytes)", ErrInvalidCall, path)
		}
		return ContractReturnKey(crypto.PublicKey(data[:32]), [32]byte(data[32:])), nil
	case QueryContractPayout:
		if len(data) != crypto.PublicKeySize+8 {
			return nil, fmt.Errorf("%w: %s takes a contract key and a big-endian u64 payout id (40 bytes), got %d bytes", ErrInvalidCall, path, len(data))
		}
		return ContractPayoutKey(crypto.PublicKey(data[:32]), binary.BigEndian.Uint64(data[32:])), nil
	case QueryEscrowOwner:
		pk, err := key32()
		return EscrowOwnerKey(pk), err
	case QueryDeployerSeq:
		pk, err := key32()
		return DeployerSeqKey(pk), err
	case QueryContractUpload:
		if len(data) != 32 {
			return nil, fmt.Errorf("%w: %s takes a 32-byte upload id", ErrInvalidCall, path)
		}
		var id [32]byte
		copy(id[:], data)
		return ContractUploadKey(id), nil
	case QuerySubnet:
		if len(data) != 32 {
			return nil, fmt.Errorf("%w: %s takes a 32-byte subnet id", ErrInvalidCall, path)
		}
		return SubnetKey([32]byte(data)), nil
	case QuerySubnetSeq:
		pk, err := key32()
		return SubnetSeqKey(pk), err
	case QueryUploadPending:
		if len(data) != 32 {
			return nil, fmt.Errorf("%w: %s takes a 32-byte upload id", ErrInvalidCall, path)
		}
		return UploadPendingKey([32]byte(data)), nil
	case QueryCouncil:
		return KeyCouncil, nil
	case QueryNextMotion:
		return KeyNextMotion, nil
	case QueryMinRuntimeVersion:
		return KeyMinRuntimeVersion, nil
	case QueryValidators:
		return KeyValidators, nil
	case QueryMotion:
		if len(data) != 8 {
			return nil, fmt.Errorf("%w: %s takes a big-endian u64 motion id (8 bytes)", ErrInvalidCall, path)
		}
		return MotionKey(binary.BigEndian.Uint64(data)), nil
	case QueryStakeLedger:
		pk, err := key32()
		return StakeLedgerKey(pk), err
	case QueryStakeNode:
		pk, err := key32()
		return NodeStakeKey(pk), err
	case QueryRewards:
		pk, err := key32()
		return RewardsKey(pk), err
	case QueryIssuance:
		return KeyIssuance, nil
	case QueryGatekeeperEra:
		if len(data) != 8 {
			return nil, fmt.Errorf("%w: %s takes a big-endian u64 era (8 bytes)", ErrInvalidCall, path)
		}
		return GatekeeperEraKey(binary.BigEndian.Uint64(data)), nil
	case QueryGatekeeperExposure:
		if len(data) != 8+crypto.PublicKeySize {
			return nil, fmt.Errorf("%w: %s takes a big-endian u64 era and a member key (40 bytes)", ErrInvalidCall, path)
		}
		return GatekeeperExposureKey(binary.BigEndian.Uint64(data), crypto.PublicKey(data[8:])), nil
	case QueryGatekeeperCandidates:
		return KeyGatekeeperCandidates, nil
	case QueryKeyEra:
		return KeyServingKeyEra, nil
	case QueryKeySet:
		if len(data) != 8 {
			return nil, fmt.Errorf("%w: %s takes a big-endian u64 era (8 bytes)", ErrInvalidCall, path)
		}
		return KeySetKey(binary.BigEndian.Uint64(data)), nil
	case QueryKeyDkg:
		return KeyDkg, nil
	case QueryMigration:
		return KeyRuntimeMigration, nil
	case QueryLastMigration:
		return KeyRuntimeMigrated, nil
	case QueryKeyEraRetired:
		if len(data) != 8 {
			return nil, fmt.Errorf("%w: %s takes a big-endian u64 era (8 bytes)", ErrInvalidCall, path)
		}
		return KeyEraRetiredKey(binary.BigEndian.Uint64(data)), nil
	case QueryGatekeeperCandidacy:
		pk, err := key32()
		return CandidacyKey(pk), err
	case QueryNextSeq:
		o, err := DecodeOrigin(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidCall, err)
		}
		return NextSeqKey(o), nil
	}
	return nil, fmt.Errorf("%w: unknown query path %q", ErrInvalidCall, path)
}
