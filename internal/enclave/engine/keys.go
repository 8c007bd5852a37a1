package engine

// The worker's side of contract key provisioning (docs/keys.md, "Contract
// key derivation"): every pRuntime follows the key sets the chain adopts
// (api.TopicKeyRotationReady); a worker named in a member's partials
// (api.KeyPartials) opens its own, checks it against the member's public
// commitment in the era's key set, and once it holds T of one round
// combines them into the contract's seed; for a first deployment it
// reports the contract's public keys (api.ContractKeyed), and when the
// chain accepts the round (api.ContractDeployed, api.ArbitersAssigned) it
// takes the key from the round.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"

	"go.dedis.ch/kyber/v3"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/threshold"
)

// keyRoundLifetime is how long (blocks) this worker keeps a round's
// partials or combined key that no accepted grant took (the chain's
// contracts.KeyRoundLifetime).
const keyRoundLifetime = 100

// keyRound is what this worker holds of a round of partials naming it:
// the verified partials by member index, then the combined seed. Sealed
// only inside the runtime core (not chain-derived).
type keyRound struct {
	upload   [32]byte
	epoch    uint64
	height   int64 // the block of its first partial
	partials map[int][]byte
	seed     *[crypto.SeedSize]byte
}

// onKeyRotationReady (every pRuntime) records a key set the chain adopted
// (chain-derived) and tells this pRuntime's gatekeeper role.
func (e *Engine) onKeyRotationReady(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin(gatekeeperModule) {
		return fmt.Errorf("key set from %s, not the gatekeeper module", m.Origin)
	}
	set, err := api.DecodeKeySet(m.Payload)
	if err != nil {
		return err
	}
	if _, err := keySetCommits(set); err != nil {
		return err
	}
	e.st.keySets[set.Era] = set
	e.st.servingKeyEra, e.st.hasKeySet = set.Era, true
	if e.st.dkgPhase != nil && e.st.dkgPhase.Era <= set.Era {
		e.st.dkgPhase = nil
	}
	if e.st.dkg != nil && e.st.dkg.era <= set.Era {
		e.st.dkg = nil // the DKG key: gone from the next checkpoint
	}
	me := e.entity.Identity.Public()
	if e.gk != nil {
		e.gk.Adopted(set)
		// The genesis key set: its creator shares the MasterKey with
		// the genesis gatekeepers already registered (those registering
		// later get it then, onWorkerRegistered).
		if set.Era == 0 && e.gk.Holds(0) && set.Members[0] == me {
			for _, k := range set.Members {
				if rec := e.st.workers[k]; rec != nil && k != me {
					e.gk.Share(ctx.Height, rec, 0)
				}
			}
		}
	}
	e.log.Info("key set adopted", "era", set.Era, "threshold", set.T, "members", len(set.Members))
	if e.gk != nil && e.isGatekeeper(me) {
		e.grantWaiting(ctx.Height) // uploads made while no key set could serve them
	}
	return nil
}

// commitments returns the member commitments X_i of set (computed once
// per key era: each is a polynomial evaluation in the exponent).
func (e *Engine) commitments(set *api.KeySet) ([]kyber.Point, error) {
	if xs, ok := e.memberCommits[set.Era]; ok {
		return xs, nil
	}
	cs, err := keySetCommits(set)
	if err != nil {
		return nil, err
	}
	xs := make([]kyber.Point, len(set.Members))
	for i := range xs {
		xs[i] = threshold.MemberCommitment(cs, i)
	}
	if e.memberCommits == nil {
		e.memberCommits = map[uint64][]kyber.Point{}
	}
	e.memberCommits[set.Era] = xs
	return xs, nil
}

// keySetMember reports whether key is a member of any adopted key set.
func (e *Engine) keySetMember(key crypto.PublicKey) bool {
	for _, set := range e.st.keySets {
		if set.Index(key) >= 0 {
			return true
		}
	}
	return false
}

// keySetCommits decodes set's commitments.
func keySetCommits(set *api.KeySet) ([]kyber.Point, error) {
	cs, err := threshold.DecodeCommits(set.Commits)
	if err != nil {
		return nil, fmt.Errorf("key set of era %d: %w", set.Era, err)
	}
	return cs, nil
}

// onKeyPartials: a worker named in a key-set member's partials opens its
// own and keeps it if its proof checks against the member's commitment;
// the T-th valid one of the round gives the contract's seed. A partial
// from a non-member, sealed with another key than the member's
// registered ECDH key, that does not open or whose proof fails changes
// nothing (the error is logged with the message).
func (e *Engine) onKeyPartials(ctx *Context, m *api.Message) error {
	if m.Origin.Kind != api.OriginWorker {
		return nil
	}
	p, err := api.DecodeKeyPartials(m.Payload)
	if err != nil {
		return err
	}
	me := e.entity.Identity.Public()
	j := slices.IndexFunc(p.Workers, func(k api.SealedKey) bool { return k.Worker == me })
	if j < 0 {
		return nil
	}
	set := e.st.keySets[p.Era]
	if set == nil {
		return fmt.Errorf("key partials of era %d: no such key set", p.Era)
	}
	idx := set.Index(m.Origin.Key)
	if idx < 0 {
		return fmt.Errorf("key partials from %s, not a member of the key set of era %d", m.Origin.Key.Short(), p.Era)
	}
	w := e.st.workers[m.Origin.Key]
	if !e.attested(w, ctx.Height) {
		// The chain's rule too (contracts.OnPartials): the same members count.
		return fmt.Errorf("key partials from %s, not attested at height %d", m.Origin.Key.Short(), ctx.Height)
	}
	if w.Info.EcdhKey != p.MemberE {
		return fmt.Errorf("key partials from %s sealed with another ECDH key than its registered one", m.Origin.Key.Short())
	}
	roundID := p.Round()
	r := e.st.rounds[roundID]
	if r == nil {
		r = &keyRound{upload: p.Upload, epoch: p.Epoch, height: ctx.Height, partials: map[int][]byte{}}
	}
	if r.seed != nil || r.partials[idx] != nil {
		return nil
	}
	mine := e.st.workers[me]
	if mine == nil || e.entity.EcdhFor(mine.Info.EcdhKey) == nil {
		return fmt.Errorf("key partials sealed to a registration of this worker it holds no ECDH key of")
	}
	ch, err := channel.New(e.entity.EcdhFor(mine.Info.EcdhKey), p.MemberE, api.ChannelPurposeKeyPartial)
	if err != nil {
		return err
	}
	b, err := ch.Open(p.Workers[j].Sealed, p.AD(me))
	if err != nil {
		return fmt.Errorf("key partial from %s does not open: %w", m.Origin.Key.Short(), err)
	}
	part, err := threshold.DecodePartial(b)
	if err != nil {
		return err
	}
	xs, err := e.commitments(set)
	if err != nil {
		return err
	}
	h := threshold.ContractPoint(p.Upload, p.Epoch, p.Era)
	if part.Index != idx {
		return fmt.Errorf("key partial from member %d claims index %d", idx, part.Index)
	}
	if err := threshold.Verify(xs[idx], h, part); err != nil {
		return fmt.Errorf("key partial from %s: %w", m.Origin.Key.Short(), err)
	}
	r.partials[idx] = b
	e.st.rounds[roundID] = r
	if len(r.partials) < int(set.T) {
		return nil
	}
	seed, err := r.combine(int(set.T), len(set.Members))
	if err != nil {
		return err
	}
	r.seed, r.partials = &seed, nil
	if err := e.takeAwaited(roundID); err != nil {
		return err
	}
	if p.Purpose == api.KeyForEpoch {
		// The epoch's public ECDH key is reported by the contract's
		// workers (no member knows it); the identity stays.
		run := e.running[p.Contract]
		if run == nil {
			return nil
		}
		ck, err := keys.ContractKeysFromSeed(seed)
		if err != nil {
			return err
		}
		k := &api.ContractKeyed{Round: roundID, Upload: p.Upload, Identity: p.Contract, Ecdh: ck.Ecdh.Public()}
		e.emit(api.OriginWorker, api.TopicContractKeyed, k.Encode())
		e.log.Info("contract key epoch derived from its partials: reporting its ECDH key", "contract", p.Contract.Short(), "era", p.Era, "epoch", p.Epoch)
		return nil
	}
	if p.Purpose != api.KeyForWorkers {
		return nil
	}
	if u := e.st.uploads[p.Upload]; u != nil && !u.granted {
		ck, err := keys.ContractKeysFromSeed(seed)
		if err != nil {
			return err
		}
		k := &api.ContractKeyed{Round: roundID, Upload: p.Upload, Identity: ck.Identity.Public(), Ecdh: ck.Ecdh.Public()}
		e.emit(api.OriginWorker, api.TopicContractKeyed, k.Encode())
		e.log.Info("contract key derived from its partials: reporting its public keys", "contract", k.Identity.Short(), "era", p.Era)
	}
	return nil
}

// onRekey (a member of the serving key set) answers the chain's call for
// a contract's next key epoch with its partials to the contract's
// workers.
func (e *Engine) onRekey(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin("contracts") {
		return fmt.Errorf("rekey from %s, not the contracts module", m.Origin)
	}
	k, err := api.DecodeRekey(m.Payload)
	if err != nil {
		return err
	}
	d := e.st.deployed[k.Contract]
	if e.gk == nil || d == nil || d.upload != k.Upload {
		return nil
	}
	e.gk.Rekey(ctx.Height, e.gkUpload(d.upload, d), k.Contract, k.Era, k.Epoch)
	return nil
}

// onRekeyed follows a contract's move to its next key epoch (every
// pRuntime: the deployment's key era and epoch, migrating); a worker of
// the contract takes the epoch's key from the round it combined and
// switches the contract to it at this block, the same point in chain
// order on every replica (contracts.Contract.SwitchEpoch). A worker that
// did not combine the round (it missed partials) stops the contract: it
// could not follow the replicas' state.
func (e *Engine) onRekeyed(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin("contracts") {
		return fmt.Errorf("rekeyed from %s, not the contracts module", m.Origin)
	}
	g, err := api.DecodeContractKeyGrant(m.Payload)
	if err != nil {
		return err
	}
	d := e.st.deployed[g.Identity]
	if d == nil || d.upload != g.Upload {
		return fmt.Errorf("rekeyed contract %s is not deployed", g.Identity.Short())
	}
	d.keyEra, d.keyEpoch, d.migrating, d.epochHeight, d.ecdh = g.Era, g.Epoch, true, ctx.Height, g.Ecdh
	r := e.running[g.Identity]
	if r == nil || !slices.Contains(g.Workers, e.entity.Identity.Public()) {
		return nil
	}
	kr := e.st.rounds[g.Round]
	if kr == nil || kr.seed == nil {
		e.stopContract(g.Identity, "no key for the contract's new key epoch")
		return fmt.Errorf("%w (round %x)", errNoRoundKey, g.Round[:4])
	}
	ck, err := keys.ContractKeysFromSeed(*kr.seed)
	if err != nil {
		return err
	}
	delete(e.st.rounds, g.Round)
	if ck.Ecdh.Public() != g.Ecdh {
		e.stopContract(g.Identity, "the new key epoch's key does not match the chain's record")
		return errors.New("the combined epoch key does not match the contract's new ECDH key")
	}
	prev := r.c.Keys().Seed
	if err := r.c.SwitchEpoch(g.Epoch, ck); err != nil {
		return fmt.Errorf("switch contract %s to key epoch %d: %w", g.Identity.Short(), g.Epoch, err)
	}
	r.prevSeed, r.dirty = &prev, true
	e.log.Info("contract moved to a new key epoch: re-encrypting its state", "contract", g.Identity.Short(), "era", g.Era, "epoch", g.Epoch, "entries", r.c.Store().OldEntries())
	return nil
}

// endMigration follows an accepted state update of contract id with no
// entry left under an older key epoch, made after its move (every
// pRuntime); a worker running it forgets the old epoch's keys (gone from
// its next checkpoint).
func (e *Engine) endMigration(id crypto.PublicKey, u *api.StateUpdate) {
	d := e.st.deployed[id]
	if d == nil || !d.migrating || u.OldEntries != 0 || u.Height < d.epochHeight {
		return
	}
	d.migrating = false
	r := e.running[id]
	if r == nil {
		return
	}
	if err := r.c.EndMigration(); err != nil {
		e.log.Error("forget the contract's old key epoch", "contract", id.Short(), "err", err)
		return
	}
	r.prevSeed, r.dirty = nil, true
	e.log.Info("contract's state re-encrypted: the old key epoch's keys destroyed", "contract", id.Short(), "epoch", d.keyEpoch)
}

// onKeyEraRetired (a member of a retired key era's set) destroys its
// share of that era.
func (e *Engine) onKeyEraRetired(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin(gatekeeperModule) {
		return fmt.Errorf("key era retirement from %s, not the gatekeeper module", m.Origin)
	}
	era, n := binary.Uvarint(m.Payload)
	if n <= 0 || n != len(m.Payload) {
		return fmt.Errorf("%w: key era retirement payload", api.ErrMalformed)
	}
	delete(e.memberCommits, era)
	if e.gk == nil {
		return nil
	}
	return e.gk.Forget(era)
}

// combine interpolates the round's verified partials (t of an n-member
// set) into the contract's seed.
func (r *keyRound) combine(t, n int) ([crypto.SeedSize]byte, error) {
	ps := make([]*threshold.Partial, 0, len(r.partials))
	for _, b := range r.partials {
		p, err := threshold.DecodePartial(b)
		if err != nil {
			return [crypto.SeedSize]byte{}, err
		}
		ps = append(ps, p)
	}
	xh, err := threshold.Combine(ps, t, n)
	if err != nil {
		return [crypto.SeedSize]byte{}, err
	}
	return threshold.ContractSeed(xh, r.upload, r.epoch)
}

// Kinds of accepted grants a worker awaits the key of (awaitedGrant).
const (
	awaitDeploy  uint8 = 1 // a ContractDeployed adding this worker
	awaitArbiter uint8 = 2 // an ArbitersAssigned naming it
)

// awaitedGrant is an accepted grant naming this worker whose round's key
// it has not combined yet: the chain completes a round at T members
// without opening their partials, so one that does not verify leaves the
// worker short until the other members' partials arrive (docs/keys.md).
// height: the grant's block (deploy) or the disputed update's (arbiter).
type awaitedGrant struct {
	kind   uint8
	grant  []byte // the encoded api.ContractKeyGrant
	height int64
	at     int64 // the block it was accepted in (for pruning)
}

// await keeps an accepted grant until its round's key combines.
func (e *Engine) await(round [32]byte, kind uint8, grant []byte, height int64) {
	e.st.awaiting[round] = &awaitedGrant{kind: kind, grant: grant, height: height, at: e.st.dispatched}
	e.log.Warn("assigned before holding T valid key partials: waiting for the other members' partials", "round", fmt.Sprintf("%x", round[:4]))
}

// takeAwaited takes the key of an awaited grant of round once combined:
// a deployed contract this worker still runs for is recovered from the
// chain; a dispute still open is arbitrated.
func (e *Engine) takeAwaited(round [32]byte) error {
	aw := e.st.awaiting[round]
	if aw == nil {
		return nil
	}
	delete(e.st.awaiting, round)
	g, err := api.DecodeContractKeyGrant(aw.grant)
	if err != nil {
		return err
	}
	d := e.st.deployed[g.Identity]
	var into map[crypto.PublicKey]*heldKey
	switch {
	case d == nil:
	case aw.kind == awaitDeploy && slices.Contains(d.workers, e.entity.Identity.Public()) && e.running[g.Identity] == nil:
		into = e.st.recovering
	case aw.kind == awaitArbiter && d.dispute != nil && d.dispute.height == aw.height:
		into = e.st.arbitrating
	}
	if into == nil {
		return nil // no longer assigned: the key is not taken
	}
	ck, err := e.takeRoundKey(g)
	if err != nil {
		return err
	}
	into[g.Identity] = &heldKey{upload: g.Upload, seed: ck.Seed, height: aw.height}
	e.log.Info("key of an assigned contract combined late: rebuilding it from the chain", "contract", g.Identity.Short())
	return nil
}

// errNoRoundKey: an accepted grant names this worker but it did not
// combine the round's key (it missed partials: a sealed file rolled back,
// a partial that did not verify).
var errNoRoundKey = errors.New("no key combined for the accepted round")

// takeRoundKey returns the contract keys this worker combined in the
// round the accepted grant g names, checked against the contract's public
// keys g carries, and forgets the round.
func (e *Engine) takeRoundKey(g *api.ContractKeyGrant) (*keys.ContractKeys, error) {
	r := e.st.rounds[g.Round]
	if r == nil || r.seed == nil {
		return nil, fmt.Errorf("%w (round %x)", errNoRoundKey, g.Round[:4])
	}
	ck, err := keys.ContractKeysFromSeed(*r.seed)
	if err != nil {
		return nil, err
	}
	delete(e.st.rounds, g.Round)
	// After epoch 0 the IdentityKey comes from the contract's state (the
	// secrets entry: rebuild checks it), not from the epoch's seed.
	if (g.Epoch == 0 && ck.Identity.Public() != g.Identity) || ck.Ecdh.Public() != g.Ecdh {
		return nil, errors.New("the combined key does not match the contract's public keys")
	}
	return ck, nil
}

// pruneRounds forgets the rounds, and the grants awaiting their key,
// older than keyRoundLifetime.
func (e *Engine) pruneRounds(height int64) {
	for id, r := range e.st.rounds {
		if height-r.height > keyRoundLifetime {
			delete(e.st.rounds, id)
		}
	}
	for id, aw := range e.st.awaiting {
		if height-aw.at > keyRoundLifetime {
			delete(e.st.awaiting, id)
			e.log.Error("an assigned contract's key never combined: fewer than T valid partials reached this worker", "round", fmt.Sprintf("%x", id[:4]))
		}
	}
}

// encodeKeySets writes the adopted key sets and the serving era
// (chain-derived).
func (s *state) encodeKeySets(w *codec.Writer) {
	eras := make([]uint64, 0, len(s.keySets))
	for era := range s.keySets {
		eras = append(eras, era)
	}
	slices.Sort(eras)
	w.Uvarint(uint64(len(eras)))
	for _, era := range eras {
		w.BytesField(s.keySets[era].Encode())
	}
	w.Bool(s.hasKeySet)
	w.Uvarint(s.servingKeyEra)
}

func (s *state) decodeKeySets(r *codec.Reader) {
	for n := r.Uvarint(); r.Err() == nil && n > 0; n-- {
		set, err := api.DecodeKeySet(r.BytesField(16 + 64*api.MaxGatekeepers + 16))
		if err != nil {
			r.Fail(err)
			return
		}
		s.keySets[set.Era] = set
	}
	s.hasKeySet = r.Bool()
	s.servingKeyEra = r.Uvarint()
}

// encodeAwaiting writes the grants awaiting their round's key.
func encodeAwaiting(w *codec.Writer, m map[[32]byte]*awaitedGrant) {
	ids := make([][32]byte, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	w.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		a := m[id]
		w.Fixed(id[:])
		w.U8(a.kind)
		w.BytesField(a.grant)
		w.Varint(a.height)
		w.Varint(a.at)
	}
}

func decodeAwaiting(r *codec.Reader, m map[[32]byte]*awaitedGrant) {
	for n := r.Uvarint(); r.Err() == nil && n > 0; n-- {
		var id [32]byte
		r.Fixed(id[:])
		a := &awaitedGrant{kind: r.U8()}
		a.grant = r.BytesField(4096)
		a.height, a.at = r.Varint(), r.Varint()
		m[id] = a
	}
}

// encodeRounds writes this worker's rounds (sealed core only).
func encodeRounds(w *codec.Writer, m map[[32]byte]*keyRound) {
	ids := make([][32]byte, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	w.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		r := m[id]
		w.Fixed(id[:])
		w.Fixed(r.upload[:])
		w.Uvarint(r.epoch)
		w.Varint(r.height)
		w.Bool(r.seed != nil)
		if r.seed != nil {
			w.Fixed(r.seed[:])
		}
		idx := make([]int, 0, len(r.partials))
		for i := range r.partials {
			idx = append(idx, i)
		}
		slices.Sort(idx)
		w.Uvarint(uint64(len(idx)))
		for _, i := range idx {
			w.Uvarint(uint64(i))
			w.BytesField(r.partials[i])
		}
	}
}

func decodeRounds(r *codec.Reader, m map[[32]byte]*keyRound) {
	for n := r.Uvarint(); r.Err() == nil && n > 0; n-- {
		var id [32]byte
		r.Fixed(id[:])
		k := &keyRound{partials: map[int][]byte{}}
		r.Fixed(k.upload[:])
		k.epoch = r.Uvarint()
		k.height = r.Varint()
		if r.Bool() {
			var s [crypto.SeedSize]byte
			r.Fixed(s[:])
			k.seed = &s
		}
		for p := r.Uvarint(); r.Err() == nil && p > 0; p-- {
			i := r.Uvarint()
			if i >= threshold.MaxMembers {
				r.Fail(fmt.Errorf("member index %d", i))
				return
			}
			k.partials[int(i)] = r.BytesField(threshold.PartialSize)
		}
		m[id] = k
	}
}
