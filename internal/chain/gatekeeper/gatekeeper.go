// Package gatekeeper owns the chain's gatekeepers (DESIGN.md: the
// gatekeeper list and the master key lifecycle): the list of serving
// gatekeepers ("g/list", the genesis list until an elected set is active),
// the gatekeeper origin in the queue, the master public key the first
// gatekeeper announces ("g/master"), and their election ("gk/",
// docs/economy.md "Gatekeeper election"; specification "Gatekeeper
// Election", whitepaper 4.4).
//
// # Election
//
// The operator of a registered node declares it a candidate
// (gatekeeper_candidacy). At the last block of era e (heights
// [1+e·L, (e+1)·L], L = era_length; the last is the one with height % L ==
// 0), if n_gatekeepers > 0, the module elects the set of era e+1 by
// sequential Phragmén with balancing (package election) among the
// candidates that are attested and whose stake reaches
// min_gatekeeper_stake. Voters come from a VoterSource (staking): each
// candidate's stake is one self-vote approving only it; each nominator
// votes its bonded stake for its nominations. The result is recorded under
// gk/era/<e+1> (members, their backing, status) and gk/exp/<e+1><member>
// (the nominators' exposures),
// and announced as phala/gatekeeper/elected. Nothing elected: the serving
// set stays.
//
// # Activation: the set's DKG
//
// Each elected set makes a fresh MasterKey by a Pedersen DKG run through
// the queue (dkg.go; docs/keys.md, "Rotation per era"): the members post
// DKG keys, deal, respond and post results as their own egress with
// origin kind WORKER (they are not on the gatekeeper list yet). When T
// participants posted the same result the module adopts the key set
// (phala/keys/rotation_ready), makes the participants the gatekeeper list
// and emits phala/gatekeeper/active; the serving list serves until then.
// A failed attempt slashes its late members offline_slash_ppm and retries
// without them while two thirds of the set remain; a set still pending at
// the next era end (L blocks later) expires and the new election of that
// era end replaces it.
//
// # Early election
//
// At every other block, when at least ⌈n/3⌉ of the n serving gatekeepers
// are down (VoterSource.Down, the heartbeat liveness signal) and no
// elected set's DKG runs, the set of era e+1 is elected at once
// (ElectEarly, early.go; at most once per economy era e, recorded under
// gk/early/<e>); down candidates never stand. Adopted, it serves for the
// rest of era e and for era e+1: the era-end election of era e does not
// run. Still pending at the era end, it expires and is re-elected there.
package gatekeeper

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/election"
	"github.com/phalago/phala/internal/chain/eras"
	"github.com/phalago/phala/internal/chain/migration"
	"github.com/phalago/phala/internal/chain/module"
	"github.com/phalago/phala/internal/chain/mq"
	"github.com/phalago/phala/internal/chain/registry"
	"github.com/phalago/phala/internal/chain/store"
)

// Name is the module's name: its origin in the queue.
const Name = "gatekeeper"

// Gatekeepers returns the list of serving gatekeepers.
func Gatekeepers(kv store.KV) []crypto.PublicKey {
	v := kv.Get(api.KeyGatekeepers)
	if v == nil {
		return nil
	}
	keys, err := api.DecodeKeys(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt gatekeeper list: %v", err))
	}
	return keys
}

// SetGatekeepers writes the list of serving gatekeepers.
func SetGatekeepers(kv store.KV, keys []crypto.PublicKey) {
	kv.Set(api.KeyGatekeepers, api.EncodeKeys(keys))
}

// IsGatekeeper reports whether pk is on the gatekeeper list.
func IsGatekeeper(kv store.KV, pk crypto.PublicKey) bool {
	for _, k := range Gatekeepers(kv) {
		if k == pk {
			return true
		}
	}
	return false
}

// Authorize is the mq.Authorizer of the gatekeeper origin: the key must be
// on the gatekeeper list AND Attested (registry): its pRuntime registers
// with an attestation report like a worker's (whitepaper 4.4: the genesis
// names the gatekeeper's identity, which registers before its MasterKey
// announcement counts). Every gatekeeper message (master key announcement
// and shares, contract key grants) passes here, so the chain acts on none
// from a key merely named in the genesis. Errors wrap api.ErrUnknownOrigin.
func Authorize(kv store.KV, kind api.OriginKind, key crypto.PublicKey, height int64) error {
	if kind != api.OriginGatekeeper {
		return fmt.Errorf("%w: no %s with key %s is known to the chain", api.ErrUnknownOrigin, kind, key.Hex())
	}
	if !IsGatekeeper(kv, key) {
		return fmt.Errorf("%w: %s is not a gatekeeper", api.ErrUnknownOrigin, key.Hex())
	}
	if _, err := registry.Attested(kv, key, height); err != nil {
		return fmt.Errorf("gatekeeper: %w", err)
	}
	return nil
}

// Spec returns the gatekeeper module's entry in the chain's module table:
// it owns the gatekeeper list, the key sets and the running DKG ("g/")
// and the election ("gk/"); it executes gatekeeper_candidacy, admits the
// gatekeeper origin into the queue, adopts the genesis master key a
// gatekeeper announces, runs the elected set's DKG, elects at every era
// end and early when a third of the serving set is down (EndBlock), and
// serves their proved reads. src gives the election its voters (the
// staking module).
func Spec(src VoterSource) *module.Module {
	return &module.Module{
		Name:        Name,
		KeyPrefixes: []string{"g/", "gk/"},
		Calls: map[api.CallKind]module.CallHandler{
			api.CallGatekeeperCandidacy: func(ctx *block.Context, signer crypto.PublicKey, c api.Call) error {
				return DeclareCandidacy(ctx, signer, c.(*api.GatekeeperCandidacy))
			},
		},
		Origins: map[api.OriginKind]module.Authorizer{api.OriginGatekeeper: Authorize},
		Consumes: []module.Consumer{
			{Origin: api.OriginGatekeeper, Topic: api.TopicMasterKey, Handle: func(ctx *block.Context, m *api.Message) {
				PublishMasterKey(ctx, m.Origin.Key, m.Payload)
			}},
			{Origin: api.OriginWorker, Topic: api.TopicDkgKey, Handle: func(ctx *block.Context, m *api.Message) {
				OnDkgKey(ctx, src, m.Origin.Key, m.Payload)
			}},
			{Origin: api.OriginWorker, Topic: api.TopicDkgDeals, Handle: func(ctx *block.Context, m *api.Message) {
				OnDkgDeals(ctx, m.Origin.Key, m.Payload)
			}},
			{Origin: api.OriginWorker, Topic: api.TopicDkgResponse, Handle: func(ctx *block.Context, m *api.Message) {
				OnDkgForward(ctx, m.Origin.Key, m.Topic, m.Payload)
			}},
			{Origin: api.OriginWorker, Topic: api.TopicDkgJustification, Handle: func(ctx *block.Context, m *api.Message) {
				OnDkgForward(ctx, m.Origin.Key, m.Topic, m.Payload)
			}},
			{Origin: api.OriginWorker, Topic: api.TopicDkgResult, Handle: func(ctx *block.Context, m *api.Message) {
				OnDkgResult(ctx, src, m.Origin.Key, m.Payload)
			}},
		},
		InitGenesis: func(kv store.KV, g *module.Genesis) error {
			SetGatekeepers(kv, g.State.Gatekeepers)
			return nil
		},
		EndBlock: func(ctx *block.Context) error { return EndBlock(ctx, src) },
		StateQueries: []string{api.QueryGatekeepers, api.QueryMasterKey, api.QueryGatekeeperEra, api.QueryGatekeeperExposure,
			api.QueryGatekeeperCandidacy, api.QueryGatekeeperCandidates, api.QueryKeyEra, api.QueryKeySet, api.QueryKeyDkg, api.QueryKeyEraRetired},
	}
}

// VoterSource is what the election reads of staking. Implementations must
// be deterministic functions of the state.
type VoterSource interface {
	// NodeStake returns the total stake allocated to node (units): the
	// budget of its self-vote.
	NodeStake(kv store.KV, node crypto.PublicKey) uint64
	// ForEachNominator calls fn with every account that has nominations,
	// its bonded unallocated stake (units) and its targets, in ascending
	// account order, until fn returns false. fn may keep targets.
	ForEachNominator(kv store.KV, fn func(who crypto.PublicKey, bonded uint64, targets []crypto.PublicKey) bool)
	// Slash burns ppm (parts per million) of the stake backing node and
	// returns the amount burned.
	Slash(ctx *block.Context, node crypto.PublicKey, ppm uint64, reason string) uint64
	// SlashExposure burns up to amount units of voter's nominating stake
	// and returns the amount burned.
	SlashExposure(ctx *block.Context, voter crypto.PublicKey, amount uint64, reason string) uint64
	// Responsive reports whether the chain did not find node
	// unresponsive at the last era end (the computation module's
	// heartbeat verdict): an unresponsive node does not stand for
	// election, so a set with members down is replaced by responsive
	// ones at the next era end (docs/keys.md, P4).
	Responsive(ctx *block.Context, node crypto.PublicKey) bool
	// Down reports whether node stopped answering its heartbeat
	// challenges (computation.Down: the mid-era liveness signal). A
	// down candidate does not stand for election; a third of the
	// serving set down triggers the early election (early.go).
	Down(ctx *block.Context, node crypto.PublicKey) bool
}

// NoStake is the VoterSource of a chain without staking: no node has
// stake, nobody nominates, so nobody is elected.
type NoStake struct{}

func (NoStake) NodeStake(store.KV, crypto.PublicKey) uint64 { return 0 }
func (NoStake) ForEachNominator(store.KV, func(crypto.PublicKey, uint64, []crypto.PublicKey) bool) {
}
func (NoStake) Slash(*block.Context, crypto.PublicKey, uint64, string) uint64 { return 0 }
func (NoStake) Responsive(*block.Context, crypto.PublicKey) bool              { return true }
func (NoStake) Down(*block.Context, crypto.PublicKey) bool                    { return false }
func (NoStake) SlashExposure(*block.Context, crypto.PublicKey, uint64, string) uint64 {
	return 0
}

// Candidates returns the declared candidates, ascending.
func Candidates(kv store.KV) []crypto.PublicKey {
	v := kv.Get(api.KeyGatekeeperCandidates)
	if v == nil {
		return nil
	}
	keys, err := api.DecodeKeys(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt candidate list: %v", err))
	}
	return keys
}

// Candidacy returns node's candidacy, or nil.
func Candidacy(kv store.KV, node crypto.PublicKey) *api.Candidacy {
	v := kv.Get(api.CandidacyKey(node))
	if v == nil {
		return nil
	}
	c, err := api.DecodeCandidacy(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt candidacy %s: %v", node.Hex(), err))
	}
	return c
}

// DeclareCandidacy executes gatekeeper_candidacy: signer, the operator of
// the registered node (WorkerRecord.Info.Operator), declares it a
// candidate (c.On; the node must be registry.Attested) or withdraws it
// (an expired node's operator may still withdraw it). Errors:
// api.ErrNotNodeOperator, api.ErrUnknownOrigin (not registered or not
// attested), api.ErrCandidacyUnchanged (already in that state),
// api.ErrTooManyCandidates (api.MaxGatekeeperCandidates declared).
func DeclareCandidacy(ctx *block.Context, signer crypto.PublicKey, c *api.GatekeeperCandidacy) error {
	w := registry.Worker(ctx.KV, c.Node)
	cur := Candidacy(ctx.KV, c.Node)
	switch {
	case w != nil && w.Info.Operator != signer:
		return fmt.Errorf("%w: node %s is operated by %s, not %s", api.ErrNotNodeOperator, c.Node.Hex(), w.Info.Operator.Address(), signer.Address())
	case w == nil && (c.On || cur == nil):
		return fmt.Errorf("%w: %s has no registration; its pRuntime must register (register_worker) first", api.ErrUnknownOrigin, c.Node.Hex())
	case w == nil && cur.Operator != signer:
		return fmt.Errorf("%w: node %s was declared by %s, not %s", api.ErrNotNodeOperator, c.Node.Hex(), cur.Operator.Address(), signer.Address())
	case c.On && cur != nil:
		return fmt.Errorf("%w: %s is already a gatekeeper candidate (since height %d)", api.ErrCandidacyUnchanged, c.Node.Hex(), cur.Since)
	case !c.On && cur == nil:
		return fmt.Errorf("%w: %s is not a gatekeeper candidate", api.ErrCandidacyUnchanged, c.Node.Hex())
	}
	list := Candidates(ctx.KV)
	if c.On {
		if _, err := registry.Attested(ctx.KV, c.Node, ctx.Height); err != nil {
			return err
		}
		if len(list) >= api.MaxGatekeeperCandidates {
			return fmt.Errorf("%w: %d declared, at most %d", api.ErrTooManyCandidates, len(list), api.MaxGatekeeperCandidates)
		}
		i, _ := slices.BinarySearchFunc(list, c.Node, cmpKey)
		list = slices.Insert(list, i, c.Node)
		ctx.KV.Set(api.CandidacyKey(c.Node), (&api.Candidacy{Node: c.Node, Operator: signer, Since: ctx.Height}).Encode())
	} else {
		list = slices.DeleteFunc(list, func(k crypto.PublicKey) bool { return k == c.Node })
		ctx.KV.Delete(api.CandidacyKey(c.Node))
	}
	ctx.KV.Set(api.KeyGatekeeperCandidates, api.EncodeKeys(list))
	ctx.Event("gatekeeper_candidacy", "node", c.Node.Hex(), "operator", signer.Address(), "on", strconv.FormatBool(c.On))
	return nil
}

func cmpKey(a, b crypto.PublicKey) int { return bytes.Compare(a[:], b[:]) }

// Election returns the record of the set elected for era, or nil.
func Election(kv store.KV, era uint64) *api.ElectionRecord {
	v := kv.Get(api.GatekeeperEraKey(era))
	if v == nil {
		return nil
	}
	e, err := api.DecodeElectionRecord(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt election record of era %d: %v", era, err))
	}
	return e
}

// ExposureOf returns what backs member in era's election, or nil.
func ExposureOf(kv store.KV, era uint64, member crypto.PublicKey) *api.Exposure {
	v := kv.Get(api.GatekeeperExposureKey(era, member))
	if v == nil {
		return nil
	}
	x, err := api.DecodeExposure(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt exposure of %s in era %d: %v", member.Hex(), era, err))
	}
	return x
}

var keyPending = []byte("gk/pending")

// Pending returns the era of the elected set whose DKG runs, if any.
func Pending(kv store.KV) (uint64, bool) {
	v := kv.Get(keyPending)
	if v == nil {
		return 0, false
	}
	e, err := api.DecodeGatekeeperReady(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt pending era: %v", err))
	}
	return e.Era, true
}

// BalanceIterations is how many rounds of balancing (election.Balance,
// tolerance 0) follow the sequential Phragmén election, as Polkadot's
// off-chain election miners run: the exposures even out between the
// elected members a nominator backs.
const BalanceIterations = 10

// EndBlock advances the running DKG's deadlines (every block); at every
// other block than an era's last it checks the serving set's liveness
// (checkLiveness: the early election when a third is down, early.go); at
// the last block of an era: the set still pending (from the previous era
// end, or elected early in this era) expires (its DKG cut short, nobody
// slashed for that attempt), and, if n_gatekeepers > 0, the set of the
// next era is elected and its DKG begins (see the package comment),
// unless that set was elected early and serves already.
func EndBlock(ctx *block.Context, src VoterSource) error {
	stepDkg(ctx, src)
	era, last := eras.Of(ctx).Era(ctx.Height)
	if !last {
		return checkLiveness(ctx, src, era)
	}
	if p, ok := Pending(ctx.KV); ok {
		expire(ctx, p)
	}
	if ctx.Params.NGatekeepers == 0 {
		return nil
	}
	if rec := Election(ctx.KV, era+1); rec != nil && rec.Status == api.ElectionActive {
		// Elected early in this era (early.go) and serving: it is the
		// set of the next era.
		ctx.Event("gatekeeper_election_skipped", "era", strconv.FormatUint(era+1, 10),
			"reason", "the set of era "+strconv.FormatUint(era+1, 10)+" was elected early (height "+strconv.FormatInt(rec.Height, 10)+") and serves")
		return nil
	}
	return elect(ctx, src, era+1)
}

func expire(ctx *block.Context, era uint64) {
	rec := Election(ctx.KV, era)
	ctx.KV.Delete(keyPending)
	if rec == nil {
		panic(fmt.Sprintf("pending era %d has no election record", era))
	}
	// The attempt still running is cut short by the era end, not by its
	// members: nobody is slashed for it (the late members of earlier
	// attempts were when those failed).
	var missing []string
	if st := Dkg(ctx.KV); st != nil {
		for i, m := range st.Members {
			if j := slices.Index(st.Participants, m); st.Keys[i] == ([32]byte{}) || (j >= 0 && st.Results[j] == ([32]byte{})) {
				missing = append(missing, m.Hex())
			}
		}
		st.Phase, st.PhaseStart = api.DkgFailed, ctx.Height
		announceDkg(ctx, st)
		ctx.KV.Delete(api.KeyDkg)
	}
	rec.Status, rec.StatusHeight = api.ElectionExpired, ctx.Height
	ctx.KV.Set(api.GatekeeperEraKey(era), rec.Encode())
	ctx.Event("gatekeeper_set_expired", "era", strconv.FormatUint(era, 10), "unconfirmed", strings.Join(missing, ","))
}

func elect(ctx *block.Context, src VoterSource, era uint64) error {
	p := ctx.Params
	var cands []election.Candidate
	var voters []election.Voter
	var nominators []crypto.PublicKey // of voters[len(selfVotes):]
	for _, node := range Candidates(ctx.KV) {
		wr, err := registry.Attested(ctx.KV, node, ctx.Height)
		stake := src.NodeStake(ctx.KV, node)
		// A runtime migration seats only nodes of its target build.
		ok := err == nil && migration.Admits(ctx.KV, wr) && stake >= p.MinGatekeeperStake && src.Responsive(ctx, node) && !src.Down(ctx, node)
		cands = append(cands, election.Candidate{Key: node, Eligible: ok})
		if ok && stake > 0 {
			voters = append(voters, election.Voter{Budget: stake, Targets: []crypto.PublicKey{node}})
		}
	}
	selfVotes := len(voters)
	src.ForEachNominator(ctx.KV, func(who crypto.PublicKey, bonded uint64, targets []crypto.PublicKey) bool {
		if bonded > 0 {
			voters = append(voters, election.Voter{Budget: bonded, Targets: targets})
			nominators = append(nominators, who)
		}
		return true
	})
	n := int(p.NGatekeepers)
	res, err := election.SeqPhragmen(n, cands, voters)
	if err != nil {
		// Input the chain cannot elect from (stake sums over 2^64): the
		// serving set stays; say so rather than halt the chain.
		ctx.Event("gatekeeper_election_failed", "era", strconv.FormatUint(era, 10), "reason", err.Error())
		return nil
	}
	election.Balance(res, voters, BalanceIterations, 0)
	if len(res.Elected) == 0 {
		ctx.Event("gatekeeper_election_empty", "era", strconv.FormatUint(era, 10), "candidates", strconv.Itoa(len(cands)))
		return nil
	}
	exp := make(map[crypto.PublicKey]*api.Exposure, len(res.Elected))
	for _, m := range res.Elected {
		exp[m] = &api.Exposure{Era: era, Member: m}
	}
	for i, as := range res.Assignments {
		for _, a := range as {
			x := exp[a.Target]
			x.Total += a.Amount
			if i < selfVotes {
				x.Own += a.Amount
			} else {
				x.Others = append(x.Others, api.Backer{Who: nominators[i-selfVotes], Amount: a.Amount})
			}
		}
	}
	byAccount := func(a, b api.Backer) int { return cmpKey(a.Who, b.Who) }
	for _, m := range res.Elected {
		// Nominators come in ascending order from staking; sort otherwise.
		if x := exp[m]; !slices.IsSortedFunc(x.Others, byAccount) {
			slices.SortFunc(x.Others, byAccount)
		}
	}
	if old := Election(ctx.KV, era); old != nil {
		// The set elected early for this era expired (its DKG failed, or
		// the era end came first), or an era_length change renumbered the
		// eras: the new election of this era number replaces the old one
		// whole.
		for _, m := range old.Members {
			ctx.KV.Delete(api.GatekeeperExposureKey(era, m))
		}
	}
	rec := &api.ElectionRecord{Era: era, Height: ctx.Height, Members: res.Elected, Status: api.ElectionPending, StatusHeight: ctx.Height}
	for _, m := range res.Elected {
		x := exp[m]
		rec.Backing = append(rec.Backing, api.MemberBacking{Total: x.Total, Own: x.Own})
		ctx.KV.Set(api.GatekeeperExposureKey(era, m), x.Encode())
	}
	members := make([]string, len(rec.Members))
	for i, m := range rec.Members {
		members[i] = m.Hex()
	}
	ctx.Event("gatekeeper_elected", "era", strconv.FormatUint(era, 10), "members", strings.Join(members, ","))
	if err := mq.Emit(ctx, api.ModuleOrigin(Name), api.TopicGatekeeperElected, (&api.GatekeeperSet{Era: era, Members: rec.Members}).Encode()); err != nil {
		return err
	}
	ctx.KV.Set(api.GatekeeperEraKey(era), rec.Encode())
	ctx.KV.Set(keyPending, (&api.GatekeeperReady{Era: era}).Encode())
	beginDkg(ctx, era, 0, rec.Members)
	return nil
}

// activate makes the set of rec serve: serving (the participants of its
// DKG, who hold shares of its key set) become the gatekeeper list.
func activate(ctx *block.Context, rec *api.ElectionRecord, serving []crypto.PublicKey) error {
	rec.Status, rec.StatusHeight = api.ElectionActive, ctx.Height
	ctx.KV.Set(api.GatekeeperEraKey(rec.Era), rec.Encode())
	ctx.KV.Delete(keyPending)
	SetGatekeepers(ctx.KV, serving)
	ctx.Event("gatekeeper_set_active", "era", strconv.FormatUint(rec.Era, 10), "members", strconv.Itoa(len(serving)))
	return mq.Emit(ctx, api.ModuleOrigin(Name), api.TopicGatekeeperActive, (&api.GatekeeperSet{Era: rec.Era, Members: serving}).Encode())
}
