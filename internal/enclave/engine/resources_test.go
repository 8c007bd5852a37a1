package engine

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometbft/cometbft/crypto/ed25519"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/sealing"
	"github.com/phalago/phala/internal/enclave/vm"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/relayer"
	"github.com/phalago/phala/internal/wat"
)

// bare is an engine without a chain, running the emitter test contract
// (testdata/emitter.wat) as if granted; its handlers are fed messages
// directly, as dispatch would.
type bare struct {
	e   *Engine
	id  crypto.PublicKey
	ck  *keys.ContractKeys
	doc *cmttypes.GenesisDoc
}

var bareGenesis = sync.OnceValues(func() (*cmttypes.GenesisDoc, error) {
	m := sha256.Sum256(code)
	g := node.DevGenesisState(m[:])
	g.Gatekeepers = []crypto.PublicKey{bob.Public()}
	return node.NewGenesisDoc("res-test", []cmttypes.GenesisValidator{{PubKey: ed25519.GenPrivKey().PubKey(), Power: 10}}, g)
})

func emitterWasm(t testing.TB) []byte {
	src, err := os.ReadFile("testdata/emitter.wat")
	if err != nil {
		t.Fatal(err)
	}
	b, err := wat.Compile(string(src))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newBare starts an engine in dir running the emitter; unmetered VMs let
// queries spin until their deadline.
func newBare(t *testing.T, dir string, unmetered bool) *bare {
	t.Helper()
	doc, err := bareGenesis()
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{DataDir: dir, Genesis: doc, Platform: sim(t, dir), Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ck, err := keys.ContractKeysFromSeed(sha256.Sum256([]byte("emitter")))
	if err != nil {
		t.Fatal(err)
	}
	b := &bare{e: e, id: ck.Identity.Public(), ck: ck, doc: doc}
	if _, ok := e.running[b.id]; ok {
		return b // restored from the checkpoint
	}
	if unmetered {
		if e.vm, err = vm.New(context.Background(), vm.Config{Unmetered: true}); err != nil {
			t.Fatal(err)
		}
	}
	wasm := emitterWasm(t)
	hash := sha256.Sum256(wasm)
	os.MkdirAll(filepath.Dir(e.codePath(hash)), 0o700)
	if err := os.WriteFile(e.codePath(hash), wasm, 0o600); err != nil {
		t.Fatal(err)
	}
	uploadID := api.UploadID(alice.Public(), hash, 0)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.st.uploads[uploadID] = &upload{deployer: alice.Public(), codeHash: hash, replicas: 1}
	c, err := e.startContract(ck, hash, nil, nil, [32]byte{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	e.running[b.id] = &running{upload: uploadID, c: c, lastNonce: map[crypto.PublicKey]uint64{}, dirty: true}
	e.publish() // as dispatch does after a block
	if err := e.checkpoint(); err != nil {
		t.Fatal(err)
	}
	return b
}

var nonces sync.Map

// command runs one emitter command (count messages of size bytes) at
// height, as dispatch does, and checkpoints like DispatchBlocks.
func (b *bare) command(t *testing.T, height int64, count, size uint32) error {
	t.Helper()
	in := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, count), size)
	n, _ := nonces.LoadOrStore(b.e, new(uint64))
	*n.(*uint64)++
	nonce := *n.(*uint64)
	ch, err := channel.New(alice, b.ck.Ecdh.Public(), api.ChannelPurposeCommand)
	if err != nil {
		t.Fatal(err)
	}
	cm := &api.ContractCommandMessage{Contract: b.id, From: alice.Public(), Nonce: nonce, GasLimit: contracts.DefaultGasLimit, Sealed: ch.Seal(api.Pad(in), api.CommandAD(b.id, alice.Public(), nonce))}
	m := &api.Message{Origin: api.ModuleOrigin("contracts"), Topic: api.TopicContractCommand, Payload: cm.Encode()}
	b.e.mu.Lock()
	defer b.e.mu.Unlock()
	if err := b.e.onCommand(&Context{e: b.e, Height: height, Time: time.Unix(height, 0)}, m); err != nil {
		t.Fatal(err)
	}
	b.e.publish()
	if cerr := b.e.checkpoint(); cerr != nil {
		t.Fatal(cerr)
	}
	// What became of the command is in its receipt only.
	rc, ok := b.e.running[b.id].receipts.get(receiptKey{alice.Public(), nonce})
	switch {
	case !ok:
		t.Fatalf("no receipt for nonce %d", nonce)
	case rc.height != height:
		t.Fatalf("receipt at height %d, want %d", rc.height, height)
	case rc.body.Status != api.ReceiptOK:
		return receiptError(rc.body.Output)
	}
	return nil
}

// receiptError is a failed command's receipt message; errors.Is matches
// the errors whose text it carries.
type receiptError string

func (e receiptError) Error() string        { return string(e) }
func (e receiptError) Is(target error) bool { return strings.Contains(string(e), target.Error()) }

// ackAll plays the chain echoing every pending message back.
func (b *bare) ackAll() {
	b.e.mu.Lock()
	defer b.e.mu.Unlock()
	for _, m := range slicesClone(b.e.st.egress) {
		b.e.ack(&m.Message)
	}
}

func slicesClone(s []api.SignedMessage) []api.SignedMessage {
	return append([]api.SignedMessage(nil), s...)
}

func (b *bare) root() [32]byte { return b.e.ContractRoots()[b.id] }

// Emits are bounded per call (VM), per block and by the backlog (engine);
// a command over a bound fails alone with a clear error, its writes and
// messages dropped, the same way on a replica; the next command works.
func TestEmitBounds(t *testing.T) {
	a := newBare(t, t.TempDir(), false)
	replica := newBare(t, t.TempDir(), false)
	const mib = 1 << 20
	type step struct {
		height      int64
		count, size uint32
		want        error // nil: succeeds
		ack         bool  // the chain echoes the egress back first
	}
	const two = mib - 100 // two of these fit in one call
	const quarter = mib/4 - 100
	steps := []step{
		{height: 2, count: vm.MaxEmitsPerCall + 1, size: 10, want: vm.ErrEmitLimit}, // too many messages in one call
		{height: 2, count: 3, size: vm.MaxValueBytes, want: vm.ErrEmitLimit},        // too many bytes in one call
		{height: 2, count: 80, size: vm.MaxValueBytes, want: vm.ErrEmitLimit},       // the tester's command
		// 4 MiB in the block, in four commands (each also stores a
		// quarter MiB: the block's state changes stay under their bound).
		{height: 2, count: 4, size: quarter},
		{height: 2, count: 4, size: quarter},
		{height: 2, count: 4, size: quarter},
		{height: 2, count: 4, size: quarter},
		{height: 2, count: 1, size: 2000, want: contracts.ErrEgressBudget}, // over the block's budget
		{height: 3, count: 1, size: 1000},                                  // next block: fine
	}
	for h := int64(4); h < 10; h++ { // the backlog builds up to 16 MiB less about 2 kB
		steps = append(steps, step{height: h, count: 2, size: two})
	}
	steps = append(steps,
		step{height: 10, count: 2, size: two, want: contracts.ErrEgressBudget}, // backlog full
		step{height: 11, count: 1, size: 10, ack: true},                        // acknowledged: room again
	)
	for i, s := range steps {
		for _, b := range []*bare{a, replica} {
			if s.ack {
				b.ackAll()
			}
			before := b.root()
			egress := len(b.e.Egress())
			err := b.command(t, s.height, s.count, s.size)
			if s.want == nil {
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				continue
			}
			if !errors.Is(err, s.want) {
				t.Fatalf("step %d: got %v, want %v", i, err, s.want)
			}
			if b.root() != before || len(b.e.Egress()) != egress {
				t.Fatalf("step %d: a refused command changed the state or the egress", i)
			}
		}
		if a.root() != replica.root() {
			t.Fatalf("step %d: replicas diverge", i)
		}
	}
	// Every message fits in a transaction, and pages of MinEgressPageBytes
	// carry the whole egress in order, at least one message per page.
	all := a.e.Egress()
	var paged []api.SignedMessage
	for after, more := uint64(0), true; more; {
		var page []api.SignedMessage
		page, after, more = a.e.EgressPage(after, MinEgressPageBytes)
		if len(page) == 0 {
			t.Fatal("empty page")
		}
		if n := len(api.EncodeSignedMessages(page)); n > MinEgressPageBytes && len(page) > 1 {
			t.Fatalf("page of %d bytes", n)
		}
		for _, m := range page {
			if n := len(api.EncodeSignedMessages([]api.SignedMessage{m})); uint64(n) > api.DefaultParams().MaxTxBytes/2 {
				t.Fatalf("message of %d bytes", n)
			}
		}
		paged = append(paged, page...)
	}
	if len(paged) != len(all) || len(all) == 0 {
		t.Fatalf("pages hold %d messages, egress %d", len(paged), len(all))
	}
	for i := range all {
		if all[i].Message.Origin != paged[i].Message.Origin || all[i].Message.Seq != paged[i].Message.Seq {
			t.Fatalf("page order differs at %d", i)
		}
	}
}

// A checkpoint writes what changed: a contract with a large state is not
// rewritten by calls that do not touch it, the core stays small, and a
// restart restores everything; an old part copy is refused and a part
// left by an unfinished checkpoint is ignored.
func TestCheckpointProportional(t *testing.T) {
	dir := t.TempDir()
	b := newBare(t, dir, false)
	if err := b.command(t, 2, 1, vm.MaxValueBytes); err != nil { // 1 MiB of state, 1 MiB of egress
		t.Fatal(err)
	}
	part := func(prefix string) string {
		t.Helper()
		ents, _ := os.ReadDir(filepath.Join(dir, checkpointDir))
		var names []string
		for _, de := range ents {
			if len(de.Name()) > len(prefix) && de.Name()[:len(prefix)] == prefix {
				names = append(names, de.Name())
			}
		}
		if len(names) != 1 {
			t.Fatalf("%s parts: %v", prefix, names)
		}
		return names[0]
	}
	contractFile := part("contract-")
	st, _ := os.Stat(filepath.Join(dir, checkpointDir, contractFile))
	if st.Size() < vm.MaxValueBytes {
		t.Fatalf("contract part of %d bytes", st.Size())
	}
	writes := map[string]int{"contract": b.e.ck.writes["contract"], "egress": b.e.ck.writes["egress"]}
	// Sync calls that change neither the contract nor the egress (an empty
	// dispatch checkpoints nothing; a core checkpoint, as a header sync
	// does, rewrites only the core).
	for range 3 {
		b.e.mu.Lock()
		err := b.e.checkpoint()
		b.e.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	if b.e.ck.writes["contract"] != writes["contract"] || b.e.ck.writes["egress"] != writes["egress"] {
		t.Fatalf("unchanged parts rewritten: %v, before %v", b.e.ck.writes, writes)
	}
	st2, err := os.Stat(filepath.Join(dir, checkpointDir, contractFile))
	if err != nil || !os.SameFile(st, st2) || !st2.ModTime().Equal(st.ModTime()) {
		t.Fatalf("contract part replaced: %v", err)
	}
	core, _ := os.Stat(filepath.Join(dir, StateFile))
	if core.Size() > 16<<10 {
		t.Fatalf("core checkpoint of %d bytes", core.Size())
	}
	// The chain echoes the egress: only the egress part is rewritten.
	b.ackAll()
	b.e.mu.Lock()
	b.e.checkpoint()
	b.e.mu.Unlock()
	if b.e.ck.writes["contract"] != writes["contract"] || b.e.ck.writes["egress"] != writes["egress"]+1 {
		t.Fatalf("after an ack: %v, before %v", b.e.ck.writes, writes)
	}
	oldContract, _ := os.ReadFile(filepath.Join(dir, checkpointDir, contractFile))
	// A command rewrites the contract's part under a new name.
	if err := b.command(t, 3, 1, 10); err != nil {
		t.Fatal(err)
	}
	if b.e.ck.writes["contract"] != writes["contract"]+1 || part("contract-") == contractFile {
		t.Fatalf("command: %v", b.e.ck.writes)
	}
	root := b.root()
	// A crash after writing the parts of the next generation, before its
	// core: the parts are ignored (and removed) on restart.
	next := contractPart(b.id, b.e.ck.gen+1)
	os.WriteFile(filepath.Join(dir, checkpointDir, next), oldContract, 0o600)
	r := newBare(t, dir, false)
	if r.root() != root || len(r.e.Egress()) != 1 {
		t.Fatal("restart lost the contract's state")
	}
	if _, err := os.Stat(filepath.Join(dir, checkpointDir, next)); !os.IsNotExist(err) {
		t.Fatal("unfinished part kept")
	}
	// The host puts back the older contract part under the current name:
	// refused (it is sealed under another name, and its digest differs).
	cur := filepath.Join(dir, checkpointDir, part("contract-"))
	os.WriteFile(cur, oldContract, 0o600)
	if _, err := New(Config{DataDir: dir, Genesis: r.doc, Platform: sim(t, dir), Log: quiet()}); !errors.Is(err, sealing.ErrCorrupt) {
		t.Fatalf("old part accepted: %v", err)
	}
}

func spinQuery(t *testing.T, b *bare, key *crypto.KeyPair) *api.ContractQuery {
	t.Helper()
	p, err := client.NewQuery(key, b.id, b.ck.Ecdh.Public(), b.e.Identity(), []byte("spin"), time.Unix(1, 0).Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return p.Query
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// within runs f and fails if it does not return in d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s blocked for %s", what, d)
	}
}

// 64 concurrent queries that would run forever hold no lock: Info, block
// dispatch and commands go on while they run; each stops at QueryTimeout.
func TestQueriesDoNotBlockTheEngine(t *testing.T) {
	b := newBare(t, t.TempDir(), true)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		q := spinQuery(t, b, crypto.MustKeyPairFromURI("//q"+string(rune('a'+i%26))+string(rune('a'+i/26))))
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			_, err := b.e.Query(context.Background(), q)
			// At most QueryTimeout for a slot, then QueryTimeout running.
			if d := time.Since(start); err == nil && d > 2*QueryTimeout+3*time.Second {
				err = fmt.Errorf("a query ran %s", d)
			}
			errs <- err
		}()
	}
	slots := b.e.querySlots()
	waitFor(t, 10*time.Second, "every query slot taken", func() bool { return len(slots) == MaxConcurrentQueries })
	within(t, time.Second, "Info", func() { b.e.Info() })
	within(t, time.Second, "DispatchBlocks", func() { b.e.DispatchBlocks(&api.BlockBatch{}) })
	within(t, time.Second, "a command", func() {
		if err := b.command(t, 2, 1, 10); err != nil {
			t.Error(err)
		}
	})
	if len(slots) != MaxConcurrentQueries {
		t.Fatal("queries ended early; the test proves nothing")
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, ErrBusy) {
			t.Fatal(err)
		}
	}
	// A query after the storm is answered (from a committed view).
	p, _ := client.NewQuery(alice, b.id, b.ck.Ecdh.Public(), b.e.Identity(), nil, time.Unix(1, 0).Add(time.Minute))
	resp, err := b.e.Query(context.Background(), p.Query)
	if err != nil {
		t.Fatal(err)
	}
	out, h, err := p.Open(resp)
	if err != nil || binary.LittleEndian.Uint32(out) != 10 || h != 0 {
		t.Fatalf("query: %x at %d: %v", out, h, err)
	}
}

// A query whose caller goes away stops at once and frees its slot.
func TestQueryCancelled(t *testing.T) {
	b := newBare(t, t.TempDir(), true)
	c, cancel := context.WithCancel(context.Background())
	done := make(chan time.Time, 1)
	go func() {
		b.e.Query(c, spinQuery(t, b, alice))
		done <- time.Now()
	}()
	slots := b.e.querySlots()
	waitFor(t, 10*time.Second, "the query to run", func() bool { return len(slots) == 1 })
	cancelled := time.Now()
	cancel()
	select {
	case end := <-done:
		if d := end.Sub(cancelled); d > QueryTimeout/2 {
			t.Fatalf("query stopped %s after its cancellation", d)
		}
	case <-time.After(QueryTimeout + 5*time.Second):
		t.Fatal("cancelled query still running")
	}
	waitFor(t, time.Second, "the slot to be freed", func() bool { return len(slots) == 0 })
}

// A query turned away busy (every slot taken until its deadline) has not
// used up its nonce: the same bytes are answered once a slot is free, and
// only then refused as a replay.
func TestBusyQueryKeepsItsNonce(t *testing.T) {
	b := newBare(t, t.TempDir(), true)
	p, err := client.NewQuery(alice, b.id, b.ck.Ecdh.Public(), b.e.Identity(), nil, time.Unix(1, 0).Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	slots := b.e.querySlots()
	for range MaxConcurrentQueries {
		slots <- struct{}{}
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.e.Query(short, p.Query); !errors.Is(err, ErrBusy) {
		t.Fatalf("with every slot taken: %v", err)
	}
	for range MaxConcurrentQueries {
		<-slots
	}
	if _, err := b.e.Query(context.Background(), p.Query); err != nil {
		t.Fatalf("the query sent again after busy: %v", err)
	}
	if _, err := b.e.Query(context.Background(), p.Query); !errors.Is(err, contracts.ErrQueryRefused) {
		t.Fatalf("a replay once answered: %v", err)
	}
}

// A worker restarted after a crash (no checkpoint since its last answers,
// which it forgot) refuses every query that may have been answered before
// the crash: those valid until its checkpoint's block time + MaxQueryTTL.
// The refusal survives a clean stop and start (the horizon is in the
// sealed guard); a worker restarted after a clean stop has no horizon.
func TestCrashForgetsNoAnsweredQuery(t *testing.T) {
	dir := t.TempDir()
	b := newBare(t, dir, true)
	ask := func(e *Engine) (*api.ContractQuery, error) {
		p, err := client.NewQuery(alice, b.id, b.ck.Ecdh.Public(), e.Identity(), nil, time.Unix(1, 0).Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Query(context.Background(), p.Query)
		return p.Query, err
	}
	q, err := ask(b.e)
	if err != nil {
		t.Fatal(err)
	}
	// Crash: the answer is not in any checkpoint; a new process starts.
	crashed := newBare(t, dir, true)
	if _, err := crashed.e.Query(context.Background(), q); !errors.Is(err, contracts.ErrQueryRefused) || !strings.Contains(err.Error(), "restarted") {
		t.Fatalf("the captured query after a crash: %v", err)
	}
	if err := crashed.e.Close(); err != nil {
		t.Fatal(err)
	}
	again := newBare(t, dir, true)
	if _, err := again.e.Query(context.Background(), q); !errors.Is(err, contracts.ErrQueryRefused) {
		t.Fatalf("the captured query after a crash and a clean restart: %v", err)
	}
	// After a clean stop, fresh queries are answered at once.
	clean := t.TempDir()
	c := newBare(t, clean, true)
	if err := c.e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ask(newBare(t, clean, true).e); err != nil {
		t.Fatalf("a fresh query after a clean restart: %v", err)
	}
}

// On a real chain: the tester's command (80 messages of 1 MiB) fails alone
// on the worker; the next command runs, and its message reaches the chain
// through the relayer, which then acknowledges it back.
func TestOverEmittingCommandFailsAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("chain + contracts")
	}
	ch := newChain(t)
	gk := ch.engine(t, ch.gkDir)
	w := ch.engine(t, t.TempDir())
	bobS, aliceS := ch.c.NewSigner(bob), ch.c.NewSigner(alice)
	register(t, ch, gk, bob)
	register(t, ch, w, bob)
	relay(t, ch, bobS, gk, w)
	wasm := emitterWasm(t)
	if _, err := aliceS.Submit(ctx(t), &api.UploadContract{Code: gz(t, wasm), Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	upload := api.UploadID(alice.Public(), sha256.Sum256(wasm), 0)
	var rec *api.ContractRecord
	waitFor(t, 60*time.Second, "the contract's deployment", func() bool {
		relay(t, ch, bobS, gk, w)
		if v, _, _ := queryRaw(t, ch.c, api.QueryContractUpload, upload[:]); len(v) == 32 {
			if cv, _, err := queryRaw(t, ch.c, api.QueryContract, v); err == nil {
				rec, _ = api.DecodeContractRecord(cv)
			}
		}
		return rec != nil
	})
	relay(t, ch, bobS, gk, w)
	cmd := func(nonce uint64, count, size uint32) {
		in := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, count), size)
		chn, err := channel.New(alice, rec.Ecdh, api.ChannelPurposeCommand)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := aliceS.Submit(ctx(t), &api.ContractCommand{Contract: rec.Identity, Nonce: nonce, GasLimit: testGas, Sealed: chn.Seal(api.Pad(in), api.CommandAD(rec.Identity, alice.Public(), nonce))}); err != nil {
			t.Fatal(err)
		}
	}
	cmd(1, 80, vm.MaxValueBytes)
	cmd(2, 1, 100)
	origin := api.KeyOrigin(api.OriginContract, rec.Identity)
	// The contract's messages on topic "t" the chain accepted: the second
	// command's one only (its others are its start report and state
	// updates).
	emitted := func() int {
		top, err := ch.c.Height(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		bb, err := (&relayer.Fetcher{C: ch.c}).Blocks(ctx(t), 1, top)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, b := range bb.Blocks {
			for _, m := range b.Messages {
				if m.Origin == origin && m.Topic == "t" {
					n++
				}
			}
		}
		return n
	}
	waitFor(t, 60*time.Second, "the contract's message on chain and acknowledged", func() bool {
		relay(t, ch, bobS, gk, w)
		n := emitted()
		if n > 1 {
			t.Fatalf("the chain accepted %d messages of the contract on its topic, want 1", n)
		}
		return n == 1 && len(w.Egress()) == 0
	})
	// The first command's write was reverted; the second's stands.
	p, err := client.NewQuery(bob, rec.Identity, rec.Ecdh, w.Identity(), nil, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := w.Query(ctx(t), p.Query)
	if err != nil {
		t.Fatal(err)
	}
	if out, _, err := p.Open(resp); err != nil || binary.LittleEndian.Uint32(out) != 100 {
		t.Fatalf("state after the commands: %x, %v", out, err)
	}
}

// A contract's state changes are bounded per block (MaxStateChangePerBlock),
// so every state update fits in a transaction: the command that would go
// over fails alone, its writes reverted, the same way on a replica; the
// next block has room again.
func TestStateChangeBoundPerBlock(t *testing.T) {
	a := newBare(t, t.TempDir(), false)
	replica := newBare(t, t.TempDir(), false)
	size := uint32(vm.MaxValueBytes - 100)
	per := api.StateLocationSize + 8 + int(size) + 16
	fit := MaxStateChangePerBlock / per
	if fit < 1 {
		t.Fatalf("one value (%d bytes) is over the block's bound", per)
	}
	for _, b := range []*bare{a, replica} {
		for i := 0; i < fit; i++ {
			if err := b.command(t, 5, 0, size); err != nil {
				t.Fatalf("command %d of the block: %v", i, err)
			}
		}
		before := b.root()
		if err := b.command(t, 5, 0, size); !errors.Is(err, contracts.ErrStateBudget) {
			t.Fatalf("the command over the block's bound: %v", err)
		}
		if b.root() != before {
			t.Fatal("a refused command changed the state")
		}
		if err := b.command(t, 6, 0, size); err != nil {
			t.Fatalf("next block: %v", err)
		}
	}
	if a.root() != replica.root() {
		t.Fatal("replicas diverge")
	}
}
