package api

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

var update = flag.Bool("update", false, "rewrite testdata/txs.hex")

// fixtureTxs are the transactions written to testdata/txs.hex: one of each
// call, signed by development keys.
func fixtureTxs() []*Tx {
	alice := crypto.MustKeyPairFromURI("//Alice")
	bob := crypto.MustKeyPairFromURI("//Bob")
	worker := crypto.MustKeyPairFromURI("//Worker")
	info := WorkerInfo{ChainID: "phala-dev", IdentityKey: worker.Public(), EcdhKey: bob.Public(), Endpoint: "http://127.0.0.1:8000", Operator: bob.Public(),
		BlockHeight: 41, BlockHash: [BlockHashSize]byte{0xb1, 0x0c, 31: 0x41}}
	msg := SignMessage("phala-dev", Message{Origin: KeyOrigin(OriginWorker, worker.Public()), Topic: "phala/egress", Seq: 7, Payload: []byte("sealed")}, worker)
	return []*Tx{
		NewTx("phala-dev", alice, 0, 1_200_000, &Transfer{To: bob.Public(), Amount: 5 * Unit}),
		NewTx("phala-dev", alice, 1, 1_300_000, &PostMessage{Topic: "phala/test", Payload: []byte{1, 2, 3}}),
		NewTx("phala-dev", bob, 300, 1_500_000, &PushMessage{Message: msg}),
		NewTx("phala-dev", bob, 1<<40, 2_000_000, &RegisterWorker{Info: info, Report: AttestationReport{Platform: PlatformSim, Quote: bytes.Repeat([]byte{7}, 170)}}),
	}
}

func readFixtures(t testing.TB) [][]byte {
	f, err := os.Open("testdata/txs.hex")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// The fixtures are real signed transactions: they decode, re-encode to the
// same bytes, and their signatures verify. Regenerate with -update.
func TestTxFixtures(t *testing.T) {
	if *update {
		var buf bytes.Buffer
		buf.WriteString("# One signed transaction per line (hex): transfer, post_message, push_message, register_worker.\n# Regenerate: go test ./api -run TestTxFixtures -update\n")
		for _, tx := range fixtureTxs() {
			buf.WriteString(hex.EncodeToString(tx.Encode()) + "\n")
		}
		if err := os.WriteFile("testdata/txs.hex", buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fx := readFixtures(t)
	if len(fx) != 4 {
		t.Fatalf("%d fixtures", len(fx))
	}
	for i, b := range fx {
		tx, err := DecodeTx(b)
		if err != nil {
			t.Fatalf("fixture %d: %v", i, err)
		}
		if !bytes.Equal(tx.Encode(), b) {
			t.Fatalf("fixture %d does not re-encode", i)
		}
		if !tx.VerifySignature(b) {
			t.Fatalf("fixture %d: signature", i)
		}
	}
}

// FuzzDecodeTx: the decoder never panics, and what it accepts re-encodes to
// the same bytes.
func FuzzDecodeTx(f *testing.F) {
	for _, b := range readFixtures(f) {
		f.Add(b)
	}
	// A contract command with its declared gas limit (not in the fixture
	// file, whose lines the fixture test counts).
	alice := crypto.MustKeyPairFromURI("//Alice")
	f.Add(NewTx("phala-dev", alice, 4, 51_300_000, &ContractCommand{Contract: alice.Public(), Nonce: 4, GasLimit: 10_000_000, Sealed: []byte("sealed")}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := DecodeTx(b)
		if err != nil {
			return
		}
		if !bytes.Equal(tx.Encode(), b) {
			t.Fatalf("decode/encode mismatch:\n in %x\nout %x", b, tx.Encode())
		}
	})
}

func FuzzDecodeBlockMessages(f *testing.F) {
	bm := &BlockMessages{Height: 9, StateRoot: bytes.Repeat([]byte{1}, 32), Messages: []Message{
		{Origin: ModuleOrigin("registry"), Topic: "a", Seq: 1, Payload: []byte("x")},
		{Origin: KeyOrigin(OriginAccount, crypto.MustKeyPairFromURI("//Alice").Public()), Topic: "b", Seq: 0},
	}}
	f.Add(bm.Encode())
	f.Add((&BlockMessages{}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeBlockMessages(b)
		if err != nil {
			return
		}
		if !bytes.Equal(got.Encode(), b) {
			t.Fatalf("decode/encode mismatch: %x", b)
		}
		_ = MessagesRoot(got.Messages)
	})
}

func FuzzDecodeMessage(f *testing.F) {
	m := Message{Origin: KeyOrigin(OriginWorker, crypto.MustKeyPairFromURI("//W").Public()), Topic: "t", Seq: 3, Payload: []byte{1}}
	f.Add(m.Encode())
	f.Add(ModuleOrigin("mq").Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, err := DecodeMessage(b); err == nil && !bytes.Equal(got.Encode(), b) {
			t.Fatalf("message mismatch: %x", b)
		}
		if o, err := DecodeOrigin(b); err == nil && !bytes.Equal(o.Encode(), b) {
			t.Fatalf("origin mismatch: %x", b)
		}
	})
}

// A cited block height beyond int64 is refused, not wrapped negative.
func TestWorkerInfoBlockHeightBounded(t *testing.T) {
	info := WorkerInfo{ChainID: "c", Endpoint: "e", BlockHeight: 3}
	rest := (&WorkerRecord{Info: info, Platform: "sim", Measurement: []byte{1}}).Encode()[len(info.Encode()):]
	withHeight := func(h uint64) []byte {
		w := codec.NewWriter(0)
		w.String("c")
		w.Fixed(make([]byte, 64)) // identity and ECDH keys
		w.String("e")
		w.Fixed(make([]byte, 32)) // operator
		w.Uvarint(h)
		w.Fixed(make([]byte, BlockHashSize))
		w.Uvarint(0) // cores
		w.Uvarint(0) // memory
		w.Uvarint(0) // runtime version
		return append(w.Bytes(), rest...)
	}
	if got, err := DecodeWorkerRecord(withHeight(3)); err != nil || got.Info != info {
		t.Fatalf("height 3: %+v %v", got, err)
	}
	if _, err := DecodeWorkerRecord(withHeight(1 << 63)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("height 2^63: %v", err)
	}
}

func FuzzDecodeRegistry(f *testing.F) {
	w := WorkerRecord{Info: WorkerInfo{ChainID: "c", Endpoint: "e"}, Platform: "sim", Measurement: []byte{1, 2}, RegisteredAt: 5, ExpiresAt: 100}
	q := SimQuote{IssuedAt: -5}
	f.Add(w.Encode())
	w.Info.BlockHeight, w.Info.BlockHash = 1<<40, [BlockHashSize]byte{1, 31: 2}
	w.Measurement = bytes.Repeat([]byte{3}, MaxMeasurementBytes)
	f.Add(w.Encode())
	w.Info.Cores, w.Info.MemoryMB, w.Info.RuntimeVersion = 64, 1<<20, 2
	f.Add(w.Encode())
	f.Add(DefaultParams().Encode())
	f.Add(q.Encode())
	f.Add((&Account{Balance: 10, Nonce: 2}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, err := DecodeWorkerRecord(b); err == nil && !bytes.Equal(got.Encode(), b) {
			t.Fatalf("worker record mismatch: %x", b)
		}
		if got, err := DecodeSimQuote(b); err == nil && !bytes.Equal(got.Encode(), b) {
			t.Fatalf("sim quote mismatch: %x", b)
		}
		if got, err := DecodeAccount(b); err == nil && !bytes.Equal(got.Encode(), b) {
			t.Fatalf("account mismatch: %x", b)
		}
		if got, err := DecodeKeys(b); err == nil && !bytes.Equal(EncodeKeys(got), b) {
			t.Fatalf("keys mismatch: %x", b)
		}
		if got, err := DecodeParams(b); err == nil && !bytes.Equal(got.Encode(), b) {
			t.Fatalf("params mismatch: %x", b)
		}
		if got, err := DecodeAttestationSettings(b); err == nil && !bytes.Equal(got.Encode(), b) {
			t.Fatalf("attestation settings mismatch: %x", b)
		}
	})
}

func TestDecodeRejectsOutOfRange(t *testing.T) {
	// A call kind over 16 bits is unknown, not truncated.
	alice := crypto.MustKeyPairFromURI("//Alice")
	w := codec.NewWriter(0)
	w.U8(TxVersion)
	w.String("c")
	w.Fixed(alice.Public().Bytes())
	w.Uvarint(0)
	w.Uvarint(1)
	w.Uvarint(1<<16 | uint64(CallTransfer))
	w.BytesField(EncodeCall(&Transfer{To: alice.Public(), Amount: 1}))
	w.Fixed(make([]byte, 64))
	if _, err := DecodeTx(w.Bytes()); !errors.Is(err, ErrUnknownCall) {
		t.Fatalf("kind 65537: %v", err)
	}
	// A message count the input cannot hold is refused before allocating.
	w = codec.NewWriter(0)
	w.Uvarint(1)
	w.BytesField(nil)
	w.Uvarint(1 << 20)
	w.Fixed(make([]byte, 1<<16))
	allocs := testing.AllocsPerRun(1, func() {
		if _, err := DecodeBlockMessages(w.Bytes()); err == nil {
			t.Fatal("accepted")
		}
	})
	if allocs > 20 {
		t.Fatalf("%v allocations for a refused count", allocs)
	}
}

func FuzzDecodeSyncPayloads(f *testing.F) {
	hb := &HeaderBatch{Headers: []HeaderSync{{SignedHeader: []byte{1, 2}, Validators: []byte{3}}}}
	bb := &BlockBatch{Blocks: []BlockMessages{{Height: 3, StateRoot: []byte{1}, Messages: []Message{{Origin: ModuleOrigin("m"), Topic: "t", Seq: 1}}}}}
	alice := crypto.MustKeyPairFromURI("//Alice")
	sm := []SignedMessage{SignMessage("c", Message{Origin: KeyOrigin(OriginWorker, alice.Public()), Topic: "t"}, alice)}
	f.Add(hb.Encode())
	f.Add(bb.Encode())
	f.Add(EncodeSignedMessages(sm))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, err := DecodeHeaderBatch(b); err == nil && !bytes.Equal(got.Encode(), b) {
			t.Fatalf("header batch mismatch: %x", b)
		}
		if got, err := DecodeBlockBatch(b); err == nil && !bytes.Equal(got.Encode(), b) {
			t.Fatalf("block batch mismatch: %x", b)
		}
		if got, err := DecodeSignedMessages(b); err == nil && !bytes.Equal(EncodeSignedMessages(got), b) {
			t.Fatalf("signed messages mismatch: %x", b)
		}
	})
}

// FuzzDecodeContracts covers the decoders of contract lifecycle payloads
// pRuntime and the chain read from the queue.
func FuzzDecodeContracts(f *testing.F) {
	k := crypto.MustKeyPairFromURI("//K").Public()
	f.Add((&ContractUploaded{Deployer: k, Sequence: 2, Replicas: 1, Code: []byte{1}, InitInput: []byte("x")}).Encode())
	f.Add((&ContractKeyGrant{Identity: k, Workers: []crypto.PublicKey{k}}).Encode())
	f.Add((&ContractCommandMessage{Contract: k, From: k, Nonce: 9, Sealed: []byte{3}}).Encode())
	f.Add((&ContractCommandMessage{Contract: k, From: k, Nonce: 9, GasLimit: 100_000_000, Sealed: []byte{3}}).Encode())
	f.Add((&MasterKeyShare{To: k, Sealed: []byte{4}}).Encode())
	f.Add((&ContractRecord{Identity: k, Workers: []crypto.PublicKey{k}}).Encode())
	f.Add((&ContractRecord{Identity: k, Status: ContractFailed, Reason: "invalid module", StatusHeight: 9}).Encode())
	f.Add((&ContractStatusReport{Status: ContractFailed, Reason: "init returned an error: no"}).Encode())
	f.Add((&UploadPending{Deployer: k, Sequence: 3, Replicas: 2, Height: 40}).Encode())
	req := Requirements{Subnet: [32]byte{5}, Platform: PlatformTDX, MinCores: 4, MinMemoryMB: 8192, MinRuntimeVersion: 2}
	f.Add((&UploadPending{Deployer: k, Sequence: 3, Replicas: 2, Height: 40, Requirements: req}).Encode())
	f.Add((&ContractUploaded{Deployer: k, Replicas: 1, Code: []byte{1}, Requirements: req}).Encode())
	f.Add((&ContractRecord{Identity: k, Workers: []crypto.PublicKey{k}, Requirements: req}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := DecodeContractStatusReport(b); err == nil && (!bytes.Equal(v.Encode(), b) || (v.Status != ContractRunning && v.Status != ContractFailed)) {
			t.Fatalf("status report mismatch %x", b)
		}
		if v, err := DecodeUploadPending(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("pending upload mismatch %x", b)
		}
		if v, err := DecodeContractUploaded(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("uploaded mismatch %x", b)
		}
		if v, err := DecodeContractKeyGrant(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("grant mismatch %x", b)
		}
		if v, err := DecodeContractCommandMessage(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("command mismatch %x", b)
		}
		if v, err := DecodeMasterKeyShare(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("share mismatch %x", b)
		}
		if v, err := DecodeContractRecord(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("record mismatch %x", b)
		}
	})
}

// FuzzDecodeWorkerRegistered: the registry's TopicWorkerRegistered payload
// (record and admitting report) decodes strictly: whatever decodes
// re-encodes to the same bytes, a record or report out of bounds is
// refused.
func FuzzDecodeWorkerRegistered(f *testing.F) {
	rec := WorkerRecord{Info: WorkerInfo{ChainID: "c", Endpoint: "e", BlockHeight: 7, BlockHash: [BlockHashSize]byte{1}}, Platform: "sim", Measurement: []byte{1, 2}, RegisteredAt: 9, ExpiresAt: 100, AttestedAt: 5}
	q := SimQuote{IssuedAt: 5}
	m := WorkerRegistered{Record: rec, Report: AttestationReport{Platform: PlatformSim, Quote: q.Encode()}}
	f.Add(m.Encode())
	f.Add((&WorkerRegistered{}).Encode())
	f.Add(rec.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, err := DecodeWorkerRegistered(b); err == nil && !bytes.Equal(got.Encode(), b) {
			t.Fatalf("worker registration mismatch: %x", b)
		}
	})
}

func TestWorkerRegisteredRoundTrip(t *testing.T) {
	rec := WorkerRecord{Info: WorkerInfo{ChainID: "c", Endpoint: "e", BlockHeight: 7}, Platform: "tdx", Measurement: []byte{3}, ExpiresAt: 10}
	m := &WorkerRegistered{Record: rec, Report: AttestationReport{Platform: PlatformTDX, Quote: []byte{1, 2, 3}}}
	got, err := DecodeWorkerRegistered(m.Encode())
	if err != nil || !bytes.Equal(got.Encode(), m.Encode()) || got.Record.Info != rec.Info || string(got.Report.Quote) != "\x01\x02\x03" {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for name, b := range map[string][]byte{
		"bare record (the old payload)": rec.Encode(),
		"trailing byte":                 append(m.Encode(), 0),
		"truncated":                     m.Encode()[:len(m.Encode())-1],
		"quote over MaxQuoteBytes":      (&WorkerRegistered{Record: rec, Report: AttestationReport{Platform: "tdx", Quote: make([]byte, MaxQuoteBytes+1)}}).Encode(),
	} {
		if _, err := DecodeWorkerRegistered(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzDecodeReceipt: receipts and their bodies (served by workers, read by
// clients) decode strictly: whatever decodes re-encodes to the same bytes;
// an unknown status is refused.
func FuzzDecodeReceipt(f *testing.F) {
	k := crypto.MustKeyPairFromURI("//K").Public()
	f.Add((&Receipt{Contract: k, From: k, Nonce: 7, Height: 12, Sealed: []byte{1, 2, 3}}).Encode())
	f.Add((&ReceiptBody{Status: ReceiptFailed, GasUsed: 1234, Output: []byte("insufficient balance")}).Encode())
	f.Add((&ReceiptBody{Status: ReceiptRejected}).Encode())
	f.Add([]byte{3, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := DecodeReceipt(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("receipt mismatch %x", b)
		}
		if v, err := DecodeReceiptBody(b); err == nil {
			if !bytes.Equal(v.Encode(), b) {
				t.Fatalf("receipt body mismatch %x", b)
			}
			if v.Status > ReceiptRejected {
				t.Fatalf("status %d decoded", v.Status)
			}
		}
	})
}

// FuzzDecodeComputation: the computation module's payloads and records
// decode strictly: whatever decodes re-encodes to the same bytes.
func FuzzDecodeComputation(f *testing.F) {
	k := crypto.MustKeyPairFromURI("//K").Public()
	f.Add((&Challenge{Seed: [32]byte{1}, Nodes: []crypto.PublicKey{k, k}}).Encode())
	f.Add((&Heartbeat{Height: 7, Seed: [32]byte{2}}).Encode())
	f.Add((&Assignability{Node: k, Reason: "unresponsive in era 3"}).Encode())
	f.Add((&Activity{Challenged: 3, Answered: 2, Egress: 9}).Encode())
	f.Add((&Executed{Contract: k, Height: 44}).Encode())
	f.Add((&EraReport{Era: 2, Height: 1200, Budget: 5, Nodes: []NodeVerdict{{Node: k, Count: 3, Unresponsive: true, Slashed: 4}}}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := DecodeChallenge(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("challenge mismatch %x", b)
		}
		if v, err := DecodeHeartbeat(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("heartbeat mismatch %x", b)
		}
		if v, err := DecodeAssignability(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("assignability mismatch %x", b)
		}
		if v, err := DecodeActivity(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("activity mismatch %x", b)
		}
		if v, err := DecodeExecuted(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("executed mismatch %x", b)
		}
		if v, err := DecodeEraReport(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("era report mismatch %x", b)
		}
	})
}

// FuzzDecodeState: state updates (pushed by anyone, as a contract's
// message) and checkpoint records decode strictly: what decodes
// re-encodes to the same bytes, locations ascending.
func FuzzDecodeState(f *testing.F) {
	f.Add((&StateUpdate{Height: 9, Seq: 4, PrevRoot: EmptyStateRoot, NewRoot: [32]byte{1},
		Changes: []StateChange{{Location: [32]byte{1}, Value: make([]byte, 24)}, {Location: [32]byte{2}}}}).Encode())
	f.Add((&Checkpoint{Height: 9, Seq: 4, Root: [32]byte{3}, Entries: 2, Bytes: 90}).Encode())
	f.Add((&EntryPage{Entries: []StateChange{{Location: [32]byte{1}, Value: make([]byte, 9)}}, More: true}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := DecodeEntryPage(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("entry page mismatch %x", b)
		}
		if v, err := DecodeStateUpdate(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("state update mismatch %x", b)
		}
		if v, err := DecodeCheckpoint(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("checkpoint mismatch %x", b)
		}
	})
}

// FuzzDecodeMigration: the migration module's records (RuntimeMigration,
// RuntimeMigrated, state the chain decodes on every block of a migration)
// and workers' ReplicaReady (pushed by any worker) decode strictly: what
// decodes re-encodes to the same bytes and passes the decoders' checks.
func FuzzDecodeMigration(f *testing.F) {
	k := crypto.MustKeyPairFromURI("//K").Public()
	target, old := bytes.Repeat([]byte{9}, 32), bytes.Repeat([]byte{1}, 32)
	f.Add((&RuntimeMigration{Target: target, From: []HexBytes{old, {2}}, Start: 7}).Encode())
	f.Add((&RuntimeMigration{Target: target, Start: 0}).Encode())
	f.Add((&RuntimeMigrated{Target: target, Retired: []HexBytes{old}, Start: 7, Height: 40}).Encode())
	f.Add((&RuntimeMigrated{Target: target, Start: 50, Height: 60, Cancelled: true, PrevCompleted: 40}).Encode())
	f.Add((&ReplicaReady{Contract: k, Height: 12}).Encode())
	// Invalid: a cancelled one that retired something or whose previous
	// completion follows its start, a cancellation flag other than 1, empty target, negative start, completion before start,
	// an empty measurement in the list, height 0, trailing bytes.
	f.Add((&RuntimeMigration{Start: 3}).Encode())
	f.Add((&RuntimeMigration{Target: target, Start: -1}).Encode())
	f.Add((&RuntimeMigrated{Target: target, Start: 9, Height: 8}).Encode())
	f.Add((&RuntimeMigration{Target: target, From: []HexBytes{{}}, Start: 1}).Encode())
	f.Add((&RuntimeMigrated{Target: target, Retired: []HexBytes{old}, Start: 7, Height: 40, Cancelled: true}).Encode())
	f.Add((&RuntimeMigrated{Target: target, Start: 7, Height: 40, Cancelled: true, PrevCompleted: 8}).Encode())
	f.Add(append((&RuntimeMigrated{Target: target, Start: 7, Height: 40}).Encode(), 0, 0))
	f.Add((&ReplicaReady{Contract: k}).Encode())
	f.Add(append((&ReplicaReady{Contract: k, Height: 1}).Encode(), 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := DecodeRuntimeMigration(b); err == nil {
			if !bytes.Equal(v.Encode(), b) {
				t.Fatalf("runtime migration mismatch %x", b)
			}
			if len(v.Target) == 0 || v.Start < 0 {
				t.Fatalf("runtime migration %+v decoded", v)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("runtime migration: %v", err)
		}
		if v, err := DecodeRuntimeMigrated(b); err == nil {
			if !bytes.Equal(v.Encode(), b) {
				t.Fatalf("runtime migrated mismatch %x", b)
			}
			if len(v.Target) == 0 || v.Start < 0 || v.Height < v.Start || (v.Cancelled && (len(v.Retired) != 0 || v.PrevCompleted < 0 || v.PrevCompleted > v.Start)) {
				t.Fatalf("runtime migrated %+v decoded", v)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("runtime migrated: %v", err)
		}
		if v, err := DecodeReplicaReady(b); err == nil {
			if !bytes.Equal(v.Encode(), b) || v.Height < 1 {
				t.Fatalf("replica ready mismatch %x (%+v)", b, v)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("replica ready: %v", err)
		}
	})
}

// The migration records' decoders refuse what their fuzz seeds mark
// invalid, with ErrMalformed, and take the valid ones.
func TestDecodeMigrationRefusals(t *testing.T) {
	k := crypto.MustKeyPairFromURI("//K").Public()
	target := bytes.Repeat([]byte{9}, 32)
	ok := []func() error{
		func() error {
			_, err := DecodeRuntimeMigration((&RuntimeMigration{Target: target, From: []HexBytes{{1}}, Start: 7}).Encode())
			return err
		},
		func() error {
			_, err := DecodeRuntimeMigrated((&RuntimeMigrated{Target: target, Retired: []HexBytes{{1}}, Start: 7, Height: 7}).Encode())
			return err
		},
		func() error {
			_, err := DecodeReplicaReady((&ReplicaReady{Contract: k, Height: 1}).Encode())
			return err
		},
	}
	for i, f := range ok {
		if err := f(); err != nil {
			t.Fatalf("valid record %d: %v", i, err)
		}
	}
	bad := map[string]func() error{
		"empty target": func() error { _, err := DecodeRuntimeMigration((&RuntimeMigration{Start: 3}).Encode()); return err },
		"negative start": func() error {
			_, err := DecodeRuntimeMigration((&RuntimeMigration{Target: target, Start: -1}).Encode())
			return err
		},
		"empty old measurement": func() error {
			_, err := DecodeRuntimeMigration((&RuntimeMigration{Target: target, From: []HexBytes{{}}, Start: 1}).Encode())
			return err
		},
		"oversized target": func() error {
			_, err := DecodeRuntimeMigration((&RuntimeMigration{Target: make([]byte, MaxMeasurementBytes+1), Start: 1}).Encode())
			return err
		},
		"completed before start": func() error {
			_, err := DecodeRuntimeMigrated((&RuntimeMigrated{Target: target, Start: 9, Height: 8}).Encode())
			return err
		},
		"migrated trailing byte": func() error {
			_, err := DecodeRuntimeMigrated(append((&RuntimeMigrated{Target: target, Start: 1, Height: 2}).Encode(), 0))
			return err
		},
		"ready height 0": func() error { _, err := DecodeReplicaReady((&ReplicaReady{Contract: k}).Encode()); return err },
		"ready short":    func() error { _, err := DecodeReplicaReady(k[:20]); return err },
		"ready trailing": func() error {
			_, err := DecodeReplicaReady(append((&ReplicaReady{Contract: k, Height: 1}).Encode(), 0))
			return err
		},
		"ready negative": func() error {
			_, err := DecodeReplicaReady((&ReplicaReady{Contract: k, Height: -4}).Encode())
			return err
		},
	}
	for name, f := range bad {
		if err := f(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// A renewal's record keeps ActiveSince (encoded only when it differs from
// RegisteredAt, so a first registration's bytes are as before); one that
// claims to be active since its own registration or later is malformed.
func TestWorkerRecordActiveSince(t *testing.T) {
	first := WorkerRecord{Info: WorkerInfo{ChainID: "c", Endpoint: "e"}, Platform: "sim", Measurement: []byte{1}, RegisteredAt: 50, ExpiresAt: 100, ActiveSince: 50}
	renewed := first
	renewed.RegisteredAt, renewed.ActiveSince = 70, 50
	for _, w := range []WorkerRecord{first, renewed} {
		got, err := DecodeWorkerRecord(w.Encode())
		if err != nil || got.ActiveSince != w.ActiveSince || got.RegisteredAt != w.RegisteredAt {
			t.Fatalf("%+v decoded as %+v, %v", w, got, err)
		}
	}
	if len(renewed.Encode()) != len(first.Encode())+1 {
		t.Fatalf("a first registration's record is not encoded as before")
	}
	base := first.Encode()
	for _, since := range []uint64{50, 51, 1 << 40} {
		if _, err := DecodeWorkerRecord(binary.AppendUvarint(bytes.Clone(base), since)); !errors.Is(err, ErrMalformed) {
			t.Errorf("active since %d of a registration at 50: %v, want ErrMalformed", since, err)
		}
	}
}

// FuzzDecodeKeyEraRetirement: a key era's retirement record (read by
// clients from a proved query) decodes strictly: what decodes re-encodes
// to the same bytes, with a height of at least 1 and a known reason.
func FuzzDecodeKeyEraRetirement(f *testing.F) {
	f.Add(KeyEraRetirement{Height: 1266, Reason: KeyEraRetiredUnused}.Encode())
	f.Add(KeyEraRetirement{Height: 1, Reason: KeyEraRetiredDeadline}.Encode())
	// Invalid: height 0, an unknown reason, trailing bytes, short.
	f.Add(KeyEraRetirement{Height: 0}.Encode())
	f.Add(KeyEraRetirement{Height: 5, Reason: 2}.Encode())
	f.Add(append(KeyEraRetirement{Height: 5}.Encode(), 0))
	f.Add([]byte{0x0a})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeKeyEraRetirement(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%x: %v is not ErrMalformed", b, err)
			}
			return
		}
		if !bytes.Equal(v.Encode(), b) || v.Height < 1 || v.Reason > KeyEraRetiredDeadline {
			t.Fatalf("%x decodes to %+v", b, v)
		}
	})
}
