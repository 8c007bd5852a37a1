package engine

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sort"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

const stateVersion = 15

// state is everything pRuntime derives from the chain plus its egress. It
// is checkpointed (sealed) after every sync or dispatch call.
type state struct {
	// Light client: the last verified header (protobuf) and its height.
	trustedHeader []byte
	headerHeight  int64
	// App hashes of verified headers whose blocks are not dispatched yet:
	// appHash[h] is from header h+1 and commits to block h.
	appHash map[int64][]byte
	// Header times of verified heights whose blocks are not dispatched yet.
	headerTime map[int64]int64
	// Dispatch.
	dispatched int64
	blockTime  int64 // unix nanos of the last dispatched block's header
	nextSeq    map[string]uint64
	workers    map[crypto.PublicKey]*api.WorkerRecord
	// Egress: this pRuntime's own messages, kept until the chain echoes
	// them back in a dispatched block.
	egressSeq map[string]uint64 // next sequence per own origin
	egress    []api.SignedMessage
	// Contract uploads seen (chain-derived).
	uploads map[[32]byte]*upload
	// Key sets (keys.go): each key era's set the chain adopted, and the
	// serving one's era (hasKeySet false before the genesis one).
	keySets       map[uint64]*api.KeySet
	servingKeyEra uint64
	hasKeySet     bool
	// Governance: the allowed pRuntime measurements (from the genesis,
	// then as enacted) and the minimum pRuntime version announced.
	allowlist  []api.HexBytes
	minVersion uint32
	// Runtime migration (migration.go): the running one (nil if none),
	// and the height this pRuntime's build was retired at (0: it serves).
	migration *api.RuntimeMigration
	retiredAt int64
	// Attestation: the hashes of the recent blocks a registration's
	// report may cite (params.AttestationWindow of them),
	// blockHashes[h] from verified header h+1's LastBlockID; none is kept
	// below hashFloor.
	hashFloor   int64
	blockHashes map[int64][api.BlockHashSize]byte
	// Staking: each node's total stake as the staking module announced
	// it (absent: zero); min_worker_stake is in params.
	nodeStake map[crypto.PublicKey]uint64
	// The chain parameters (the genesis ones, then as governance set
	// them) and the nodes the chain found unresponsive at the last era
	// end (not assignable).
	params       api.Params
	unassignable map[crypto.PublicKey]bool
	// eras is the chain's era schedule (the genesis one, then as the
	// eras module announced it): which heights make up which era.
	eras *api.EraSchedule
	// Gatekeepers: the serving set (the genesis list, then each set the
	// chain activated), the elected set awaiting activation (nil if
	// none) and the era whose set this pRuntime confirmed.
	gatekeepers []crypto.PublicKey
	elected     *api.GatekeeperSet
	confirmed   uint64
	// Each contract's latest accepted state update (its on-chain
	// checkpoint, Entries and Bytes unused) and the height of its latest
	// command, whether this pRuntime runs it or not.
	checkpoints map[crypto.PublicKey]api.Checkpoint
	lastCommand map[crypto.PublicKey]int64
	// Subnets: each subnet's members (ascending) as the chain's subnet
	// module last announced them.
	subnets map[[32]byte][]crypto.PublicKey
	// Deployments (recovery.go): each deployed contract's workers, its
	// input heights since its checkpoint, the blocks they are in, and
	// what is kept of its latest accepted update besides the checkpoint.
	deployed  map[crypto.PublicKey]*deployment
	inputs    map[crypto.PublicKey][]int64
	blockRefs map[int64]*blockRef
	cpMeta    map[crypto.PublicKey]cpMeta
	// recovering: the contracts this worker was assigned and is
	// rebuilding from the chain (their keys; not chain-derived).
	recovering map[crypto.PublicKey]*heldKey
	// arbitrating: the disputes this worker was assigned to arbitrate
	// (the contracts' keys until it voted; not chain-derived).
	arbitrating map[crypto.PublicKey]*heldKey
	// rounds: the rounds of key partials naming this worker (keys.go;
	// not chain-derived).
	rounds map[[32]byte]*keyRound
	// awaiting: accepted grants naming this worker whose round's key it
	// has not combined yet (keys.go; not chain-derived).
	awaiting map[[32]byte]*awaitedGrant
	// dkgPhase: the elected set's DKG as the chain last announced it
	// (nil when none runs; chain-derived); dkg: this member's part in it
	// (dkg.go; not chain-derived).
	dkgPhase *api.DkgState
	dkg      *dkgRun
}

func newState() *state {
	return &state{appHash: map[int64][]byte{}, headerTime: map[int64]int64{}, nextSeq: map[string]uint64{}, workers: map[crypto.PublicKey]*api.WorkerRecord{}, egressSeq: map[string]uint64{}, uploads: map[[32]byte]*upload{}, blockHashes: map[int64][api.BlockHashSize]byte{}, nodeStake: map[crypto.PublicKey]uint64{}, unassignable: map[crypto.PublicKey]bool{}, checkpoints: map[crypto.PublicKey]api.Checkpoint{}, lastCommand: map[crypto.PublicKey]int64{}, subnets: map[[32]byte][]crypto.PublicKey{},
		deployed: map[crypto.PublicKey]*deployment{}, inputs: map[crypto.PublicKey][]int64{}, blockRefs: map[int64]*blockRef{}, cpMeta: map[crypto.PublicKey]cpMeta{}, recovering: map[crypto.PublicKey]*heldKey{}, arbitrating: map[crypto.PublicKey]*heldKey{},
		keySets: map[uint64]*api.KeySet{}, rounds: map[[32]byte]*keyRound{}, awaiting: map[[32]byte]*awaitedGrant{}}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// encodeChain writes the chain-derived part, which the state root covers.
func (s *state) encodeChain(w *codec.Writer) {
	w.Uvarint(uint64(s.headerHeight))
	w.Uvarint(uint64(s.dispatched))
	w.Varint(s.blockTime)
	hs := make([]int64, 0, len(s.appHash))
	for h := range s.appHash {
		hs = append(hs, h)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i] < hs[j] })
	w.Uvarint(uint64(len(hs)))
	for _, h := range hs {
		w.Uvarint(uint64(h))
		w.BytesField(s.appHash[h])
	}
	ts := make([]int64, 0, len(s.headerTime))
	for h := range s.headerTime {
		ts = append(ts, h)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	w.Uvarint(uint64(len(ts)))
	for _, h := range ts {
		w.Uvarint(uint64(h))
		w.Varint(s.headerTime[h])
	}
	seqs := sortedKeys(s.nextSeq)
	w.Uvarint(uint64(len(seqs)))
	for _, o := range seqs {
		w.BytesField([]byte(o))
		w.Uvarint(s.nextSeq[o])
	}
	ws := make([]crypto.PublicKey, 0, len(s.workers))
	for k := range s.workers {
		ws = append(ws, k)
	}
	sort.Slice(ws, func(i, j int) bool { return bytes.Compare(ws[i][:], ws[j][:]) < 0 })
	w.Uvarint(uint64(len(ws)))
	for _, k := range ws {
		w.BytesField(s.workers[k].Encode())
	}
	s.encodeUploads(w)
	s.encodeKeySets(w)
	s.encodeDkg(w)
	s.encodeGovernance(w)
	s.encodeMigration(w)
	s.encodeAttest(w)
	s.encodeStaking(w)
	s.encodeComputation(w)
	s.encodeElection(w)
	s.encodeCheckpoints(w)
	s.encodeSubnets(w)
	s.encodeDeployments(w)
}

// root is the state root: SHA-256 over the chain-derived state. Two
// pRuntimes that dispatched the same blocks have the same root, whatever
// their identities.
func (s *state) root() [32]byte {
	w := codec.NewWriter(1024)
	w.String("phala/pruntime: state v1")
	s.encodeChain(w)
	return sha256.Sum256(w.Bytes())
}

func (s *state) encode() []byte {
	w := codec.NewWriter(4096)
	w.U8(stateVersion)
	w.BytesField(s.trustedHeader)
	s.encodeChain(w)
	encodeHeldKeys(w, s.recovering)
	encodeHeldKeys(w, s.arbitrating)
	encodeRounds(w, s.rounds)
	encodeAwaiting(w, s.awaiting)
	encodeDkgRun(w, s.dkg)
	own := sortedKeys(s.egressSeq)
	w.Uvarint(uint64(len(own)))
	for _, o := range own {
		w.BytesField([]byte(o))
		w.Uvarint(s.egressSeq[o])
	}
	w.BytesField(api.EncodeSignedMessages(s.egress))
	return w.Bytes()
}

func decodeState(b []byte) (*state, error) {
	s := newState()
	r := codec.NewReader(b)
	if v := r.U8(); v != stateVersion {
		return nil, fmt.Errorf("runtime state version %d, this pRuntime reads %d", v, stateVersion)
	}
	s.trustedHeader = r.BytesField(api.MaxHeaderBytes)
	s.headerHeight = int64(r.Uvarint())
	s.dispatched = int64(r.Uvarint())
	s.blockTime = r.Varint()
	for n := r.Uvarint(); r.Err() == nil && n > 0; n-- {
		h := int64(r.Uvarint())
		s.appHash[h] = r.BytesField(64)
	}
	for n := r.Uvarint(); r.Err() == nil && n > 0; n-- {
		h := int64(r.Uvarint())
		s.headerTime[h] = r.Varint()
	}
	for n := r.Uvarint(); r.Err() == nil && n > 0; n-- {
		o := r.BytesField(64)
		s.nextSeq[string(o)] = r.Uvarint()
	}
	for n := r.Uvarint(); r.Err() == nil && n > 0; n-- {
		rec, err := api.DecodeWorkerRecord(r.BytesField(4096))
		if err != nil {
			r.Fail(err)
			break
		}
		s.workers[rec.Info.IdentityKey] = rec
	}
	s.decodeUploads(r)
	s.decodeKeySets(r)
	s.decodeDkg(r)
	s.decodeGovernance(r)
	s.decodeMigration(r)
	s.decodeAttest(r)
	s.decodeStaking(r)
	s.decodeComputation(r)
	s.decodeElection(r)
	s.decodeCheckpoints(r)
	s.decodeSubnets(r)
	s.decodeDeployments(r)
	decodeHeldKeys(r, s.recovering)
	decodeHeldKeys(r, s.arbitrating)
	decodeRounds(r, s.rounds)
	decodeAwaiting(r, s.awaiting)
	s.dkg = decodeDkgRun(r)
	for n := r.Uvarint(); r.Err() == nil && n > 0; n-- {
		o := r.BytesField(64)
		s.egressSeq[string(o)] = r.Uvarint()
	}
	eg := r.BytesField(api.MaxSyncPayloadBytes)
	if err := r.Done(); err != nil {
		return nil, err
	}
	var err error
	if s.egress, err = api.DecodeSignedMessages(eg); err != nil {
		return nil, err
	}
	return s, nil
}
