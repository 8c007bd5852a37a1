package client

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// Rewards returns an account's reward log (api.RewardLog: lifetime total
// and latest rewards), proved, with the height it reflects; an account
// never rewarded has an empty log.
func (c *Client) Rewards(ctx context.Context, who crypto.PublicKey) (*api.RewardLog, int64, error) {
	pv, err := c.ProveRecent(ctx, api.QueryRewards, who[:])
	if err != nil {
		return nil, 0, err
	}
	if pv.Value == nil {
		return &api.RewardLog{}, pv.Height, nil
	}
	l, err := api.DecodeRewardLog(pv.Value)
	if err != nil {
		return nil, pv.Height, fmt.Errorf("reward log of %s at height %d: %w", who.Address(), pv.Height, err)
	}
	return l, pv.Height, nil
}

// EraReport returns what the chain decided at the end of era (verdicts by
// the 1/4 rule, slashes, rewards), proved; nil while the era has not
// ended.
func (c *Client) EraReport(ctx context.Context, era uint64) (*api.EraReport, int64, error) {
	pv, err := c.ProveRecent(ctx, api.QueryEraReport, binary.BigEndian.AppendUint64(nil, era))
	if err != nil {
		return nil, 0, err
	}
	if pv.Value == nil {
		return nil, pv.Height, nil
	}
	r, err := api.DecodeEraReport(pv.Value)
	if err != nil {
		return nil, pv.Height, fmt.Errorf("report of era %d at height %d: %w", era, pv.Height, err)
	}
	return r, pv.Height, nil
}

// Activity returns a node's activity counters in an era (proved; zero
// when none were recorded).
func (c *Client) Activity(ctx context.Context, era uint64, node crypto.PublicKey) (api.Activity, int64, error) {
	pv, err := c.ProveRecent(ctx, api.QueryActivity, append(binary.BigEndian.AppendUint64(nil, era), node[:]...))
	if err != nil {
		return api.Activity{}, 0, err
	}
	if pv.Value == nil {
		return api.Activity{}, pv.Height, nil
	}
	a, err := api.DecodeActivity(pv.Value)
	if err != nil {
		return api.Activity{}, pv.Height, err
	}
	return *a, pv.Height, nil
}

// Checkpoint returns a contract's latest on-chain state checkpoint
// (api.Checkpoint), proved; nil before its first state update.
func (c *Client) Checkpoint(ctx context.Context, contract crypto.PublicKey) (*api.Checkpoint, int64, error) {
	pv, err := c.ProveRecent(ctx, api.QueryCheckpoint, contract[:])
	if err != nil {
		return nil, 0, err
	}
	if pv.Value == nil {
		return nil, pv.Height, nil
	}
	cp, err := api.DecodeCheckpoint(pv.Value)
	if err != nil {
		return nil, pv.Height, fmt.Errorf("checkpoint of %s at height %d: %w", contract.Short(), pv.Height, err)
	}
	return cp, pv.Height, nil
}

// ContractEntries reads all of a contract's encrypted entries on chain,
// page by page (api.QueryContractEntries; unproved: check them against
// the checkpoint's root, e.g. with contracts.RootOfEntries). The pages are
// read at the node's latest height each; a state update between two pages
// makes the set inconsistent, which the root check reveals.
func (c *Client) ContractEntries(ctx context.Context, contract crypto.PublicKey) ([]api.StateChange, error) {
	var out []api.StateChange
	data := contract[:]
	for {
		v, _, err := c.query(ctx, api.QueryContractEntries, data, 0)
		if err != nil {
			return nil, err
		}
		p, err := api.DecodeEntryPage(v)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Entries...)
		if !p.More || len(p.Entries) == 0 {
			return out, nil
		}
		last := p.Entries[len(p.Entries)-1].Location
		data = append(contract[:len(contract):len(contract)], last[:]...)
	}
}
