package loadgen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/examples/contracts/ppha/ppha"
)

// PeggedConfig is a run of the private PHA application
// (examples/contracts/ppha, docs/interop.md) against a devnet: the
// contract is deployed; each of Senders fresh accounts deposits
// DepositUnits PHA (timed: deposit-to-spendable); Transfers private
// transfers are submitted (pre-signed, sealed, in JSON-RPC batches of
// Batch) and timed until a worker has executed them; then each sender
// withdraws WithdrawUnits (timed: withdraw-to-paid).
type PeggedConfig struct {
	RPC           string
	Code          []byte // the ppha contract's WebAssembly
	Transfers     int
	Senders       int
	Batch         int
	DepositUnits  uint64 // PHA base units each sender deposits
	WithdrawUnits uint64 // PHA base units each sender withdraws
	Funder        *crypto.KeyPair
	Log           func(format string, args ...any)
	Trust         client.Options
}

// PeggedResult of a run. Latencies are medians over the senders; blocks
// count from the block that committed the deposit (or the withdraw
// command) to the block whose state first shows it spendable (or the
// block that paid the PHA out).
type PeggedResult struct {
	Transfers         int
	TransferSpan      time.Duration // first submission to the worker having dispatched the last transfer's block
	TransfersPerSec   float64
	TransferGas       uint64 // the gas limit each transfer declared
	Deposits          int
	DepositBlocks     int64
	DepositLatency    time.Duration // submission to the balance query showing it
	Withdrawals       int
	WithdrawBlocks    int64
	WithdrawLatency   time.Duration // submission of the command to the payout's result on chain
	Failed            int           // transfers refused by the mempool
	BalancesVerified  bool          // every sender's balance after the transfers is what they imply
	DepositHeights    []int64       `json:"-"`
	WithdrawHeights   []int64       `json:"-"`
	depositDurations  []time.Duration
	withdrawDurations []time.Duration
}

func (r *PeggedResult) String() string {
	return fmt.Sprintf("private transfers: %d executed in %s = %.0f/s end to end (gas limit %d, refused %d, balances verified %v); "+
		"deposit to spendable: median %d blocks, %s (%d deposits); withdraw to paid: median %d blocks, %s (%d withdrawals)",
		r.Transfers, r.TransferSpan.Round(time.Millisecond), r.TransfersPerSec, r.TransferGas, r.Failed, r.BalancesVerified,
		r.DepositBlocks, r.DepositLatency.Round(time.Millisecond), r.Deposits,
		r.WithdrawBlocks, r.WithdrawLatency.Round(time.Millisecond), r.Withdrawals)
}

// RunPegged performs the measurement.
func RunPegged(ctx context.Context, cfg PeggedConfig) (*PeggedResult, error) {
	logf := cfg.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if cfg.Senders < 2 || cfg.Transfers < cfg.Senders || cfg.DepositUnits == 0 || cfg.WithdrawUnits == 0 || cfg.WithdrawUnits > cfg.DepositUnits {
		return nil, errors.New("pegged bench: at least 2 senders, a transfer per sender, and a withdrawal no larger than the deposit")
	}
	c, owner, rec, endpoint, err := deployOne(ctx, cfg.RPC, cfg.Trust, cfg.Funder, cfg.Code)
	if err != nil {
		return nil, err
	}
	escrow := api.EscrowAccount(rec.Identity)
	logf("ppha deployed as %s on worker %s; escrow account %s", rec.Identity.Short(), endpoint, escrow.Address())

	per := cfg.Transfers / cfg.Senders
	senders := make([]*crypto.KeyPair, cfg.Senders)
	signers := make([]*client.Signer, cfg.Senders)
	p := c.Params()
	for i := range senders {
		if senders[i], _, err = crypto.GenerateKeyPair(); err != nil {
			return nil, err
		}
		signers[i] = c.NewSigner(senders[i])
		fees := uint64(per+8) * (p.MinFee(1024) + p.GasFee(p.MaxCommandGas/10))
		if _, err := owner.Submit(ctx, &api.Transfer{To: senders[i].Public(), Amount: cfg.DepositUnits + fees}); err != nil {
			return nil, fmt.Errorf("fund sender: %w", err)
		}
	}
	res := &PeggedResult{}

	// Deposits, one at a time: submission → the depositor's balance query
	// showing it.
	want := strconv.FormatUint(cfg.DepositUnits, 10)
	for i, s := range signers {
		t0 := time.Now()
		tx, err := s.Submit(ctx, &api.Transfer{To: escrow, Amount: cfg.DepositUnits})
		if err != nil {
			return nil, fmt.Errorf("deposit: %w", err)
		}
		for {
			out, h, err := c.QueryContract(ctx, senders[i], rec, []byte("balance"))
			if err == nil && string(out) == want {
				res.depositDurations = append(res.depositDurations, time.Since(t0))
				res.DepositHeights = append(res.DepositHeights, h-tx.Height)
				break
			}
			if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
				return nil, err
			}
		}
	}
	res.Deposits = len(res.depositDurations)
	logf("deposits spendable: %v", res.depositDurations)

	// The gas a transfer declares: one measured (alone in its block, so a
	// block's first command, the dearest: its instance is fresh), with a
	// margin. The declared gas, not the used, fills a worker's
	// max_worker_gas_per_block.
	r, _, err := signers[0].Execute(ctx, rec, []byte(ppha.Pad("transfer "+senders[1].Public().Hex()+" 1")), client.WithGas(p.MaxCommandGas/10))
	if err != nil {
		return nil, fmt.Errorf("probe transfer: %w", err)
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("probe transfer: %w", err)
	}
	res.TransferGas = max(r.GasUsed*3/2, 100_000)
	// Pre-sign and seal the transfers: a ring, each sender sends per
	// transfers of 1 unit to the next, so every balance ends where it was
	// after the probe.
	lists := make([][][]byte, cfg.Senders)
	for i, k := range senders {
		ch, err := channel.New(k, rec.Ecdh, api.ChannelPurposeCommand)
		if err != nil {
			return nil, err
		}
		a, err := c.Account(ctx, k.Public())
		if err != nil {
			return nil, err
		}
		to := senders[(i+1)%len(senders)].Public().Hex()
		for n := 0; n < per; n++ {
			nonce := a.Nonce + uint64(n)
			call := &api.ContractCommand{Contract: rec.Identity, Nonce: nonce, GasLimit: res.TransferGas, Sealed: ch.Seal(api.Pad([]byte(ppha.Pad("transfer "+to+" 1"))), api.CommandAD(rec.Identity, k.Public(), nonce))}
			lists[i] = append(lists[i], client.BuildTx(c.ChainID(), p, k, nonce, call).Encode())
		}
		signers[i].Resync()
	}
	start := time.Now()
	sub, err := broadcastExecuted(ctx, c, cfg.RPC, endpoint, lists, cfg.Batch)
	if err != nil {
		return nil, err
	}
	res.TransferSpan = time.Since(start)
	res.Transfers = sub.submitted - sub.refused
	res.Failed = sub.refused
	res.TransfersPerSec = float64(res.Transfers) / res.TransferSpan.Seconds()
	logf("transfers done: %d in %s", res.Transfers, res.TransferSpan)
	// The ring leaves every balance as it was, except the probe's unit.
	res.BalancesVerified = sub.refused == 0
	for i, k := range senders {
		exp := cfg.DepositUnits
		switch i {
		case 0:
			exp--
		case 1:
			exp++
		}
		out, _, err := c.QueryContract(ctx, k, rec, []byte("balance"))
		if err != nil || string(out) != strconv.FormatUint(exp, 10) {
			res.BalancesVerified = false
		}
	}

	// Withdrawals, one at a time: ids 1, 2... in order; submission → the
	// payout's result on chain.
	for i, s := range signers {
		t0 := time.Now()
		tx, err := s.Command(ctx, rec, []byte(ppha.Pad("withdraw "+strconv.FormatUint(cfg.WithdrawUnits, 10))))
		if err != nil {
			return nil, fmt.Errorf("withdraw: %w", err)
		}
		for {
			pr, err := c.Payout(ctx, rec.Identity, uint64(i+1))
			if err == nil && pr != nil {
				if !pr.Paid {
					return nil, fmt.Errorf("withdrawal %d refused: %s", i+1, pr.Reason)
				}
				res.withdrawDurations = append(res.withdrawDurations, time.Since(t0))
				res.WithdrawHeights = append(res.WithdrawHeights, pr.Height-tx.Height)
				break
			}
			if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
				return nil, err
			}
		}
	}
	res.Withdrawals = len(res.withdrawDurations)
	res.DepositBlocks, res.DepositLatency = median(res.DepositHeights), median(res.depositDurations)
	res.WithdrawBlocks, res.WithdrawLatency = median(res.WithdrawHeights), median(res.withdrawDurations)
	return res, nil
}

func median[T int64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
