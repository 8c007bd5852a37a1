package app

import (
	"context"
	"sync"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
)

// CometBFT calls Query and CheckTx concurrently with FinalizeBlock and
// Commit (the app runs on a connection-synchronized client). Run with -race.
func TestConcurrentQueryCheckTxAndBlocks(t *testing.T) {
	h := newHarness(t, genesis())
	h.block()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			tx := h.tx(bob, uint64(g), &api.Transfer{To: alice.Public(), Amount: 1})
			for {
				select {
				case <-stop:
					return
				default:
				}
				if res, _ := h.app.Query(context.Background(), &abci.RequestQuery{Path: api.QueryAccount, Data: bob.Public().Bytes(), Prove: true}); res.Code != 0 {
					t.Errorf("query: %s", res.Log)
					return
				}
				h.app.Query(context.Background(), &abci.RequestQuery{Path: api.QueryMessages})
				h.app.Info(context.Background(), &abci.RequestInfo{})
				h.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: tx})
			}
		}(g)
	}
	var nonce uint64
	for b := 0; b < 30; b++ {
		txs := make([][]byte, 20)
		for i := range txs {
			txs[i] = h.tx(alice, nonce, &api.Transfer{To: bob.Public(), Amount: 1})
			nonce++
		}
		res := h.block(txs...)
		for _, r := range res.TxResults {
			if r.Code != 0 {
				t.Fatal(r.Log)
			}
		}
	}
	close(stop)
	wg.Wait()
	if got := h.account(bob.Public()).Balance; got != 1000*api.Unit+600 {
		t.Fatalf("bob has %d", got)
	}
}
