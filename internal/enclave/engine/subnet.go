package engine

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Subnets and deployment requirements (docs/pruntime.md, "Assignment"):
// the chain's subnet module announces every subnet's member list after
// each change (api.TopicSubnetChanged); the engine keeps the lists in its
// chain-derived state so that its gatekeeper assigns a contract deployed
// to a subnet only to its members, as the chain's contracts module
// requires of a grant.

// subnetModule is the origin name of the chain's subnet module.
const subnetModule = "subnet"

// maxSubnets bounds the subnets a checkpoint may hold.
const maxSubnets = 1 << 20

// onSubnetChanged records a subnet's members. A worker joining a subnet
// may make a waiting upload assignable: the gatekeeper tries them again
// (grantWaiting).
func (e *Engine) onSubnetChanged(ctx *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin(subnetModule) {
		return fmt.Errorf("subnet change from %s, not subnet", m.Origin)
	}
	c, err := api.DecodeSubnetChanged(m.Payload)
	if err != nil {
		return err
	}
	grew := false
	old := e.st.subnets[c.Subnet]
	for _, k := range c.Members {
		if !api.HasMember(old, k) {
			grew = true
		}
	}
	e.st.subnets[c.Subnet] = c.Members
	if grew {
		e.grantWaiting(ctx.Height)
	}
	return nil
}

// subnetMember reports whether worker is a member of subnet id.
func (e *Engine) subnetMember(id [32]byte, worker crypto.PublicKey) bool {
	return api.HasMember(e.st.subnets[id], worker)
}

// encodeSubnets writes the subnets part of the chain-derived state: each
// known subnet (ascending id) with its members.
func (s *state) encodeSubnets(w *codec.Writer) {
	ids := make([][32]byte, 0, len(s.subnets))
	for id := range s.subnets {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	w.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		w.BytesField((&api.SubnetChanged{Subnet: id, Members: s.subnets[id]}).Encode())
	}
}

func (s *state) decodeSubnets(r *codec.Reader) {
	n := r.Uvarint()
	if n > maxSubnets || n > uint64(r.Remaining()/33) {
		r.Fail(fmt.Errorf("%w: %d subnets", codec.ErrTooLong, n))
		return
	}
	for ; r.Err() == nil && n > 0; n-- {
		c, err := api.DecodeSubnetChanged(r.BytesField(64 + 32*api.MaxSubnetMembers))
		if err != nil {
			r.Fail(err)
			return
		}
		s.subnets[c.Subnet] = c.Members
	}
}

// machineCores and machineMemoryMB are what a pRuntime declares in its
// WorkerInfo unless its Config says otherwise: the CPUs this process may
// use and the machine's memory (MemTotal of /proc/meminfo, in MiB; 0 if
// unreadable).
func machineCores() uint32 { return uint32(runtime.NumCPU()) }

func machineMemoryMB() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb / 1024
		}
	}
	return 0
}
