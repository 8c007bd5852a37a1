package engine

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/lightclient"
	"github.com/phalago/phala/internal/enclave/platform"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/relayer"
	"github.com/phalago/phala/internal/testnet"
)

var (
	code  = []byte("pruntime under test")
	alice = crypto.MustKeyPairFromURI("//Alice")
	bob   = crypto.MustKeyPairFromURI("//Bob")
)

func quiet() *slog.Logger {
	// ENGINE_TEST_LOG=warn|info|debug shows the engines' logs.
	if v := os.Getenv("ENGINE_TEST_LOG"); v != "" {
		var level slog.Level
		if err := level.UnmarshalText([]byte(v)); err != nil {
			level = slog.LevelWarn
		}
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// chain is a running single-validator chain with some history, and the
// data a relayer would fetch from it.
type chain struct {
	net     *testnet.Network
	c       *client.Client
	genesis *cmttypes.GenesisDoc
	headers *api.HeaderBatch // heights 1..top+1
	blocks  *api.BlockBatch  // heights 1..top
	gkDir   string           // data dir of the genesis gatekeeper's pRuntime
}

func sim(t testing.TB, dir string) platform.Platform {
	p, err := platform.NewSim(dir, code, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newChain(t testing.TB) *chain {
	t.Helper()
	return newChainWith(t, nil)
}

// newChainWith is newChain with the genesis app state edited first.
func newChainWith(t testing.TB, edit func(g *api.GenesisState)) *chain {
	t.Helper()
	return newChainOpts(t, edit, testnet.Options{})
}

// newChainOpts is newChainWith with network options (the genesis is
// the edited development one).
func newChainOpts(t testing.TB, edit func(g *api.GenesisState), opts testnet.Options) *chain {
	t.Helper()
	gkDir := t.TempDir()
	gk, err := keys.CreatePreGenesisEntity(sim(t, gkDir), gkDir)
	if err != nil {
		t.Fatal(err)
	}
	m := sha256.Sum256(code)
	g := node.DevGenesisState(m[:])
	g.Gatekeepers = []crypto.PublicKey{gk.Identity.Public()}
	// No state votes unless a test asks for arbitration: the in-process
	// relay pushes one message per transaction, and votes would delay
	// the messages tests time (execution acknowledgements).
	g.Params.ArbitrationWindow = 0
	if edit != nil {
		edit(g)
	}
	opts.Genesis = g
	net := testnet.New(t, opts)
	doc, err := cmttypes.GenesisDocFromFile(filepath.Join(net.Homes[0], "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	return &chain{net: net, c: net.Client(0), genesis: doc, gkDir: gkDir}
}

// fetch captures headers and blocks up to the current height.
func (ch *chain) fetch(t testing.TB) int64 {
	t.Helper()
	top, err := ch.c.Height(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.c.SignedHeader(ctx(t), top+1); err != nil {
		t.Fatal(err)
	}
	f := &relayer.Fetcher{C: ch.c}
	if ch.headers, err = f.Headers(ctx(t), 1, top+1); err != nil {
		t.Fatal(err)
	}
	if ch.blocks, err = f.Blocks(ctx(t), 1, top); err != nil {
		t.Fatal(err)
	}
	return top
}

func (ch *chain) engine(t testing.TB, dir string) *Engine {
	t.Helper()
	e, err := New(Config{DataDir: dir, Genesis: ch.genesis, Endpoint: "http://127.0.0.1:1", Platform: sim(t, dir), Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func syncAll(t *testing.T, e *Engine, ch *chain) {
	t.Helper()
	if _, err := e.SyncHeaders(ch.headers); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DispatchBlocks(ch.blocks); err != nil {
		t.Fatal(err)
	}
}

func TestSyncRegisterAndEgress(t *testing.T) {
	ch := newChain(t)
	gk := ch.engine(t, ch.gkDir)
	if gk.Info().Role != RoleGatekeeper || gk.Info().MasterKey == "" {
		t.Fatalf("genesis gatekeeper: %+v", gk.Info())
	}
	// Whitepaper 4.4: the genesis gatekeeper announces its MasterKey only
	// once its own attested registration is in the queue.
	if eg := gk.Egress(); len(eg) != 0 {
		t.Fatalf("announced before registering: %+v", eg)
	}
	// A worker registers with its attestation report (Bob, its operator,
	// signs); the gatekeeper sees it and still announces nothing.
	w := ch.engine(t, t.TempDir())
	register(t, ch, w, bob)
	syncTo(t, ch, gk)
	if eg := gk.Egress(); len(eg) != 0 {
		t.Fatalf("announced on another pRuntime's registration: %+v", eg)
	}
	// The gatekeeper registers (Alice operates it): then it announces, and
	// its egress goes on chain through a relayer (Bob pays).
	register(t, ch, gk, alice)
	bobS := ch.c.NewSigner(bob)
	testnet.WaitFor(t, time.Minute, "master key on chain", func() (bool, error) {
		relay(t, ch, bobS, gk)
		mk, ok, err := ch.c.MasterKey(ctx(t))
		return ok && pointHex(mk) == gk.Info().MasterKey, err
	})
	if _, err := ch.c.NewSigner(alice).Submit(ctx(t), &api.PostMessage{Topic: "app/x", Payload: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	top := ch.fetch(t)
	for _, e := range []*Engine{gk, w} {
		info := e.Info()
		if _, err := e.SyncHeaders(&api.HeaderBatch{Headers: ch.headers.Headers[info.Synced:]}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.DispatchBlocks(&api.BlockBatch{Blocks: ch.blocks.Blocks[info.Dispatched:]}); err != nil {
			t.Fatal(err)
		}
	}
	ref := ch.engine(t, t.TempDir())
	syncAll(t, ref, ch)
	for _, e := range []*Engine{gk, w, ref} {
		info := e.Info()
		if info.Dispatched != top || info.Synced != top+1 || info.Workers != 2 {
			t.Fatalf("after sync: %+v", info)
		}
	}
	if gk.StateRoot() != w.StateRoot() || w.StateRoot() != ref.StateRoot() {
		t.Fatal("pRuntimes that dispatched the same blocks disagree")
	}
	if n := len(gk.Egress()); n != 0 {
		t.Fatalf("accepted egress still pending: %d", n)
	}
}

// Restart: a reopened engine resumes from its sealed checkpoint.
func TestRestartResumes(t *testing.T) {
	ch := newChain(t)
	ch.fetch(t)
	dir := t.TempDir()
	e := ch.engine(t, dir)
	half := len(ch.blocks.Blocks) / 2
	if _, err := e.SyncHeaders(ch.headers); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DispatchBlocks(&api.BlockBatch{Blocks: ch.blocks.Blocks[:half]}); err != nil {
		t.Fatal(err)
	}
	id := e.Identity()
	e2 := ch.engine(t, dir)
	if e2.Identity() != id || e2.Info().Dispatched != int64(half) {
		t.Fatalf("reopened: %+v", e2.Info())
	}
	if _, err := e2.DispatchBlocks(&api.BlockBatch{Blocks: ch.blocks.Blocks[half:]}); err != nil {
		t.Fatal(err)
	}
	ref := ch.engine(t, t.TempDir())
	syncAll(t, ref, ch)
	if ref.StateRoot() != e2.StateRoot() {
		t.Fatal("restarted engine diverged")
	}
}

// The relayer lies: every lie is refused with an error, changes nothing,
// and the honest data is accepted afterwards.
func TestLyingRelayer(t *testing.T) {
	ch := newChain(t)
	// A block with several messages, to reorder and drop.
	s := ch.c.NewSigner(alice)
	var last *client.TxResult
	for i := 0; i < 3; i++ {
		tx, _ := s.Sign(ctx(t), &api.PostMessage{Topic: "app/lie", Payload: []byte{byte(i)}})
		if _, err := ch.c.Broadcast(ctx(t), tx.Encode()); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			var err error
			if last, err = ch.c.WaitTx(ctx(t), api.TxHash(tx.Encode())); err != nil {
				t.Fatal(err)
			}
		}
	}
	ch.net.WaitHeight(last.Height+3, 30*time.Second)
	top := ch.fetch(t)
	var multi int64 // a block with at least two messages
	for _, b := range ch.blocks.Blocks {
		if len(b.Messages) >= 2 {
			multi = b.Height
		}
	}
	if multi == 0 {
		t.Skipf("no block with two messages (last tx at %d)", last.Height)
	}
	hdr := func(h int64) api.HeaderSync { return ch.headers.Headers[h-1] }
	blk := func(h int64) api.BlockMessages {
		b, _ := api.DecodeBlockMessages(ch.blocks.Blocks[h-1].Encode())
		return *b
	}
	headersUpTo := func(h int64) *api.HeaderBatch { return &api.HeaderBatch{Headers: ch.headers.Headers[:h]} }
	blocksUpTo := func(h int64) *api.BlockBatch { return &api.BlockBatch{Blocks: ch.blocks.Blocks[:h]} }
	mutateHeader := func(h int64, f func(*cmttypes.SignedHeader, *cmttypes.ValidatorSet)) api.HeaderSync {
		sh, vals, err := lightclient.DecodeHeader(hdr(h).SignedHeader, hdr(h).Validators)
		if err != nil {
			t.Fatal(err)
		}
		f(sh, vals)
		shb, vb, err := lightclient.EncodeHeader(sh, vals)
		if err != nil {
			t.Fatal(err)
		}
		return api.HeaderSync{SignedHeader: shb, Validators: vb}
	}
	otherVals := func() *cmttypes.ValidatorSet {
		v, _ := cmttypes.RandValidatorSet(1, 10)
		return v
	}

	type lie struct {
		name    string
		prepare int64 // headers and blocks synced honestly first (blocks up to prepare-1)
		headers *api.HeaderBatch
		blocks  *api.BlockBatch
		want    error
	}
	lies := []lie{
		{"header with a forged app hash", 2, &api.HeaderBatch{Headers: []api.HeaderSync{mutateHeader(3, func(sh *cmttypes.SignedHeader, _ *cmttypes.ValidatorSet) { sh.AppHash = make([]byte, 32) })}}, nil, ErrBadInput},
		{"header with a forged signature", 2, &api.HeaderBatch{Headers: []api.HeaderSync{mutateHeader(3, func(sh *cmttypes.SignedHeader, _ *cmttypes.ValidatorSet) { sh.Commit.Signatures[0].Signature[0] ^= 1 })}}, nil, ErrBadInput},
		{"header signed by other validators", 2, &api.HeaderBatch{Headers: []api.HeaderSync{mutateHeader(3, func(_ *cmttypes.SignedHeader, v *cmttypes.ValidatorSet) { *v = *otherVals() })}}, nil, ErrBadInput},
		{"first header with other validators", 0, &api.HeaderBatch{Headers: []api.HeaderSync{mutateHeader(1, func(_ *cmttypes.SignedHeader, v *cmttypes.ValidatorSet) { *v = *otherVals() })}}, nil, ErrBadInput},
		{"skipped header", 2, &api.HeaderBatch{Headers: []api.HeaderSync{hdr(4)}}, nil, ErrBadInput},
		{"replayed header", 2, &api.HeaderBatch{Headers: []api.HeaderSync{hdr(2)}}, nil, ErrBadInput},
		{"reordered headers", 2, &api.HeaderBatch{Headers: []api.HeaderSync{hdr(4), hdr(3)}}, nil, ErrBadInput},
		{"garbage header", 2, &api.HeaderBatch{Headers: []api.HeaderSync{{SignedHeader: []byte{1, 2, 3}, Validators: []byte{4}}}}, nil, ErrBadInput},
		{"block before its header", multi, nil, &api.BlockBatch{Blocks: []api.BlockMessages{blk(multi)}}, ErrNotSynced},
		{"skipped block", multi, nil, &api.BlockBatch{Blocks: []api.BlockMessages{blk(multi + 1)}}, ErrBadInput},
		{"tampered payload", multi + 1, nil, &api.BlockBatch{Blocks: []api.BlockMessages{func() api.BlockMessages {
			b := blk(multi)
			b.Messages[0].Payload = []byte("forged")
			return b
		}()}}, ErrBadInput},
		{"dropped message", multi + 1, nil, &api.BlockBatch{Blocks: []api.BlockMessages{func() api.BlockMessages { b := blk(multi); b.Messages = b.Messages[1:]; return b }()}}, ErrBadInput},
		{"reordered messages", multi + 1, nil, &api.BlockBatch{Blocks: []api.BlockMessages{func() api.BlockMessages {
			b := blk(multi)
			b.Messages[0], b.Messages[1] = b.Messages[1], b.Messages[0]
			return b
		}()}}, ErrBadInput},
		{"forged message added", multi + 1, nil, &api.BlockBatch{Blocks: []api.BlockMessages{func() api.BlockMessages {
			b := blk(multi)
			b.Messages = append(b.Messages, api.Message{Origin: api.ModuleOrigin("registry"), Topic: api.TopicWorkerRegistered, Seq: 99})
			return b
		}()}}, ErrBadInput},
		{"wrong height label", multi + 1, nil, &api.BlockBatch{Blocks: []api.BlockMessages{func() api.BlockMessages { b := blk(multi - 1); b.Height = multi; return b }()}}, ErrBadInput},
	}
	// Replayed block: dispatch up to multi, then send multi again.
	lies = append(lies, lie{"replayed block", multi + 2, nil, &api.BlockBatch{Blocks: []api.BlockMessages{blk(multi)}}, ErrBadInput})

	for _, l := range lies {
		t.Run(l.name, func(t *testing.T) {
			e := ch.engine(t, t.TempDir())
			if l.prepare > 0 {
				if _, err := e.SyncHeaders(headersUpTo(min(l.prepare, top+1))); err != nil {
					t.Fatal(err)
				}
				if l.prepare > 1 {
					if _, err := e.DispatchBlocks(blocksUpTo(l.prepare - 1)); err != nil {
						t.Fatal(err)
					}
				}
			}
			before, info := e.StateRoot(), e.Info()
			var err error
			if l.headers != nil {
				_, err = e.SyncHeaders(l.headers)
			} else {
				_, err = e.DispatchBlocks(l.blocks)
			}
			if !errors.Is(err, l.want) {
				t.Fatalf("got %v, want %v", err, l.want)
			}
			if e.StateRoot() != before || e.Info().Synced != info.Synced || e.Info().Dispatched != info.Dispatched {
				t.Fatal("a refused input changed the state")
			}
			// The honest data still applies, to the same state as a
			// pRuntime that never saw the lie.
			if _, err := e.SyncHeaders(&api.HeaderBatch{Headers: ch.headers.Headers[e.Info().Synced:]}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.DispatchBlocks(&api.BlockBatch{Blocks: ch.blocks.Blocks[e.Info().Dispatched:]}); err != nil {
				t.Fatal(err)
			}
			ref := ch.engine(t, t.TempDir())
			syncAll(t, ref, ch)
			if ref.StateRoot() != e.StateRoot() {
				t.Fatal("diverged after the lie")
			}
		})
	}
}

// A block whose messages verify but skip a sequence is refused (the chain
// never produces one; the check is defense in depth).
func TestSequenceGapRefused(t *testing.T) {
	ch := newChain(t)
	ch.fetch(t)
	e := ch.engine(t, t.TempDir())
	o := api.KeyOrigin(api.OriginAccount, alice.Public())
	for _, tc := range []struct {
		name string
		seqs []uint64
	}{{"gap", []uint64{1}}, {"repeat", []uint64{0, 0}}, {"backwards", []uint64{1, 0}}} {
		var msgs []api.Message
		for _, s := range tc.seqs {
			msgs = append(msgs, api.Message{Origin: o, Topic: "t", Seq: s})
		}
		bm := &api.BlockMessages{Height: e.st.dispatched + 1, StateRoot: make([]byte, 32), Messages: msgs}
		e.st.appHash[bm.Height] = api.AppHash(bm.StateRoot, api.MessagesRoot(msgs))
		before := e.st.root()
		if _, err := e.DispatchBlocks(&api.BlockBatch{Blocks: []api.BlockMessages{*bm}}); !errors.Is(err, ErrBadInput) {
			t.Errorf("%s: %v", tc.name, err)
		}
		if e.st.root() != before {
			t.Errorf("%s: state changed", tc.name)
		}
		delete(e.st.appHash, bm.Height)
	}
}

func TestGenesisOfAnotherChain(t *testing.T) {
	ch := newChain(t)
	ch.fetch(t)
	other := *ch.genesis
	other.ChainID = "another-chain"
	dir := t.TempDir()
	e, err := New(Config{DataDir: dir, Genesis: &other, Platform: sim(t, dir), Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.SyncHeaders(&api.HeaderBatch{Headers: ch.headers.Headers[:1]}); !errors.Is(err, ErrBadInput) {
		t.Fatalf("header of another chain: %v", err)
	}
}

// Egress survives a restart until the chain accepts it.
func TestEgressSurvivesRestart(t *testing.T) {
	ch := newChain(t)
	gk := ch.engine(t, ch.gkDir)
	register(t, ch, gk, alice)
	testnet.WaitFor(t, time.Minute, "master key announced", func() (bool, error) {
		syncTo(t, ch, gk)
		return len(gk.Egress()) == 1, nil
	})
	want := gk.Egress()
	again := ch.engine(t, ch.gkDir)
	got := again.Egress()
	if len(got) != 1 || got[0].Message.Seq != want[0].Message.Seq || string(got[0].Message.Payload) != string(want[0].Message.Payload) {
		t.Fatalf("egress after restart: %+v", got)
	}
	if again.Info().MasterKey != gk.Info().MasterKey {
		t.Fatal("master key changed across restart")
	}
}
