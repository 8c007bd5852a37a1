// Package gatekeeper holds a gatekeeper pRuntime's duties and the keys
// only a gatekeeper holds: its shares of the MasterKey of each key era
// (docs/keys.md; whitepaper 4.4). The first genesis gatekeeper creates the
// genesis MasterKey at its first start and announces its public key once
// its own attested registration is in the queue; it shares it with the
// other attested genesis gatekeepers (key era 0: threshold 1). For each
// contract it evaluates its share on the contract's point (a threshold
// DH-PRF, internal/enclave/threshold) with a DLEQ proof and seals the
// partial to each assigned worker (api.KeyPartials); the worker checks
// and combines T of them. No gatekeeper ever holds a contract's key.
//
// It owns no chain state: what it decides on (the registrations in the
// queue, who is attested, the key sets the chain adopted, the egress) is
// the engine's verified view (Chain), and what it says goes out through
// the engine's egress (Config.Emit). The engine
// (internal/enclave/engine) calls it under its lock, from its handlers in
// block order, so it needs no lock of its own. The worker's side (opening
// and combining partials, running the contract) stays in the engine.
package gatekeeper

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/share"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/sealing"
	"github.com/phalago/phala/internal/enclave/threshold"
)

// Chain is the gatekeeper's read-only view of the chain-derived state the
// engine verified. Its methods are called under the engine's lock.
type Chain interface {
	// Attested reports whether rec admits its pRuntime at height:
	// registered (from the registry in the queue), unexpired, with a
	// measurement on the current allowlist.
	Attested(rec *api.WorkerRecord, height int64) bool
	// Worker returns the registration of key in the queue, nil if none.
	Worker(key crypto.PublicKey) *api.WorkerRecord
	// Admits reports whether the running runtime migration (if any)
	// admits rec's build to new contracts (its target build only).
	Admits(rec *api.WorkerRecord) bool
	// Assignable reports whether the worker key may be assigned new
	// contracts: its total stake, as the staking module announced it, is
	// at least min_worker_stake, and the chain did not find it
	// unresponsive at the last era end (docs/economy.md).
	Assignable(key crypto.PublicKey) bool
	// IsGatekeeper reports whether key is a gatekeeper: serving, or
	// elected and not active yet (it receives the MasterKey, runs no
	// contract).
	IsGatekeeper(key crypto.PublicKey) bool
	// Workers returns every registration in the queue, in any order.
	Workers() []*api.WorkerRecord
	// KeySet returns the key set of era the chain adopted
	// (api.TopicKeyRotationReady), nil if none.
	KeySet(era uint64) *api.KeySet
	// ServingKeyEra returns the era of the serving key set; ok is false
	// before the genesis MasterKey is announced.
	ServingKeyEra() (era uint64, ok bool)
	// Rotating reports whether an elected set's DKG runs: new contracts
	// wait for its key set (whitepaper 4.7: grants paused).
	Rotating() bool
	// SubnetMember reports whether key is a member of the subnet as the
	// chain's subnet module last announced it.
	SubnetMember(subnet [32]byte, key crypto.PublicKey) bool
	// Pending reports whether a message of this pRuntime on topic waits
	// in its egress (emitted, not yet echoed back by the chain).
	Pending(topic string) bool
}

// Config is what a gatekeeper needs from its pRuntime.
type Config struct {
	// Entity: this pRuntime's keys; its ECDH key opens shares and seals
	// partials and shares.
	Entity *keys.Entity
	// Gatekeepers: the genesis gatekeepers, the first one creating the
	// MasterKey.
	Gatekeepers []crypto.PublicKey
	// Sealer: bound to the chain and this identity; seals the shares,
	// and its binding's genesis hash is in every share's additional data.
	Sealer  *sealing.Sealer
	DataDir string // where keys.MasterFile is sealed
	Chain   Chain
	// Emit queues a message from this pRuntime into its signed egress:
	// as gatekeeper (api.OriginGatekeeper: announcements, shares) or as
	// a key-set member (api.OriginWorker: partials; members of past sets
	// are no longer gatekeepers).
	Emit func(origin api.OriginKind, topic string, payload []byte)
	Log  *slog.Logger
}

// Gatekeeper is a gatekeeper pRuntime's role. Not safe for concurrent use
// (the engine's lock serializes it).
type Gatekeeper struct {
	cfg Config
	// shares: this pRuntime's share of each key era's MasterKey (its
	// index is its place in the era's key set).
	shares map[uint64]kyber.Scalar
	// waiting: why each upload no worker can run was last logged.
	waiting map[[32]byte]string
}

// Upload is what a grant derives from: a ContractUploaded message the
// queue delivered (api.ContractUploaded), by its upload id
// (api.UploadID).
type Upload struct {
	ID       [32]byte
	Deployer crypto.PublicKey
	CodeHash [32]byte
	Seq      uint64
	Replicas uint8 // at most this many workers get the contract's keys
	// Requirements: only workers satisfying them are assigned
	// (api.Requirements; a non-zero Subnet admits its members only).
	Requirements api.Requirements
	// Current: the workers running the deployed contract (none before
	// its deployment); a grant adds at most Replicas minus their number,
	// never one of them or of Exclude (removed by the deployer).
	Current, Exclude []crypto.PublicKey
	// Leaving: those of Current whose build the running runtime
	// migration retires; they are not counted against Replicas.
	Leaving []crypto.PublicKey
	// KeyEra, KeyEpoch: the key set and epoch the contract's key is
	// derived under (the serving key era and 0 for a new contract).
	KeyEra, KeyEpoch uint64
	// Deployed: the contract exists (its workers may all have been
	// removed: Current is then empty).
	Deployed bool
}

// sharesVersion is the version of the sealed shares file (1 was the
// whole sr25519 MasterKey of pRuntimes before issue 12).
const sharesVersion = 2

// New loads this gatekeeper's shares, or creates the genesis MasterKey on
// the first start of the first genesis gatekeeper (firstStart: its
// pre-genesis entity keys are being bound to this chain now, and the
// chain has adopted no key set). Any other gatekeeper without shares,
// including the first one after its sealed file was deleted, waits for
// one: a chain has one genesis MasterKey, announced once. A sealed share
// that is not the one the chain's key set commits to is dropped. New
// emits nothing; the engine calls Announce after it. Errors: the
// sealer's (another chain or identity, corrupt), a file of an older
// pRuntime, or the sealing of a new key.
func New(cfg Config, firstStart bool) (*Gatekeeper, error) {
	g := &Gatekeeper{cfg: cfg, shares: map[uint64]kyber.Scalar{}}
	err := g.load()
	switch {
	case err == nil:
		for era := range g.shares {
			if set := cfg.Chain.KeySet(era); set != nil {
				g.Adopted(set)
			}
		}
	case errors.Is(err, sealing.ErrNotExist):
		_, announced := cfg.Chain.ServingKeyEra()
		if !firstStart || cfg.Gatekeepers[0] != cfg.Entity.Identity.Public() || announced {
			cfg.Log.Info("gatekeeper without a MasterKey share: waiting to receive one")
			return g, nil
		}
		g.shares[0] = threshold.Suite.Scalar().Pick(threshold.Suite.RandomStream())
		if err := g.save(); err != nil {
			return nil, fmt.Errorf("seal master key: %w", err)
		}
		cfg.Log.Info("genesis master key created; announced once this gatekeeper's attested registration is in the queue", "public", hex.EncodeToString(public(g.shares[0])))
	default:
		return nil, fmt.Errorf("load master key shares: %w", err)
	}
	return g, nil
}

// public returns x·G's encoding.
func public(x kyber.Scalar) []byte {
	b, _ := threshold.Suite.Point().Mul(x, nil).MarshalBinary()
	return b
}

// save seals every held share into keys.MasterFile (rewritten whole, so a
// dropped share is gone from the file too).
func (g *Gatekeeper) save() error {
	if g.cfg.Sealer.Binding().PreGenesis() || g.cfg.Sealer.Binding().Identity == (crypto.PublicKey{}) {
		return errors.New("master key shares are sealed bound to a chain and an identity")
	}
	eras := make([]uint64, 0, len(g.shares))
	for era := range g.shares {
		eras = append(eras, era)
	}
	slices.Sort(eras)
	w := codec.NewWriter(1 + 41*len(eras))
	w.U8(sharesVersion)
	w.Uvarint(uint64(len(eras)))
	for _, era := range eras {
		b, err := g.shares[era].MarshalBinary()
		if err != nil {
			return err
		}
		w.Uvarint(era)
		w.Fixed(b)
	}
	return g.cfg.Sealer.Save(filepath.Join(g.cfg.DataDir, keys.MasterFile), w.Bytes())
}

// load reads the sealed shares: sealing.ErrNotExist if none.
func (g *Gatekeeper) load() error {
	shares, err := LoadShares(g.cfg.Sealer, g.cfg.DataDir)
	if err != nil {
		return err
	}
	g.shares = shares
	return nil
}

// LoadShares reads the MasterKey shares sealed in dir (keys.MasterFile)
// with s, by key era: what the gatekeeper holds. pRuntime loads them at
// start; tests use it to stand for a leak of a gatekeeper's sealed files.
// Errors: the sealer's (sealing.ErrNotExist if none, another chain or
// identity), sealing.ErrCorrupt for a file of an older pRuntime or a bad
// encoding.
func LoadShares(s *sealing.Sealer, dir string) (map[uint64]kyber.Scalar, error) {
	path := filepath.Join(dir, keys.MasterFile)
	data, err := s.Load(path)
	if err != nil {
		return nil, err
	}
	shares := map[uint64]kyber.Scalar{}
	r := codec.NewReader(data)
	if v := r.U8(); v != sharesVersion {
		return nil, fmt.Errorf("%w: %s: version %d, written by a pRuntime before threshold keys: this gatekeeper's data directory must be created anew", sealing.ErrCorrupt, path, v)
	}
	n := r.Uvarint()
	for ; r.Err() == nil && n > 0; n-- {
		era := r.Uvarint()
		var b [32]byte
		r.Fixed(b[:])
		x := threshold.Suite.Scalar()
		if r.Err() == nil {
			if err := x.UnmarshalBinary(b[:]); err != nil {
				r.Fail(err)
			}
		}
		shares[era] = x
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", sealing.ErrCorrupt, path, err)
	}
	return shares, nil
}

// Keep seals x as this member's share of era's MasterKey (from its DKG;
// used once the chain adopts a key set committing to it). Errors: the
// sealing's (nothing kept then).
func (g *Gatekeeper) Keep(era uint64, x kyber.Scalar) error {
	old := g.shares[era]
	g.shares[era] = x
	if err := g.save(); err != nil {
		g.shares[era] = old
		if old == nil {
			delete(g.shares, era)
		}
		return fmt.Errorf("seal the share of era %d: %w", era, err)
	}
	return nil
}

// Holds reports whether this gatekeeper holds a share of era's MasterKey.
func (g *Gatekeeper) Holds(era uint64) bool { return g.shares[era] != nil }

// Public returns X_i = x_i·G of this gatekeeper's share of era (ok false
// if it holds none).
func (g *Gatekeeper) Public(era uint64) (pub [32]byte, ok bool) {
	x := g.shares[era]
	if x == nil {
		return pub, false
	}
	return [32]byte(public(x)), true
}

// Eras returns the key eras whose shares this gatekeeper holds, ascending.
func (g *Gatekeeper) Eras() []uint64 {
	eras := make([]uint64, 0, len(g.shares))
	for era := range g.shares {
		eras = append(eras, era)
	}
	slices.Sort(eras)
	return eras
}

// Announce (the first genesis gatekeeper, holding the genesis MasterKey)
// emits its public key (api.TopicMasterKey: 32 bytes, an edwards25519
// point) once its own attested registration is in the queue at height
// (the chain refuses the announcement of an unregistered gatekeeper),
// unless a key set is already adopted or the announcement waits in the
// egress. The engine calls it when this pRuntime's registration arrives
// and at start (a crash between sealing the key and checkpointing the
// announcement).
func (g *Gatekeeper) Announce(height int64) {
	me := g.cfg.Entity.Identity.Public()
	_, announced := g.cfg.Chain.ServingKeyEra()
	if g.shares[0] == nil || g.cfg.Gatekeepers[0] != me || announced || !g.cfg.Chain.Attested(g.cfg.Chain.Worker(me), height) {
		return
	}
	if g.cfg.Chain.Pending(api.TopicMasterKey) {
		return
	}
	pub := public(g.shares[0])
	g.cfg.Emit(api.OriginGatekeeper, api.TopicMasterKey, pub)
	g.cfg.Log.Info("genesis master key announced", "public", hex.EncodeToString(pub), "height", height)
}

// Adopted tells the gatekeeper a key set the chain adopted. A held share
// of that era that is not the one the set commits to for this member
// (only a host rolling back sealed files makes it differ) is dropped,
// never used.
func (g *Gatekeeper) Adopted(set *api.KeySet) {
	x := g.shares[set.Era]
	if x == nil {
		return
	}
	i := set.Index(g.cfg.Entity.Identity.Public())
	want, err := commitment(set, i)
	if err == nil && bytes.Equal(public(x), want) {
		return
	}
	g.cfg.Log.Error("the chain's key set commits to another share than this gatekeeper's: dropping it", "era", set.Era)
	delete(g.shares, set.Era)
	if err := g.save(); err != nil {
		g.cfg.Log.Error("reseal master key shares", "err", err)
	}
}

// ecdh returns this pRuntime's ECDH key pair its registration in the
// queue names (the current one, or the pending one of a rotation once
// the renewal carrying it is adopted); the current one without a
// registration.
func (g *Gatekeeper) ecdh() *crypto.KeyPair {
	if rec := g.cfg.Chain.Worker(g.cfg.Entity.Identity.Public()); rec != nil {
		if kp := g.cfg.Entity.EcdhFor(rec.Info.EcdhKey); kp != nil {
			return kp
		}
	}
	return g.cfg.Entity.Ecdh
}

// commitment returns member i's public commitment X_i in set, encoded.
func commitment(set *api.KeySet, i int) ([]byte, error) {
	if i < 0 {
		return nil, errors.New("not a member")
	}
	cs, err := commits(set)
	if err != nil {
		return nil, err
	}
	return threshold.MemberCommitment(cs, i).MarshalBinary()
}

// commits decodes set's commitments.
func commits(set *api.KeySet) ([]kyber.Point, error) {
	return threshold.DecodeCommits(set.Commits)
}

// Share (a genesis gatekeeper holding the genesis MasterKey whole: key
// era 0, threshold 1) seals it to another genesis gatekeeper (rec, from
// the queue at height) that has just registered, for key era era (0).
// Elected sets make their own key by DKG. Sealed to its
// attested ECDH key over a CommKey channel (api.ChannelPurposeMasterKey),
// so only that gatekeeper's pRuntime can open it, and emitted as an
// api.MasterKeyShare (api.TopicMasterKeyShare). Only a gatekeeper
// (Chain.IsGatekeeper: serving, or elected) whose registration is attested
// (Chain.Attested) receives it.
func (g *Gatekeeper) Share(height int64, rec *api.WorkerRecord, era uint64) {
	to := rec.Info.IdentityKey
	serving, ok := g.cfg.Chain.ServingKeyEra()
	if !ok || g.shares[serving] == nil || to == g.cfg.Entity.Identity.Public() || !g.cfg.Chain.IsGatekeeper(to) || !g.cfg.Chain.Attested(rec, height) {
		return
	}
	// Only to a genesis gatekeeper (a member of key set 0), and only while
	// the genesis key set serves.
	if set := g.cfg.Chain.KeySet(serving); serving != 0 || set == nil || set.T != 1 || set.Index(to) < 0 {
		return
	}
	mine := g.ecdh()
	ch, err := channel.New(mine, rec.Info.EcdhKey, api.ChannelPurposeMasterKey)
	if err != nil {
		return
	}
	x := g.shares[serving]
	s := &api.MasterKeyShare{Era: era, To: to, ToEcdh: rec.Info.EcdhKey, FromEcdh: mine.Public(), Master: crypto.PublicKey(public(x))}
	b, err := x.MarshalBinary()
	if err != nil {
		return
	}
	s.Sealed = ch.Seal(b, g.shareAD(s))
	g.cfg.Emit(api.OriginGatekeeper, api.TopicMasterKeyShare, s.Encode())
	g.cfg.Log.Info("master key shared", "to", to.Short(), "era", era)
}

// Receive (a gatekeeper without a share of s.Era) opens a share addressed
// to it, sent by the attested gatekeeper from (the engine checked that),
// checks it is the serving master key the chain adopted, and seals it. A
// share for another gatekeeper, or of an era this one holds, is ignored
// (nil). Errors: sealed to another ECDH key, does not open (another
// chain, tampered), not the serving master key, or the sealing failed;
// nothing changes then.
func (g *Gatekeeper) Receive(from crypto.PublicKey, s *api.MasterKeyShare) error {
	if s.To != g.cfg.Entity.Identity.Public() || g.shares[s.Era] != nil {
		return nil
	}
	kp := g.cfg.Entity.EcdhFor(s.ToEcdh)
	if kp == nil {
		return errors.New("share sealed to another ECDH key")
	}
	ch, err := channel.New(kp, s.FromEcdh, api.ChannelPurposeMasterKey)
	if err != nil {
		return err
	}
	b, err := ch.Open(s.Sealed, g.shareAD(s))
	if err != nil {
		return fmt.Errorf("cannot open the master key share: %v", err)
	}
	x := threshold.Suite.Scalar()
	if err := x.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("master key share: %v", err)
	}
	serving, ok := g.cfg.Chain.ServingKeyEra()
	if !ok || !bytes.Equal(public(x), s.Master[:]) {
		return errors.New("shared key is not the announced master key")
	}
	if set := g.cfg.Chain.KeySet(serving); set == nil || set.Public() != [32]byte(s.Master) {
		return errors.New("shared key is not the serving master key")
	}
	g.shares[s.Era] = x
	if err := g.save(); err != nil {
		delete(g.shares, s.Era)
		return fmt.Errorf("seal master key: %w", err)
	}
	g.cfg.Log.Info("master key received", "from", from.Short(), "era", s.Era)
	return nil
}

// shareAD is the additional data of a MasterKey share: the share's own
// (api.MasterKeyShare.AD) and this chain's genesis hash, so a share
// replayed into the queue of another chain (one whose validators are the
// host) does not open there, even for the same gatekeeper identity (a copy
// of its pre-genesis entity keys claimed on that chain).
func (g *Gatekeeper) shareAD(s *api.MasterKeyShare) []byte {
	h := g.cfg.Sealer.Binding().GenesisHash
	return append(s.AD(), h[:]...)
}

// unmet says why worker w does not satisfy the requirements q ("" if it
// does); the chain's contracts.Unmet applies the same rule to a grant.
func (g *Gatekeeper) unmet(q *api.Requirements, w *api.WorkerRecord) string {
	var why []string
	if q.Subnet != ([32]byte{}) && !g.cfg.Chain.SubnetMember(q.Subnet, w.Info.IdentityKey) {
		why = append(why, fmt.Sprintf("not a member of subnet %x", q.Subnet[:4]))
	}
	if hw := q.Unmet(w); hw != "" {
		why = append(why, hw)
	}
	return strings.Join(why, "; ")
}

// Grant (a member of the key set of u.KeyEra holding its share; a no-op
// otherwise) provisions upload u's contract key at height to its
// assigned workers: registered, attested (Chain.Attested), assignable
// (Chain.Assignable: staked, responsive), not gatekeepers, satisfying
// u.Requirements (members of its subnet if it names one, on its platform,
// with at least its cores, memory and pRuntime version as declared in
// their WorkerInfo), at most u.Replicas of them, ordered by
// SHA-256(upload id, worker identity) so every member picks the same. For
// a deployed contract (u.Current not empty) it adds at most u.Replicas
// minus len(u.Current) workers, skipping u.Current and u.Exclude: a
// replacement (docs/availability.md, "Reassignment"). It emits its
// partial evaluations, one sealed to each worker (api.KeyPartials,
// api.TopicKeyPartials). No eligible worker: nothing is emitted (logged
// for a first deployment).
func (g *Gatekeeper) Grant(height int64, u Upload) {
	want := int(u.Replicas) - (len(u.Current) - len(u.Leaving))
	if !g.member(u.KeyEra) || want <= 0 {
		return
	}
	ws, eligible, short := g.pick(height, &u, u.ID[:], want)
	if len(ws) == 0 && u.Deployed {
		return // a replacement waits for a worker; retried (engine.grantWaiting)
	}
	if len(ws) == 0 {
		// Retried every few blocks (engine.grantWaiting): said once per
		// upload and reason.
		why := "no registered worker to run the uploaded contract"
		if eligible > 0 {
			why = "no worker satisfies the deployment's requirements: waiting for one"
		}
		if g.waiting[u.ID] != why {
			if g.waiting == nil {
				g.waiting = map[[32]byte]string{}
			}
			g.waiting[u.ID] = why
			g.cfg.Log.Warn(why, "upload", hex.EncodeToString(u.ID[:4]), "requirements", u.Requirements.String(), "eligible", eligible, "first_refused", short)
		}
		return
	}
	if !u.Deployed && g.cfg.Chain.Rotating() {
		return // retried once the new key set serves (engine.grantWaiting)
	}
	delete(g.waiting, u.ID)
	p := &api.KeyPartials{Upload: u.ID, Era: u.KeyEra, Epoch: u.KeyEpoch, Purpose: api.KeyForWorkers}
	if err := g.seal(p, ws); err != nil {
		g.cfg.Log.Error("evaluate contract key partials", "err", err)
		return
	}
	g.cfg.Emit(api.OriginWorker, api.TopicKeyPartials, p.Encode())
	g.cfg.Log.Info("contract key partials sent", "upload", hex.EncodeToString(u.ID[:4]), "workers", len(ws), "era", u.KeyEra, "replacing", u.Deployed)
}

// member reports whether this gatekeeper holds a share of era's key set
// and is one of its members.
func (g *Gatekeeper) member(era uint64) bool {
	set := g.cfg.Chain.KeySet(era)
	return g.shares[era] != nil && set != nil && set.Index(g.cfg.Entity.Identity.Public()) >= 0
}

// pick returns at most want workers for upload u at height: registered,
// attested, assignable, not gatekeepers, not in u.Current or u.Exclude,
// satisfying u.Requirements, ordered by SHA-256(seed ‖ worker identity);
// with the count of the eligible ones and why the first refused one falls
// short of the requirements.
func (g *Gatekeeper) pick(height int64, u *Upload, seed []byte, want int) (ws []*api.WorkerRecord, eligible int, short string) {
	type cand struct {
		rank [32]byte
		w    *api.WorkerRecord
	}
	var cs []cand
	for _, w := range g.cfg.Chain.Workers() {
		k := w.Info.IdentityKey
		if !g.cfg.Chain.Attested(w, height) || !g.cfg.Chain.Admits(w) || !g.cfg.Chain.Assignable(k) || g.cfg.Chain.IsGatekeeper(k) || slices.Contains(u.Current, k) || slices.Contains(u.Exclude, k) {
			continue
		}
		eligible++
		if why := g.unmet(&u.Requirements, w); why != "" {
			if short == "" {
				short = k.Short() + ": " + why
			}
			continue
		}
		cs = append(cs, cand{sha256.Sum256(append(bytes.Clone(seed), k[:]...)), w})
	}
	sort.Slice(cs, func(i, j int) bool { return bytes.Compare(cs[i].rank[:], cs[j].rank[:]) < 0 })
	for i := 0; i < len(cs) && i < want; i++ {
		ws = append(ws, cs[i].w)
	}
	return ws, eligible, short
}

// seal evaluates this member's share of p.Era on the contract's point
// (threshold.ContractPoint of p's upload, epoch and era) with its DLEQ
// proof, and seals the partial to each of ws: a CommKey channel from this
// pRuntime's ECDH key to the worker's (api.ChannelPurposeKeyPartial),
// additional data p.AD(worker).
func (g *Gatekeeper) seal(p *api.KeyPartials, ws []*api.WorkerRecord) error {
	set := g.cfg.Chain.KeySet(p.Era)
	i := set.Index(g.cfg.Entity.Identity.Public())
	part, err := threshold.Evaluate(&share.PriShare{I: i, V: g.shares[p.Era]}, threshold.ContractPoint(p.Upload, p.Epoch, p.Era))
	if err != nil {
		return err
	}
	b, err := part.Encode()
	if err != nil {
		return err
	}
	mine := g.ecdh()
	p.MemberE = mine.Public()
	for _, w := range ws {
		p.Workers = append(p.Workers, api.SealedKey{Worker: w.Info.IdentityKey})
	}
	for j, w := range ws {
		ch, err := channel.New(mine, w.Info.EcdhKey, api.ChannelPurposeKeyPartial)
		if err != nil {
			return fmt.Errorf("channel to worker %s: %w", w.Info.IdentityKey.Short(), err)
		}
		p.Workers[j].Sealed = ch.Seal(b, p.AD(w.Info.IdentityKey))
	}
	return nil
}

// Rekey (a member of the key set of era) sends its partials of deployed
// contract's next key epoch (api.KeyForEpoch) to the contract's current
// workers, in the record's order (the chain's api.Rekey names the era
// and epoch; docs/keys.md, "The epoch protocol"). A worker without an
// attested registration in the queue makes it send nothing (the chain
// refuses a round that is not the record's workers anyway).
func (g *Gatekeeper) Rekey(height int64, u Upload, contract crypto.PublicKey, era, epoch uint64) {
	if !g.member(era) || len(u.Current) == 0 {
		return
	}
	ws := make([]*api.WorkerRecord, 0, len(u.Current))
	for _, k := range u.Current {
		w := g.cfg.Chain.Worker(k)
		if w == nil || !g.cfg.Chain.Attested(w, height) {
			g.cfg.Log.Warn("contract worker without an attested registration: no key epoch partials", "contract", contract.Short(), "worker", k.Short())
			return
		}
		ws = append(ws, w)
	}
	p := &api.KeyPartials{Upload: u.ID, Era: era, Epoch: epoch, Purpose: api.KeyForEpoch, Contract: contract}
	if err := g.seal(p, ws); err != nil {
		g.cfg.Log.Error("evaluate contract key partials", "err", err)
		return
	}
	g.cfg.Emit(api.OriginWorker, api.TopicKeyPartials, p.Encode())
	g.cfg.Log.Info("key epoch partials sent", "contract", contract.Short(), "era", era, "epoch", epoch, "workers", len(ws))
}

// Forget destroys this gatekeeper's share of era (retired by the chain,
// api.TopicKeyEraRetired): dropped from memory and from the sealed file,
// rewritten without it (docs/keys.md, P2). Errors: the sealing's (the
// share is gone from memory anyway; the file is rewritten at the next
// save).
func (g *Gatekeeper) Forget(era uint64) error {
	if g.shares[era] == nil {
		return nil
	}
	delete(g.shares, era)
	if err := g.save(); err != nil {
		return fmt.Errorf("reseal master key shares without era %d: %w", era, err)
	}
	g.cfg.Log.Info("master key share of a retired key era destroyed", "era", era)
	return nil
}

// Arbiters (a member of the contract's key set) assigns n arbiters to the
// open dispute of contract's state update at disputed
// (docs/availability.md, "Arbitration"): workers eligible as for a grant
// that do not run it (u.Current), ordered by SHA-256(contract ‖ disputed
// height ‖ worker), its partial sealed to each, emitted as api.KeyPartials
// for api.KeyForArbiters. No eligible worker: nothing is emitted
// (logged).
func (g *Gatekeeper) Arbiters(height int64, u Upload, contract crypto.PublicKey, disputed int64, n int) {
	if !g.member(u.KeyEra) || n <= 0 {
		return
	}
	seed := binary.BigEndian.AppendUint64(bytes.Clone(contract[:]), uint64(disputed))
	ws, _, _ := g.pick(height, &u, seed, n)
	if len(ws) == 0 {
		g.cfg.Log.Warn("no worker to arbitrate the disputed state update", "contract", contract.Short(), "height", disputed)
		return
	}
	p := &api.KeyPartials{Upload: u.ID, Era: u.KeyEra, Epoch: u.KeyEpoch, Purpose: api.KeyForArbiters, Contract: contract, Disputed: disputed}
	if err := g.seal(p, ws); err != nil {
		g.cfg.Log.Error("evaluate contract key partials", "err", err)
		return
	}
	g.cfg.Emit(api.OriginWorker, api.TopicKeyPartials, p.Encode())
	g.cfg.Log.Info("arbiters assigned", "contract", contract.Short(), "height", disputed, "arbiters", len(ws))
}
