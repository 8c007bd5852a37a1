package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/spf13/cobra"

	"github.com/phalago/phala/client"
)

// Trust roots of the CLI. Every proved read is checked against headers
// the CLI verified itself (CometBFT's light-client verifier) from a root
// the user gives: --genesis FILE (the chain's genesis validators) or
// --trust-height/--trust-hash (a header learned out of band). The root
// given is remembered per chain id in the data directory:
//
//	<data-dir>/chains/<chain id>/genesis.json      a genesis to trust (phala devnet writes its own)
//	<data-dir>/chains/<chain id>/trust.json        a trusted header {"height":N,"hash":"HEX"}
//	<data-dir>/chains/<chain id>/trusted-<root>.pb the newest header verified from that root
//
// so later commands need no flag and resume from the newest verified
// header instead of the root. At most one of genesis.json and trust.json
// exists: giving a root replaces the other. Nothing is ever trusted
// because the node said so; with no root, commands that read state stop
// and say how to give one.

// trustFlags are the global flags that choose the trust root.
type trustFlags struct {
	dataDir     string
	genesis     string
	trustHeight int64
	trustHash   string
}

func (t *trustFlags) register(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVar(&t.dataDir, "data-dir", defaultDataDir(), "where phala remembers trust roots and verified headers, per chain id ($PHALA_HOME, default ~/.phala)")
	f.StringVar(&t.genesis, "genesis", "", "trust the validators of this genesis file (the chain's genesis.json); remembered for its chain")
	f.Int64Var(&t.trustHeight, "trust-height", 0, "trust the header of this height (with --trust-hash); remembered for the chain")
	f.StringVar(&t.trustHash, "trust-hash", "", "hash (hex) of the header at --trust-height, from a source you trust")
}

// defaultDataDir is $PHALA_HOME, else ~/.phala ("" if there is no home).
func defaultDataDir() string {
	if d := os.Getenv("PHALA_HOME"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".phala")
}

func (t *trustFlags) chainDir(chainID string) string {
	return filepath.Join(t.dataDir, "chains", client.ChainDir(chainID))
}

type trustFile struct {
	Height int64  `json:"height"`
	Hash   string `json:"hash"`
}

// options returns the client options for a node at addr: the root from
// the flags, else the one remembered for the node's chain id (the chain
// id the node reports only selects which root to load; the root then
// verifies everything). remember records a root given by flags, once it
// verified.
func (t *trustFlags) options(ctx context.Context, addr string) (opts client.Options, remember func(chainID string) error, err error) {
	remember = func(string) error { return nil }
	if t.dataDir != "" {
		opts.Store = client.FileStore{Dir: filepath.Join(t.dataDir, "chains")}
	}
	byHeight, byHash := t.trustHeight != 0, t.trustHash != ""
	switch {
	case t.genesis != "" && (byHeight || byHash):
		return opts, nil, errors.New("give either --genesis or --trust-height/--trust-hash, not both")
	case byHeight != byHash:
		return opts, nil, errors.New("--trust-height and --trust-hash go together: the height of a header and its hash, from a source you trust")
	case t.genesis != "":
		b, err := os.ReadFile(t.genesis)
		if err != nil {
			return opts, nil, fmt.Errorf("--genesis: %w", err)
		}
		doc, err := cmttypes.GenesisDocFromJSON(b)
		if err != nil {
			return opts, nil, fmt.Errorf("--genesis %s is not a genesis document: %w", t.genesis, err)
		}
		opts.Genesis = doc
		return opts, func(chainID string) error { return t.save(chainID, "genesis.json", b, &opts) }, nil
	case byHeight:
		if t.trustHeight < 1 {
			return opts, nil, fmt.Errorf("--trust-height %d: a block height is positive", t.trustHeight)
		}
		hash, err := client.ParseTrustHash(t.trustHash)
		if err != nil {
			return opts, nil, fmt.Errorf("--trust-hash: %w", err)
		}
		opts.Trust = &client.TrustHeader{Height: t.trustHeight, Hash: hash}
		b, _ := json.Marshal(trustFile{Height: t.trustHeight, Hash: hex.EncodeToString(hash)})
		return opts, func(chainID string) error { return t.save(chainID, "trust.json", b, &opts) }, nil
	}
	// No flag: the root remembered for the node's chain.
	chainID, err := nodeChainID(ctx, addr)
	if err != nil {
		return opts, nil, err
	}
	opts.ChainID = chainID
	if t.dataDir == "" {
		return opts, nil, t.noRoot(chainID, addr)
	}
	dir := t.chainDir(chainID)
	if b, err := os.ReadFile(filepath.Join(dir, "genesis.json")); err == nil {
		doc, err := cmttypes.GenesisDocFromJSON(b)
		if err != nil {
			return opts, nil, fmt.Errorf("%s: %w (delete it, or give --genesis)", filepath.Join(dir, "genesis.json"), err)
		}
		opts.Genesis = doc
		return opts, remember, nil
	}
	if b, err := os.ReadFile(filepath.Join(dir, "trust.json")); err == nil {
		var tf trustFile
		if err := json.Unmarshal(b, &tf); err != nil {
			return opts, nil, fmt.Errorf("%s: %w (delete it, or give --trust-height/--trust-hash)", filepath.Join(dir, "trust.json"), err)
		}
		hash, err := client.ParseTrustHash(tf.Hash)
		if err != nil || tf.Height < 1 {
			return opts, nil, fmt.Errorf("%s: not a trusted header (delete it, or give --trust-height/--trust-hash)", filepath.Join(dir, "trust.json"))
		}
		opts.Trust = &client.TrustHeader{Height: tf.Height, Hash: hash}
		return opts, remember, nil
	}
	return opts, nil, t.noRoot(chainID, addr)
}

func (t *trustFlags) noRoot(chainID, addr string) error {
	where := "(no --data-dir: nothing is remembered)"
	if t.dataDir != "" {
		where = "in " + t.chainDir(chainID)
	}
	if chainID == "phala-dev" { // phala-node dev's chain, home in the temporary directory by default
		where += fmt.Sprintf(" (a `phala-node dev` chain: --genesis %s)", filepath.Join(os.TempDir(), "phala-dev", "config", "genesis.json"))
	}
	return fmt.Errorf("no trust root for chain %q (node %s): phala checks every read against headers it verifies itself, starting from validators you trust. "+
		"Give --genesis FILE (the chain's genesis.json) or --trust-height N --trust-hash HEX (a block of the chain and its hash, from a source you trust); "+
		"it is remembered %s. A `phala devnet` records its genesis there itself", chainID, addr, where)
}

// save records a root (file name, content b, as options o) for chainID,
// replacing any other root and the headers verified from it.
func (t *trustFlags) save(chainID, name string, b []byte, o *client.Options) error {
	if t.dataDir == "" {
		return nil
	}
	dir := t.chainDir(chainID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if old, err := os.ReadFile(filepath.Join(dir, name)); err == nil && string(old) == string(b) {
		return nil
	}
	keep := ""
	if root, err := client.RootID(o); err == nil {
		keep = filepath.Base(client.FileStore{Dir: filepath.Join(t.dataDir, "chains")}.File(chainID, root))
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		n := e.Name()
		if (n == "genesis.json" || n == "trust.json" || strings.HasPrefix(n, "trusted-")) && n != name && n != keep {
			os.Remove(filepath.Join(dir, n))
		}
	}
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}

// recordGenesis records a genesis file as the trust root of its chain
// (phala devnet calls it with its own genesis).
func (t *trustFlags) recordGenesis(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc, err := cmttypes.GenesisDocFromJSON(b)
	if err != nil {
		return err
	}
	return t.save(doc.ChainID, "genesis.json", b, &client.Options{Genesis: doc})
}

// nodeChainID asks the node which chain it runs (unverified: it only
// selects the remembered root).
func nodeChainID(ctx context.Context, addr string) (string, error) {
	rpc, err := rpchttp.New(addr, "/websocket")
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", addr, err)
	}
	st, err := rpc.Status(ctx)
	if err != nil {
		return "", fmt.Errorf("node at %s does not answer (is it running?): %w", addr, err)
	}
	return st.NodeInfo.Network, nil
}
