package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/testnet"
)

// phala stake, run as a user would: bond, allocate to a registered worker
// (which then reaches min_worker_stake), show the ledger and the node,
// unbond, withdraw after the unbonding period, nominate; bad input gets a
// clear error, locally or from the chain.
func TestStake(t *testing.T) {
	bin(t)
	measurement := [32]byte{1, 2, 3}
	genesis := node.DevGenesisState(measurement[:])
	genesis.Params.MinWorkerStake = 100 * api.Unit
	genesis.Params.UnbondingPeriod = 3
	n := testnet.New(t, testnet.Options{Genesis: genesis})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// A worker registered by //Charlie, its operator.
	charlie := crypto.MustKeyPairFromURI("//Charlie")
	id, _, _ := crypto.GenerateKeyPair()
	registerSimWorker(t, ctx, n, charlie, id, measurement)
	worker := id.Public().Hex()
	phala := func(args ...string) []string {
		return append(args, "--node", n.RPC(0), "--genesis", filepath.Join(n.Homes[0], "config", "genesis.json"))
	}

	// Refused before anything is sent.
	fails(t, []string{"--amount", "positive"}, phala("stake", "bond", "--from", "//Charlie", "--amount", "0")...)
	fails(t, []string{"--amount", "not a number"}, phala("stake", "bond", "--from", "//Charlie", "--amount", "1e3")...)
	fails(t, []string{"--from is required"}, phala("stake", "bond", "--amount", "1")...)
	fails(t, []string{"identity", "not a node identity"}, phala("stake", "allocate", "--from", "//Charlie", "nope", "--amount", "1")...)
	fails(t, []string{"at least one candidate"}, phala("stake", "nominate", "--from", "//Charlie")...)

	var tx stakeTxJSON
	okJSON(t, &tx, phala("stake", "bond", "--from", "//Charlie", "--amount", "150")...)
	if tx.Call != "stake_bond" || tx.Height <= 0 || tx.Ledger.BondedPHA != "150" {
		t.Fatalf("bond: %+v", tx)
	}
	out := ok(t, phala("stake", "allocate", "--from", "//Charlie", worker, "--amount", "100")...)
	if !strings.Contains(out, "committed at height") || !strings.Contains(out, "allocated:   100 PHA to "+worker) {
		t.Fatalf("allocate:\n%s", out)
	}
	var l ledgerJSON
	okJSON(t, &l, phala("stake", "show", "//Charlie")...)
	if l.BondedPHA != "50" || len(l.Allocations) != 1 || l.Allocations[0].Node != worker || !l.Allocations[0].Assignable || l.TotalPHA != "150" {
		t.Fatalf("show: %+v", l)
	}
	var ns nodeStakeJSON
	okJSON(t, &ns, phala("stake", "node", worker)...)
	if ns.TotalPHA != "100" || ns.Stakers != 1 || !ns.Assignable || len(ns.List) != 1 || ns.List[0].Account != charlie.Public().Address() {
		t.Fatalf("node: %+v", ns)
	}

	// The chain's refusals, with its reason.
	fails(t, []string{"refused", "allocated", "allocates 100 PHA (100000000000000 units) to", "unbonding 101 PHA (101000000000000 units)"}, phala("stake", "unbond", "--from", "//Charlie", worker, "--amount", "101")...)
	fails(t, []string{"refused", "has 50 PHA (50000000000000 units) bonded and unallocated, allocating 60 PHA"}, phala("stake", "allocate", "--from", "//Charlie", worker, "--amount", "60")...)
	fails(t, []string{"refused", "unknown node"}, phala("stake", "allocate", "--from", "//Charlie", crypto.MustKeyPairFromURI("//Nobody").Public().Hex(), "--amount", "1")...)
	fails(t, []string{"nothing unlocked"}, phala("stake", "withdraw", "--from", "//Charlie")...)

	// Unbond, wait out the period, withdraw.
	okJSON(t, &tx, phala("stake", "unbond", "--from", "//Charlie", worker, "--amount", "30")...)
	if len(tx.Ledger.Unlocking) != 1 || tx.Ledger.Unlocking[0].AmountPHA != "30" || tx.Ledger.Unlocking[0].Until != tx.Height+3 {
		t.Fatalf("unbond: %+v", tx.Ledger)
	}
	out = ok(t, phala("stake", "node", worker)...)
	if !strings.Contains(out, "is below min_worker_stake 100 PHA") {
		t.Fatalf("node below the minimum:\n%s", out)
	}
	n.WaitHeight(tx.Height+3, 30*time.Second)
	okJSON(t, &tx, phala("stake", "withdraw", "--from", "//Charlie")...)
	if len(tx.Ledger.Unlocking) != 0 || tx.Ledger.TotalPHA != "120" {
		t.Fatalf("withdraw: %+v", tx.Ledger)
	}
	okJSON(t, &tx, phala("stake", "nominate", "--from", "//Charlie", worker)...)
	if len(tx.Ledger.Nominations) != 1 || tx.Ledger.Nominations[0] != worker {
		t.Fatalf("nominate: %+v", tx.Ledger)
	}
	okJSON(t, &tx, phala("stake", "nominate", "--from", "//Charlie", "--clear")...)
	if len(tx.Ledger.Nominations) != 0 {
		t.Fatalf("nominate --clear: %+v", tx.Ledger)
	}

	// status shows the economy and the issuance.
	out = ok(t, phala("status")...)
	for _, want := range []string{"min worker stake:      100 PHA", "unbonding period:      3 blocks", "total issuance:"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}
