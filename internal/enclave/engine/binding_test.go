package engine

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/platform"
	"github.com/phalago/phala/internal/enclave/sealing"
	"github.com/phalago/phala/internal/testnet"
)

// copyDir copies the regular files of src, and of its directories, into
// a new directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		switch {
		case d.IsDir():
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		case !d.Type().IsRegular():
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// withGatekeepers returns a copy of doc whose app state lists gks.
func withGatekeepers(t *testing.T, doc *cmttypes.GenesisDoc, gks ...crypto.PublicKey) *cmttypes.GenesisDoc {
	t.Helper()
	gs, err := api.DecodeGenesisState(doc.AppState)
	if err != nil {
		t.Fatal(err)
	}
	gs.Gatekeepers = gks
	b, err := json.Marshal(gs)
	if err != nil {
		t.Fatal(err)
	}
	d := *doc
	d.AppState = b
	return &d
}

// The exfiltration attack of issue 8 and its variants. A gatekeeper host
// keeps the sealed files of a running chain's genesis gatekeeper G,
// deletes some of them, and restarts pRuntime with a genesis of its own
// making (differing only in chain id, only in validators, or only in
// gatekeepers: listing its own key H as a second gatekeeper, to which G
// would share the MasterKey once H registers there), or with the original
// genesis. Every combination of deleted files (entity, master, runtime,
// the sim platform key) on every genesis ends with the MasterKey of the
// chain never loaded on another chain, never replaced by a new one on its
// own chain, and no share or grant in the egress; a start that cannot
// proceed safely stops with an error naming the reason.
func TestSealedKeysStayOnTheirChain(t *testing.T) {
	ch := newChain(t)
	gk := ch.engine(t, ch.gkDir)
	g := gk.Identity()
	bobS := ch.c.NewSigner(bob)
	register(t, ch, gk, bob) // a gatekeeper announces only once attested
	testnet.WaitFor(t, time.Minute, "master key announced on chain", func() (bool, error) {
		relay(t, ch, bobS, gk)
		return chainMaster(gk) != (crypto.PublicKey{}), nil
	})
	mA := masterOf(gk)
	if chainMaster(gk) != mA {
		t.Fatal("the chain announced another key")
	}
	host := crypto.MustKeyPairFromURI("//Host").Public()

	otherChainID := *ch.genesis
	otherChainID.ChainID = "phala-host"
	otherVals := *ch.genesis
	pv := cmttypes.NewMockPV()
	pub, _ := pv.GetPubKey()
	otherVals.Validators = []cmttypes.GenesisValidator{{Address: pub.Address(), PubKey: pub, Power: 10, Name: "host"}}
	geneses := []struct {
		name string
		doc  *cmttypes.GenesisDoc
	}{
		{"original", ch.genesis},
		{"other chain id", &otherChainID},
		{"other validators", &otherVals},
		{"host key as second gatekeeper", withGatekeepers(t, ch.genesis, g, host)},
	}
	files := []string{keys.EntityFile, keys.MasterFile, StateFile, platform.SimKeyFile}
	for _, gen := range geneses {
		original := gen.doc == ch.genesis
		for mask := 0; mask < 1<<len(files); mask++ {
			var deleted []string
			for i, f := range files {
				if mask&(1<<i) != 0 {
					deleted = append(deleted, f)
				}
			}
			gone := func(f string) bool { return strings.Contains(strings.Join(deleted, ","), f) }
			t.Run(fmt.Sprintf("%s/deleted=%s", gen.name, strings.Join(deleted, "+")), func(t *testing.T) {
				dir := copyDir(t, ch.gkDir)
				for _, f := range deleted {
					if err := os.Remove(filepath.Join(dir, f)); err != nil {
						t.Fatal(err)
					}
				}
				e, err := New(Config{DataDir: dir, Genesis: gen.doc, Platform: sim(t, dir), Log: quiet()})
				if err != nil {
					if !errors.Is(err, sealing.ErrOtherChain) && !errors.Is(err, sealing.ErrOtherIdentity) && !errors.Is(err, sealing.ErrForeign) {
						t.Fatalf("refused for an unexpected reason: %v", err)
					}
				}
				// Expected outcomes where the answer is not a matter of
				// safety only.
				switch {
				case !original && !gone(keys.EntityFile):
					// G's keys on another chain: refused, naming both.
					if !errors.Is(err, sealing.ErrOtherChain) || !strings.Contains(err.Error(), fmt.Sprintf("%q", ch.genesis.ChainID)) || !strings.Contains(err.Error(), fmt.Sprintf("%q", gen.doc.ChainID)) {
						t.Fatalf("G's keys opened on another chain: %v", err)
					}
				case original && mask == 0:
					if err != nil || !holdsMaster(e) || masterOf(e) != mA {
						t.Fatalf("untouched restart: %v", err)
					}
				case original && !gone(platform.SimKeyFile) && !gone(keys.EntityFile):
					// Same chain, same identity: starts; with master.sealed
					// gone it waits for a share instead of creating a key.
					if err != nil {
						t.Fatalf("restart with %v deleted: %v", deleted, err)
					}
					if gone(keys.MasterFile) == holdsMaster(e) {
						t.Fatalf("master key held: %v, master.sealed deleted: %v", holdsMaster(e), gone(keys.MasterFile))
					}
				}
				if gone(keys.EntityFile) && (!gone(keys.MasterFile) || !gone(StateFile)) {
					// The lost identity's other files: refused before a new
					// identity is made.
					if !errors.Is(err, sealing.ErrOtherIdentity) && !errors.Is(err, sealing.ErrOtherChain) {
						t.Fatalf("orphaned files: %v", err)
					}
					if _, serr := os.Stat(filepath.Join(dir, keys.EntityFile)); serr == nil {
						t.Fatal("a new identity was created next to the lost one's files")
					}
				}
				if err != nil {
					return
				}
				if !original && holdsMaster(e) {
					t.Fatalf("a MasterKey on another chain: %s", masterOf(e).Hex())
				}
				if original && holdsMaster(e) && masterOf(e) != mA {
					t.Fatalf("a new MasterKey on a chain that has one: %s", masterOf(e).Hex())
				}
				for _, m := range e.Egress() {
					switch m.Message.Topic {
					case api.TopicMasterKeyShare, api.TopicKeyPartials:
						t.Fatalf("key egress: %s", m.Message.Topic)
					case api.TopicMasterKey:
						if string(m.Message.Payload) != string(mA[:]) {
							t.Fatalf("announces a new master key")
						}
					}
				}
			})
		}
	}

	// The host recreates G's data directory around a new identity X of its
	// own, made before a genesis naming X first and H second, keeping G's
	// master.sealed: the MasterKey (bound to chain A and G) is refused.
	t.Run("new pre-genesis identity keeps master.sealed", func(t *testing.T) {
		dir := copyDir(t, ch.gkDir)
		os.Remove(filepath.Join(dir, keys.EntityFile))
		os.Remove(filepath.Join(dir, StateFile))
		x, err := keys.CreatePreGenesisEntity(sim(t, dir), dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range []*cmttypes.GenesisDoc{withGatekeepers(t, ch.genesis, x.Identity.Public(), host), withGatekeepers(t, &otherChainID, x.Identity.Public(), host)} {
			d := copyDir(t, dir)
			if _, err := New(Config{DataDir: d, Genesis: doc, Platform: sim(t, d), Log: quiet()}); !errors.Is(err, sealing.ErrOtherChain) {
				t.Fatalf("G's MasterKey under identity %s on chain %q: %v", x.Identity.Public().Short(), doc.ChainID, err)
			}
		}
		// Without it, X's first start on its own chain makes that chain's
		// own MasterKey, not G's.
		os.Remove(filepath.Join(dir, keys.MasterFile))
		e, err := New(Config{DataDir: dir, Genesis: withGatekeepers(t, &otherChainID, x.Identity.Public(), host), Platform: sim(t, dir), Log: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		if !holdsMaster(e) || masterOf(e) == mA {
			t.Fatal("the host's chain did not get a MasterKey of its own")
		}
	})

	// A genesis gatekeeper whose master.sealed is deleted after the chain
	// adopted its key never makes a new one, even with the runtime state
	// gone too: restarted and resynced, it holds no MasterKey and announces
	// nothing.
	t.Run("master and runtime deleted, resynced", func(t *testing.T) {
		dir := copyDir(t, ch.gkDir)
		os.Remove(filepath.Join(dir, keys.MasterFile))
		os.Remove(filepath.Join(dir, StateFile))
		e := ch.engine(t, dir)
		relay(t, ch, bobS, e)
		if holdsMaster(e) || chainMaster(e) != mA || len(e.Egress()) != 0 {
			t.Fatalf("master %v, chain's key %s, egress %d", holdsMaster(e), chainMaster(e).Short(), len(e.Egress()))
		}
	})
}

// A second genesis gatekeeper's host keeps a copy of its pre-genesis
// entity keys, claims them on a chain of its own listing the same
// gatekeepers, and replays there the MasterKey share the first gatekeeper
// sent on the real chain: the share is bound to the real chain's genesis
// and does not open.
func TestMasterKeyShareBoundToChain(t *testing.T) {
	ch := newChain(t)
	dirs := []string{ch.gkDir, t.TempDir()}
	g2, err := keys.CreatePreGenesisEntity(sim(t, dirs[1]), dirs[1])
	if err != nil {
		t.Fatal(err)
	}
	copyOfG2 := copyDir(t, dirs[1])
	gs, err := api.DecodeGenesisState(ch.genesis.AppState)
	if err != nil {
		t.Fatal(err)
	}
	gks := []crypto.PublicKey{gs.Gatekeepers[0], g2.Identity.Public()}
	docA := withGatekeepers(t, ch.genesis, gks...)
	docB := withGatekeepers(t, ch.genesis, gks...)
	docB.ChainID = "phala-host"
	open := func(doc *cmttypes.GenesisDoc, dir string) *Engine {
		e, err := New(Config{DataDir: dir, Genesis: doc, Platform: sim(t, dir), Log: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	first := open(docA, dirs[0])
	onA, onB := open(docA, dirs[1]), open(docB, copyOfG2)
	if !holdsMaster(first) || holdsMaster(onA) || holdsMaster(onB) {
		t.Fatal("setup: only the first gatekeeper holds a MasterKey")
	}
	// Both gatekeepers attested (as their registrations in the queue would
	// make them), so that only the chain binding is left to refuse.
	m := sha256.Sum256(code)
	attested := func(ent *keys.Entity) *api.WorkerRecord {
		return &api.WorkerRecord{Info: api.WorkerInfo{IdentityKey: ent.Identity.Public(), EcdhKey: ent.Ecdh.Public()}, Platform: api.PlatformSim, Measurement: m[:], ExpiresAt: 1 << 40}
	}
	rec := attested(g2)
	firstRec := attested(first.entity)
	for _, e := range []*Engine{onA, onB} {
		e.st.workers[firstRec.Info.IdentityKey] = firstRec
	}
	for _, e := range []*Engine{first, onA, onB} {
		adoptGenesisKeySet(e, gks, masterOf(first))
	}
	first.gk.Share(1, rec, 0)
	var share *api.Message
	for _, m := range first.Egress() {
		if m.Message.Topic == api.TopicMasterKeyShare {
			share = &m.Message
		}
	}
	if share == nil {
		t.Fatal("no share")
	}
	if err := onB.onMasterKeyShare(&Context{e: onB, Height: 1}, share); err == nil || holdsMaster(onB) {
		t.Fatalf("the share opened on the host's chain: %v", err)
	}
	if err := onA.onMasterKeyShare(&Context{e: onA, Height: 1}, share); err != nil || !holdsMaster(onA) || masterOf(onA) != masterOf(first) {
		t.Fatalf("the share on its own chain: %v", err)
	}
}
