package client

import (
	"context"
	"fmt"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// Staking (docs/economy.md "Nodes and their stake"): proved reads of
// ledgers, node stakes and the total issuance, the staker listing, and
// the stake_* calls. Amounts are PHA base units.

// StakeLedger returns the staking ledger of who, proved, with the height
// it reflects (an account that never staked has an empty ledger).
func (c *Client) StakeLedger(ctx context.Context, who crypto.PublicKey) (*api.StakeLedger, int64, error) {
	pv, err := c.Prove(ctx, api.QueryStakeLedger, who[:])
	if err != nil {
		return nil, 0, err
	}
	if pv.Value == nil {
		return &api.StakeLedger{}, pv.Height, nil
	}
	l, err := api.DecodeStakeLedger(pv.Value)
	if err != nil {
		return nil, pv.Height, fmt.Errorf("stake ledger of %s at height %d: %w", who, pv.Height, err)
	}
	return l, pv.Height, nil
}

// NodeStake returns the stake aggregate of a node (worker or gatekeeper
// identity), proved, with the height it reflects.
func (c *Client) NodeStake(ctx context.Context, node crypto.PublicKey) (api.NodeStake, int64, error) {
	pv, err := c.Prove(ctx, api.QueryStakeNode, node[:])
	if err != nil {
		return api.NodeStake{}, 0, err
	}
	if pv.Value == nil {
		return api.NodeStake{}, pv.Height, nil
	}
	n, err := api.DecodeNodeStake(pv.Value)
	if err != nil {
		return api.NodeStake{}, pv.Height, fmt.Errorf("stake of node %s at height %d: %w", node.Hex(), pv.Height, err)
	}
	return *n, pv.Height, nil
}

// NodeStakers lists the accounts allocating to node and their allocations,
// as the node says (a listing, unproved: prove one with StakeLedger).
func (c *Client) NodeStakers(ctx context.Context, node crypto.PublicKey) (api.StakerList, error) {
	v, _, err := c.query(ctx, api.QueryStakeStakers, node[:], 0)
	if err != nil {
		return nil, err
	}
	return api.DecodeStakerList(v)
}

// Issuance returns the total issuance (every balance and stake in
// existence), proved, with the height it reflects.
func (c *Client) Issuance(ctx context.Context) (uint64, int64, error) {
	pv, err := c.Prove(ctx, api.QueryIssuance, nil)
	if err != nil {
		return 0, 0, err
	}
	if pv.Value == nil {
		return 0, pv.Height, fmt.Errorf("%w: the chain records no issuance (a node older than the economy?)", api.ErrNotFound)
	}
	v, err := api.DecodeIssuance(pv.Value)
	return v, pv.Height, err
}

// Bond moves amount of the signer's balance to its bonded stake.
func (s *Signer) Bond(ctx context.Context, amount uint64) (*TxResult, error) {
	return s.Submit(ctx, &api.StakeBond{Amount: amount})
}

// Allocate backs node with amount of the signer's bonded stake.
func (s *Signer) Allocate(ctx context.Context, node crypto.PublicKey, amount uint64) (*TxResult, error) {
	return s.Submit(ctx, &api.StakeAllocate{Node: node, Amount: amount})
}

// Unbond starts unbonding amount of the signer's allocation to node (zero
// node: of its unallocated bonded stake); Withdraw returns it to the
// balance after the chain's unbonding_period.
func (s *Signer) Unbond(ctx context.Context, node crypto.PublicKey, amount uint64) (*TxResult, error) {
	return s.Submit(ctx, &api.StakeUnbond{Node: node, Amount: amount})
}

// Withdraw moves the signer's unlocked stake to its balance.
func (s *Signer) Withdraw(ctx context.Context) (*TxResult, error) {
	return s.Submit(ctx, &api.StakeWithdraw{})
}

// Nominate replaces the signer's nominations of gatekeeper candidates
// (at most api.MaxNominations; none clears them).
func (s *Signer) Nominate(ctx context.Context, targets []crypto.PublicKey) (*TxResult, error) {
	return s.Submit(ctx, &api.StakeNominate{Targets: targets})
}
