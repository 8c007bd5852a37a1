package contracts_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
	"github.com/phalago/phala/internal/enclave/contracts"
	"github.com/phalago/phala/internal/enclave/keys"
	"github.com/phalago/phala/internal/enclave/vm"
)

// Two replicas of a contract (the same keys) form the same call message
// but for AES-GCM's random nonce: same receiver, gas, sender ECDH key and
// deterministic call nonce; each sealed payload opens with the receiver's
// ECDH key (and additional data naming sender, receiver and nonce) only.
// A receiver the Peers refuse gets nothing; a contract without Peers
// calls nobody; payouts become PayoutRequest messages; handle_event runs.
func TestCallMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a contract")
	}
	ctx := context.Background()
	v, err := vm.New(ctx, vm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close(ctx)
	m, err := v.Compile(ctx, code(t, filepath.Join("..", "..", "testcontracts", "interop")))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := keys.ContractKeysFromSeed(sha256.Sum256([]byte("caller")))
	recv, _ := keys.ContractKeysFromSeed(sha256.Sum256([]byte("receiver")))
	to := recv.Identity.Public()
	peers := func(id crypto.PublicKey, _ uint64, _ int64) (crypto.PublicKey, bool) {
		return recv.Ecdh.Public(), id == to
	}
	in := []byte(fmt.Sprintf("call 0x%s 1000 1 hi there", hex.EncodeToString(to[:])))
	var calls []*api.ContractCall
	for i := 0; i < 2; i++ {
		c, err := contracts.New(ctx, v, k, m)
		if err != nil {
			t.Fatal(err)
		}
		c.SetPeers(peers)
		res, err := c.Command(ctx, alice.Public(), in, 5, t0)
		if err != nil || len(res.Messages) != 1 || res.Messages[0].Topic != api.TopicContractCall {
			t.Fatalf("replica %d: %v %+v", i, err, res)
		}
		call, err := api.DecodeContractCall(res.Messages[0].Payload)
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, call)
	}
	a, b := calls[0], calls[1]
	if a.To != to || a.Gas != 1000 || a.SenderEcdh != k.Ecdh.Public() || a.Nonce != b.Nonce || a.SenderEcdh != b.SenderEcdh || a.Nonce == ([16]byte{}) {
		t.Fatalf("replicas' calls differ: %+v %+v", a, b)
	}
	for _, c := range calls {
		ch, _ := channel.New(recv.Ecdh, c.SenderEcdh, api.ChannelPurposeContractCall)
		pt, err := ch.Open(c.Payload, api.CallAD(k.Identity.Public(), to, c.Nonce))
		if err == nil {
			pt, err = api.Unpad(pt) // padded like a command
		}
		if err != nil || string(pt) != "hi there" || len(c.Payload) != api.PadBlock+channel.Overhead {
			t.Fatalf("the receiver opens %q (%d bytes sealed): %v", pt, len(c.Payload), err)
		}
		if _, err := ch.Open(c.Payload, api.CallAD(alice.Public(), to, c.Nonce)); err == nil {
			t.Fatal("opened as another sender's")
		}
		other, _ := channel.New(k.Ecdh, c.SenderEcdh, api.ChannelPurposeContractCall)
		if _, err := other.Open(c.Payload, api.CallAD(k.Identity.Public(), to, c.Nonce)); err == nil {
			t.Fatal("opened with another key than the receiver's")
		}
	}

	c, _ := contracts.New(ctx, v, k, m)
	if res, err := c.Command(ctx, alice.Public(), in, 5, t0); !errors.Is(err, vm.ErrFailed) || len(res.Messages) != 0 {
		t.Fatalf("a call with no peers: %v", err)
	}
	c.SetPeers(func(crypto.PublicKey, uint64, int64) (crypto.PublicKey, bool) { return crypto.PublicKey{}, false })
	if _, err := c.Command(ctx, alice.Public(), in, 6, t0); !errors.Is(err, vm.ErrFailed) {
		t.Fatalf("a call to a refused receiver: %v", err)
	}
	res, err := c.Command(ctx, alice.Public(), []byte(fmt.Sprintf("pay 0x%s 9 4", hex.EncodeToString(to[:]))), 7, t0)
	if err != nil || len(res.Messages) != 1 || res.Messages[0].Topic != api.TopicPayout {
		t.Fatalf("pay: %v %+v", err, res)
	}
	if p, err := api.DecodePayoutRequest(res.Messages[0].Payload); err != nil || *p != (api.PayoutRequest{ID: 4, To: to, Amount: 9}) {
		t.Fatalf("payout request %+v: %v", p, err)
	}
	if c.Escrow() != api.EscrowAccount(k.Identity.Public()) {
		t.Fatal("escrow")
	}
}
