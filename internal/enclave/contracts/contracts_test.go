package contracts_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/vm"
)

var (
	buildOnce sync.Map // dir -> []byte
	alice     = crypto.MustKeyPairFromURI("//Alice")
	bob       = crypto.MustKeyPairFromURI("//Bob")
	worker    = crypto.MustKeyPairFromURI("//Worker").Public() // the worker queries are addressed to
	t0        = time.Unix(1_700_000_000, 0).UTC()
)

func code(t testing.TB, dir string) []byte {
	if c, ok := buildOnce.Load(dir); ok {
		return c.([]byte)
	}
	c := contracttest.Build(t, dir)
	buildOnce.Store(dir, c)
	return c
}

func newContract(t testing.TB, dir string, interpreter bool) *contracts.Contract {
	t.Helper()
	ctx := context.Background()
	v, err := vm.New(ctx, vm.Config{Interpreter: interpreter})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(ctx) })
	m, err := v.Compile(ctx, code(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := keys.ContractKeysFromSeed(sha256.Sum256([]byte("test contract")))
	c, err := contracts.New(ctx, v, k, m)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const misbehave = "testdata/misbehave"

func TestTrapsAndFailuresRevert(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a contract")
	}
	c := newContract(t, misbehave, false)
	ctx := context.Background()
	c.GasLimit = 50_000_000
	if _, err := c.Command(ctx, alice.Public(), []byte("set"), 1, t0); err != nil {
		t.Fatal(err)
	}
	root := c.StateRoot()
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"fail", vm.ErrFailed},
		{"panic", vm.ErrTrap},
		{"nil", vm.ErrFailed}, // the SDK recovers runtime errors into the call's error
		{"loop", vm.ErrOutOfGas},
		{"unknown", vm.ErrFailed},
	} {
		_, err := c.Command(ctx, alice.Public(), []byte(tc.in), 2, t0)
		if !errors.Is(err, tc.want) {
			t.Fatalf("%s: %v, want %v", tc.in, err, tc.want)
		}
		if c.StateRoot() != root {
			t.Fatalf("%s changed the state", tc.in)
		}
		// The next call works (on a fresh instance if the last one broke).
		out, err := c.Query(ctx, alice.Public(), nil, 2, t0)
		if err != nil || string(out.Output) != "1" {
			t.Fatalf("after %s: %q %v", tc.in, out.Output, err)
		}
	}
	// A query cannot write.
	if _, err := c.Query(ctx, alice.Public(), []byte("write"), 2, t0); err == nil || c.StateRoot() != root {
		t.Fatalf("query wrote: %v", err)
	}
}

// An infinite loop stops with the same gas on every run and on both of
// wazero's engines.
func TestInfiniteLoopGasDeterministic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a contract")
	}
	var used []uint64
	for _, interp := range []bool{false, true, false} {
		c := newContract(t, misbehave, interp)
		c.GasLimit = 20_000_000
		res, err := c.Command(context.Background(), alice.Public(), []byte("loop"), 1, t0)
		if !errors.Is(err, vm.ErrOutOfGas) {
			t.Fatalf("interpreter=%v: %v", interp, err)
		}
		used = append(used, res.GasUsed)
		// A bounded call uses the same gas on both engines too.
		res, err = c.Command(context.Background(), alice.Public(), []byte("set"), 2, t0)
		if err != nil {
			t.Fatal(err)
		}
		used = append(used, res.GasUsed)
	}
	if used[0] != used[2] || used[0] != used[4] || used[1] != used[3] || used[1] != used[5] {
		t.Fatalf("gas differs between runs or engines: %v", used)
	}
}

// Time and randomness come from the block and the contract key: the same
// on two workers, different across blocks.
func TestDeterministicEnvironment(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a contract")
	}
	ctx := context.Background()
	a, b := newContract(t, misbehave, false), newContract(t, misbehave, true)
	for _, in := range []string{"random", "time"} {
		ra, err := a.Command(ctx, alice.Public(), []byte(in), 7, t0)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := b.Command(ctx, alice.Public(), []byte(in), 7, t0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ra.Output, rb.Output) {
			t.Fatalf("%s differs between workers: %s / %s", in, ra.Output, rb.Output)
		}
	}
	r1, _ := a.Command(ctx, alice.Public(), []byte("random"), 8, t0)
	r2, _ := a.Command(ctx, alice.Public(), []byte("random"), 8, t0)
	if bytes.Equal(r1.Output, r2.Output) {
		t.Fatal("two calls got the same randomness")
	}
	res, err := a.Command(ctx, alice.Public(), []byte("emit"), 9, t0)
	if err != nil || len(res.Messages) != 1 || res.Messages[0].Topic != "app/out" {
		t.Fatalf("emit: %+v %v", res, err)
	}
	if a.StateRoot() != b.StateRoot() {
		t.Fatal("roots differ")
	}
}

func tokenReq(op string, to crypto.PublicKey, amount uint64) []byte {
	return []byte(fmt.Sprintf("%s %s %d", op, to.Hex(), amount))
}

// The raw store under a token contract holds no plaintext key or value.
func TestStorageHidesPlaintext(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a contract")
	}
	ctx := context.Background()
	c := newContract(t, filepath.Join("..", "..", "..", "examples", "contracts", "token"), false)
	if _, err := c.Init(ctx, alice.Public(), nil, 1, t0); err != nil {
		t.Fatal(err)
	}
	amounts := []uint64{123456789, 987654321}
	if _, err := c.Command(ctx, alice.Public(), tokenReq("mint", alice.Public(), amounts[0]+amounts[1]), 2, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Command(ctx, alice.Public(), tokenReq("transfer", bob.Public(), amounts[1]), 3, t0); err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	c.Store().Raw(func(l, v []byte) { raw.Write(l); raw.Write(v) })
	snap := c.Store().Snapshot()
	for _, needle := range [][]byte{
		[]byte("balance"), []byte("owner"), alice.Public().Bytes(), bob.Public().Bytes(),
		[]byte("123456789"), []byte("987654321"),
		be(amounts[0]), be(amounts[1]), be(amounts[0] + amounts[1]),
	} {
		if bytes.Contains(raw.Bytes(), needle) || bytes.Contains(snap, needle) {
			t.Errorf("plaintext %q found in the store", needle)
		}
	}
	if c.Store().Len() != 4 { // 3, and the secrets entry
		t.Fatalf("%d entries", c.Store().Len())
	}
	// Snapshots restore under the key, and only to the same root.
	k, _ := keys.ContractKeysFromSeed(sha256.Sum256([]byte("test contract")))
	s2, err := contracts.RestoreStore([]contracts.EpochKey{{Key: k.Storage}}, snap, c.StateRoot())
	if err != nil {
		t.Fatal(err)
	}
	if v, ok, err := s2.Get(contractKey("owner")); err != nil || !ok || !bytes.Equal(v, alice.Public().Bytes()) {
		t.Fatalf("restored owner: %x %v %v", v, ok, err)
	}
	if _, err := contracts.RestoreStore([]contracts.EpochKey{{Key: k.Storage}}, snap, [32]byte{1}); err == nil {
		t.Fatal("snapshot restored against another root")
	}
}

func be(v uint64) []byte {
	return []byte{byte(v >> 56), byte(v >> 48), byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

func contractKey(s string) []byte { return []byte(s) }

// Off-chain queries: sealed and signed by the client, answered sealed and
// signed by the contract; only the owner learns a balance; expired,
// replayed, tampered or misaddressed queries are refused.
func TestQueries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a contract")
	}
	ctx := context.Background()
	c := newContract(t, filepath.Join("..", "..", "..", "examples", "contracts", "token"), false)
	c.Init(ctx, alice.Public(), nil, 1, t0)
	if _, err := c.Command(ctx, alice.Public(), tokenReq("mint", bob.Public(), 77), 2, t0); err != nil {
		t.Fatal(err)
	}
	g := contracts.NewQueryGuard()
	now := t0.Add(time.Minute)
	ask := func(key *crypto.KeyPair, input string, notAfter time.Time) (*client.PendingQuery, *api.ContractQueryResponse, error) {
		p, err := client.NewQuery(key, c.ID(), c.EcdhPublic(), worker, []byte(input), notAfter)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.HandleQuery(ctx, g, p.Query, 2, now)
		return p, resp, err
	}
	p, resp, err := ask(bob, "balance", now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	out, h, err := p.Open(resp)
	if err != nil || string(out) != "77" || h != 2 {
		t.Fatalf("bob's balance: %s at %d: %v", out, h, err)
	}
	// The policy: Alice may not read Bob's balance.
	p, resp, err = ask(alice, "balance "+bob.Public().Hex(), now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Open(resp); !errors.Is(err, client.ErrQueryFailed) || !strings.Contains(err.Error(), "only to its owner") {
		t.Fatalf("alice reading bob: %v", err)
	}
	// Refusals.
	fresh := func() *api.ContractQuery {
		p, _ := client.NewQuery(bob, c.ID(), c.EcdhPublic(), worker, []byte("balance"), now.Add(time.Minute))
		return p.Query
	}
	replayed := fresh()
	if _, err := c.HandleQuery(ctx, g, replayed, 2, now); err != nil {
		t.Fatal(err)
	}
	tampered := fresh()
	tampered.Ciphertext[len(tampered.Ciphertext)-1] ^= 1
	resigned := fresh()
	resigned.Ciphertext[len(resigned.Ciphertext)-1] ^= 1
	resigned.Signature = bob.Sign(api.ContextQuery, resigned.SignBytes())
	expired, _ := client.NewQuery(bob, c.ID(), c.EcdhPublic(), worker, nil, now.Add(-time.Second))
	far, _ := client.NewQuery(bob, c.ID(), c.EcdhPublic(), worker, nil, now.Add(time.Hour))
	other, _ := client.NewQuery(bob, alice.Public(), c.EcdhPublic(), worker, nil, now.Add(time.Minute))
	for name, q := range map[string]*api.ContractQuery{
		"replayed": replayed, "bad signature": tampered, "tampered ciphertext": resigned,
		"expired": expired.Query, "too far ahead": far.Query, "for another contract": other.Query,
	} {
		if _, err := c.HandleQuery(ctx, g, q, 2, now); !errors.Is(err, contracts.ErrQueryRefused) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A response for another query does not open.
	p1, r1, _ := ask(bob, "balance", now.Add(time.Minute))
	_, r2, _ := ask(bob, "balance", now.Add(time.Minute))
	if _, _, err := p1.Open(r2); err == nil {
		t.Fatal("opened another query's response")
	}
	r1.Height = 3
	if _, _, err := p1.Open(r1); err == nil {
		t.Fatal("response with a forged height opened")
	}
}

func FuzzDecodeContractQuery(f *testing.F) {
	p, _ := client.NewQuery(alice, bob.Public(), bob.Public(), worker, []byte("x"), t0)
	f.Add(p.Query.Encode())
	onChain, _ := client.NewQuery(alice, bob.Public(), bob.Public(), crypto.PublicKey{}, nil, t0)
	f.Add(onChain.Query.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := api.DecodeContractQuery(b)
		if err == nil && !bytes.Equal(q.Encode(), b) {
			t.Fatalf("mismatch %x", b)
		}
		if r, err := api.DecodeContractQueryResponse(b); err == nil && !bytes.Equal(r.Encode(), b) {
			t.Fatalf("response mismatch %x", b)
		}
	})
}

// The replay guard survives its encoding (the sealed checkpoint): a query
// seen before is still refused after a decode, expired entries are dropped
// by block time, and the encoding is canonical.
func TestQueryGuardEncoding(t *testing.T) {
	g := contracts.NewQueryGuard()
	now := t0
	var qs []*api.ContractQuery
	for i, ttl := range []time.Duration{30 * time.Second, 2 * time.Minute} {
		p, err := client.NewQuery(bob, bob.Public(), bob.Public(), worker, []byte{byte(i)}, now.Add(ttl))
		if err != nil {
			t.Fatal(err)
		}
		if err := contracts.CheckQuery(g, p.Query, now); err != nil {
			t.Fatal(err)
		}
		qs = append(qs, p.Query)
	}
	b := g.Encode(now)
	g2, err := contracts.DecodeQueryGuard(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g2.Encode(now), b) {
		t.Fatal("guard encoding is not stable")
	}
	for _, q := range qs {
		if err := contracts.CheckQuery(g2, q, now); !errors.Is(err, contracts.ErrQueryRefused) {
			t.Fatalf("replay after decode: %v", err)
		}
	}
	// A minute later the first entry expired and is not encoded.
	later := now.Add(time.Minute)
	if n := len(g2.Encode(later)); n >= len(b) {
		t.Fatalf("expired entry kept: %d >= %d bytes", n, len(b))
	}
	if err := contracts.CheckQuery(g2, qs[1], later); !errors.Is(err, contracts.ErrQueryRefused) {
		t.Fatalf("live entry lost: %v", err)
	}
	// Bad encodings are refused.
	for name, bad := range map[string][]byte{
		"truncated":    b[:len(b)-1],
		"trailing":     append(bytes.Clone(b), 0),
		"huge count":   {0xff, 0xff, 0xff, 0xff, 0x0f},
		"out of order": outOfOrder(),
	} {
		if _, err := contracts.DecodeQueryGuard(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func outOfOrder() []byte {
	w := codec.NewWriter(0)
	w.Uvarint(2)
	w.Fixed(bytes.Repeat([]byte{2}, 48))
	w.Varint(5)
	w.Fixed(bytes.Repeat([]byte{1}, 48))
	w.Varint(5)
	return w.Bytes()
}

func FuzzDecodeQueryGuard(f *testing.F) {
	g := contracts.NewQueryGuard()
	p, _ := client.NewQuery(bob, bob.Public(), bob.Public(), worker, nil, t0.Add(time.Minute))
	_ = contracts.CheckQuery(g, p.Query, t0)
	f.Add(g.Encode(t0))
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := contracts.DecodeQueryGuard(b)
		if err == nil && len(b) > 0 && !bytes.Equal(g.Encode(time.Unix(0, 0)), b) {
			t.Fatalf("mismatch %x", b)
		}
	})
}
