package node

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

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
	Host       string // listen host, default 127.0.0.1
	BasePort   int    // node i listens on BasePort+2i (p2p) and BasePort+2i+1 (rpc)
	Ports      []int  // if set, node i uses Ports[2i] (p2p) and Ports[2i+1] (rpc) instead
	Genesis    *api.GenesisState
	Override   func(i int, c *cfg.Config)
}

// Testnet writes the home directories node0..node{N-1} under dir for an
// N-validator network on loopback ports, all peered with each other and
// sharing one genesis. It returns the home directories.
func Testnet(dir string, opts TestnetOptions) ([]string, error) {
	if opts.Validators < 1 {
		return nil, fmt.Errorf("need at least one validator")
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.BasePort == 0 {
		opts.BasePort = 26656
	}
	homes := make([]string, opts.Validators)
	cfgs := make([]*cfg.Config, opts.Validators)
	vals := make([]cmttypes.GenesisValidator, opts.Validators)
	peers := make([]string, opts.Validators)
	if opts.Ports != nil && len(opts.Ports) != 2*opts.Validators {
		return nil, fmt.Errorf("need %d ports, got %d", 2*opts.Validators, len(opts.Ports))
	}
	port := func(k int) string {
		if opts.Ports != nil {
			return strconv.Itoa(opts.Ports[k])
		}
		return strconv.Itoa(opts.BasePort + k)
	}
	for i := range homes {
		homes[i] = filepath.Join(dir, "node"+strconv.Itoa(i))
		p2pAddr := net.JoinHostPort(opts.Host, port(2*i))
		io := InitOptions{
			ChainID: opts.ChainID,
			Moniker: "node" + strconv.Itoa(i),
			P2PAddr: p2pAddr,
			RPCAddr: net.JoinHostPort(opts.Host, port(2*i+1)),
			Genesis: opts.Genesis,
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
