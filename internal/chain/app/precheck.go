package app

import (
	"context"

	abcicli "github.com/cometbft/cometbft/abci/client"
	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/proxy"
)

// Admission on both cores.
//
// CometBFT's local ABCI client holds one mutex per connection for every
// call, so the mempool connection runs CheckTx one at a time although
// broadcast_tx_* requests arrive concurrently from many RPC connections.
// Most of a transfer's CheckTx is the stateless part (decoding and the
// sr25519 signature), which needs no lock: ClientCreator's clients run it
// (PreCheck) on the caller's goroutine before taking the lock, and its
// outcome lands in the signature cache, which CheckTx under the lock then
// hits. Admission itself is unchanged: CheckTx under the lock still decodes,
// refuses a bad signature (from the cache), and checks nonce, fee and
// balance on the pending state in the order the mempool calls it; rechecks
// after a block go straight to CheckTx (their signatures are cached).

// PreCheck runs the stateless part of CheckTx on tx (size, decoding, chain
// id, signature) and remembers the signature's outcome for CheckTx and
// FinalizeBlock. It admits nothing and changes no state; it is safe to call
// from any number of goroutines at once.
func (a *App) PreCheck(tx []byte) {
	a.mu.Lock()
	params := a.params
	a.mu.Unlock()
	_, _ = a.decodeAndVerify(tx, params)
}

// ClientCreator returns the ABCI client creator for a node running a in
// process: CometBFT's connection-synchronized local clients (one mutex per
// connection: consensus, mempool, query, snapshot), whose CheckTxAsync of a
// new transaction runs PreCheck before taking the connection's mutex, and
// whose synchronous CheckTx (the /check_tx RPC) admits nothing.
func ClientCreator(a *App) proxy.ClientCreator {
	return &preCheckCreator{app: a, local: proxy.NewConnSyncLocalClientCreator(a)}
}

type preCheckCreator struct {
	app   *App
	local proxy.ClientCreator
}

func (c *preCheckCreator) NewABCIClient() (abcicli.Client, error) {
	cl, err := c.local.NewABCIClient()
	if err != nil {
		return nil, err
	}
	return &preCheckClient{Client: cl, app: c.app}, nil
}

// preCheckClient is a local client whose CheckTx calls of new transactions
// run PreCheck first, outside the client's mutex.
type preCheckClient struct {
	abcicli.Client
	app *App
}

func (c *preCheckClient) CheckTxAsync(ctx context.Context, req *abci.RequestCheckTx) (*abcicli.ReqRes, error) {
	if req.Type == abci.CheckTxType_New {
		c.app.PreCheck(req.Tx)
	}
	return c.Client.CheckTxAsync(ctx, req)
}

// CheckTx is the synchronous call, which CometBFT's mempool never makes
// (it admits and rechecks with CheckTxAsync): only the /check_tx RPC does,
// and promises the transaction is neither executed nor added to the
// mempool. So it is a dry run (App.DryCheckTx): the same answer as an
// admission, with the pending state left as it was; otherwise the same
// transaction broadcast afterwards would be refused as a stale nonce.
// It needs no connection lock (the App's own lock guards the pending state).
func (c *preCheckClient) CheckTx(ctx context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	if req.Type == abci.CheckTxType_New {
		c.app.PreCheck(req.Tx)
	}
	return c.app.DryCheckTx(ctx, req)
}
