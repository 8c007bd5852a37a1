package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"
	"go.dedis.ch/kyber/v3/group/edwards25519"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/attestation"
	"github.com/phalago/phala/internal/node"
	"github.com/phalago/phala/internal/testnet"
)

// tx, block and contract watch against an in-process chain. The contract
// is made on the chain directly: an upload, the MasterKey announced by the
// registered gatekeeper, its partials of the contract's key for a
// registered worker and the worker's report of the contract's keys (the
// chain opens neither), and messages pushed with the
// contract's identity key (no pRuntime: the chain admits whatever its
// registered key signs, which is what watch shows).
func TestCast(t *testing.T) {
	bin(t)
	measurement := [32]byte{4, 5, 6}
	gatekeeper := crypto.MustKeyPairFromURI("//PhalaCastGatekeeper")
	genesis := node.DevGenesisState(measurement[:])
	genesis.Gatekeepers = []crypto.PublicKey{gatekeeper.Public()}
	n := testnet.New(t, testnet.Options{Genesis: genesis})
	rpc := n.RPC(0)
	c := n.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	alice, bob, dave := crypto.MustKeyPairFromURI("//Alice"), crypto.MustKeyPairFromURI("//Bob"), crypto.MustKeyPairFromURI("//Dave")
	genesisFile := filepath.Join(n.Homes[0], "config", "genesis.json")
	phala := func(args ...string) []string {
		return append(args, "--node", rpc, "--genesis", genesisFile, "--data-dir", filepath.Join(buildDir, "cast-home"))
	}

	// register registers id's pRuntime and returns its ECDH key.
	register := func(id *crypto.KeyPair) crypto.PublicKey {
		ecdh, _, _ := crypto.GenerateKeyPair()
		var recent *cmttypes.SignedHeader
		testnet.WaitFor(t, 30*time.Second, "a committed block to cite", func() (bool, error) {
			h, err := c.Height(ctx)
			if err != nil || h < 2 {
				return false, err
			}
			recent, err = c.SignedHeader(ctx, h-1)
			return err == nil, err
		})
		info := api.WorkerInfo{ChainID: n.ChainID, IdentityKey: id.Public(), EcdhKey: ecdh.Public(), Endpoint: "http://127.0.0.1:8000",
			Operator: dave.Public(), BlockHeight: recent.Height, BlockHash: [api.BlockHashSize]byte(recent.Hash())}
		report := attestation.SignSimQuote(crypto.MustKeyPairFromURI(api.DevAttestationURI), measurement, info.ReportData(), time.Now())
		if _, err := c.NewSigner(dave).Submit(ctx, &api.RegisterWorker{Info: info, Report: *report}); err != nil {
			t.Fatalf("register %s: %v", id.Public().Short(), err)
		}
		return ecdh.Public()
	}

	var tr transferJSON
	okJSON(t, &tr, phala("transfer", "--from", "//Alice", "--to", bob.Address(), "--amount", "2.5")...)

	t.Run("tx", func(t *testing.T) {
		var got txJSON
		okJSON(t, &got, phala("tx", tr.Hash)...)
		if got.Hash != tr.Hash || got.Height != tr.Height || got.Code != 0 || got.CodeName != api.CodeOK.String() || got.Signer != alice.Address() ||
			got.Call != "transfer" || got.Fields["to"] != bob.Address() || got.Fields["amount_pha"] != "2.5" || got.Fee != tr.Fee || got.Nonce != tr.Nonce {
			t.Errorf("tx %s: %+v (transfer %+v)", tr.Hash, got, tr)
		}
		if len(got.Events) != 1 || !strings.HasPrefix(got.Events[0], "transfer from="+alice.Address()+" to="+bob.Address()+" amount=2500000000000") {
			t.Errorf("tx events: %q", got.Events)
		}
		out := ok(t, phala("tx", "0x"+strings.ToUpper(tr.Hash))...)
		for _, want := range []string{"Transaction " + tr.Hash, fmt.Sprintf("block:   %d", tr.Height), "result:  ok", "signer:  " + alice.Address(),
			"call:    transfer", "amount_pha:", "2.5", "events:", "transfer from="} {
			if !strings.Contains(out, want) {
				t.Errorf("tx output lacks %q:\n%s", want, out)
			}
		}
		var unknown [32]byte
		rand.Read(unknown[:])
		fails(t, []string{"no transaction " + strings.ToUpper(hex.EncodeToString(unknown[:])), "never committed"}, phala("tx", hex.EncodeToString(unknown[:]))...)
		for _, bad := range []string{"xyz", tr.Hash[:62], tr.Hash + "00"} {
			fails(t, []string{"transaction hash", "64 hex digits"}, phala("tx", bad)...)
		}
		fails(t, []string{"one transaction hash"}, phala("tx")...)
	})

	t.Run("block", func(t *testing.T) {
		var b blockJSON
		okJSON(t, &b, phala("block", fmt.Sprint(tr.Height))...)
		if b.Height != tr.Height || b.ChainID != n.ChainID || len(b.Hash) != 64 || len(b.AppHash) != 64 || b.Proposer == "" || time.Since(b.Time) > time.Minute {
			t.Errorf("block %d: %+v", tr.Height, b)
		}
		found := false
		for _, x := range b.Txs {
			if x.Hash == tr.Hash {
				found = x.Call == "transfer" && x.Code == 0 && x.Signer == alice.Address() && x.Fields["amount_pha"] == "2.5"
			}
		}
		if !found {
			t.Errorf("block %d does not list the transfer %s: %+v", tr.Height, tr.Hash, b.Txs)
		}
		// The header is the chain's.
		lb, err := c.LightBlock(ctx, tr.Height)
		if err != nil || b.Hash != fmt.Sprintf("%X", lb.Hash()) {
			t.Errorf("block hash %s, verified header %v (%v)", b.Hash, lb, err)
		}
		out := ok(t, phala("block", fmt.Sprint(tr.Height))...)
		for _, want := range []string{fmt.Sprintf("Block %d of %s", tr.Height, n.ChainID), "hash:      " + b.Hash, "proposer:  ", "app hash:  ",
			"Transactions: ", tr.Hash + "  ok from " + alice.Address() + ": transfer 2.5 PHA to " + bob.Address(), "Queue messages: "} {
			if !strings.Contains(out, want) {
				t.Errorf("block output lacks %q:\n%s", want, out)
			}
		}
		var latest blockJSON
		okJSON(t, &latest, phala("block", "latest")...)
		if latest.Height <= tr.Height {
			t.Errorf("block latest: height %d, the transfer was at %d", latest.Height, tr.Height)
		}
		fails(t, []string{"block 99999999", "beyond the chain's tip", "the latest block is"}, phala("block", "99999999")...)
		for _, bad := range []string{"abc", "0", "1.5", "latest1"} {
			fails(t, []string{"give a height", "or latest"}, phala("block", bad)...)
		}
	})

	// A contract: uploaded by //Eve, granted to a registered worker by the
	// registered gatekeeper; its identity key pushes public messages.
	worker, _, _ := crypto.GenerateKeyPair()
	register(worker)
	gatekeeperE := register(gatekeeper)
	contract, _, _ := crypto.GenerateKeyPair()
	other, _, _ := crypto.GenerateKeyPair()
	upload, _, err := c.NewSigner(crypto.MustKeyPairFromURI("//Eve")).Upload(ctx, []byte("\x00asm\x01\x00\x00\x00"), 1, nil)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	originSeqs := map[api.Origin]uint64{}
	send := func(kind api.OriginKind, from *crypto.KeyPair, topic string, payload []byte) {
		t.Helper()
		o := api.KeyOrigin(kind, from.Public())
		m := api.SignMessage(n.ChainID, api.Message{Origin: o, Topic: topic, Seq: originSeqs[o], Payload: payload}, from)
		originSeqs[o]++
		if _, err := c.NewSigner(dave).Submit(ctx, &api.PushMessage{Message: m}); err != nil {
			t.Fatalf("push %s: %v", topic, err)
		}
	}
	suite := edwards25519.NewBlakeSHA256Ed25519()
	master, err := suite.Point().Pick(suite.RandomStream()).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	send(api.OriginGatekeeper, gatekeeper, api.TopicMasterKey, master)
	grant := func(upload [32]byte, id crypto.PublicKey) {
		t.Helper()
		p := &api.KeyPartials{Upload: upload, MemberE: gatekeeperE, Workers: []api.SealedKey{{Worker: worker.Public(), Sealed: []byte("not a real sealed partial")}}}
		send(api.OriginWorker, gatekeeper, api.TopicKeyPartials, p.Encode())
		k := &api.ContractKeyed{Round: p.Round(), Upload: upload, Identity: id, Ecdh: id}
		send(api.OriginWorker, worker, api.TopicContractKeyed, k.Encode())
		testnet.WaitFor(t, 30*time.Second, "the contract deployed", func() (bool, error) {
			_, err := c.Contract(ctx, id)
			return err == nil, nil
		})
	}
	grant(upload, contract.Public())
	upload2, _, err := c.NewSigner(crypto.MustKeyPairFromURI("//Eve")).Upload(ctx, []byte("\x00asm\x01\x00\x00\x00other"), 1, nil)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	grant(upload2, other.Public())
	seqs := map[crypto.PublicKey]uint64{}
	push := func(from *crypto.KeyPair, topic, payload string) *client.TxResult {
		t.Helper()
		m := api.SignMessage(n.ChainID, api.Message{Origin: api.KeyOrigin(api.OriginContract, from.Public()), Topic: topic, Seq: seqs[from.Public()], Payload: []byte(payload)}, from)
		seqs[from.Public()]++
		res, err := c.NewSigner(dave).Submit(ctx, &api.PushMessage{Message: m})
		if err != nil {
			t.Fatalf("push from contract %s: %v", from.Public().Short(), err)
		}
		return res
	}
	first := push(contract, "token/transfer", "hello")
	push(other, "token/transfer", "from another contract")
	push(contract, "token/mint", "world")

	t.Run("watch replay", func(t *testing.T) {
		r := run(t, "", phala("contract", "watch", contract.Public().Hex(), "--from-height", "1", "--count", "2", "--json")...)
		if r.code != 0 {
			t.Fatalf("watch: %s", r)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		want := []contractMessageJSON{
			{Contract: contract.Public().Hex(), Height: first.Height, Topic: "token/transfer", Seq: 0, PayloadBytes: 5, Payload: "0x" + hex.EncodeToString([]byte("hello"))},
			{Contract: contract.Public().Hex(), Topic: "token/mint", Seq: 1, PayloadBytes: 5, Payload: "0x" + hex.EncodeToString([]byte("world"))},
		}
		if len(lines) != 2 {
			t.Fatalf("watch --count 2 printed %d lines: %s", len(lines), r)
		}
		for i, l := range lines {
			var m contractMessageJSON
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			if i == 1 {
				want[1].Height = m.Height
				if m.Height <= first.Height {
					t.Errorf("second message at height %d, the first at %d", m.Height, first.Height)
				}
			}
			if m != want[i] {
				t.Errorf("message %d: %+v, want %+v", i, m, want[i])
			}
		}
		// The push transaction, decoded: origin, topic, seq, payload size.
		out := ok(t, phala("tx", hex.EncodeToString(first.Hash[:]))...)
		for _, want := range []string{"call:    push_message", "origin:", "contract:" + contract.Public().Hex(), "payload_bytes:", "topic:", "token/transfer"} {
			if !strings.Contains(out, want) {
				t.Errorf("tx of the push lacks %q:\n%s", want, out)
			}
		}
		// Its block lists the message.
		var b blockJSON
		okJSON(t, &b, phala("block", fmt.Sprint(first.Height))...)
		if len(b.Messages) != 1 || b.Messages[0] != (messageJSON{Height: first.Height, Origin: "contract:" + contract.Public().Hex(), Topic: "token/transfer", Seq: 0, PayloadBytes: 5}) {
			t.Errorf("block %d messages: %+v", first.Height, b.Messages)
		}
	})

	t.Run("watch follows", func(t *testing.T) {
		cmd := exec.Command(bin(t), phala("contract", "watch", contract.Public().Hex(), "--count", "1")...)
		stdout, _ := cmd.StdoutPipe()
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		started := make(chan string, 1)
		go func() {
			l, _ := bufio.NewReader(stderr).ReadString('\n')
			started <- l
		}()
		select {
		case l := <-started:
			if !strings.Contains(l, "watching contract "+contract.Public().Hex()) {
				t.Fatalf("watch started with %q", l)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("watch did not start")
		}
		push(other, "token/transfer", "not this one")
		res := push(contract, "token/transfer", "live")
		line := make(chan string, 1)
		go func() {
			l, _ := bufio.NewReader(stdout).ReadString('\n')
			line <- l
		}()
		select {
		case l := <-line:
			want := fmt.Sprintf("block %d  seq 2  topic \"token/transfer\"  4 bytes  0x%x\n", res.Height, "live")
			if l != want {
				t.Errorf("watch printed %q, want %q", l, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("watch printed nothing for the new message")
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("watch --count 1: %v", err)
		}
	})

	t.Run("watch stops on Ctrl-C", func(t *testing.T) {
		cmd := exec.Command(bin(t), phala("contract", "watch", contract.Public().Hex())...)
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		if l, _ := bufio.NewReader(stderr).ReadString('\n'); !strings.Contains(l, "watching contract") {
			t.Fatalf("watch started with %q", l)
		}
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("watch after Ctrl-C: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("watch did not stop on SIGINT")
		}
	})

	t.Run("watch errors", func(t *testing.T) {
		fails(t, []string{"no contract " + bob.Public().Hex(), "phala contract show"}, phala("contract", "watch", bob.Public().Hex())...)
		fails(t, []string{"contract id", "identity key"}, phala("contract", "watch", "0x1234")...)
		// A mistyped id of the right length is no key: said without jargon.
		fails(t, []string{"is not a contract id", "phala contract upload"}, phala("contract", "watch", "0x"+strings.Repeat("ff", 32))...)
		fails(t, []string{"--from-height -1", "positive"}, phala("contract", "watch", contract.Public().Hex(), "--from-height", "-1")...)
	})
}
