package app

import (
	"context"
	"sync"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// benchBlock signs n transfers from 100 funded accounts.
func benchBlock(b *testing.B, h *harness, keys []*crypto.KeyPair, round uint64, n int) [][]byte {
	txs := make([][]byte, n)
	for i := range txs {
		k := keys[i%len(keys)]
		txs[i] = h.tx(k, round*uint64(n/len(keys))+uint64(i/len(keys)), &api.Transfer{To: keys[(i+1)%len(keys)].Public(), Amount: 1})
	}
	return txs
}

func benchHarness(b *testing.B) (*harness, []*crypto.KeyPair) {
	g := genesis()
	keys := make([]*crypto.KeyPair, 100)
	for i := range keys {
		keys[i], _, _ = crypto.GenerateKeyPair()
		g.Accounts = append(g.Accounts, api.GenesisAccount{Address: keys[i].Public(), Balance: 1000 * api.Unit})
	}
	return newHarness(b, g), keys
}

// BenchmarkCheckTx measures mempool admission of a transfer, signature
// verification included (each tx is new).
func BenchmarkCheckTx(b *testing.B) {
	h, keys := benchHarness(b)
	txs := benchBlock(b, h, keys, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, _ := h.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: txs[i]})
		if res.Code != 0 {
			b.Fatal(res.Log)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkFinalizeBlock measures executing and committing blocks of 1,000
// transfers whose signatures were already checked in CheckTx (the normal
// path: the signature cache hits).
func BenchmarkFinalizeBlock(b *testing.B) {
	h, keys := benchHarness(b)
	const perBlock = 1000
	blocks := make([][][]byte, b.N)
	for i := range blocks {
		blocks[i] = benchBlock(b, h, keys, uint64(i), perBlock)
		for _, tx := range blocks[i] {
			h.app.sigs.put(api.TxHash(tx), true)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.height++
		res, err := h.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Height: h.height, Time: h.now, Txs: blocks[i]})
		if err != nil || res.TxResults[perBlock-1].Code != 0 {
			b.Fatal(err, res.TxResults[perBlock-1].Log)
		}
		if _, err := h.app.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*perBlock)/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkCheckTxConcurrent measures mempool admission of transfers
// through the mempool connection's client (ClientCreator: decoding and the
// signature run before its lock) from 8 goroutines, as broadcast_tx_sync
// calls arrive from 8 RPC connections; each goroutine sends the
// transactions of its own accounts in nonce order.
func BenchmarkCheckTxConcurrent(b *testing.B) {
	const conns = 8
	h, keys := benchHarness(b)
	txs := benchBlock(b, h, keys, 0, b.N)
	cl := mempoolClient(b, h.app)
	b.ResetTimer()
	var wg sync.WaitGroup
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range txs {
				if (i%len(keys))%conns != c {
					continue
				}
				rr, err := cl.CheckTxAsync(context.Background(), &abci.RequestCheckTx{Tx: txs[i]})
				if err != nil || rr.Response.GetCheckTx().Code != 0 {
					b.Error(err, rr.Response.GetCheckTx().Log)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
}
