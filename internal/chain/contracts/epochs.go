package contracts

// Contract key epochs on chain (docs/keys.md, "The epoch protocol,
// decided"): every ReplicaCheckInterval blocks the module asks the serving
// key set for the next key epoch of each running contract whose key era
// is not the serving one or whose epoch is older than contract_key_epoch
// blocks (api.Rekey, "ce/<contract>" remembers the call); the members'
// KeyForEpoch partials are counted in a round like the others (keys.go);
// the first of the contract's workers to combine them reports the new
// ECDH key, and the record moves to the new epoch, migrating
// (api.TopicRekeyed). The accepted state update with no entry left under
// the old epoch ends the migration. Key eras no contract needs any more,
// or whose deadline passed, are retired by the gatekeeper module
// (gatekeeper.RetireEras), called from here with the eras the records
// name.

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/gatekeeper"
	"github.com/phalago/phala/internal/chain/migration"
	"github.com/phalago/phala/internal/chain/mq"
	"github.com/phalago/phala/internal/chain/store"
)

// rekeyKey is the state key of contract's pending rekey ("ce/" ‖
// contract): the call for its next key epoch the chain made and waits
// for.
func rekeyKey(contract crypto.PublicKey) []byte { return append([]byte("ce/"), contract[:]...) }

// pendingRekey is a rekey the chain asked for (api.Rekey) and the block
// that asked. Encoded uvarint era ‖ uvarint epoch ‖ varint height.
type pendingRekey struct {
	Era, Epoch uint64
	Height     int64
}

func (p *pendingRekey) encode() []byte {
	w := codec.NewWriter(24)
	w.Uvarint(p.Era)
	w.Uvarint(p.Epoch)
	w.Varint(p.Height)
	return w.Bytes()
}

func decodePendingRekey(b []byte) (*pendingRekey, error) {
	p := &pendingRekey{}
	r := codec.NewReader(b)
	p.Era = r.Uvarint()
	p.Epoch = r.Uvarint()
	p.Height = r.Varint()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: pending rekey: %v", api.ErrMalformed, err)
	}
	return p, nil
}

// loadRekey returns contract's pending rekey, nil if none.
func loadRekey(kv store.KV, contract crypto.PublicKey) *pendingRekey {
	v := kv.Get(rekeyKey(contract))
	if v == nil {
		return nil
	}
	p, err := decodePendingRekey(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt pending rekey of %s: %v", contract.Hex(), err))
	}
	return p
}

// rekeyDue says whether rec (not failed) needs its next key epoch under
// the serving key era at height: it has workers, is not migrating, has no
// open dispute, and its key era is not the serving one, or a runtime
// migration completed after its epoch began, or its epoch is at least
// contractKeyEpoch blocks old (0: never by age).
func rekeyDue(kv store.KV, rec *api.ContractRecord, serving uint64, height int64, contractKeyEpoch uint64) bool {
	switch {
	case rec.Status == api.ContractFailed, len(rec.Workers) == 0, rec.Migrating:
		return false
	case loadArbitration(kv, rec.Identity) != nil:
		// Its arbiters replay under the record's epoch; the rekey waits
		// for the dispute's end.
		return false
	case rec.KeyEra != serving:
		return true
	case migratedSince(kv, rec.EpochHeight):
		// A runtime migration completed after its epoch began: the
		// retired build held its keys.
		return true
	}
	return contractKeyEpoch > 0 && height >= rec.EpochHeight && uint64(height-rec.EpochHeight) >= contractKeyEpoch
}

// rekey asks the serving key set for contract rec's next key epoch
// (api.TopicRekey, origin module contracts, event contract_rekey) and
// remembers the call (rekeyKey).
func rekey(ctx *block.Context, rec *api.ContractRecord, serving uint64) {
	pr := &pendingRekey{Era: serving, Epoch: rec.KeyEpoch + 1, Height: ctx.Height}
	ctx.KV.Set(rekeyKey(rec.Identity), pr.encode())
	rk := &api.Rekey{Contract: rec.Identity, Upload: rec.Upload, Era: pr.Era, Epoch: pr.Epoch}
	ctx.Event("contract_rekey", "contract", rec.Identity.Hex(), "key_era", strconv.FormatUint(pr.Era, 10), "key_epoch", strconv.FormatUint(pr.Epoch, 10))
	if err := mq.Emit(ctx, api.ModuleOrigin(Module), api.TopicRekey, rk.Encode()); err != nil {
		panic(fmt.Sprintf("ask the next key epoch of %s: %v", rec.Identity.Hex(), err)) // a module message of bounded size
	}
}

// checkEpochs (every ReplicaCheckInterval blocks, after the replica
// check) asks for the next key epoch of every contract that is due
// (rekeyDue) and has no live pending rekey under the serving era: a
// pending rekey older than KeyRoundLifetime blocks, or of an era no
// longer serving, is forgotten and asked again if still due. ids are the
// contracts in record order. Then it has the gatekeeper module retire
// the key eras no record of a contract that has not failed names
// (gatekeeper.RetireEras); the contracts
// still under an era retired at its deadline are stranded (event
// contract_stranded: no worker can be provisioned for them any more).
func checkEpochs(ctx *block.Context, ids []crypto.PublicKey) {
	serving, ok := gatekeeper.ServingKeyEra(ctx.KV)
	if !ok {
		return
	}
	users := map[uint64][]crypto.PublicKey{}
	for _, id := range ids {
		rec := Record(ctx.KV, id)
		if ctx.KV.Get(orphanKey(id)) != nil {
			switch {
			case rec.KeyEra == serving && !rec.Migrating && len(rec.Workers) > 0:
				ctx.KV.Delete(orphanKey(id)) // re-provisioned and moved on
			case rec.Status == api.ContractFailed || gatekeeper.Retired(ctx.KV, rec.KeyEra):
				ctx.KV.Delete(orphanKey(id)) // nothing left to hold
			}
		}
		if pr := loadRekey(ctx.KV, id); pr != nil && (ctx.Height-pr.Height > KeyRoundLifetime || pr.Era != serving || rec.Migrating || rec.Status == api.ContractFailed) {
			ctx.KV.Delete(rekeyKey(id))
		}
		if loadRekey(ctx.KV, id) == nil && rekeyDue(ctx.KV, rec, serving, ctx.Height, ctx.Params.ContractKeyEpoch) {
			rekey(ctx, rec, serving)
		}
		if rec.Status == api.ContractFailed {
			continue // it runs nowhere: it needs no key era
		}
		users[rec.KeyEra] = append(users[rec.KeyEra], id)
		if rec.Migrating && rec.PrevKeyEra != rec.KeyEra {
			users[rec.PrevKeyEra] = append(users[rec.PrevKeyEra], id)
		}
	}
	inUse := func(era uint64) bool { return len(users[era]) > 0 }
	hold := func(era uint64) bool {
		for _, id := range users[era] {
			if ctx.KV.Get(orphanKey(id)) == nil {
				continue
			}
			// It lost every worker: the deadline waits while it can be
			// re-provisioned under era, and once it was, for its rekey.
			if rec := Record(ctx.KV, id); len(rec.Workers) > 0 || replaceable(ctx, rec, era) {
				return true
			}
		}
		return false
	}
	for _, r := range gatekeeper.RetireEras(ctx, inUse, hold) {
		if !r.Deadline {
			continue
		}
		for _, id := range users[r.Era] {
			ctx.Event("contract_stranded", "contract", id.Hex(), "key_era", strconv.FormatUint(r.Era, 10))
		}
	}
}

// dueEpochRound says why KeyForEpoch partials p are not the round the
// chain expects now ("" if they are): p.Contract must be deployed from
// p.Upload, not failed, not migrating, with a pending rekey of p's era
// and epoch (the record's epoch + 1), and p's workers exactly the
// record's, in order.
func dueEpochRound(ctx *block.Context, p *api.KeyPartials) string {
	rec := Record(ctx.KV, p.Contract)
	pr := loadRekey(ctx.KV, p.Contract)
	switch {
	case rec == nil || rec.Upload != p.Upload:
		return "not a deployed contract of that upload"
	case rec.Status == api.ContractFailed:
		return "the contract failed to start"
	case rec.Migrating:
		return "migrating: the contract's previous key epoch is still being re-encrypted"
	case pr == nil:
		return "no key epoch of the contract is asked for"
	case p.Era != pr.Era || p.Epoch != pr.Epoch || p.Epoch != rec.KeyEpoch+1:
		return fmt.Sprintf("the contract's next key epoch is era %d epoch %d", pr.Era, pr.Epoch)
	case !slices.Equal(p.WorkerKeys(), rec.Workers):
		return fmt.Sprintf("the workers are not the contract's current %d, in order", len(rec.Workers))
	}
	return ""
}

// onEpochKeyed takes a worker's report k of the keys it derived from the
// completed KeyForEpoch round kr (OnKeyed). The first report from one of
// the contract's workers, with the contract's identity and a valid new
// ECDH key, moves the record to the round's era and epoch: KeyEra and
// KeyEpoch the new ones, PrevKeyEra and PrevKeyEpoch the old, Migrating,
// EpochHeight this block, Ecdh the reported one; the round and the
// pending rekey are dropped; event contract_rekeyed; announced as
// api.TopicRekeyed with the grant the chain builds. A report naming
// another identity is contract_key_mismatch (nothing changes, the round
// waits for another report). If the contract's workers changed since the
// round (a worker added that the round did not provision), the round and
// the pending rekey are dropped so the next check asks again.
func onEpochKeyed(ctx *block.Context, worker crypto.PublicKey, k *api.ContractKeyed, kr *api.KeyRound) {
	ignore := func(why string) {
		ctx.Event("contract_keyed_ignored", "worker", worker.Hex(), "upload_id", hex.EncodeToString(k.Upload[:]), "reason", why)
	}
	rec := Record(ctx.KV, kr.Contract)
	pr := loadRekey(ctx.KV, kr.Contract)
	switch {
	case rec == nil || rec.Upload != k.Upload:
		ignore("no such round")
		return
	case !slices.Contains(kr.Workers, worker) || !slices.Contains(rec.Workers, worker):
		ignore("not a worker of the round and of the contract")
		return
	case len(kr.Members) < int(gatekeeper.KeySetOf(ctx.KV, kr.Era).T):
		ignore("the round is not complete")
		return
	case rec.Identity != k.Identity:
		ctx.Event("contract_key_mismatch", "contract", rec.Identity.Hex(), "worker", worker.Hex(), "key_epoch", strconv.FormatUint(kr.Epoch, 10))
		return
	case !k.Ecdh.Valid():
		ignore("not a public key")
		return
	case k.Ecdh == rec.Ecdh:
		ignore("the ECDH key of the current epoch, not a new one")
		return
	case gatekeeper.Retired(ctx.KV, kr.Era):
		ignore(fmt.Sprintf("key era %d is retired", kr.Era))
		ctx.KV.Delete(api.KeyRoundKey(k.Round))
		return
	case rec.Migrating || rec.Status == api.ContractFailed || pr == nil || pr.Era != kr.Era || pr.Epoch != kr.Epoch || kr.Epoch != rec.KeyEpoch+1:
		ignore("the contract's key epoch moved on")
		ctx.KV.Delete(api.KeyRoundKey(k.Round))
		return
	}
	for _, w := range rec.Workers {
		if !slices.Contains(kr.Workers, w) {
			ignore(fmt.Sprintf("worker %s runs the contract but was not provisioned by the round: the key epoch is asked again", w.Hex()))
			ctx.KV.Delete(api.KeyRoundKey(k.Round))
			ctx.KV.Delete(rekeyKey(rec.Identity))
			return
		}
	}
	rec.PrevKeyEra, rec.PrevKeyEpoch = rec.KeyEra, rec.KeyEpoch
	rec.KeyEra, rec.KeyEpoch = kr.Era, kr.Epoch
	rec.Migrating, rec.EpochHeight, rec.Ecdh = true, ctx.Height, k.Ecdh
	ctx.KV.Set(api.ContractKey(rec.Identity), rec.Encode())
	ctx.KV.Delete(api.KeyRoundKey(k.Round))
	ctx.KV.Delete(rekeyKey(rec.Identity))
	ctx.Event("contract_rekeyed", "contract", rec.Identity.Hex(), "worker", worker.Hex(), "key_era", strconv.FormatUint(rec.KeyEra, 10),
		"key_epoch", strconv.FormatUint(rec.KeyEpoch, 10), "prev_key_era", strconv.FormatUint(rec.PrevKeyEra, 10), "prev_key_epoch", strconv.FormatUint(rec.PrevKeyEpoch, 10))
	g := &api.ContractKeyGrant{Upload: rec.Upload, Identity: rec.Identity, Ecdh: rec.Ecdh, Era: rec.KeyEra, Epoch: rec.KeyEpoch, Round: k.Round, Workers: kr.Workers}
	if err := mq.Emit(ctx, api.ModuleOrigin(Module), api.TopicRekeyed, g.Encode()); err != nil {
		panic(fmt.Sprintf("announce the key epoch of %s: %v", rec.Identity.Hex(), err)) // a module message of bounded size
	}
}

// endMigration ends rec's migration when its accepted state update u
// (made at or after the block that started the epoch) has no entry left
// under an older epoch: Migrating false, PrevKeyEra/PrevKeyEpoch zero,
// event contract_key_epoch_done. It reports whether rec changed (the
// caller saves it).
func endMigration(ctx *block.Context, rec *api.ContractRecord, u *api.StateUpdate) bool {
	if !rec.Migrating || u.OldEntries != 0 || u.Height < rec.EpochHeight {
		return false
	}
	rec.Migrating, rec.PrevKeyEra, rec.PrevKeyEpoch = false, 0, 0
	ctx.Event("contract_key_epoch_done", "contract", rec.Identity.Hex(), "key_era", strconv.FormatUint(rec.KeyEra, 10),
		"key_epoch", strconv.FormatUint(rec.KeyEpoch, 10), "height", strconv.FormatInt(u.Height, 10))
	return true
}

// migratedSince reports whether a runtime migration completed after
// height (docs/keys.md, "State migration").
func migratedSince(kv store.KV, height int64) bool {
	return migration.LastCompletedHeight(kv) > height
}

// orphanKey is the state key marking a contract that lost every worker
// ("cz/" ‖ contract; value varint height), until it runs under the
// serving key era again (checkEpochs). While it is set, the retirement
// deadline of the contract's key era is held (replaceable).
func orphanKey(contract crypto.PublicKey) []byte { return append([]byte("cz/"), contract[:]...) }

// replaceable reports whether rec (a contract under key era era, not
// failed) has lost every worker and can still get a replacement under
// era: it is not migrating (a replacement would need two epochs' keys),
// at least T members of era's key set are attested (they can send the
// round of partials), and some worker satisfies its requirements
// (Unsatisfied). The retirement deadline of era waits for such a
// contract (gatekeeper.RetireEras, hold): docs/keys.md, "A contract that
// loses its last worker".
func replaceable(ctx *block.Context, rec *api.ContractRecord, era uint64) bool {
	if rec == nil || rec.Status == api.ContractFailed || len(rec.Workers) > 0 || rec.Migrating || rec.KeyEra != era {
		return false
	}
	set := gatekeeper.KeySetOf(ctx.KV, era)
	if set == nil {
		return false
	}
	up := 0
	for _, m := range set.Members {
		if attested(ctx.KV, m, ctx.Height) {
			up++
		}
	}
	return up >= int(set.T) && Unsatisfied(ctx.KV, &rec.Requirements, ctx.Height, ctx.Params) == ""
}
