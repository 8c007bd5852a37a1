// Package subnet owns subnets (issue 11, "Subnets and requirements";
// docs/chain.md): worker whitelists created and edited on chain by their
// owners. A subnet's record lives under "sn/" (api.SubnetKey), each
// owner's subnet count under "sq/" (api.SubnetSeqKey). Every change is
// announced to pRuntimes with the subnet's whole member list
// (api.TopicSubnetChanged) so that their gatekeepers assign contracts
// deployed to a subnet only to its members; the contracts module checks
// the same membership (Member) when it accepts a grant.
package subnet

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/module"
	"github.com/phalago/phala/internal/chain/mq"
	"github.com/phalago/phala/internal/chain/store"
)

// Module is the module's origin name in the queue.
const Module = "subnet"

// Get returns subnet id's record, or nil.
func Get(kv store.KV, id [32]byte) *api.SubnetRecord {
	v := kv.Get(api.SubnetKey(id))
	if v == nil {
		return nil
	}
	s, err := api.DecodeSubnetRecord(v)
	if err != nil {
		panic(fmt.Sprintf("corrupt subnet record %x: %v", id, err))
	}
	return s
}

// Member reports whether worker is a member of subnet id (false if there
// is no such subnet).
func Member(kv store.KV, id [32]byte, worker crypto.PublicKey) bool {
	s := Get(kv, id)
	return s != nil && s.Member(worker)
}

// Create creates a subnet owned by owner, with no member, whose id is
// api.SubnetID(owner, owner's subnet count); it returns the id. Errors:
// none beyond the call's decoding (names are checked there).
func Create(ctx *block.Context, owner crypto.PublicKey, c *api.SubnetCreate) ([32]byte, error) {
	seq := uint64(0)
	if v := ctx.KV.Get(api.SubnetSeqKey(owner)); len(v) == 8 {
		seq = binary.BigEndian.Uint64(v)
	}
	id := api.SubnetID(owner, seq)
	if ctx.KV.Get(api.SubnetKey(id)) != nil {
		return id, fmt.Errorf("%w: subnet %x exists", api.ErrInvalidCall, id)
	}
	ctx.KV.Set(api.SubnetSeqKey(owner), binary.BigEndian.AppendUint64(nil, seq+1))
	rec := &api.SubnetRecord{Owner: owner, Name: c.Name, Sequence: seq, CreatedAt: ctx.Height}
	ctx.KV.Set(api.SubnetKey(id), rec.Encode())
	ctx.Event("subnet_created", "subnet", hex.EncodeToString(id[:]), "owner", owner.Address(), "name", c.Name, "sequence", strconv.FormatUint(seq, 10))
	return id, announce(ctx, id, rec)
}

// Change adds or removes (c.Remove) a worker of a subnet. Errors:
// api.ErrNoSuchSubnet, api.ErrNotSubnetOwner (signer is not the owner),
// api.ErrSubnetFull (MaxSubnetMembers), api.ErrInvalidCall (invalid
// worker key, already a member, not a member). A worker need not be
// registered yet: the whitelist names identity keys.
func Change(ctx *block.Context, signer crypto.PublicKey, c *api.SubnetMember) error {
	rec := Get(ctx.KV, c.Subnet)
	switch {
	case rec == nil:
		return fmt.Errorf("%w: %x (subnet ids are what `phala subnet create` prints)", api.ErrNoSuchSubnet, c.Subnet)
	case rec.Owner != signer:
		return fmt.Errorf("%w: subnet %x is owned by %s, the call is signed by %s", api.ErrNotSubnetOwner, c.Subnet, rec.Owner.Address(), signer.Address())
	case !c.Worker.Valid():
		return fmt.Errorf("%w: worker %s is not a valid identity key", api.ErrInvalidCall, c.Worker.Hex())
	}
	var ok bool
	if c.Remove {
		if rec.Members, ok = api.RemoveMember(rec.Members, c.Worker); !ok {
			return fmt.Errorf("%w: worker %s is not a member of subnet %x", api.ErrInvalidCall, c.Worker.Hex(), c.Subnet)
		}
	} else {
		if len(rec.Members) >= api.MaxSubnetMembers && !rec.Member(c.Worker) {
			return fmt.Errorf("%w: subnet %x has %d members, at most %d", api.ErrSubnetFull, c.Subnet, len(rec.Members), api.MaxSubnetMembers)
		}
		if rec.Members, ok = api.AddMember(rec.Members, c.Worker); !ok {
			return fmt.Errorf("%w: worker %s is already a member of subnet %x", api.ErrInvalidCall, c.Worker.Hex(), c.Subnet)
		}
	}
	ctx.KV.Set(api.SubnetKey(c.Subnet), rec.Encode())
	ev := "subnet_added"
	if c.Remove {
		ev = "subnet_removed"
	}
	ctx.Event(ev, "subnet", hex.EncodeToString(c.Subnet[:]), "worker", c.Worker.Hex(), "members", strconv.Itoa(len(rec.Members)))
	return announce(ctx, c.Subnet, rec)
}

// announce tells pRuntimes the subnet's members.
func announce(ctx *block.Context, id [32]byte, rec *api.SubnetRecord) error {
	m := &api.SubnetChanged{Subnet: id, Members: rec.Members}
	return mq.Emit(ctx, api.ModuleOrigin(Module), api.TopicSubnetChanged, m.Encode())
}

// Spec returns the subnet module's entry in the chain's module table: it
// owns the keys "sn/" (records) and "sq/" (owners' counts), executes
// subnet_create, subnet_add and subnet_remove, emits
// api.TopicSubnetChanged, and serves the proved queries api.QuerySubnet
// and api.QuerySubnetSeq.
func Spec() *module.Module {
	return &module.Module{
		Name:        Module,
		KeyPrefixes: []string{"sn/", "sq/"},
		Calls: map[api.CallKind]module.CallHandler{
			api.CallSubnetCreate: func(ctx *block.Context, signer crypto.PublicKey, c api.Call) error {
				_, err := Create(ctx, signer, c.(*api.SubnetCreate))
				return err
			},
			api.CallSubnetAdd: func(ctx *block.Context, signer crypto.PublicKey, c api.Call) error {
				return Change(ctx, signer, c.(*api.SubnetMember))
			},
			api.CallSubnetRemove: func(ctx *block.Context, signer crypto.PublicKey, c api.Call) error {
				return Change(ctx, signer, c.(*api.SubnetMember))
			},
		},
		StateQueries: []string{api.QuerySubnet, api.QuerySubnetSeq},
	}
}
