// Package computation owns the chain's responsiveness monitoring of the
// nodes that run pRuntime (workers and gatekeepers): heartbeat challenges
// drawn from chain data each block, the nodes' answers, activity counters
// per era, the 1/4 rule at the end of each era (whitepaper 4.10) with its
// slash and its loss of assignability, the mid-era liveness signal (Down:
// the gatekeeper module's early re-election reads it), and the era's
// rewards
// (docs/economy.md; the specification's "Offline Worker Detection").
//
// Stake lives in the staking module; computation takes it, and pays
// rewards, through Economy.
package computation

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/big"
	"slices"
	"strconv"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/eras"
	"github.com/phalago/phala/internal/chain/gatekeeper"
	"github.com/phalago/phala/internal/chain/module"
	"github.com/phalago/phala/internal/chain/mq"
	"github.com/phalago/phala/internal/chain/registry"
	"github.com/phalago/phala/internal/chain/store"
)

// Module is the module's origin name in the queue.
const Module = api.ComputationModule

// Economy is what computation needs of the staking and accounts modules.
type Economy interface {
	// Slash burns ppm of the stake behind node; it returns the amount.
	Slash(ctx *block.Context, node crypto.PublicKey, ppm uint64, reason string) uint64
	// Reward mints amount to node's stakers; it returns what it minted.
	Reward(ctx *block.Context, node crypto.PublicKey, amount uint64) uint64
	// Issuance is the total issuance of PHA, in units.
	Issuance(kv store.KV) uint64
}

// KeepEras is how many eras of activity counters the chain keeps (the
// era reports are kept).
const KeepEras = 8

// node is a registered node as the module sees it in one block.
type node struct {
	key        crypto.PublicKey
	rec        *api.WorkerRecord
	gatekeeper bool
}

// nodes returns every registered node attested at height, in key order.
func nodes(kv store.KV, height int64) []node {
	settings := registry.Attestation(kv)
	gks := map[crypto.PublicKey]bool{}
	for _, g := range gatekeeper.Gatekeepers(kv) {
		gks[g] = true
	}
	var out []node
	store.Iterate(kv, []byte("w/"), func(k, v []byte) bool {
		rec, err := api.DecodeWorkerRecord(v)
		if err != nil || len(k) != 2+crypto.PublicKeySize {
			panic(fmt.Sprintf("corrupt worker record %x: %v", k, err))
		}
		if rec.Active(height) && settings.MeasurementAllowed(rec.Measurement) {
			pk := crypto.PublicKey(k[2:])
			out = append(out, node{key: pk, rec: rec, gatekeeper: gks[pk]})
		}
		return true
	})
	return out
}

func activity(kv store.KV, era uint64, n crypto.PublicKey) *api.Activity {
	v := kv.Get(api.ActivityKey(era, n))
	if v == nil {
		return &api.Activity{}
	}
	a, err := api.DecodeActivity(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt activity of %s in era %d: %v", n.Hex(), era, err))
	}
	return a
}

func setActivity(kv store.KV, era uint64, n crypto.PublicKey, a *api.Activity) {
	kv.Set(api.ActivityKey(era, n), a.Encode())
}

// BeginBlock challenges the nodes that the hash of the previous block
// selects (api.HeartbeatSelector) and emits one api.Challenge listing
// them. Nothing happens while heartbeats_per_era is 0 or before a previous
// block hash is recorded.
func BeginBlock(ctx *block.Context) error {
	p := ctx.Params
	if p.HeartbeatsPerEra == 0 || ctx.Height < 2 {
		return nil
	}
	prev := ctx.KV.Get(api.BlockHashKey(ctx.Height - 1))
	if len(prev) != api.BlockHashSize {
		return nil
	}
	sched := eras.Of(ctx)
	era := sched.EraOf(ctx.Height)
	// The rate follows the era's own length (era_length changes apply
	// from the next era on, package eras).
	length := sched.Length(era)
	c := &api.Challenge{Seed: [api.BlockHashSize]byte(prev)}
	for _, n := range nodes(ctx.KV, ctx.Height) {
		if api.HeartbeatSelector(prev, n.key)%length >= p.HeartbeatsPerEra {
			continue
		}
		c.Nodes = append(c.Nodes, n.key)
		// Outstanding: those still within their window, and this one;
		// those dropped went unanswered (liveness counts them).
		open := outstanding(ctx.KV, n.key)
		var closed []int64
		open = slices.DeleteFunc(open, func(h int64) bool {
			if h+int64(p.HeartbeatWindow) < ctx.Height {
				closed = append(closed, h)
				return true
			}
			return false
		})
		if len(closed) > 0 {
			missed(ctx.KV, n.key, closed...)
		}
		setOutstanding(ctx.KV, n.key, append(open, ctx.Height))
		a := activity(ctx.KV, era, n.key)
		a.Challenged++
		setActivity(ctx.KV, era, n.key, a)
	}
	if len(c.Nodes) == 0 {
		return nil
	}
	return mq.Emit(ctx, api.ModuleOrigin(Module), api.TopicChallenge, c.Encode())
}

// outstanding returns the heights of node's unanswered challenges, at
// most heartbeat_window+1 of them (older ones are dropped when the next
// challenge comes).
func outstanding(kv store.KV, node crypto.PublicKey) []int64 {
	v := kv.Get(api.ChallengeKey(node))
	if len(v)%8 != 0 {
		panic(fmt.Sprintf("corrupt challenges of %s", node.Hex()))
	}
	out := make([]int64, 0, len(v)/8)
	for ; len(v) > 0; v = v[8:] {
		out = append(out, int64(binary.BigEndian.Uint64(v)))
	}
	return out
}

func setOutstanding(kv store.KV, node crypto.PublicKey, hs []int64) {
	if len(hs) == 0 {
		kv.Delete(api.ChallengeKey(node))
		return
	}
	b := make([]byte, 0, 8*len(hs))
	for _, h := range hs {
		b = binary.BigEndian.AppendUint64(b, uint64(h))
	}
	kv.Set(api.ChallengeKey(node), b)
}

// OnHeartbeat counts a node's answer to one of its outstanding challenges
// if it names that challenge's block and seed and arrives within
// heartbeat_window blocks of it; anything else (late, repeated, a block
// that did not challenge this node, a wrong seed) is ignored with an
// event. The origin
// is the node itself: only its pRuntime signs as it.
func OnHeartbeat(ctx *block.Context, m *api.Message) {
	n := m.Origin.Key
	ignore := func(why string) { ctx.Event("heartbeat_ignored", "node", n.Hex(), "reason", why) }
	hb, err := api.DecodeHeartbeat(m.Payload)
	if err != nil {
		ignore("malformed")
		return
	}
	open := outstanding(ctx.KV, n)
	i := slices.Index(open, hb.Height)
	if i < 0 {
		ignore("no outstanding challenge of that block (answered already, or never issued to this node)")
		return
	}
	if !bytes.Equal(ctx.KV.Get(api.BlockHashKey(hb.Height-1)), hb.Seed[:]) {
		ignore("wrong seed")
		return
	}
	setOutstanding(ctx.KV, n, slices.Delete(open, i, i+1))
	if ctx.Height > hb.Height+int64(ctx.Params.HeartbeatWindow) {
		missed(ctx.KV, n, hb.Height)
		ignore("late: the window closed at height " + strconv.FormatInt(hb.Height+int64(ctx.Params.HeartbeatWindow), 10))
		return
	}
	answered(ctx.KV, n, hb.Height)
	era := eras.Of(ctx).EraOf(hb.Height)
	a := activity(ctx.KV, era, n)
	a.Answered++
	setActivity(ctx.KV, era, n, a)
	ctx.Event("heartbeat", "node", n.Hex(), "challenge", strconv.FormatInt(hb.Height, 10))
}

// Observe counts the other messages of a node the queue accepted (its
// grants, shares, announcements) as activity of the era they arrive in.
func Observe(ctx *block.Context, m *api.Message) {
	if (m.Origin.Kind != api.OriginWorker && m.Origin.Kind != api.OriginGatekeeper) || m.Topic == api.TopicHeartbeat {
		return
	}
	era := eras.Of(ctx).EraOf(ctx.Height)
	a := activity(ctx.KV, era, m.Origin.Key)
	a.Egress++
	setActivity(ctx.KV, era, m.Origin.Key, a)
}

// ScheduleTimeout schedules the execution-timeout check of a command to
// contract queued in this block: at ctx.Height+timeout, every worker of
// the contract that has not acknowledged executing up to ctx.Height
// (api.Executed) pays Params.TimeoutPenaltyPPM.
func ScheduleTimeout(ctx *block.Context, contract crypto.PublicKey, timeout uint64) {
	ctx.KV.Set(api.TimeoutKey(ctx.Height+int64(timeout), contract), binary.BigEndian.AppendUint64(nil, uint64(ctx.Height)))
}

// OnExecuted records a worker's acknowledgement that it executed a
// contract's commands up to a height: only a worker of the contract's
// record, only for a block already final, only upwards.
func OnExecuted(ctx *block.Context, m *api.Message) {
	w := m.Origin.Key
	x, err := api.DecodeExecuted(m.Payload)
	if err != nil {
		ctx.Event("executed_ignored", "worker", w.Hex(), "reason", "malformed")
		return
	}
	v := ctx.KV.Get(api.ContractKey(x.Contract))
	if v == nil {
		return
	}
	rec, err := api.DecodeContractRecord(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt contract record %s: %v", x.Contract.Hex(), err))
	}
	if !slices.Contains(rec.Workers, w) || x.Height >= ctx.Height {
		ctx.Event("executed_ignored", "worker", w.Hex(), "reason", "not a worker of the contract, or a height not yet final")
		return
	}
	if prev := ctx.KV.Get(api.ExecutedKey(x.Contract, w)); len(prev) == 8 && int64(binary.BigEndian.Uint64(prev)) >= x.Height {
		return
	}
	ctx.KV.Set(api.ExecutedKey(x.Contract, w), binary.BigEndian.AppendUint64(nil, uint64(x.Height)))
}

// checkTimeouts charges the replicas that missed the execution timeouts
// due in this block.
func checkTimeouts(ctx *block.Context, econ Economy) {
	type due struct {
		key      []byte
		contract crypto.PublicKey
		height   int64
	}
	var ds []due
	prefix := api.TimeoutPrefix(ctx.Height)
	store.Iterate(ctx.KV, prefix, func(k, v []byte) bool {
		ds = append(ds, due{bytes.Clone(k), crypto.PublicKey(k[len(prefix):]), int64(binary.BigEndian.Uint64(v))})
		return true
	})
	for _, d := range ds {
		ctx.KV.Delete(d.key)
		v := ctx.KV.Get(api.ContractKey(d.contract))
		if v == nil {
			continue
		}
		rec, err := api.DecodeContractRecord(v)
		if err != nil {
			panic(fmt.Sprintf("corrupt contract record %s: %v", d.contract.Hex(), err))
		}
		for _, w := range rec.Workers {
			if a := ctx.KV.Get(api.ExecutedKey(d.contract, w)); len(a) == 8 && int64(binary.BigEndian.Uint64(a)) >= d.height {
				continue
			}
			amount := econ.Slash(ctx, w, ctx.Params.TimeoutPenaltyPPM, fmt.Sprintf("missed the execution timeout of contract %s for block %d", d.contract.Hex(), d.height))
			ctx.Event("execution_timeout", "contract", d.contract.Hex(), "worker", w.Hex(), "command_height", strconv.FormatInt(d.height, 10), "slashed", strconv.FormatUint(amount, 10))
		}
	}
}

// Responsive reports whether node may be given new contracts as far as
// its responsiveness goes: it was not found unresponsive at the end of the
// era before the one of height (eras by the chain's schedule s,
// eras.Schedule).
func Responsive(kv store.KV, node crypto.PublicKey, height int64, s *api.EraSchedule) bool {
	v := kv.Get(api.UnresponsiveKey(node))
	if len(v) != 8 {
		return true
	}
	era := s.EraOf(height)
	return era == 0 || binary.BigEndian.Uint64(v) != era-1
}

// EndBlock does the era-end work at an era's last block: verdicts by the
// 1/4 rule, slashes, assignability changes, rewards, the era's report.
func EndBlock(econ Economy) func(ctx *block.Context) error {
	return func(ctx *block.Context) error {
		checkTimeouts(ctx, econ)
		sched := eras.Of(ctx)
		era, last := sched.Era(ctx.Height)
		if !last {
			return nil
		}
		return endEra(ctx, econ, sched, era)
	}
}

func endEra(ctx *block.Context, econ Economy, sched *api.EraSchedule, era uint64) error {
	p := ctx.Params
	start := sched.Start(era)
	rep := &api.EraReport{Era: era, Height: ctx.Height}
	ns := nodes(ctx.KV, ctx.Height)
	for _, n := range ns {
		v := api.NodeVerdict{Node: n.key, Gatekeeper: n.gatekeeper, Count: activity(ctx.KV, era, n.key).Count(),
			Exempt: n.rec.ActiveSince >= start}
		if v.Exempt {
			// Registered during the era (first, or again after a lapse):
			// not judged on it. A renewal without a lapse is judged.
		} else if n.gatekeeper {
			rep.MaxGateKpr = max(rep.MaxGateKpr, v.Count)
		} else {
			rep.MaxWorker = max(rep.MaxWorker, v.Count)
		}
		rep.Nodes = append(rep.Nodes, v)
	}
	// The 1/4 rule, per kind: c_n < max/4, in integers 4·c_n < max.
	var workerSum uint64
	var gatekeepers int
	for i := range rep.Nodes {
		v := &rep.Nodes[i]
		m := rep.MaxWorker
		if v.Gatekeeper {
			m = rep.MaxGateKpr
		}
		if v.Exempt {
			continue
		}
		v.Unresponsive = 4*v.Count < m // max 0: nobody
		wasOut := !Responsive(ctx.KV, v.Node, ctx.Height, sched)
		if v.Unresponsive {
			v.Slashed = econ.Slash(ctx, v.Node, p.OfflineSlashPPM, fmt.Sprintf("unresponsive in era %d (activity %d, a quarter of the max %d is %d)", era, v.Count, m, m/4))
			ctx.KV.Set(api.UnresponsiveKey(v.Node), binary.BigEndian.AppendUint64(nil, era))
			if !wasOut {
				if err := emitAssignable(ctx, v.Node, false, fmt.Sprintf("unresponsive in era %d", era)); err != nil {
					return err
				}
			}
			continue
		}
		if wasOut {
			if err := emitAssignable(ctx, v.Node, true, fmt.Sprintf("responsive in era %d", era)); err != nil {
				return err
			}
		}
		if v.Gatekeeper {
			gatekeepers++
		} else {
			workerSum += v.Count
		}
	}
	// Rewards: the era's inflation, the gatekeepers' share equally among
	// the responsive gatekeepers, the rest among responsive workers by c_n.
	rep.Budget = mulDiv(econ.Issuance(ctx.KV), p.EraInflationPPB, 1_000_000_000)
	gkBudget := mulDiv(rep.Budget, p.GatekeeperRewardPPM, 1_000_000)
	wBudget := rep.Budget - gkBudget
	for i := range rep.Nodes {
		v := &rep.Nodes[i]
		if v.Unresponsive || v.Exempt {
			continue
		}
		var amount uint64
		switch {
		case v.Gatekeeper && gatekeepers > 0:
			amount = gkBudget / uint64(gatekeepers)
		case !v.Gatekeeper && workerSum > 0:
			amount = mulDiv(wBudget, v.Count, workerSum)
		}
		if amount > 0 {
			v.Reward = econ.Reward(ctx, v.Node, amount)
		}
	}
	ctx.KV.Set(api.EraReportKey(era), rep.Encode())
	if era >= KeepEras {
		var old [][]byte
		store.Iterate(ctx.KV, api.ActivityPrefix(era-KeepEras), func(k, _ []byte) bool {
			old = append(old, bytes.Clone(k))
			return true
		})
		for _, k := range old {
			ctx.KV.Delete(k)
		}
	}
	ctx.Event("era_ended", "era", strconv.FormatUint(era, 10), "nodes", strconv.Itoa(len(rep.Nodes)), "budget", strconv.FormatUint(rep.Budget, 10))
	return nil
}

func emitAssignable(ctx *block.Context, n crypto.PublicKey, ok bool, reason string) error {
	a := &api.Assignability{Node: n, Assignable: ok, Reason: reason}
	ctx.Event("assignability", "node", n.Hex(), "assignable", strconv.FormatBool(ok), "reason", reason)
	return mq.Emit(ctx, api.ModuleOrigin(Module), api.TopicAssignable, a.Encode())
}

// mulDiv returns a·b/c without overflow (c > 0; the result fits when
// b ≤ c).
func mulDiv(a, b, c uint64) uint64 {
	var x big.Int
	x.Mul(new(big.Int).SetUint64(a), new(big.Int).SetUint64(b))
	x.Quo(&x, new(big.Int).SetUint64(c))
	return x.Uint64()
}

// Spec returns the module's entry in the chain's module table: it owns the
// "cm/" keys (outstanding challenges "cm/ch/", liveness records
// "cm/lv/" (Down), activity "cm/act/", era reports "cm/era/", verdicts
// "cm/un/", execution acknowledgements "cm/ex/" and timeout checks
// "cm/to/"); it challenges at the start of each
// block, consumes the nodes' heartbeats, observes their other accepted
// messages, does the era-end work, and serves its proved reads.
func Spec(econ Economy) *module.Module {
	hb := func(ctx *block.Context, m *api.Message) { OnHeartbeat(ctx, m) }
	return &module.Module{
		Name:        Module,
		KeyPrefixes: []string{"cm/"},
		BeginBlock:  BeginBlock,
		EndBlock:    EndBlock(econ),
		Consumes: []module.Consumer{
			{Origin: api.OriginWorker, Topic: api.TopicHeartbeat, Handle: hb},
			{Origin: api.OriginGatekeeper, Topic: api.TopicHeartbeat, Handle: hb},
			{Origin: api.OriginWorker, Topic: api.TopicExecuted, Handle: OnExecuted},
		},
		Observe:      Observe,
		StateQueries: []string{api.QueryActivity, api.QueryEraReport, api.QueryChallenge, api.QueryExecuted},
	}
}
