package app

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// event returns the value of attribute key of the first event of type typ
// in r ("" if none).
func event(r *abci.ExecTxResult, typ, key string) string {
	for _, ev := range r.Events {
		for _, a := range ev.Attributes {
			if ev.Type == typ && a.Key == key {
				return a.Value
			}
		}
	}
	return ""
}

func (h *harness) subnet(id [32]byte) *api.SubnetRecord {
	h.t.Helper()
	res := h.query(api.QuerySubnet, id[:], true)
	if res.Value == nil {
		return nil
	}
	if res.ProofOps == nil || len(res.ProofOps.Ops) != 2 {
		h.t.Fatal("subnet query without proof")
	}
	s, err := api.DecodeSubnetRecord(res.Value)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// Subnets: the owner creates one (its id derived from the owner and its
// count, proved by /subnet), adds and removes workers, each change going
// to pRuntimes with the whole member list; another account cannot change
// it, and a bad change (unknown subnet, repeated add, removing a
// non-member, invalid key, a 257th member) fails and changes nothing.
func TestSubnets(t *testing.T) {
	h := newHarness(t, genesis())
	h.block()
	id := api.SubnetID(alice.Public(), 0)
	w1, w2 := newWorker(t).identity.Public(), newWorker(t).identity.Public()
	res := h.block(h.tx(alice, 0, &api.SubnetCreate{Name: "tdx pool"}), h.tx(alice, 1, &api.SubnetMember{Subnet: id, Worker: w1}))
	for i, r := range res.TxResults {
		if r.Code != 0 {
			t.Fatalf("tx %d: %s", i, r.Log)
		}
	}
	if got := event(res.TxResults[0], "subnet_created", "subnet"); got != hex.EncodeToString(id[:]) {
		t.Fatalf("no subnet_created event: %v", res.TxResults[0].Events)
	}
	s := h.subnet(id)
	if s == nil || s.Owner != alice.Public() || s.Name != "tdx pool" || len(s.Members) != 1 || s.Members[0] != w1 {
		t.Fatalf("subnet %+v", s)
	}
	before := h.query(api.QuerySubnet, id[:], false).Value
	cases := []struct {
		name string
		tx   []byte
		want string
	}{
		{"not the owner", h.tx(bob, 0, &api.SubnetMember{Subnet: id, Worker: w2}), "not the subnet's owner"},
		{"not the owner removes", h.tx(bob, 1, &api.SubnetMember{Remove: true, Subnet: id, Worker: w1}), "not the subnet's owner"},
		{"unknown subnet", h.tx(alice, 2, &api.SubnetMember{Subnet: [32]byte{1}, Worker: w2}), "no such subnet"},
		{"already a member", h.tx(alice, 3, &api.SubnetMember{Subnet: id, Worker: w1}), "already a member"},
		{"not a member", h.tx(alice, 4, &api.SubnetMember{Remove: true, Subnet: id, Worker: w2}), "not a member"},
		{"invalid key", h.tx(alice, 5, &api.SubnetMember{Subnet: id, Worker: crypto.PublicKey{}}), "not a valid identity key"},
	}
	txs := make([][]byte, len(cases))
	for i, c := range cases {
		txs[i] = c.tx
	}
	res = h.block(txs...)
	for i, c := range cases {
		if r := res.TxResults[i]; api.Code(r.Code) != api.CodeInvalidCall || !strings.Contains(r.Log, c.want) {
			t.Errorf("%s: code %s %q, want invalid call with %q", c.name, api.Code(r.Code), r.Log, c.want)
		}
	}
	if after := h.query(api.QuerySubnet, id[:], false).Value; string(after) != string(before) {
		t.Fatal("a refused change changed the subnet")
	}
	for _, m := range h.messages(h.height).Messages {
		if m.Topic == api.TopicSubnetChanged {
			t.Fatal("a refused change was announced")
		}
	}
	// Add w2, remove w1: pRuntimes get the member lists.
	res = h.block(h.tx(alice, h.nonce(alice), &api.SubnetMember{Subnet: id, Worker: w2}), h.tx(alice, h.nonce(alice)+1, &api.SubnetMember{Remove: true, Subnet: id, Worker: w1}))
	for i, r := range res.TxResults {
		if r.Code != 0 {
			t.Fatalf("tx %d: %s", i, r.Log)
		}
	}
	var lists [][]crypto.PublicKey
	for _, m := range h.messages(h.height).Messages {
		if m.Topic == api.TopicSubnetChanged {
			c, err := api.DecodeSubnetChanged(m.Payload)
			if err != nil || c.Subnet != id || m.Origin != api.ModuleOrigin("subnet") {
				t.Fatalf("subnet message %+v %v", c, err)
			}
			lists = append(lists, c.Members)
		}
	}
	if len(lists) != 2 || len(lists[0]) != 2 || len(lists[1]) != 1 || lists[1][0] != w2 {
		t.Fatalf("announced member lists %v", lists)
	}
	// Bounded: MaxSubnetMembers, then full.
	n := h.nonce(alice)
	txs = nil
	for i := 1; i <= api.MaxSubnetMembers; i++ {
		k, _, _ := crypto.GenerateKeyPair()
		txs = append(txs, h.tx(alice, n+uint64(i-1), &api.SubnetMember{Subnet: id, Worker: k.Public()}))
	}
	res = h.block(txs...)
	if r := res.TxResults[len(txs)-2]; r.Code != 0 {
		t.Fatalf("member %d: %s", api.MaxSubnetMembers, r.Log)
	}
	if r := res.TxResults[len(txs)-1]; api.Code(r.Code) != api.CodeInvalidCall || !strings.Contains(r.Log, "subnet full") {
		t.Fatalf("member %d: %s", api.MaxSubnetMembers+1, r.Log)
	}
	if s := h.subnet(id); len(s.Members) != api.MaxSubnetMembers {
		t.Fatalf("%d members", len(s.Members))
	}
	// A second subnet of the same owner gets the next id.
	res = h.block(h.tx(alice, h.nonce(alice), &api.SubnetCreate{}))
	if res.TxResults[0].Code != 0 || h.subnet(api.SubnetID(alice.Public(), 1)) == nil {
		t.Fatalf("second subnet: %s", res.TxResults[0].Log)
	}
}

// Deployment requirements on chain: an upload to an unknown subnet is
// refused; one no worker satisfies says so (contract_unsatisfied) and
// keeps its requirements in the pending record; the contracts module
// ignores a grant naming a worker outside the subnet or short of the
// hardware requirements, and accepts one naming a member, whose record
// keeps the requirements.
func TestGrantRequirements(t *testing.T) {
	gk, w1, w2 := newWorker(t), newWorker(t), newWorker(t)
	g := genesis()
	g.Gatekeepers = []crypto.PublicKey{gk.identity.Public()}
	g.Params.MinWorkerStake = 0
	h := newHarness(t, g)
	h.block()
	w1.info.Cores, w1.info.MemoryMB, w1.info.RuntimeVersion = 4, 8192, 2
	w2.info.Cores, w2.info.MemoryMB, w2.info.RuntimeVersion = 16, 65536, 2
	sn := api.SubnetID(alice.Public(), 0)
	res := h.block(h.tx(bob, 0, h.register(h.cite(gk.info))), h.tx(bob, 1, h.register(h.cite(w1.info))), h.tx(bob, 2, h.register(h.cite(w2.info))),
		h.tx(alice, 0, &api.SubnetCreate{Name: "mine"}), h.tx(alice, 1, &api.SubnetMember{Subnet: sn, Worker: w1.identity.Public()}))
	for i, r := range res.TxResults {
		if r.Code != 0 {
			t.Fatalf("tx %d: %s", i, r.Log)
		}
	}
	code := []byte("\x00asm\x01\x00\x00\x00")
	hash := sha256.Sum256(code)
	upload := func(req api.Requirements) *abci.ExecTxResult {
		return h.block(h.tx(alice, h.nonce(alice), &api.UploadContract{Code: gzipped(t, code), Replicas: 2, Requirements: req})).TxResults[0]
	}
	if r := upload(api.Requirements{Subnet: [32]byte{9}}); api.Code(r.Code) != api.CodeInvalidCall || !strings.Contains(r.Log, "no such subnet") {
		t.Fatalf("upload to an unknown subnet: %s %s", api.Code(r.Code), r.Log)
	}
	for _, c := range []struct {
		req  api.Requirements
		want string
	}{
		{api.Requirements{Subnet: sn, MinCores: 8}, "no worker satisfies the requirements"},
		{api.Requirements{Platform: api.PlatformTDX}, `platform "sim", not "tdx"`},
		{api.Requirements{MinRuntimeVersion: 3}, "older than 3"},
	} {
		r := upload(c.req)
		if r.Code != 0 || !strings.Contains(event(r, "contract_unsatisfied", "reason"), c.want) {
			t.Fatalf("%s: %s, unsatisfied %q, want %q", c.req.String(), r.Log, event(r, "contract_unsatisfied", "reason"), c.want)
		}
	}
	req := api.Requirements{Subnet: sn, MinCores: 4}
	if r := upload(req); r.Code != 0 || event(r, "contract_unsatisfied", "reason") != "" {
		t.Fatalf("satisfiable upload: %s %v", r.Log, r.Events)
	}
	id := api.UploadID(alice.Public(), hash, 3)
	p, err := api.DecodeUploadPending(h.query(api.QueryUploadPending, id[:], false).Value)
	if err != nil || p.Requirements != req {
		t.Fatalf("pending upload %+v %v", p, err)
	}
	contract, _, _ := crypto.GenerateKeyPair()
	h.announceMasterKey(gk)
	grant := func(ws ...*worker) *abci.ExecTxResult {
		return h.provision(gk, id, contract.Public(), contract.Public(), ws...)
	}
	deployed := func() bool {
		_, ok := h.deployedAs(id)
		return ok
	}
	if r := grant(w1, w2); r.Code != 0 || deployed() || !strings.Contains(event(r, "contract_grant_ignored", "reason"), "not a member of subnet") {
		t.Fatalf("grant naming a non-member: %s deployed %v events %v", r.Log, deployed(), r.Events)
	}
	if r := grant(w1); r.Code != 0 || !deployed() {
		t.Fatalf("grant naming the member: %s %v", r.Log, r.Events)
	}
	rec, err := api.DecodeContractRecord(h.query(api.QueryContract, contract.Public().Bytes(), false).Value)
	if err != nil || rec.Requirements != req || len(rec.Workers) != 1 || rec.Workers[0] != w1.identity.Public() {
		t.Fatalf("record %+v %v", rec, err)
	}
}
