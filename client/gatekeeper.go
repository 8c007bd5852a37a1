package client

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// Proved reads of the gatekeeper election, and the candidacy call.

// Election returns the record of the gatekeeper set elected for era (at
// the end of era-1), proved, with the height it reflects; nil (proved
// absent) when no set was elected for it.
func (c *Client) Election(ctx context.Context, era uint64) (*api.ElectionRecord, int64, error) {
	pv, err := c.Prove(ctx, api.QueryGatekeeperEra, binary.BigEndian.AppendUint64(nil, era))
	if err != nil {
		return nil, 0, err
	}
	if pv.Value == nil {
		return nil, pv.Height, nil
	}
	rec, err := api.DecodeElectionRecord(pv.Value)
	if err != nil {
		return nil, pv.Height, fmt.Errorf("election of era %d at height %d: %w", era, pv.Height, err)
	}
	if rec.Era != era {
		return nil, pv.Height, fmt.Errorf("%w: the record of era %d names era %d", api.ErrBadProof, era, rec.Era)
	}
	return rec, pv.Height, nil
}

// Exposure returns what backs member in era's election, proved; nil when
// member was not elected for era.
func (c *Client) Exposure(ctx context.Context, era uint64, member crypto.PublicKey) (*api.Exposure, error) {
	pv, err := c.Prove(ctx, api.QueryGatekeeperExposure, append(binary.BigEndian.AppendUint64(nil, era), member[:]...))
	if err != nil {
		return nil, err
	}
	if pv.Value == nil {
		return nil, nil
	}
	x, err := api.DecodeExposure(pv.Value)
	if err != nil {
		return nil, fmt.Errorf("exposure of %s in era %d: %w", member, era, err)
	}
	if x.Era != era || x.Member != member {
		return nil, fmt.Errorf("%w: the exposure of %s in era %d names %s in era %d", api.ErrBadProof, member, era, x.Member, x.Era)
	}
	return x, nil
}

// GatekeeperCandidates returns the declared gatekeeper candidates
// (ascending), proved.
func (c *Client) GatekeeperCandidates(ctx context.Context) ([]crypto.PublicKey, error) {
	pv, err := c.Prove(ctx, api.QueryGatekeeperCandidates, nil)
	if err != nil {
		return nil, err
	}
	if pv.Value == nil {
		return []crypto.PublicKey{}, nil
	}
	keys, err := api.DecodeKeys(pv.Value)
	if err != nil {
		return nil, fmt.Errorf("gatekeeper candidates at height %d: %w", pv.Height, err)
	}
	return keys, nil
}

// Candidacy returns node's gatekeeper candidacy, proved; nil when node is
// not a candidate.
func (c *Client) Candidacy(ctx context.Context, node crypto.PublicKey) (*api.Candidacy, error) {
	pv, err := c.Prove(ctx, api.QueryGatekeeperCandidacy, node[:])
	if err != nil || pv.Value == nil {
		return nil, err
	}
	cd, err := api.DecodeCandidacy(pv.Value)
	if err != nil {
		return nil, fmt.Errorf("candidacy of %s: %w", node, err)
	}
	if cd.Node != node {
		return nil, fmt.Errorf("%w: the candidacy of %s names %s", api.ErrBadProof, node, cd.Node)
	}
	return cd, nil
}

// DeclareCandidacy submits gatekeeper_candidacy: the signer, node's
// operator, declares it a gatekeeper candidate (on) or withdraws it.
func (s *Signer) DeclareCandidacy(ctx context.Context, node crypto.PublicKey, on bool) (*TxResult, error) {
	return s.Submit(ctx, &api.GatekeeperCandidacy{Node: node, On: on})
}
