package app

import "github.com/phalago/phala/internal/chain/store"

// SetGenesisHook makes every InitChain in this test binary call f on the
// state of block 1 after the modules' genesis (nil: no hook). Tests that
// start nodes with it must not run in parallel with others.
func SetGenesisHook(f func(kv store.KV)) { genesisHook = f }
