package client

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// ErrNoSuchSubnet: no subnet of that id is on chain (proved absent).
var ErrNoSuchSubnet = fmt.Errorf("no such subnet")

// Subnet reads subnet id's record, proved against a verified header, and
// the height it was proved at. Errors: ErrNoSuchSubnet (proved absent),
// the proof's or the node's.
func (c *Client) Subnet(ctx context.Context, id [32]byte) (*api.SubnetRecord, int64, error) {
	pv, err := c.Prove(ctx, api.QuerySubnet, id[:])
	if err != nil {
		return nil, 0, err
	}
	if pv.Value == nil {
		return nil, pv.Height, fmt.Errorf("%w: %x on chain %s (proved absent at height %d): subnet ids are what `phala subnet create` prints", ErrNoSuchSubnet, id, c.chainID, pv.Height)
	}
	s, err := api.DecodeSubnetRecord(pv.Value)
	if err != nil {
		return nil, pv.Height, fmt.Errorf("subnet %x: %w", id, err)
	}
	return s, pv.Height, nil
}

// CreateSubnet creates a subnet owned by the signer and returns its id
// (api.SubnetID of the signer and its subnet count before the call).
// A name api.CheckSubnetName refuses is refused before anything is sent.
func (s *Signer) CreateSubnet(ctx context.Context, name string) ([32]byte, *TxResult, error) {
	if err := api.CheckSubnetName(name); err != nil {
		return [32]byte{}, nil, err
	}
	v, err := s.c.proveValue(ctx, api.QuerySubnetSeq, s.key.Public().Bytes())
	if err != nil {
		return [32]byte{}, nil, err
	}
	seq := uint64(0)
	if len(v) == 8 {
		seq = binary.BigEndian.Uint64(v)
	}
	res, err := s.Submit(ctx, &api.SubnetCreate{Name: name})
	if err != nil {
		return [32]byte{}, res, err
	}
	return api.SubnetID(s.key.Public(), seq), res, nil
}

// SubnetMember adds worker to subnet (remove: removes it); the signer
// must own the subnet (api.ErrNotSubnetOwner).
func (s *Signer) SubnetMember(ctx context.Context, subnet [32]byte, worker crypto.PublicKey, remove bool) (*TxResult, error) {
	return s.Submit(ctx, &api.SubnetMember{Remove: remove, Subnet: subnet, Worker: worker})
}
