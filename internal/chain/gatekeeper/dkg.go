package gatekeeper

// The elected set's DKG (docs/keys.md, "Rotation per era"): at every
// election the chain runs a fresh Pedersen DKG among the elected members
// through the queue, and adopts the key set it makes; the set serves from
// there (KeyRotationReady). Phases, each at most Params.DkgPhase blocks:
// collecting the members' DKG keys; dealing (deals, responses,
// justifications, results), then one more window after the timeout is
// announced. An attempt that ends without T identical results fails: the
// members that posted no key, no deals or no result are slashed
// offline_slash_ppm and the rest retry (attempt+1) while they are at least
// two thirds of the elected set; otherwise the set fails and the serving
// one stays until the next election.

import (
	"crypto/sha256"
	"fmt"
	"math/bits"
	"slices"
	"strconv"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/mq"
	"github.com/phalago/phala/internal/chain/store"
	"github.com/phalago/phala/internal/enclave/threshold"
)

// Dkg returns the running DKG, nil if none.
func Dkg(kv store.KV) *api.DkgState {
	v := kv.Get(api.KeyDkg)
	if v == nil {
		return nil
	}
	st, err := api.DecodeDkgState(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt DKG state: %v", err))
	}
	return st
}

// DkgThreshold is the threshold of a key set of n participants:
// ⌊2n/3⌋+1 (docs/keys.md).
func DkgThreshold(n int) uint32 { return uint32(2*n/3 + 1) }

// announceDkg saves st and announces its phase (api.TopicDkgRound).
func announceDkg(ctx *block.Context, st *api.DkgState) {
	ctx.KV.Set(api.KeyDkg, st.Encode())
	if err := mq.Emit(ctx, api.ModuleOrigin(Name), api.TopicDkgRound, st.Encode()); err != nil {
		panic(fmt.Sprintf("announce the DKG of era %d: %v", st.Era, err)) // a module message of bounded size
	}
}

// beginDkg starts attempt of the DKG of era among members: they post
// their DKG keys.
func beginDkg(ctx *block.Context, era, attempt uint64, members []crypto.PublicKey) {
	st := &api.DkgState{Era: era, Attempt: attempt, Phase: api.DkgCollectingKeys, PhaseStart: ctx.Height, Members: members, Keys: make([][32]byte, len(members))}
	ctx.Event("dkg_begun", "era", strconv.FormatUint(era, 10), "attempt", strconv.FormatUint(attempt, 10), "members", strconv.Itoa(len(members)))
	announceDkg(ctx, st)
}

// startDealing moves st to dealing among the members that posted a key.
func startDealing(ctx *block.Context, src VoterSource, st *api.DkgState) {
	st.Participants = nil
	for i, m := range st.Members {
		if st.Keys[i] != ([32]byte{}) {
			st.Participants = append(st.Participants, m)
		}
	}
	if elected := len(Election(ctx.KV, st.Era).Members); len(st.Participants) == 0 || 3*len(st.Participants) < 2*elected {
		failDkg(ctx, src, st, fmt.Sprintf("%d of %d elected members posted a DKG key, fewer than two thirds", len(st.Participants), elected))
		return
	}
	st.T = DkgThreshold(len(st.Participants))
	st.Phase, st.PhaseStart = api.DkgDealing, ctx.Height
	st.Dealt = make([]bool, len(st.Participants))
	st.Results = make([][32]byte, len(st.Participants))
	ctx.Event("dkg_dealing", "era", strconv.FormatUint(st.Era, 10), "attempt", strconv.FormatUint(st.Attempt, 10),
		"participants", strconv.Itoa(len(st.Participants)), "threshold", strconv.FormatUint(uint64(st.T), 10))
	announceDkg(ctx, st)
}

// stepDkg advances the running DKG's deadlines (every block).
func stepDkg(ctx *block.Context, src VoterSource) {
	st := Dkg(ctx.KV)
	if st == nil || ctx.Height-st.PhaseStart < ctx.Params.DkgPhase() {
		return
	}
	switch st.Phase {
	case api.DkgCollectingKeys:
		startDealing(ctx, src, st)
	case api.DkgDealing:
		st.Phase, st.PhaseStart = api.DkgTimedOut, ctx.Height
		ctx.KV.Set(api.KeyDkg, st.Encode())
		ctx.Event("dkg_timeout", "era", strconv.FormatUint(st.Era, 10), "attempt", strconv.FormatUint(st.Attempt, 10))
		if err := mq.Emit(ctx, api.ModuleOrigin(Name), api.TopicDkgTimeout, (&api.DkgMessage{Era: st.Era, Attempt: st.Attempt}).Encode()); err != nil {
			panic(fmt.Sprintf("announce the DKG timeout: %v", err))
		}
	case api.DkgTimedOut:
		failDkg(ctx, src, st, "no key set adopted before the deadline")
	}
}

// failDkg ends attempt st: the late members (no key, no deals, no result)
// are slashed; the others retry if they are at least two thirds of the
// elected set, else the set fails (the serving set stays).
func failDkg(ctx *block.Context, src VoterSource, st *api.DkgState, why string) {
	late, ok := blame(st)
	for _, m := range late {
		slashMember(ctx, src, st.Era, m, "late in the gatekeeper DKG")
	}
	rec := Election(ctx.KV, st.Era)
	ctx.Event("dkg_failed", "era", strconv.FormatUint(st.Era, 10), "attempt", strconv.FormatUint(st.Attempt, 10), "reason", why,
		"responsive", strconv.Itoa(len(ok)), "elected", strconv.Itoa(len(rec.Members)))
	if len(ok) > 0 && 3*len(ok) >= 2*len(rec.Members) && len(ok) < len(st.Members) {
		beginDkg(ctx, st.Era, st.Attempt+1, ok)
		return
	}
	st.Phase, st.PhaseStart = api.DkgFailed, ctx.Height
	announceDkg(ctx, st)
	ctx.KV.Delete(api.KeyDkg)
	ctx.KV.Delete(keyPending)
	rec.Status, rec.StatusHeight = api.ElectionExpired, ctx.Height
	ctx.KV.Set(api.GatekeeperEraKey(st.Era), rec.Encode())
	ctx.Event("gatekeeper_set_expired", "era", strconv.FormatUint(st.Era, 10), "reason", "DKG failed")
}

// blame splits st's members into the late ones (no key; once dealing:
// no deals, or no result although at least T participants dealt, so an
// honest one could certify) and the others.
func blame(st *api.DkgState) (late, ok []crypto.PublicKey) {
	dealt := 0
	for _, d := range st.Dealt {
		if d {
			dealt++
		}
	}
	for i, m := range st.Members {
		l := st.Keys[i] == ([32]byte{})
		if j := slices.Index(st.Participants, m); j >= 0 && st.Phase != api.DkgCollectingKeys {
			solo := len(st.Participants) == 1 // deals with nobody
			l = l || (!st.Dealt[j] && !solo) || ((dealt >= int(st.T) || solo) && st.Results[j] == ([32]byte{}))
		}
		if l {
			late = append(late, m)
		} else {
			ok = append(ok, m)
		}
	}
	return late, ok
}

// slashMember slashes member m of era's set offline_slash_ppm of its
// stake, and its nominators' exposure to it by the same fraction.
func slashMember(ctx *block.Context, src VoterSource, era uint64, m crypto.PublicKey, reason string) {
	ppm := min(ctx.Params.OfflineSlashPPM, 1_000_000)
	if ppm == 0 {
		return
	}
	src.Slash(ctx, m, ppm, reason)
	if x := ExposureOf(ctx.KV, era, m); x != nil {
		for _, o := range x.Others {
			hi, lo := bits.Mul64(o.Amount, ppm)
			amount, _ := bits.Div64(hi, lo, 1_000_000)
			src.SlashExposure(ctx, o.Who, amount, reason)
		}
	}
}

// dkgMessage decodes a member's DKG message of topic and checks it
// belongs to the running DKG in one of phases, from a member (a
// participant once dealing); ignored (dkg_message_ignored event) if not.
func dkgMessage(ctx *block.Context, node crypto.PublicKey, topic string, payload []byte, phases ...uint8) (*api.DkgState, *api.DkgMessage, int) {
	ignore := func(why string) {
		ctx.Event("dkg_message_ignored", "node", node.Hex(), "topic", topic, "reason", why)
	}
	m, err := api.DecodeDkgMessage(payload)
	if err != nil {
		ignore(err.Error())
		return nil, nil, -1
	}
	st := Dkg(ctx.KV)
	switch {
	case st == nil || st.Era != m.Era || st.Attempt != m.Attempt:
		ignore(fmt.Sprintf("no DKG of era %d attempt %d runs", m.Era, m.Attempt))
		return nil, nil, -1
	case !slices.Contains(phases, st.Phase):
		ignore("not in this phase of the DKG")
		return nil, nil, -1
	}
	set := st.Participants
	if st.Phase == api.DkgCollectingKeys {
		set = st.Members
	}
	i := slices.Index(set, node)
	if i < 0 {
		ignore("not a participant of the DKG")
		return nil, nil, -1
	}
	return st, m, i
}

// OnDkgKey records a member's DKG key, once: the body is the key (a
// canonical edwards25519 point of prime order) then its proof of
// possession (threshold.VerifyDKGKeyProof: a Schnorr signature with the
// key's secret over the attempt's era, attempt and the member's identity
// key), and the key is no other member's of the attempt (kyber would
// refuse the member list, and nobody could deal). The last key starts
// the dealing.
func OnDkgKey(ctx *block.Context, src VoterSource, node crypto.PublicKey, payload []byte) {
	st, m, i := dkgMessage(ctx, node, api.TopicDkgKey, payload, api.DkgCollectingKeys)
	if st == nil {
		return
	}
	ignore := func(why string) {
		ctx.Event("dkg_message_ignored", "node", node.Hex(), "topic", api.TopicDkgKey, "reason", why)
	}
	if len(m.Body) != threshold.DKGKeyBodySize {
		ignore("not a DKG key and its proof")
		return
	}
	key := [32]byte(m.Body[:32])
	switch {
	case !validPoint(key) || key == ([32]byte{}):
		ignore("not a DKG key")
	case st.Keys[i] != ([32]byte{}):
		ignore("key already posted")
	case slices.Contains(st.Keys, key):
		ignore("another member's DKG key")
	case threshold.VerifyDKGKeyProof(key[:], m.Body[32:], st.Era, st.Attempt, node[:]) != nil:
		ignore("the DKG key's proof of possession does not verify")
	default:
		st.Keys[i] = key
		if slices.Contains(st.Keys, [32]byte{}) {
			ctx.KV.Set(api.KeyDkg, st.Encode())
			return
		}
		startDealing(ctx, src, st)
	}
}

// OnDkgDeals records that a participant dealt (once, within
// Params.DkgDealWindow of the dealing phase's start; members apply the
// same window); its deals reach the members through the queue.
func OnDkgDeals(ctx *block.Context, node crypto.PublicKey, payload []byte) {
	st, _, i := dkgMessage(ctx, node, api.TopicDkgDeals, payload, api.DkgDealing)
	if st == nil {
		return
	}
	switch {
	case st.Dealt[i]:
		ctx.Event("dkg_message_ignored", "node", node.Hex(), "topic", api.TopicDkgDeals, "reason", "already dealt")
		return
	case ctx.Height-st.PhaseStart > ctx.Params.DkgDealWindow():
		ctx.Event("dkg_message_ignored", "node", node.Hex(), "topic", api.TopicDkgDeals, "reason", "too late to deal")
		return
	}
	st.Dealt[i] = true
	ctx.KV.Set(api.KeyDkg, st.Encode())
}

// OnDkgForward checks a participant's response or justification belongs
// to the dealing phases; the members process it from the queue.
func OnDkgForward(ctx *block.Context, node crypto.PublicKey, topic string, payload []byte) {
	dkgMessage(ctx, node, topic, payload, api.DkgDealing, api.DkgTimedOut)
}

// OnDkgResult records a participant's result (once): QUAL and the public
// polynomial's T commitments, each a prime-order point other than the
// identity. When T participants posted the same one,
// the key set is adopted and the set serves (adoptDkg).
func OnDkgResult(ctx *block.Context, src VoterSource, node crypto.PublicKey, payload []byte) {
	st, m, i := dkgMessage(ctx, node, api.TopicDkgResult, payload, api.DkgDealing, api.DkgTimedOut)
	if st == nil {
		return
	}
	ignore := func(why string) {
		ctx.Event("dkg_message_ignored", "node", node.Hex(), "topic", api.TopicDkgResult, "reason", why)
	}
	qual, commits, err := threshold.DecodeResult(m.Body)
	switch {
	case err != nil:
		ignore(err.Error())
		return
	case len(commits) != int(st.T) || len(qual) < int(st.T) || qual[len(qual)-1] >= len(st.Participants):
		ignore(fmt.Sprintf("a result of %d commitments and %d qualified dealers, want %d and at least %d of %d", len(commits), len(qual), st.T, st.T, len(st.Participants)))
		return
	case st.Results[i] != ([32]byte{}):
		ignore("result already posted")
		return
	}
	for k, c := range commits {
		// As key sets require (adoptKeySet): prime order, not the identity.
		if b, err := c.MarshalBinary(); err != nil || !validPoint([32]byte(b)) {
			ignore(fmt.Sprintf("commitment %d is not a prime-order point", k))
			return
		}
	}
	d := sha256.Sum256(m.Body)
	st.Results[i] = d
	n := 0
	for _, r := range st.Results {
		if r == d {
			n++
		}
	}
	if n < int(st.T) {
		ctx.KV.Set(api.KeyDkg, st.Encode())
		return
	}
	set := &api.KeySet{Era: st.Era, T: st.T, Members: st.Participants}
	for _, c := range commits {
		b, _ := c.MarshalBinary()
		set.Commits = append(set.Commits, [32]byte(b))
	}
	adoptDkg(ctx, src, st, set, d)
}

// adoptDkg makes the DKG's key set the serving one and its participants
// the gatekeeper list; the participants whose result is the adopted one
// are the set's confirmed members. The attempt's members that posted no
// key or no deals were elected and absent: they are slashed
// offline_slash_ppm (a result merely later than the T-th is not late).
func adoptDkg(ctx *block.Context, src VoterSource, st *api.DkgState, set *api.KeySet, digest [32]byte) {
	for i, m := range st.Members {
		j := slices.Index(st.Participants, m)
		if st.Keys[i] == ([32]byte{}) || (j >= 0 && !st.Dealt[j] && len(st.Participants) > 1) {
			slashMember(ctx, src, st.Era, m, "absent from the gatekeeper DKG")
		}
	}
	rec := Election(ctx.KV, st.Era)
	rec.Confirmed = nil
	for j, p := range st.Participants {
		if st.Results[j] == digest {
			rec.Confirmed = append(rec.Confirmed, p)
		}
	}
	ctx.KV.Delete(api.KeyDkg)
	adoptKeySet(ctx, set)
	if err := activate(ctx, rec, st.Participants); err != nil {
		panic(fmt.Sprintf("activate the set of era %d: %v", st.Era, err))
	}
}
