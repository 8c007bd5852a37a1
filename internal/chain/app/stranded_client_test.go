package app_test

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/app"
	"github.com/phalago/phala/internal/chain/store"
	"github.com/phalago/phala/internal/testnet"
)

// A stranded contract is visible and refused by the client (docs/keys.md,
// "A contract that loses its last worker"): a contract with no worker
// whose key era 0 is retired (written by the test-only genesis hook) is
// Stranded and Dead; Signer.Command refuses it with ErrContractStranded
// before sending anything (the sender's balance and nonce unchanged). A
// contract with no worker under a key era not retired is neither, and a
// command to it is sent (it waits in the chain for a replacement).
func TestStrandedContractRefused(t *testing.T) {
	k1, _, _ := crypto.GenerateKeyPair()
	k2, _, _ := crypto.GenerateKeyPair()
	dead, waiting := k1.Public(), k2.Public()
	app.SetGenesisHook(func(kv store.KV) {
		for i, id := range []crypto.PublicKey{dead, waiting} {
			rec := &api.ContractRecord{Identity: id, Ecdh: id, Upload: [32]byte{byte(i + 1)}, Status: api.ContractRunning, KeyEra: uint64(i)}
			kv.Set(api.ContractKey(id), rec.Encode())
		}
		kv.Set(api.KeyEraRetiredKey(0), append(binary.AppendVarint(nil, 1), 1))
	})
	defer app.SetGenesisHook(nil)
	net := testnet.New(t, testnet.Options{StartTimeout: time.Minute})
	c := net.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice := crypto.MustKeyPairFromURI("//Alice")
	s := c.NewSigner(alice)

	rec, err := c.Contract(ctx, dead)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := c.Stranded(ctx, rec)
	if err != nil || !sd.Stranded || !sd.Dead(rec) || sd.Era != 0 || sd.RetiredAt != 1 {
		t.Fatalf("stranded %+v, %v", sd, err)
	}
	before, err := c.Account(ctx, alice.Public())
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Command(ctx, rec, []byte("mint"))
	if !errors.Is(err, client.ErrContractStranded) || !strings.Contains(err.Error(), "key era 0 was retired at height 1") || !strings.Contains(err.Error(), "never run") {
		t.Fatalf("command to a stranded contract: %v", err)
	}
	if after, err := c.Account(ctx, alice.Public()); err != nil || after != before {
		t.Fatalf("account %+v after the refusal, %+v before (%v)", after, before, err)
	}

	rec, err = c.Contract(ctx, waiting)
	if err != nil {
		t.Fatal(err)
	}
	if sd, err := c.Stranded(ctx, rec); err != nil || sd.Stranded || sd.Dead(rec) {
		t.Fatalf("waiting contract: %+v, %v", sd, err)
	}
	if res, err := s.Command(ctx, rec, []byte("mint")); err != nil || res.Height == 0 {
		t.Fatalf("command to a contract waiting for a worker: %+v, %v", res, err)
	}
}
