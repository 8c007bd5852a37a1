package app

import (
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/store"
)

// economy is the computation module's view of stake and issuance.
type economy struct{}

func (economy) Slash(ctx *block.Context, node crypto.PublicKey, ppm uint64, reason string) uint64 {
	return 0
}

func (economy) Reward(ctx *block.Context, node crypto.PublicKey, amount uint64) uint64 { return 0 }

func (economy) Issuance(kv store.KV) uint64 { return 0 }
