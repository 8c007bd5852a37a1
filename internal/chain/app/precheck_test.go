package app

import (
	"context"
	"sync"
	"testing"

	abcicli "github.com/cometbft/cometbft/abci/client"
	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// mempoolClient is the client CometBFT's mempool would use for a.
func mempoolClient(t testing.TB, a *App) abcicli.Client {
	t.Helper()
	cl, err := ClientCreator(a).NewABCIClient()
	if err != nil {
		t.Fatal(err)
	}
	cl.SetResponseCallback(func(*abci.Request, *abci.Response) {})
	return cl
}

// Concurrent CheckTx calls through the mempool client (PreCheck outside
// its lock) still admit each sender's transactions in nonce order and
// refuse bad signatures and nonces, and the synchronous CheckTx (the
// /check_tx dry run) answers the same. Run with -race.
func TestConcurrentPreCheckedCheckTx(t *testing.T) {
	const senders, perSender = 4, 15
	g := genesis()
	keys := make([]*crypto.KeyPair, senders)
	for i := range keys {
		keys[i], _, _ = crypto.GenerateKeyPair()
		g.Accounts = append(g.Accounts, api.GenesisAccount{Address: keys[i].Public(), Balance: 1000 * api.Unit})
	}
	h := newHarness(t, g)
	h.block()
	cl := mempoolClient(t, h.app)

	badSig := func(tx []byte) []byte {
		b := append([]byte(nil), tx...)
		b[len(b)-10] ^= 1
		return b
	}
	// Each sender's steps for nonce n, in order; amounts differ so that no
	// two transactions are the same bytes.
	steps := []struct {
		name string
		tx   func(k *crypto.KeyPair, n uint64) []byte
		want api.Code
	}{
		{"bad signature", func(k *crypto.KeyPair, n uint64) []byte {
			return badSig(h.tx(k, n, &api.Transfer{To: alice.Public(), Amount: 7}))
		}, api.CodeBadSignature},
		{"future nonce", func(k *crypto.KeyPair, n uint64) []byte {
			return h.tx(k, n+2, &api.Transfer{To: alice.Public(), Amount: 3})
		}, api.CodeFutureNonce},
		{"valid", func(k *crypto.KeyPair, n uint64) []byte {
			return h.tx(k, n, &api.Transfer{To: alice.Public(), Amount: 1})
		}, api.CodeOK},
		{"stale nonce", func(k *crypto.KeyPair, n uint64) []byte {
			return h.tx(k, n, &api.Transfer{To: alice.Public(), Amount: 2})
		}, api.CodeStaleNonce},
	}
	accepted := make([][][]byte, senders)
	var wg sync.WaitGroup
	for s, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range uint64(perSender) {
				for i, st := range steps {
					tx := st.tx(k, n)
					req := &abci.RequestCheckTx{Tx: tx, Type: abci.CheckTxType_New}
					var code uint32
					var log string
					// Admission is CheckTxAsync's (the mempool's call);
					// the synchronous CheckTx (/check_tx) is a dry run.
					if st.want == api.CodeOK || (int(n)+i)%2 == 0 {
						rr, err := cl.CheckTxAsync(context.Background(), req)
						if err != nil {
							t.Error(err)
							return
						}
						code, log = rr.Response.GetCheckTx().Code, rr.Response.GetCheckTx().Log
					} else {
						res, err := cl.CheckTx(context.Background(), req)
						if err != nil {
							t.Error(err)
							return
						}
						code, log = res.Code, res.Log
					}
					if api.Code(code) != st.want {
						t.Errorf("sender %d nonce %d %s: code %v (%s), want %v", s, n, st.name, api.Code(code), log, st.want)
						return
					}
					if code == 0 {
						accepted[s] = append(accepted[s], tx)
					}
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// A recheck of a bad signature is refused too (from the cache).
	bad := badSig(h.tx(keys[0], perSender, &api.Transfer{To: alice.Public(), Amount: 1}))
	h.app.PreCheck(bad)
	rr, err := cl.CheckTxAsync(context.Background(), &abci.RequestCheckTx{Tx: bad, Type: abci.CheckTxType_Recheck})
	if err != nil || api.Code(rr.Response.GetCheckTx().Code) != api.CodeBadSignature {
		t.Fatalf("recheck of a bad signature: %v %v", err, rr.Response.GetCheckTx())
	}
	var txs [][]byte
	for _, a := range accepted {
		txs = append(txs, a...)
	}
	for i, r := range h.block(txs...).TxResults {
		if r.Code != 0 {
			t.Fatalf("tx %d: %s", i, r.Log)
		}
	}
	if got, want := h.account(alice.Public()).Balance, 1000*api.Unit+senders*perSender; got != want {
		t.Fatalf("alice has %d, want %d", got, want)
	}
	for _, k := range keys {
		if got := h.account(k.Public()).Nonce; got != perSender {
			t.Fatalf("sender nonce %d, want %d", got, perSender)
		}
	}
}

// CometBFT's /check_tx RPC asks the mempool connection's CheckTx (the
// synchronous call; the mempool itself only uses CheckTxAsync) and
// promises the transaction is neither executed nor added to the mempool:
// it must not advance the pending state either, or the same transaction
// broadcast afterwards is refused as a stale nonce (and a later nonce of
// the sender is admitted behind a gap no mempool holds).
func TestCheckTxRPCDoesNotAdmit(t *testing.T) {
	h := newHarness(t, genesis())
	h.block()
	cl := mempoolClient(t, h.app)
	tx := h.tx(alice, 0, &api.Transfer{To: bob.Public(), Amount: 5})
	for i := range 2 {
		res, err := cl.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: tx})
		if err != nil || res.Code != 0 {
			t.Fatalf("check_tx %d: %v %v", i, err, res)
		}
	}
	rr, err := cl.CheckTxAsync(context.Background(), &abci.RequestCheckTx{Tx: tx, Type: abci.CheckTxType_New})
	if err != nil || rr.Response.GetCheckTx().Code != 0 {
		t.Fatalf("broadcast after check_tx: %v %v", err, rr.Response.GetCheckTx())
	}
	// The dry run still sees what the mempool admitted.
	res, err := cl.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: tx})
	if err != nil || api.Code(res.Code) != api.CodeStaleNonce {
		t.Fatalf("check_tx of an admitted nonce: %v %v, want stale nonce", err, res)
	}
}
