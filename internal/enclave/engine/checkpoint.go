package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/sealing"
)

// The checkpoint is split so that a call writes what it changed, not the
// whole runtime (docs/pruntime.md, "Checkpoint"):
//
//	runtime.sealed                          the core: generation, runtime state
//	                                        without its egress, and the name and
//	                                        SHA-256 of every part file below
//	checkpoint/egress-<gen>.sealed          the pending egress
//	checkpoint/guard-<gen>.sealed           the query replay guard
//	checkpoint/contract-<id>-<gen>.sealed   one running contract: keys, call
//	                                        counter, store snapshot, nonces
//
// A checkpoint of generation g writes the parts that changed under new
// names (suffix g), then the core naming them, then removes the parts the
// core no longer names. The core's atomic replacement is the commit point:
// a crash before it leaves the previous core, which names only complete
// files of earlier generations (never removed before the new core is in
// place); parts of the unfinished generation are ignored and removed on
// load. A part whose digest differs from the core's is refused, so an old
// part cannot be substituted for a newer one.
const (
	checkpointVersion = 9
	checkpointDir     = "checkpoint"
)

// partRef is what the core says of a part file.
type partRef struct {
	gen    uint64
	digest [32]byte
}

// ckpt is the engine's checkpoint bookkeeping.
type ckpt struct {
	gen      uint64
	egress   partRef
	egressFP [2]uint64 // (len, last position) of the egress when written
	guard    partRef
	guardVer uint64 // the query guard's version when written
	// final: the checkpoint being written is the last of a clean stop
	// (Close): no query is answered after it.
	final     bool
	contracts map[crypto.PublicKey]partRef
	// writes counts part files written (for tests).
	writes   map[string]int
	sealed   int // bytes sealed by the checkpoint being written (parts; stats.go)
	dirReady bool
}

func (e *Engine) partPath(name string) string {
	return filepath.Join(e.cfg.DataDir, checkpointDir, name)
}

func egressPart(gen uint64) string { return "egress-" + strconv.FormatUint(gen, 10) + ".sealed" }

func guardPart(gen uint64) string { return "guard-" + strconv.FormatUint(gen, 10) + ".sealed" }

func contractPart(id crypto.PublicKey, gen uint64) string {
	return "contract-" + hex.EncodeToString(id[:]) + "-" + strconv.FormatUint(gen, 10) + ".sealed"
}

// savePart seals one part file and returns its reference.
func (e *Engine) savePart(name string, gen uint64, data []byte) (partRef, error) {
	if dir := filepath.Join(e.cfg.DataDir, checkpointDir); !e.ck.dirReady {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return partRef{}, err
		}
		// Make the directory's entry durable before a core names its files.
		if d, err := os.Open(e.cfg.DataDir); err == nil {
			d.Sync()
			d.Close()
		}
		e.ck.dirReady = true
	}
	if err := e.sealer.Save(e.partPath(name), data); err != nil {
		return partRef{}, fmt.Errorf("%s: %w", name, err)
	}
	e.ck.sealed += len(data)
	if e.ck.writes == nil {
		e.ck.writes = map[string]int{}
	}
	e.ck.writes[strings.SplitN(name, "-", 2)[0]]++
	return partRef{gen: gen, digest: sha256.Sum256(data)}, nil
}

// loadPart opens a part file and checks it is the one the core names.
func (e *Engine) loadPart(name string, ref partRef) ([]byte, error) {
	data, err := e.sealer.Load(e.partPath(name))
	if err != nil {
		return nil, fmt.Errorf("checkpoint part %s: %w", name, err)
	}
	if sha256.Sum256(data) != ref.digest {
		return nil, fmt.Errorf("%w: checkpoint part %s is not the one %s names (an older or newer copy)", sealing.ErrCorrupt, name, StateFile)
	}
	return data, nil
}

// egressFingerprint identifies the egress list's content: positions are
// never reused and the list only loses entries (acks) or gains them at
// its end, so (length, last position) changes whenever the list does.
func (e *Engine) egressFingerprint() [2]uint64 {
	e.egressPositions()
	var last uint64
	if n := len(e.st.egress); n > 0 {
		last = e.egressPos[egressKey(&e.st.egress[n-1].Message)]
	}
	return [2]uint64{uint64(len(e.st.egress)), last}
}

// checkpoint seals what changed since the last checkpoint (see above).
func (e *Engine) checkpoint() error {
	start := time.Now()
	e.ck.sealed = 0
	if t := e.lc.Trusted(); t != nil {
		b, err := t.ToProto().Marshal()
		if err != nil {
			return err
		}
		e.st.trustedHeader = b
	}
	if e.ck.contracts == nil {
		e.ck.contracts = map[crypto.PublicKey]partRef{}
	}
	// A generation number is used once, even by an attempt that failed
	// after its core was renamed into place (a directory sync error): the
	// next attempt writes its parts under new names, never over parts a
	// core on disk may name.
	e.ck.gen++
	gen := e.ck.gen
	egressRef := e.ck.egress
	fp := e.egressFingerprint()
	if egressRef.gen == 0 || fp != e.ck.egressFP {
		ref, err := e.savePart(egressPart(gen), gen, api.EncodeSignedMessages(e.st.egress))
		if err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		egressRef = ref
	}
	// The replay guard changes with public queries between checkpoints;
	// written when it did.
	guardRef, guardVer := e.ck.guard, e.ck.guardVer
	if guardRef.gen == 0 || e.guard.Version() != guardVer {
		var data []byte
		data, guardVer = e.guard.EncodeVersion(time.Unix(0, e.st.blockTime))
		ref, err := e.savePart(guardPart(gen), gen, data)
		if err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		guardRef = ref
	}
	refs := make(map[crypto.PublicKey]partRef, len(e.running))
	var written []crypto.PublicKey
	for id, r := range e.running {
		ref, ok := e.ck.contracts[id]
		if !ok || r.dirty {
			var err error
			if ref, err = e.savePart(contractPart(id, gen), gen, e.encodeContract(r)); err != nil {
				return fmt.Errorf("checkpoint: %w", err)
			}
			written = append(written, id)
		}
		refs[id] = ref
	}
	ids := make([]crypto.PublicKey, 0, len(refs))
	for id := range refs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	egress := e.st.egress
	e.st.egress = nil // in its own part
	c := &core{gen: gen, state: e.st.encode(), egress: egressRef, guard: guardRef, final: e.ck.final, refs: refs, order: ids}
	e.st.egress = egress
	coreBytes := c.encode()
	if err := e.sealer.Save(filepath.Join(e.cfg.DataDir, StateFile), coreBytes); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	e.noteCheckpoint(e.ck.sealed+len(coreBytes), time.Since(start))
	// Committed: forget the superseded parts.
	if egressRef != e.ck.egress && e.ck.egress.gen != 0 {
		os.Remove(e.partPath(egressPart(e.ck.egress.gen)))
	}
	if guardRef != e.ck.guard && e.ck.guard.gen != 0 {
		os.Remove(e.partPath(guardPart(e.ck.guard.gen)))
	}
	for id, old := range e.ck.contracts {
		if ref, ok := refs[id]; !ok || ref != old {
			os.Remove(e.partPath(contractPart(id, old.gen)))
		}
	}
	for _, id := range written {
		e.running[id].dirty = false
	}
	e.ck.gen, e.ck.egress, e.ck.egressFP, e.ck.contracts = gen, egressRef, fp, refs
	e.ck.guard, e.ck.guardVer = guardRef, guardVer
	return nil
}

// restoreCheckpoint loads the core (data, opened from StateFile) and the
// parts it names, then removes the parts it does not name.
func (e *Engine) restoreCheckpoint(data []byte) error {
	c, err := decodeCore(data)
	if err != nil {
		return err
	}
	gen, egressRef, refs := c.gen, c.egress, c.refs
	st, err := decodeState(c.state)
	if err != nil {
		return err
	}
	e.st = st
	eg, err := e.loadPart(egressPart(egressRef.gen), egressRef)
	if err != nil {
		return err
	}
	if e.st.egress, err = api.DecodeSignedMessages(eg); err != nil {
		return fmt.Errorf("egress part: %w", err)
	}
	gb, err := e.loadPart(guardPart(c.guard.gen), c.guard)
	if err != nil {
		return err
	}
	if e.guard, err = contracts.DecodeQueryGuard(gb); err != nil {
		return fmt.Errorf("guard part: %w", err)
	}

	for _, id := range c.order {
		ref := refs[id]
		b, err := e.loadPart(contractPart(id, ref.gen), ref)
		if err != nil {
			return err
		}
		if err := e.decodeContract(id, b); err != nil {
			return fmt.Errorf("contract part %s: %w", id.Short(), err)
		}
	}
	e.ck = ckpt{gen: gen, egress: egressRef, guard: c.guard, guardVer: e.guard.Version(), contracts: refs, writes: e.ck.writes, dirReady: true}
	e.ck.egressFP = e.egressFingerprint()
	if !c.final {
		// Not written at a clean stop: queries answered after it (and
		// forgotten) are valid at most until its block time + MaxQueryTTL.
		// (After e.ck: the changed guard is written at the next checkpoint.)
		e.guard.SetHorizon(time.Unix(0, e.st.blockTime).Add(contracts.MaxQueryTTL).Unix())
	}
	e.removeStaleParts()
	return nil
}

// core is the decoded core file.
type core struct {
	gen    uint64
	state  []byte
	egress partRef
	guard  partRef
	final  bool // written by Close
	refs   map[crypto.PublicKey]partRef
	order  []crypto.PublicKey // ascending ids, as written
}

func (c *core) encode() []byte {
	w := codec.NewWriter(len(c.state) + 64 + 72*len(c.order))
	w.U8(checkpointVersion)
	w.Uvarint(c.gen)
	w.BytesField(c.state)
	w.Uvarint(c.egress.gen)
	w.Fixed(c.egress.digest[:])
	w.Uvarint(c.guard.gen)
	w.Fixed(c.guard.digest[:])
	w.Bool(c.final)
	w.Uvarint(uint64(len(c.order)))
	for _, id := range c.order {
		ref := c.refs[id]
		w.Fixed(id[:])
		w.Uvarint(ref.gen)
		w.Fixed(ref.digest[:])
	}
	return w.Bytes()
}

// decodeCore parses the core file strictly: its version, references no
// newer than its generation, contract ids in ascending order, no trailing
// bytes.
func decodeCore(data []byte) (*core, error) {
	r := codec.NewReader(data)
	if v := r.U8(); r.Err() == nil && v != checkpointVersion {
		return nil, fmt.Errorf("checkpoint version %d, this pRuntime reads %d", v, checkpointVersion)
	}
	c := &core{refs: map[crypto.PublicKey]partRef{}}
	c.gen = r.Uvarint()
	c.state = r.BytesField(1 << 30)
	c.egress.gen = r.Uvarint()
	r.Fixed(c.egress.digest[:])
	c.guard.gen = r.Uvarint()
	r.Fixed(c.guard.digest[:])
	c.final = r.Bool()
	n := r.Uvarint()
	if n > uint64(r.Remaining()/65) {
		r.Fail(codec.ErrTooLong)
	}
	for ; r.Err() == nil && n > 0; n-- {
		var id crypto.PublicKey
		var ref partRef
		r.Fixed(id[:])
		ref.gen = r.Uvarint()
		r.Fixed(ref.digest[:])
		if k := len(c.order); k > 0 && bytes.Compare(c.order[k-1][:], id[:]) >= 0 {
			r.Fail(errors.New("contract part references out of order"))
		}
		if ref.gen == 0 || ref.gen > c.gen {
			r.Fail(errors.New("contract part reference of another generation"))
		}
		c.refs[id] = ref
		c.order = append(c.order, id)
	}
	if err := r.Done(); err != nil {
		return nil, err
	}
	if c.egress.gen == 0 || c.egress.gen > c.gen {
		return nil, errors.New("egress part reference of another generation")
	}
	if c.guard.gen == 0 || c.guard.gen > c.gen {
		return nil, errors.New("guard part reference of another generation")
	}
	return c, nil
}

// removeStaleParts deletes part files the core does not name (superseded,
// or of a generation a crash left unfinished).
func (e *Engine) removeStaleParts() {
	ents, err := os.ReadDir(filepath.Join(e.cfg.DataDir, checkpointDir))
	if err != nil {
		return
	}
	keep := map[string]bool{egressPart(e.ck.egress.gen): true, guardPart(e.ck.guard.gen): true}
	for id, ref := range e.ck.contracts {
		keep[contractPart(id, ref.gen)] = true
	}
	for _, de := range ents {
		// Unnamed parts, and temporary files of interrupted writes.
		if !keep[de.Name()] && (strings.HasSuffix(de.Name(), ".sealed") || strings.HasPrefix(de.Name(), ".")) {
			os.Remove(e.partPath(de.Name()))
		}
	}
}

// contractFile is a contract part's content.
type contractFile struct {
	upload [32]byte
	seed   [crypto.SeedSize]byte
	calls  uint64
	root   [32]byte
	snap   []byte // encrypted store snapshot
	nonces map[crypto.PublicKey]uint64
	// receipts: the latest commands' receipts (nil: none)
	receipts *receiptLog
	// The last state update cut, and what the next one holds so far.
	cutHeight   int64
	cutRoot     [32]byte
	cmdSinceCut bool
	dirtyLocs   [][]byte
	// epochs: the store's held StorageKeys, ascending by epoch, the last
	// the write epoch (contracts.Store.EpochKeys).
	epochs []contracts.EpochKey
	// prevSeed: the previous key epoch's seed while migrating (its ECDH
	// key still opens inputs), nil otherwise.
	prevSeed *[crypto.SeedSize]byte
}

func (f *contractFile) encode() []byte {
	w := codec.NewWriter(len(f.snap) + 256 + 40*len(f.nonces))
	w.Fixed(f.upload[:])
	w.Fixed(f.seed[:])
	w.Uvarint(f.calls)
	w.Fixed(f.root[:])
	w.BytesField(f.snap)
	froms := make([]crypto.PublicKey, 0, len(f.nonces))
	for k := range f.nonces {
		froms = append(froms, k)
	}
	sort.Slice(froms, func(i, j int) bool { return bytes.Compare(froms[i][:], froms[j][:]) < 0 })
	w.Uvarint(uint64(len(froms)))
	for _, k := range froms {
		w.Fixed(k[:])
		w.Uvarint(f.nonces[k])
	}
	if f.receipts == nil {
		w.Uvarint(0)
	} else {
		f.receipts.encode(w)
	}
	w.Varint(f.cutHeight)
	w.Fixed(f.cutRoot[:])
	w.Bool(f.cmdSinceCut)
	w.Uvarint(uint64(len(f.dirtyLocs)))
	for _, l := range f.dirtyLocs {
		w.Fixed(l)
	}
	w.Uvarint(uint64(len(f.epochs)))
	w.Bool(f.prevSeed != nil)
	if f.prevSeed != nil {
		w.Fixed(f.prevSeed[:])
	}
	for _, k := range f.epochs {
		w.Uvarint(k.Epoch)
		w.Fixed(k.Key[:])
	}
	return w.Bytes()
}

// maxContractPartBytes bounds a contract part's store snapshot.
const maxContractPartBytes = 1 << 30

// decodeContractFile parses a contract part strictly (nonces in ascending
// sender order, no trailing bytes).
func decodeContractFile(b []byte) (*contractFile, error) {
	r := codec.NewReader(b)
	f := &contractFile{nonces: map[crypto.PublicKey]uint64{}}
	r.Fixed(f.upload[:])
	r.Fixed(f.seed[:])
	f.calls = r.Uvarint()
	r.Fixed(f.root[:])
	f.snap = r.BytesField(maxContractPartBytes)
	n := r.Uvarint()
	if n > uint64(r.Remaining()/33) {
		r.Fail(codec.ErrTooLong)
	}
	var prev *crypto.PublicKey
	for ; r.Err() == nil && n > 0; n-- {
		var k crypto.PublicKey
		r.Fixed(k[:])
		if prev != nil && bytes.Compare(prev[:], k[:]) >= 0 {
			r.Fail(errors.New("nonces out of order"))
		}
		prev = &k
		f.nonces[k] = r.Uvarint()
	}
	f.receipts = decodeReceiptLog(r)
	f.cutHeight = r.Varint()
	r.Fixed(f.cutRoot[:])
	f.cmdSinceCut = r.Bool()
	n = r.Uvarint()
	if n > uint64(r.Remaining()/api.StateLocationSize) {
		r.Fail(codec.ErrTooLong)
	}
	for ; r.Err() == nil && n > 0; n-- {
		l := make([]byte, api.StateLocationSize)
		r.Fixed(l)
		if k := len(f.dirtyLocs); k > 0 && bytes.Compare(f.dirtyLocs[k-1], l) >= 0 {
			r.Fail(errors.New("changed locations out of order"))
		}
		f.dirtyLocs = append(f.dirtyLocs, l)
	}
	// Held storage epoch keys: 1 to contracts.MaxEpochKeys, ascending.
	n = r.Uvarint()
	if r.Bool() {
		var ps [crypto.SeedSize]byte
		r.Fixed(ps[:])
		f.prevSeed = &ps
	}
	if r.Err() == nil && (n == 0 || n > contracts.MaxEpochKeys) {
		r.Fail(fmt.Errorf("%d storage epoch keys", n))
	}
	for ; r.Err() == nil && n > 0; n-- {
		var k contracts.EpochKey
		k.Epoch = r.Uvarint()
		r.Fixed(k.Key[:])
		if j := len(f.epochs); j > 0 && f.epochs[j-1].Epoch >= k.Epoch {
			r.Fail(errors.New("storage epoch keys out of order"))
		}
		f.epochs = append(f.epochs, k)
	}
	if err := r.Done(); err != nil {
		return nil, err
	}
	return f, nil
}

// encodeContract writes one running contract: keys (secret) and its
// encrypted store snapshot; it goes only into a sealed part.
func (e *Engine) encodeContract(r *running) []byte {
	f := &contractFile{upload: r.upload, seed: r.c.Keys().Seed, calls: r.c.Calls(), root: r.c.StateRoot(), snap: r.c.Store().Snapshot(), nonces: r.lastNonce, receipts: r.receipts,
		cutHeight: r.cutHeight, cutRoot: r.cutRoot, cmdSinceCut: r.cmdSinceCut, dirtyLocs: r.c.Store().DirtyLocations(), epochs: r.c.Store().EpochKeys(), prevSeed: r.prevSeed}
	return f.encode()
}

func (e *Engine) decodeContract(id crypto.PublicKey, b []byte) error {
	f, err := decodeContractFile(b)
	if err != nil {
		return err
	}
	u, ok := e.st.uploads[f.upload]
	if !ok {
		return errors.New("running contract of an unknown upload")
	}
	ck, err := keys.ContractKeysFromSeed(f.seed)
	if err != nil {
		return err
	}
	c, err := e.startContract(ck, u.codeHash, f.epochs, f.snap, f.root, f.calls)
	if err != nil {
		return err
	}
	if c.ID() != id { // after epoch 0 the identity comes from the state
		return errors.New("contract part holds another contract's keys")
	}
	if f.prevSeed != nil {
		pk, err := keys.ContractKeysFromSeed(*f.prevSeed)
		if err != nil {
			return err
		}
		c.SetPrevEcdh(pk.Ecdh)
	}
	c.Store().MarkDirty(f.dirtyLocs)
	e.running[id] = &running{upload: f.upload, c: c, lastNonce: f.nonces, receipts: f.receipts,
		cutHeight: f.cutHeight, cutRoot: f.cutRoot, cmdSinceCut: f.cmdSinceCut, prevSeed: f.prevSeed}
	return nil
}
