package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
)

// ContractConfig is a run of confidential commands and queries against a
// devnet: the token is deployed, Senders accounts get tokens, then
// Commands transfers are submitted (pre-signed, sealed to the contract) and
// timed until a worker has executed them; then Queries balance queries are
// sent to a worker by Concurrency clients.
type ContractConfig struct {
	RPC         string
	Code        []byte // the token's WebAssembly
	Commands    int
	Queries     int
	Senders     int
	Concurrency int
	Batch       int
	Funder      *crypto.KeyPair
	Log         func(format string, args ...any)
	// Trust is the client's trust root (proved reads of the contract and
	// its worker are verified from it).
	Trust client.Options
}

// ContractResult of a run.
type ContractResult struct {
	Commands       int
	CommandSpan    time.Duration // first submission to the worker having dispatched the last command's block
	CommandsPerSec float64
	Queries        int
	QuerySpan      time.Duration
	QueriesPerSec  float64
	P50, P99       time.Duration
	Failed         int
	TransferGas    uint64 // the gas limit each transfer declared (3x a probe's use)
	// WrongBalances: query answers that were not the balance every
	// command having run implies (0 when all ran).
	WrongBalances int
}

func (r *ContractResult) String() string {
	return fmt.Sprintf("commands: %d executed in %s = %.0f/s end to end (%d gas declared each); queries: %d in %s = %.0f/s, p50 %s, p99 %s (failed %d, wrong balances %d)",
		r.Commands, r.CommandSpan.Round(time.Millisecond), r.CommandsPerSec, r.TransferGas, r.Queries, r.QuerySpan.Round(time.Millisecond), r.QueriesPerSec,
		r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Failed, r.WrongBalances)
}

// TransferGas is the gas limit the benchmark's token transfers declare.
// A transfer uses ~14,400 gas, but the first command of a block on the
// contract's post-instantiation state ~21,800 (the Go runtime's
// first-call work): a limit below that runs the first command out of
// gas, which breaks the instance, so the next command is a first one too,
// and so on (every command fails, each costing a restore). 100,000 covers the
// first call with a margin; a block admits max_worker_gas_per_block /
// TransferGas (3,000 with the defaults) of them per worker.
const TransferGas = 100_000

// Validate refuses a run that cannot measure: fewer than 2 senders (the
// probe goes from one to another), commands not a positive multiple of
// the senders (each sends as many), or no queries, query clients or batch.
func (c ContractConfig) Validate() error {
	switch {
	case c.Senders < 2:
		return errors.New("senders must be at least 2")
	case c.Commands < c.Senders || c.Commands%c.Senders != 0:
		return fmt.Errorf("commands (%d) must be a positive multiple of senders (%d)", c.Commands, c.Senders)
	case c.Queries < 1, c.Concurrency < 1, c.Batch < 1:
		return errors.New("queries, concurrency and batch must be positive")
	case c.Funder == nil:
		return errors.New("no funder key")
	}
	return nil
}

// RunContracts performs the measurement (errors: Validate's, then the
// network's).
func RunContracts(ctx context.Context, cfg ContractConfig) (*ContractResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logf := cfg.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	c, owner, rec, endpoint, err := deployOne(ctx, cfg.RPC, cfg.Trust, cfg.Funder, cfg.Code)
	if err != nil {
		return nil, err
	}
	logf("token deployed as %s on worker %s", rec.Identity.Short(), endpoint)
	senders := make([]*crypto.KeyPair, cfg.Senders)
	for i := range senders {
		if senders[i], _, err = crypto.GenerateKeyPair(); err != nil {
			return nil, err
		}
		if _, err := owner.Submit(ctx, &api.Transfer{To: senders[i].Public(), Amount: uint64(cfg.Commands/cfg.Senders+2) * (c.Params().MinFee(512) + c.Params().GasFee(TransferGas) + 1)}); err != nil {
			return nil, fmt.Errorf("fund sender: %w", err)
		}
		mint := []byte(fmt.Sprintf("mint %s %d", senders[i].Public().Hex(), 1<<40))
		if i < len(senders)-1 {
			_, err = owner.Command(ctx, rec, mint)
		} else {
			// The last mint waits for its receipt: the owner's earlier
			// ones are in its block or before, so the probe below runs
			// alone in a later block.
			_, _, err = owner.Execute(ctx, rec, mint)
		}
		if err != nil {
			return nil, fmt.Errorf("mint: %w", err)
		}
	}
	// The gas each transfer declares: one measured alone in its block (a
	// block's first command: the instance starts from its
	// post-instantiation state), with a 3x margin, as a wallet would
	// estimate it. The margin covers the Go guest's garbage collector:
	// over 30,000 transfers in one block most use ~14,400 gas, the first
	// ~21,700, and the few during which a collection runs up to ~51,000;
	// with 1.5x those few ran out of gas. The declared gas, not the used,
	// fills a worker's max_worker_gas_per_block.
	probe, _, err := c.NewSigner(senders[0]).Execute(ctx, rec, []byte("transfer "+senders[1].Public().Hex()+" 1"), client.WithGas(TransferGas))
	if err != nil {
		return nil, fmt.Errorf("probe transfer: %w", err)
	}
	if err := probe.Err(); err != nil {
		return nil, fmt.Errorf("probe transfer: %w", err)
	}
	res := &ContractResult{TransferGas: probe.GasUsed * 3}
	logf("a transfer alone in its block used %d gas; each declares %d", probe.GasUsed, res.TransferGas)
	// Pre-sign and seal the commands: sender i sends i+1 per transfer to
	// the next sender; its nonces ascend (sender 0's from 1: the probe
	// took 0).
	per := make([][][]byte, cfg.Senders)
	for i, k := range senders {
		ch, err := channel.New(k, rec.Ecdh, api.ChannelPurposeCommand)
		if err != nil {
			return nil, err
		}
		to := senders[(i+1)%len(senders)].Public().Hex()
		for n := 0; n < cfg.Commands/cfg.Senders; n++ {
			nonce := uint64(n)
			if i == 0 {
				nonce++ // the probe's
			}
			call := &api.ContractCommand{Contract: rec.Identity, Nonce: nonce, GasLimit: res.TransferGas, Sealed: ch.Seal(api.Pad([]byte("transfer "+to+" "+strconv.Itoa(i+1))), api.CommandAD(rec.Identity, k.Public(), nonce))}
			per[i] = append(per[i], client.BuildTx(c.ChainID(), c.Params(), k, nonce, call).Encode())
		}
	}
	start := time.Now()
	sub, err := broadcastExecuted(ctx, c, cfg.RPC, endpoint, per, cfg.Batch)
	if err != nil {
		return nil, err
	}
	res.CommandSpan = time.Since(start)
	res.Commands = sub.submitted - sub.refused
	res.CommandsPerSec = float64(res.Commands) / res.CommandSpan.Seconds()
	logf("commands done: %d in %s", res.Commands, res.CommandSpan)

	// Queries: each sender opens a query session with the worker (a
	// signed handshake, timed with the queries), then Concurrency clients
	// send the queries, each sealed under its sender's session when sent.
	qstart := time.Now()
	sessions := make([]*client.QuerySession, len(senders))
	for i, k := range senders {
		if sessions[i], err = client.OpenQuerySession(ctx, k, rec.Identity, rec.Workers[0], endpoint, time.Minute); err != nil {
			return nil, err
		}
	}
	// Sender i sent i+1 per transfer to sender i+1 (the last to sender 0),
	// and the probe 1 from sender 0 to sender 1: a balance that differs
	// means a command did not run.
	n := uint64(cfg.Commands / cfg.Senders)
	want := make([]string, len(senders))
	for i := range senders {
		b := uint64(1<<40) - n*uint64(i+1) + n*uint64(i)
		switch i {
		case 0:
			b += n*uint64(len(senders)) - 1
		case 1:
			b++
		}
		want[i] = strconv.FormatUint(b, 10)
	}
	lat := make([]time.Duration, cfg.Queries)
	var next, failed, wrong atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < cfg.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.Queries {
					return
				}
				t0 := time.Now()
				out, _, err := sessions[i%len(sessions)].Query(ctx, []byte("balance"))
				if err != nil {
					failed.Add(1)
				} else if string(out) != want[i%len(sessions)] {
					wrong.Add(1)
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	res.QuerySpan = time.Since(qstart)
	res.Queries = cfg.Queries
	res.QueriesPerSec = float64(cfg.Queries) / res.QuerySpan.Seconds()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res.P50, res.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	res.Failed = sub.refused + int(failed.Load())
	res.WrongBalances = int(wrong.Load())
	return res, nil
}

// broadcastExecuted submits the pre-signed lists (broadcast), waits for the
// mempool to empty, then for the worker at endpoint to have dispatched the
// chain's tip: every submitted command has run.
func broadcastExecuted(ctx context.Context, c *client.Client, rpc, endpoint string, lists [][][]byte, batch int) (*broadcastResult, error) {
	sub, err := broadcast(ctx, rpc, lists, batch)
	if err != nil {
		return nil, err
	}
	if err := waitMempoolEmpty(ctx, c); err != nil {
		return nil, err
	}
	tip, err := c.Height(ctx)
	if err != nil {
		return nil, err
	}
	for {
		h, err := dispatched(ctx, endpoint)
		if err != nil {
			return nil, err
		}
		if h >= tip {
			return sub, nil
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// deployOne dials rpc, uploads code with funder as its deployer on one
// worker, waits until it runs, and returns the client, the deployer's
// signer, the contract's record and its worker's API endpoint.
func deployOne(ctx context.Context, rpc string, trust client.Options, funder *crypto.KeyPair, code []byte) (*client.Client, *client.Signer, *api.ContractRecord, string, error) {
	c, err := client.DialOptions(ctx, rpc, trust)
	if err != nil {
		return nil, nil, nil, "", err
	}
	owner := c.NewSigner(funder)
	upload, _, err := owner.Upload(ctx, code, 1, nil)
	if err != nil {
		return nil, nil, nil, "", fmt.Errorf("upload: %w", err)
	}
	rec, err := c.WaitContract(ctx, upload)
	if err != nil {
		return nil, nil, nil, "", err
	}
	endpoint, err := c.WorkerEndpoint(ctx, rec.Workers[0])
	if err != nil {
		return nil, nil, nil, "", err
	}
	return c, owner, rec, endpoint, nil
}

func dispatched(ctx context.Context, endpoint string) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(endpoint, "/")+"/info", nil)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer r.Body.Close()
	var info struct {
		Dispatched int64 `json:"dispatched_block"`
	}
	return info.Dispatched, json.NewDecoder(r.Body).Decode(&info)
}
