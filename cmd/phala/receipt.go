package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
)

// receiptCmd is cast's `receipt` for contract commands: what became of a
// command sent earlier (by any process), from its transaction hash.
func receiptCmd(g *globals) *cobra.Command {
	var from string
	c := &cobra.Command{
		Use:   "receipt <tx hash>",
		Short: "Show the receipt of a contract command: the contract's output or error, gas, block",
		Long: `receipt looks up a committed contract command by its transaction hash
(proved, like ` + "`phala tx`" + `), asks a worker running the contract for the
command's receipt, checks that the contract signed it, and opens it with
--from, which must be the command's sender: a receipt is sealed to its
sender (and the contract), nobody else can read it. It prints the
contract's output, the gas used and the block; it exits non-zero when the
contract refused the command.

Workers keep the receipts of each contract's latest 16,384 commands (fewer
when outputs are large), across restarts; an older receipt is gone.`,
		Example: `  phala receipt 3f0a9c...e1 --from //Bob`,
		Args:    exactArgs(1, "one transaction hash"),
		RunE: func(cmd *cobra.Command, args []string) error {
			hash, err := parseTxHash(args[0])
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
			info, err := cl.Tx(ctx, hash)
			if errors.Is(err, client.ErrTxNotFound) {
				return fmt.Errorf("no transaction %X on the node at %s: it was never committed there (a refused or dropped transaction is not kept), or the node does not index transactions", hash, g.nodeURL())
			}
			if err != nil {
				return g.nodeError(err)
			}
			if info.Tx == nil {
				return fmt.Errorf("transaction %X does not decode: %v", hash, info.DecodeErr)
			}
			cc, ok := info.Tx.Call.(*api.ContractCommand)
			if !ok {
				return fmt.Errorf("transaction %X is %s, not a contract command: only commands have receipts (see `phala tx %X`)", hash, withArticle(info.Tx.Call.Kind().String()), hash)
			}
			if info.Code != api.CodeOK {
				return fmt.Errorf("transaction %X failed on chain (code %d: %s): the command never reached the contract", hash, info.Code, info.Log)
			}
			if info.Tx.Signer != key.Public() {
				return fmt.Errorf("%w: transaction %X was sent by %s, --from is %s: only the sender's key opens its receipt", client.ErrNotYourReceipt, hash, info.Tx.Signer.Address(), key.Public().Address())
			}
			rec, err := cl.Contract(ctx, cc.Contract)
			if err != nil {
				return g.nodeError(err)
			}
			r, err := cl.Receipt(ctx, key, rec, cc.Nonce, info.Height)
			if err != nil {
				return fmt.Errorf("receipt of %X: %w", hash, err)
			}
			r.GasLimit = cc.GasLimit
			return printReceipt(g, cmd, r, hash)
		},
	}
	c.Flags().StringVar(&from, "from", "", "secret URI of the command's sender (its key opens the receipt), or - for stdin")
	return c
}
