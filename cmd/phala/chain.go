package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
)

// Commands that talk to a node: status, balance, transfer, worker,
// gatekeepers.

// parseAccount reads an account given as an SS58 address (any prefix),
// 0x-hex, or a development account URI such as //Alice (derived from the
// public development phrase, so not a secret).
func parseAccount(flag, s string) (crypto.PublicKey, error) {
	pk, err := crypto.ParsePublicKey(s)
	if err == nil {
		return pk, nil
	}
	if strings.HasPrefix(s, "//") {
		if kp, uerr := crypto.KeyPairFromURI(s); uerr == nil {
			return kp.Public(), nil
		}
	}
	return pk, fmt.Errorf("%s %q is not an account: give an SS58 address (5...), a 0x-hex public key, or a development account such as //Alice", flag, s)
}

func statusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the chain id, latest block, validators and chain parameters",
		Long: `status asks the node for the chain id, its latest block and the validator
set (the block's header and validators verified from the trust root, see
` + "`phala --help`" + `), and prints the chain parameters (read with a proof): the
transaction fee (fee_base + fee_per_byte * size), what a contract command's gas
costs and the gas bounds (per command, per worker per block), the era length, the
DKG phase (dkg_timeout), the
lifetime of a worker registration and the largest transaction, and the
economy's parameters (stake minimums, unbonding period, heartbeats,
slashes, inflation) with the total issuance.`,
		Example: `  phala status
  phala status --node http://10.0.0.5:26657 --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			st, err := c.RPC().Status(ctx)
			if err != nil {
				return g.nodeError(err)
			}
			h := st.SyncInfo.LatestBlockHeight
			lb, err := c.LightBlock(ctx, h) // verified from the trust root
			if err != nil {
				return g.nodeError(err)
			}
			vals := lb.ValidatorSet
			p := c.Params()
			// What a transfer costs: its size hardly varies, so one example.
			example := client.BuildTx(c.ChainID(), p, crypto.MustKeyPairFromURI("//Alice"), 0, &api.Transfer{To: crypto.MustKeyPairFromURI("//Bob").Public(), Amount: api.Unit})
			out := statusJSON{
				ChainID:       c.ChainID(),
				Node:          g.nodeURL(),
				Moniker:       st.NodeInfo.Moniker,
				Version:       st.NodeInfo.Version,
				LatestHeight:  h,
				LatestTime:    lb.Time.UTC(),
				CatchingUp:    st.SyncInfo.CatchingUp,
				Validators:    len(vals.Validators),
				VotingPower:   vals.TotalVotingPower(),
				Params:        p,
				TransferFee:   fmt.Sprint(example.Fee),
				TransferFeePH: formatAmount(example.Fee),
				TrustRoot:     c.TrustRoot(),
			}
			sched, _, err := c.EraSchedule(ctx)
			if err != nil {
				return g.nodeError(err)
			}
			out.Era = sched.EraOf(h)
			out.EraStart, out.EraEnd = sched.Start(out.Era), sched.End(out.Era)
			if iss, _, err := c.Issuance(ctx); err == nil {
				out.Issuance, out.IssuancePHA = fmt.Sprint(iss), formatAmount(iss)
			}
			return g.output(cmd, out, func(w io.Writer) {
				fmt.Fprintf(w, "Chain:        %s\n", out.ChainID)
				fmt.Fprintf(w, "Node:         %s (%s, CometBFT %s)\n", out.Node, out.Moniker, out.Version)
				fmt.Fprintf(w, "Latest block: %d at %s\n", out.LatestHeight, out.LatestTime.Format(time.RFC3339))
				if out.CatchingUp {
					fmt.Fprintln(w, "              (the node is still catching up with the chain)")
				}
				fmt.Fprintf(w, "Validators:   %d (total voting power %d)\n", out.Validators, out.VotingPower)
				fmt.Fprintf(w, "Verified:     from the %s\n", out.TrustRoot)
				fmt.Fprintln(w, "Parameters:")
				fmt.Fprintf(w, "  fee:                   %s + %s per byte (a transfer: %s)\n", pha(p.FeeBase), pha(p.FeePerByte), pha(example.Fee))
				fmt.Fprintf(w, "  command gas:           %s per million gas declared; at most %d gas per command (default %d), %d per worker per block\n",
					pha(p.GasPricePerMGas), p.MaxCommandGas, c.DefaultGasLimit(), p.MaxWorkerGasPerBlock)
				fmt.Fprintf(w, "  era length:            %d blocks (era %d runs heights %d to %d; a change applies from the next era)\n", p.EraLength, out.Era, out.EraStart, out.EraEnd)
				fmt.Fprintf(w, "  DKG phase:             %d blocks (dkg_timeout %d, at most a third of era_length, at least %d)\n", p.DkgPhase(), p.DkgTimeout, api.MinDkgPhase)
				fmt.Fprintf(w, "  registration lifetime: %d blocks\n", p.RegistrationLifetime)
				fmt.Fprintf(w, "  largest transaction:   %d bytes\n", p.MaxTxBytes)
				fmt.Fprintf(w, "  gov voting period:     %d blocks\n", p.GovVotingPeriod)
				fmt.Fprintln(w, "Economy (docs/economy.md; 0 turns a part off):")
				fmt.Fprintf(w, "  unbonding period:      %d blocks\n", p.UnbondingPeriod)
				fmt.Fprintf(w, "  min worker stake:      %s (a worker below it gets no contract)\n", pha(p.MinWorkerStake))
				fmt.Fprintf(w, "  min gatekeeper stake:  %s\n", pha(p.MinGatekeeperStake))
				fmt.Fprintf(w, "  heartbeats:            %d per era, answered within %d blocks\n", p.HeartbeatsPerEra, p.HeartbeatWindow)
				fmt.Fprintf(w, "  offline slash:         %s of the stake; execution timeout penalty %s\n", ppm(p.OfflineSlashPPM), ppm(p.TimeoutPenaltyPPM))
				fmt.Fprintf(w, "  era inflation:         %s of the issuance per era, %s of it to gatekeepers\n", ppb(p.EraInflationPPB), ppm(p.GatekeeperRewardPPM))
				fmt.Fprintf(w, "  elected gatekeepers:   %d\n", p.NGatekeepers)
				if p.ArbitrationWindow == 0 {
					fmt.Fprintln(w, "  arbitration:           off (arbitration_window 0)")
				} else {
					fmt.Fprintf(w, "  arbitration:           disputes within %d blocks of an update, bond %s (none for the deployer), %d arbiters, verdict within %d blocks, a liar loses %s of its stake\n",
						p.ArbitrationWindow, pha(p.ArbitrationBond), p.Arbiters, p.ArbitrationTimeout, ppm(p.ArbitrationSlashPPM))
				}
				fmt.Fprintf(w, "  gas:                   %s per million gas; at most %d gas per command, %d per worker per block\n", pha(p.GasPricePerMGas), p.MaxCommandGas, p.MaxWorkerGasPerBlock)
				if out.Issuance != "" {
					fmt.Fprintf(w, "  total issuance:        %s PHA\n", out.IssuancePHA)
				}
			})
		},
	}
}

type statusJSON struct {
	ChainID       string     `json:"chain_id"`
	Node          string     `json:"node"`
	Moniker       string     `json:"moniker"`
	Version       string     `json:"version"`
	LatestHeight  int64      `json:"latest_height"`
	LatestTime    time.Time  `json:"latest_time"`
	CatchingUp    bool       `json:"catching_up"`
	Validators    int        `json:"validators"`
	VotingPower   int64      `json:"voting_power"`
	Params        api.Params `json:"params"`
	TransferFee   string     `json:"transfer_fee"`       // units
	TransferFeePH string     `json:"transfer_fee_pha"`   // PHA
	TrustRoot     string     `json:"trust_root"`         // what the headers were verified from
	Issuance      string     `json:"issuance,omitempty"` // units: every balance and stake
	IssuancePHA   string     `json:"issuance_pha,omitempty"`
	// The current era by the chain's schedule (era_length changes apply
	// from the next era boundary).
	Era      uint64 `json:"era"`
	EraStart int64  `json:"era_start"` // its first height
	EraEnd   int64  `json:"era_end"`   // its last height
}

// ppm prints parts per million as a percentage.
func ppm(v uint64) string { return percent(v, 1_000_000) }

// ppb prints parts per billion as a percentage.
func ppb(v uint64) string { return percent(v, 1_000_000_000) }

func percent(v, denom uint64) string {
	s := new(big.Rat).SetFrac(new(big.Int).SetUint64(v*100), new(big.Int).SetUint64(denom)).FloatString(6)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
}

func balanceCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "balance <address>",
		Short: "Show an account's balance and next nonce (proved)",
		Long: `balance reads an account with a Merkle proof checked against a header signed
by the validators, and prints its balance in PHA (12 decimals) and the nonce
its next transaction must carry. An account the chain has never seen has a
balance of 0. The address is SS58 (any prefix), 0x-hex, or a development
account such as //Alice.`,
		Example: `  phala balance 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY
  phala balance //Bob --json`,
		Args: exactArgs(1, "one address"),
		RunE: func(cmd *cobra.Command, args []string) error {
			pk, err := parseAccount("address", args[0])
			if err != nil {
				return err
			}
			ctx, c, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			a, h, err := c.AccountProved(ctx, pk)
			if err != nil {
				return g.nodeError(err)
			}
			out := balanceJSON{
				Address:    pk.Address(),
				PublicKey:  pk.Hex(),
				Balance:    fmt.Sprint(a.Balance),
				BalancePHA: formatAmount(a.Balance),
				Nonce:      a.Nonce,
				Height:     h,
			}
			return g.output(cmd, out, func(w io.Writer) {
				fmt.Fprintf(w, "Account %s\n", out.Address)
				fmt.Fprintf(w, "  balance: %s\n", pha(a.Balance))
				fmt.Fprintf(w, "  nonce:   %d\n", a.Nonce)
				fmt.Fprintf(w, "  (proved at height %d of %s)\n", h, c.ChainID())
			})
		},
	}
}

type balanceJSON struct {
	Address    string `json:"address"`
	PublicKey  string `json:"public_key"`
	Balance    string `json:"balance"`     // units of 10^-12 PHA
	BalancePHA string `json:"balance_pha"` // PHA
	Nonce      uint64 `json:"nonce"`
	Height     int64  `json:"height"`
}

func transferCmd(g *globals) *cobra.Command {
	var from, to, amount string
	c := &cobra.Command{
		Use:   "transfer --from <secret-uri> --to <address> --amount <PHA>",
		Short: "Send PHA and wait for the transfer to be committed",
		Long: `transfer signs a transfer of --amount PHA (decimals allowed, at most 12)
from the account of the secret URI --from to --to, pays the minimum fee for
its size, submits it and waits until a block commits it. It prints the
transaction hash, the height and the result.

--from "-" reads the secret URI from the first line of standard input, which
keeps it out of the shell history and the process list. --to is an SS58
address, 0x-hex, or a development account such as //Bob.`,
		Example: `  phala transfer --from //Alice --to 5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty --amount 1.5
  phala transfer --from - --to //Bob --amount 0.001 --json < my-secret.txt`,
		Args: exactArgs(0, "no arguments (use --from, --to and --amount)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			units, err := parseAmount(amount)
			if err != nil {
				return fmt.Errorf("--amount: %w", err)
			}
			if units == 0 {
				return errors.New("--amount: a transfer of 0 PHA is refused by the chain; give a positive amount")
			}
			dst, err := parseAccount("--to", to)
			if err != nil {
				return err
			}
			uri, err := readSecret(cmd, from)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			key, err := keyPairFromURI(uri)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			ctx, c, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			acct, err := c.Account(ctx, key.Public())
			if err != nil {
				return g.nodeError(err)
			}
			tx := client.BuildTx(c.ChainID(), c.Params(), key, acct.Nonce, &api.Transfer{To: dst, Amount: units})
			if acct.Balance < tx.Fee || acct.Balance-tx.Fee < units {
				return insufficient(key.Public(), acct.Balance, units, tx.Fee)
			}
			hash, err := c.Broadcast(ctx, tx.Encode())
			if err != nil {
				var refused *api.TxError
				switch {
				case errors.As(err, &refused) && refused.Code == api.CodeInsufficientBalance:
					return insufficient(key.Public(), acct.Balance, units, tx.Fee)
				case errors.As(err, &refused) && (refused.Code == api.CodeStaleNonce || refused.Code == api.CodeFutureNonce):
					return fmt.Errorf("the node refused the transfer: %s (another transaction from %s was submitted at the same time; run the command again)", refused.Log, key.Public())
				case errors.As(err, &refused):
					return fmt.Errorf("the node refused the transfer (%s): %s", refused.Code, refused.Log)
				}
				return g.nodeError(err)
			}
			res, err := c.WaitTx(ctx, hash)
			if err != nil {
				return fmt.Errorf("transfer %X was accepted by the node but not committed within --timeout %s: %w (look for it later with the node's /tx RPC, or check the balance)", hash, g.timeout, err)
			}
			out := transferJSON{
				Hash:      fmt.Sprintf("%X", hash),
				Height:    res.Height,
				From:      key.Public().Address(),
				To:        dst.Address(),
				Amount:    fmt.Sprint(units),
				AmountPHA: formatAmount(units),
				Fee:       fmt.Sprint(tx.Fee),
				FeePHA:    formatAmount(tx.Fee),
				Nonce:     tx.Nonce,
				Code:      uint32(res.Code),
				Result:    res.Code.String(),
				Log:       res.Log,
			}
			if err := g.output(cmd, out, func(w io.Writer) {
				verb := "committed"
				if res.Code != api.CodeOK {
					verb = "FAILED"
				}
				fmt.Fprintf(w, "Transfer of %s from %s to %s %s\n", pha(units), out.From, out.To, verb)
				fmt.Fprintf(w, "  hash:   %s\n", out.Hash)
				fmt.Fprintf(w, "  height: %d\n", out.Height)
				fmt.Fprintf(w, "  fee:    %s\n", pha(tx.Fee))
				if res.Code == api.CodeOK {
					fmt.Fprintln(w, "  result: ok")
				} else {
					fmt.Fprintf(w, "  result: %s: %s (the fee was paid)\n", res.Code, res.Log)
				}
			}); err != nil {
				return err
			}
			if res.Code != api.CodeOK {
				return fmt.Errorf("the transfer failed in block %d (%s): %s; the fee of %s was paid", res.Height, res.Code, res.Log, pha(tx.Fee))
			}
			return nil
		},
	}
	c.Flags().StringVar(&from, "from", "", "secret URI of the sending account (\"-\": read it from standard input)")
	c.Flags().StringVar(&to, "to", "", "receiving account: SS58 address, 0x-hex or a development account such as //Bob")
	c.Flags().StringVar(&amount, "amount", "", "amount in PHA, decimals allowed (e.g. 1.5)")
	for _, f := range []string{"from", "to", "amount"} {
		_ = c.MarkFlagRequired(f)
	}
	return c
}

func insufficient(from crypto.PublicKey, balance, amount, fee uint64) error {
	all := "more than any account can hold"
	if amount+fee >= amount {
		all = pha(amount+fee) + " in all"
	}
	return fmt.Errorf("insufficient balance: %s has %s; this transfer needs %s plus a fee of %s (%s). Fund the account first (on a development chain: phala transfer --from //Alice --to %s --amount 10)",
		from, pha(balance), pha(amount), pha(fee), all, from)
}

type transferJSON struct {
	Hash      string `json:"hash"`
	Height    int64  `json:"height"`
	From      string `json:"from"`
	To        string `json:"to"`
	Amount    string `json:"amount"` // units
	AmountPHA string `json:"amount_pha"`
	Fee       string `json:"fee"` // units
	FeePHA    string `json:"fee_pha"`
	Nonce     uint64 `json:"nonce"`
	Code      uint32 `json:"code"`
	Result    string `json:"result"`
	Log       string `json:"log,omitempty"`
}

func workerCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "worker <identity>",
		Short: "Show a worker's registration (proved)",
		Long: `worker reads the registration of the worker whose identity key is given (SS58
or 0x-hex; pRuntime prints it when it starts) with a proof, and prints its
pRuntime endpoint, operator, ECDH key, attested platform and measurement,
and the heights at which it was registered and expires. ` + "`phala workers`" + ` lists
every registered worker.`,
		Example: `  phala worker 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY
  phala worker 0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d --json`,
		Args: exactArgs(1, "one identity key"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseAccount("identity", args[0])
			if err != nil {
				return err
			}
			ctx, c, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			w, h, err := c.WorkerProved(ctx, id)
			if errors.Is(err, api.ErrNotFound) {
				return fmt.Errorf("worker %s is not registered on chain %s (proved absent at height %d): check the identity key (pRuntime prints it at start-up); a worker is listed once its registration is committed", id, c.ChainID(), h)
			}
			if err != nil {
				return g.nodeError(err)
			}
			settings, err := c.AttestationSettings(ctx)
			if err != nil {
				return g.nodeError(err)
			}
			revoked := !settings.MeasurementAllowed(w.Measurement)
			out := workerJSON{
				Identity:     w.Info.IdentityKey.Address(),
				IdentityHex:  w.Info.IdentityKey.Hex(),
				EcdhKey:      w.Info.EcdhKey.Hex(),
				Endpoint:     w.Info.Endpoint,
				Operator:     w.Info.Operator.Address(),
				ChainID:      w.Info.ChainID,
				Platform:     w.Platform,
				Cores:        w.Info.Cores,
				MemoryMB:     w.Info.MemoryMB,
				Version:      w.Info.RuntimeVersion,
				Measurement:  "0x" + hex.EncodeToString(w.Measurement),
				RegisteredAt: w.RegisteredAt,
				ActiveSince:  w.ActiveSince,
				ExpiresAt:    w.ExpiresAt,
				AttestedAt:   time.Unix(w.AttestedAt, 0).UTC(),
				ReportBlock:  w.Info.BlockHeight,
				ReportHash:   fmt.Sprintf("%X", w.Info.BlockHash),
				Active:       w.Active(h) && !revoked,
				Revoked:      revoked,
				Height:       h,
			}
			return g.output(cmd, out, func(wr io.Writer) {
				state := "active"
				switch {
				case revoked:
					state = "EXPIRED: governance revoked its pRuntime measurement (it must run an allowed pRuntime and register again)"
				case !out.Active:
					state = "EXPIRED (it must register again)"
				}
				fmt.Fprintf(wr, "Worker %s\n", out.Identity)
				fmt.Fprintf(wr, "  status:        %s (proved at height %d)\n", state, h)
				fmt.Fprintf(wr, "  endpoint:      %s\n", out.Endpoint)
				fmt.Fprintf(wr, "  operator:      %s\n", out.Operator)
				fmt.Fprintf(wr, "  ECDH key:      %s\n", out.EcdhKey)
				fmt.Fprintf(wr, "  platform:      %s\n", out.Platform)
				fmt.Fprintf(wr, "  declares:      %d cores, %d MiB of memory, pRuntime version %d\n", out.Cores, out.MemoryMB, out.Version)
				fmt.Fprintf(wr, "  measurement:   %s\n", out.Measurement)
				fmt.Fprintf(wr, "  registered at: height %d", out.RegisteredAt)
				if out.ActiveSince != out.RegisteredAt {
					fmt.Fprintf(wr, " (a renewal: registered without a lapse since height %d)", out.ActiveSince)
				}
				fmt.Fprintln(wr)
				fmt.Fprintf(wr, "  expires at:    height %d\n", out.ExpiresAt)
				fmt.Fprintf(wr, "  attested at:   %s\n", out.AttestedAt.Format(time.RFC3339))
				fmt.Fprintf(wr, "  report cites:  block %d (%s)\n", out.ReportBlock, out.ReportHash)
			})
		},
	}
}

type workerJSON struct {
	Identity     string    `json:"identity"`
	IdentityHex  string    `json:"identity_hex"`
	EcdhKey      string    `json:"ecdh_key"`
	Endpoint     string    `json:"endpoint"`
	Operator     string    `json:"operator"`
	ChainID      string    `json:"chain_id"`
	Platform     string    `json:"platform"`
	Cores        uint32    `json:"cores"`
	MemoryMB     uint64    `json:"memory_mb"`
	Version      uint32    `json:"runtime_version"`
	Measurement  string    `json:"measurement"`
	RegisteredAt int64     `json:"registered_at"`
	ActiveSince  int64     `json:"active_since"` // registered without a lapse since (renewals keep it)
	ExpiresAt    int64     `json:"expires_at"`
	AttestedAt   time.Time `json:"attested_at"`
	ReportBlock  int64     `json:"report_block"` // the recent block the report committed to
	ReportHash   string    `json:"report_block_hash"`
	Active       bool      `json:"active"`
	Revoked      bool      `json:"measurement_revoked"` // governance revoked its measurement: expired
	Height       int64     `json:"height"`
}

func gatekeepersCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "gatekeepers",
		Short: "List the gatekeepers and the MasterKey public key (proved)",
		Long: `gatekeepers reads the gatekeeper list and, once the gatekeepers have
published it, the MasterKey public key, both with proofs.`,
		Example: `  phala gatekeepers
  phala gatekeepers --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			// Both reads wait for the next header: make them together.
			var mk [32]byte
			var ok bool
			var mkErr error
			done := make(chan struct{})
			go func() {
				defer close(done)
				mk, ok, mkErr = c.MasterKey(ctx)
			}()
			keys, err := c.Gatekeepers(ctx)
			<-done
			if err = errors.Join(err, mkErr); err != nil {
				return g.nodeError(err)
			}
			out := gatekeepersJSON{Gatekeepers: []keyJSON{}}
			for _, k := range keys {
				out.Gatekeepers = append(out.Gatekeepers, keyJSON{Address: k.Address(), PublicKey: k.Hex()})
			}
			if ok {
				out.MasterKey = &masterKeyJSON{PublicKey: "0x" + hex.EncodeToString(mk[:])}
			}
			return g.output(cmd, out, func(w io.Writer) {
				fmt.Fprintf(w, "Gatekeepers of %s: %d\n", c.ChainID(), len(keys))
				if len(keys) == 0 {
					fmt.Fprintln(w, "  (none)")
				}
				for _, k := range out.Gatekeepers {
					fmt.Fprintf(w, "  %s  %s\n", k.Address, k.PublicKey)
				}
				if ok {
					fmt.Fprintf(w, "Master key: %s (the serving key set's, an edwards25519 point; its era, threshold and members: phala keys status)\n", out.MasterKey.PublicKey)
				} else {
					fmt.Fprintln(w, "Master key: not published yet")
				}
			})
		},
	}
}

type keyJSON struct {
	Address   string `json:"address"`
	PublicKey string `json:"public_key"`
}

type gatekeepersJSON struct {
	Gatekeepers []keyJSON      `json:"gatekeepers"`
	MasterKey   *masterKeyJSON `json:"master_key"` // null until published
}

// masterKeyJSON is the serving key set's master public key (an
// edwards25519 point, not an account: no address).
type masterKeyJSON struct {
	PublicKey string `json:"public_key"`
}

func workersCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "workers",
		Short: "List registered workers (each registration proved)",
		Long: `workers asks the node for the identities of all registered workers, then
reads each registration with a proof, and prints identity, endpoint,
operator, platform and expiry.`,
		Example: `  phala workers
  phala workers --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, cancel, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			ids, err := c.WorkerIDs(ctx)
			if err != nil {
				return g.nodeError(err)
			}
			settings, err := c.AttestationSettings(ctx)
			if err != nil {
				return g.nodeError(err)
			}
			type row struct {
				Identity  string `json:"identity"`
				Endpoint  string `json:"endpoint"`
				Operator  string `json:"operator"`
				Platform  string `json:"platform"`
				ExpiresAt int64  `json:"expires_at"`
				Active    bool   `json:"active"`
				Revoked   bool   `json:"measurement_revoked"` // governance revoked its measurement: expired
				Height    int64  `json:"height"`
			}
			rows := []row{}
			for _, id := range ids {
				w, h, err := c.WorkerProved(ctx, id)
				if err != nil {
					return g.nodeError(err)
				}
				revoked := !settings.MeasurementAllowed(w.Measurement)
				rows = append(rows, row{id.Hex(), w.Info.Endpoint, w.Info.Operator.Address(), w.Platform, w.ExpiresAt, w.Active(h) && !revoked, revoked, h})
			}
			return g.output(cmd, rows, func(w io.Writer) {
				if len(rows) == 0 {
					fmt.Fprintln(w, "no registered workers")
				}
				for _, r := range rows {
					status := fmt.Sprintf("expires at %d", r.ExpiresAt)
					switch {
					case r.Revoked:
						status = "EXPIRED: governance revoked its pRuntime measurement"
					case !r.Active:
						status = fmt.Sprintf("EXPIRED at %d", r.ExpiresAt)
					}
					fmt.Fprintf(w, "%s  %s  operator %s  %s  %s\n", r.Identity, r.Endpoint, r.Operator, r.Platform, status)
				}
			})
		},
	}
}
