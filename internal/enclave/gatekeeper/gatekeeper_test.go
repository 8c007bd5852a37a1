package gatekeeper

import (
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"

	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/share"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/platform"
	"github.com/phalago/phala/internal/enclave/sealing"
	"github.com/phalago/phala/internal/enclave/threshold"
)

// view is the chain-derived state the engine would give (Chain): the
// registrations in the queue, all attested until expiry, and the egress.
type view struct {
	workers  map[crypto.PublicKey]*api.WorkerRecord
	keySets  map[uint64]*api.KeySet
	serving  uint64
	rotating bool // an elected set's DKG runs
	egress   []api.Message
	// unassignable: workers below the minimum stake, or found
	// unresponsive (not Assignable).
	unassignable map[crypto.PublicKey]bool
	gatekeepers  []crypto.PublicKey // serving or elected
	subnets      map[[32]byte][]crypto.PublicKey
	target       []byte // the running runtime migration's build (nil: none)
}

func (v *view) Admits(rec *api.WorkerRecord) bool {
	return v.target == nil || string(rec.Measurement) == string(v.target)
}

func (v *view) Attested(rec *api.WorkerRecord, height int64) bool {
	return rec != nil && rec.Active(height)
}
func (v *view) Worker(k crypto.PublicKey) *api.WorkerRecord { return v.workers[k] }
func (v *view) Workers() []*api.WorkerRecord {
	var ws []*api.WorkerRecord
	for _, w := range v.workers {
		ws = append(ws, w)
	}
	return ws
}
func (v *view) KeySet(era uint64) *api.KeySet { return v.keySets[era] }
func (v *view) ServingKeyEra() (uint64, bool) {
	_, ok := v.keySets[v.serving]
	return v.serving, ok
}

func (v *view) Rotating() bool { return v.rotating }

// adopt makes set the view's serving key set.
func (v *view) adopt(set *api.KeySet) {
	if v.keySets == nil {
		v.keySets = map[uint64]*api.KeySet{}
	}
	v.keySets[set.Era] = set
	v.serving = set.Era
}
func (v *view) IsGatekeeper(k crypto.PublicKey) bool { return slices.Contains(v.gatekeepers, k) }
func (v *view) Assignable(k crypto.PublicKey) bool   { return !v.unassignable[k] }
func (v *view) SubnetMember(id [32]byte, k crypto.PublicKey) bool {
	return slices.Contains(v.subnets[id], k)
}
func (v *view) Pending(topic string) bool {
	return slices.ContainsFunc(v.egress, func(m api.Message) bool { return m.Topic == topic })
}

// node is one pRuntime's keys and sealer on a chain named by its genesis hash.
type node struct {
	dir    string
	entity *keys.Entity
	sealer *sealing.Sealer
	view   *view
}

func newNode(t *testing.T, genesisHash byte) *node {
	dir := t.TempDir()
	p, err := platform.NewSim(dir, []byte("code"), quiet())
	if err != nil {
		t.Fatal(err)
	}
	s := sealing.NewSealer(p, sealing.Binding{ChainID: "test", GenesisHash: [32]byte{genesisHash}})
	ent, _, err := keys.LoadOrCreateEntity(s, dir)
	if err != nil {
		t.Fatal(err)
	}
	return &node{dir: dir, entity: ent, sealer: s.ForIdentity(ent.Identity.Public()), view: &view{workers: map[crypto.PublicKey]*api.WorkerRecord{}}}
}

func (n *node) start(t *testing.T, gks []crypto.PublicKey, firstStart bool) *Gatekeeper {
	n.view.gatekeepers = gks
	g, err := New(Config{Entity: n.entity, Gatekeepers: gks, Sealer: n.sealer, DataDir: n.dir, Chain: n.view, Log: quiet(),
		Emit: func(origin api.OriginKind, topic string, payload []byte) {
			n.view.egress = append(n.view.egress, api.Message{Origin: api.KeyOrigin(origin, n.entity.Identity.Public()), Topic: topic, Payload: payload})
		}}, firstStart)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (n *node) record(expiresAt int64) *api.WorkerRecord {
	return &api.WorkerRecord{Info: api.WorkerInfo{IdentityKey: n.entity.Identity.Public(), EcdhKey: n.entity.Ecdh.Public()}, ExpiresAt: expiresAt}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// The first genesis gatekeeper creates the MasterKey at its first start
// and announces it only once its own registration is attested, once; a
// restart loads the same key; the second gatekeeper makes none, receives
// it in a share bound to the chain's genesis hash (a copy of its keys on
// another chain cannot open it), and keeps it sealed.
func TestMasterKeyLifecycle(t *testing.T) {
	first, second := newNode(t, 1), newNode(t, 1)
	gks := []crypto.PublicKey{first.entity.Identity.Public(), second.entity.Identity.Public()}
	g1 := first.start(t, gks, true)
	pub, ok := g1.Public(0)
	if !ok {
		t.Fatal("first start of the first gatekeeper: no MasterKey")
	}
	if again, _ := first.start(t, gks, false).Public(0); again != pub {
		t.Fatal("restart did not load the sealed MasterKey")
	}
	if second.start(t, gks, true).Holds(0) {
		t.Fatal("the second gatekeeper made a MasterKey")
	}

	g1.Announce(5)
	if len(first.view.egress) != 0 {
		t.Fatal("announced before its own attested registration")
	}
	first.view.workers[gks[0]] = first.record(10)
	g1.Announce(5)
	g1.Announce(6) // waits in the egress: not again
	if len(first.view.egress) != 1 || first.view.egress[0].Topic != api.TopicMasterKey || string(first.view.egress[0].Payload) != string(pub[:]) {
		t.Fatalf("announcement: %+v", first.view.egress)
	}
	first.view.egress = nil

	// Share: not before the chain adopted the key, not to an expired
	// registration, nor to a worker.
	g1.Share(5, second.record(10), 0)
	genesis := &api.KeySet{T: 1, Members: gks, Commits: [][32]byte{pub}}
	for _, n := range []*node{first, second} {
		n.view.adopt(genesis)
	}
	g1.Announce(7)
	g1.Share(10, second.record(10), 0)
	g1.Share(5, newNode(t, 1).record(10), 0)
	if len(first.view.egress) != 0 {
		t.Fatalf("announced after adoption, or shared with an unattested gatekeeper or a worker: %+v", first.view.egress)
	}
	g1.Share(5, second.record(10), 0)
	if len(first.view.egress) != 1 || first.view.egress[0].Topic != api.TopicMasterKeyShare {
		t.Fatalf("share: %+v", first.view.egress)
	}
	s, err := api.DecodeMasterKeyShare(first.view.egress[0].Payload)
	if err != nil {
		t.Fatal(err)
	}

	// A copy of the second gatekeeper's keys on another chain.
	elsewhere := newNode(t, 2)
	elsewhere.entity = second.entity
	elsewhere.view.adopt(genesis)
	gElsewhere := elsewhere.start(t, gks, false)
	if err := gElsewhere.Receive(gks[0], s); err == nil {
		t.Fatal("the share opened on another chain")
	}
	g2 := second.start(t, gks, false)
	if err := g2.Receive(gks[0], s); err != nil {
		t.Fatal(err)
	}
	if got, _ := g2.Public(0); got != pub {
		t.Fatal("received another key")
	}
	if got, _ := second.start(t, gks, false).Public(0); got != pub {
		t.Fatal("received MasterKey not sealed")
	}
	// A key set committing to another key drops this one, from the
	// sealed file too.
	other := threshold.Suite.Point().Pick(threshold.Suite.RandomStream())
	ob, _ := other.MarshalBinary()
	g2.Adopted(&api.KeySet{T: 1, Members: gks, Commits: [][32]byte{[32]byte(ob)}})
	if g2.Holds(0) || second.start(t, gks, false).Holds(0) {
		t.Fatal("kept a MasterKey the chain did not adopt")
	}
}

// dealKeySet gives each of ns a share of a fresh MasterKey of era with
// threshold t (dealt here by a trusted dealer; the DKG makes them in
// pRuntime) and adopts the key set in every view.
func dealKeySet(t *testing.T, era uint64, th int, ns []*node, gs []*Gatekeeper) (*api.KeySet, kyber.Scalar) {
	t.Helper()
	secret := threshold.Suite.Scalar().Pick(threshold.Suite.RandomStream())
	poly := share.NewPriPoly(threshold.Suite, th, secret, threshold.Suite.RandomStream())
	_, commits := poly.Commit(threshold.Suite.Point().Base()).Info()
	set := &api.KeySet{Era: era, T: uint32(th)}
	for _, c := range commits {
		b, _ := c.MarshalBinary()
		set.Commits = append(set.Commits, [32]byte(b))
	}
	for i, n := range ns {
		set.Members = append(set.Members, n.entity.Identity.Public())
		if err := gs[i].Keep(era, poly.Shares(len(ns))[i].V); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range ns {
		n.view.adopt(set)
	}
	return set, secret
}

// The members of a key set of threshold 2 send partials of an upload's
// key to the same attested workers (not gatekeepers, not expired, not
// below the minimum stake, at most Replicas, by rank); each chosen worker
// opens each member's partial, checks its proof against the member's
// commitment, and any 2 of them give the same contract seed, which is the
// threshold PRF of the (never assembled) MasterKey; 1 gives nothing (P1).
func TestPartialsFromThresholdMembers(t *testing.T) {
	ns := []*node{newNode(t, 1), newNode(t, 1), newNode(t, 1)}
	var gks []crypto.PublicKey
	for _, n := range ns {
		gks = append(gks, n.entity.Identity.Public())
	}
	gs := make([]*Gatekeeper, len(ns))
	for i, n := range ns {
		gs[i] = n.start(t, gks, i == 0)
		n.view.workers[gks[i]] = n.record(10)
	}
	set, secret := dealKeySet(t, 3, 2, ns, gs)
	workers := map[crypto.PublicKey]*node{}
	for i := range 6 {
		w := newNode(t, 1)
		expires := int64(10)
		switch i {
		case 0:
			expires = 5 // expired at height 5
		case 1, 2: // below the minimum stake, or found unresponsive
			for _, n := range ns {
				if n.view.unassignable == nil {
					n.view.unassignable = map[crypto.PublicKey]bool{}
				}
				n.view.unassignable[w.entity.Identity.Public()] = true
			}
		default:
			workers[w.entity.Identity.Public()] = w
		}
		for _, n := range ns {
			n.view.workers[w.entity.Identity.Public()] = w.record(expires)
		}
	}
	u := Upload{ID: [32]byte{1}, Deployer: crypto.PublicKey{2}, CodeHash: [32]byte{3}, Replicas: 3, KeyEra: set.Era}
	var sent []*api.KeyPartials
	for i, n := range ns {
		n.view.egress = nil
		gs[i].Grant(5, u)
		if len(n.view.egress) != 1 || n.view.egress[0].Topic != api.TopicKeyPartials || n.view.egress[0].Origin.Kind != api.OriginWorker {
			t.Fatalf("member %d: egress %+v", i, n.view.egress)
		}
		p, err := api.DecodeKeyPartials(n.view.egress[0].Payload)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, p)
	}
	for _, p := range sent[1:] {
		if p.Round() != sent[0].Round() {
			t.Fatal("members picked different rounds")
		}
	}
	if len(sent[0].Workers) != 3 {
		t.Fatalf("%d workers, want 3 (the eligible ones)", len(sent[0].Workers))
	}
	cs, err := threshold.DecodeCommits(set.Commits)
	if err != nil {
		t.Fatal(err)
	}
	h := threshold.ContractPoint(u.ID, 0, set.Era)
	want, _ := threshold.ContractSeed(threshold.Suite.Point().Mul(secret, h), u.ID, 0)
	for j, k := range sent[0].Workers {
		w := workers[k.Worker]
		if w == nil {
			t.Fatalf("partials for %s: expired, unstaked, unresponsive or a gatekeeper", k.Worker.Short())
		}
		var parts []*threshold.Partial
		for i, p := range sent {
			ch, err := channel.New(w.entity.Ecdh, p.MemberE, api.ChannelPurposeKeyPartial)
			if err != nil {
				t.Fatal(err)
			}
			b, err := ch.Open(p.Workers[j].Sealed, p.AD(k.Worker))
			if err != nil {
				t.Fatalf("member %d's partial does not open: %v", i, err)
			}
			if _, err := ch.Open(p.Workers[j].Sealed, p.AD(gks[0])); err == nil {
				t.Fatal("a partial opens with another worker's additional data")
			}
			part, err := threshold.DecodePartial(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := threshold.Verify(threshold.MemberCommitment(cs, i), h, part); err != nil {
				t.Fatalf("member %d: %v", i, err)
			}
			parts = append(parts, part)
		}
		if _, err := threshold.Combine(parts[:1], 2, 3); !errors.Is(err, threshold.ErrTooFew) {
			t.Fatalf("one partial combined: %v", err)
		}
		for _, pair := range [][]*threshold.Partial{{parts[0], parts[1]}, {parts[1], parts[2]}, {parts[2], parts[0]}} {
			xh, err := threshold.Combine(pair, 2, 3)
			if err != nil {
				t.Fatal(err)
			}
			if seed, _ := threshold.ContractSeed(xh, u.ID, 0); seed != want {
				t.Fatal("a pair of partials gives another seed than the MasterKey's PRF")
			}
		}
	}
	// A member of no key set of that era, or without its share, sends
	// nothing.
	ns[0].view.egress = nil
	gs[0].Grant(5, Upload{ID: [32]byte{1}, Replicas: 3, KeyEra: 9})
	delete(gs[1].shares, set.Era)
	gs[1].Grant(5, u)
	if len(ns[0].view.egress)+len(ns[1].view.egress) != 1 { // ns[1]'s egress still holds its first grant
		t.Fatalf("sent partials without a share: %+v %+v", ns[0].view.egress, ns[1].view.egress)
	}
}

// A grant names only workers satisfying the upload's requirements: the
// subnet's members, on the platform, with the declared cores, memory and
// pRuntime version; when none does, nothing is granted.
func TestGrantRequirements(t *testing.T) {
	gk := newNode(t, 1)
	gks := []crypto.PublicKey{gk.entity.Identity.Public()}
	g := gk.start(t, gks, true)
	pub, _ := g.Public(0)
	gk.view.adopt(&api.KeySet{T: 1, Members: gks, Commits: [][32]byte{pub}})
	type spec struct {
		platform string
		cores    uint32
		memMB    uint64
		version  uint32
		inSubnet bool
	}
	specs := []spec{
		{api.PlatformSim, 2, 2048, 2, true},
		{api.PlatformTDX, 8, 16384, 2, true},
		{api.PlatformTDX, 8, 16384, 3, false},
		{api.PlatformSim, 16, 65536, 3, false},
	}
	var ids []crypto.PublicKey
	gk.view.subnets = map[[32]byte][]crypto.PublicKey{}
	sn := [32]byte{9}
	for _, sp := range specs {
		w := newNode(t, 1)
		rec := w.record(100)
		rec.Platform, rec.Info.Cores, rec.Info.MemoryMB, rec.Info.RuntimeVersion = sp.platform, sp.cores, sp.memMB, sp.version
		gk.view.workers[rec.Info.IdentityKey] = rec
		ids = append(ids, rec.Info.IdentityKey)
		if sp.inSubnet {
			gk.view.subnets[sn] = append(gk.view.subnets[sn], rec.Info.IdentityKey)
		}
	}
	for _, c := range []struct {
		name string
		req  api.Requirements
		want []int // indexes of the workers granted
	}{
		{"none", api.Requirements{}, []int{0, 1, 2, 3}},
		{"subnet", api.Requirements{Subnet: sn}, []int{0, 1}},
		{"subnet and tdx", api.Requirements{Subnet: sn, Platform: api.PlatformTDX}, []int{1}},
		{"cores", api.Requirements{MinCores: 8}, []int{1, 2, 3}},
		{"memory", api.Requirements{MinMemoryMB: 20000}, []int{3}},
		{"version", api.Requirements{MinRuntimeVersion: 3}, []int{2, 3}},
		{"subnet and version: none", api.Requirements{Subnet: sn, MinRuntimeVersion: 3}, nil},
		{"unknown subnet: none", api.Requirements{Subnet: [32]byte{8}}, nil},
	} {
		gk.view.egress = nil
		g.Grant(5, Upload{ID: [32]byte{1}, Deployer: crypto.PublicKey{2}, CodeHash: [32]byte{3}, Replicas: 16, Requirements: c.req})
		if c.want == nil {
			if len(gk.view.egress) != 0 {
				t.Fatalf("%s: granted with no worker satisfying the requirements", c.name)
			}
			continue
		}
		if len(gk.view.egress) != 1 {
			t.Fatalf("%s: egress %+v", c.name, gk.view.egress)
		}
		p, err := api.DecodeKeyPartials(gk.view.egress[0].Payload)
		if err != nil {
			t.Fatal(err)
		}
		got, want := p.WorkerKeys(), []crypto.PublicKey(nil)
		for _, i := range c.want {
			want = append(want, ids[i])
		}
		slices.SortFunc(got, func(a, b crypto.PublicKey) int { return slices.Compare(a[:], b[:]) })
		slices.SortFunc(want, func(a, b crypto.PublicKey) int { return slices.Compare(a[:], b[:]) })
		if !slices.Equal(got, want) {
			t.Fatalf("%s: granted to %d workers, want %d", c.name, len(got), len(want))
		}
	}
}

// While a runtime migration runs, a grant picks only workers of its
// target build, and a deployed contract's workers of a retired build do
// not count against its replicas: a contract with 2 replicas on old
// builds gets 2 new-build workers beside them, one with 1 new-build
// worker already gets 1 more, one with 2 gets none.
func TestGrantDuringMigration(t *testing.T) {
	gk := newNode(t, 1)
	gks := []crypto.PublicKey{gk.entity.Identity.Public()}
	g := gk.start(t, gks, true)
	pub, _ := g.Public(0)
	gk.view.adopt(&api.KeySet{T: 1, Members: gks, Commits: [][32]byte{pub}})
	oldBuild, newBuild := []byte("old build"), []byte("new build")
	var olds, news []crypto.PublicKey
	for i := range 6 {
		rec := newNode(t, 1).record(100)
		rec.Measurement = oldBuild
		if i >= 2 {
			rec.Measurement = newBuild
		}
		gk.view.workers[rec.Info.IdentityKey] = rec
		if i < 2 {
			olds = append(olds, rec.Info.IdentityKey)
		} else {
			news = append(news, rec.Info.IdentityKey)
		}
	}
	granted := func(u Upload) []crypto.PublicKey {
		t.Helper()
		gk.view.egress = nil
		g.Grant(5, u)
		if len(gk.view.egress) == 0 {
			return nil
		}
		p, err := api.DecodeKeyPartials(gk.view.egress[0].Payload)
		if err != nil {
			t.Fatal(err)
		}
		return p.WorkerKeys()
	}
	up := func(current ...crypto.PublicKey) Upload {
		u := Upload{ID: [32]byte{1}, Deployer: crypto.PublicKey{2}, CodeHash: [32]byte{3}, Replicas: 2, Current: current, Deployed: len(current) > 0}
		for _, w := range current {
			if slices.Contains(olds, w) {
				u.Leaving = append(u.Leaving, w)
			}
		}
		return u
	}
	// No migration: a fresh upload may get old-build workers.
	if got := granted(up()); len(got) != 2 {
		t.Fatalf("no migration: granted %d workers, want 2", len(got))
	}
	gk.view.target = newBuild
	for _, c := range []struct {
		name    string
		current []crypto.PublicKey
		want    int
	}{
		{"new upload", nil, 2},
		{"two old workers", olds, 2},
		{"two old and one new", append(slices.Clone(olds), news[0]), 1},
		{"two new", news[:2], 0},
	} {
		got := granted(up(c.current...))
		if len(got) != c.want {
			t.Fatalf("%s: granted %d workers, want %d", c.name, len(got), c.want)
		}
		for _, w := range got {
			if !slices.Contains(news, w) || slices.Contains(c.current, w) {
				t.Fatalf("%s: granted %s, not a new-build worker outside the contract", c.name, w.Short())
			}
		}
	}
}

// A key epoch's partials go to the contract's current workers in the
// record's order, and any T of them give the epoch's seed (the PRF of
// the era's MasterKey on the contract's point for that epoch); a worker
// without an attested registration stops them. Forget destroys a
// retired era's share in memory and in the sealed file (P2): the member
// sends nothing for that era any more.
func TestRekeyPartialsAndForget(t *testing.T) {
	ns := []*node{newNode(t, 1), newNode(t, 1), newNode(t, 1)}
	var gks []crypto.PublicKey
	for _, n := range ns {
		gks = append(gks, n.entity.Identity.Public())
	}
	gs := make([]*Gatekeeper, len(ns))
	for i, n := range ns {
		gs[i] = n.start(t, gks, i == 0)
	}
	set, secret := dealKeySet(t, 3, 2, ns, gs)
	w1, w2 := newNode(t, 1), newNode(t, 1)
	for _, n := range ns {
		n.view.workers[w1.entity.Identity.Public()] = w1.record(10)
		n.view.workers[w2.entity.Identity.Public()] = w2.record(10)
	}
	contract := crypto.PublicKey{7}
	u := Upload{ID: [32]byte{1}, Replicas: 2, Current: []crypto.PublicKey{w2.entity.Identity.Public(), w1.entity.Identity.Public()}, KeyEra: 0, Deployed: true}
	var sent []*api.KeyPartials
	for i, n := range ns[:2] {
		n.view.egress = nil
		gs[i].Rekey(5, u, contract, set.Era, 1)
		if len(n.view.egress) != 1 {
			t.Fatalf("member %d: egress %+v", i, n.view.egress)
		}
		p, err := api.DecodeKeyPartials(n.view.egress[0].Payload)
		if err != nil {
			t.Fatal(err)
		}
		if p.Purpose != api.KeyForEpoch || p.Contract != contract || p.Era != set.Era || p.Epoch != 1 || !slices.Equal(p.WorkerKeys(), u.Current) {
			t.Fatalf("member %d: partials %+v", i, p)
		}
		sent = append(sent, p)
	}
	h := threshold.ContractPoint(u.ID, 1, set.Era)
	want, _ := threshold.ContractSeed(threshold.Suite.Point().Mul(secret, h), u.ID, 1)
	var parts []*threshold.Partial
	for _, p := range sent {
		ch, err := channel.New(w2.entity.Ecdh, p.MemberE, api.ChannelPurposeKeyPartial)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ch.Open(p.Workers[0].Sealed, p.AD(u.Current[0]))
		if err != nil {
			t.Fatal(err)
		}
		part, err := threshold.DecodePartial(b)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, part)
	}
	xh, err := threshold.Combine(parts, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if seed, _ := threshold.ContractSeed(xh, u.ID, 1); seed != want {
		t.Fatal("the epoch's partials give another seed")
	}
	// A worker of the contract without an attested registration.
	ns[2].view.egress = nil
	delete(ns[2].view.workers, w1.entity.Identity.Public())
	gs[2].Rekey(5, u, contract, set.Era, 1)
	if len(ns[2].view.egress) != 0 {
		t.Fatal("partials sent with a worker the member cannot seal to")
	}
	// Forget: gone from memory and from the sealed file.
	if shares, err := LoadShares(ns[0].sealer, ns[0].dir); err != nil || shares[set.Era] == nil {
		t.Fatalf("share not sealed before: %v", err)
	}
	if err := gs[0].Forget(set.Era); err != nil {
		t.Fatal(err)
	}
	if gs[0].Holds(set.Era) {
		t.Fatal("share kept in memory")
	}
	shares, err := LoadShares(ns[0].sealer, ns[0].dir)
	if err != nil || shares[set.Era] != nil {
		t.Fatalf("share still sealed on disk: %v", err)
	}
	ns[0].view.egress = nil
	gs[0].Rekey(5, u, contract, set.Era, 1)
	gs[0].Grant(5, Upload{ID: [32]byte{2}, Replicas: 1, KeyEra: set.Era})
	if len(ns[0].view.egress) != 0 {
		t.Fatal("a member sent partials of a forgotten era")
	}
}
