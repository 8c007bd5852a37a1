package node

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
)

// InitOptions configure `phala-node init`.
type InitOptions struct {
	ChainID  string
	Moniker  string
	RPCAddr  string // host:port
	P2PAddr  string // host:port
	Genesis  *api.GenesisState
	Override func(*cfg.Config) // optional tweaks before the config is written
}

// Init creates a single-validator home directory: config.toml, validator and
// node keys, and a genesis holding this validator and opts.Genesis. It
// refuses to overwrite an existing genesis.
func Init(home string, opts InitOptions) error {
	if opts.Genesis == nil {
		opts.Genesis = DevGenesisState()
	}
	c, err := prepareHome(home, opts)
	if err != nil {
		return err
	}
	pv := privval.LoadOrGenFilePV(c.PrivValidatorKeyFile(), c.PrivValidatorStateFile())
	pub, err := pv.GetPubKey()
	if err != nil {
		return err
	}
	doc, err := NewGenesisDoc(opts.ChainID, []cmttypes.GenesisValidator{{Address: pub.Address(), PubKey: pub, Power: 10, Name: c.Moniker}}, opts.Genesis)
	if err != nil {
		return err
	}
	return doc.SaveAs(c.GenesisFile())
}

func prepareHome(home string, opts InitOptions) (*cfg.Config, error) {
	if opts.ChainID == "" {
		return nil, fmt.Errorf("a chain id is required")
	}
	c := DefaultCometConfig(home)
	if _, err := os.Stat(c.GenesisFile()); err == nil {
		return nil, fmt.Errorf("%s already holds a genesis; remove the directory or choose another --home", home)
	}
	if opts.Moniker != "" {
		c.Moniker = opts.Moniker
	}
	if opts.RPCAddr != "" {
		c.RPC.ListenAddress = "tcp://" + opts.RPCAddr
	}
	if opts.P2PAddr != "" {
		c.P2P.ListenAddress = "tcp://" + opts.P2PAddr
	}
	if opts.Override != nil {
		opts.Override(c)
	}
	for _, d := range []string{filepath.Join(home, "config"), filepath.Join(home, "data")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if _, err := p2p.LoadOrGenNodeKey(c.NodeKeyFile()); err != nil {
		return nil, err
	}
	cfg.WriteConfigFile(filepath.Join(home, "config", "config.toml"), c)
	return c, nil
}

// TestnetOptions configure `phala-node testnet`.
type TestnetOptions struct {
	ChainID    string
	Validators int
	Host       string // listen host of every node when Hosts is empty, default 127.0.0.1
	// Hosts, if set, holds one address (IP or DNS name) per validator: the
	// address its peers dial (persistent peers), its p2p external address,
	// and, unless ListenHost is set, the address its p2p and RPC listeners
	// bind. Nodes on distinct hosts use the same ports; the k-th node
	// sharing a host with earlier ones is moved up by 2k ports.
	Hosts []string
	// ListenHost, if set, is the address every node binds its p2p and RPC
	// listeners to instead of its host (e.g. "0.0.0.0" for all interfaces,
	// behind NAT or in a container); peers still dial Hosts[i].
	ListenHost string
	BasePort   int   // node i listens on BasePort+2i (p2p) and BasePort+2i+1 (rpc); see Hosts
	Ports      []int // if set, node i uses Ports[2i] (p2p) and Ports[2i+1] (rpc) instead
	Genesis    *api.GenesisState
	Override   func(i int, c *cfg.Config)
}

// TestnetAddr is where validator i of a testnet is reached.
type TestnetAddr struct {
	Host    string // the address its peers and clients dial
	P2PPort int
	RPCPort int
}

// Addrs returns each validator's host and ports under opts (after the
// defaults Testnet applies), or an error for inconsistent options.
func (opts TestnetOptions) Addrs() ([]TestnetAddr, error) {
	if opts.Validators < 1 {
		return nil, fmt.Errorf("need at least one validator")
	}
	if opts.Ports != nil && len(opts.Ports) != 2*opts.Validators {
		return nil, fmt.Errorf("need %d ports, got %d", 2*opts.Validators, len(opts.Ports))
	}
	if opts.Hosts != nil {
		if len(opts.Hosts) != opts.Validators {
			return nil, fmt.Errorf("need one host per validator: %d hosts for %d validators", len(opts.Hosts), opts.Validators)
		}
		if opts.Host != "" {
			return nil, fmt.Errorf("give either one listen host for every node or a host per validator, not both")
		}
	}
	base := opts.BasePort
	if base == 0 {
		base = 26656
	}
	out := make([]TestnetAddr, opts.Validators)
	seen := map[string]int{}
	for i := range out {
		host, k := opts.Host, i
		if host == "" {
			host = "127.0.0.1"
		}
		if opts.Hosts != nil {
			host = strings.TrimSpace(opts.Hosts[i])
			if host == "" || strings.ContainsAny(host, " ,@/") {
				return nil, fmt.Errorf("host %d: %q is not an address", i, opts.Hosts[i])
			}
			if _, err := netip.ParseAddr(host); err != nil && strings.Contains(host, ":") {
				return nil, fmt.Errorf("host %d: %q is not an address: give it without a port (the ports come from the base port)", i, opts.Hosts[i])
			}
			k = seen[host]
			seen[host]++
		}
		a := TestnetAddr{Host: host, P2PPort: base + 2*k, RPCPort: base + 2*k + 1}
		if opts.Ports != nil {
			a.P2PPort, a.RPCPort = opts.Ports[2*i], opts.Ports[2*i+1]
		}
		out[i] = a
	}
	return out, nil
}

// Testnet writes the home directories node0..node{N-1} under dir for an
// N-validator network, all persistent peers of each other and sharing one
// genesis: on loopback ports by default, or one validator per host
// (opts.Hosts). It returns the home directories.
func Testnet(dir string, opts TestnetOptions) ([]string, error) {
	addrs, err := opts.Addrs()
	if err != nil {
		return nil, err
	}
	homes := make([]string, opts.Validators)
	cfgs := make([]*cfg.Config, opts.Validators)
	vals := make([]cmttypes.GenesisValidator, opts.Validators)
	peers := make([]string, opts.Validators)
	for i := range homes {
		a := addrs[i]
		homes[i] = filepath.Join(dir, "node"+strconv.Itoa(i))
		listen := a.Host
		if opts.ListenHost != "" {
			listen = opts.ListenHost
		}
		p2pAddr := net.JoinHostPort(a.Host, strconv.Itoa(a.P2PPort))
		io := InitOptions{
			ChainID: opts.ChainID,
			Moniker: "node" + strconv.Itoa(i),
			P2PAddr: net.JoinHostPort(listen, strconv.Itoa(a.P2PPort)),
			RPCAddr: net.JoinHostPort(listen, strconv.Itoa(a.RPCPort)),
			Genesis: opts.Genesis,
		}
		if opts.Hosts != nil {
			// What the node tells its peers it is reached at.
			io.Override = func(c *cfg.Config) { c.P2P.ExternalAddress = p2pAddr }
		}
		c, err := prepareHome(homes[i], io)
		if err != nil {
			return nil, err
		}
		pv := privval.LoadOrGenFilePV(c.PrivValidatorKeyFile(), c.PrivValidatorStateFile())
		pub, err := pv.GetPubKey()
		if err != nil {
			return nil, err
		}
		vals[i] = cmttypes.GenesisValidator{Address: pub.Address(), PubKey: pub, Power: 10, Name: c.Moniker}
		nk, err := p2p.LoadNodeKey(c.NodeKeyFile())
		if err != nil {
			return nil, err
		}
		peers[i] = p2p.IDAddressString(nk.ID(), p2pAddr)
		cfgs[i] = c
	}
	g := opts.Genesis
	if g == nil {
		g = DevGenesisState()
	}
	doc, err := NewGenesisDoc(opts.ChainID, vals, g)
	if err != nil {
		return nil, err
	}
	for i, c := range cfgs {
		var others []string
		for j, p := range peers {
			if j != i {
				others = append(others, p)
			}
		}
		c.P2P.PersistentPeers = joinComma(others)
		if opts.Override != nil {
			opts.Override(i, c)
		}
		cfg.WriteConfigFile(filepath.Join(homes[i], "config", "config.toml"), c)
		if err := doc.SaveAs(c.GenesisFile()); err != nil {
			return nil, err
		}
	}
	return homes, nil
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}
