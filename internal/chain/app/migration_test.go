package app

import (
	"bytes"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/attestation"
	"github.com/phalago/phala/internal/chain/contracts"
	"github.com/phalago/phala/internal/chain/migration"
	"github.com/phalago/phala/internal/chain/store"
)

// Runtime migration (docs/keys.md, "State migration") at the chain level:
// governance's migrate_runtime, workers' replica_ready, the contracts'
// handover rule and the migration's completion.

var otherBuild = [32]byte{7, 7, 7} // a second pRuntime build's measurement

func migrateTo(m []byte) *api.GovPropose {
	return &api.GovPropose{Action: api.Action{Kind: api.ActionMigrateRuntime, Measurement: m}}
}

// running is the running migration as queried, nil if none.
func (h *harness) running() *api.RuntimeMigration {
	h.t.Helper()
	v := h.state(api.QueryMigration)
	if v == nil {
		return nil
	}
	m, err := api.DecodeRuntimeMigration(v)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

// lastMigration is the last completed migration as queried, nil if none.
func (h *harness) lastMigration() *api.RuntimeMigrated {
	h.t.Helper()
	v := h.state(api.QueryLastMigration)
	if v == nil {
		return nil
	}
	m, err := api.DecodeRuntimeMigrated(v)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

// allowlist is the measurement allowlist as queried.
func (h *harness) allowlist() []api.HexBytes {
	h.t.Helper()
	a, err := api.DecodeAttestationSettings(h.state(api.QueryAttestation))
	if err != nil {
		h.t.Fatal(err)
	}
	return a.Measurements
}

func hasMeasurement(list []api.HexBytes, m []byte) bool {
	return slices.ContainsFunc(list, func(x api.HexBytes) bool { return bytes.Equal(x, m) })
}

// migrationMessages is the payloads of the migration module's messages of
// topic at height.
func (h *harness) migrationMessages(height int64, topic string) [][]byte {
	h.t.Helper()
	var out [][]byte
	for _, m := range h.messages(height).Messages {
		if m.Topic == topic {
			if m.Origin != api.ModuleOrigin(api.MigrationModule) {
				h.t.Fatalf("%s from %v", topic, m.Origin)
			}
			out = append(out, m.Payload)
		}
	}
	return out
}

// readyRecords is the chain's replica_ready records ("cy/" keys), each
// key (past the prefix) and value, in key order.
func (h *harness) readyRecords() []string {
	var out []string
	store.Iterate(h.app.store, []byte("cy/"), func(k, v []byte) bool {
		out = append(out, string(k[3:])+"="+string(v))
		return true
	})
	return out
}

func readyKeyOf(contract crypto.PublicKey, w *worker) []byte {
	k := append([]byte("cy/"), contract[:]...)
	return append(k, w.identity.Public().Bytes()...)
}

// ready pushes w's replica_ready for d's contract, in a block that is
// not a replica check (the next check acts on it), and returns the push's
// result.
func (c *replicaChain) ready(w *worker, d *deployment) *abci.ExecTxResult {
	c.t.Helper()
	if (c.h.height+1)%contracts.ReplicaCheckInterval == 0 {
		c.h.block()
	}
	r := &api.ReplicaReady{Contract: d.contract.Public(), Height: c.h.height}
	return c.h.pushed(w.identity, api.OriginWorker, api.TopicReplicaReady, r.Encode())
}

// migrate has Alice (the council, threshold 1) move the chain to
// measurement m; the motion must be enacted in its block.
func (c *replicaChain) migrate(m []byte) {
	c.t.Helper()
	h := c.h
	mustOK(c.t, h.block(h.tx(alice, h.nonce(alice), migrateTo(m))))
	var enacted bool
	for id := uint64(0); ; id++ {
		mo := h.motion(id)
		if mo == nil {
			break
		}
		enacted = mo.Action.Kind == api.ActionMigrateRuntime && mo.Status == api.MotionEnacted && mo.DecidedAt == h.height
	}
	if !enacted {
		c.t.Fatalf("migrate_runtime not enacted at height %d", h.height)
	}
}

// migrationChain is a governed chain (Alice alone decides) whose
// allowlist holds measurement and otherBuild: its genesis gatekeeper
// (registered, MasterKey announced) and the workers ws run measurement,
// except those whose index old names, which run otherBuild.
func migrationChain(t *testing.T, n int, old ...int) *replicaChain {
	t.Helper()
	g := govGenesis()
	g.Governance.Threshold = 1
	g.Attestation.Measurements = append(g.Attestation.Measurements, otherBuild[:])
	gk := newWorker(t)
	g.Gatekeepers = []crypto.PublicKey{gk.identity.Public()}
	h := newGovHarness(t, g)
	i := 0
	return newReplicaChain(t, g, h, gk, n, func(h *harness, w *worker) *api.RegisterWorker {
		defer func() { i++ }()
		if slices.Contains(old, i) {
			info := h.cite(w.info)
			return &api.RegisterWorker{Info: info, Report: *attestation.SignSimQuote(devAt, otherBuild, info.ReportData(), h.now)}
		}
		return h.register(h.cite(w.info))
	})
}

// migrate_runtime: the motion's enactment records the migration (target,
// the other allowlisted measurements, start height), puts a new target on
// the allowlist and announces both; a second migration while one runs,
// the revocation of its target and an empty measurement are refused at
// proposal with a clear error and change nothing; with nothing on an old
// build the migration completes at its first check, revoking them all.
func TestGovMigrateRuntime(t *testing.T) {
	target := bytes.Repeat([]byte{0x5e}, 32)
	g := govGenesis()
	g.Governance.Threshold = 1
	g.Attestation.Measurements = append(g.Attestation.Measurements, otherBuild[:])
	h := newGovHarness(t, g)
	h.block()

	h.mustRefuse(h.tx(alice, 0, migrateTo(nil)), api.CodeInvalidCall, "measurement of 0 bytes")
	h.mustRefuse(h.tx(alice, 0, migrateTo(make([]byte, api.MaxMeasurementBytes+1))), api.CodeMalformed, "length over limit")
	if h.running() != nil {
		t.Fatal("a migration runs before any motion")
	}

	res := h.block(h.tx(alice, 0, migrateTo(target)))
	mustOK(t, res)
	start := h.height
	if mo := h.motion(0); mo.Status != api.MotionEnacted {
		t.Fatalf("motion %+v", mo)
	}
	m := h.running()
	if m == nil || !bytes.Equal(m.Target, target) || m.Start != start ||
		!slices.EqualFunc(m.From, []api.HexBytes{measurement[:], otherBuild[:]}, func(a, b api.HexBytes) bool { return bytes.Equal(a, b) }) {
		t.Fatalf("running migration %+v, want target %x from the two allowlisted measurements at %d", m, target, start)
	}
	if list := h.allowlist(); !hasMeasurement(list, target) || !hasMeasurement(list, measurement[:]) || !hasMeasurement(list, otherBuild[:]) {
		t.Fatalf("allowlist %x", list)
	}
	if got := h.migrationMessages(start, api.TopicMigrationStarted); len(got) != 1 || !bytes.Equal(got[0], m.Encode()) {
		t.Fatalf("migration started messages %x, want the record", got)
	}
	var allowlists int
	for _, msg := range govMessages(h.messages(start)) {
		if msg.Topic == api.TopicGovAllowlist {
			allowlists++
			if list, err := api.DecodeMeasurements(msg.Payload); err != nil || !hasMeasurement(list, target) {
				t.Fatalf("allowlist announced %x %v", list, err)
			}
		}
	}
	if allowlists != 1 {
		t.Fatalf("%d allowlist announcements, want 1 (the target joined it)", allowlists)
	}
	if blockEvents(res, "runtime_migration_started", "old_builds")[0] != "2" {
		t.Fatalf("started event %v", res.Events)
	}

	// One at a time; the target stays allowed while it runs.
	record := h.state(api.QueryMigration)
	h.mustRefuse(h.tx(alice, 1, migrateTo(otherBuild[:])), api.CodeInvalidCall, "one at a time")
	h.mustRefuse(h.tx(alice, 1, migrateTo(target)), api.CodeInvalidCall, "one at a time")
	h.mustRefuse(h.tx(alice, 1, &api.GovPropose{Action: api.Action{Kind: api.ActionRevokeMeasurement, Measurement: target}}), api.CodeInvalidCall, "target of the running migration")
	r := h.block(h.tx(alice, 1, migrateTo(otherBuild[:]))).TxResults[0]
	if r.Code == 0 || !strings.Contains(r.Log, "one at a time") {
		t.Fatalf("second migration in a block: %d %q", r.Code, r.Log)
	}
	if !bytes.Equal(h.state(api.QueryMigration), record) || h.motion(1) != nil {
		t.Fatal("a refused migration changed the running one or opened a motion")
	}

	// Nothing runs an old build: the first check completes it.
	for h.height%migration.CheckInterval != migration.CheckInterval-1 {
		h.block()
		if h.running() == nil {
			t.Fatalf("completed at %d, before its check", h.height)
		}
	}
	res = h.block()
	if h.running() != nil {
		t.Fatalf("still running after the check at %d: %v", h.height, res.Events)
	}
	done := h.lastMigration()
	if done == nil || !bytes.Equal(done.Target, target) || done.Start != start || done.Height != h.height || len(done.Retired) != 2 {
		t.Fatalf("completed migration %+v", done)
	}
	if list := h.allowlist(); len(list) != 1 || !bytes.Equal(list[0], target) {
		t.Fatalf("allowlist after the migration %x, want the target alone", list)
	}
	if got := h.migrationMessages(h.height, api.TopicMigrationCompleted); len(got) != 1 || !bytes.Equal(got[0], done.Encode()) {
		t.Fatalf("completion messages %x", got)
	}
	// Another migration may start now.
	if res := h.check(h.tx(alice, h.nonce(alice), migrateTo(measurement[:]))); res.Code != 0 {
		t.Fatalf("a migration after the last completed: %s", res.Log)
	}
}

// The handover: during a migration, only new-build workers are granted a
// contract (beside its old-build ones); a contract loses its old-build
// workers (RemovedMigrated) at the replica check after all its new-build
// workers said replica_ready, not while one has not, and not while it
// has fewer new-build workers than replicas and another could be
// assigned. replica_ready from a worker not running the contract, or
// malformed, is ignored and changes no state; a current worker's is
// recorded and dropped when it leaves the contract. The migration
// completes only once no contract has an old-build worker.
func TestRuntimeMigrationHandover(t *testing.T) {
	c := migrationChain(t, 3, 0)
	h := c.h
	o1, n1, n2 := c.ws[0], c.ws[1], c.ws[2]
	one, two := c.upload(1), c.upload(2)
	c.grant(one, o1)
	c.grant(two, o1)
	c.workersAre(one, o1)
	c.workersAre(two, o1)

	// Old and new builds are both allowed; the migration names the old.
	c.migrate(measurement[:])
	start := h.height
	if m := h.running(); m == nil || m.Start != start || len(m.From) != 1 || !bytes.Equal(m.From[0], otherBuild[:]) {
		t.Fatalf("migration %+v", m)
	}

	// An old-build worker may not be granted a contract any more.
	three := c.upload(1)
	if why := event(c.grant(three, o1), "contract_grant_ignored", "reason"); !strings.Contains(why, "runtime migration") {
		t.Fatalf("grant to an old-build worker during a migration: %q", why)
	}
	// New-build workers join beside the old one: the replicas count
	// admitted workers only.
	c.grant(one, n1)
	c.grant(two, n1)
	c.workersAre(one, o1, n1)
	c.workersAre(two, o1, n1)

	// replica_ready that changes nothing: from a worker not running the
	// contract, malformed, for an unknown contract.
	before := h.readyRecords()
	for _, tc := range []struct {
		name    string
		w       *worker
		payload []byte
		want    string
	}{
		{"not its worker", n2, (&api.ReplicaReady{Contract: one.contract.Public(), Height: h.height}).Encode(), "does not run the contract"},
		{"height 0", n1, (&api.ReplicaReady{Contract: one.contract.Public()}).Encode(), "malformed"},
		{"trailing byte", n1, append((&api.ReplicaReady{Contract: one.contract.Public(), Height: 3}).Encode(), 0), "malformed"},
		{"unknown contract", n1, (&api.ReplicaReady{Contract: crypto.PublicKey{1}, Height: 3}).Encode(), "does not run the contract"},
	} {
		r := h.pushed(tc.w.identity, api.OriginWorker, api.TopicReplicaReady, tc.payload)
		if why := event(r, "replica_ready_ignored", "reason"); !strings.Contains(why, tc.want) {
			t.Fatalf("%s: ignored for %q, want %q (events %v)", tc.name, why, tc.want, r.Events)
		}
		if event(r, "replica_ready", "worker") != "" {
			t.Fatalf("%s: recorded", tc.name)
		}
		if got := h.readyRecords(); !slices.Equal(got, before) {
			t.Fatalf("%s: ready records changed", tc.name)
		}
	}

	// No new-build worker ready: nothing handed over, the migration waits.
	res := c.toCheck()
	c.workersAre(one, o1, n1)
	c.workersAre(two, o1, n1)
	if got := blockEvents(res, "runtime_migration_waiting", "contracts_on_old_builds"); h.height%migration.CheckInterval == 0 && !slices.Equal(got, []string{"2"}) {
		t.Fatalf("waiting events %v at %d", got, h.height)
	}

	// The current workers' replica_ready is recorded (an old-build one's
	// too).
	for _, w := range []*worker{n1, o1} {
		r := c.ready(w, one)
		if event(r, "replica_ready", "worker") != w.identity.Public().Hex() || h.app.store.Get(readyKeyOf(one.contract.Public(), w)) == nil {
			t.Fatalf("replica_ready of a current worker not recorded: %v", r.Events)
		}
	}
	c.ready(n1, two)

	// one: its only new-build worker caught up and fills its replica:
	// o1 leaves it (and its ready record goes). two: n1 caught up, but
	// it wants two replicas and n2 could still be assigned: o1 stays.
	res = c.toCheck()
	c.removedAt(res, one, api.RemovedMigrated, []*worker{o1}, n1)
	c.workersAre(two, o1, n1)
	if h.app.store.Get(readyKeyOf(one.contract.Public(), o1)) != nil || h.app.store.Get(readyKeyOf(one.contract.Public(), n1)) == nil {
		t.Fatal("ready records after the handover: the removed worker's must go, the kept one's stay")
	}
	if h.running() == nil || h.lastMigration() != nil {
		t.Fatal("the migration completed while a contract has an old-build worker")
	}

	// two takes n2, which has not caught up: o1 stays.
	c.grant(two, n2)
	c.workersAre(two, o1, n1, n2)
	c.toCheck()
	c.workersAre(two, o1, n1, n2)
	if h.running() == nil {
		t.Fatal("the migration completed while a contract has an old-build worker")
	}

	// n2 catches up: o1 leaves two, and nothing depends on the old build
	// (the gatekeeper runs the new one): the migration completes in the
	// same block (the migration module ends the block after contracts).
	c.ready(n2, two)
	res = c.toCheck()
	c.removedAt(res, two, api.RemovedMigrated, []*worker{o1}, n1, n2)
	if h.height%migration.CheckInterval != 0 {
		t.Fatalf("replica check at %d is not a migration check", h.height)
	}
	if h.running() != nil {
		t.Fatalf("the migration still runs at %d: %v", h.height, res.Events)
	}
	done := h.lastMigration()
	if done == nil || !bytes.Equal(done.Target, measurement[:]) || done.Start != start || done.Height != h.height || len(done.Retired) != 1 || !bytes.Equal(done.Retired[0], otherBuild[:]) {
		t.Fatalf("completed %+v", done)
	}
	if list := h.allowlist(); hasMeasurement(list, otherBuild[:]) || !hasMeasurement(list, measurement[:]) {
		t.Fatalf("allowlist %x after the migration", list)
	}
	if got := h.migrationMessages(h.height, api.TopicMigrationCompleted); len(got) != 1 {
		t.Fatalf("%d completion messages", len(got))
	}
	if h.readyRecords() == nil {
		t.Fatal("the kept workers' ready records are gone")
	}
}

// A migration waits while a key holder runs an old build: the serving
// gatekeeper (also the member of the unretired key set of era 0), on the
// old build, keeps it running through every check, counted in the
// waiting event, and the old measurement stays allowed.
func TestRuntimeMigrationWaitsForKeyHolders(t *testing.T) {
	c := migrationChain(t, 1)
	h := c.h
	c.migrate(otherBuild[:]) // the gatekeeper runs measurement: old now
	for checks := 0; checks < 3; {
		res := h.block()
		if h.height%migration.CheckInterval != 0 {
			continue
		}
		checks++
		if got := blockEvents(res, "runtime_migration_waiting", "key_holders_on_old_builds"); !slices.Equal(got, []string{"1"}) {
			t.Fatalf("check at %d: waiting events %v, want one key holder", h.height, got)
		}
		if got := blockEvents(res, "runtime_migration_waiting", "contracts_on_old_builds"); !slices.Equal(got, []string{"0"}) {
			t.Fatalf("check at %d: contracts on old builds %v", h.height, got)
		}
		if h.running() == nil || h.lastMigration() != nil || !hasMeasurement(h.allowlist(), measurement[:]) {
			t.Fatalf("completed at %d with the gatekeeper on the old build", h.height)
		}
	}
}

// A gatekeeper runs no contract: a grant naming a serving gatekeeper is
// ignored with that reason (no min_worker_stake: nothing else refuses it).
func TestGatekeeperIneligibleForContracts(t *testing.T) {
	g := genesis()
	g.Params.MinWorkerStake = 0
	c := startReplicaChain(t, g, 1)
	d := c.upload(2)
	c.grant(d, c.ws[0])
	if why := event(c.grant(d, c.gk), "contract_grant_ignored", "reason"); !strings.Contains(why, "a gatekeeper") {
		t.Fatalf("grant to the gatekeeper: %q", why)
	}
	c.workersAre(d, c.ws[0])
}

// A worker elected gatekeeper leaves its contracts (RemovedGatekeeper)
// at the first replica check after its key set is adopted (it serves),
// not while it is only elected.
func TestElectedGatekeeperLeavesContracts(t *testing.T) {
	g := genesis()
	g.Params.EraLength, g.Params.NGatekeepers, g.Params.MinGatekeeperStake = 20, 1, 100
	gk := newWorker(t)
	g.Gatekeepers = []crypto.PublicKey{gk.identity.Public()}
	voters := &testVoters{}
	h := newElectionHarness(t, g, voters)
	c := newReplicaChain(t, g, h, gk, 2, nil)
	w0, w1 := c.ws[0], c.ws[1]
	d := c.upload(2)
	c.grant(d, w0, w1)
	c.workersAre(d, w0, w1)
	mustOK(t, h.block(h.tx(bob, h.nonce(bob), &api.GatekeeperCandidacy{Node: w0.identity.Public(), On: true})))
	voters.stake = map[crypto.PublicKey]uint64{w0.identity.Public(): 500}
	members := h.dkgMembers(w0)
	serving := func() bool {
		keys, _ := api.DecodeKeys(h.state(api.QueryGatekeepers))
		return slices.Equal(keys, keysOf(w0))
	}
	for !serving() {
		if h.height >= 40 {
			t.Fatalf("w0 not serving as gatekeeper by height %d", h.height)
		}
		members.block()
		if h.height%10 == 0 && !serving() {
			c.workersAre(d, w0, w1) // elected or not, not serving: stays
		}
	}
	t.Logf("serving from height %d", h.height)
	if h.height%10 == 0 {
		t.Fatalf("adopted at a replica check (%d): split the test's expectations", h.height)
	}
	c.workersAre(d, w0, w1)
	res := c.toCheck()
	c.removedAt(res, d, api.RemovedGatekeeper, []*worker{w0}, w1)
}

// The handover does not wait for replicas that cannot come: a contract
// asking two replicas whose one new-build worker caught up, with no
// other new-build worker to assign (the other nodes run the old build or
// serve as gatekeeper), loses its old-build workers; the migration then
// completes.
func TestRuntimeMigrationHandoverShortOfReplicas(t *testing.T) {
	c := migrationChain(t, 3, 0, 1)
	h := c.h
	o1, o2, n1 := c.ws[0], c.ws[1], c.ws[2]
	d := c.upload(2)
	c.grant(d, o1, o2)
	c.migrate(measurement[:])
	c.grant(d, n1)
	c.workersAre(d, o1, o2, n1)
	c.ready(n1, d)
	res := c.toCheck()
	c.removedAt(res, d, api.RemovedMigrated, []*worker{o1, o2}, n1)
	if h.running() != nil || h.lastMigration() == nil {
		t.Fatalf("migration not completed at %d", h.height)
	}
}

// During a migration only nodes of its target build stand in gatekeeper
// elections: the old-build candidate with the larger stake is passed
// over for the new-build one.
func TestRuntimeMigrationElectsTargetBuild(t *testing.T) {
	g := govGenesis()
	g.Governance.Threshold = 1
	g.Attestation.Measurements = append(g.Attestation.Measurements, otherBuild[:])
	g.Params.EraLength, g.Params.NGatekeepers, g.Params.MinGatekeeperStake = 20, 1, 100
	gk := newWorker(t)
	g.Gatekeepers = []crypto.PublicKey{gk.identity.Public()}
	voters := &testVoters{}
	h := newElectionHarness(t, g, voters)
	i := 0
	c := newReplicaChain(t, g, h, gk, 2, func(h *harness, w *worker) *api.RegisterWorker {
		i++
		if i == 1 { // the first worker runs the old build
			info := h.cite(w.info)
			return &api.RegisterWorker{Info: info, Report: *attestation.SignSimQuote(devAt, otherBuild, info.ReportData(), h.now)}
		}
		return h.register(h.cite(w.info))
	})
	old, fresh := c.ws[0], c.ws[1]
	n := h.nonce(bob)
	mustOK(t, h.block(h.tx(bob, n, &api.GatekeeperCandidacy{Node: old.identity.Public(), On: true}),
		h.tx(bob, n+1, &api.GatekeeperCandidacy{Node: fresh.identity.Public(), On: true})))
	voters.stake = map[crypto.PublicKey]uint64{old.identity.Public(): 500, fresh.identity.Public(): 200}
	// A contract on the old build keeps the migration running.
	d := c.upload(1)
	c.grant(d, old)
	c.migrate(measurement[:])
	for h.height < 20 {
		h.block()
	}
	rec, err := api.DecodeElectionRecord(h.stateData(api.QueryGatekeeperEra, []byte{0, 0, 0, 0, 0, 0, 0, 1}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.Members, keysOf(fresh)) {
		t.Fatalf("elected %s, want the new-build candidate %s", shorts(rec.Members), fresh.identity.Public().Short())
	}
	if h.running() == nil {
		t.Fatal("the migration ended before the election")
	}
}

// A migration waits for the members of every unretired key set, not
// only the serving gatekeepers: the genesis gatekeeper runs the old
// build; once a new-build node is elected and its key set adopted, the
// genesis gatekeeper no longer serves but still holds key era 0, which a
// contract uses, so the migration waits; it completes at the first check
// after era 0 is retired (its key_migration_eras deadline).
func TestRuntimeMigrationWaitsForKeySetMembers(t *testing.T) {
	g := govGenesis()
	g.Governance.Threshold = 1
	g.Params.EraLength, g.Params.NGatekeepers, g.Params.MinGatekeeperStake, g.Params.KeyMigrationEras = 20, 1, 100, 1
	g.Params.MinWorkerStake = 0
	g.Attestation.Measurements = append(g.Attestation.Measurements, otherBuild[:])
	gk := newWorker(t) // registered with measurement: the old build
	g.Gatekeepers = []crypto.PublicKey{gk.identity.Public()}
	voters := &testVoters{}
	h := newElectionHarness(t, g, voters)
	c := newReplicaChain(t, g, h, gk, 2, func(h *harness, w *worker) *api.RegisterWorker {
		info := h.cite(w.info)
		return &api.RegisterWorker{Info: info, Report: *attestation.SignSimQuote(devAt, otherBuild, info.ReportData(), h.now)}
	})
	runner, cand := c.ws[0], c.ws[1]
	d := c.upload(1)
	c.grant(d, runner)
	mustOK(t, h.block(h.tx(bob, h.nonce(bob), &api.GatekeeperCandidacy{Node: cand.identity.Public(), On: true})))
	voters.stake = map[crypto.PublicKey]uint64{cand.identity.Public(): 500}
	c.migrate(otherBuild[:])
	members := h.dkgMembers(cand)
	waiting := func(res *abci.ResponseFinalizeBlock) {
		t.Helper()
		if got := blockEvents(res, "runtime_migration_waiting", "key_holders_on_old_builds"); !slices.Equal(got, []string{"1"}) {
			t.Fatalf("check at %d: waiting events %v, want one key holder", h.height, got)
		}
		if h.running() == nil || h.lastMigration() != nil {
			t.Fatalf("completed at %d", h.height)
		}
	}
	adopted := int64(0)
	for h.height < 60 {
		res := members.block()
		keys, _ := api.DecodeKeys(h.state(api.QueryGatekeepers))
		if adopted == 0 && slices.Equal(keys, keysOf(cand)) {
			adopted = h.height
		}
		if h.running() == nil {
			break
		}
		if h.height%migration.CheckInterval == 0 {
			waiting(res)
		}
	}
	if adopted == 0 || adopted > 30 {
		t.Fatalf("the elected key set adopted at %d", adopted)
	}
	// After the adoption, at least one check (30) found only the
	// unretired key set's member on the old build.
	done := h.lastMigration()
	if done == nil {
		t.Fatalf("no completion by height %d", h.height)
	}
	retired := h.app.store.Get(api.KeyEraRetiredKey(0))
	if retired == nil {
		t.Fatal("completed with key era 0 unretired")
	}
	if done.Height < adopted+int64(g.Params.EraLength) {
		t.Fatalf("completed at %d, before era 0's deadline (adopted at %d)", done.Height, adopted)
	}
	t.Logf("adopted at %d, completed at %d", adopted, done.Height)
}

func cancelMigration() *api.GovPropose {
	return &api.GovPropose{Action: api.Action{Kind: api.ActionCancelMigration}}
}

// A measurement in allow, revoke and migrate motions has a size some
// platform's measurements have (32: sim, 192: tdx): any other is refused
// at proposal with a message naming the valid sizes, in CheckTx and in a
// block, opening no motion and starting no migration (the user trial's
// `migrate-runtime 0x1234`, enacted, restricted every new contract to a
// build no pRuntime can ever be).
func TestGovMeasurementSize(t *testing.T) {
	g := govGenesis()
	g.Governance.Threshold = 1
	h := newGovHarness(t, g)
	h.block()
	before := h.allowlist()
	nonce := uint64(0)
	for _, kind := range []api.ActionKind{api.ActionAllowMeasurement, api.ActionRevokeMeasurement, api.ActionMigrateRuntime} {
		for _, size := range []int{1, 2, 31, 33, 48, 64, 191} {
			t.Run(kind.String()+"/"+strconv.Itoa(size), func(t *testing.T) {
				p := &api.GovPropose{Action: api.Action{Kind: kind, Measurement: bytes.Repeat([]byte{0x12}, size)}}
				h.mustRefuse(h.tx(alice, nonce, p), api.CodeInvalidCall, "a pRuntime measurement is 32 bytes")
				r := h.block(h.tx(alice, nonce, p)).TxResults[0]
				nonce++ // the fee and nonce stay charged
				if api.Code(r.Code) != api.CodeInvalidCall || !strings.Contains(r.Log, "192 bytes") {
					t.Fatalf("in a block: %s %q", api.Code(r.Code), r.Log)
				}
			})
		}
	}
	if h.motion(0) != nil || h.running() != nil || !slices.EqualFunc(h.allowlist(), before, func(a, b api.HexBytes) bool { return bytes.Equal(a, b) }) {
		t.Fatal("a refused motion opened a motion, started a migration or changed the allowlist")
	}
	// The valid sizes pass: a tdx-sized measurement is allowed.
	mustOK(t, h.block(h.tx(alice, nonce, &api.GovPropose{Action: api.Action{Kind: api.ActionAllowMeasurement, Measurement: bytes.Repeat([]byte{0x12}, api.TDXMeasurementSize)}})))
	if mo := h.motion(0); mo == nil || mo.Status != api.MotionEnacted {
		t.Fatalf("192-byte measurement motion %+v", mo)
	}
}

// cancel_migration ends a running migration without revoking anything:
// refused when none runs; enacted, the record leaves "m/running" and
// "m/last" holds it cancelled at the motion's height (nothing retired),
// announced (api.TopicMigrationCancelled) with an event; the allowlist
// keeps every measurement. What was handed over stays (the contract that
// took a new-build worker beside its old one keeps both, and no check
// hands anything over after), and old-build workers are granted
// contracts again: a deployment pending since the migration to a build no
// worker runs proceeds on an old-build worker. A new migration may then
// start.
func TestGovCancelMigration(t *testing.T) {
	c := migrationChain(t, 2, 0)
	h := c.h
	o1, n1 := c.ws[0], c.ws[1] // otherBuild, measurement
	h.mustRefuse(h.tx(alice, h.nonce(alice), cancelMigration()), api.CodeInvalidCall, "no runtime migration runs")

	one := c.upload(2)
	c.grant(one, o1)
	c.migrate(measurement[:])
	c.grant(one, n1)
	c.workersAre(one, o1, n1)
	c.toCheck()
	c.workersAre(one, o1, n1) // n1 not ready: no handover

	// The user trial: a migration to a build nobody runs cannot start
	// while one runs; cancel this one first.
	h.mustRefuse(h.tx(alice, h.nonce(alice), migrateTo(bytes.Repeat([]byte{0x34}, 32))), api.CodeInvalidCall, "one at a time")
	two := c.upload(1)
	if why := event(c.grant(two, o1), "contract_grant_ignored", "reason"); !strings.Contains(why, "runtime migration") {
		t.Fatalf("grant to an old-build worker during the migration: %q", why)
	}
	if c.record(two) != nil {
		t.Fatal("deployed to an old-build worker during the migration")
	}

	start := h.running().Start
	res := h.block(h.tx(alice, h.nonce(alice), cancelMigration()))
	mustOK(t, res)
	if mo := h.motion(1); mo == nil || mo.Action.Kind != api.ActionCancelMigration || mo.Status != api.MotionEnacted {
		t.Fatalf("cancel motion %+v", mo)
	}
	if h.running() != nil {
		t.Fatal("the migration still runs after its cancellation")
	}
	done := h.lastMigration()
	if done == nil || !done.Cancelled || !bytes.Equal(done.Target, measurement[:]) || done.Start != start || done.Height != h.height || len(done.Retired) != 0 || done.PrevCompleted != 0 {
		t.Fatalf("last migration %+v, want cancelled at %d", done, h.height)
	}
	if got := blockEvents(res, "runtime_migration_cancelled", "target"); !slices.Equal(got, []string{hex.EncodeToString(measurement[:])}) {
		t.Fatalf("cancelled events %v", got)
	}
	if got := h.migrationMessages(h.height, api.TopicMigrationCancelled); len(got) != 1 || !bytes.Equal(got[0], done.Encode()) {
		t.Fatalf("cancellation messages %x", got)
	}
	if list := h.allowlist(); !hasMeasurement(list, measurement[:]) || !hasMeasurement(list, otherBuild[:]) {
		t.Fatalf("allowlist after the cancellation %x: nothing is revoked", list)
	}
	h.mustRefuse(h.tx(alice, h.nonce(alice), cancelMigration()), api.CodeInvalidCall, "nothing to cancel")

	// The old-build worker runs new contracts again; what was handed
	// over stays.
	c.grant(two, o1)
	c.workersAre(two, o1)
	c.ready(n1, one)
	c.toCheck()
	c.workersAre(one, o1, n1)
	// Another migration may start.
	if r := h.check(h.tx(alice, h.nonce(alice), migrateTo(otherBuild[:]))); r.Code != 0 {
		t.Fatalf("a migration after the cancelled one: %s", r.Log)
	}
}
