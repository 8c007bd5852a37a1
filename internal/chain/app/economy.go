package app

import (
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/accounts"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/staking"
	"github.com/phalago/phala/internal/chain/store"
)

// economy is the computation module's view of stake and issuance: the
// staking and accounts modules.
type economy struct{}

func (economy) Slash(ctx *block.Context, node crypto.PublicKey, ppm uint64, reason string) uint64 {
	return staking.Slash(ctx, node, ppm, reason)
}

func (economy) Reward(ctx *block.Context, node crypto.PublicKey, amount uint64) uint64 {
	return staking.Reward(ctx, node, amount)
}

func (economy) Issuance(kv store.KV) uint64 { return accounts.Issuance(kv) }
