package node

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/app"
)

// homeFiles are the files Init and Testnet write in every home.
var homeFiles = []string{
	"config/config.toml",
	"config/genesis.json",
	"config/node_key.json",
	"config/priv_validator_key.json",
	"data/priv_validator_state.json",
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// snapshotHome returns the contents of the files of a home.
func snapshotHome(t *testing.T, home string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, f := range homeFiles {
		out[f] = readFile(t, filepath.Join(home, f))
	}
	return out
}

func loadGenesis(t *testing.T, home string) (*cmttypes.GenesisDoc, *api.GenesisState) {
	t.Helper()
	doc, err := cmttypes.GenesisDocFromFile(filepath.Join(home, "config", "genesis.json"))
	if err != nil {
		t.Fatalf("genesis of %s: %v", home, err)
	}
	state, err := api.DecodeGenesisState(doc.AppState)
	if err != nil {
		t.Fatalf("app state of %s: %v", home, err)
	}
	return doc, state
}

func validatorKey(t *testing.T, home string) *privval.FilePV {
	t.Helper()
	c := DefaultCometConfig(home)
	return privval.LoadFilePV(c.PrivValidatorKeyFile(), c.PrivValidatorStateFile())
}

func TestInit(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	g := DevGenesisState(api.HexBytes{9, 9, 9})
	g.Params.FeeBase = 777
	err := Init(home, InitOptions{
		ChainID:  "phala-init-test",
		Moniker:  "alpha",
		RPCAddr:  "127.0.0.1:36657",
		P2PAddr:  "127.0.0.1:36656",
		Genesis:  g,
		Override: func(c *cfg.Config) { c.Consensus.TimeoutCommit = 1234 * time.Millisecond },
	})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	for _, f := range homeFiles {
		if _, err := os.Stat(filepath.Join(home, f)); err != nil {
			t.Errorf("Init did not write %s: %v", f, err)
		}
	}

	c, err := LoadCometConfig(home)
	if err != nil {
		t.Fatalf("LoadCometConfig: %v", err)
	}
	if c.RootDir != home || c.Moniker != "alpha" ||
		c.RPC.ListenAddress != "tcp://127.0.0.1:36657" || c.P2P.ListenAddress != "tcp://127.0.0.1:36656" ||
		c.Consensus.TimeoutCommit != 1234*time.Millisecond {
		t.Fatalf("loaded config: root %s moniker %s rpc %s p2p %s timeout_commit %s",
			c.RootDir, c.Moniker, c.RPC.ListenAddress, c.P2P.ListenAddress, c.Consensus.TimeoutCommit)
	}
	// Everything else round-trips through config.toml unchanged.
	want := DefaultCometConfig(home)
	want.Moniker = "alpha"
	want.RPC.ListenAddress = "tcp://127.0.0.1:36657"
	want.P2P.ListenAddress = "tcp://127.0.0.1:36656"
	want.Consensus.TimeoutCommit = 1234 * time.Millisecond
	compareConfig(t, c, want)

	doc, state := loadGenesis(t, home)
	if doc.ChainID != "phala-init-test" || doc.InitialHeight != 1 {
		t.Fatalf("genesis chain id %q initial height %d", doc.ChainID, doc.InitialHeight)
	}
	if doc.ConsensusParams.Block.MaxBytes != 8<<20 {
		t.Errorf("genesis block max bytes = %d", doc.ConsensusParams.Block.MaxBytes)
	}
	if len(doc.Validators) != 1 {
		t.Fatalf("genesis has %d validators, want 1", len(doc.Validators))
	}
	pv := validatorKey(t, home)
	if v := doc.Validators[0]; !v.PubKey.Equals(pv.Key.PubKey) || v.Name != "alpha" || v.Power <= 0 {
		t.Fatalf("genesis validator %+v does not match the node's key %X", v, pv.Key.PubKey.Bytes())
	}
	if state.Params.FeeBase != 777 || len(state.Attestation.Measurements) != 1 || !bytes.Equal(state.Attestation.Measurements[0], []byte{9, 9, 9}) {
		t.Fatalf("genesis app state is not the one given: %+v", state)
	}
	if len(state.Accounts) != len(api.DevAccounts) {
		t.Fatalf("genesis has %d accounts, want %d", len(state.Accounts), len(api.DevAccounts))
	}

	// A second Init in the same home is refused and changes nothing.
	before := snapshotHome(t, home)
	err = Init(home, InitOptions{ChainID: "another-chain", Moniker: "beta"})
	if err == nil {
		t.Fatal("second Init in the same home succeeded")
	}
	if !strings.Contains(err.Error(), "already holds a genesis") || !strings.Contains(err.Error(), home) {
		t.Errorf("second Init error %q does not explain the problem", err)
	}
	if after := snapshotHome(t, home); !reflect.DeepEqual(before, after) {
		for f := range before {
			if !bytes.Equal(before[f], after[f]) {
				t.Errorf("refused Init rewrote %s", f)
			}
		}
	}
}

func TestInitDefaults(t *testing.T) {
	home := t.TempDir()
	if err := Init(home, InitOptions{ChainID: "phala-defaults"}); err != nil {
		t.Fatal(err)
	}
	c, err := LoadCometConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	compareConfig(t, c, DefaultCometConfig(home))
	_, state := loadGenesis(t, home)
	alice := crypto.MustKeyPairFromURI("//Alice").Public()
	found := false
	for _, a := range state.Accounts {
		if a.Address == alice {
			found = a.Balance == DevBalance
		}
	}
	if !found {
		t.Fatalf("default genesis does not fund //Alice with %d: %+v", uint64(DevBalance), state.Accounts)
	}
	if !state.Attestation.AllowSim || state.Attestation.DevPublicKey != crypto.MustKeyPairFromURI(api.DevAttestationURI).Public() {
		t.Fatalf("default genesis attestation = %+v", state.Attestation)
	}
}

func TestInitRefusals(t *testing.T) {
	bad := DevGenesisState()
	bad.Params.EraLength = 0
	tests := []struct {
		name string
		opts InitOptions
		want string
	}{
		{name: "no chain id", opts: InitOptions{}, want: "chain id"},
		{name: "invalid genesis", opts: InitOptions{ChainID: "x", Genesis: bad}, want: "era_length"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			err := Init(home, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Init = %v, want an error mentioning %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(home, "config", "genesis.json")); err == nil {
				t.Fatal("refused Init wrote a genesis")
			}
		})
	}
}

// compareConfig reports the sections of got that differ from want.
func compareConfig(t *testing.T, got, want *cfg.Config) {
	t.Helper()
	// An empty list may come back from TOML as an empty, non-nil slice.
	gotSS, wantSS := *got.StateSync, *want.StateSync
	if len(gotSS.RPCServers) == 0 && len(wantSS.RPCServers) == 0 {
		gotSS.RPCServers, wantSS.RPCServers = nil, nil
	}
	sections := map[string][2]any{
		"base":            {got.BaseConfig, want.BaseConfig},
		"rpc":             {*got.RPC, *want.RPC},
		"p2p":             {*got.P2P, *want.P2P},
		"mempool":         {*got.Mempool, *want.Mempool},
		"statesync":       {gotSS, wantSS},
		"blocksync":       {*got.BlockSync, *want.BlockSync},
		"consensus":       {*got.Consensus, *want.Consensus},
		"storage":         {*got.Storage, *want.Storage},
		"tx_index":        {*got.TxIndex, *want.TxIndex},
		"instrumentation": {*got.Instrumentation, *want.Instrumentation},
	}
	for name, s := range sections {
		if !reflect.DeepEqual(s[0], s[1]) {
			t.Errorf("config section %s after load:\n got %+v\nwant %+v", name, s[0], s[1])
		}
	}
}

func TestLoadCometConfigErrors(t *testing.T) {
	t.Run("missing home", func(t *testing.T) {
		home := filepath.Join(t.TempDir(), "does-not-exist")
		_, err := LoadCometConfig(home)
		if err == nil {
			t.Fatal("LoadCometConfig of a missing home succeeded")
		}
		for _, want := range []string{filepath.Join(home, "config", "config.toml"), "phala-node init --home " + home} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
	})
	tests := []struct {
		name     string
		contents string
		want     string
	}{
		{name: "not toml", contents: "this is [not toml", want: "read"},
		{name: "invalid setting", contents: "[mempool]\nsize = -5\n", want: "invalid"},
		{name: "unparsable setting", contents: "[consensus]\ntimeout_commit = \"soon\"\n", want: "parse"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			path := filepath.Join(home, "config", "config.toml")
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(tc.contents), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadCometConfig(home)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("LoadCometConfig = %v, want an error mentioning %q and %s", err, tc.want, path)
			}
		})
	}
}

func TestTestnet(t *testing.T) {
	dir := t.TempDir()
	const base = 41000
	var overridden []int
	homes, err := Testnet(dir, TestnetOptions{
		ChainID:    "phala-testnet-test",
		Validators: 3,
		BasePort:   base,
		Override: func(i int, c *cfg.Config) {
			overridden = append(overridden, i)
			c.Consensus.TimeoutPropose = time.Duration(i+1) * time.Second
		},
	})
	if err != nil {
		t.Fatalf("Testnet: %v", err)
	}
	if want := []string{filepath.Join(dir, "node0"), filepath.Join(dir, "node1"), filepath.Join(dir, "node2")}; !reflect.DeepEqual(homes, want) {
		t.Fatalf("homes = %v, want %v", homes, want)
	}
	if !reflect.DeepEqual(overridden, []int{0, 1, 2}) {
		t.Fatalf("Override called for %v", overridden)
	}

	// One genesis, byte for byte, with the 3 validators' keys.
	genesis0 := readFile(t, filepath.Join(homes[0], "config", "genesis.json"))
	doc, _ := loadGenesis(t, homes[0])
	if doc.ChainID != "phala-testnet-test" || len(doc.Validators) != 3 {
		t.Fatalf("genesis chain id %q with %d validators", doc.ChainID, len(doc.Validators))
	}
	type node struct {
		id        p2p.ID
		p2pAddr   string
		rpcAddr   string
		peers     []string
		validator []byte
	}
	nodes := make([]node, len(homes))
	ports := map[string]string{}
	for i, home := range homes {
		for _, f := range homeFiles {
			if _, err := os.Stat(filepath.Join(home, f)); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
		if g := readFile(t, filepath.Join(home, "config", "genesis.json")); !bytes.Equal(g, genesis0) {
			t.Errorf("node%d has a different genesis", i)
		}
		c, err := LoadCometConfig(home)
		if err != nil {
			t.Fatalf("node%d config: %v", i, err)
		}
		if c.Moniker != "node"+strconv.Itoa(i) {
			t.Errorf("node%d moniker %q", i, c.Moniker)
		}
		if c.Consensus.TimeoutPropose != time.Duration(i+1)*time.Second {
			t.Errorf("node%d override not persisted: timeout_propose %s", i, c.Consensus.TimeoutPropose)
		}
		nk, err := p2p.LoadNodeKey(c.NodeKeyFile())
		if err != nil {
			t.Fatal(err)
		}
		n := node{
			id:      nk.ID(),
			p2pAddr: strings.TrimPrefix(c.P2P.ListenAddress, "tcp://"),
			rpcAddr: strings.TrimPrefix(c.RPC.ListenAddress, "tcp://"),
		}
		if c.P2P.PersistentPeers != "" {
			n.peers = strings.Split(c.P2P.PersistentPeers, ",")
		}
		if want := net.JoinHostPort("127.0.0.1", strconv.Itoa(base+2*i)); n.p2pAddr != want {
			t.Errorf("node%d p2p address %s, want %s", i, n.p2pAddr, want)
		}
		if want := net.JoinHostPort("127.0.0.1", strconv.Itoa(base+2*i+1)); n.rpcAddr != want {
			t.Errorf("node%d rpc address %s, want %s", i, n.rpcAddr, want)
		}
		for what, addr := range map[string]string{"p2p": n.p2pAddr, "rpc": n.rpcAddr} {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				t.Fatalf("node%d %s address %q: %v", i, what, addr, err)
			}
			if prev, dup := ports[port]; dup {
				t.Errorf("port %s used by %s and node%d %s", port, prev, i, what)
			}
			ports[port] = "node" + strconv.Itoa(i) + " " + what
		}
		pv := validatorKey(t, home)
		n.validator = pv.Key.PubKey.Bytes()
		if v := doc.Validators[i]; !bytes.Equal(v.PubKey.Bytes(), n.validator) || v.Name != "node"+strconv.Itoa(i) {
			t.Errorf("genesis validator %d is %s %X, not node%d's key %X", i, v.Name, v.PubKey.Bytes(), i, n.validator)
		}
		nodes[i] = n
	}
	if len(ports) != 6 {
		t.Fatalf("%d distinct ports, want 6", len(ports))
	}
	for i := range nodes {
		for j := i + 1; j < len(nodes); j++ {
			if nodes[i].id == nodes[j].id || bytes.Equal(nodes[i].validator, nodes[j].validator) {
				t.Errorf("node%d and node%d share keys", i, j)
			}
		}
	}
	for i, n := range nodes {
		var want []string
		for j, other := range nodes {
			if j != i {
				want = append(want, p2p.IDAddressString(other.id, other.p2pAddr))
			}
		}
		got := append([]string(nil), n.peers...)
		sort.Strings(got)
		sort.Strings(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("node%d persistent peers = %v, want %v", i, got, want)
		}
	}

	// The same directory cannot be initialized twice.
	before := snapshotHome(t, homes[0])
	if _, err := Testnet(dir, TestnetOptions{ChainID: "again", Validators: 3, BasePort: base}); err == nil {
		t.Fatal("second Testnet in the same directory succeeded")
	}
	if after := snapshotHome(t, homes[0]); !reflect.DeepEqual(before, after) {
		t.Fatal("refused Testnet rewrote node0")
	}
}

func TestTestnetOptions(t *testing.T) {
	t.Run("explicit ports", func(t *testing.T) {
		ports := []int{45001, 45017, 45003, 45019}
		homes, err := Testnet(t.TempDir(), TestnetOptions{ChainID: "p", Validators: 2, Ports: ports, Host: "127.0.0.2"})
		if err != nil {
			t.Fatal(err)
		}
		for i, home := range homes {
			c, err := LoadCometConfig(home)
			if err != nil {
				t.Fatal(err)
			}
			if want := "tcp://127.0.0.2:" + strconv.Itoa(ports[2*i]); c.P2P.ListenAddress != want {
				t.Errorf("node%d p2p %s, want %s", i, c.P2P.ListenAddress, want)
			}
			if want := "tcp://127.0.0.2:" + strconv.Itoa(ports[2*i+1]); c.RPC.ListenAddress != want {
				t.Errorf("node%d rpc %s, want %s", i, c.RPC.ListenAddress, want)
			}
		}
	})
	t.Run("single validator has no peers", func(t *testing.T) {
		homes, err := Testnet(t.TempDir(), TestnetOptions{ChainID: "p", Validators: 1, BasePort: 46000})
		if err != nil {
			t.Fatal(err)
		}
		c, err := LoadCometConfig(homes[0])
		if err != nil {
			t.Fatal(err)
		}
		if c.P2P.PersistentPeers != "" {
			t.Fatalf("persistent peers %q", c.P2P.PersistentPeers)
		}
	})
	tests := []struct {
		name string
		opts TestnetOptions
		want string
	}{
		{name: "no validators", opts: TestnetOptions{ChainID: "p"}, want: "at least one validator"},
		{name: "negative validators", opts: TestnetOptions{ChainID: "p", Validators: -1}, want: "at least one validator"},
		{name: "too few ports", opts: TestnetOptions{ChainID: "p", Validators: 2, Ports: []int{1, 2, 3}}, want: "need 4 ports, got 3"},
		{name: "too many ports", opts: TestnetOptions{ChainID: "p", Validators: 1, Ports: []int{1, 2, 3}}, want: "need 2 ports, got 3"},
		{name: "no chain id", opts: TestnetOptions{Validators: 2}, want: "chain id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := Testnet(dir, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Testnet = %v, want an error mentioning %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "node0", "config", "genesis.json")); err == nil {
				t.Fatal("refused Testnet wrote a genesis")
			}
		})
	}
}

// One validator per host: each listens on its host (or ListenHost) at the
// same ports, announces its host as p2p external address, and its peers
// dial it there; a host named twice gets its second node 2 ports up.
func TestTestnetHosts(t *testing.T) {
	tests := []struct {
		name       string
		hosts      []string
		listenHost string
		wantP2P    []string // external addresses (peers dial these)
		wantListen []string // p2p listen addresses
		wantRPC    []string
	}{
		{
			name:       "distinct hosts share ports",
			hosts:      []string{"10.0.0.1", "10.0.0.2", "val3.example", "fd00::4"},
			wantP2P:    []string{"10.0.0.1:26656", "10.0.0.2:26656", "val3.example:26656", "[fd00::4]:26656"},
			wantListen: []string{"tcp://10.0.0.1:26656", "tcp://10.0.0.2:26656", "tcp://val3.example:26656", "tcp://[fd00::4]:26656"},
			wantRPC:    []string{"tcp://10.0.0.1:26657", "tcp://10.0.0.2:26657", "tcp://val3.example:26657", "tcp://[fd00::4]:26657"},
		},
		{
			name:       "listen on all interfaces",
			hosts:      []string{"10.0.0.1", "10.0.0.2"},
			listenHost: "0.0.0.0",
			wantP2P:    []string{"10.0.0.1:26656", "10.0.0.2:26656"},
			wantListen: []string{"tcp://0.0.0.0:26656", "tcp://0.0.0.0:26656"},
			wantRPC:    []string{"tcp://0.0.0.0:26657", "tcp://0.0.0.0:26657"},
		},
		{
			name:       "a shared host moves up",
			hosts:      []string{"10.0.0.1", "10.0.0.2", "10.0.0.1"},
			wantP2P:    []string{"10.0.0.1:26656", "10.0.0.2:26656", "10.0.0.1:26658"},
			wantListen: []string{"tcp://10.0.0.1:26656", "tcp://10.0.0.2:26656", "tcp://10.0.0.1:26658"},
			wantRPC:    []string{"tcp://10.0.0.1:26657", "tcp://10.0.0.2:26657", "tcp://10.0.0.1:26659"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			homes, err := Testnet(t.TempDir(), TestnetOptions{ChainID: "p", Validators: len(tc.hosts), Hosts: tc.hosts, ListenHost: tc.listenHost})
			if err != nil {
				t.Fatal(err)
			}
			ids := make([]p2p.ID, len(homes))
			cs := make([]*cfg.Config, len(homes))
			for i, home := range homes {
				c, err := LoadCometConfig(home)
				if err != nil {
					t.Fatal(err)
				}
				nk, err := p2p.LoadNodeKey(c.NodeKeyFile())
				if err != nil {
					t.Fatal(err)
				}
				ids[i], cs[i] = nk.ID(), c
			}
			for i, c := range cs {
				if c.P2P.ExternalAddress != tc.wantP2P[i] || c.P2P.ListenAddress != tc.wantListen[i] || c.RPC.ListenAddress != tc.wantRPC[i] {
					t.Errorf("node%d: external %s, p2p %s, rpc %s; want %s, %s, %s", i,
						c.P2P.ExternalAddress, c.P2P.ListenAddress, c.RPC.ListenAddress, tc.wantP2P[i], tc.wantListen[i], tc.wantRPC[i])
				}
				var want []string
				for j := range cs {
					if j != i {
						want = append(want, p2p.IDAddressString(ids[j], tc.wantP2P[j]))
					}
				}
				if got := strings.Split(c.P2P.PersistentPeers, ","); !reflect.DeepEqual(got, want) {
					t.Errorf("node%d persistent peers %v, want %v", i, got, want)
				}
			}
		})
	}
	refused := []struct {
		name string
		opts TestnetOptions
		want string
	}{
		{name: "fewer hosts than validators", opts: TestnetOptions{ChainID: "p", Validators: 3, Hosts: []string{"a", "b"}}, want: "2 hosts for 3 validators"},
		{name: "host and hosts", opts: TestnetOptions{ChainID: "p", Validators: 1, Host: "127.0.0.1", Hosts: []string{"a"}}, want: "not both"},
		{name: "empty host", opts: TestnetOptions{ChainID: "p", Validators: 2, Hosts: []string{"a", " "}}, want: "not an address"},
		{name: "host with a node id", opts: TestnetOptions{ChainID: "p", Validators: 1, Hosts: []string{"id@a"}}, want: "not an address"},
		{name: "host with a port", opts: TestnetOptions{ChainID: "p", Validators: 1, Hosts: []string{"10.0.0.1:26656"}}, want: "without a port"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := Testnet(dir, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Testnet = %v, want an error mentioning %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "node0")); err == nil {
				t.Fatal("refused Testnet wrote node0")
			}
		})
	}
}

// The genesis declares the app version the application reports, so a state
// rolled back by CometBFT (which takes it from the consensus parameters)
// matches the blocks' header version.
func TestGenesisAppVersionMatchesApp(t *testing.T) {
	a, err := app.New(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	info, err := a.Info(context.Background(), &abci.RequestInfo{})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := NewGenesisDoc("phala-v", nil, DevGenesisState())
	if err != nil {
		t.Fatal(err)
	}
	if info.AppVersion != AppVersion || doc.ConsensusParams.Version.App != AppVersion {
		t.Fatalf("app reports version %d, genesis params %d, AppVersion %d", info.AppVersion, doc.ConsensusParams.Version.App, AppVersion)
	}
}
