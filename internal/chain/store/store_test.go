package store

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

// commitBlock commits the working version as height with msgs, the way the
// application does, and returns the app hash of that height.
func commitBlock(t *testing.T, s *Store, height int64, msgs []api.Message) []byte {
	t.Helper()
	root := s.WorkingRoot()
	appHash := api.AppHash(root, api.MessagesRoot(msgs))
	bm := &api.BlockMessages{Height: height, StateRoot: root, Messages: msgs}
	if err := s.Commit(height, time.Unix(int64(height), 0), bm, appHash); err != nil {
		t.Fatalf("Commit(%d): %v", height, err)
	}
	if got := s.Height(); got != height {
		t.Fatalf("Height after Commit(%d) = %d", height, got)
	}
	return appHash
}

func msg(module, topic string, seq uint64, payload string) api.Message {
	return api.Message{Origin: api.ModuleOrigin(module), Topic: topic, Seq: seq, Payload: []byte(payload)}
}

// history is the state written by buildHistory: the value of each key at
// each height (absent keys missing) and each height's app hash and messages.
type history struct {
	values   map[int64]map[string]string
	appHash  map[int64][]byte
	messages map[int64][]api.Message
}

// buildHistory commits heights 1..3 with sets, overwrites and a delete.
func buildHistory(t *testing.T, s *Store) *history {
	t.Helper()
	h := &history{values: map[int64]map[string]string{}, appHash: map[int64][]byte{}, messages: map[int64][]api.Message{}}
	cur := map[string]string{}
	blocks := []struct {
		sets map[string]string
		dels []string
		msgs []api.Message
	}{
		{sets: map[string]string{"a": "a1", "b": "b1", "c": "c1"}, msgs: []api.Message{msg("test", "t/one", 0, "x")}},
		{sets: map[string]string{"a": "a2", "d": "d2"}, dels: []string{"b"}},
		{sets: map[string]string{"c": "c3", "e": "e3"}, msgs: []api.Message{msg("test", "t/one", 1, "y"), msg("other", "t/two", 0, "")}},
	}
	for i, b := range blocks {
		height := int64(i + 1)
		for k, v := range b.sets {
			s.Set([]byte(k), []byte(v))
			cur[k] = v
		}
		for _, k := range b.dels {
			s.Delete([]byte(k))
			delete(cur, k)
		}
		h.appHash[height] = commitBlock(t, s, height, b.msgs)
		h.messages[height] = b.msgs
		snap := make(map[string]string, len(cur))
		for k, v := range cur {
			snap[k] = v
		}
		h.values[height] = snap
	}
	return h
}

var historyKeys = []string{"a", "b", "c", "d", "e", "never"}

func checkSnapshot(t *testing.T, s *Store, h *history, height int64) {
	t.Helper()
	sn, err := s.Snapshot(height)
	if err != nil {
		t.Fatalf("Snapshot(%d): %v", height, err)
	}
	want := height
	if height == 0 {
		want = s.Height()
	}
	if sn.Height() != want {
		t.Fatalf("Snapshot(%d).Height() = %d, want %d", height, sn.Height(), want)
	}
	for _, k := range historyKeys {
		got := sn.Get([]byte(k))
		v, ok := h.values[want][k]
		switch {
		case !ok && got != nil:
			t.Errorf("height %d: Get(%q) = %q, want absent", want, k, got)
		case ok && string(got) != v:
			t.Errorf("height %d: Get(%q) = %q, want %q", want, k, got, v)
		}
	}
}

func checkBlockData(t *testing.T, s *Store, h *history) {
	t.Helper()
	for height := int64(1); height <= 3; height++ {
		hash, err := s.AppHash(height)
		if err != nil {
			t.Fatalf("AppHash(%d): %v", height, err)
		}
		if !bytes.Equal(hash, h.appHash[height]) {
			t.Errorf("AppHash(%d) = %X, want %X", height, hash, h.appHash[height])
		}
		bm, err := s.Messages(height)
		if err != nil {
			t.Fatalf("Messages(%d): %v", height, err)
		}
		if bm.Height != height {
			t.Errorf("Messages(%d).Height = %d", height, bm.Height)
		}
		want := &api.BlockMessages{Height: height, StateRoot: bm.StateRoot, Messages: h.messages[height]}
		if !bytes.Equal(bm.Encode(), want.Encode()) {
			t.Errorf("Messages(%d) = %+v, want messages %+v", height, bm.Messages, h.messages[height])
		}
		// The stored state root and messages hash to the stored app hash.
		if err := bm.Verify(hash); err != nil {
			t.Errorf("Messages(%d).Verify(AppHash(%d)): %v", height, height, err)
		}
	}
	if hash, err := s.AppHash(0); err != nil || hash != nil {
		t.Errorf("AppHash(0) = %X, %v; want nil, nil", hash, err)
	}
}

func TestStoreCommitReopen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if s.Height() != 0 {
		t.Fatalf("fresh store Height = %d", s.Height())
	}
	h := buildHistory(t, s)

	// Heights differ in content, so their app hashes must too.
	if bytes.Equal(h.appHash[1], h.appHash[2]) || bytes.Equal(h.appHash[2], h.appHash[3]) {
		t.Fatal("distinct states produced equal app hashes")
	}
	checkBlockData(t, s, h)
	for _, height := range []int64{0, 1, 2, 3} {
		checkSnapshot(t, s, h, height)
	}
	rootBefore := s.WorkingRoot()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir)
	defer s.Close()
	if got := s.Height(); got != 3 {
		t.Fatalf("reopened Height = %d, want 3", got)
	}
	if got := s.WorkingRoot(); !bytes.Equal(got, rootBefore) {
		t.Fatalf("reopened WorkingRoot = %X, want %X", got, rootBefore)
	}
	checkBlockData(t, s, h)
	for _, height := range []int64{0, 1, 2, 3} {
		checkSnapshot(t, s, h, height)
	}
	// The working version continues from the reopened state.
	if got := s.Get([]byte("e")); string(got) != "e3" {
		t.Fatalf("reopened working Get(e) = %q", got)
	}
	s.Set([]byte("f"), []byte("f4"))
	commitBlock(t, s, 4, nil)
	h.values[4] = map[string]string{"a": "a2", "c": "c3", "d": "d2", "e": "e3", "f": "f4"}
	checkSnapshot(t, s, h, 4)
	checkSnapshot(t, s, h, 1)
}

func TestStoreSnapshotIsolatedFromWorkingVersion(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	s.Set([]byte("k"), []byte("v1"))
	commitBlock(t, s, 1, nil)
	sn, err := s.Snapshot(1)
	if err != nil {
		t.Fatal(err)
	}
	s.Set([]byte("k"), []byte("v2"))
	s.Set([]byte("new"), []byte("x"))
	if got := sn.Get([]byte("k")); string(got) != "v1" {
		t.Fatalf("snapshot sees working write: Get(k) = %q", got)
	}
	if got := sn.Get([]byte("new")); got != nil {
		t.Fatalf("snapshot sees working write: Get(new) = %q", got)
	}
	commitBlock(t, s, 2, nil)
	if got := sn.Get([]byte("k")); string(got) != "v1" {
		t.Fatalf("snapshot of 1 changed after Commit(2): Get(k) = %q", got)
	}
}

func TestStoreSnapshotMissingHeight(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	s.Set([]byte("k"), []byte("v"))
	commitBlock(t, s, 1, nil)
	s.Set([]byte("k"), []byte("w"))
	commitBlock(t, s, 2, nil)

	for _, height := range []int64{3, 100, -1} {
		t.Run(fmt.Sprint(height), func(t *testing.T) {
			sn, err := s.Snapshot(height)
			if !errors.Is(err, ErrNoVersion) {
				t.Fatalf("Snapshot(%d) = %v, %v; want an error wrapping ErrNoVersion", height, sn, err)
			}
		})
	}
	for _, height := range []int64{3, 100} {
		if _, err := s.AppHash(height); !errors.Is(err, ErrNoVersion) {
			t.Errorf("AppHash(%d) error = %v, want ErrNoVersion", height, err)
		}
		if _, err := s.Messages(height); !errors.Is(err, ErrNoVersion) {
			t.Errorf("Messages(%d) error = %v, want ErrNoVersion", height, err)
		}
	}
}

func TestStoreEmptySnapshot(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	s.Set([]byte("working"), []byte("not committed"))
	sn, err := s.Snapshot(0)
	if err != nil {
		t.Fatalf("Snapshot(0) of an empty store: %v", err)
	}
	if sn.Height() != 0 {
		t.Fatalf("empty snapshot Height = %d", sn.Height())
	}
	if got := sn.Get([]byte("working")); got != nil {
		t.Fatalf("empty snapshot sees the working version: %q", got)
	}
}

func TestStoreCommitHeights(t *testing.T) {
	t.Run("first commit sets the initial height", func(t *testing.T) {
		dir := t.TempDir()
		s := openStore(t, dir)
		s.Set([]byte("k"), []byte("v"))
		commitBlock(t, s, 5, nil)
		s.Set([]byte("k"), []byte("w"))
		commitBlock(t, s, 6, nil)
		if _, err := s.Snapshot(4); !errors.Is(err, ErrNoVersion) {
			t.Fatalf("Snapshot(4) below the initial height: %v, want ErrNoVersion", err)
		}
		s.Close()
		s = openStore(t, dir)
		defer s.Close()
		if s.Height() != 6 {
			t.Fatalf("reopened Height = %d, want 6", s.Height())
		}
		sn, err := s.Snapshot(5)
		if err != nil {
			t.Fatal(err)
		}
		if got := sn.Get([]byte("k")); string(got) != "v" {
			t.Fatalf("Snapshot(5).Get(k) = %q", got)
		}
	})
	for _, height := range []int64{1, 2, 4, 10} {
		t.Run(fmt.Sprintf("commit %d after 2 is refused", height), func(t *testing.T) {
			s := openStore(t, t.TempDir())
			defer s.Close()
			commitBlock(t, s, 1, nil)
			commitBlock(t, s, 2, nil)
			s.Set([]byte("k"), []byte("v"))
			err := s.Commit(height, time.Unix(int64(height), 0), &api.BlockMessages{Height: height}, []byte("hash"))
			if err == nil {
				t.Fatalf("Commit(%d) at height 2 succeeded", height)
			}
			if s.Height() != 2 {
				t.Fatalf("Height after refused commit = %d", s.Height())
			}
		})
	}
}

func TestSnapshotIsReadOnly(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	commitBlock(t, s, 1, nil)
	sn, err := s.Snapshot(1)
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(){
		"Set":    func() { sn.Set([]byte("k"), []byte("v")) },
		"Delete": func() { sn.Delete([]byte("k")) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatalf("%s on a snapshot did not panic", name)
				}
			}()
			f()
		})
	}
}

func TestSnapshotProve(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	// Enough keys for a tree with inner nodes on both sides of the probes.
	for i := 0; i < 50; i++ {
		s.Set([]byte(fmt.Sprintf("k%02d", 2*i)), []byte(fmt.Sprintf("v%d", i)))
	}
	acct := crypto.MustKeyPairFromURI("//Alice").Public()
	s.Set(api.AccountKey(acct), (&api.Account{Balance: 7, Nonce: 1}).Encode())
	msgs1 := []api.Message{msg("test", "t", 0, "p")}
	hash1 := commitBlock(t, s, 1, msgs1)

	s.Set([]byte("k00"), []byte("changed"))
	s.Delete([]byte("k02"))
	hash2 := commitBlock(t, s, 2, nil)

	tests := []struct {
		name    string
		height  int64
		key     string
		value   []byte // the value claimed to the verifier (nil: absent)
		appHash []byte
		wantErr bool
	}{
		{name: "present key", height: 1, key: "k10", value: []byte("v5"), appHash: hash1},
		{name: "first key", height: 1, key: "k00", value: []byte("v0"), appHash: hash1},
		{name: "last key", height: 1, key: "k98", value: []byte("v49"), appHash: hash1},
		{name: "account key", height: 1, key: string(api.AccountKey(acct)), value: (&api.Account{Balance: 7, Nonce: 1}).Encode(), appHash: hash1},
		{name: "absent key between others", height: 1, key: "k11", value: nil, appHash: hash1},
		{name: "absent key before all", height: 1, key: "0", value: nil, appHash: hash1},
		{name: "absent key after all", height: 1, key: "zzz", value: nil, appHash: hash1},
		{name: "value changed at 2", height: 2, key: "k00", value: []byte("changed"), appHash: hash2},
		{name: "key deleted at 2 is absent", height: 2, key: "k02", value: nil, appHash: hash2},
		{name: "old version still proves old value", height: 1, key: "k02", value: []byte("v1"), appHash: hash1},

		{name: "wrong value", height: 1, key: "k10", value: []byte("v6"), appHash: hash1, wantErr: true},
		{name: "empty value for a present key", height: 1, key: "k10", value: []byte{}, appHash: hash1, wantErr: true},
		{name: "present key claimed absent", height: 1, key: "k10", value: nil, appHash: hash1, wantErr: true},
		{name: "absent key claimed present", height: 1, key: "k11", value: []byte("v5"), appHash: hash1, wantErr: true},
		{name: "old value against the new app hash", height: 1, key: "k00", value: []byte("v0"), appHash: hash2, wantErr: true},
		{name: "unchanged key against another height's app hash", height: 1, key: "k10", value: []byte("v5"), appHash: hash2, wantErr: true},
		{name: "app hash without the messages root", height: 1, key: "k10", value: []byte("v5"), appHash: api.AppHash(mustRoot(t, s, 1), api.MessagesRoot(nil)), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sn, err := s.Snapshot(tc.height)
			if err != nil {
				t.Fatal(err)
			}
			value, ops, err := sn.Prove([]byte(tc.key))
			if err != nil {
				t.Fatalf("Prove(%q): %v", tc.key, err)
			}
			if want := sn.Get([]byte(tc.key)); !bytes.Equal(value, want) || (value == nil) != (want == nil) {
				t.Fatalf("Prove returned value %q, Get gives %q", value, want)
			}
			if len(ops.Ops) != 2 || ops.Ops[0].Type != api.ProofOpIAVL || ops.Ops[1].Type != api.ProofOpAppHash {
				t.Fatalf("proof ops = %v", ops.Ops)
			}
			err = api.VerifyStateProof([]byte(tc.key), tc.value, ops, tc.appHash)
			if tc.wantErr {
				if !errors.Is(err, api.ErrBadProof) {
					t.Fatalf("VerifyStateProof = %v, want ErrBadProof", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("VerifyStateProof: %v", err)
			}
		})
	}

	t.Run("proof for another key", func(t *testing.T) {
		sn, _ := s.Snapshot(1)
		_, ops, err := sn.Prove([]byte("k10"))
		if err != nil {
			t.Fatal(err)
		}
		if err := api.VerifyStateProof([]byte("k12"), []byte("v6"), ops, hash1); !errors.Is(err, api.ErrBadProof) {
			t.Fatalf("VerifyStateProof with another key = %v, want ErrBadProof", err)
		}
	})
	t.Run("tampered messages root", func(t *testing.T) {
		sn, _ := s.Snapshot(1)
		_, ops, err := sn.Prove([]byte("k10"))
		if err != nil {
			t.Fatal(err)
		}
		ops.Ops[1].Data = api.MessagesRoot(nil)
		if err := api.VerifyStateProof([]byte("k10"), []byte("v5"), ops, hash1); !errors.Is(err, api.ErrBadProof) {
			t.Fatalf("VerifyStateProof with a replaced messages root = %v, want ErrBadProof", err)
		}
	})
}

// mustRoot returns the state root committed at height.
func mustRoot(t *testing.T, s *Store, height int64) []byte {
	t.Helper()
	bm, err := s.Messages(height)
	if err != nil {
		t.Fatal(err)
	}
	return bm.StateRoot
}

// TestStoreEmptyValue: a key set to an empty value (what Cache.Set stores
// for a nil value) stays present, distinct from a deleted key, across a
// commit and a reopen.
func TestStoreEmptyValue(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	c := NewCache(s)
	c.Set([]byte("a"), []byte("1"))
	c.Set([]byte("empty"), nil)
	c.Write()
	commitBlock(t, s, 1, nil)
	s.Close()
	s = openStore(t, dir)
	defer s.Close()
	sn, err := s.Snapshot(1)
	if err != nil {
		t.Fatal(err)
	}
	if v := sn.Get([]byte("empty")); v == nil || len(v) != 0 {
		t.Fatalf("Get of an empty value = %#v, want present and empty", v)
	}
	if v := sn.Get([]byte("missing")); v != nil {
		t.Fatalf("Get of a missing key = %#v, want nil", v)
	}
}

// Rollback drops the versions and block data above the target; the store
// reopens there, holds the target's state, and commits the next height again
// (with different contents, as a corrected re-execution would).
func TestStoreRollback(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	h := buildHistory(t, s)
	for _, bad := range []int64{0, -1} {
		if err := s.Rollback(bad); !errors.Is(err, ErrNoVersion) {
			t.Errorf("Rollback(%d) = %v, want ErrNoVersion", bad, err)
		}
	}
	if err := s.Rollback(3); err != nil || s.Height() != 3 {
		t.Fatalf("Rollback to the latest height: %v, height %d", err, s.Height())
	}
	if err := s.Rollback(1); err != nil {
		t.Fatalf("Rollback(1): %v", err)
	}
	s.Close()
	s = openStore(t, dir)
	defer s.Close()
	if s.Height() != 1 {
		t.Fatalf("height after rollback and reopen = %d, want 1", s.Height())
	}
	checkSnapshot(t, s, h, 1)
	for _, height := range []int64{2, 3} {
		if _, err := s.AppHash(height); !errors.Is(err, ErrNoVersion) {
			t.Errorf("AppHash(%d) after rollback: %v, want ErrNoVersion", height, err)
		}
		if _, err := s.Messages(height); !errors.Is(err, ErrNoVersion) {
			t.Errorf("Messages(%d) after rollback: %v, want ErrNoVersion", height, err)
		}
		if _, err := s.Snapshot(height); !errors.Is(err, ErrNoVersion) {
			t.Errorf("Snapshot(%d) after rollback: %v, want ErrNoVersion", height, err)
		}
	}
	s.Set([]byte("a"), []byte("other"))
	commitBlock(t, s, 2, nil)
	if sn, err := s.Snapshot(2); err != nil || string(sn.Get([]byte("a"))) != "other" || sn.Get([]byte("d")) != nil {
		t.Fatalf("height 2 re-committed after rollback: %v", err)
	}
}

// A Prefix callback that reads the snapshot again while a writer waits
// for the lock (the next block's FinalizeBlock writing while CheckTx walks
// a prefix and reads each entry's neighbours, as contracts.prune does)
// finishes: the callback runs without the read lock held. It deadlocked
// a devnet's node (a read lock taken twice, a writer waiting between).
func TestSnapshotPrefixCallbackReadsWhileAWriterWaits(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	for i := range 3 * 256 {
		s.Set([]byte(fmt.Sprintf("p/%05d", i)), []byte{byte(i)})
	}
	commitBlock(t, s, 1, nil)
	sn, err := s.Snapshot(1)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int)
	go func() {
		seen := 0
		var wrote chan struct{}
		sn.Prefix([]byte("p/"), 1<<30, func(k, v []byte) bool {
			if seen == 0 {
				// A writer arrives and waits for the store's lock
				// (TryRLock fails once a writer is pending or holds it).
				wrote = make(chan struct{})
				go func() { s.Set([]byte("w"), []byte("x")); close(wrote) }()
				for {
					select {
					case <-wrote:
					default:
						if sn.mu.TryRLock() {
							sn.mu.RUnlock()
							continue
						}
					}
					break
				}
			}
			if sn.Get(k) == nil { // the read that deadlocked
				t.Errorf("entry %s missing", k)
			}
			seen++
			return true
		})
		<-wrote
		done <- seen
	}()
	select {
	case n := <-done:
		if n != 3*256 {
			t.Fatalf("visited %d entries, want %d", n, 3*256)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("deadlock: Prefix's callback could not read while a writer waited")
	}
}
