// Command phala is the user's command line for the Phala chain: keys
// (generate, inspect, sign, verify, vanity: Substrate subkey-compatible), transfers and balances, the
// worker and gatekeeper registry, and the chain's status. Each command group
// lives in its own file (keys.go, chain.go, ...); main.go holds the root
// command, the global flags and the helpers they share.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/client"
	"github.com/phalago/phala/internal/version"
)

// defaultNode is CometBFT's standard RPC address, where `phala-node dev`
// listens.
const defaultNode = "http://127.0.0.1:26657"

// globals are the flags every command has.
type globals struct {
	node    string
	json    bool
	timeout time.Duration
	trust   trustFlags
}

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}

// newRootCmd builds the command tree. A new command group adds its
// constructor to the AddCommand list below.
func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "phala",
		Short: "Keys, transfers and the registry of the Phala chain",
		Long: `phala is the command line of the Phala chain for users:

  devnet      run a whole development network on this machine (a chain,
              a gatekeeper and workers with their relayers)
  contract    upload confidential contracts, send them encrypted commands,
              query them off-chain (or on chain), show their records
  ppha        private PHA pegged 1:1: deposit, transfer privately, withdraw
  key         make, inspect and sign with keys (the same keys, SS58
              addresses and signatures as Substrate's subkey:
              generate, inspect, sign, verify, vanity)
  keys status the chain's key eras: the serving key set, the running DKG,
              who confirmed, a contract's key era and epoch
  transfer, balance
              send PHA and read balances
  worker(s), gatekeepers, status
              the registry (who runs contracts, who holds the MasterKey)
              and the chain's status
  tx, block   a transaction or a block decoded, checked against verified
              headers
  receipt     what became of a contract command: the contract's output or
              error, sealed to its sender
  gov         council motions on the chain's trust roots
  stake       bond PHA, back workers and gatekeepers, nominate, unbond
  rewards     the era rewards an account received
  gatekeeper candidacy, era
              stand for the per-era gatekeeper election; an era's elected
              set, its backing and confirmations
  bench       load a devnet, measure commands/s and queries/s
  explorer    serve web pages of the chain's public data: blocks,
              transactions, accounts, workers, gatekeepers, contracts,
              the message queue and the parameters, updated live

Reads of chain state are checked with Merkle proofs against headers that
phala verifies itself with CometBFT's light client, from a trust root you
give: --genesis FILE (the chain's genesis.json: its validators sign the
first block, and each validator-set change is followed from there) or
--trust-height N --trust-hash HEX (a block and its hash, learned from a
source you trust). The root is remembered per chain id in --data-dir
(~/.phala), with the newest verified header, so later commands need no
flag; ` + "`phala devnet`" + ` records its own genesis there, so the CLI works with
it out of the box. A node's word is never the root: without one, commands
that read state stop and say how to give it.

Every command takes --node (the CometBFT RPC of a phala-node) and --json
(machine-readable output); --version prints phala's version.`,
		Example: `  go run ./cmd/phala devnet               # a development network on ` + defaultNode + `
  phala status
  phala status --genesis ~/chain/config/genesis.json
  phala status --trust-height 1200 --trust-hash 3F0A...   # a block hash you trust
  phala key inspect //Alice
  phala transfer --from //Alice --to 5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty --amount 1.5
  phala balance 5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Get().String(),
	}
	root.SetVersionTemplate(version.Template)
	root.PersistentFlags().StringVar(&g.node, "node", defaultNode, "CometBFT RPC address of a phala-node")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print machine-readable JSON instead of text")
	root.PersistentFlags().DurationVar(&g.timeout, "timeout", time.Minute, "give up on the node after this long")
	g.trust.register(root)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see `%s --help`)", err, c.CommandPath())
	})
	root.AddCommand(
		keyCmd(g), keysCmd(g),
		statusCmd(g), balanceCmd(g), transferCmd(g), txCmd(g), receiptCmd(g), blockCmd(g), rewardsCmd(g),
		workerCmd(g), workersCmd(g), gatekeepersCmd(g),
		gatekeeperCmd(g), eraCmd(g),
		contractCmd(g), pphaCmd(g), subnetCmd(g), govCmd(g), stakeCmd(g), devnetCmd(g), benchCmd(g), explorerCmd(g),
	)
	refuseUnknownSubcommands(root)
	return root
}

// refuseUnknownSubcommands makes every command group (a command with
// subcommands and no action of its own, the root included) print its help
// when called alone and fail with cobra's "unknown command" error, its
// suggestions and a pointer to --help when given anything else: cobra
// itself prints the help and exits 0 for `phala contract frobnicate`.
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = cobra.ArbitraryArgs // checked below, with suggestions
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		return unknownSubcommand(cmd, args[0])
	}
}

// unknownSubcommand is cobra's error for a command group given a name that
// is none of its subcommands, with its suggestions and a pointer to --help.
func unknownSubcommand(cmd *cobra.Command, name string) error {
	hint := ""
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, set only on its own path
	}
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		hint = "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return fmt.Errorf("unknown command %q for %q%s (see `%s --help` for its commands)", name, cmd.CommandPath(), hint, cmd.CommandPath())
}

// withArticle prefixes a name with its indefinite article as it is read:
// "an upload_contract", "a transfer" (by the first letter: the chain's
// call names start with no silent or "you"-sounding vowel).
func withArticle(name string) string {
	if name != "" && strings.ContainsRune("aeiouAEIOU", rune(name[0])) {
		return "an " + name
	}
	return "a " + name
}

// argCount says how many arguments were given: "1 argument", "2 arguments".
func argCount(n int) string {
	if n == 1 {
		return "1 argument"
	}
	return fmt.Sprintf("%d arguments", n)
}

// exactArgs is cobra.ExactArgs with a message naming what is missing.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %s, got %s (see `%s --help`)", cmd.CommandPath(), what, argCount(len(args)), cmd.CommandPath())
		}
		return nil
	}
}

// withTimeout returns the context of one command, ended by --timeout.
func (g *globals) withTimeout(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	if g.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, g.timeout)
}

// connect is the start of a command that reads or writes the chain: its
// context, ended by --timeout, and a client dialled to --node with the
// trust root (dial). The caller defers the returned cancel; on an error
// the context is already ended.
func (g *globals) connect(cmd *cobra.Command) (context.Context, *client.Client, context.CancelFunc, error) {
	ctx, cancel := g.withTimeout(cmd)
	c, err := g.dial(ctx)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return ctx, c, cancel, nil
}

// nodeURL accepts "host:port" for "http://host:port".
func (g *globals) nodeURL() string {
	if !strings.Contains(g.node, "://") {
		return "http://" + g.node
	}
	return g.node
}

// dial connects to --node with the trust root of the flags or the data
// directory (see trust.go), turning a node that does not answer into
// advice.
func (g *globals) dial(ctx context.Context) (*client.Client, error) {
	addr, opts, remember, err := g.clientOptions(ctx)
	if err != nil {
		return nil, err
	}
	c, err := client.DialOptions(ctx, addr, opts)
	if err != nil {
		return nil, g.nodeError(err)
	}
	if err := remember(c.ChainID()); err != nil {
		return nil, fmt.Errorf("remember the trust root in %s: %w", g.trust.dataDir, err)
	}
	return c, nil
}

// clientOptions checks --node and resolves the trust root.
func (g *globals) clientOptions(ctx context.Context) (string, client.Options, func(string) error, error) {
	addr := g.nodeURL()
	if u, err := url.Parse(addr); err != nil || u.Host == "" {
		return "", client.Options{}, nil, fmt.Errorf("--node %q is not an RPC address: give one such as %s", g.node, defaultNode)
	}
	opts, remember, err := g.trust.options(ctx, addr)
	if err != nil {
		return "", opts, nil, g.nodeError(err)
	}
	return addr, opts, remember, nil
}

// nodeError explains an error talking to the node: one that does not
// answer gets advice on starting one; anything else is returned as is.
func (g *globals) nodeError(err error) error {
	var unknown *client.UnknownOutcomeError
	if errors.As(err, &unknown) {
		return fmt.Errorf("transaction %X may have reached the chain, its result is unknown: %w\ncheck it with `phala tx %X` once the node answers, before sending the command again (a new transaction would be applied too)",
			unknown.Hash, g.nodeError(unknown.Err), unknown.Hash)
	}
	addr := g.nodeURL()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("node at %s did not answer within --timeout %s: is it reachable, and is its chain producing blocks? (proved reads wait for the next block) (%v)", addr, g.timeout, err)
	}
	if errors.Is(err, client.ErrUntrustedHeader) {
		return fmt.Errorf("the node at %s sent a header that does not verify from the trust root: the node lies, or it runs another chain under the same chain id (a new devnet records its genesis when `phala devnet` starts; for another chain give --genesis FILE or --trust-height/--trust-hash): %w", addr, err)
	}
	if !unreachable(err) {
		return err
	}
	detail := err.Error()
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		detail = opErr.Error() // the cause, without the layers of wrapping
	}
	if addr == defaultNode {
		return fmt.Errorf("node at %s does not answer: is a chain running? start a development network with `go run ./cmd/phala devnet` (README, quick start), or pass --node (%s)", addr, detail)
	}
	return fmt.Errorf("node at %s does not answer: is phala-node running there, and is --node its RPC address? start a development network with `go run ./cmd/phala devnet` (README, quick start) (%s)", addr, detail)
}

// unreachable reports whether err means the node could not be reached or
// dropped the connection (rather than answering with an error).
func unreachable(err error) bool {
	var opErr *net.OpError
	var urlErr *url.Error
	var dnsErr *net.DNSError
	return errors.As(err, &opErr) || errors.As(err, &urlErr) || errors.As(err, &dnsErr) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// output prints v as JSON with --json, else calls human.
func (g *globals) output(cmd *cobra.Command, v any, human func(w io.Writer)) error {
	w := cmd.OutOrStdout()
	if g.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	human(w)
	return nil
}
