package engine

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/internal/enclave/lightclient"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/relayer"
	"github.com/phalago/phala/internal/testnet"
)

func freeListen(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "tcp://" + l.Addr().String()
}

// The reported attack: the validator's key runs a second chain from a copy
// of the node's home (same genesis, same key), which diverges from the
// first. A worker synced on the first chain refuses the second chain's
// next header although every signature on it verifies: it does not extend
// the header the worker trusts.
func TestSplicedForkRefusedByWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("two chains")
	}
	ch := newChain(t)
	ch.net.WaitHeight(3, 30*time.Second)
	ch.net.Stop(0)
	forkHome := t.TempDir()
	if err := os.CopyFS(forkHome, os.DirFS(ch.net.Homes[0])); err != nil {
		t.Fatal(err)
	}
	ch.net.Start(0)
	ch.c = ch.net.Client(0) // the restarted node
	c, err := node.LoadCometConfig(forkHome)
	if err != nil {
		t.Fatal(err)
	}
	c.SetRoot(forkHome)
	c.RPC.ListenAddress = freeListen(t)
	c.P2P.ListenAddress = freeListen(t)
	c.P2P.PersistentPeers, c.P2P.Seeds = "", ""
	fork, err := node.New(c, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := fork.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fork.Stop() })
	fc, err := client.Dial(ctx(t), fork.RPCAddress())
	if err != nil {
		t.Fatal(err)
	}
	split := fork.Comet().BlockStore().Height()
	target := split + 3
	testnet.WaitFor(t, time.Minute, fmt.Sprintf("both chains past height %d", target), func() (bool, error) {
		return ch.net.Height(0) > target && fork.Comet().BlockStore().Height() > target, nil
	})
	ours, err := (&relayer.Fetcher{C: ch.c}).Headers(ctx(t), 1, target)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := (&relayer.Fetcher{C: fc}).Headers(ctx(t), target, target)
	if err != nil {
		t.Fatal(err)
	}
	if string(theirs.Headers[0].SignedHeader) == string(ours.Headers[target-1].SignedHeader) {
		t.Fatal("the chains did not diverge")
	}
	w := ch.engine(t, t.TempDir())
	if _, err := w.SyncHeaders(&api.HeaderBatch{Headers: ours.Headers[:target-1]}); err != nil {
		t.Fatal(err)
	}
	_, err = w.SyncHeaders(theirs)
	if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), lightclient.ErrFork.Error()) {
		t.Fatalf("header %d of the other chain: %v", target, err)
	}
	if h, err := w.SyncHeaders(&api.HeaderBatch{Headers: ours.Headers[target-1:]}); err != nil || h != target {
		t.Fatalf("our header %d after the refusal: %d %v", target, h, err)
	}
}
