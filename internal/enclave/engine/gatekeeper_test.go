package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/testnet"
)

// A second gatekeeper receives the MasterKey from the first over a CommKey
// channel once it registers; the chain records the announced public key.
func TestMasterKeySharedWithNewGatekeeper(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	var ids []crypto.PublicKey
	for _, d := range dirs {
		e, err := keys.CreatePreGenesisEntity(sim(t, d), d)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.Identity.Public())
	}
	m := sha256.Sum256(code)
	g := node.DevGenesisState(m[:])
	g.Gatekeepers = ids
	net := testnet.New(t, testnet.Options{Genesis: g})
	doc, err := cmttypes.GenesisDocFromFile(filepath.Join(net.Homes[0], "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	ch := &chain{net: net, c: net.Client(0), genesis: doc}
	first, second := ch.engine(t, dirs[0]), ch.engine(t, dirs[1])
	if first.Info().MasterKey == "" || second.Info().MasterKey != "" {
		t.Fatalf("before sharing: %q / %q", first.Info().MasterKey, second.Info().MasterKey)
	}
	register(t, ch, first, alice)
	register(t, ch, second, bob)
	bobS := ch.c.NewSigner(bob)
	testnet.WaitFor(t, time.Minute, "master key shared", func() (bool, error) {
		relay(t, ch, bobS, first, second)
		return second.Info().MasterKey != "", nil
	})
	if second.Info().MasterKey != first.Info().MasterKey {
		t.Fatal("the shared key differs")
	}
	mk, ok, err := ch.c.MasterKey(ctx(t))
	if err != nil || !ok || pointHex(mk) != first.Info().MasterKey {
		t.Fatalf("chain's master key %s %v %v, pRuntime's %s", pointHex(mk), ok, err, first.Info().MasterKey)
	}
	// It survives a restart (sealed).
	again := ch.engine(t, dirs[1])
	if again.Info().MasterKey != first.Info().MasterKey {
		t.Fatal("received master key not sealed")
	}
}

// A pRuntime acts on a gatekeeper's messages (master key announcement,
// master key share, contract key grant) only when the gatekeeper is named
// in the genesis AND its attested registration is in the queue: active, with
// a measurement the genesis allows. It shares the MasterKey only with such a
// gatekeeper. (The chain refuses these messages too, see the app tests; this
// is the pRuntime's own check, tested on its handlers directly.)
func TestGatekeeperMessagesNeedAttestation(t *testing.T) {
	ch := newChain(t)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	var ids []crypto.PublicKey
	for _, d := range dirs {
		e, err := keys.CreatePreGenesisEntity(sim(t, d), d)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.Identity.Public())
	}
	gs, err := api.DecodeGenesisState(ch.genesis.AppState)
	if err != nil {
		t.Fatal(err)
	}
	gs.Gatekeepers = ids[:2]
	doc := *ch.genesis
	if doc.AppState, err = json.Marshal(gs); err != nil {
		t.Fatal(err)
	}
	ch2 := &chain{genesis: &doc}
	first, worker := ch2.engine(t, dirs[0]), ch2.engine(t, dirs[2])
	if first.Info().MasterKey == "" {
		t.Fatal("genesis gatekeeper without a MasterKey")
	}
	allowed := sha256.Sum256(code)
	const height = 10
	rec := func(id crypto.PublicKey, measurement []byte, expiresAt int64) *api.WorkerRecord {
		return &api.WorkerRecord{Info: api.WorkerInfo{IdentityKey: id, EcdhKey: id, Operator: bob.Public()}, Platform: api.PlatformSim, Measurement: measurement, ExpiresAt: expiresAt}
	}
	mk := crypto.PublicKey{7}
	for _, tc := range []struct {
		name   string
		from   crypto.PublicKey
		rec    *api.WorkerRecord // the sender's registration, if any
		reason string            // "" when acted on
	}{
		{"named in the genesis, never registered", ids[1], nil, "no active attested registration"},
		{"registration expired", ids[1], rec(ids[1], allowed[:], height), "no active attested registration"},
		{"measurement not allowed", ids[1], rec(ids[1], []byte{9}, height+1), "no active attested registration"},
		{"registered, not a gatekeeper", ids[2], rec(ids[2], allowed[:], height+1), "not a serving gatekeeper"},
		{"attested gatekeeper", ids[1], rec(ids[1], allowed[:], height+1), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			worker.st.workers = map[crypto.PublicKey]*api.WorkerRecord{}
			if tc.rec != nil {
				worker.st.workers[tc.from] = tc.rec
			}
			c := &Context{e: worker, Height: height}
			msg := func(topic string, payload []byte) *api.Message {
				return &api.Message{Origin: api.KeyOrigin(api.OriginGatekeeper, tc.from), Topic: topic, Payload: payload}
			}
			// Announcement: accepted only from an attested gatekeeper (the
			// key set it makes comes from the gatekeeper module).
			err := worker.onMasterKeyAnnounced(c, msg(api.TopicMasterKey, mk[:]))
			if acted := err == nil; acted != (tc.reason == "") || (tc.reason != "" && (err == nil || !strings.Contains(err.Error(), tc.reason))) {
				t.Fatalf("announcement: acted %v, err %v", acted, err)
			}
			// A share: refused before anything is decoded, or past the
			// check (then the garbage payload fails to decode). (Grants
			// reach workers through the chain's ContractDeployed; their
			// sealer is checked in openGrant.)
			for name, h := range map[string]Handler{"share": worker.onMasterKeyShare} {
				err := h(c, msg("x", []byte("garbage")))
				refused := err != nil && strings.Contains(err.Error(), "ignored")
				if refused != (tc.reason != "") || (refused && !strings.Contains(err.Error(), tc.reason)) {
					t.Fatalf("%s: %v", name, err)
				}
			}
			if len(worker.running) != 0 || holdsMaster(worker) {
				t.Fatal("worker acted on a gatekeeper message")
			}

			// The MasterKey is shared only with an attested gatekeeper.
			first.st.egress = nil
			adoptGenesisKeySet(first, ids[:2], masterOf(first))
			if tc.rec != nil {
				first.gk.Share(height, tc.rec, 0)
			}
			if shared := len(first.st.egress) == 1; shared != (tc.reason == "") {
				t.Fatalf("master key shared: %v", shared)
			}
		})
	}
}

// holdsMaster reports whether e holds a share of a MasterKey (as
// gatekeeper).
func holdsMaster(e *Engine) bool {
	return e.gk != nil && len(e.gk.Eras()) > 0
}

// masterOf returns the public commitment of the share of the latest key
// era e holds, zero if none (a key set of threshold 1: the master public
// key).
func masterOf(e *Engine) crypto.PublicKey {
	if !holdsMaster(e) {
		return crypto.PublicKey{}
	}
	eras := e.gk.Eras()
	pub, _ := e.gk.Public(eras[len(eras)-1])
	return crypto.PublicKey(pub)
}

// chainMaster returns the serving key set's master public key as e
// follows it from the chain, zero before the genesis one.
func chainMaster(e *Engine) crypto.PublicKey {
	if !e.st.hasKeySet {
		return crypto.PublicKey{}
	}
	return crypto.PublicKey(e.st.keySets[e.st.servingKeyEra].Public())
}

// adoptGenesisKeySet gives e the genesis key set (threshold 1) of members
// with master public key pub, as the gatekeeper module's rotation_ready
// would.
func adoptGenesisKeySet(e *Engine, members []crypto.PublicKey, pub crypto.PublicKey) {
	e.st.keySets[0] = &api.KeySet{T: 1, Members: members, Commits: [][32]byte{[32]byte(pub)}}
	e.st.hasKeySet = true
}

// pointHex is a master public key as Info shows it.
func pointHex(p [32]byte) string { return "0x" + hex.EncodeToString(p[:]) }
