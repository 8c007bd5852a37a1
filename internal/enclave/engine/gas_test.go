package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/relayer"
	"github.com/phalago/phala/internal/testnet"
	"github.com/phalago/phala/internal/wat"
)

// testGas is the gas limit the tests' commands declare.
const testGas = 10_000_000

// queryBound is how long a query to one contract may take while another
// contract's block of out-of-gas commands is dispatched on the same
// worker (docs/economy.md, "Execution is paid for"); without contention
// it takes about a millisecond.
const queryBound = 150 * time.Millisecond

// Issue 10 point 7: a block full of commands that run out of gas costs
// their senders in proportion to the gas they declared (fee = size fee +
// gas_limit · gas_price_per_mgas / 10^6, paid though every command fails),
// each runs exactly its declared gas on the worker, and a query to an
// unrelated contract on the same worker, sent while that block is
// dispatched, is answered before the dispatch ends and within queryBound,
// at the last height whose state it reflects.
func TestOutOfGasBlockPaidAndQueriesServed(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + contracts")
	}
	ch := newChain(t)
	gk := ch.engine(t, ch.gkDir)
	w := ch.engine(t, t.TempDir())
	aliceS, bobS := ch.c.NewSigner(alice), ch.c.NewSigner(bob)
	register(t, ch, w, bob)
	register(t, ch, gk, alice)
	relay(t, ch, bobS, gk, w)

	spin := watFile(t, "spincmd.wat")
	src, err := os.ReadFile("../contracts/testdata/counter.wat")
	if err != nil {
		t.Fatal(err)
	}
	counter := wat.MustCompile(string(src))
	var recs [2]*api.ContractRecord
	for i, code := range [][]byte{spin, counter} {
		if _, err := aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, code), Replicas: 1}); err != nil {
			t.Fatal(err)
		}
		upload := api.UploadID(alice.Public(), sha256.Sum256(code), uint64(i))
		testnet.WaitFor(t, time.Minute, "contract deployed", func() (bool, error) {
			relay(t, ch, bobS, gk, w)
			v, _, _ := queryRaw(t, ch.c, api.QueryContractUpload, upload[:])
			if len(v) != 32 {
				return false, nil
			}
			cv, _, err := queryRaw(t, ch.c, api.QueryContract, v)
			if err == nil {
				recs[i], err = api.DecodeContractRecord(cv)
			}
			return err == nil, err
		})
	}
	spinRec, counterRec := recs[0], recs[1]
	if _, err := aliceS.Command(ctx(t), counterRec, []byte("inc")); err != nil {
		t.Fatal(err)
	}
	relay(t, ch, bobS, gk, w)
	// A first query compiles the counter's query runtime.
	query := func() (*api.ContractQueryResponse, *client.PendingQuery) {
		p, err := client.NewQuery(bob, counterRec.Identity, counterRec.Ecdh, w.Identity(), []byte("value"), time.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := w.Query(ctx(t), p.Query)
		if err != nil {
			t.Fatal(err)
		}
		return resp, p
	}
	query()

	// Four senders, each one out-of-gas command declaring a different
	// limit, broadcast together (one block, or a few: the budget holds
	// per block either way).
	p := ch.c.Params()
	limits := []uint64{p.MaxCommandGas / 4, p.MaxCommandGas / 2, p.MaxCommandGas, p.MaxCommandGas}
	var sum uint64
	for _, l := range limits {
		sum += l
	}
	if sum > p.MaxWorkerGasPerBlock {
		t.Fatalf("test commands (%d gas) exceed one block's budget %d", sum, p.MaxWorkerGasPerBlock)
	}
	senders := []*crypto.KeyPair{crypto.MustKeyPairFromURI("//Charlie"), crypto.MustKeyPairFromURI("//Dave"), crypto.MustKeyPairFromURI("//Eve"), crypto.MustKeyPairFromURI("//Ferdie")}
	before := make([]api.Account, len(senders))
	txs := make([]*api.Tx, len(senders))
	hashes := make([][32]byte, len(senders))
	for i, k := range senders {
		if before[i], err = ch.c.Account(ctx(t), k.Public()); err != nil {
			t.Fatal(err)
		}
		chn, err := channel.New(k, spinRec.Ecdh, api.ChannelPurposeCommand)
		if err != nil {
			t.Fatal(err)
		}
		nonce := before[i].Nonce
		txs[i] = client.BuildTx(ch.c.ChainID(), p, k, nonce, &api.ContractCommand{Contract: spinRec.Identity, Nonce: nonce, GasLimit: limits[i],
			Sealed: chn.Seal(api.Pad([]byte("spin")), api.CommandAD(spinRec.Identity, k.Public(), nonce))})
		if hashes[i], err = ch.c.Broadcast(ctx(t), txs[i].Encode()); err != nil {
			t.Fatal(err)
		}
	}
	var heights []int64
	for i, h := range hashes {
		res, err := ch.c.WaitTx(ctx(t), h)
		if err != nil || res.Code != api.CodeOK {
			t.Fatalf("command %d: %v %+v", i, err, res)
		}
		heights = append(heights, res.Height)
	}
	// Fees: each sender paid its size fee plus its declared gas at the
	// price, in proportion to its limit.
	for i, k := range senders {
		after, err := ch.c.Account(ctx(t), k.Public())
		if err != nil {
			t.Fatal(err)
		}
		gasFee := limits[i] * p.GasPricePerMGas / 1_000_000
		if paid := before[i].Balance - after.Balance; paid != txs[i].Fee || paid != p.MinFee(len(txs[i].Encode()))+gasFee {
			t.Fatalf("sender %d paid %d (fee %d), want size fee %d + gas fee %d", i, paid, txs[i].Fee, p.MinFee(len(txs[i].Encode())), gasFee)
		}
	}

	// The worker: headers first, then the blocks in one dispatch, with a
	// query to the counter while it runs.
	top, err := ch.c.Height(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.c.SignedHeader(ctx(t), top+1); err != nil {
		t.Fatal(err)
	}
	f := &relayer.Fetcher{C: ch.c}
	info := w.Info()
	hb, err := f.Headers(ctx(t), info.Synced+1, top+1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.SyncHeaders(hb); err != nil {
		t.Fatal(err)
	}
	bb, err := f.Blocks(ctx(t), info.Dispatched+1, top)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var dispatchTook time.Duration
	go func() {
		start := time.Now()
		_, err := w.DispatchBlocks(bb)
		dispatchTook = time.Since(start)
		done <- err
	}()
	// Wait (with a deadline) until the dispatch holds the engine's lock.
	deadline := time.Now().Add(10 * time.Second)
	for w.mu.TryLock() {
		w.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("dispatch never started")
		}
		time.Sleep(50 * time.Microsecond)
	}
	start := time.Now()
	resp, pq := query()
	took := time.Since(start)
	select {
	case err := <-done:
		t.Fatalf("the query (%v) was answered only after the dispatch (%v, err %v): it waited for the out-of-gas block", took, dispatchTook, err)
	default:
	}
	if took > queryBound {
		t.Fatalf("query took %v while the block was dispatched, bound %v", took, queryBound)
	}
	out, h, err := pq.Open(resp)
	if err != nil || binary.LittleEndian.Uint64(out) != 1 || h > heights[0]-1 || h < info.Dispatched {
		t.Fatalf("query during dispatch: %x at height %d (dispatched %d before, commands at %v): %v", out, h, info.Dispatched, heights, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("query answered in %v while %d gas of out-of-gas commands were dispatched in %v", took, sum, dispatchTook)

	// Each command ran exactly its declared gas and failed out of gas.
	for i, k := range senders {
		rc, err := w.Receipt(ctx(t), spinRec.Identity, k.Public(), txs[i].Call.(*api.ContractCommand).Nonce)
		if err != nil {
			t.Fatal(err)
		}
		r, err := client.OpenReceipt(k, spinRec, rc)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != api.ReceiptFailed || r.GasUsed != limits[i] {
			t.Fatalf("receipt %d: status %s, gas %d of %d: %s", i, r.Status, r.GasUsed, limits[i], r.Output)
		}
	}
}
