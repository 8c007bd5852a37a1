package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/spf13/viper"
)

// DefaultCometConfig is CometBFT's default configuration with the settings
// this chain needs: loopback listeners, a mempool sized for load, and
// transaction sizes up to api.MaxTxBytes.
func DefaultCometConfig(home string) *cfg.Config {
	c := cfg.DefaultConfig()
	c.SetRoot(home)
	c.Moniker = "phala-node"
	c.LogLevel = "info"
	c.RPC.ListenAddress = "tcp://127.0.0.1:26657"
	c.RPC.MaxBodyBytes = 16 << 20
	c.RPC.MaxOpenConnections = 2000
	c.RPC.MaxRequestBatchSize = 1000
	c.RPC.TimeoutBroadcastTxCommit = 30 * time.Second
	c.P2P.ListenAddress = "tcp://127.0.0.1:26656"
	c.P2P.AllowDuplicateIP = true
	c.P2P.AddrBookStrict = false
	c.P2P.PexReactor = false
	c.P2P.FlushThrottleTimeout = 10 * time.Millisecond
	c.P2P.SendRate = 50 << 20
	c.P2P.RecvRate = 50 << 20
	c.Mempool.Size = 100_000
	c.Mempool.MaxTxsBytes = 1 << 30
	c.Mempool.CacheSize = 200_000
	c.Mempool.MaxTxBytes = 4 << 20
	c.Consensus.TimeoutCommit = 500 * time.Millisecond
	c.Consensus.TimeoutPropose = 2 * time.Second
	c.Instrumentation.Prometheus = false
	return c
}

// LoadCometConfig reads home/config/config.toml.
func LoadCometConfig(home string) (*cfg.Config, error) {
	path := filepath.Join(home, "config", "config.toml")
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no node configuration at %s: run `phala-node init --home %s` first", path, home)
		}
		return nil, err
	}
	v := viper.New()
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	c := DefaultCometConfig(home)
	if err := v.Unmarshal(c); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	c.SetRoot(home)
	if err := c.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("invalid %s: %w", path, err)
	}
	return c, nil
}
