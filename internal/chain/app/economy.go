package app

import (
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/accounts"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/computation"
	"github.com/phalago/phala/internal/chain/contracts"
	"github.com/phalago/phala/internal/chain/eras"
	"github.com/phalago/phala/internal/chain/staking"
	"github.com/phalago/phala/internal/chain/store"
)

// economy is the computation module's view of stake and issuance (the
// staking and accounts modules) and the gatekeeper election's source of
// voters (staking).
type economy struct{}

func (economy) NodeStake(kv store.KV, node crypto.PublicKey) uint64 {
	return staking.NodeStake(kv, node)
}

func (economy) ForEachNominator(kv store.KV, fn func(who crypto.PublicKey, bonded uint64, targets []crypto.PublicKey) bool) {
	staking.ForEachNominator(kv, fn)
}

func (economy) SlashExposure(ctx *block.Context, voter crypto.PublicKey, amount uint64, reason string) uint64 {
	return staking.SlashExposure(ctx, voter, amount, reason)
}

func (economy) Slash(ctx *block.Context, node crypto.PublicKey, ppm uint64, reason string) uint64 {
	return staking.Slash(ctx, node, ppm, reason)
}

func (economy) Reward(ctx *block.Context, node crypto.PublicKey, amount uint64) uint64 {
	return staking.Reward(ctx, node, amount)
}

func (economy) Issuance(kv store.KV) uint64 { return accounts.Issuance(kv) }

func (economy) Responsive(ctx *block.Context, node crypto.PublicKey) bool {
	return computation.Responsive(ctx.KV, node, ctx.Height, eras.Of(ctx))
}

func (economy) Down(ctx *block.Context, node crypto.PublicKey) bool {
	return computation.Down(ctx.KV, node, ctx.Height, ctx.Params)
}

// deposits is the accounts module's hook into the contracts module
// (accounts.Credits): a transfer to a contract's escrow account is a
// deposit to the contract (docs/interop.md, "Chain → contract").
type deposits struct{}

func (deposits) Credited(ctx *block.Context, from, to crypto.PublicKey, amount uint64) error {
	return contracts.Credited(ctx, from, to, amount)
}
