package gatekeeper

import (
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/platform"
	"github.com/phalago/phala/internal/enclave/sealing"
)

// view is the chain-derived state the engine would give (Chain): the
// registrations in the queue, all attested until expiry, and the egress.
type view struct {
	workers   map[crypto.PublicKey]*api.WorkerRecord
	masterPub crypto.PublicKey
	egress    []api.Message
	// unassignable: workers below the minimum stake, or found
	// unresponsive (not Assignable).
	unassignable map[crypto.PublicKey]bool
	gatekeepers  []crypto.PublicKey // serving or elected
	subnets      map[[32]byte][]crypto.PublicKey
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
func (v *view) MasterPublic() crypto.PublicKey       { return v.masterPub }
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
		Emit: func(topic string, payload []byte) {
			n.view.egress = append(n.view.egress, api.Message{Topic: topic, Payload: payload})
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
	pub, ok := g1.MasterPublic()
	if !ok {
		t.Fatal("first start of the first gatekeeper: no MasterKey")
	}
	if again, _ := first.start(t, gks, false).MasterPublic(); again != pub {
		t.Fatal("restart did not load the sealed MasterKey")
	}
	if _, ok := second.start(t, gks, true).MasterPublic(); ok {
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

	// Share: not to an expired registration, nor to a worker.
	g1.Share(10, second.record(10))
	g1.Share(5, newNode(t, 1).record(10))
	if len(first.view.egress) != 0 {
		t.Fatalf("shared with an unattested gatekeeper or a worker: %+v", first.view.egress)
	}
	g1.Share(5, second.record(10))
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
	gElsewhere := elsewhere.start(t, gks, false)
	if err := gElsewhere.Receive(gks[0], s); err == nil {
		t.Fatal("the share opened on another chain")
	}
	g2 := second.start(t, gks, false)
	if err := g2.Receive(gks[0], s); err != nil {
		t.Fatal(err)
	}
	if got, _ := g2.MasterPublic(); got != pub {
		t.Fatal("received another key")
	}
	if got, _ := second.start(t, gks, false).MasterPublic(); got != pub {
		t.Fatal("received MasterKey not sealed")
	}
	// The chain adopting another key drops this one.
	g2.Adopted(crypto.PublicKey{7})
	if _, ok := g2.MasterPublic(); ok {
		t.Fatal("kept a MasterKey the chain did not adopt")
	}
}

// Two gatekeepers holding the MasterKey grant an upload's keys to the same
// attested workers (not gatekeepers, not expired, not below the minimum
// stake, at most Replicas, by rank), and each chosen worker opens the contract key the grant names.
func TestGrantSameWorkersOnEveryGatekeeper(t *testing.T) {
	first, second := newNode(t, 1), newNode(t, 1)
	gks := []crypto.PublicKey{first.entity.Identity.Public(), second.entity.Identity.Public()}
	g1 := first.start(t, gks, true)
	g2 := second.start(t, gks, false)
	first.view.workers[gks[1]] = second.record(10)
	g1.Share(5, second.record(10))
	s, _ := api.DecodeMasterKeyShare(first.view.egress[0].Payload)
	if err := g2.Receive(gks[0], s); err != nil {
		t.Fatal(err)
	}
	workers := map[crypto.PublicKey]*node{}
	for i := range 6 {
		w := newNode(t, 1)
		expires := int64(10)
		switch i {
		case 0:
			expires = 5 // expired at height 5
		case 1: // below the minimum stake
			for _, n := range []*node{first, second} {
				if n.view.unassignable == nil {
					n.view.unassignable = map[crypto.PublicKey]bool{}
				}
				n.view.unassignable[w.entity.Identity.Public()] = true
			}
		default:
			workers[w.entity.Identity.Public()] = w
		}
		for _, n := range []*node{first, second} {
			n.view.workers[w.entity.Identity.Public()] = w.record(expires)
		}
	}
	second.view.workers[gks[1]] = second.record(10)
	// One worker the chain found unresponsive: never picked.
	for k := range workers {
		for _, n := range []*node{first, second} {
			n.view.unassignable[k] = true
		}
		delete(workers, k)
		break
	}
	u := Upload{ID: [32]byte{1}, Deployer: crypto.PublicKey{2}, CodeHash: [32]byte{3}, Replicas: 3}
	var grants []*api.ContractKeyGrant
	for _, p := range []struct {
		n *node
		g *Gatekeeper
	}{{first, g1}, {second, g2}} {
		p.n.view.egress = nil
		p.g.Grant(5, u)
		if len(p.n.view.egress) != 1 || p.n.view.egress[0].Topic != api.TopicContractKey {
			t.Fatalf("grant: %+v", p.n.view.egress)
		}
		gr, err := api.DecodeContractKeyGrant(p.n.view.egress[0].Payload)
		if err != nil {
			t.Fatal(err)
		}
		grants = append(grants, gr)
	}
	pick := func(gr *api.ContractKeyGrant) []crypto.PublicKey {
		var ks []crypto.PublicKey
		for _, k := range gr.Workers {
			ks = append(ks, k.Worker)
		}
		return ks
	}
	if a, b := pick(grants[0]), pick(grants[1]); len(a) != 3 || !slices.Equal(a, b) || grants[0].Identity != grants[1].Identity {
		t.Fatalf("gatekeepers disagree: %v / %v", a, b)
	}
	for _, k := range grants[0].Workers {
		w := workers[k.Worker]
		if w == nil {
			t.Fatalf("granted to %s: expired, unstaked, unresponsive or a gatekeeper", k.Worker.Short())
		}
		ch, err := channel.New(w.entity.Ecdh, grants[0].GatekeeperE, api.ChannelPurposeContractKey)
		if err != nil {
			t.Fatal(err)
		}
		seed, err := ch.Open(k.Sealed, grants[0].AD(k.Worker))
		if err != nil {
			t.Fatal(err)
		}
		ck, err := keys.ContractKeysFromSeed([crypto.SeedSize]byte(seed))
		if err != nil || ck.Identity.Public() != grants[0].Identity {
			t.Fatalf("opened key %v: %v", ck, err)
		}
	}
}

// A grant names only workers satisfying the upload's requirements: the
// subnet's members, on the platform, with the declared cores, memory and
// pRuntime version; when none does, nothing is granted.
func TestGrantRequirements(t *testing.T) {
	gk := newNode(t, 1)
	gks := []crypto.PublicKey{gk.entity.Identity.Public()}
	g := gk.start(t, gks, true)
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
		gr, err := api.DecodeContractKeyGrant(gk.view.egress[0].Payload)
		if err != nil {
			t.Fatal(err)
		}
		var got, want []crypto.PublicKey
		for _, k := range gr.Workers {
			got = append(got, k.Worker)
		}
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
