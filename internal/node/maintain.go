package node

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	dbm "github.com/cometbft/cometbft-db"
	cmtcmd "github.com/cometbft/cometbft/cmd/cometbft/commands"
	cfg "github.com/cometbft/cometbft/config"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	cmtstate "github.com/cometbft/cometbft/state"
	cmtstore "github.com/cometbft/cometbft/store"

	"github.com/phalago/phala/internal/chain/store"
)

// The maintenance commands of CometBFT (show-node-id, show-validator,
// unsafe-reset-all, rollback) for a phala-node home. CometBFT's cobra
// commands read a package-global configuration that only its own root
// command sets (from $CMTHOME before --home, creating a missing home), and
// its reset logs failures instead of returning them; so these functions call
// the CometBFT code those commands are made of (p2p.LoadNodeKey,
// privval.FilePV, commands.RollbackState) on the home's own config.toml, and
// add what CometBFT cannot know: the application's state in AppDir.

// ErrNodeRunning is returned when a home's databases are locked by a running
// node.
var ErrNodeRunning = errors.New("the node is running (its database is locked): stop it first")

// AppDir is where the ABCI application keeps its state (an IAVL store):
// home/data/app.
func AppDir(c *cfg.Config) string { return filepath.Join(c.RootDir, "data", "app") }

// NodeID returns the node's p2p id (hex of the node key's address), as
// `cometbft show-node-id` prints it. Errors: no configuration (run init) or
// an unreadable config/node_key.json.
func NodeID(home string) (p2p.ID, error) {
	c, err := LoadCometConfig(home)
	if err != nil {
		return "", err
	}
	nk, err := p2p.LoadNodeKey(c.NodeKeyFile())
	if err != nil {
		return "", fmt.Errorf("load node key: %w", err)
	}
	return nk.ID(), nil
}

// ValidatorPubKeyJSON returns the validator's public key in CometBFT's JSON
// ({"type":"tendermint/PubKeyEd25519","value":"<base64>"}), as
// `cometbft show-validator` prints it. Errors: no configuration or no
// config/priv_validator_key.json.
func ValidatorPubKeyJSON(home string) ([]byte, error) {
	c, err := LoadCometConfig(home)
	if err != nil {
		return nil, err
	}
	keyFile := c.PrivValidatorKeyFile()
	if _, err := os.Stat(keyFile); err != nil {
		return nil, fmt.Errorf("no validator key: %w", err)
	}
	// LoadFilePVEmptyState reads only the key file (the state file may be
	// absent after a reset); it panics on a malformed file.
	var pv *privval.FilePV
	if err := catchPanic(func() { pv = privval.LoadFilePVEmptyState(keyFile, c.PrivValidatorStateFile()) }); err != nil {
		return nil, fmt.Errorf("load validator key %s: %w", keyFile, err)
	}
	pub, err := pv.GetPubKey()
	if err != nil {
		return nil, err
	}
	return cmtjson.Marshal(pub)
}

// ResetAll does what `cometbft unsafe-reset-all` does to a home, and removes
// the application's state too (else the app would be ahead of the emptied
// block store and the node would refuse to start): it deletes the data
// directory (blocks, CometBFT state, WAL, evidence, tx index, the app's
// state in data/app), the address book unless keepAddrBook, and resets
// data/priv_validator_state.json to height 0. It keeps config/ (config.toml,
// genesis.json, node_key.json, priv_validator_key.json). The node then
// starts again from genesis. Errors: no configuration, ErrNodeRunning, or a
// removal that failed.
func ResetAll(home string, keepAddrBook bool, log *slog.Logger) error {
	c, err := LoadCometConfig(home)
	if err != nil {
		return err
	}
	if err := checkNotRunning(c); err != nil {
		return err
	}
	if !keepAddrBook {
		if err := os.Remove(c.P2P.AddrBookFile()); err == nil {
			log.Info("removed the address book", "file", c.P2P.AddrBookFile())
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove address book: %w", err)
		}
	}
	for _, dir := range []string{AppDir(c), c.DBDir()} {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove %s: %w", dir, err)
		}
		log.Info("removed", "dir", dir)
	}
	if err := os.MkdirAll(c.DBDir(), 0o700); err != nil {
		return err
	}
	keyFile, stateFile := c.PrivValidatorKeyFile(), c.PrivValidatorStateFile()
	if err := os.MkdirAll(filepath.Dir(stateFile), 0o700); err != nil {
		return err
	}
	if _, err := os.Stat(keyFile); err != nil {
		return fmt.Errorf("data removed, but no validator key to reset the signing state of: %w", err)
	}
	var pv *privval.FilePV
	if err := catchPanic(func() { pv = privval.LoadFilePVEmptyState(keyFile, stateFile) }); err != nil {
		return fmt.Errorf("load validator key %s: %w", keyFile, err)
	}
	if err := catchPanic(pv.Reset); err != nil {
		return fmt.Errorf("reset validator state %s: %w", stateFile, err)
	}
	log.Info("reset the validator's signing state to genesis", "file", stateFile)
	return nil
}

// Rollback does what `cometbft rollback` does (commands.RollbackState: the
// CometBFT state of height n is replaced by that of n-1; with hard, block n
// is deleted too, else it is re-executed at the next start) and rolls the
// application's versioned state back to the same height first, so that the
// app is never left ahead of CometBFT. It returns the height and app hash
// the node is rolled back to. Errors: no configuration, no blocks yet,
// ErrNodeRunning, or CometBFT's refusal (e.g. at height 1, which has no
// previous state; use unsafe-reset-all).
func Rollback(home string, hard bool) (int64, []byte, error) {
	c, err := LoadCometConfig(home)
	if err != nil {
		return 0, nil, err
	}
	target, err := rollbackTarget(c)
	if err != nil {
		return 0, nil, err
	}
	if target < 1 {
		return 0, nil, fmt.Errorf("the chain is at height %d: there is no earlier state to roll back to (unsafe-reset-all starts again from genesis)", target+1)
	}
	if err := rollbackApp(c, target); err != nil {
		return 0, nil, err
	}
	height, hash, err := cmtcmd.RollbackState(c, hard)
	if err != nil {
		return 0, nil, fmt.Errorf("roll back CometBFT state (the application is at height %d): %w", target, err)
	}
	if height != target {
		return 0, nil, fmt.Errorf("CometBFT rolled back to %d, the application to %d", height, target)
	}
	return height, hash, nil
}

// rollbackTarget is the height CometBFT's state.Rollback will leave: the
// state's height when the block store is one ahead (the last block's state
// was never saved), else one below it.
func rollbackTarget(c *cfg.Config) (int64, error) {
	for _, name := range []string{"blockstore.db", "state.db"} {
		if _, err := os.Stat(filepath.Join(c.DBDir(), name)); err != nil {
			return 0, fmt.Errorf("no %s in %s: the node has produced no blocks to roll back", name, c.DBDir())
		}
	}
	bdb, err := dbm.NewDB("blockstore", dbm.BackendType(c.DBBackend), c.DBDir())
	if err != nil {
		return 0, lockedOr(err, "open block store")
	}
	defer bdb.Close()
	sdb, err := dbm.NewDB("state", dbm.BackendType(c.DBBackend), c.DBDir())
	if err != nil {
		return 0, lockedOr(err, "open state store")
	}
	defer sdb.Close()
	st, err := cmtstate.NewStore(sdb, cmtstate.StoreOptions{}).Load()
	if err != nil {
		return 0, fmt.Errorf("load CometBFT state: %w", err)
	}
	if st.IsEmpty() {
		return 0, errors.New("no CometBFT state found: the node has produced no blocks to roll back")
	}
	if v, p := st.Version.Consensus.App, st.ConsensusParams.Version.App; v != p {
		return 0, fmt.Errorf("this chain's blocks carry app version %d but its consensus parameters say %d (a genesis written before phala-node set it): CometBFT's rollback would leave a state the node cannot start from, so nothing was changed", v, p)
	}
	if cmtstore.NewBlockStore(bdb).Height() == st.LastBlockHeight+1 {
		return st.LastBlockHeight, nil
	}
	return st.LastBlockHeight - 1, nil
}

func rollbackApp(c *cfg.Config, height int64) error {
	dir := AppDir(c)
	if _, err := os.Stat(filepath.Join(dir, "state.db")); err != nil {
		return nil // no application state: CometBFT replays every block at start
	}
	st, err := store.Open(dir)
	if err != nil {
		return lockedOr(err, "open application state")
	}
	defer st.Close()
	if err := st.Rollback(height); err != nil {
		return fmt.Errorf("roll back application state from %d to %d: %w", st.Height(), height, err)
	}
	return nil
}

// checkNotRunning opens and closes the application's state (LevelDB takes a
// file lock), to refuse a reset under a running node.
func checkNotRunning(c *cfg.Config) error {
	if _, err := os.Stat(filepath.Join(AppDir(c), "state.db")); err != nil {
		return nil
	}
	st, err := store.Open(AppDir(c))
	if err != nil {
		return lockedOr(err, "open application state")
	}
	return st.Close()
}

func lockedOr(err error, what string) error {
	// goleveldb's flock fails with EAGAIN (EWOULDBLOCK) while another
	// process holds the database.
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("%s: %w", what, ErrNodeRunning)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// catchPanic runs f and returns its panic as an error: privval's file
// functions panic on unreadable or malformed files.
func catchPanic(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	f()
	return nil
}
