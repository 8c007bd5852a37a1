package client

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/phalago/phala/api"
)

// Proved reads of governance, and the council's calls. Every read is
// checked with its proof against a signed header.

// Council returns the governance council and the height it was proved at
// (an empty council: the chain has no governance).
func (c *Client) Council(ctx context.Context) (*api.Council, int64, error) {
	pv, err := c.Prove(ctx, api.QueryCouncil, nil)
	if err != nil {
		return nil, 0, err
	}
	if pv.Value == nil {
		return &api.Council{}, pv.Height, nil
	}
	co, err := api.DecodeCouncil(pv.Value)
	if err != nil {
		return nil, pv.Height, fmt.Errorf("council at height %d: %w", pv.Height, err)
	}
	return co, pv.Height, nil
}

// Motion returns motion id, proved, with the height it reflects. A motion
// that does not exist is an error wrapping api.ErrUnknownMotion (proved
// absent).
func (c *Client) Motion(ctx context.Context, id uint64) (*api.Motion, int64, error) {
	pv, err := c.Prove(ctx, api.QueryMotion, binary.BigEndian.AppendUint64(nil, id))
	if err != nil {
		return nil, 0, err
	}
	if pv.Value == nil {
		return nil, pv.Height, fmt.Errorf("%w: no motion %d (proved absent at height %d)", api.ErrUnknownMotion, id, pv.Height)
	}
	m, err := api.DecodeMotion(pv.Value)
	if err != nil {
		return nil, pv.Height, fmt.Errorf("motion %d at height %d: %w", id, pv.Height, err)
	}
	if m.ID != id {
		return nil, pv.Height, fmt.Errorf("%w: the record of motion %d names motion %d", api.ErrBadProof, id, m.ID)
	}
	return m, pv.Height, nil
}

// NextMotion returns the id the next motion will get (the number of
// motions ever proposed), proved.
func (c *Client) NextMotion(ctx context.Context) (uint64, error) {
	pv, err := c.Prove(ctx, api.QueryNextMotion, nil)
	if err != nil {
		return 0, err
	}
	switch len(pv.Value) {
	case 0:
		return 0, nil
	case 8:
		return binary.BigEndian.Uint64(pv.Value), nil
	}
	return 0, fmt.Errorf("%w: next motion id of %d bytes", api.ErrMalformed, len(pv.Value))
}

// Motions returns the latest motions, newest first, at most limit, each
// proved.
func (c *Client) Motions(ctx context.Context, limit int) ([]*api.Motion, error) {
	next, err := c.NextMotion(ctx)
	if err != nil {
		return nil, err
	}
	var out []*api.Motion
	for id := next; id > 0 && len(out) < limit; id-- {
		m, _, err := c.Motion(ctx, id-1)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// MinRuntimeVersion returns the minimum pRuntime version governance set (0:
// none), proved.
func (c *Client) MinRuntimeVersion(ctx context.Context) (uint32, error) {
	pv, err := c.Prove(ctx, api.QueryMinRuntimeVersion, nil)
	if err != nil || pv.Value == nil {
		return 0, err
	}
	return api.DecodeRuntimeVersion(pv.Value)
}

// ValidatorRecord returns the validator set as the chain last told
// CometBFT (governance's record), proved.
func (c *Client) ValidatorRecord(ctx context.Context) (api.ValidatorSet, error) {
	pv, err := c.Prove(ctx, api.QueryValidators, nil)
	if err != nil || pv.Value == nil {
		return nil, err
	}
	return api.DecodeValidatorSet(pv.Value)
}

// Propose submits a motion of the signer (a council member) and returns
// its id, read from the transaction's event and checked against the proved
// motion (proposer and height). With a threshold of 1 the motion is
// already enacted when Propose returns.
func (s *Signer) Propose(ctx context.Context, a api.Action) (uint64, *TxResult, error) {
	res, err := s.Submit(ctx, &api.GovPropose{Action: a})
	if err != nil {
		return 0, res, err
	}
	tx, err := s.c.rpc.Tx(ctx, res.Hash[:], false)
	if err != nil {
		return 0, res, fmt.Errorf("read the proposal's events: %w", err)
	}
	for _, ev := range tx.TxResult.Events {
		if ev.Type != "gov_proposed" {
			continue
		}
		for _, at := range ev.Attributes {
			if at.Key != "motion" {
				continue
			}
			id, err := strconv.ParseUint(at.Value, 10, 64)
			if err != nil {
				return 0, res, fmt.Errorf("%w: motion id %q in the proposal's event", api.ErrMalformed, at.Value)
			}
			m, _, err := s.c.Motion(ctx, id)
			if err != nil {
				return 0, res, err
			}
			if m.Proposer != s.key.Public() || m.ProposedAt != res.Height {
				return 0, res, fmt.Errorf("%w: motion %d was not proposed by this transaction", api.ErrBadProof, id)
			}
			return id, res, nil
		}
	}
	return 0, res, fmt.Errorf("%w: the proposal's transaction has no gov_proposed event", api.ErrMalformed)
}

// Vote submits the signer's vote on motion id.
func (s *Signer) Vote(ctx context.Context, id uint64, aye bool) (*TxResult, error) {
	return s.Submit(ctx, &api.GovVote{Motion: id, Aye: aye})
}

// AttestationSettings returns the registry's attestation settings (the
// measurement allowlist governance changes), proved.
func (c *Client) AttestationSettings(ctx context.Context) (*api.AttestationSettings, error) {
	pv, err := c.Prove(ctx, api.QueryAttestation, nil)
	if err != nil {
		return nil, err
	}
	if pv.Value == nil {
		return nil, fmt.Errorf("%w: no attestation settings at height %d", api.ErrNotFound, pv.Height)
	}
	return api.DecodeAttestationSettings(pv.Value)
}
