package client_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/testnet"
)

// lyingProxy forwards CometBFT JSON-RPC to a node; while lie is set, it
// rewrites the result of the requests it matches.
type lyingProxy struct {
	node string
	lie  atomic.Pointer[func(method string, params, result map[string]any)]
}

func (p *lyingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	res, err := http.Post(p.node+r.URL.Path, "application/json", bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if lie := p.lie.Load(); lie != nil {
		var req struct {
			Method string         `json:"method"`
			Params map[string]any `json:"params"`
		}
		var resp map[string]any
		d := json.NewDecoder(bytes.NewReader(out))
		d.UseNumber()
		if json.Unmarshal(body, &req) == nil && d.Decode(&resp) == nil {
			if result, ok := resp["result"].(map[string]any); ok {
				(*lie)(req.Method, req.Params, result)
				out, _ = json.Marshal(resp)
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// The reads behind `phala tx`, `phala block` and `phala contract watch`
// refuse what a node forges: queue messages that do not hash to the next
// header's app hash, and a result code other than the one the next header
// commits to.
func TestBlocksRefuseForgeries(t *testing.T) {
	n := testnet.New(t, testnet.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := &lyingProxy{node: n.RPC(0)}
	srv := httptest.NewServer(p)
	defer srv.Close()
	c, err := client.DialOptions(ctx, srv.URL, client.Options{Genesis: n.Genesis()})
	if err != nil {
		t.Fatal(err)
	}
	alice := crypto.MustKeyPairFromURI("//Alice")
	res, err := c.NewSigner(alice).Submit(ctx, &api.PostMessage{Topic: "test/topic", Payload: []byte("public")})
	if err != nil {
		t.Fatal(err)
	}

	// Honest: the message is there, and so is the transaction.
	bm, next, err := c.VerifiedMessages(ctx, res.Height)
	if err != nil || len(bm.Messages) != 1 || string(bm.Messages[0].Payload) != "public" || next.Height != res.Height+1 {
		t.Fatalf("VerifiedMessages(%d): %+v %v", res.Height, bm, err)
	}
	info, err := c.Tx(ctx, res.Hash)
	if err != nil || info.Code != api.CodeOK || !info.ResultProved || info.Tx == nil || info.Tx.Call.Kind() != api.CallPostMessage || info.Height != res.Height {
		t.Fatalf("Tx: %+v %v", info, err)
	}
	b, err := c.Block(ctx, res.Height)
	if err != nil || len(b.Txs) != 1 || len(b.Messages.Messages) != 1 || b.Header.Height != res.Height {
		t.Fatalf("Block: %+v %v", b, err)
	}

	forgeMessages := func(method string, params, result map[string]any) {
		resp, _ := result["response"].(map[string]any)
		if method != "abci_query" || params["path"] != api.QueryMessages || resp == nil {
			return
		}
		v, _ := base64.StdEncoding.DecodeString(resp["value"].(string))
		bm, err := api.DecodeBlockMessages(v)
		if err != nil || len(bm.Messages) == 0 {
			return
		}
		bm.Messages[0].Payload = []byte("forged")
		resp["value"] = base64.StdEncoding.EncodeToString(bm.Encode())
	}
	forgeCode := func(method string, _, result map[string]any) {
		var r map[string]any
		switch method {
		case "tx":
			r, _ = result["tx_result"].(map[string]any)
		case "block_results":
			if rs, _ := result["txs_results"].([]any); len(rs) > 0 {
				r, _ = rs[0].(map[string]any)
			}
		}
		if r != nil {
			r["code"] = json.Number("7")
		}
	}
	for _, tc := range []struct {
		name string
		lie  func(method string, params, result map[string]any)
		read func() error
	}{
		{"messages", forgeMessages, func() error { _, _, err := c.VerifiedMessages(ctx, res.Height); return err }},
		{"block messages", forgeMessages, func() error { _, err := c.Block(ctx, res.Height); return err }},
		{"tx code", forgeCode, func() error { _, err := c.Tx(ctx, res.Hash); return err }},
		{"block results", forgeCode, func() error { _, err := c.Block(ctx, res.Height); return err }},
	} {
		p.lie.Store(&tc.lie)
		if err := tc.read(); !errors.Is(err, api.ErrBadProof) {
			t.Errorf("%s forged: %v, want ErrBadProof", tc.name, err)
		}
		p.lie.Store(nil)
	}

	// What a node does not have.
	if _, err := c.Tx(ctx, [32]byte{1}); !errors.Is(err, client.ErrTxNotFound) {
		t.Errorf("Tx of an unknown hash: %v", err)
	}
	if _, err := c.Block(ctx, 1<<40); !errors.Is(err, client.ErrBeyondTip) {
		t.Errorf("Block beyond the tip: %v", err)
	}
}
