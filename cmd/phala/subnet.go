package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/api"
)

// Commands of subnets: worker whitelists a deployment may be confined to
// (`phala contract upload --subnet`).

func subnetCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "subnet",
		Short: "Create and edit subnets: worker whitelists contracts can be deployed to",
		Long: `subnet works with subnets. A subnet is a list of workers (pRuntime identity
keys, at most 256) created on chain by its owner, who alone adds and
removes workers. A contract uploaded with --subnet runs only on members
of that subnet: gatekeepers assign only them, and the chain refuses a
grant naming anyone else.`,
	}
	c.AddCommand(subnetCreateCmd(g), subnetMemberCmd(g, false), subnetMemberCmd(g, true), subnetShowCmd(g))
	return c
}

// parseSubnet parses a subnet id: 64 hex digits, with or without 0x.
func parseSubnet(s string) ([32]byte, error) {
	var id [32]byte
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil || len(b) != 32 {
		return id, fmt.Errorf("subnet id %q: want 64 hex digits (what `phala subnet create` prints)", s)
	}
	copy(id[:], b)
	return id, nil
}

type subnetJSON struct {
	Subnet    string   `json:"subnet"`
	Owner     string   `json:"owner"`
	Name      string   `json:"name"`
	Sequence  uint64   `json:"sequence"`
	CreatedAt int64    `json:"created_at"`
	Members   []string `json:"members"`
	Height    int64    `json:"height"`
	Tx        string   `json:"tx,omitempty"`
}

func toSubnetJSON(id [32]byte, s *api.SubnetRecord, height int64) subnetJSON {
	out := subnetJSON{Subnet: hex.EncodeToString(id[:]), Owner: s.Owner.Address(), Name: s.Name, Sequence: s.Sequence, CreatedAt: s.CreatedAt, Members: []string{}, Height: height}
	for _, m := range s.Members {
		out.Members = append(out.Members, m.Hex())
	}
	return out
}

func printSubnet(w io.Writer, out subnetJSON) {
	fmt.Fprintf(w, "subnet:     %s\nname:       %s\nowner:      %s\ncreated at: height %d\nmembers:    %d\n", out.Subnet, out.Name, out.Owner, out.CreatedAt, len(out.Members))
	for _, m := range out.Members {
		fmt.Fprintf(w, "  %s\n", m)
	}
	fmt.Fprintf(w, "(proved at height %d)\n", out.Height)
}

func subnetCreateCmd(g *globals) *cobra.Command {
	var from string
	c := &cobra.Command{
		Use:   "create --from <owner> [name]",
		Short: "Create a subnet owned by --from and print its id",
		Long: `create creates an empty subnet owned by --from (who pays the fee) and prints
its id: SHA-256 of the owner and its count of subnets, so the same owner's
subnets get distinct ids. The name (at most 64 printable ASCII characters)
is a label only.`,
		Example: `  phala subnet create --from //Alice "tdx pool"
  phala subnet create --from //Alice --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			if err := api.CheckSubnetName(name); err != nil {
				return fmt.Errorf("%w (the name is a label only: shorten it or leave it out)", err)
			}
			key, err := signerKey(cmd, from)
			if err != nil {
				return err
			}
			ctx, cl, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			id, res, err := cl.NewSigner(key).CreateSubnet(ctx, name)
			if err != nil {
				return fmt.Errorf("subnet create: %w", g.nodeError(err))
			}
			s, h, err := cl.Subnet(ctx, id)
			if err != nil {
				return g.nodeError(err)
			}
			out := toSubnetJSON(id, s, h)
			out.Tx = fmt.Sprintf("%X", res.Hash)
			return g.output(cmd, out, func(w io.Writer) {
				fmt.Fprintf(w, "subnet %s created at height %d (tx %s)\n", out.Subnet, res.Height, out.Tx)
			})
		},
	}
	c.Flags().StringVar(&from, "from", "", "secret URI of the owner (pays the fee), or - for stdin")
	return c
}

func subnetMemberCmd(g *globals, remove bool) *cobra.Command {
	var from string
	use, short, verb := "add", "Add a worker to a subnet (its owner only)", "added to"
	if remove {
		use, short, verb = "remove", "Remove a worker from a subnet (its owner only)", "removed from"
	}
	c := &cobra.Command{
		Use:   use + " --from <owner> <subnet id> <worker>",
		Short: short,
		Long: short + `. The worker is its pRuntime identity key (SS58 or 0x-hex,
what ` + "`phala workers`" + ` lists); it need not be registered yet. Contracts
deployed to the subnet later are assigned among its members; a contract
waiting for a member is provisioned as soon as one is added.`,
		Example: fmt.Sprintf("  phala subnet %s --from //Alice 3f1c...9a 0xd435...a27d --json", use),
		Args:    exactArgs(2, "a subnet id and a worker"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseSubnet(args[0])
			if err != nil {
				return err
			}
			worker, err := parseAccount("worker", args[1])
			if err != nil {
				return err
			}
			key, err := signerKey(cmd, from)
			if err != nil {
				return err
			}
			ctx, cl, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			res, err := cl.NewSigner(key).SubnetMember(ctx, id, worker, remove)
			if err != nil {
				return fmt.Errorf("subnet %s: %w", use, g.nodeError(err))
			}
			s, h, err := cl.Subnet(ctx, id)
			if err != nil {
				return g.nodeError(err)
			}
			out := toSubnetJSON(id, s, h)
			out.Tx = fmt.Sprintf("%X", res.Hash)
			return g.output(cmd, out, func(w io.Writer) {
				fmt.Fprintf(w, "worker %s %s subnet %s at height %d: %d member(s) (tx %s)\n", worker.Hex(), verb, out.Subnet, res.Height, len(out.Members), out.Tx)
			})
		},
	}
	c.Flags().StringVar(&from, "from", "", "secret URI of the subnet's owner (pays the fee), or - for stdin")
	return c
}

func subnetShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "show <subnet id>",
		Short:   "Show a subnet: owner, name and members (proved)",
		Example: `  phala subnet show 3f1c...9a --json`,
		Args:    exactArgs(1, "a subnet id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseSubnet(args[0])
			if err != nil {
				return err
			}
			ctx, cl, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			s, h, err := cl.Subnet(ctx, id)
			if err != nil {
				return g.nodeError(err)
			}
			out := toSubnetJSON(id, s, h)
			return g.output(cmd, out, func(w io.Writer) { printSubnet(w, out) })
		},
	}
}

// requirementFlags are contract upload's deployment requirement flags.
type requirementFlags struct {
	subnet, platform string
	cores            uint32
	memoryMB         uint64
	version          uint32
}

func (f *requirementFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.subnet, "subnet", "", "run only on members of this subnet (the id that phala subnet create prints)")
	c.Flags().StringVar(&f.platform, "platform", "", "run only on workers attested on this TEE platform (tdx, sim; empty: any)")
	c.Flags().Uint32Var(&f.cores, "min-cores", 0, "run only on workers declaring at least this many CPU cores")
	c.Flags().Uint64Var(&f.memoryMB, "min-memory-mb", 0, "run only on workers declaring at least this much memory (MiB)")
	c.Flags().Uint32Var(&f.version, "min-runtime-version", 0, "run only on workers whose pRuntime version is at least this")
}

func (f *requirementFlags) requirements() (api.Requirements, error) {
	q := api.Requirements{Platform: f.platform, MinCores: f.cores, MinMemoryMB: f.memoryMB, MinRuntimeVersion: f.version}
	if f.subnet != "" {
		id, err := parseSubnet(f.subnet)
		if err != nil {
			return q, fmt.Errorf("--subnet: %w", err)
		}
		q.Subnet = id
	}
	if len(q.Platform) > api.MaxPlatformBytes {
		return q, fmt.Errorf("--platform %q: at most %d bytes (tdx, sim)", q.Platform, api.MaxPlatformBytes)
	}
	return q, nil
}
