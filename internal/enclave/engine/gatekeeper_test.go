package engine

import (
	"crypto/sha256"
	"path/filepath"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

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
	reg, err := second.Registration(bob.Public())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.c.NewSigner(alice).Submit(ctx(t), reg); err != nil {
		t.Fatal(err)
	}
	bobS := ch.c.NewSigner(bob)
	testnet.WaitFor(t, time.Minute, "master key shared", func() (bool, error) {
		relay(t, ch, bobS, first, second)
		return second.Info().MasterKey != "", nil
	})
	if second.Info().MasterKey != first.Info().MasterKey {
		t.Fatal("the shared key differs")
	}
	mk, ok, err := ch.c.MasterKey(ctx(t))
	if err != nil || !ok || mk.Hex() != first.Info().MasterKey {
		t.Fatalf("chain's master key %s %v %v, pRuntime's %s", mk.Hex(), ok, err, first.Info().MasterKey)
	}
	// It survives a restart (sealed).
	again := ch.engine(t, dirs[1])
	if again.Info().MasterKey != first.Info().MasterKey {
		t.Fatal("received master key not sealed")
	}
}
