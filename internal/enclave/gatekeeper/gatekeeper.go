// Package gatekeeper holds a gatekeeper pRuntime's duties and the key only
// a gatekeeper holds: the MasterKey (whitepaper 4.4). It creates the
// MasterKey at the first start of the first genesis gatekeeper, announces
// its public key once this gatekeeper's own attested registration is in the
// queue, shares it with the other attested genesis gatekeepers, receives
// it from one of them, and derives every contract's keys from it, sealing
// them to the attested workers that run the contract (the grant).
//
// It owns no chain state: what it decides on (the registrations in the
// queue, who is attested, the master public key the chain adopted, the
// egress) is the engine's verified view (Chain), and what it says goes
// out through the engine's egress (Config.Emit). The engine
// (internal/enclave/engine) calls it under its lock, from its handlers in
// block order, so it needs no lock of its own. The worker's side (opening
// a grant, running the contract) stays in the engine.
package gatekeeper

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/sealing"
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
	// MasterPublic returns the master public key the chain adopted (the
	// first attested gatekeeper's announcement), zero before.
	MasterPublic() crypto.PublicKey
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
	// grants and shares.
	Entity *keys.Entity
	// Gatekeepers: the genesis gatekeepers, the first one creating the
	// MasterKey.
	Gatekeepers []crypto.PublicKey
	// Sealer: bound to the chain and this identity; seals the MasterKey,
	// and its binding's genesis hash is in every share's additional data.
	Sealer  *sealing.Sealer
	DataDir string // where keys.MasterFile is sealed
	Chain   Chain
	// Emit queues a message from this pRuntime as gatekeeper
	// (api.OriginGatekeeper) into its signed egress.
	Emit func(topic string, payload []byte)
	Log  *slog.Logger
}

// Gatekeeper is a gatekeeper pRuntime's role. Not safe for concurrent use
// (the engine's lock serializes it).
type Gatekeeper struct {
	cfg    Config
	master *keys.Master // nil until created, loaded or received
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
}

// New loads the MasterKey, or creates and seals it on the first start of
// the first genesis gatekeeper (firstStart: its pre-genesis entity keys
// are being bound to this chain now, and the chain has adopted no master
// key). Any other gatekeeper without a MasterKey, including the first one
// after its master.sealed was deleted, waits for a share: a chain has one
// MasterKey, announced once. A sealed MasterKey that is not the one the
// chain adopted is not used. New emits nothing; the engine calls Announce
// after it. Errors: the sealer's (another chain or identity, corrupt) or
// the sealing of a new key.
func New(cfg Config, firstStart bool) (*Gatekeeper, error) {
	g := &Gatekeeper{cfg: cfg}
	chainPub := cfg.Chain.MasterPublic()
	m, err := keys.LoadMaster(cfg.Sealer, cfg.DataDir)
	switch {
	case err == nil:
		if chainPub != (crypto.PublicKey{}) && m.Public() != chainPub {
			cfg.Log.Error("the sealed master key is not the chain's master key: not using it; waiting for a share", "sealed", m.Public().Hex(), "chain", chainPub.Hex())
			return g, nil
		}
		g.master = m
	case errors.Is(err, sealing.ErrNotExist):
		if !firstStart || cfg.Gatekeepers[0] != cfg.Entity.Identity.Public() || chainPub != (crypto.PublicKey{}) {
			cfg.Log.Info("gatekeeper without a MasterKey: waiting to receive it from another gatekeeper")
			return g, nil
		}
		if m, err = keys.GenerateMaster(); err != nil {
			return nil, err
		}
		if err := m.Save(cfg.Sealer, cfg.DataDir); err != nil {
			return nil, fmt.Errorf("seal master key: %w", err)
		}
		g.master = m
		cfg.Log.Info("master key created; announced once this gatekeeper's attested registration is in the queue", "public", m.Public().Hex())
	default:
		return nil, fmt.Errorf("load master key: %w", err)
	}
	return g, nil
}

// MasterPublic returns the public key of the MasterKey this gatekeeper
// holds; ok is false while it holds none.
func (g *Gatekeeper) MasterPublic() (pub crypto.PublicKey, ok bool) {
	if g.master == nil {
		return crypto.PublicKey{}, false
	}
	return g.master.Public(), true
}

// Announce (the genesis gatekeeper holding the MasterKey) emits the master
// public key announcement (api.TopicMasterKey) once its own attested
// registration is in the queue at height (the chain refuses the
// announcement of an unregistered gatekeeper), unless the key is already
// announced on chain or the announcement waits in the egress. The engine
// calls it when this pRuntime's registration arrives and at start (a crash
// between sealing the key and checkpointing the announcement).
func (g *Gatekeeper) Announce(height int64) {
	me := g.cfg.Entity.Identity.Public()
	if g.master == nil || g.cfg.Gatekeepers[0] != me || g.cfg.Chain.MasterPublic() != (crypto.PublicKey{}) || !g.cfg.Chain.Attested(g.cfg.Chain.Worker(me), height) {
		return
	}
	if g.cfg.Chain.Pending(api.TopicMasterKey) {
		return
	}
	pub := g.master.Public()
	g.cfg.Emit(api.TopicMasterKey, pub[:])
	g.cfg.Log.Info("master key announced", "public", pub.Hex(), "height", height)
}

// Adopted tells the gatekeeper the master public key the chain adopted.
// Only a host rolling back sealed files makes it differ from the one this
// gatekeeper holds: a MasterKey the chain did not adopt is dropped, never
// used.
func (g *Gatekeeper) Adopted(chainPub crypto.PublicKey) {
	if g.master != nil && g.master.Public() != chainPub {
		g.cfg.Log.Error("the chain announced another master key than this gatekeeper's: not using it", "own", g.master.Public().Hex(), "chain", chainPub.Hex())
		g.master = nil
	}
}

// Share (a gatekeeper holding the MasterKey) seals it to another
// gatekeeper (rec, from the queue at height) that has just registered or
// was just elected: to its attested ECDH key over a CommKey channel
// (api.ChannelPurposeMasterKey), so only that gatekeeper's pRuntime can
// open it, and emits the api.MasterKeyShare (api.TopicMasterKeyShare).
// Only a gatekeeper (Chain.IsGatekeeper: serving, or elected) whose
// registration is attested (Chain.Attested) receives it.
func (g *Gatekeeper) Share(height int64, rec *api.WorkerRecord) {
	to := rec.Info.IdentityKey
	if g.master == nil || to == g.cfg.Entity.Identity.Public() || !g.cfg.Chain.IsGatekeeper(to) || !g.cfg.Chain.Attested(rec, height) {
		return
	}
	ch, err := channel.New(g.cfg.Entity.Ecdh, rec.Info.EcdhKey, api.ChannelPurposeMasterKey)
	if err != nil {
		return
	}
	s := &api.MasterKeyShare{To: to, ToEcdh: rec.Info.EcdhKey, FromEcdh: g.cfg.Entity.Ecdh.Public(), Master: g.master.Public()}
	seed := g.master.Seed()
	s.Sealed = ch.Seal(seed[:], g.shareAD(s))
	g.cfg.Emit(api.TopicMasterKeyShare, s.Encode())
	g.cfg.Log.Info("master key shared", "to", to.Short())
}

// Receive (a gatekeeper without the MasterKey) opens a share addressed to
// it, sent by the attested gatekeeper from (the engine checked that),
// checks it is the master key the share names and the chain adopted, and
// seals it. A share for another gatekeeper, or arriving when this one
// already holds the MasterKey, is ignored (nil). Errors: sealed to another
// ECDH key, does not open (another chain, tampered), not the announced
// master key, or the sealing failed; nothing changes then.
func (g *Gatekeeper) Receive(from crypto.PublicKey, s *api.MasterKeyShare) error {
	if s.To != g.cfg.Entity.Identity.Public() || g.master != nil {
		return nil
	}
	if s.ToEcdh != g.cfg.Entity.Ecdh.Public() {
		return errors.New("share sealed to another ECDH key")
	}
	ch, err := channel.New(g.cfg.Entity.Ecdh, s.FromEcdh, api.ChannelPurposeMasterKey)
	if err != nil {
		return err
	}
	seed, err := ch.Open(s.Sealed, g.shareAD(s))
	if err != nil || len(seed) != crypto.SeedSize {
		return fmt.Errorf("cannot open the master key share: %v", err)
	}
	mk, err := keys.MasterFromSeed([crypto.SeedSize]byte(seed))
	if err != nil {
		return err
	}
	if chainPub := g.cfg.Chain.MasterPublic(); mk.Public() != s.Master || (chainPub != (crypto.PublicKey{}) && mk.Public() != chainPub) {
		return errors.New("shared key is not the announced master key")
	}
	if err := mk.Save(g.cfg.Sealer, g.cfg.DataDir); err != nil {
		return fmt.Errorf("seal master key: %w", err)
	}
	g.master = mk
	g.cfg.Log.Info("master key received", "from", from.Short(), "public", mk.Public().Hex())
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

// Grant (a gatekeeper holding the MasterKey; a no-op otherwise) derives
// the contract keys of upload u at height (keys.Master.ContractKey) and
// provisions them to the assigned workers: registered, attested
// (Chain.Attested), assignable (Chain.Assignable: staked, responsive),
// not gatekeepers, satisfying u.Requirements (members of its subnet if it
// names one, on its platform, with at least its cores, memory and pRuntime
// version as declared in their WorkerInfo), at most u.Replicas of them, ordered by
// SHA-256(upload id, worker identity) so every gatekeeper picks the same.
// For a deployed contract (u.Current not empty) it adds at most
// u.Replicas minus len(u.Current) workers, skipping u.Current and
// u.Exclude: a replacement (docs/availability.md, "Reassignment").
// The contract key seed is sealed to each worker's ECDH key over a CommKey
// channel (api.ChannelPurposeContractKey) and emitted as one
// api.ContractKeyGrant (api.TopicContractKey). No eligible worker: nothing
// is emitted (logged for a first deployment).
func (g *Gatekeeper) Grant(height int64, u Upload) {
	want := int(u.Replicas) - len(u.Current)
	if g.master == nil || want <= 0 {
		return
	}
	ws, eligible, short := g.pick(height, &u, u.ID[:], want)
	if len(ws) == 0 && len(u.Current) > 0 {
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
	delete(g.waiting, u.ID)
	gr, err := g.seal(&u, ws)
	if err != nil {
		g.cfg.Log.Error("derive contract key", "err", err)
		return
	}
	g.cfg.Emit(api.TopicContractKey, gr.Encode())
	g.cfg.Log.Info("contract key granted", "contract", gr.Identity.Short(), "workers", len(gr.Workers), "replacing", len(u.Current) > 0)
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
		if !g.cfg.Chain.Attested(w, height) || !g.cfg.Chain.Assignable(k) || g.cfg.Chain.IsGatekeeper(k) || slices.Contains(u.Current, k) || slices.Contains(u.Exclude, k) {
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

// seal derives upload u's contract keys and seals the key to each of ws
// (a CommKey channel to its ECDH key, api.ChannelPurposeContractKey).
func (g *Gatekeeper) seal(u *Upload, ws []*api.WorkerRecord) (*api.ContractKeyGrant, error) {
	ck, err := g.master.ContractKey(u.Deployer, u.CodeHash, u.Seq)
	if err != nil {
		return nil, err
	}
	gr := &api.ContractKeyGrant{Upload: u.ID, Identity: ck.Identity.Public(), Ecdh: ck.Ecdh.Public(), GatekeeperE: g.cfg.Entity.Ecdh.Public()}
	for _, w := range ws {
		ch, err := channel.New(g.cfg.Entity.Ecdh, w.Info.EcdhKey, api.ChannelPurposeContractKey)
		if err != nil {
			continue
		}
		gr.Workers = append(gr.Workers, api.SealedKey{Worker: w.Info.IdentityKey, Sealed: ch.Seal(ck.Seed[:], gr.AD(w.Info.IdentityKey))})
	}
	return gr, nil
}

// Arbiters (a gatekeeper holding the MasterKey) assigns n arbiters to the
// open dispute of contract's state update at disputed (docs/availability.md,
// "Arbitration"): workers eligible as for a grant that do not run it
// (u.Current), ordered by SHA-256(contract ‖ disputed height ‖ worker), the
// contract key sealed to each, emitted as one api.ArbiterGrant
// (api.TopicArbiterGrant). No eligible worker: nothing is emitted
// (logged).
func (g *Gatekeeper) Arbiters(height int64, u Upload, contract crypto.PublicKey, disputed int64, n int) {
	if g.master == nil || n <= 0 {
		return
	}
	seed := binary.BigEndian.AppendUint64(bytes.Clone(contract[:]), uint64(disputed))
	ws, _, _ := g.pick(height, &u, seed, n)
	if len(ws) == 0 {
		g.cfg.Log.Warn("no worker to arbitrate the disputed state update", "contract", contract.Short(), "height", disputed)
		return
	}
	gr, err := g.seal(&u, ws)
	if err != nil {
		g.cfg.Log.Error("derive contract key", "err", err)
		return
	}
	ag := &api.ArbiterGrant{Contract: contract, Height: disputed, Grant: gr.Encode()}
	g.cfg.Emit(api.TopicArbiterGrant, ag.Encode())
	g.cfg.Log.Info("arbiters assigned", "contract", contract.Short(), "height", disputed, "arbiters", len(gr.Workers))
}
