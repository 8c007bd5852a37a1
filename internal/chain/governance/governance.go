// Package governance owns the chain's trust roots as the council changes
// them: the council itself (members and threshold), the motions it
// proposes and votes, the chain parameters, the minimum pRuntime version
// and the record of CometBFT's validator set. Through the registry it
// changes the pRuntime measurement allowlist.
//
// # Motions
//
// A council member proposes a motion (its proposal is its aye); members
// vote aye or nay, once each. When the ayes of current members reach the
// threshold the motion is approved, and it is enacted at the end of that
// same block (EndBlock), in approval order: deterministic, and never in the
// middle of another transaction. A motion still open when its voting period
// (Params.GovVotingPeriod blocks) ends expires at the end of its last
// voting block and is never enacted. An approved motion whose action no
// longer applies to the state at enactment (a measurement already revoked
// by another motion of the block, the last validator removed) is marked
// failed with the reason; nothing of it is applied.
//
// # What enactment does
//
//   - allow/revoke measurement: changes the registry's allowlist and
//     announces the new allowlist to pRuntimes (api.TopicGovAllowlist).
//     A revoked measurement makes every registration made with it expire:
//     registry.Authorize refuses its messages, key grants naming it are
//     ignored, and gatekeepers stop granting contract keys to it.
//   - migrate runtime: starts a migration to a new pRuntime build
//     (package migration; its measurement joins the allowlist if needed);
//     refused while one runs. Revoking the running migration's target is
//     refused.
//   - cancel migration: ends the running migration without revoking
//     anything (package migration); refused when none runs.
//   - set minimum pRuntime version: recorded and announced
//     (api.TopicGovMinRuntimeVersion); older pRuntimes stop dispatching.
//   - set params: the chain parameters from the next block on, announced
//     to pRuntimes (api.TopicGovParams; they follow attestation_window).
//     A new era_length applies from the next era boundary (package eras);
//     once the era schedule is full (api.MaxEraSegments changes) a change
//     of era_length is refused at proposal and at enactment, and so is a
//     change of the DKG phase length (dkg_timeout, era_length/3) while a
//     gatekeeper DKG runs.
//   - set council: members and threshold; open motions keep their votes,
//     but only current members' ayes count.
//   - set validator: a CometBFT validator update returned from
//     FinalizeBlock (effective two blocks later); a change that would
//     leave no voting power, or remove a validator that does not exist,
//     is refused.
package governance

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"reflect"
	"sort"
	"strconv"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/eras"
	"github.com/phalago/phala/internal/chain/gatekeeper"
	"github.com/phalago/phala/internal/chain/migration"
	"github.com/phalago/phala/internal/chain/module"
	"github.com/phalago/phala/internal/chain/mq"
	"github.com/phalago/phala/internal/chain/registry"
	"github.com/phalago/phala/internal/chain/store"
)

// Name is the module's origin name in the queue.
const Name = "governance"

// Spec returns the governance module's entry in the chain's module table.
func Spec() *module.Module {
	return &module.Module{
		Name:        Name,
		KeyPrefixes: []string{"gov/", string(api.KeyParams)},
		Calls: map[api.CallKind]module.CallHandler{
			api.CallGovPropose: func(ctx *block.Context, signer crypto.PublicKey, c api.Call) error {
				return Propose(ctx, signer, c.(*api.GovPropose))
			},
			api.CallGovVote: func(ctx *block.Context, signer crypto.PublicKey, c api.Call) error {
				return Vote(ctx, signer, c.(*api.GovVote))
			},
		},
		InitGenesis: initGenesis,
		EndBlock:    EndBlock,
		StateQueries: []string{api.QueryParams, api.QueryCouncil, api.QueryMotion, api.QueryNextMotion,
			api.QueryMinRuntimeVersion, api.QueryValidators},
	}
}

func initGenesis(kv store.KV, g *module.Genesis) error {
	kv.Set(api.KeyParams, g.State.Params.Encode())
	c := &api.Council{Members: g.State.Governance.Council, Threshold: g.State.Governance.Threshold}
	if err := c.Validate(); err != nil {
		return err
	}
	kv.Set(api.KeyCouncil, c.Encode())
	var vs api.ValidatorSet
	for _, v := range g.Validators {
		pk := v.PubKey.GetEd25519()
		if len(pk) != api.ValidatorKeySize || v.Power <= 0 || v.Power > api.MaxValidatorPower {
			return fmt.Errorf("genesis validator %x: only ed25519 keys with power in [1, %d] are supported", pk, uint64(api.MaxValidatorPower))
		}
		vs = append(vs, api.Validator{PubKey: [api.ValidatorKeySize]byte(pk), Power: uint64(v.Power)})
	}
	sortValidators(vs)
	for i := 1; i < len(vs); i++ {
		if vs[i].PubKey == vs[i-1].PubKey {
			return fmt.Errorf("genesis validator %x listed twice", vs[i].PubKey)
		}
	}
	kv.Set(api.KeyValidators, vs.Encode())
	return nil
}

// Council returns the council (empty if none).
func Council(kv store.KV) *api.Council {
	v := kv.Get(api.KeyCouncil)
	if v == nil {
		return &api.Council{}
	}
	c, err := api.DecodeCouncil(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt council: %v", err))
	}
	return c
}

// Motion returns motion id, or nil.
func Motion(kv store.KV, id uint64) *api.Motion {
	v := kv.Get(api.MotionKey(id))
	if v == nil {
		return nil
	}
	m, err := api.DecodeMotion(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt motion %d: %v", id, err))
	}
	return m
}

func saveMotion(kv store.KV, m *api.Motion) { kv.Set(api.MotionKey(m.ID), m.Encode()) }

// MinRuntimeVersion returns the minimum pRuntime version (0: none set).
func MinRuntimeVersion(kv store.KV) uint32 {
	v := kv.Get(api.KeyMinRuntimeVersion)
	if v == nil {
		return 0
	}
	n, err := api.DecodeRuntimeVersion(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt min runtime version: %v", err))
	}
	return n
}

// Validators returns the chain's record of the validator set.
func Validators(kv store.KV) api.ValidatorSet {
	v := kv.Get(api.KeyValidators)
	if v == nil {
		return nil
	}
	s, err := api.DecodeValidatorSet(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt validator set: %v", err))
	}
	return s
}

func sortValidators(vs api.ValidatorSet) {
	sort.Slice(vs, func(i, j int) bool { return bytes.Compare(vs[i].PubKey[:], vs[j].PubKey[:]) < 0 })
}

// Propose records a motion of a council member, counting the proposal as
// its aye. Errors: api.ErrNotCouncilMember, api.ErrInvalidAction (the
// action is malformed or does not apply to the current state).
func Propose(ctx *block.Context, signer crypto.PublicKey, p *api.GovPropose) error {
	c := Council(ctx.KV)
	if !c.IsMember(signer) {
		return fmt.Errorf("%w: %s may not propose", api.ErrNotCouncilMember, signer)
	}
	if err := p.Action.Validate(); err != nil {
		return err
	}
	if err := check(ctx.KV, &p.Action); err != nil {
		return err
	}
	id := uint64(0)
	if v := ctx.KV.Get(api.KeyNextMotion); len(v) == 8 {
		id = binary.BigEndian.Uint64(v)
	}
	ctx.KV.Set(api.KeyNextMotion, binary.BigEndian.AppendUint64(nil, id+1))
	if p.Action.Kind == api.ActionSetParams {
		// What the proposer changed is relative to these (see rebaseParams).
		ctx.KV.Set(paramsBaseKey(id), ctx.KV.Get(api.KeyParams))
	}
	m := &api.Motion{ID: id, Proposer: signer, Action: p.Action, ProposedAt: ctx.Height,
		ExpiresAt: ctx.Height + int64(ctx.Params.GovVotingPeriod), Ayes: []crypto.PublicKey{signer}, Status: api.MotionOpen}
	addToList(ctx.KV, dueKey(m.ExpiresAt-1), id)
	ctx.Event("gov_proposed", "motion", strconv.FormatUint(id, 10), "action", p.Action.Kind.String(), "proposer", signer.Address(),
		"expires_at", strconv.FormatInt(m.ExpiresAt, 10))
	tally(ctx, c, m)
	saveMotion(ctx.KV, m)
	return nil
}

// Vote records a council member's vote on an open motion. Errors:
// api.ErrNotCouncilMember, api.ErrUnknownMotion, api.ErrMotionClosed
// (approved, enacted, failed or expired), api.ErrAlreadyVoted.
func Vote(ctx *block.Context, signer crypto.PublicKey, v *api.GovVote) error {
	c := Council(ctx.KV)
	if !c.IsMember(signer) {
		return fmt.Errorf("%w: %s may not vote", api.ErrNotCouncilMember, signer)
	}
	m := Motion(ctx.KV, v.Motion)
	if m == nil {
		return fmt.Errorf("%w: no motion %d", api.ErrUnknownMotion, v.Motion)
	}
	if m.Status != api.MotionOpen || ctx.Height >= m.ExpiresAt {
		return fmt.Errorf("%w: motion %d %s", api.ErrMotionClosed, m.ID, closedPhrase(m))
	}
	if m.Voted(signer) {
		return fmt.Errorf("%w: %s already voted on motion %d", api.ErrAlreadyVoted, signer, m.ID)
	}
	if len(m.Ayes) >= api.MaxMotionVotes || len(m.Nays) >= api.MaxMotionVotes {
		return fmt.Errorf("%w: motion %d holds the most votes a motion may (%d each way)", api.ErrMotionClosed, m.ID, api.MaxMotionVotes)
	}
	if v.Aye {
		m.Ayes = append(m.Ayes, signer)
	} else {
		m.Nays = append(m.Nays, signer)
	}
	ctx.Event("gov_voted", "motion", strconv.FormatUint(m.ID, 10), "voter", signer.Address(), "aye", strconv.FormatBool(v.Aye))
	tally(ctx, c, m)
	saveMotion(ctx.KV, m)
	return nil
}

// closedPhrase says why a motion takes no votes, with the height that
// closed it: the height it was decided at (approved, enacted, failed,
// expired), else the end of its voting period.
func closedPhrase(m *api.Motion) string {
	switch m.Status {
	case api.MotionApproved:
		return fmt.Sprintf("was approved at height %d (enacted at the end of that block)", m.DecidedAt)
	case api.MotionEnacted:
		return fmt.Sprintf("was enacted at height %d", m.DecidedAt)
	case api.MotionFailed:
		return fmt.Sprintf("was approved but failed at enactment at height %d (%s)", m.DecidedAt, m.Reason)
	case api.MotionExpired:
		return fmt.Sprintf("expired at height %d (its voting period ended below the threshold)", m.DecidedAt)
	}
	return fmt.Sprintf("is %s: its voting ended at height %d", m.Status, m.ExpiresAt)
}

// tally approves m if the ayes of current members reach the threshold.
func tally(ctx *block.Context, c *api.Council, m *api.Motion) {
	ayes := 0
	for _, a := range m.Ayes {
		if c.IsMember(a) {
			ayes++
		}
	}
	if c.Threshold == 0 || ayes < int(c.Threshold) {
		return
	}
	m.Status, m.DecidedAt = api.MotionApproved, ctx.Height
	addToList(ctx.KV, enactKey(ctx.Height), m.ID)
	ctx.Event("gov_approved", "motion", strconv.FormatUint(m.ID, 10), "ayes", strconv.Itoa(ayes), "threshold", strconv.FormatUint(uint64(c.Threshold), 10))
}

// EndBlock enacts the motions approved in this block, in approval order,
// then expires the open motions whose voting period ends with this block.
func EndBlock(ctx *block.Context) error {
	before := Validators(ctx.KV)
	for _, id := range takeList(ctx.KV, enactKey(ctx.Height)) {
		m := Motion(ctx.KV, id)
		if m == nil || m.Status != api.MotionApproved {
			return fmt.Errorf("motion %d listed for enactment is not approved", id)
		}
		// The action runs on a cache: a failure leaves nothing behind.
		c := store.NewCache(ctx.KV)
		actx := *ctx
		actx.KV, actx.Messages, actx.Events = c, nil, nil
		a, err := rebaseParams(c, id, m.Action)
		if err == nil && a.Kind != api.ActionSetParams {
			// Rules added since the motion was proposed hold too (a
			// measurement of a size no pRuntime has); set_params was
			// checked whole at proposal and is rebased above.
			err = a.Validate()
		}
		if err == nil {
			err = check(c, &a)
		}
		if err == nil {
			err = enact(&actx, &a)
		}
		ctx.KV.Delete(paramsBaseKey(id))
		m.DecidedAt = ctx.Height
		if err != nil {
			m.Status, m.Reason = api.MotionFailed, truncate(err.Error(), api.MaxReasonBytes)
			ctx.Event("gov_failed", "motion", strconv.FormatUint(id, 10), "reason", m.Reason)
		} else {
			c.Write()
			ctx.Messages = append(ctx.Messages, actx.Messages...)
			ctx.Events = append(ctx.Events, actx.Events...)
			m.Status = api.MotionEnacted
			ctx.Event("gov_enacted", "motion", strconv.FormatUint(id, 10), "action", m.Action.Kind.String())
		}
		saveMotion(ctx.KV, m)
	}
	for _, id := range takeList(ctx.KV, dueKey(ctx.Height)) {
		m := Motion(ctx.KV, id)
		if m == nil || m.Status != api.MotionOpen {
			continue
		}
		m.Status, m.DecidedAt = api.MotionExpired, ctx.Height
		ctx.KV.Delete(paramsBaseKey(id))
		saveMotion(ctx.KV, m)
		ctx.Event("gov_expired", "motion", strconv.FormatUint(id, 10))
	}
	ctx.ValidatorUpdates = append(ctx.ValidatorUpdates, validatorDiff(before, Validators(ctx.KV))...)
	return nil
}

// validatorDiff is the change from set a to set b as CometBFT validator
// updates, one per key whose power changed (0: removed), in key order.
// Several motions on one key in a block thus give one update, from the
// set before the block to the set after it: CometBFT refuses a block's
// updates that name a key twice or remove a key it does not hold.
func validatorDiff(a, b api.ValidatorSet) []abci.ValidatorUpdate {
	power := func(s api.ValidatorSet) map[[api.ValidatorKeySize]byte]uint64 {
		m := make(map[[api.ValidatorKeySize]byte]uint64, len(s))
		for _, v := range s {
			m[v.PubKey] = v.Power
		}
		return m
	}
	pa, pb := power(a), power(b)
	var keys [][api.ValidatorKeySize]byte
	for k := range pa {
		keys = append(keys, k)
	}
	for k := range pb {
		if _, ok := pa[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i][:], keys[j][:]) < 0 })
	var out []abci.ValidatorUpdate
	for _, k := range keys {
		if pa[k] != pb[k] {
			out = append(out, abci.Ed25519ValidatorUpdate(k[:], int64(pb[k])))
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// check says whether an action applies to the current state.
func check(kv store.KV, a *api.Action) error {
	switch a.Kind {
	case api.ActionAllowMeasurement:
		if registry.Attestation(kv).MeasurementAllowed(a.Measurement) {
			return fmt.Errorf("%w: measurement %x is already allowed", api.ErrInvalidAction, []byte(a.Measurement))
		}
		if len(registry.Attestation(kv).Measurements) >= api.MaxMeasurements {
			return fmt.Errorf("%w: the allowlist holds %d measurements already", api.ErrInvalidAction, api.MaxMeasurements)
		}
	case api.ActionRevokeMeasurement:
		if !registry.Attestation(kv).MeasurementAllowed(a.Measurement) {
			return fmt.Errorf("%w: measurement %x is not on the allowlist", api.ErrInvalidAction, []byte(a.Measurement))
		}
		if m := migration.Running(kv); m != nil && !m.IsOld(a.Measurement) {
			return fmt.Errorf("%w: measurement %x is the target of the running migration", api.ErrInvalidAction, []byte(a.Measurement))
		}
	case api.ActionMigrateRuntime:
		return migration.Check(kv, a.Measurement)
	case api.ActionCancelMigration:
		return migration.CheckCancel(kv)
	case api.ActionSetValidator:
		_, err := applyValidator(Validators(kv), a.Validator)
		return err
	case api.ActionSetParams:
		// A change of era_length takes effect at the next era boundary
		// as a new segment of the era schedule (package eras), which is
		// bounded.
		cur, err := api.DecodeParams(kv.Get(api.KeyParams))
		if err != nil {
			return fmt.Errorf("current params: %w", err)
		}
		s := eras.Schedule(kv, cur)
		if a.Params.EraLength != s.Current().Length && s.Full() {
			return fmt.Errorf("%w: era_length cannot change any more: the era schedule holds %d segments, its maximum", api.ErrInvalidAction, api.MaxEraSegments)
		}
		// Until the next era boundary, challenges are drawn with the
		// running era's own length: heartbeats_per_era and
		// heartbeat_window must fit it too (Validate checks them against
		// the new era_length), or every node would be challenged at every
		// block for the rest of the era.
		if L := s.Current().Length; a.Params.HeartbeatsPerEra > 0 && (a.Params.HeartbeatsPerEra > L || a.Params.HeartbeatWindow > L) {
			return fmt.Errorf("%w: heartbeats_per_era %d and heartbeat_window %d must fit the running era's length, %d blocks, as well as the new era_length (an era_length change applies from the next era): raise era_length first, the others once the longer eras have begun",
				api.ErrInvalidAction, a.Params.HeartbeatsPerEra, a.Params.HeartbeatWindow, L)
		}
		// A running DKG's deadlines are counted from its phase's start
		// with DkgPhase (dkg_timeout, at most a third of era_length): a
		// change would move them under its members, and those it makes
		// late are slashed.
		if a.Params.DkgPhase() != cur.DkgPhase() && gatekeeper.Dkg(kv) != nil {
			return fmt.Errorf("%w: a gatekeeper DKG runs: a change of dkg_timeout or era_length that moves its phase length (%d to %d blocks) waits until it ends", api.ErrInvalidAction, cur.DkgPhase(), a.Params.DkgPhase())
		}
	}
	return nil
}

// applyValidator returns the set after the change, or why it is refused.
func applyValidator(vs api.ValidatorSet, v api.Validator) (api.ValidatorSet, error) {
	out := make(api.ValidatorSet, 0, len(vs)+1)
	found := false
	for _, x := range vs {
		if x.PubKey == v.PubKey {
			found = true
			if v.Power > 0 {
				out = append(out, v)
			}
			continue
		}
		out = append(out, x)
	}
	switch {
	case !found && v.Power == 0:
		return nil, fmt.Errorf("%w: validator %X is not in the set; nothing to remove", api.ErrInvalidAction, v.PubKey)
	case !found:
		out = append(out, v)
		sortValidators(out)
	}
	if len(out) > api.MaxValidators {
		return nil, fmt.Errorf("%w: more than %d validators", api.ErrInvalidAction, api.MaxValidators)
	}
	if out.TotalPower() == 0 {
		return nil, fmt.Errorf("%w: the change would leave no voting power", api.ErrInvalidAction)
	}
	return out, nil
}

// enact applies a checked action.
func enact(ctx *block.Context, a *api.Action) error {
	origin := api.ModuleOrigin(Name)
	switch a.Kind {
	case api.ActionAllowMeasurement, api.ActionRevokeMeasurement:
		list := registry.SetMeasurementAllowed(ctx.KV, a.Measurement, a.Kind == api.ActionAllowMeasurement)
		ctx.Event("gov_measurement", "measurement", hex.EncodeToString(a.Measurement), "allowed", strconv.FormatBool(a.Kind == api.ActionAllowMeasurement))
		return mq.Emit(ctx, origin, api.TopicGovAllowlist, api.EncodeMeasurements(list))
	case api.ActionMigrateRuntime:
		allowed := registry.Attestation(ctx.KV).MeasurementAllowed(a.Measurement)
		if err := migration.Start(ctx, a.Measurement); err != nil {
			return err
		}
		if !allowed {
			return mq.Emit(ctx, origin, api.TopicGovAllowlist, api.EncodeMeasurements(registry.Attestation(ctx.KV).Measurements))
		}
	case api.ActionCancelMigration:
		return migration.Cancel(ctx)
	case api.ActionSetMinRuntimeVersion:
		b := api.EncodeRuntimeVersion(a.Version)
		ctx.KV.Set(api.KeyMinRuntimeVersion, b)
		return mq.Emit(ctx, origin, api.TopicGovMinRuntimeVersion, b)
	case api.ActionSetParams:
		b := a.Params.Encode()
		ctx.KV.Set(api.KeyParams, b)
		// pRuntimes follow attestation_window (the block hashes they keep
		// to check the block a registration's report cites).
		return mq.Emit(ctx, origin, api.TopicGovParams, b)
	case api.ActionSetCouncil:
		ctx.KV.Set(api.KeyCouncil, a.Council.Encode())
	case api.ActionSetValidator:
		vs, err := applyValidator(Validators(ctx.KV), a.Validator)
		if err != nil {
			return err
		}
		// Returned to CometBFT by EndBlock, merged with the block's other
		// validator motions (validatorDiff).
		ctx.KV.Set(api.KeyValidators, vs.Encode())
		ctx.Event("gov_validator", "pub_key", fmt.Sprintf("%X", a.Validator.PubKey), "power", strconv.FormatUint(a.Validator.Power, 10))
	default:
		return fmt.Errorf("%w: unknown action kind %d", api.ErrInvalidAction, a.Kind)
	}
	return nil
}

func paramsBaseKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte("gov/params_base/"), id)
}

// rebaseParams turns a set_params motion into the change it stands for: a
// motion carries whole parameters, but enacts only the fields its proposer
// changed from the parameters in force when it was proposed; every other
// field keeps its value at enactment. So two motions on different fields,
// proposed side by side, do not undo each other whatever order they are
// enacted in (on one field, the later enacted wins). Other actions are
// returned as they are.
func rebaseParams(kv store.KV, id uint64, a api.Action) (api.Action, error) {
	if a.Kind != api.ActionSetParams {
		return a, nil
	}
	base, err := api.DecodeParams(kv.Get(paramsBaseKey(id)))
	if err != nil {
		return a, fmt.Errorf("parameters motion %d has no base: %w", id, err)
	}
	cur, err := api.DecodeParams(kv.Get(api.KeyParams))
	if err != nil {
		return a, err
	}
	b, p, c := reflect.ValueOf(base), reflect.ValueOf(a.Params), reflect.ValueOf(&cur).Elem()
	for i := range c.NumField() {
		if p.Field(i).Uint() != b.Field(i).Uint() {
			c.Field(i).SetUint(p.Field(i).Uint())
		}
	}
	a.Params = cur
	return a, nil
}

func dueKey(h int64) []byte   { return binary.BigEndian.AppendUint64([]byte("gov/due/"), uint64(h)) }
func enactKey(h int64) []byte { return binary.BigEndian.AppendUint64([]byte("gov/enact/"), uint64(h)) }

// addToList appends id to the list under key (uvarint ids).
func addToList(kv store.KV, key []byte, id uint64) {
	kv.Set(key, binary.AppendUvarint(append([]byte(nil), kv.Get(key)...), id))
}

// takeList returns the ids under key and deletes it.
func takeList(kv store.KV, key []byte) []uint64 {
	v := kv.Get(key)
	if v == nil {
		return nil
	}
	kv.Delete(key)
	var ids []uint64
	for len(v) > 0 {
		id, n := binary.Uvarint(v)
		if n <= 0 {
			panic(fmt.Sprintf("corrupt motion list %q", key))
		}
		ids = append(ids, id)
		v = v[n:]
	}
	return ids
}
