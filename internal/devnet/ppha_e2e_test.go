package devnet

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/testnet"
)

// TestPeggedTokenEndToEnd is issue 13's end-to-end test of private PHA
// (examples/contracts/ppha, docs/interop.md) on a devnet of processes:
// the token on two workers; deposits from three accounts (PHA
// transfers to its escrow account); private transfers among them and
// withdrawals to linked accounts, with worker1's pRuntime killed
// (SIGKILL) mid-run and restarted; beside them, a contract calling
// another one (sealed and plain calls) through the chain's queue. It
// checks:
//   - exact private balances (told only to their owners) and exact PHA
//     paid to each linked account;
//   - escrow balance = supply (the contract's Σ balances + withdrawals in
//     flight) at every height the contract answered for, and, at every
//     height of the run, escrow balance = Σ deposits − Σ paid payouts as
//     the queue carried them;
//   - every withdrawal paid exactly once (one PayoutResult per id);
//   - a withdrawal beyond the balance refused, nothing moving;
//   - the calls arriving exactly once each, in order, with the sending
//     contract as caller;
//   - a payout claiming to come from the token but signed by another key
//     refused by the chain;
//   - no private balance or transfer amount in the chain's stored data or
//     in any log (deposit and withdrawal amounts are public by nature).
func TestPeggedTokenEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("whole devnet with processes")
	}
	binDir := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), "../../cmd/pruntime", "../../cmd/pherry").CombinedOutput(); err != nil {
		t.Fatalf("build pruntime and pherry: %v\n%s", err, out)
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var home string
	d, c := startTestDevnet(t, ctx, func(cfg *Config) {
		cfg.PRuntimeBinary = filepath.Join(binDir, "pruntime")
		cfg.PherryBinary = filepath.Join(binDir, "pherry")
		cfg.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		home = cfg.Home
	})
	// //Charlie, //Dave and //Eve pay the pherries' fees: the users are
	// accounts no devnet process signs with.
	names := []string{"Alice", "Bob", "Ferdie"}
	var keys []*crypto.KeyPair
	var signers []*client.Signer
	var payees []crypto.PublicKey // each user's linked account: only payouts move it
	for _, n := range names {
		k := crypto.MustKeyPairFromURI("//" + n)
		keys = append(keys, k)
		signers = append(signers, c.NewSigner(k))
		p, _, err := crypto.GenerateKeyPair()
		if err != nil {
			t.Fatal(err)
		}
		payees = append(payees, p.Public())
	}
	start, err := c.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deploy := func(dir string, init []byte) *api.ContractRecord {
		t.Helper()
		up, _, err := signers[0].Upload(ctx, contracttest.Build(t, dir), 2, init)
		if err != nil {
			t.Fatal(err)
		}
		return mustDeployed(t, ctx, c, up, 2)
	}
	tok := deploy(filepath.Join("..", "..", "examples", "contracts", "ppha"), nil)
	interop := filepath.Join("..", "testcontracts", "interop")
	ca, cb := deploy(interop, nil), deploy(interop, nil)
	escrow := api.EscrowAccount(tok.Identity)

	query := func(k *crypto.KeyPair, rec *api.ContractRecord, q string) (string, int64, error) {
		out, h, err := c.QueryContract(ctx, k, rec, []byte(q))
		return string(out), h, err
	}
	escrowAt := func(h int64) uint64 {
		t.Helper()
		v, err := c.ProveAt(ctx, api.QueryAccount, escrow[:], h)
		if err != nil {
			t.Fatalf("escrow balance at %d: %v", h, err)
		}
		if v.Value == nil {
			return 0
		}
		a, err := api.DecodeAccount(v.Value)
		if err != nil {
			t.Fatal(err)
		}
		return a.Balance
	}

	// Deposits (public: PHA transfers to the escrow account), then each
	// user links its withdrawals to its payee.
	balances := map[int]uint64{}
	var deposited uint64
	for i, s := range signers {
		amount := uint64(40+7*i)*api.Unit + 123_456_789 + uint64(i)
		if _, err := s.Submit(ctx, &api.Transfer{To: escrow, Amount: amount}); err != nil {
			t.Fatal(err)
		}
		balances[i] += amount
		deposited += amount
		if _, err := s.Command(ctx, tok, []byte("link "+payees[i].Hex())); err != nil {
			t.Fatal(err)
		}
	}
	for i, k := range keys {
		want := strconv.FormatUint(balances[i], 10)
		testnet.WaitFor(t, time.Minute, names[i]+"'s deposit spendable", func() (bool, error) {
			out, _, err := query(k, tok, "balance")
			return err == nil && out == want, nil
		})
	}

	// The invariant, sampled at every height the contract answers for
	// while the run lasts.
	type sample struct{ supply, escrow uint64 }
	samples := map[int64]sample{}
	var sampleMu sync.Mutex
	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(50 * time.Millisecond):
			}
			out, h, err := query(keys[0], tok, "supply")
			if err != nil {
				continue // the worker asked was down: the next sample asks again
			}
			sampleMu.Lock()
			_, seen := samples[h]
			sampleMu.Unlock()
			if seen {
				continue
			}
			supply, err := strconv.ParseUint(out, 10, 64)
			if err != nil {
				t.Errorf("supply %q: %v", out, err)
				return
			}
			v, err := c.ProveAt(ctx, api.QueryAccount, escrow[:], h)
			if err != nil {
				continue
			}
			var bal uint64
			if v.Value != nil {
				a, err := api.DecodeAccount(v.Value)
				if err != nil {
					t.Errorf("escrow account: %v", err)
					return
				}
				bal = a.Balance
			}
			sampleMu.Lock()
			samples[h] = sample{supply, bal}
			sampleMu.Unlock()
		}
	}()

	// The run: private transfers and withdrawals from each user, and A
	// calling B, while worker1's pRuntime is killed and restarted.
	var mu sync.Mutex
	var amounts []uint64     // private transfer amounts
	var withdrawals []uint64 // public amounts, in no particular order
	paidTo := map[int]uint64{}
	done := 0
	var wg sync.WaitGroup
	const perSender = 24
	for s := range signers {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			for j := 0; j < perSender; j++ {
				var input string
				to, amount := (s+1+j%2)%len(keys), uint64(3_731_917_000+1_013_007*uint64(s)+7_919*uint64(j))
				withdraw := j%8 == 5
				if withdraw {
					amount = uint64(j+s+1) * api.Unit / 10
					input = "withdraw " + strconv.FormatUint(amount, 10)
				} else {
					input = "transfer " + keys[to].Public().Hex() + " " + strconv.FormatUint(amount, 10)
				}
				if _, err := signers[s].Command(ctx, tok, []byte(input)); err != nil {
					t.Errorf("%s: %v", input, err)
					return
				}
				mu.Lock()
				balances[s] -= amount
				if withdraw {
					withdrawals = append(withdrawals, amount)
					paidTo[s] += amount
				} else {
					balances[to] += amount
					amounts = append(amounts, amount)
				}
				done++
				mu.Unlock()
			}
		}(s)
	}
	const calls = 16
	wg.Add(1)
	go func() {
		defer wg.Done()
		// One signer, so the commands (and the calls they make) are
		// ordered by its nonces; odd ones are sealed to B.
		for k := 0; k < calls; k++ {
			in := fmt.Sprintf("call %s 2000000 %d m%d", cb.Identity.Hex(), k%2, k)
			if _, err := signers[1].Command(ctx, ca, []byte(in)); err != nil {
				t.Errorf("%s: %v", in, err)
				return
			}
		}
	}()
	progress := func(n int) func() (bool, error) {
		return func() (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			return done >= n, nil
		}
	}
	w1 := d.Runtimes[1]
	testnet.WaitFor(t, 2*time.Minute, "some transfers", progress(15))
	if err := w1.Kill(); err != nil {
		t.Fatal(err)
	}
	testnet.WaitFor(t, 2*time.Minute, "more transfers while worker1 is down", progress(40))
	if err := w1.Start(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Every withdrawal paid to its linked account, once.
	for i := range keys {
		want := paidTo[i]
		testnet.WaitFor(t, 2*time.Minute, "the withdrawals of "+names[i]+" paid", func() (bool, error) {
			a, err := c.Account(ctx, payees[i])
			return err == nil && a.Balance == want, nil
		})
	}
	// Both replicas converge, on every contract.
	testnet.WaitFor(t, 3*time.Minute, "replicas converged", func() (bool, error) {
		for _, id := range []crypto.PublicKey{tok.Identity, ca.Identity, cb.Identity} {
			var roots []string
			for _, rt := range d.Runtimes[1:] {
				info, err := rt.API.Info(ctx)
				if err != nil {
					return false, nil
				}
				roots = append(roots, info.Contracts[id.Hex()])
			}
			if roots[0] == "" || roots[0] != roots[1] {
				return false, nil
			}
		}
		return true, nil
	})
	for i, k := range keys {
		want := strconv.FormatUint(balances[i], 10)
		testnet.WaitFor(t, time.Minute, "the balance of "+names[i], func() (bool, error) {
			out, _, err := query(k, tok, "balance")
			return err == nil && out == want, nil
		})
	}

	// A withdrawal beyond the balance: refused by the contract; nothing
	// moves (balance, supply, escrow, no payout).
	over := balances[0] + 1
	r, res, err := signers[0].Execute(ctx, tok, []byte("withdraw "+strconv.FormatUint(over, 10)))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "insufficient balance") {
		t.Fatalf("a withdrawal of %d with %d: %v", over, balances[0], err)
	}
	supplyWant := strconv.FormatUint(deposited-sum(withdrawals), 10)
	testnet.WaitFor(t, time.Minute, "the state after the refused withdrawal", func() (bool, error) {
		sup, h, err := query(keys[0], tok, "supply")
		if err != nil || h < res.Height {
			return false, nil // a replica behind
		}
		bal, h2, err := query(keys[0], tok, "balance")
		if err != nil || h2 < res.Height {
			return false, nil
		}
		if sup != supplyWant || bal != strconv.FormatUint(balances[0], 10) {
			return false, fmt.Errorf("after the refused withdrawal: supply %s (want %s), alice holds %s (want %d)", sup, supplyWant, bal, balances[0])
		}
		return true, nil
	})

	// A payout claiming to come from the token, signed by Bob: refused,
	// nothing queued or paid.
	origin := api.KeyOrigin(api.OriginContract, tok.Identity)
	forged := api.SignMessage(c.ChainID(), api.Message{Origin: origin, Topic: api.TopicPayout, Seq: nextSeq(t, ctx, c, origin),
		Payload: (&api.PayoutRequest{ID: 1 << 40, To: keys[1].Public(), Amount: api.Unit}).Encode()}, keys[1])
	if _, err := signers[1].Submit(ctx, &api.PushMessage{Message: forged}); !errors.Is(err, api.ErrBadSignature) {
		t.Fatalf("a payout from the token signed by bob: %v", err)
	}

	// B ran each call once, in order, with A as the caller.
	var want strings.Builder
	for k := 0; k < calls; k++ {
		fmt.Fprintf(&want, "%s:m%d\n", ca.Identity.Hex(), k)
	}
	testnet.WaitFor(t, time.Minute, "B's log of A's calls", func() (bool, error) {
		out, _, err := query(keys[1], cb, "log")
		return err == nil && out == want.String(), nil
	})

	// A fast run may span fewer than 20 heights: sample the quiet ones
	// after it too (the invariant must hold there as well).
	testnet.WaitFor(t, time.Minute, "20 heights sampled", func() (bool, error) {
		sampleMu.Lock()
		defer sampleMu.Unlock()
		return len(samples) >= 20, nil
	})
	close(stopSampling)
	sampler.Wait()
	end, err := c.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	paidOut := sum(withdrawals)
	if e := escrowAt(end - 1); e != deposited-paidOut {
		t.Fatalf("the escrow account holds %d, want deposits %d − withdrawals %d", e, deposited, paidOut)
	}

	// The invariant at every sampled height; the samples span the run.
	sampleMu.Lock()
	for h, s := range samples {
		if s.supply != s.escrow {
			t.Errorf("height %d: supply %d, escrow balance %d", h, s.supply, s.escrow)
		}
	}
	n := len(samples)
	sampleMu.Unlock()
	if n < 20 {
		t.Fatalf("only %d heights sampled", n)
	}
	t.Logf("the invariant held at the %d heights sampled in %d..%d, and at every height by the queue", n, start, end)
	// At every height: the escrow moved only by the queue's deposits and
	// paid payouts of the token, and each payout id was paid once.
	paid := map[uint64]int{}
	var credited, debited uint64
	for h := start + 1; h < end; h++ {
		bm, err := c.Messages(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range bm.Messages {
			switch m.Topic {
			case api.TopicContractDeposit:
				if dep, err := api.DecodeDeposit(m.Payload); err == nil && dep.Contract == tok.Identity {
					credited += dep.Amount
				}
			case api.TopicPayoutResult:
				if pr, err := api.DecodePayoutResult(m.Payload); err == nil && pr.Contract == tok.Identity {
					if !pr.Paid {
						t.Errorf("height %d: payout %d refused: %s", h, pr.ID, pr.Reason)
						continue
					}
					paid[pr.ID]++
					debited += pr.Amount
				}
			}
		}
		if e := escrowAt(h); e != credited-debited {
			t.Fatalf("height %d: escrow balance %d, the queue's deposits − payouts %d", h, e, credited-debited)
		}
	}
	if len(paid) != len(withdrawals) || debited != paidOut || credited != deposited {
		t.Fatalf("%d payouts of %d for %d withdrawals of %d; %d deposited of %d", len(paid), debited, len(withdrawals), paidOut, credited, deposited)
	}
	for id, k := range paid {
		if k != 1 {
			t.Errorf("withdrawal %d paid %d times", id, k)
		}
	}

	// Scan: no private transfer amount or balance in the chain's stored
	// data or in any log. Deposits and withdrawals are public.
	var needles [][]byte
	for _, a := range amounts {
		needles = append(needles, []byte(strconv.FormatUint(a, 10)))
	}
	for _, b := range balances {
		needles = append(needles, []byte(strconv.FormatUint(b, 10)))
	}
	needles = append(needles, []byte("transfer 0x"), []byte("withdraw "), []byte(":m1\n"))
	scan := func(what string, data []byte) {
		for _, nd := range needles {
			if bytes.Contains(data, nd) {
				t.Errorf("%s contains plaintext %q", what, nd)
			}
		}
	}
	scan("devnet logs (node, in-process parts)", logs.Bytes())
	filepath.WalkDir(filepath.Join(home, "nodes"), func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if b, err := os.ReadFile(p); err == nil {
				scan(p, b)
			}
		}
		return nil
	})
	for _, rt := range d.Runtimes {
		for _, f := range []string{rt.Log, rt.PherryLog} {
			b, err := os.ReadFile(f)
			if err != nil || len(b) == 0 {
				t.Fatalf("%s: the log of a process part is missing (%v)", f, err)
			}
			scan(f, b)
		}
	}
}

func sum(xs []uint64) uint64 {
	var s uint64
	for _, x := range xs {
		s += x
	}
	return s
}

// nextSeq reads the next sequence of origin's messages in the queue.
func nextSeq(t *testing.T, ctx context.Context, c *client.Client, origin api.Origin) uint64 {
	t.Helper()
	v, err := c.Prove(ctx, api.QueryNextSeq, origin.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if v.Value == nil {
		return 0
	}
	n, k := binary.Uvarint(v.Value)
	if k <= 0 {
		t.Fatalf("next sequence %x", v.Value)
	}
	return n
}
