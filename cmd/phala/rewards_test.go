package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/testnet"
)

// `phala rewards` after an era whose end paid a worker staked by //Eve:
// the total and the entry naming the worker, as text and JSON; an account
// never rewarded has none.
func TestRewardsCLI(t *testing.T) {
	bin(t)
	measurement := [32]byte{7}
	genesis := node.DevGenesisState(measurement[:])
	genesis.Params.EraLength = 20
	n := testnet.New(t, testnet.Options{Genesis: genesis})
	c := n.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	charlie := crypto.MustKeyPairFromURI("//Charlie")
	worker, _, _ := crypto.GenerateKeyPair()
	registerSimWorker(t, ctx, n, charlie, worker, measurement)
	phala := func(args ...string) []string {
		return append(args, "--node", n.RPC(0), "--genesis", filepath.Join(n.Homes[0], "config", "genesis.json"), "--data-dir", t.TempDir())
	}
	ok(t, phala("stake", "bond", "--from", "//Eve", "--amount", "100")...)
	ok(t, phala("stake", "allocate", "--from", "//Eve", worker.Public().Hex(), "--amount", "100")...)
	// The worker's activity: messages of its own that the queue accepts
	// (its pRuntime's egress), until an era's end judges and pays it.
	dave := c.NewSigner(crypto.MustKeyPairFromURI("//Dave"))
	seq := uint64(0)
	var paid uint64
	testnet.WaitFor(t, 90*time.Second, "an era's reward for the worker", func() (bool, error) {
		m := api.SignMessage(n.ChainID, api.Message{Origin: api.KeyOrigin(api.OriginWorker, worker.Public()), Topic: "phala-test/activity", Seq: seq, Payload: []byte{1}}, worker)
		if _, err := dave.Submit(ctx, &api.PushMessage{Message: m}); err != nil {
			return false, err
		}
		seq++
		l, _, err := c.Rewards(ctx, crypto.MustKeyPairFromURI("//Eve").Public())
		if err != nil {
			return false, err
		}
		paid = l.Total
		return paid > 0, nil
	})
	out := ok(t, phala("rewards", "//Eve")...)
	if !strings.Contains(out, "in total") || !strings.Contains(out, "from node "+worker.Public().Hex()) {
		t.Errorf("rewards //Eve:\n%s", out)
	}
	var rj struct {
		Total  string `json:"total"`
		Latest []struct {
			Era  uint64 `json:"era"`
			Node string `json:"node"`
		} `json:"latest"`
	}
	if err := json.Unmarshal([]byte(ok(t, phala("rewards", "//Eve", "--json")...)), &rj); err != nil {
		t.Fatal(err)
	}
	if rj.Total == "0" || len(rj.Latest) == 0 || rj.Latest[0].Node != worker.Public().Hex() || rj.Latest[0].Era == 0 {
		t.Errorf("rewards --json: %+v (paid %d)", rj, paid)
	}
	// The era that paid it: the report names the worker responsive and
	// its reward; the current era shows activity so far.
	era := fmt.Sprint(rj.Latest[0].Era)
	if out := ok(t, phala("era", era)...); !strings.Contains(out, "the 1/4 rule judged it") || !strings.Contains(out, worker.Public().Hex()) || !strings.Contains(out, "responsive: rewarded") {
		t.Errorf("era %s:\n%s", era, out)
	}
	// (The current era may end while the command runs: a few blocks in
	// an era of 20, so a second try finds the next one going on.)
	for try := 0; ; try++ {
		out := ok(t, phala("era")...)
		if strings.Contains(out, "Activity so far") && strings.Contains(out, worker.Public().Hex()) {
			break
		}
		if try == 2 {
			t.Fatalf("era (current):\n%s", out)
		}
	}
	if out := ok(t, phala("rewards", "//Ferdie")...); !strings.Contains(out, "none yet") {
		t.Errorf("rewards of an account never rewarded:\n%s", out)
	}
	fails(t, []string{"account"}, phala("rewards", "nobody")...)
}
