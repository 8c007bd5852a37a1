// Package store owns the chain's persistent state: a versioned IAVL Merkle
// tree (one version per block, ICS23 proofs) and, beside it, the per-block
// data that is committed to by the app hash but not kept in the tree (the
// block's queue messages and app hash).
//
// The app hash of height h is api.AppHash(state root of h, messages root of
// h). Block data is written before the tree version, so a crash between the
// two leaves the tree one version behind; CometBFT then replays that block
// and rewrites identical data.
package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	cmtcrypto "github.com/cometbft/cometbft/proto/tendermint/crypto"
	"github.com/cosmos/iavl"
	iavldb "github.com/cosmos/iavl/db"
	ics23 "github.com/cosmos/ics23/go"

	"github.com/phalago/phala/api"
)

// ErrNoVersion is returned for a height the store does not hold.
var ErrNoVersion = errors.New("no state at this height")

const treeCacheSize = 100_000

// Store is the chain's state. Writes go to the working version, which Commit
// saves. Reads of committed versions (Snapshot) are safe concurrently with
// writes to the working version.
type Store struct {
	// mu orders changes to the working tree (Set, Delete, SaveVersion)
	// against readers of committed versions (snapshots): IAVL's copy-on-write
	// clones detach children of persisted nodes that snapshots share, so the
	// two may not run at once.
	mu   *sync.RWMutex
	db   *iavldb.GoLevelDB
	tree *iavl.MutableTree
	meta iavldb.DB // block data: messages and app hash per height
}

// Open opens (or creates) the state under dir and loads its latest version.
func Open(dir string) (*Store, error) {
	db, err := iavldb.NewGoLevelDB("state", dir)
	if err != nil {
		return nil, fmt.Errorf("open state db in %s: %w", filepath.Join(dir, "state.db"), err)
	}
	s := &Store{
		mu:   new(sync.RWMutex),
		db:   db,
		tree: iavl.NewMutableTree(iavldb.NewPrefixDB(db, []byte("t/")), treeCacheSize, false, iavl.NewNopLogger()),
		meta: iavldb.NewPrefixDB(db, []byte("b/")),
	}
	if _, err := s.tree.Load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("load state tree: %w", err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Height returns the latest committed version (0 before the first block).
func (s *Store) Height() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tree.Version()
}

// Get reads from the working version.
func (s *Store) Get(key []byte) []byte {
	v, err := s.tree.Get(key)
	if err != nil {
		panic(fmt.Sprintf("state read %q: %v", key, err))
	}
	return v
}

// Set writes to the working version.
func (s *Store) Set(key, value []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.tree.Set(key, value); err != nil {
		panic(fmt.Sprintf("state write %q: %v", key, err))
	}
}

// Delete removes from the working version.
func (s *Store) Delete(key []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, err := s.tree.Remove(key); err != nil {
		panic(fmt.Sprintf("state delete %q: %v", key, err))
	}
}

// WorkingRoot returns the state root of the working version.
func (s *Store) WorkingRoot() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tree.WorkingHash()
}

// Commit saves the working version as height with the block's messages and
// returns the state root. The app hash must be api.AppHash(root, messages root).
func (s *Store) Commit(height int64, blockTime time.Time, msgs *api.BlockMessages, appHash []byte) error {
	if want := s.tree.Version() + 1; height != want && s.tree.Version() != 0 {
		return fmt.Errorf("commit height %d, store expects %d", height, want)
	}
	if s.tree.Version() == 0 && height != 1 {
		s.tree.SetInitialVersion(uint64(height))
	}
	b := s.meta.NewBatch()
	defer b.Close()
	if err := b.Set(heightKey('m', height), msgs.Encode()); err != nil {
		return err
	}
	if err := b.Set(heightKey('h', height), appHash); err != nil {
		return err
	}
	if err := b.Set(heightKey('t', height), binary.BigEndian.AppendUint64(nil, uint64(blockTime.UnixNano()))); err != nil {
		return err
	}
	if err := b.WriteSync(); err != nil {
		return fmt.Errorf("write block data of height %d: %w", height, err)
	}
	s.mu.Lock()
	_, v, err := s.tree.SaveVersion()
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("save state version %d: %w", height, err)
	} else if v != height {
		return fmt.Errorf("saved state version %d, expected %d", v, height)
	}
	return nil
}

// AppHash returns the app hash committed at height (nil at height 0).
func (s *Store) AppHash(height int64) ([]byte, error) {
	if height == 0 {
		return nil, nil
	}
	v, err := s.meta.Get(heightKey('h', height))
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, fmt.Errorf("%w: app hash of %d", ErrNoVersion, height)
	}
	return v, nil
}

// BlockTime returns the header time of the block committed at height.
func (s *Store) BlockTime(height int64) (time.Time, error) {
	v, err := s.meta.Get(heightKey('t', height))
	if err != nil {
		return time.Time{}, err
	}
	if len(v) != 8 {
		return time.Time{}, fmt.Errorf("%w: block time of %d", ErrNoVersion, height)
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC(), nil
}

// Messages returns the queue messages of height, with the state root.
func (s *Store) Messages(height int64) (*api.BlockMessages, error) {
	v, err := s.meta.Get(heightKey('m', height))
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, fmt.Errorf("%w: messages of %d", ErrNoVersion, height)
	}
	return api.DecodeBlockMessages(v)
}

// Snapshot is a read-only committed version.
type Snapshot struct {
	mu           *sync.RWMutex
	tree         *iavl.ImmutableTree
	messagesRoot []byte
}

// Snapshot opens committed version height (0 = latest).
func (s *Store) Snapshot(height int64) (*Snapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if height == 0 {
		height = s.tree.Version()
	}
	if height == 0 {
		return &Snapshot{mu: s.mu, tree: iavl.NewImmutableTree(iavldb.NewMemDB(), 0, true, iavl.NewNopLogger())}, nil
	}
	t, err := s.tree.GetImmutable(height)
	if err != nil {
		return nil, fmt.Errorf("%w: %d: %v", ErrNoVersion, height, err)
	}
	msgs, err := s.Messages(height)
	if err != nil {
		return nil, err
	}
	return &Snapshot{mu: s.mu, tree: t, messagesRoot: api.MessagesRoot(msgs.Messages)}, nil
}

// Height is the snapshot's version.
func (sn *Snapshot) Height() int64 { return sn.tree.Version() }

// Get reads a key.
func (sn *Snapshot) Get(key []byte) []byte {
	sn.mu.RLock()
	defer sn.mu.RUnlock()
	v, err := sn.tree.Get(key)
	if err != nil {
		panic(fmt.Sprintf("state read %q at %d: %v", key, sn.tree.Version(), err))
	}
	return v
}

// Set panics: snapshots are read-only (it lets a Snapshot parent a Cache).
func (sn *Snapshot) Set(key, value []byte) { panic("write to a read-only snapshot") }

// Delete panics: snapshots are read-only.
func (sn *Snapshot) Delete(key []byte) { panic("delete in a read-only snapshot") }

// Prefix calls f for every key under prefix, in key order, until f returns
// false or limit entries were visited. f runs without the store's lock
// (it may read the store again: a read lock taken twice by one goroutine
// deadlocks once a writer, such as the next block's FinalizeBlock, waits
// between the two), so entries are read in chunks of prefixChunk under
// the lock, copied.
func (sn *Snapshot) Prefix(prefix []byte, limit int, f func(key, value []byte) bool) error {
	start, end := prefix, prefixEnd(prefix)
	for n := 0; n < limit; {
		keys, values, more, err := sn.read(start, end, min(prefixChunk, limit-n))
		if err != nil {
			return err
		}
		for i := range keys {
			if !f(keys[i], values[i]) {
				return nil
			}
			n++
		}
		if !more {
			return nil
		}
		start = append(keys[len(keys)-1], 0) // the next key after the last
	}
	return nil
}

// prefixChunk is how many entries Prefix reads per hold of the lock.
const prefixChunk = 256

// read returns up to max entries in [start, end), copied, and whether
// more follow.
func (sn *Snapshot) read(start, end []byte, max int) (keys, values [][]byte, more bool, err error) {
	sn.mu.RLock()
	defer sn.mu.RUnlock()
	it, err := sn.tree.Iterator(start, end, true)
	if err != nil {
		return nil, nil, false, err
	}
	defer it.Close()
	for ; it.Valid(); it.Next() {
		if len(keys) == max {
			return keys, values, true, it.Error()
		}
		keys = append(keys, bytes.Clone(it.Key()))
		values = append(values, bytes.Clone(it.Value()))
	}
	return keys, values, false, it.Error()
}

// Prove returns the value of key and the proof ops that verify it (or its
// absence) with api.VerifyStateProof against the next header's app hash.
func (sn *Snapshot) Prove(key []byte) ([]byte, *cmtcrypto.ProofOps, error) {
	value := sn.Get(key)
	var (
		proof *ics23.CommitmentProof
		err   error
	)
	sn.mu.RLock()
	defer sn.mu.RUnlock()
	if value != nil {
		proof, err = sn.tree.GetMembershipProof(key)
	} else {
		proof, err = sn.tree.GetNonMembershipProof(key)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("prove %q at %d: %w", key, sn.tree.Version(), err)
	}
	ops, err := api.ProofOps(key, proof, sn.messagesRoot)
	return value, ops, err
}

func heightKey(prefix byte, h int64) []byte {
	k := make([]byte, 9)
	k[0] = prefix
	binary.BigEndian.PutUint64(k[1:], uint64(h))
	return k
}

// Rollback deletes every committed version above height and the block data
// (messages, app hash, block time) of those heights, so the store reopens at
// height. It is for `phala-node rollback`: call it on a store no node is
// using, then reopen. height must be a committed version (at least 1); a
// store already at or below height is left unchanged. Errors: ErrNoVersion
// when height is not held.
func (s *Store) Rollback(height int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	latest := s.tree.Version()
	if height >= latest {
		return nil
	}
	if height < 1 || !s.tree.VersionExists(height) {
		return fmt.Errorf("%w: roll back to %d (store holds up to %d)", ErrNoVersion, height, latest)
	}
	if err := s.tree.LoadVersionForOverwriting(height); err != nil {
		return fmt.Errorf("roll state tree back to %d: %w", height, err)
	}
	b := s.meta.NewBatch()
	defer b.Close()
	for h := height + 1; h <= latest; h++ {
		for _, p := range []byte{'m', 'h', 't'} {
			if err := b.Delete(heightKey(p, h)); err != nil {
				return err
			}
		}
	}
	if err := b.WriteSync(); err != nil {
		return fmt.Errorf("delete block data above %d: %w", height, err)
	}
	return nil
}
