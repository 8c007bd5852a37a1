package engine

import (
	"bytes"
	"testing"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

func sampleState() *state {
	s := newState()
	s.headerHeight, s.dispatched, s.blockTime = 9, 7, 12345
	s.appHash[8] = bytes.Repeat([]byte{1}, 32)
	s.headerTime[8], s.headerTime[9] = 1, 2
	s.eras = api.GenesisEras(5)
	if err := s.eras.Change(11, 7); err != nil {
		panic(err)
	}
	s.nextSeq[string(api.ModuleOrigin("registry").Encode())] = 3
	k := crypto.MustKeyPairFromURI("//W")
	s.workers[k.Public()] = &api.WorkerRecord{Info: api.WorkerInfo{IdentityKey: k.Public()}, Platform: "sim", ExpiresAt: 10}
	o := api.KeyOrigin(api.OriginWorker, k.Public())
	s.egressSeq[string(o.Encode())] = 1
	s.egress = []api.SignedMessage{api.SignMessage("c", api.Message{Origin: o, Topic: "t"}, k)}
	s.allowlist, s.minVersion = []api.HexBytes{{1, 2}, {3}}, 4
	s.params.AttestationWindow, s.hashFloor = 200, 2
	s.blockHashes[5], s.blockHashes[6] = [api.BlockHashSize]byte{5}, [api.BlockHashSize]byte{6}
	s.params.MinWorkerStake, s.nodeStake[k.Public()] = 100, 250
	s.subnets[[32]byte{4}] = []crypto.PublicKey{k.Public()}
	s.checkpoints[k.Public()] = api.Checkpoint{Height: 6, Seq: 3, Calls: 2, Root: [32]byte{7}}
	s.lastCommand[k.Public()] = 6
	s.uploads[[32]byte{5}] = &upload{deployer: k.Public(), replicas: 2, req: api.Requirements{Subnet: [32]byte{4}, Platform: "tdx", MinCores: 2, MinMemoryMB: 1024, MinRuntimeVersion: 2}}
	c := crypto.MustKeyPairFromURI("//C").Public()
	s.deployed[c] = &deployment{upload: [32]byte{5}, workers: []crypto.PublicKey{k.Public()}, excluded: []crypto.PublicKey{c}, reported: true,
		hist:    []histEntry{{cp: api.Checkpoint{Root: api.EmptyStateRoot}, supersededAt: 4}},
		dispute: &dispute{height: 6, prevHeight: 0, entriesHeight: 5, root: [32]byte{7}, prevRoot: api.EmptyStateRoot}, noCutUntil: 3,
		ecdh: crypto.MustKeyPairFromURI("//C/ecdh").Public(), deployedAt: 3, failedAt: 5}
	s.inputs[c] = []int64{7, 8}
	s.blockRefs[7], s.blockRefs[8] = &blockRef{appHash: bytes.Repeat([]byte{2}, 32), time: 70, refs: 1}, &blockRef{appHash: bytes.Repeat([]byte{3}, 32), time: 80, refs: 1}
	s.cpMeta[c] = cpMeta{egressSeq: 4, acceptedAt: 7}
	s.recovering[c] = &heldKey{upload: [32]byte{5}, seed: [crypto.SeedSize]byte{9}, height: 8}
	s.arbitrating[k.Public()] = &heldKey{upload: [32]byte{5}, seed: [crypto.SeedSize]byte{8}, height: 6}
	return s
}

func TestStateRoundTrip(t *testing.T) {
	s := sampleState()
	got, err := decodeState(s.encode())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.encode(), s.encode()) || got.root() != s.root() {
		t.Fatal("state does not round-trip")
	}
	// The root covers chain-derived state, not egress.
	got.egress = nil
	if got.root() != s.root() {
		t.Fatal("egress changed the root")
	}
	got.nextSeq["x"] = 1
	if got.root() == s.root() {
		t.Fatal("root ignores sequences")
	}
	again, _ := decodeState(s.encode())
	again.allowlist = again.allowlist[1:]
	if again.root() == s.root() {
		t.Fatal("root ignores the allowlist")
	}
	again, _ = decodeState(s.encode())
	again.blockHashes[6] = [api.BlockHashSize]byte{7}
	if again.root() == s.root() {
		t.Fatal("root ignores the block hashes")
	}
	again, _ = decodeState(s.encode())
	again.nodeStake[crypto.PublicKey{1}] = 1
	if again.root() == s.root() {
		t.Fatal("root ignores the node stakes")
	}
	again, _ = decodeState(s.encode())
	again.subnets[[32]byte{4}] = nil
	if again.root() == s.root() {
		t.Fatal("root ignores the subnets")
	}
	again, _ = decodeState(s.encode())
	again.uploads[[32]byte{5}].req.MinCores = 3
	if again.root() == s.root() {
		t.Fatal("root ignores the deployment requirements")
	}
	// Deployments, the kept blocks and disputes are chain-derived; what
	// this worker recovers or arbitrates (keys) is not.
	for name, edit := range map[string]func(*state){
		"workers":   func(s *state) { s.deployed[crypto.MustKeyPairFromURI("//C").Public()].workers = nil },
		"input":     func(s *state) { s.inputs[crypto.MustKeyPairFromURI("//C").Public()] = []int64{7} },
		"block ref": func(s *state) { s.blockRefs[8].time = 81 },
		"dispute":   func(s *state) { s.deployed[crypto.MustKeyPairFromURI("//C").Public()].dispute = nil },
		"history":   func(s *state) { s.deployed[crypto.MustKeyPairFromURI("//C").Public()].hist = nil },
		"ecdh key":  func(s *state) { s.deployed[crypto.MustKeyPairFromURI("//C").Public()].ecdh = crypto.PublicKey{} },
		"deployed":  func(s *state) { s.deployed[crypto.MustKeyPairFromURI("//C").Public()].deployedAt = 4 },
		"failed":    func(s *state) { s.deployed[crypto.MustKeyPairFromURI("//C").Public()].failedAt = 0 },
		"egress seq": func(s *state) {
			s.cpMeta[crypto.MustKeyPairFromURI("//C").Public()] = cpMeta{egressSeq: 5, acceptedAt: 7}
		},
	} {
		again, _ = decodeState(s.encode())
		edit(again)
		if again.root() == s.root() {
			t.Fatalf("root ignores the %s", name)
		}
	}
	again, _ = decodeState(s.encode())
	again.recovering, again.arbitrating = map[crypto.PublicKey]*heldKey{}, map[crypto.PublicKey]*heldKey{}
	if again.root() != s.root() {
		t.Fatal("root covers this worker's own recoveries")
	}
}

// FuzzDecodeState: a damaged checkpoint never panics the decoder (it is
// sealed, so this guards against our own bugs and disk damage).
func FuzzDecodeState(f *testing.F) {
	f.Add(sampleState().encode())
	empty := newState()
	empty.eras = api.GenesisEras(600) // a pRuntime's state has its schedule from genesis on
	f.Add(empty.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeState(b)
	})
}
