package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/contractbuild"
)

// Commands of confidential contracts: upload, command, query, show,
// watch, checkpoints, reassign, arbitrate, arbitration.

func contractCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "contract",
		Short: "Upload confidential contracts, send them encrypted commands, query them",
		Long: `contract works with confidential contracts. Commands go through the chain,
encrypted to the contract (only the enclave running it can read them);
queries go straight to a worker running the contract, encrypted, and are
answered encrypted and signed by the contract.`,
	}
	c.AddCommand(contractUploadCmd(g), contractCommandCmd(g), contractQueryCmd(g), contractShowCmd(g), contractWatchCmd(g), contractCheckpointCmd(g), contractReassignCmd(g), contractArbitrateCmd(g), contractArbitrationCmd(g))
	return c
}

func contractUploadCmd(g *globals) *cobra.Command {
	var from, initInput string
	var replicas uint8
	var execTimeout, checkpointInterval uint64
	var reqs requirementFlags
	c := &cobra.Command{
		Use:   "upload <contract.wasm | go contract directory>",
		Short: "Upload a contract and wait until its workers run it (or report why they cannot)",
		Long: `upload uploads WebAssembly contract code (a .wasm file, or a Go contract
directory, which is built with GOOS=wasip1 GOARCH=wasm first). A gatekeeper
derives the contract's keys and provisions them to --replicas registered
workers, which validate, instantiate and initialize it and report the outcome
on chain. upload waits for that and prints the contract's id (its identity
key), which commands and queries address.

While the upload waits (no worker registered, no gatekeeper holding the
MasterKey yet, a grant on its way) upload says why on standard error. If the
workers report the contract failed (a module that does not validate, a start
function or init that traps, runs out of gas or returns an error) upload
exits non-zero with the reason the chain recorded; commands to it are
refused.

Deployment requirements confine it to some workers: --subnet (members of a
subnet, see ` + "`phala subnet`" + `), --platform, --min-cores, --min-memory-mb,
--min-runtime-version (as the workers declare them in their attested
registration). While no registered worker satisfies them the upload stays
pending, and upload says which requirement is unmet.`,
		Example: `  phala contract upload --from //Alice ./examples/contracts/token
  phala contract upload --from //Alice --subnet 3f1c...9a --platform tdx --min-cores 4 ./examples/contracts/token`,
		Args: exactArgs(1, "a .wasm file or a contract directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := signerKey(cmd, from)
			if err != nil {
				return err
			}
			req, err := reqs.requirements()
			if err != nil {
				return err
			}
			code, err := loadCode(args[0])
			if err != nil {
				return err
			}
			ctx, cl, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			upload, res, err := cl.NewSigner(key).UploadWith(ctx, code, client.UploadOptions{Replicas: replicas, InitInput: []byte(initInput), ExecTimeout: execTimeout, CheckpointInterval: checkpointInterval, Requirements: req})
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
			return g.output(cmd, contractJSON(rec, res.Height), func(w io.Writer) {
				fmt.Fprintf(w, "contract %s running on %d worker(s) (upload at height %d)\n", rec.Identity.Hex(), len(rec.Workers), res.Height)
				printContract(w, rec, nil)
			})
		},
	}
	c.Flags().StringVar(&from, "from", "", "secret URI of the deployer (pays the fee; becomes the caller of init), or - for stdin")
	c.Flags().Uint8Var(&replicas, "replicas", 1, "number of workers to run the contract")
	c.Flags().StringVar(&initInput, "init", "", "input of the contract's init (PUBLIC: it travels in plaintext with the code; send secrets as commands)")
	reqs.register(c)
	c.Flags().Uint64Var(&checkpointInterval, "checkpoint-interval", 0, fmt.Sprintf("blocks between the contract's state updates on chain (its encrypted entries, merged; 0: the default %d, at most %d)", api.DefaultCheckpointInterval, api.MaxCheckpointInterval))
	c.Flags().Uint64Var(&execTimeout, "exec-timeout", 0, "execution timeout in blocks: a replica that has not acknowledged executing a command within it pays the chain's timeout penalty (0: none)")
	return c
}

func contractCommandCmd(g *globals) *cobra.Command {
	var from string
	var noWait bool
	var gas uint64
	c := &cobra.Command{
		Use:   "command <contract id> <input>",
		Short: "Send an encrypted command to a contract through the chain and print its receipt",
		Long: `command seals <input> to the contract (CommKey between --from and the
contract's ECDH key) and submits it as a transaction; the contract's workers
execute it in chain order. The chain, relayers and workers' operators see
only ciphertext.

Then it waits for the command's receipt from a worker running the contract
(sealed to --from, signed by the contract) and prints the contract's output,
the gas used (of the declared --gas limit) and the block. The command pays
for its whole gas limit with its fee (gas_price_per_mgas per million gas,
see ` + "`phala status`" + `), whether it succeeds or runs out of gas; a block
admits a bounded amount of gas per worker, and a command that does not fit
is sent again in the next block. It exits non-zero when the contract refused the
command, printing the contract's message. --no-wait stops once the
transaction is committed; ` + "`phala receipt <tx>`" + ` fetches the receipt later.`,
		Example: `  phala contract command --from //Alice 0x1ee8... "mint 0x8eaf...a48 100"
  phala contract command --from //Bob --no-wait 0x1ee8... "transfer 0xd435...7d 5"`,
		Args: exactArgs(2, "a contract id and an input"),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := signerKey(cmd, from)
			if err != nil {
				return err
			}
			ctx, cancel := g.withTimeout(cmd)
			defer cancel()
			cl, rec, err := g.contract(cmd, ctx, args[0])
			if err != nil {
				return err
			}
			if gas == 0 {
				gas = cl.DefaultGasLimit()
			}
			if max := cl.Params().MaxCommandGas; gas > max {
				return fmt.Errorf("--gas %d exceeds the chain's max_command_gas %d", gas, max)
			}
			res, err := cl.NewSigner(key).Command(ctx, rec, []byte(args[1]), client.WithGas(gas))
			if err != nil {
				return fmt.Errorf("command: %w", g.nodeError(err))
			}
			if noWait {
				return g.output(cmd, map[string]any{"tx": hex.EncodeToString(res.Hash[:]), "height": res.Height, "nonce": res.Nonce}, func(w io.Writer) {
					fmt.Fprintf(w, "command committed at height %d (tx %x); the workers execute it in order: `phala receipt %x --from ...` shows what became of it\n", res.Height, res.Hash, res.Hash)
				})
			}
			r, err := cl.Receipt(ctx, key, rec, res.Nonce, res.Height)
			if err != nil {
				return fmt.Errorf("command committed at height %d (tx %x), its receipt: %w\nretry with `phala receipt %x --from ...`", res.Height, res.Hash, err, res.Hash)
			}
			r.GasLimit = gas
			return printReceipt(g, cmd, r, res.Hash)
		},
	}
	c.Flags().StringVar(&from, "from", "", "secret URI of the sender (pays the fee; the contract's caller), or - for stdin")
	c.Flags().BoolVar(&noWait, "no-wait", false, "return once the transaction is committed, without waiting for the receipt")
	c.Flags().Uint64Var(&gas, "gas", 0, fmt.Sprintf("gas limit of the command: the most it may use on each worker; the fee pays for all of it, used or not (gas_price_per_mgas per million). Default (0): the chain's max_command_gas / %d", client.DefaultGasFraction))
	return c
}

// printReceipt prints an opened receipt; a refused command is an error
// (the process exits non-zero) after the receipt is printed.
func printReceipt(g *globals, cmd *cobra.Command, r *client.Receipt, tx [32]byte) error {
	out := map[string]any{"tx": hex.EncodeToString(tx[:]), "contract": r.Contract.Hex(), "from": r.From.Address(), "nonce": r.Nonce,
		"height": r.Height, "status": r.Status.String(), "gas_used": r.GasUsed, "gas_limit": r.GasLimit, "output": string(r.Output), "worker": r.Worker.Hex()}
	if err := g.output(cmd, out, func(w io.Writer) {
		if r.Status == api.ReceiptOK {
			fmt.Fprintf(w, "executed at block %d (gas %d of %d, tx %x)\n", r.Height, r.GasUsed, r.GasLimit, tx)
			if len(r.Output) > 0 {
				fmt.Fprintf(w, "%s\n", r.Output)
			}
		}
	}); err != nil {
		return err
	}
	return r.Err()
}

func contractQueryCmd(g *globals) *cobra.Command {
	var from string
	var onChain bool
	c := &cobra.Command{
		Use:   "query <contract id> <input>",
		Short: "Query a contract off-chain, encrypted, at a worker running it",
		Long: `query finds a worker running the contract in the chain's records, sends it
the query sealed to the contract, addressed to that one worker (no other
replica answers it) and signed by --from, and prints the
contract's answer (checked to be signed by the contract) and the block height
it reflects. The contract decides who may read what.`,
		Example: `  phala contract query --from //Bob 0x1ee8... balance`,
		Args:    exactArgs(2, "a contract id and an input"),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := signerKey(cmd, from)
			if err != nil {
				return err
			}
			ctx, cancel := g.withTimeout(cmd)
			defer cancel()
			cl, rec, err := g.contract(cmd, ctx, args[0])
			if err != nil {
				return err
			}
			var out []byte
			var height int64
			if onChain {
				out, height, err = cl.NewSigner(key).QueryOnChain(ctx, rec, []byte(args[1]))
			} else {
				out, height, err = cl.QueryContract(ctx, key, rec, []byte(args[1]))
			}
			if err != nil {
				return fmt.Errorf("query: %w", err)
			}
			return g.output(cmd, map[string]any{"output": string(out), "height": height}, func(w io.Writer) {
				fmt.Fprintf(w, "%s\n(as of block %d)\n", out, height)
			})
		},
	}
	c.Flags().StringVar(&from, "from", "", "secret URI of the querier (signs the query; the contract's caller), or - for stdin")
	c.Flags().BoolVar(&onChain, "on-chain", false, "send the query through the chain (a paid transaction; the fallback when no worker endpoint answers)")
	return c
}

func contractShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show <contract id | upload id>",
		Short: "Show a contract: deployer, code hash, keys, workers, status, latest checkpoint (or why an upload waits)",
		Long: `show prints a contract's record: deployer, code hash, keys, workers, the
workers its deployer excluded (` + "`contract reassign`" + `), its status (starting,
running, or failed with the reason), its latest state checkpoint on
chain (height and root) and its open state update dispute, if any
(` + "`contract arbitration`" + `). Given the upload id
` + "`contract upload`" + ` printed, it shows the contract the upload became, or, while
no gatekeeper has provisioned it, that it is pending and why.`,
		Example: `  phala contract show 0x1ee8...`,
		Args:    exactArgs(1, "a contract id or an upload id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID32(args[0])
			if err != nil {
				return err
			}
			ctx, cl, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			rec, err := cl.Contract(ctx, crypto.PublicKey(id))
			if errors.Is(err, client.ErrNoSuchContract) {
				st, uerr := cl.UploadStatus(ctx, id)
				switch {
				case errors.Is(uerr, client.ErrNoSuchUpload):
					return fmt.Errorf("%w, and no upload has that id either", err)
				case uerr != nil:
					return g.nodeError(uerr)
				case st.Record != nil:
					rec, err = st.Record, nil
				default:
					p := st.Pending
					return g.output(cmd, map[string]any{"upload": hex.EncodeToString(id[:]), "status": "pending", "reason": st.Reason,
						"deployer": p.Deployer.Address(), "code_hash": hex.EncodeToString(p.CodeHash[:]), "sequence": p.Sequence, "height": p.Height,
						"requirements": p.Requirements.String()}, func(w io.Writer) {
						fmt.Fprintf(w, "upload:     %x\ndeployer:   %s\ncode hash:  %x\nsequence:   %d\nuploaded:   height %d\nrequires:   %s\nstatus:     pending\nreason:     %s\n",
							id, p.Deployer.Address(), p.CodeHash, p.Sequence, p.Height, p.Requirements.String(), st.Reason)
					})
				}
			}
			if err != nil {
				return g.nodeError(err)
			}
			cp, _, err := cl.Checkpoint(ctx, rec.Identity)
			if err != nil {
				return g.nodeError(err)
			}
			arb, _, err := cl.Arbitration(ctx, rec.Identity)
			if err != nil {
				return g.nodeError(err)
			}
			sd, err := cl.Stranded(ctx, rec)
			if err != nil {
				return g.nodeError(err)
			}
			out := contractJSON(rec, 0)
			out["stranded"] = sd.Stranded
			if sd.Stranded {
				out["stranded_key_era"], out["key_era_retired_at"] = sd.Era, sd.RetiredAt
			}
			interval := rec.CheckpointInterval
			if interval == 0 {
				interval = api.DefaultCheckpointInterval
			}
			out["checkpoint_interval"] = interval
			if cp != nil {
				out["checkpoint"] = map[string]any{"height": cp.Height, "root": hex.EncodeToString(cp.Root[:]), "entries": cp.Entries, "bytes": cp.Bytes}
			}
			if arb != nil {
				out["arbitration"] = arbitrationJSON(arb)
			}
			return g.output(cmd, out, func(w io.Writer) {
				printContract(w, rec, sd)
				if cp == nil {
					fmt.Fprintf(w, "checkpoint: none on chain yet (workers write the state every %d blocks once it changes)\n", interval)
				} else {
					fmt.Fprintf(w, "checkpoint: height %d, root %x, %d encrypted entries (%d bytes) on chain; written every %d blocks\n", cp.Height, cp.Root, cp.Entries, cp.Bytes, interval)
				}
				printArbitrationLine(w, arb)
			})
		},
	}
}

// parseID32 reads a contract or upload id: 32 bytes of hex, 0x optional.
func parseID32(s string) ([32]byte, error) {
	var id [32]byte
	b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("id %q: want 64 hex digits (a contract id or the upload id `contract upload` printed; 0x optional)", s)
	}
	copy(id[:], b)
	return id, nil
}

// parseContractID reads a contract id: the 0x identity key `phala
// contract upload` printed. A string that is no such key (a mistyped id
// is usually 64 hex digits that are no valid key) gets an error saying
// what to use instead, without the curve's jargon.
func parseContractID(s string) (crypto.PublicKey, error) {
	pk, err := crypto.ParsePublicKey(s)
	if err != nil {
		return pk, fmt.Errorf("%q is not a contract id: a contract id is the 0x... identity key `phala contract upload` printed (or see `phala contract show <upload id>`); this one does not decode as a key (%v)", s, err)
	}
	return pk, nil
}

// contract dials the node and reads a contract's record (proved).
func (g *globals) contract(cmd *cobra.Command, ctx context.Context, id string) (*client.Client, *api.ContractRecord, error) {
	pk, err := parseContractID(id)
	if err != nil {
		return nil, nil, err
	}
	cl, err := g.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	rec, err := cl.Contract(ctx, pk)
	if err != nil {
		return nil, nil, g.nodeError(err)
	}
	if rec.Status == api.ContractFailed && cmd.Name() != "show" && cmd.Name() != "watch" {
		return nil, nil, &client.DeployError{Record: rec}
	}
	return cl, rec, nil
}

func signerKey(cmd *cobra.Command, from string) (*crypto.KeyPair, error) {
	if from == "" {
		return nil, fmt.Errorf("--from is required: the secret URI of the account (e.g. //Alice on a devnet), or - to read it from standard input")
	}
	uri, err := readSecret(cmd, from)
	if err != nil {
		return nil, err
	}
	return keyPairFromURI(uri)
}

func loadCode(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("contract %s: %w", path, err)
	}
	if st.IsDir() {
		return contractbuild.Build(path)
	}
	code, err := os.ReadFile(path)
	if err == nil && !strings.HasPrefix(string(code), "\x00asm") {
		return nil, fmt.Errorf("%s is not a WebAssembly module", path)
	}
	return code, err
}

func contractJSON(rec *api.ContractRecord, height int64) map[string]any {
	ws := []string{} // [] rather than null when every worker was removed
	for _, w := range rec.Workers {
		ws = append(ws, w.Hex())
	}
	m := map[string]any{
		"contract": rec.Identity.Hex(), "ecdh_key": rec.Ecdh.Hex(), "deployer": rec.Deployer.Address(),
		"code_hash": hex.EncodeToString(rec.CodeHash[:]), "sequence": rec.Sequence, "workers": ws,
		"status": rec.Status.String(), "status_height": rec.StatusHeight,
	}
	if len(rec.Excluded) > 0 {
		ex := make([]string, 0, len(rec.Excluded))
		for _, w := range rec.Excluded {
			ex = append(ex, w.Hex())
		}
		m["excluded"] = ex
	}
	if rec.Reason != "" {
		m["reason"] = rec.Reason
	}
	if !rec.Requirements.IsZero() {
		m["requirements"] = rec.Requirements.String()
	}
	if height > 0 {
		m["height"] = height
	}
	return m
}

// printContract prints rec; sd (nil: not read) says whether its key era
// is retired (docs/keys.md, "A contract that loses its last worker").
func printContract(w io.Writer, rec *api.ContractRecord, sd *client.Strandedness) {
	fmt.Fprintf(w, "contract:   %s\necdh key:   %s\ndeployer:   %s\ncode hash:  %x\nsequence:   %d\n", rec.Identity.Hex(), rec.Ecdh.Hex(), rec.Deployer.Address(), rec.CodeHash, rec.Sequence)
	fmt.Fprintf(w, "status:     %s (since height %d)\n", rec.Status, rec.StatusHeight)
	if !rec.Requirements.IsZero() {
		fmt.Fprintf(w, "requires:   %s\n", rec.Requirements.String())
	}
	if rec.ExecTimeout > 0 {
		fmt.Fprintf(w, "timeout:    %d blocks (replicas acknowledge execution within it)\n", rec.ExecTimeout)
	}
	if rec.Reason != "" {
		fmt.Fprintf(w, "reason:     %s\n", rec.Reason)
	}
	switch {
	case sd != nil && sd.Dead(rec):
		fmt.Fprintf(w, "workers:    none, and none can ever be assigned\nSTRANDED:   key era %d was retired at height %d while the contract had no worker: no worker can be given its key, its state cannot be recovered, and commands sent to it never run (`phala contract command` refuses them)\n", sd.Era, sd.RetiredAt)
	case sd != nil && sd.Stranded:
		fmt.Fprintf(w, "STRANDED:   key era %d was retired at height %d: the workers below still run the contract, but no replacement can be given its key (if they all leave, its state cannot be recovered)\n", sd.Era, sd.RetiredAt)
	case len(rec.Workers) == 0:
		fmt.Fprintf(w, "workers:    none right now (all removed: the members of its key era %d assign a replacement when a worker is eligible; commands wait in the chain meanwhile, and never run if that key era is retired first)\n", rec.KeyEra)
	}
	for _, wk := range rec.Workers {
		fmt.Fprintf(w, "worker:     %s\n", wk.Hex())
	}
	for _, wk := range rec.Excluded {
		fmt.Fprintf(w, "excluded:   %s (removed by the deployer; never assigned this contract again)\n", wk.Hex())
	}
}

// printArbitrationLine prints a contract's open dispute in one line
// (nothing when none is open).
func printArbitrationLine(w io.Writer, a *api.Arbitration) {
	if a != nil {
		fmt.Fprintf(w, "arbitration: open since height %d (update %d): `phala contract arbitration` shows it\n", a.Opened, a.Height)
	}
}
