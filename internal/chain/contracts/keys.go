package contracts

// Contract key provisioning by rounds of partials (docs/keys.md, "Contract
// key derivation"): each member of a key set sends its partial evaluations
// sealed to the workers it picked (api.KeyPartials); the chain counts the
// members of each round ("kr/") and, once T of the era's key set sent
// theirs, accepts the round as a grant (api.ContractKeyGrant) built here:
// replicas and arbiters at once (the contract's keys are on its record),
// a first deployment on the report of one of the round's workers of the
// keys it derived (api.ContractKeyed).

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/gatekeeper"
	"github.com/phalago/phala/internal/chain/registry"
	"github.com/phalago/phala/internal/chain/store"
)

// KeyRoundLifetime is how long (blocks) an incomplete round, or a
// completed first-deployment round no worker reported on, is kept.
const KeyRoundLifetime = 100

func loadRound(kv store.KV, round [32]byte) *api.KeyRound {
	v := kv.Get(api.KeyRoundKey(round))
	if v == nil {
		return nil
	}
	r, err := api.DecodeKeyRound(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt key round: %v", err))
	}
	return r
}

// deployedUpload returns the record of the contract deployed from upload,
// nil before its deployment.
func deployedUpload(kv store.KV, upload [32]byte) *api.ContractRecord {
	if v := kv.Get(api.ContractUploadKey(upload)); v != nil {
		return Record(kv, crypto.PublicKey(v))
	}
	return nil
}

// OnPartials counts a key-set member's partials (api.TopicKeyPartials,
// origin worker member). They count if member is in the key set of the
// partials' era, that era is not retired (gatekeeper.Retired), member is
// attested, sealing with its registered ECDH key, and the round is the
// one due: for a contract's workers, the serving key era and epoch 0
// before the deployment, the record's key era and epoch after it (not
// while the contract migrates); for arbiters, an open dispute of the
// contract at that height with no arbiters yet (not while it migrates);
// for a key epoch (KeyForEpoch), the contract's pending rekey (epochs.go,
// dueEpochRound). The T-th member completes the round: replicas and
// arbiters are accepted at once (OnGrant, assignArbiters); a first
// deployment and a key epoch wait for a worker's ContractKeyed. Anything
// else is an event (key_partials_ignored) and changes nothing.
func OnPartials(ctx *block.Context, member crypto.PublicKey, payload []byte) {
	p, err := api.DecodeKeyPartials(payload)
	if err != nil {
		ctx.Event("key_partials_ignored", "member", member.Hex(), "reason", err.Error())
		return
	}
	ignore := func(why string) {
		ctx.Event("key_partials_ignored", "member", member.Hex(), "upload_id", hex.EncodeToString(p.Upload[:]), "era", strconv.FormatUint(p.Era, 10), "reason", why)
	}
	set := gatekeeper.KeySetOf(ctx.KV, p.Era)
	if set == nil || set.Index(member) < 0 {
		ignore(fmt.Sprintf("not a member of the key set of era %d", p.Era))
		return
	}
	if gatekeeper.Retired(ctx.KV, p.Era) {
		ignore(fmt.Sprintf("key era %d is retired", p.Era))
		return
	}
	wr, err := registry.Attested(ctx.KV, member, ctx.Height)
	if err != nil {
		ignore("member not attested")
		return
	}
	if wr.Info.EcdhKey != p.MemberE {
		ignore("sealed with another ECDH key than the member's registered one")
		return
	}
	if why := dueRound(ctx, p); why != "" {
		ignore(why)
		return
	}
	round := p.Round()
	kr := loadRound(ctx.KV, round)
	if kr == nil {
		kr = &api.KeyRound{Upload: p.Upload, Era: p.Era, Epoch: p.Epoch, Purpose: p.Purpose, Contract: p.Contract, Disputed: p.Disputed, Workers: p.WorkerKeys(), Height: ctx.Height}
	}
	switch {
	case slices.Contains(kr.Members, member):
		ignore("this member already sent its partials for the round")
		return
	case len(kr.Members) >= int(set.T):
		ignore("the round is complete")
		return
	}
	kr.Members = append(kr.Members, member)
	ctx.KV.Set(api.KeyRoundKey(round), kr.Encode())
	if len(kr.Members) < int(set.T) {
		return
	}
	ctx.Event("key_round_complete", "upload_id", hex.EncodeToString(p.Upload[:]), "round", hex.EncodeToString(round[:8]), "era", strconv.FormatUint(p.Era, 10), "members", strconv.Itoa(len(kr.Members)))
	if p.Purpose == api.KeyForEpoch {
		return // the new ECDH key comes with a worker's report (OnKeyed)
	}
	g := &api.ContractKeyGrant{Upload: p.Upload, Era: p.Era, Epoch: p.Epoch, Round: round, Workers: kr.Workers}
	if p.Purpose == api.KeyForArbiters {
		rec := Record(ctx.KV, p.Contract)
		g.Identity, g.Ecdh = rec.Identity, rec.Ecdh
		ctx.KV.Delete(api.KeyRoundKey(round))
		assignArbiters(ctx, p.Contract, p.Disputed, g)
		return
	}
	if rec := deployedUpload(ctx.KV, p.Upload); rec != nil {
		g.Identity, g.Ecdh = rec.Identity, rec.Ecdh
		ctx.KV.Delete(api.KeyRoundKey(round))
		OnGrant(ctx, g)
	}
}

// dueRound says why p is not a round the chain expects now ("" if it is).
func dueRound(ctx *block.Context, p *api.KeyPartials) string {
	if loadPending(ctx.KV, p.Upload) == nil {
		return "unknown upload"
	}
	if p.Purpose == api.KeyForEpoch {
		return dueEpochRound(ctx, p)
	}
	if p.Purpose == api.KeyForArbiters {
		rec := Record(ctx.KV, p.Contract)
		a := loadArbitration(ctx.KV, p.Contract)
		switch {
		case rec == nil || rec.Upload != p.Upload:
			return "not the disputed contract's upload"
		case a == nil || a.Height != p.Disputed:
			return "no dispute of that update is open"
		case len(a.Arbiters) > 0:
			return "the dispute's arbiters are already assigned"
		case rec.Migrating:
			return "migrating: arbiters wait for the end of the contract's key epoch migration"
		case p.Era != rec.KeyEra || p.Epoch != rec.KeyEpoch:
			return fmt.Sprintf("the contract's key is of era %d epoch %d", rec.KeyEra, rec.KeyEpoch)
		}
		return ""
	}
	if rec := deployedUpload(ctx.KV, p.Upload); rec != nil {
		if rec.Migrating {
			return "migrating: replacements wait for the end of the contract's key epoch migration"
		}
		if p.Era != rec.KeyEra || p.Epoch != rec.KeyEpoch {
			return fmt.Sprintf("the contract's key is of era %d epoch %d", rec.KeyEra, rec.KeyEpoch)
		}
		return ""
	}
	if era, ok := gatekeeper.ServingKeyEra(ctx.KV); !ok || p.Era != era || p.Epoch != 0 {
		return fmt.Sprintf("a new contract's key is of the serving key era (%d), epoch 0", era)
	}
	return ""
}

// OnKeyed takes a worker's report of the keys it derived from a completed
// round (api.TopicContractKeyed, origin worker). For a KeyForEpoch round,
// onEpochKeyed (epochs.go). For a first-deployment round, the first
// reports of a majority of the round's workers naming the same keys
// deploy the contract with the round's workers (OnGrant): one broken
// enclave among them cannot fix the contract's keys to keys of its own
// (each worker's report counts once; the others are events
// contract_keyed_reported). A report of keys that differ from the
// deployed contract's, from one of its workers, is an event
// (contract_key_mismatch): that worker's enclave derived other keys than
// the one whose report was taken. Any other report is ignored
// (contract_keyed_ignored).
func OnKeyed(ctx *block.Context, worker crypto.PublicKey, payload []byte) {
	k, err := api.DecodeContractKeyed(payload)
	if err != nil {
		ctx.Event("contract_keyed_ignored", "worker", worker.Hex(), "reason", err.Error())
		return
	}
	if kr := loadRound(ctx.KV, k.Round); kr != nil && kr.Purpose == api.KeyForEpoch && kr.Upload == k.Upload {
		onEpochKeyed(ctx, worker, k, kr)
		return
	}
	if rec := deployedUpload(ctx.KV, k.Upload); rec != nil {
		switch {
		case !slices.Contains(rec.Workers, worker):
			ctx.Event("contract_keyed_ignored", "worker", worker.Hex(), "upload_id", hex.EncodeToString(k.Upload[:]), "reason", "not a worker of the deployed contract")
		case rec.Identity != k.Identity || rec.Ecdh != k.Ecdh:
			ctx.Event("contract_key_mismatch", "contract", rec.Identity.Hex(), "worker", worker.Hex())
		}
		return
	}
	ignore := func(why string) {
		ctx.Event("contract_keyed_ignored", "worker", worker.Hex(), "upload_id", hex.EncodeToString(k.Upload[:]), "reason", why)
	}
	kr := loadRound(ctx.KV, k.Round)
	switch {
	case kr == nil || kr.Upload != k.Upload || kr.Purpose != api.KeyForWorkers:
		ignore("no such round")
		return
	case !slices.Contains(kr.Workers, worker):
		ignore("not a worker of the round")
		return
	case !k.Identity.Valid() || !k.Ecdh.Valid():
		ignore("not public keys")
		return
	}
	if set := gatekeeper.KeySetOf(ctx.KV, kr.Era); len(kr.Members) < int(set.T) {
		ignore("the round is not complete")
		return
	}
	rk := reportKey(k.Round, worker)
	if ctx.KV.Get(rk) != nil {
		ignore("the worker reported this round's keys already")
		return
	}
	keys := append(bytes.Clone(k.Identity[:]), k.Ecdh[:]...)
	ctx.KV.Set(rk, keys)
	same, need := 0, len(kr.Workers)/2+1
	store.Iterate(ctx.KV, reportPrefix(k.Round), func(_, v []byte) bool {
		if bytes.Equal(v, keys) {
			same++
		}
		return true
	})
	if same < need {
		ctx.Event("contract_keyed_reported", "upload_id", hex.EncodeToString(k.Upload[:]), "worker", worker.Hex(), "identical", strconv.Itoa(same), "needed", strconv.Itoa(need))
		return
	}
	dropRound(ctx.KV, k.Round)
	OnGrant(ctx, &api.ContractKeyGrant{Upload: k.Upload, Identity: k.Identity, Ecdh: k.Ecdh, Era: kr.Era, Epoch: kr.Epoch, Round: k.Round, Workers: kr.Workers})
}

// reportPrefix is the state key prefix of a first-deployment round's
// reports ("cq/" ‖ round); reportKey one worker's (‖ worker; value: the
// identity ‖ ECDH public keys it derived).
func reportPrefix(round [32]byte) []byte { return append([]byte("cq/"), round[:]...) }

func reportKey(round [32]byte, worker crypto.PublicKey) []byte {
	return append(reportPrefix(round), worker[:]...)
}

// dropRound deletes a round and its workers' reports.
func dropRound(kv store.KV, round [32]byte) {
	kv.Delete(api.KeyRoundKey(round))
	var ks [][]byte
	store.Iterate(kv, reportPrefix(round), func(k, _ []byte) bool {
		ks = append(ks, bytes.Clone(k))
		return true
	})
	for _, k := range ks {
		kv.Delete(k)
	}
}

// pruneRounds deletes the rounds older than KeyRoundLifetime (every
// ReplicaCheckInterval blocks).
func pruneRounds(ctx *block.Context) {
	if ctx.Height%ReplicaCheckInterval != 0 {
		return
	}
	var old [][]byte
	store.Iterate(ctx.KV, []byte("kr/"), func(key, v []byte) bool {
		kr, err := api.DecodeKeyRound(v)
		if err != nil {
			panic(fmt.Sprintf("corrupt key round: %v", err))
		}
		if ctx.Height-kr.Height > KeyRoundLifetime {
			old = append(old, slices.Clone(key))
		}
		return true
	})
	for _, k := range old {
		dropRound(ctx.KV, [32]byte(k[len("kr/"):]))
	}
}
