package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	cmtjson "github.com/cometbft/cometbft/libs/json"
	coretypes "github.com/cometbft/cometbft/rpc/core/types"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/testnet"
)

// liar is a proxy in front of a node's RPC. From height forgeFrom on (0:
// never) it answers `commit` and `validators` with a validator set of its
// own and headers re-signed by it (the real header with that set named,
// the same app hash): exactly what a client that trusts the node's
// validator set would accept.
type liar struct {
	t         testing.TB
	node      string
	forgeFrom atomic.Int64
	vals      *cmttypes.ValidatorSet
	privs     []cmttypes.PrivValidator
}

func newLiar(t testing.TB, node string) (*liar, string) {
	l := &liar{t: t, node: node}
	l.vals, l.privs = cmttypes.RandValidatorSet(1, 1000)
	srv := httptest.NewServer(http.HandlerFunc(l.serve))
	t.Cleanup(srv.Close)
	return l, srv.URL
}

func (l *liar) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	resp, err := http.Post(l.node, "application/json", bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var req struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Height string `json:"height"`
		} `json:"params"`
	}
	_ = json.Unmarshal(body, &req)
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	_ = json.Unmarshal(out, &env)
	h, _ := strconv.ParseInt(req.Params.Height, 10, 64)
	from := l.forgeFrom.Load()
	if from > 0 && h >= from && env.Result != nil && (req.Method == "commit" || req.Method == "validators") {
		var result any
		if req.Method == "validators" {
			result = &coretypes.ResultValidators{BlockHeight: h, Validators: l.vals.Validators, Count: l.vals.Size(), Total: l.vals.Size()}
		} else {
			var rc coretypes.ResultCommit
			if err := cmtjson.Unmarshal(env.Result, &rc); err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			hdr := *rc.Header
			hdr.ValidatorsHash, hdr.NextValidatorsHash = l.vals.Hash(), l.vals.Hash()
			hdr.ProposerAddress = l.vals.Validators[0].Address
			lb := client.SignHeader(l.t, &hdr, l.vals, l.privs)
			result = &coretypes.ResultCommit{SignedHeader: *lb.SignedHeader, CanonicalCommit: true}
		}
		res, err := cmtjson.Marshal(result)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out = []byte(`{"jsonrpc":"2.0","id":` + string(req.ID) + `,"result":` + string(res) + `}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	w.Write(out)
}

// The client refuses proofs checked against a validator set the node
// invented, and accepts honest ones; trust comes from the genesis or from
// a header the user trusts, and a wrong trusted hash is refused.
func TestClientVerifiesHeaders(t *testing.T) {
	net := testnet.New(t, testnet.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	liar, proxy := newLiar(t, net.RPC(0))
	genesis := net.Genesis()
	alice := crypto.MustKeyPairFromURI("//Alice").Public()

	// Honest: reads through the proxy verify from the genesis.
	c, err := client.DialOptions(ctx, proxy, client.Options{Genesis: genesis})
	if err != nil {
		t.Fatal(err)
	}
	a, h, err := c.AccountProved(ctx, alice)
	if err != nil || a.Balance == 0 || h < 1 {
		t.Fatalf("honest read: %+v %d %v", a, h, err)
	}
	if _, err := c.ProveRecent(ctx, api.QueryParams, nil); err != nil {
		t.Fatalf("honest recent read: %v", err)
	}

	// The proxy now lies about every new header's validators.
	tip, err := c.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	liar.forgeFrom.Store(tip + 1)
	net.WaitHeight(tip+2, 30*time.Second) // state the honest headers do not prove
	_, _, err = c.AccountProved(ctx, alice)
	if !errors.Is(err, client.ErrUntrustedHeader) {
		t.Fatalf("proof against an invented validator set: %v", err)
	}
	t.Logf("refused: %v", err)
	// A new client from the genesis refuses to connect, and so does one
	// trusting a real header.
	if _, err := client.DialOptions(ctx, proxy, client.Options{Genesis: genesis}); !errors.Is(err, client.ErrUntrustedHeader) {
		t.Fatalf("dial through the liar: %v", err)
	}
	lb, err := net.Client(0).LightBlock(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	trust := &client.TrustHeader{Height: 2, Hash: lb.Hash()}
	if _, err := client.DialOptions(ctx, proxy, client.Options{Trust: trust}); !errors.Is(err, client.ErrUntrustedHeader) {
		t.Fatalf("dial through the liar from a trusted header: %v", err)
	}
	// The same proofs verify against the node's true headers.
	liar.forgeFrom.Store(0)
	c, err = client.DialOptions(ctx, proxy, client.Options{Trust: trust})
	if err != nil {
		t.Fatalf("from a trusted header: %v", err)
	}
	if _, _, err := c.AccountProved(ctx, alice); err != nil {
		t.Fatalf("honest read from a trusted header: %v", err)
	}
	// A wrong trusted hash is refused.
	wrong := &client.TrustHeader{Height: 2, Hash: bytes.Repeat([]byte{7}, 32)}
	if _, err := client.DialOptions(ctx, net.RPC(0), client.Options{Trust: wrong}); !errors.Is(err, client.ErrUntrustedHeader) {
		t.Fatalf("wrong trusted hash: %v", err)
	}
	// Without a root, proved reads are refused, not trusted.
	bare, err := client.Dial(ctx, net.RPC(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := bare.AccountProved(ctx, alice); !errors.Is(err, client.ErrNoTrustRoot) {
		t.Fatalf("proved read without a trust root: %v", err)
	}
}

// Recent proved reads wait for no block: the node's seen commit of its
// latest block serves, and a verified header is shared (a contract
// query's three reads took three blocks or more when each waited for a
// canonical commit).
func TestRecentReadsShareHeaders(t *testing.T) {
	net := testnet.New(t, testnet.Options{TimeoutCommit: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := net.Client(0)
	start := time.Now()
	heights := map[int64]bool{}
	for i := 0; i < 3; i++ {
		pv, err := c.ProveRecent(ctx, api.QueryParams, nil)
		if err != nil {
			t.Fatal(err)
		}
		heights[pv.Height] = true
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("three recent reads took %s with 2 s blocks", d)
	}
	if len(heights) > 2 {
		t.Errorf("three recent reads at heights %v: no header shared", heights)
	}
}
