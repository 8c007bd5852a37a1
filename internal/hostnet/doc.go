// Package hostnet holds the multi-host test of the whole system: validators
// (phala-node), gatekeeper and worker pRuntimes and their pherries, each on a
// host of its own (a Linux network namespace made by internal/netns), built
// from cmd/ and configured the way an operator does it (`phala-node testnet
// --hosts`, `pruntime --listen/--control-allow`, `pherry --node`), then
// partitioned one link at a time. The package has no code of its own beyond
// the test: what it checks is that the programs run across hosts.
package hostnet
