package engine

import (
	"crypto/sha256"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// Subnets and requirements end to end, with real pRuntimes: three
// workers, a subnet of two. A deployment to the subnet lands only on its
// members (asked for three replicas, it gets the two); one whose
// requirements no worker meets stays pending, and the client's status
// says why; one to an empty subnet waits with that reason until the
// owner adds a worker, which the gatekeeper's pRuntime learns from the
// queue and then provisions it to.
func TestSubnetDeployment(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + pRuntimes")
	}
	ch := newChain(t)
	gk := ch.engine(t, ch.gkDir)
	ws := []*Engine{ch.engine(t, t.TempDir()), ch.engine(t, t.TempDir()), ch.engine(t, t.TempDir())}
	all := append([]*Engine{gk}, ws...)
	bobS, aliceS := ch.c.NewSigner(bob), ch.c.NewSigner(alice)
	for _, e := range all {
		register(t, ch, e, bob)
	}
	bobS.Resync()
	relay(t, ch, bobS, all...)
	if info := ws[0].WorkerInfo(bob.Public()); info.Cores == 0 || info.RuntimeVersion != Version {
		t.Fatalf("declared worker info %+v", info)
	}

	submit := func(c api.Call) {
		t.Helper()
		if _, err := aliceS.Submit(ctx(t), c); err != nil {
			t.Fatal(err)
		}
	}
	sn, empty := api.SubnetID(alice.Public(), 0), api.SubnetID(alice.Public(), 1)
	submit(&api.SubnetCreate{Name: "two"})
	submit(&api.SubnetCreate{Name: "empty"})
	submit(&api.SubnetMember{Subnet: sn, Worker: ws[0].Identity()})
	submit(&api.SubnetMember{Subnet: sn, Worker: ws[1].Identity()})

	code := emitterWasm(t)
	seq := uint64(0)
	upload := func(req api.Requirements) [32]byte {
		t.Helper()
		submit(&api.UploadContract{Code: gz(t, code), Replicas: 3, Requirements: req})
		seq++
		return api.UploadID(alice.Public(), sha256.Sum256(code), seq-1)
	}
	running := func(id [32]byte) *api.ContractRecord {
		t.Helper()
		var rec *api.ContractRecord
		waitFor(t, 90*time.Second, "the contract running", func() bool {
			relay(t, ch, bobS, all...)
			st, err := ch.c.UploadStatus(ctx(t), id)
			if err != nil {
				t.Fatal(err)
			}
			rec = st.Record
			return rec != nil && rec.Status == api.ContractRunning
		})
		return rec
	}
	pending := func(id [32]byte, want string) {
		t.Helper()
		for range 3 {
			relay(t, ch, bobS, all...)
		}
		st, err := ch.c.UploadStatus(ctx(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Record != nil || st.Pending == nil || !strings.Contains(st.Reason, want) {
			t.Fatalf("upload %x: record %+v, reason %q, want pending with %q", id[:4], st.Record, st.Reason, want)
		}
	}

	onSubnet := upload(api.Requirements{Subnet: sn})
	rec := running(onSubnet)
	got := slices.Clone(rec.Workers)
	want := []crypto.PublicKey{ws[0].Identity(), ws[1].Identity()}
	less := func(a, b crypto.PublicKey) int { return slices.Compare(a[:], b[:]) }
	slices.SortFunc(got, less)
	slices.SortFunc(want, less)
	if !slices.Equal(got, want) || rec.Requirements.Subnet != sn {
		t.Fatalf("deployed to %d workers %v, want the subnet's two", len(rec.Workers), rec.Workers)
	}
	waitFor(t, 30*time.Second, "both members running it", func() bool {
		relay(t, ch, bobS, all...)
		_, a := ws[0].ContractRoots()[rec.Identity]
		_, b := ws[1].ContractRoots()[rec.Identity]
		return a && b
	})
	if _, ok := ws[2].ContractRoots()[rec.Identity]; ok {
		t.Fatal("a worker outside the subnet runs the subnet's contract")
	}

	tooBig := upload(api.Requirements{Subnet: sn, MinCores: 1 << 20})
	pending(tooBig, "no worker satisfies the requirements")
	pending(tooBig, "fewer than 1048576")
	tdx := upload(api.Requirements{Platform: api.PlatformTDX})
	pending(tdx, `platform "sim", not "tdx"`)

	waiting := upload(api.Requirements{Subnet: empty})
	pending(waiting, "has no attested staked worker")
	submit(&api.SubnetMember{Subnet: empty, Worker: ws[2].Identity()})
	rec = running(waiting)
	if len(rec.Workers) != 1 || rec.Workers[0] != ws[2].Identity() {
		t.Fatalf("the empty subnet's contract went to %v, want the added worker", rec.Workers)
	}
}
