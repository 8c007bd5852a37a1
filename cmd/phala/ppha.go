package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/examples/contracts/ppha/ppha"
)

// Private PHA (docs/interop.md "The pegged token"): the ppha example
// contract's steps as commands. Amounts are read and printed in PHA
// (pPHA is pegged 1:1, the same base units); the contract counts base
// units.

const pphaSymbol = "pPHA"

// ppAmount prints units of pPHA: "1.5 pPHA (1500000000000 units)".
func ppAmount(units uint64) string {
	unit := " units)"
	if units == 1 {
		unit = " unit)"
	}
	return formatAmount(units) + " " + pphaSymbol + " (" + strconv.FormatUint(units, 10) + unit
}

func pphaCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "ppha",
		Short: "Private PHA: PHA pegged 1:1 in a confidential contract (deposit, transfer privately, withdraw)",
		Long: `ppha works with the private PHA contract (examples/contracts/ppha;
docs/interop.md "The pegged token"): PHA sent to the contract's escrow
account becomes the same amount of private pPHA; pPHA moves between
accounts privately (sealed commands, padded to a multiple of ` + strconv.Itoa(ppha.InputBlock) + ` bytes:
the chain sees who sent a command, since that account signs and pays its
fee, but not the amount or the recipient); a withdrawal pays PHA out of the
escrow account to the account you linked (or to you).

Public by nature: a deposit's sender and amount, a withdrawal's amount and
payee (PHA moves on chain), and that an account sent a command to the
contract. Private: balances, transfer and send amounts and recipients,
history.

  deploy          upload the contract (once per chain)
  escrow-account  the contract's escrow account on chain
  deposit         PHA → pPHA (a transfer to the escrow account)
  link            the account your withdrawals pay to
  transfer        pPHA to an account, privately
  send            pPHA to a contract, which is told (e.g. the escrow example)
  withdraw        pPHA → PHA, paid by the chain from the escrow account
  balance, history  your own, only to you
  supply          all pPHA (public), next to the escrow account's PHA

Amounts are PHA with up to 12 decimals (1 pPHA = 1 PHA).`,
		Example: `  phala ppha deploy --from //Alice
  phala ppha deposit --from //Bob --contract 0x1ee8... 10
  phala ppha transfer --from //Bob --contract 0x1ee8... //Charlie 2.5
  phala ppha balance --from //Charlie --contract 0x1ee8...
  phala ppha withdraw --from //Charlie --contract 0x1ee8... 1`,
	}
	c.AddCommand(pphaDeployCmd(g), pphaEscrowAccountCmd(g), pphaDepositCmd(g), pphaLinkCmd(g), pphaTransferCmd(g), pphaSendCmd(g),
		pphaWithdrawCmd(g), pphaBalanceCmd(g), pphaHistoryCmd(g), pphaSupplyCmd(g))
	return c
}

// pphaAmount reads a positive amount of PHA.
func pphaAmount(s string) (uint64, error) {
	units, err := parseAmount(s)
	if err != nil {
		return 0, err
	}
	if units == 0 {
		return 0, errors.New("amount 0: give a positive amount of PHA (e.g. 1.5)")
	}
	return units, nil
}

// pphaFlags are the flags of the commands that talk to the contract.
type pphaFlags struct {
	from, contract string
	gas            uint64
}

// The kinds of ppha subcommands, by the flags they take.
const (
	pphaQueryFlags   = iota // --from signs a query about that account
	pphaCommandFlags        // --from signs and pays a sealed command; --gas
	pphaTxFlags             // --from signs and pays a plain transaction (no gas)
)

func (f *pphaFlags) register(c *cobra.Command, kind int) {
	// (No backquotes in flag usages: pflag would take the quoted text as
	// the flag's value name.)
	c.Flags().StringVar(&f.contract, "contract", "", "the ppha contract's id (the 0x... that phala ppha deploy printed)")
	switch kind {
	case pphaCommandFlags:
		c.Flags().StringVar(&f.from, "from", "", "secret URI of your account (pays the fee; the contract's caller), or - for stdin")
		c.Flags().Uint64Var(&f.gas, "gas", 0, fmt.Sprintf("gas limit of the command (0: the chain's max_command_gas / %d)", client.DefaultGasFraction))
	case pphaTxFlags:
		c.Flags().StringVar(&f.from, "from", "", "secret URI of your account (pays the amount and the fee), or - for stdin")
	default:
		c.Flags().StringVar(&f.from, "from", "", "secret URI of your account (signs the query: the contract answers about this account only), or - for stdin")
	}
}

// checkMemo refuses, before anything is sent (and paid for), a memo the
// contract refuses: 1 to ppha.MaxMemoBytes bytes of printable ASCII.
func checkMemo(memo string) error {
	if len(memo) == 0 || len(memo) > ppha.MaxMemoBytes {
		return fmt.Errorf("the memo has %d bytes: the contract takes 1 to %d", len(memo), ppha.MaxMemoBytes)
	}
	for i := 0; i < len(memo); i++ {
		if memo[i] < 0x20 || memo[i] > 0x7e {
			return fmt.Errorf("the memo has a byte 0x%02x at %d: the contract takes printable ASCII only", memo[i], i)
		}
	}
	return nil
}

// checkRecipient is the package function for --contract's contract.
func (f *pphaFlags) checkRecipient(g *globals, cmd *cobra.Command, to crypto.PublicKey, what string) error {
	self, err := parseContractID(f.contract)
	if err != nil {
		return fmt.Errorf("--contract: %w", err)
	}
	ctx, cl, cancel, err := g.connect(cmd)
	if err != nil {
		return err
	}
	defer cancel()
	return checkRecipient(ctx, g, cl, self, to, what)
}

// checkRecipient refuses, before anything is sent, an account pPHA or PHA
// could never leave: the contract itself or any contract (their ids hold
// no key anyone signs with; pPHA goes to a contract with send), and any
// contract's escrow account (only payouts of its own contract move it).
func checkRecipient(ctx context.Context, g *globals, cl *client.Client, self, to crypto.PublicKey, what string) error {
	switch {
	case to == self:
		return fmt.Errorf("%s %s is this ppha contract itself: nobody could spend it", what, to.Address())
	case to == api.EscrowAccount(self):
		return fmt.Errorf("%s %s is this contract's escrow account: nobody could spend it (withdraw pays PHA out of it)", what, to.Address())
	}
	if rec, err := cl.Contract(ctx, to); err == nil && rec != nil {
		return fmt.Errorf("%s %s is a contract: send it pPHA with phala ppha send (it is then told), not to its id", what, to.Address())
	} else if err != nil && !errors.Is(err, client.ErrNoSuchContract) {
		return g.nodeError(err)
	}
	owner, ok, err := cl.EscrowOwner(ctx, to)
	if err != nil {
		return g.nodeError(err)
	}
	if ok {
		return fmt.Errorf("%s %s is the escrow account of contract %s: only that contract's payouts move it, and it takes PHA only as deposits", what, to.Address(), owner.Hex())
	}
	return nil
}

// check reads --contract and --from before anything is sent.
func (f *pphaFlags) check(cmd *cobra.Command) (crypto.PublicKey, *crypto.KeyPair, error) {
	if f.contract == "" {
		return crypto.PublicKey{}, nil, errors.New("--contract is required: the ppha contract's id (`phala ppha deploy` printed it)")
	}
	id, err := parseContractID(f.contract)
	if err != nil {
		return id, nil, fmt.Errorf("--contract: %w", err)
	}
	key, err := signerKey(cmd, f.from)
	return id, key, err
}

// execute sends input to the contract as a sealed command and waits for
// its receipt; a refused command is an error carrying the contract's
// message.
func (f *pphaFlags) execute(g *globals, cmd *cobra.Command, key *crypto.KeyPair, input string, minGas uint64) (*client.Receipt, [32]byte, error) {
	ctx, cancel := g.withTimeout(cmd)
	defer cancel()
	cl, rec, err := g.contract(cmd, ctx, f.contract)
	if err != nil {
		return nil, [32]byte{}, err
	}
	gas := f.gas
	if gas == 0 {
		gas = max(cl.DefaultGasLimit(), minGas)
	}
	if max := cl.Params().MaxCommandGas; gas > max {
		return nil, [32]byte{}, fmt.Errorf("--gas %d exceeds the chain's max_command_gas %d", gas, max)
	}
	if gas < minGas {
		return nil, [32]byte{}, fmt.Errorf("--gas %d is too little: this command forwards %d gas to the receiving contract", gas, ppha.SendGas)
	}
	r, res, err := cl.NewSigner(key).Execute(ctx, rec, []byte(ppha.Pad(input)), client.WithGas(gas))
	if err != nil {
		if res != nil {
			return nil, res.Hash, fmt.Errorf("command committed at height %d (tx %x), its receipt: %w\nretry with `phala receipt %x --from ...`", res.Height, res.Hash, err, res.Hash)
		}
		return nil, [32]byte{}, fmt.Errorf("command: %w", g.nodeError(err))
	}
	if err := r.Err(); err != nil {
		return r, res.Hash, err
	}
	return r, res.Hash, nil
}

// done prints a command's outcome: what, the block and the gas.
func done(g *globals, cmd *cobra.Command, r *client.Receipt, tx [32]byte, extra map[string]any, what string) error {
	out := map[string]any{"tx": fmt.Sprintf("%x", tx), "height": r.Height, "gas_used": r.GasUsed, "gas_limit": r.GasLimit, "output": string(r.Output)}
	for k, v := range extra {
		out[k] = v
	}
	return g.output(cmd, out, func(w io.Writer) {
		fmt.Fprintf(w, "%s at block %d (gas %d of %d, tx %x)\n", what, r.Height, r.GasUsed, r.GasLimit, tx)
	})
}

func pphaDeployCmd(g *globals) *cobra.Command {
	var from, code string
	var replicas uint8
	c := &cobra.Command{
		Use:   "deploy --from <secret-uri> [--code <dir | .wasm>]",
		Short: "Upload the private PHA contract and print its id and escrow account",
		Long: `deploy uploads the ppha contract (by default built from
examples/contracts/ppha with GOOS=wasip1 GOARCH=wasm: run it from the
repository, or give --code) like ` + "`phala contract upload`" + `, waits until its
workers run it, and prints its id (what --contract takes) and its escrow
account (where deposits go). Each deployment is a separate token with its
own escrow account.

The escrow example (examples/contracts/escrow) composes with it:
  phala contract upload --from //Alice --init <ppha id> ./examples/contracts/escrow`,
		Example: `  phala ppha deploy --from //Alice
  phala ppha deploy --from //Alice --replicas 2 --code ./ppha.wasm`,
		Args: exactArgs(0, "no arguments (use --from)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := signerKey(cmd, from)
			if err != nil {
				return err
			}
			if code == "" {
				code = filepath.Join("examples", "contracts", "ppha")
				if _, err := os.Stat(code); err != nil {
					return fmt.Errorf("no %s here: run deploy from the repository, or give --code (a .wasm or the contract's directory)", code)
				}
			}
			wasm, err := loadCode(code)
			if err != nil {
				return err
			}
			ctx, cl, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			upload, res, err := cl.NewSigner(key).UploadWith(ctx, wasm, client.UploadOptions{Replicas: replicas})
			if err != nil {
				return fmt.Errorf("upload: %w", g.nodeError(err))
			}
			errw := cmd.ErrOrStderr()
			fmt.Fprintf(errw, "upload %x committed at height %d (tx %x)\n", upload, res.Height, res.Hash)
			rec, err := cl.WaitContractProgress(ctx, upload, func(st *client.UploadStatus) {
				fmt.Fprintf(errw, "%s: %s\n", st.State(), st.Reason)
			})
			if err != nil {
				return err
			}
			escrow := api.EscrowAccount(rec.Identity)
			out := contractJSON(rec, res.Height)
			out["escrow"], out["escrow_hex"] = escrow.Address(), escrow.Hex()
			return g.output(cmd, out, func(w io.Writer) {
				fmt.Fprintf(w, "ppha contract %s running on %d worker(s) (upload at height %d)\n", rec.Identity.Hex(), len(rec.Workers), res.Height)
				fmt.Fprintf(w, "escrow account: %s (%s)\n", escrow.Address(), escrow.Hex())
				fmt.Fprintf(w, "deposit with: phala ppha deposit --from <you> --contract %s <PHA>\n", rec.Identity.Hex())
			})
		},
	}
	c.Flags().StringVar(&from, "from", "", "secret URI of the deployer (pays the fee), or - for stdin")
	c.Flags().StringVar(&code, "code", "", "the contract: a .wasm file or its Go directory (default examples/contracts/ppha, built)")
	c.Flags().Uint8Var(&replicas, "replicas", 1, "number of workers to run the contract")
	return c
}

func pphaEscrowAccountCmd(g *globals) *cobra.Command {
	var contract string
	c := &cobra.Command{
		Use:   "escrow-account --contract <id>",
		Short: "Print a contract's escrow account (where PHA deposits to it go)",
		Long: `escrow-account prints the escrow account of a contract (api.EscrowAccount:
derived from the contract's id; nobody holds its secret key, so PHA leaves it
only by the contract's payouts, executed by the chain). A PHA transfer to it
is delivered to the contract as a deposit. It needs no node.`,
		Example: `  phala ppha escrow-account --contract 0x1ee8...`,
		Args:    exactArgs(0, "no arguments (use --contract)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if contract == "" {
				return errors.New("--contract is required: a contract id (0x...)")
			}
			id, err := parseContractID(contract)
			if err != nil {
				return fmt.Errorf("--contract: %w", err)
			}
			e := api.EscrowAccount(id)
			return g.output(cmd, map[string]any{"contract": id.Hex(), "escrow": e.Address(), "escrow_hex": e.Hex()}, func(w io.Writer) {
				fmt.Fprintf(w, "%s\n%s\n", e.Address(), e.Hex())
			})
		},
	}
	c.Flags().StringVar(&contract, "contract", "", "the contract's id (0x...)")
	return c
}

func pphaDepositCmd(g *globals) *cobra.Command {
	var f pphaFlags
	c := &cobra.Command{
		Use:   "deposit --from <secret-uri> --contract <id> <PHA>",
		Short: "Deposit PHA: transfer it to the contract's escrow account, credited to you as pPHA",
		Long: `deposit transfers <PHA> from --from to the contract's escrow account (a
plain PHA transfer, public on chain: sender and amount) and waits until a
block commits it. The chain delivers it to the contract in the same block,
which credits --from with the same amount of pPHA (see ` + "`phala ppha balance`" + `).
A contract that refuses a deposit has it paid back. deposit first checks
the contract exists and has not failed: PHA sent to the escrow account of
no contract could never leave it.`,
		Example: `  phala ppha deposit --from //Bob --contract 0x1ee8... 10
  phala ppha deposit --from //Bob --contract 0x1ee8... 0.25 --json`,
		Args: exactArgs(1, "an amount of PHA"),
		RunE: func(cmd *cobra.Command, args []string) error {
			units, err := pphaAmount(args[0])
			if err != nil {
				return err
			}
			id, key, err := f.check(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := g.withTimeout(cmd)
			defer cancel()
			cl, _, err := g.contract(cmd, ctx, f.contract)
			if err != nil {
				return err
			}
			escrow := api.EscrowAccount(id)
			res, fee, err := payPHA(ctx, g, cl, key, escrow, units)
			if err != nil {
				return err
			}
			return g.output(cmd, map[string]any{"tx": fmt.Sprintf("%X", res.Hash), "height": res.Height, "from": key.Public().Address(), "escrow": escrow.Address(),
				"amount": strconv.FormatUint(units, 10), "amount_pha": formatAmount(units), "fee": strconv.FormatUint(fee, 10)}, func(w io.Writer) {
				fmt.Fprintf(w, "deposited %s from %s to the escrow account %s at block %d (fee %s, tx %X)\n", api.FormatAmountUnits(units), key.Public().Address(), escrow.Address(), res.Height, pha(fee), res.Hash)
				fmt.Fprintf(w, "a ppha contract credits it as %s in the same block (phala ppha balance --from ... --contract %s shows it); a contract that takes no deposits pays it back\n", ppAmount(units), id.Hex())
			})
		},
	}
	f.register(c, pphaTxFlags)
	return c
}

// payPHA transfers units of PHA from key to dst, paying the minimum fee,
// and waits for the block; it returns the result and the fee.
func payPHA(ctx context.Context, g *globals, c *client.Client, key *crypto.KeyPair, dst crypto.PublicKey, units uint64) (*client.TxResult, uint64, error) {
	acct, err := c.Account(ctx, key.Public())
	if err != nil {
		return nil, 0, g.nodeError(err)
	}
	tx := client.BuildTx(c.ChainID(), c.Params(), key, acct.Nonce, &api.Transfer{To: dst, Amount: units})
	if acct.Balance < tx.Fee || acct.Balance-tx.Fee < units {
		return nil, 0, insufficient(key.Public(), acct.Balance, units, tx.Fee)
	}
	hash, err := c.Broadcast(ctx, tx.Encode())
	if err != nil {
		var refused *api.TxError
		if errors.As(err, &refused) {
			return nil, 0, fmt.Errorf("the node refused the transfer (%s): %s", refused.Code, refused.Log)
		}
		return nil, 0, g.nodeError(err)
	}
	res, err := c.WaitTx(ctx, hash)
	if err != nil {
		return nil, 0, fmt.Errorf("transfer %X was accepted by the node but not committed within --timeout %s: %w", hash, g.timeout, err)
	}
	if res.Code != api.CodeOK {
		return nil, 0, fmt.Errorf("the transfer failed in block %d (%s): %s; the fee of %s was paid", res.Height, res.Code, res.Log, pha(tx.Fee))
	}
	return res, tx.Fee, nil
}

func pphaLinkCmd(g *globals) *cobra.Command {
	var f pphaFlags
	c := &cobra.Command{
		Use:   "link --from <secret-uri> --contract <id> <account>",
		Short: "Link the account your withdrawals pay to (default: yours)",
		Long: `link tells the contract, privately, which account --from's withdrawals pay
PHA to; link your own account to undo it. The account is an SS58 address,
0x-hex or a development account such as //Dave.`,
		Example: `  phala ppha link --from //Bob --contract 0x1ee8... 5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty`,
		Args:    exactArgs(1, "an account"),
		RunE: func(cmd *cobra.Command, args []string) error {
			to, err := parseAccount("account", args[0])
			if err != nil {
				return err
			}
			_, key, err := f.check(cmd)
			if err != nil {
				return err
			}
			if err := f.checkRecipient(g, cmd, to, "account"); err != nil {
				return err
			}
			r, tx, err := f.execute(g, cmd, key, "link "+to.Hex(), 0)
			if err != nil {
				return err
			}
			return done(g, cmd, r, tx, map[string]any{"linked": to.Address()}, "withdrawals of "+key.Public().Address()+" pay to "+to.Address())
		},
	}
	f.register(c, pphaCommandFlags)
	return c
}

func pphaTransferCmd(g *globals) *cobra.Command {
	var f pphaFlags
	c := &cobra.Command{
		Use:   "transfer --from <secret-uri> --contract <id> <to> <PHA>",
		Short: "Transfer pPHA privately",
		Long: `transfer moves <PHA> of pPHA from --from to <to> inside the contract. The
command is sealed to the contract: the chain sees its size, not the amount
or the parties. <to> is an SS58 address, 0x-hex or a development account.`,
		Example: `  phala ppha transfer --from //Bob --contract 0x1ee8... //Charlie 2.5`,
		Args:    exactArgs(2, "a recipient and an amount of PHA"),
		RunE: func(cmd *cobra.Command, args []string) error {
			to, err := parseAccount("recipient", args[0])
			if err != nil {
				return err
			}
			units, err := pphaAmount(args[1])
			if err != nil {
				return err
			}
			_, key, err := f.check(cmd)
			if err != nil {
				return err
			}
			if err := f.checkRecipient(g, cmd, to, "recipient"); err != nil {
				return err
			}
			r, tx, err := f.execute(g, cmd, key, "transfer "+to.Hex()+" "+strconv.FormatUint(units, 10), 0)
			if err != nil {
				return err
			}
			return done(g, cmd, r, tx, map[string]any{"to": to.Address(), "amount": strconv.FormatUint(units, 10), "amount_pha": formatAmount(units)},
				"transferred "+ppAmount(units)+" to "+to.Address())
		},
	}
	f.register(c, pphaCommandFlags)
	return c
}

func pphaSendCmd(g *globals) *cobra.Command {
	var f pphaFlags
	c := &cobra.Command{
		Use:   "send --from <secret-uri> --contract <id> <contract> <PHA> <memo...>",
		Short: "Send pPHA to a contract, which is told who sent how much and the memo",
		Long: `send moves <PHA> of pPHA from --from to the balance of <contract> (another
contract) and calls it, sealed, with "received <from> <amount> <memo>" and
` + strconv.Itoa(ppha.SendGas) + ` gas out of this command's own limit (so the default --gas is
at least that plus the send's own). The memo is the rest of the line,
printable ASCII; the receiving contract decides what it means (the escrow
example takes "deal <id> <payee> [<amount>]", the payee as 0x-hex: see
` + "`phala key inspect`" + `; the amount in base units).`,
		Example: `  phala ppha send --from //Bob --contract 0x1ee8... 0x77ab... 5 deal rent-may 0x8eaf...a48`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 3 {
				return fmt.Errorf("%s takes a contract, an amount of PHA and a memo, got %s (see `%s --help`)", cmd.CommandPath(), argCount(len(args)), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			to, err := parseContractID(args[0])
			if err != nil {
				return err
			}
			units, err := pphaAmount(args[1])
			if err != nil {
				return err
			}
			memo := strings.Join(args[2:], " ")
			if err := checkMemo(memo); err != nil {
				return err
			}
			_, key, err := f.check(cmd)
			if err != nil {
				return err
			}
			r, tx, err := f.execute(g, cmd, key, "send "+to.Hex()+" "+strconv.FormatUint(units, 10)+" "+memo, ppha.SendGas+1_000_000)
			if err != nil {
				return err
			}
			return done(g, cmd, r, tx, map[string]any{"to": to.Hex(), "amount": strconv.FormatUint(units, 10), "amount_pha": formatAmount(units), "memo": memo},
				"sent "+ppAmount(units)+" to contract "+to.Hex())
		},
	}
	f.register(c, pphaCommandFlags)
	return c
}

func pphaWithdrawCmd(g *globals) *cobra.Command {
	var f pphaFlags
	c := &cobra.Command{
		Use:   "withdraw --from <secret-uri> --contract <id> <PHA>",
		Short: "Withdraw pPHA as PHA, paid from the escrow account to your linked account",
		Long: `withdraw debits <PHA> of pPHA from --from and has the contract ask the chain
to pay the same PHA out of its escrow account to the linked account (` + "`phala\nppha link`" + `; by default --from itself). The payout is public on chain
(amount and payee). The chain executes it in a later block; if it refuses
it, the amount is credited back. ` + "`phala ppha history`" + ` shows the outcome.`,
		Example: `  phala ppha withdraw --from //Charlie --contract 0x1ee8... 1`,
		Args:    exactArgs(1, "an amount of PHA"),
		RunE: func(cmd *cobra.Command, args []string) error {
			units, err := pphaAmount(args[0])
			if err != nil {
				return err
			}
			_, key, err := f.check(cmd)
			if err != nil {
				return err
			}
			r, tx, err := f.execute(g, cmd, key, "withdraw "+strconv.FormatUint(units, 10), 0)
			if err != nil {
				return err
			}
			return done(g, cmd, r, tx, map[string]any{"amount": strconv.FormatUint(units, 10), "amount_pha": formatAmount(units)},
				"withdrawing "+ppAmount(units)+" ("+string(r.Output)+"; `phala ppha history` shows when it is paid)")
		},
	}
	f.register(c, pphaCommandFlags)
	return c
}

// pphaQuery sends a query to the contract (signed by key) and returns its
// answer and the height it reflects.
func pphaQuery(g *globals, cmd *cobra.Command, contract string, key *crypto.KeyPair, q string) (string, int64, error) {
	ctx, cancel := g.withTimeout(cmd)
	defer cancel()
	cl, rec, err := g.contract(cmd, ctx, contract)
	if err != nil {
		return "", 0, err
	}
	out, height, err := cl.QueryContract(ctx, key, rec, []byte(q))
	if errors.Is(err, client.ErrQueryFailed) {
		// ppha refuses none of the queries this CLI sends: another contract did.
		return "", 0, fmt.Errorf("query: %w\n(is --contract a ppha contract? ppha answers balance, history, link and supply)", err)
	}
	if err != nil {
		return "", 0, fmt.Errorf("query: %w", err)
	}
	return string(out), height, nil
}

func pphaBalanceCmd(g *globals) *cobra.Command {
	var f pphaFlags
	c := &cobra.Command{
		Use:   "balance --from <secret-uri> --contract <id>",
		Short: "Your pPHA balance (told only to you)",
		Long: `balance asks a worker running the contract for --from's balance, in a
query signed by --from and answered sealed to it: nobody else learns it.`,
		Example: `  phala ppha balance --from //Charlie --contract 0x1ee8...`,
		Args:    exactArgs(0, "no arguments (use --from and --contract)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, key, err := f.check(cmd)
			if err != nil {
				return err
			}
			out, height, err := pphaQuery(g, cmd, f.contract, key, "balance")
			if err != nil {
				return err
			}
			units, err := strconv.ParseUint(out, 10, 64)
			if err != nil {
				return fmt.Errorf("the contract answered %q, not an amount: is --contract a ppha contract?", out)
			}
			return g.output(cmd, map[string]any{"account": key.Public().Address(), "balance": out, "balance_pha": formatAmount(units), "height": height}, func(w io.Writer) {
				fmt.Fprintf(w, "%s\n(as of block %d)\n", ppAmount(units), height)
			})
		},
	}
	f.register(c, pphaQueryFlags)
	return c
}

// historyLine renders a history entry's amount ("deposit 500 from ...",
// "transfer -20 to ...") in PHA as well.
func historyLine(line string) string {
	f := strings.SplitN(line, " ", 3)
	if len(f) < 2 {
		return line
	}
	sign, digits := "", f[1]
	if digits != "" && (digits[0] == '+' || digits[0] == '-') {
		sign, digits = digits[:1], digits[1:]
	}
	units, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return line
	}
	rest := ""
	if len(f) == 3 {
		rest = " " + f[2]
	}
	return f[0] + " " + sign + formatAmount(units) + " " + pphaSymbol + rest
}

func pphaHistoryCmd(g *globals) *cobra.Command {
	var f pphaFlags
	c := &cobra.Command{
		Use:   "history --from <secret-uri> --contract <id>",
		Short: "Your pPHA history (told only to you), oldest first",
		Long: `history prints --from's last ` + strconv.Itoa(ppha.HistoryLen) + ` entries (deposits, transfers in and out,
sends, links, withdrawals and their outcome), oldest first, amounts in
PHA; --json gives the contract's lines as they are (amounts in base units).`,
		Example: `  phala ppha history --from //Bob --contract 0x1ee8...`,
		Args:    exactArgs(0, "no arguments (use --from and --contract)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, key, err := f.check(cmd)
			if err != nil {
				return err
			}
			out, height, err := pphaQuery(g, cmd, f.contract, key, "history")
			if err != nil {
				return err
			}
			lines := []string{}
			for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				if l != "" {
					lines = append(lines, l)
				}
			}
			return g.output(cmd, map[string]any{"account": key.Public().Address(), "entries": lines, "height": height}, func(w io.Writer) {
				for _, l := range lines {
					fmt.Fprintln(w, historyLine(l))
				}
				if len(lines) == 0 {
					fmt.Fprintln(w, "no entries")
				}
				fmt.Fprintf(w, "(as of block %d)\n", height)
			})
		},
	}
	f.register(c, pphaQueryFlags)
	return c
}

func pphaSupplyCmd(g *globals) *cobra.Command {
	var f pphaFlags
	c := &cobra.Command{
		Use:   "supply --contract <id> [--from <secret-uri>]",
		Short: "All pPHA (public), next to the PHA its escrow account holds",
		Long: `supply asks the contract for the total pPHA: the balances plus the
withdrawals not yet paid. It is public (--from only signs the query; a
fresh key is used without it). supply also reads the escrow account's PHA
balance on chain, proved, after the same block as the contract's answer, and
says whether the two are equal (the peg's invariant, which holds at every
block).`,
		Example: `  phala ppha supply --contract 0x1ee8...`,
		Args:    exactArgs(0, "no arguments (use --contract)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := queryKey(cmd, f.from)
			if err != nil {
				return err
			}
			return pphaSupply(g, cmd, &f, key)
		},
	}
	f.register(c, pphaQueryFlags)
	c.Flags().Lookup("from").Usage = "secret URI of the key that signs the query (optional: the supply is public, a fresh key is used without it), or - for stdin"
	return c
}

// queryKey is --from's key, or a fresh one for a public query.
func queryKey(cmd *cobra.Command, from string) (*crypto.KeyPair, error) {
	if from == "" {
		kp, _, err := crypto.GenerateKeyPair()
		return kp, err
	}
	return signerKey(cmd, from)
}

func pphaSupply(g *globals, cmd *cobra.Command, f *pphaFlags, key *crypto.KeyPair) error {
	if f.contract == "" {
		return errors.New("--contract is required: the ppha contract's id (`phala ppha deploy` printed it)")
	}
	id, err := parseContractID(f.contract)
	if err != nil {
		return fmt.Errorf("--contract: %w", err)
	}
	out, height, err := pphaQuery(g, cmd, f.contract, key, "supply")
	if err != nil {
		return err
	}
	units, err := strconv.ParseUint(out, 10, 64)
	if err != nil {
		return fmt.Errorf("the contract answered %q, not an amount: is --contract a ppha contract?", out)
	}
	ctx, cl, cancel, err := g.connect(cmd)
	if err != nil {
		return err
	}
	defer cancel()
	// The escrow's balance after the same block the supply reflects,
	// proved: the two must be equal (docs/interop.md, "The invariant").
	escrow := api.EscrowAccount(id)
	pv, err := cl.ProveAt(ctx, api.QueryAccount, escrow[:], height)
	if err != nil {
		return g.nodeError(fmt.Errorf("the escrow account at block %d: %w", height, err))
	}
	var bal uint64
	if pv.Value != nil {
		a, err := api.DecodeAccount(pv.Value)
		if err != nil {
			return err
		}
		bal = a.Balance
	}
	holds := "holds: supply = escrow balance"
	if bal != units {
		holds = "BROKEN: supply ≠ escrow balance"
	}
	return g.output(cmd, map[string]any{"supply": out, "supply_pha": formatAmount(units), "height": height, "escrow": escrow.Address(),
		"escrow_balance": strconv.FormatUint(bal, 10), "escrow_balance_pha": formatAmount(bal), "invariant": bal == units}, func(w io.Writer) {
		fmt.Fprintf(w, "supply: %s\nescrow: %s holds %s\nboth after block %d; the invariant %s\n", ppAmount(units), escrow.Address(), api.FormatAmountUnits(bal), height, holds)
	})
}
