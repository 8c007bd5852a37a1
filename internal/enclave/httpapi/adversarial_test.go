package httpapi_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"github.com/phalago/phala/client/pruntime"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/engine"
	"github.com/phalago/phala/internal/enclave/httpapi"
	"github.com/phalago/phala/internal/enclave/lightclient"
	"github.com/phalago/phala/internal/enclave/platform"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/relayer"
	"github.com/phalago/phala/internal/testnet"
)

// A lying relayer talks to a real pRuntime over its API about a real
// chain: it drops, reorders, forges and replays headers, blocks and
// messages. pRuntime refuses each lie with a 4xx and a reason, applies
// nothing, and then accepts the honest data.
func TestAdversarialRelayer(t *testing.T) {
	code := []byte("adversarial pruntime")
	m := sha256.Sum256(code)
	net := testnet.New(t, testnet.Options{Genesis: node.DevGenesisState(m[:])})
	c := net.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := c.NewSigner(crypto.MustKeyPairFromURI("//Alice"))
	for i := 0; i < 3; i++ {
		tx, _ := s.Sign(ctx, &api.PostMessage{Topic: "app/x", Payload: []byte{byte(i)}})
		if _, err := c.Broadcast(ctx, tx.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Submit(ctx, &api.PostMessage{Topic: "app/x", Payload: []byte("last")}); err != nil {
		t.Fatal(err)
	}
	h0, _ := c.Height(ctx)
	net.WaitHeight(h0+3, 30*time.Second)
	top, _ := c.Height(ctx)
	c.SignedHeader(ctx, top+1)
	f := &relayer.Fetcher{C: c}
	headers, err := f.Headers(ctx, 1, top+1)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := f.Blocks(ctx, 1, top)
	if err != nil {
		t.Fatal(err)
	}
	var multi int64
	for _, b := range blocks.Blocks {
		if len(b.Messages) >= 2 && b.Height+2 <= top {
			multi = b.Height
		}
	}
	if multi == 0 {
		t.Skip("no block with two messages")
	}
	doc, err := cmttypes.GenesisDocFromFile(filepath.Join(net.Homes[0], "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, _ := platform.NewSim(dir, code, log)
	e, err := engine.New(engine.Config{DataDir: dir, Genesis: doc, Platform: p, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.ControlHandler(e, log, httpapi.ControlOptions{}))
	defer srv.Close()
	pr := pruntime.NewClient(srv.URL)

	// The public API takes none of it: the same honest headers and blocks
	// sent there get 404 and change nothing.
	pub := httptest.NewServer(httpapi.PublicHandler(e, log))
	defer pub.Close()
	onPublic := pruntime.NewClient(pub.URL)
	_, errH := onPublic.SyncHeaders(ctx, &api.HeaderBatch{Headers: headers.Headers[:multi+1]})
	_, errB := onPublic.DispatchBlocks(ctx, &api.BlockBatch{Blocks: blocks.Blocks[:1]})
	for _, err := range []error{errH, errB} {
		var apiErr *pruntime.Error
		if !errors.As(err, &apiErr) || apiErr.Status != 404 || !strings.Contains(apiErr.Message, "control API") {
			t.Fatalf("public API fed: %v", err)
		}
	}
	if info := e.Info(); info.Synced != 0 || info.Dispatched != 0 {
		t.Fatalf("public API changed the state: %+v", info)
	}

	// Honest up to just before the interesting block.
	if _, err := pr.SyncHeaders(ctx, &api.HeaderBatch{Headers: headers.Headers[:multi+1]}); err != nil {
		t.Fatal(err)
	}
	if _, err := pr.DispatchBlocks(ctx, &api.BlockBatch{Blocks: blocks.Blocks[:multi-1]}); err != nil {
		t.Fatal(err)
	}
	blk := func(h int64) api.BlockMessages {
		b, _ := api.DecodeBlockMessages(blocks.Blocks[h-1].Encode())
		return *b
	}
	forgedHeader := func() api.HeaderSync {
		sh, vals, _ := lightclient.DecodeHeader(headers.Headers[multi+1].SignedHeader, headers.Headers[multi+1].Validators)
		sh.AppHash = make([]byte, 32)
		shb, vb, _ := lightclient.EncodeHeader(sh, vals)
		return api.HeaderSync{SignedHeader: shb, Validators: vb}
	}
	type lie struct {
		name    string
		headers []api.HeaderSync
		blocks  []api.BlockMessages
		reason  string
	}
	for _, l := range []lie{
		{name: "drop a block", blocks: []api.BlockMessages{blk(multi + 1)}, reason: "expected"},
		{name: "reorder blocks", blocks: []api.BlockMessages{blk(multi + 1), blk(multi)}, reason: "expected"},
		{name: "replay a dispatched block", blocks: []api.BlockMessages{blk(multi - 1)}, reason: "expected"},
		{name: "forge a message", blocks: []api.BlockMessages{func() api.BlockMessages { b := blk(multi); b.Messages[0].Payload = []byte("forged"); return b }()}, reason: "app hash"},
		{name: "drop a message", blocks: []api.BlockMessages{func() api.BlockMessages { b := blk(multi); b.Messages = b.Messages[1:]; return b }()}, reason: "app hash"},
		{name: "reorder messages", blocks: []api.BlockMessages{func() api.BlockMessages {
			b := blk(multi)
			b.Messages[0], b.Messages[1] = b.Messages[1], b.Messages[0]
			return b
		}()}, reason: "app hash"},
		{name: "block before its header", blocks: []api.BlockMessages{blk(multi), blk(multi + 1)}, reason: "not verified yet"},
		{name: "forge a header", headers: []api.HeaderSync{forgedHeader()}, reason: "does not verify"},
		{name: "replay a header", headers: []api.HeaderSync{headers.Headers[multi]}, reason: "expected"},
		{name: "skip a header", headers: []api.HeaderSync{headers.Headers[multi+2]}, reason: "expected"},
	} {
		t.Run(l.name, func(t *testing.T) {
			before, err := pr.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if l.headers != nil {
				_, err = pr.SyncHeaders(ctx, &api.HeaderBatch{Headers: l.headers})
			} else {
				_, err = pr.DispatchBlocks(ctx, &api.BlockBatch{Blocks: l.blocks})
			}
			var apiErr *pruntime.Error
			if !errors.As(err, &apiErr) || apiErr.Status < 400 || apiErr.Status >= 500 || !strings.Contains(apiErr.Message, l.reason) {
				t.Fatalf("got %v, want a 4xx saying %q", err, l.reason)
			}
			after, _ := pr.Info(ctx)
			// "block before its header" applies the valid first block only.
			if l.name != "block before its header" && (after.StateRoot != before.StateRoot || after.Dispatched != before.Dispatched || after.Synced != before.Synced) {
				t.Fatalf("a lie changed the state: %+v -> %+v", before, after)
			}
		})
	}
	// The honest data still goes through, to the state of an honest run.
	info, _ := pr.Info(ctx)
	if _, err := pr.SyncHeaders(ctx, &api.HeaderBatch{Headers: headers.Headers[info.Synced:]}); err != nil {
		t.Fatal(err)
	}
	if _, err := pr.DispatchBlocks(ctx, &api.BlockBatch{Blocks: blocks.Blocks[info.Dispatched:]}); err != nil {
		t.Fatal(err)
	}
	refDir := t.TempDir()
	rp, _ := platform.NewSim(refDir, code, log)
	ref, _ := engine.New(engine.Config{DataDir: refDir, Genesis: doc, Platform: rp, Log: log})
	ref.SyncHeaders(headers)
	ref.DispatchBlocks(blocks)
	final, _ := pr.Info(ctx)
	if final.StateRoot != ref.Info().StateRoot || final.Dispatched != top {
		t.Fatalf("after the lies: %+v, honest: %+v", final, ref.Info())
	}
}
