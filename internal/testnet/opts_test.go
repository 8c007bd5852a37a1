package testnet_test

import rpcclient "github.com/cometbft/cometbft/rpc/client"

func queryOpts() rpcclient.ABCIQueryOptions { return rpcclient.ABCIQueryOptions{Prove: true} }
