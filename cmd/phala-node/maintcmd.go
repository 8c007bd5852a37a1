package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/internal/node"
)

// CometBFT's maintenance commands, with its names, aliases and flags, on a
// phala-node home (see internal/node/maintain.go).

func showNodeIDCmd() *cobra.Command {
	var home string
	c := &cobra.Command{
		Use:     "show-node-id",
		Aliases: []string{"show_node_id"},
		Short:   "Print this node's p2p id (from config/node_key.json)",
		Long: `show-node-id prints the node's p2p id, the hex address of its node key
(config/node_key.json), as cometbft show-node-id does. Peers name this node
as ID@host:port in persistent_peers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := node.NodeID(home)
			if err != nil {
				return err
			}
			fmt.Println(id)
			return nil
		},
	}
	c.Flags().StringVar(&home, "home", defaultHome(), "node home directory")
	return c
}

func showValidatorCmd() *cobra.Command {
	var home string
	c := &cobra.Command{
		Use:     "show-validator",
		Aliases: []string{"show_validator"},
		Short:   "Print this node's validator public key as JSON",
		Long: `show-validator prints the public key of the validator key
(config/priv_validator_key.json) in CometBFT's JSON, as cometbft
show-validator does: {"type":"tendermint/PubKeyEd25519","value":"<base64>"}.
That is the key a genesis lists for this validator.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := node.ValidatorPubKeyJSON(home)
			if err != nil {
				return err
			}
			fmt.Println(string(b))
			return nil
		},
	}
	c.Flags().StringVar(&home, "home", defaultHome(), "node home directory")
	return c
}

func resetAllCmd() *cobra.Command {
	var (
		home     string
		keepBook bool
	)
	c := &cobra.Command{
		Use:     "unsafe-reset-all",
		Aliases: []string{"unsafe_reset_all"},
		Short:   "(unsafe) Delete all chain data and the application's state; keep the keys and genesis",
		Long: `unsafe-reset-all erases this node's copy of the chain, as cometbft
unsafe-reset-all does, and the application's state with it:

  deleted: data/ (blocks, CometBFT state, consensus WAL, evidence, tx index,
           the application's state in data/app) and config/addrbook.json
           (unless --keep-addr-book)
  reset:   data/priv_validator_state.json, to height 0
  kept:    config/config.toml, config/genesis.json, config/node_key.json,
           config/priv_validator_key.json

The next start begins again from the genesis, at height 1. Unsafe: a
validator of a live network that re-signs heights it already signed can be
slashed for double signing; use it on development and test chains. Stop the
node first (it refuses while the node holds its databases).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logger(cmd)
			if err != nil {
				return err
			}
			if err := node.ResetAll(home, keepBook, log); err != nil {
				return err
			}
			fmt.Printf("reset %s: chain data and application state removed, keys and genesis kept\n", home)
			return nil
		},
	}
	c.Flags().StringVar(&home, "home", defaultHome(), "node home directory")
	c.Flags().BoolVar(&keepBook, "keep-addr-book", false, "keep the address book intact")
	return c
}

func rollbackCmd() *cobra.Command {
	var (
		home string
		hard bool
	)
	c := &cobra.Command{
		Use:   "rollback",
		Short: "Roll CometBFT's state and the application's state back by one height",
		Long: `rollback recovers from a bad state transition at the last height n (for
example an app hash the other validators disagree with after a fix to the
application): it replaces CometBFT's state of height n with that of n-1, as
cometbft rollback does, and deletes the application's state of height n, so
both are at n-1.

  deleted: the application's state version n and its block data; with
           --hard, block n from the block store too
  kept:    blocks (without --hard; block n is executed again at the next
           start), keys, genesis, configuration

It can be repeated to go back further. Stop the node first. With --hard,
a validator that signed block n cannot sign a different block n (its
priv_validator_state keeps it from double signing), so the node must fetch
block n again from its peers: a single-validator chain stops at n. A chain at
height 1 has no earlier state: use unsafe-reset-all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			height, hash, err := node.Rollback(home, hard)
			if err != nil {
				return fmt.Errorf("rollback: %w", err)
			}
			if hard {
				fmt.Printf("Rolled back both state and block to height %d and hash %X\n", height, hash)
			} else {
				fmt.Printf("Rolled back state to height %d and hash %X\n", height, hash)
			}
			return nil
		},
	}
	c.Flags().StringVar(&home, "home", defaultHome(), "node home directory")
	c.Flags().BoolVar(&hard, "hard", false, "remove the last block as well as the state")
	return c
}
