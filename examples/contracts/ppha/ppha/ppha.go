// Package ppha is private PHA: a confidential token pegged 1:1 to the
// chain's PHA (docs/interop.md "The pegged token"; the whitepaper's section
// 6, the first application). A PHA transfer to the contract's escrow
// account (api.EscrowAccount) credits the sender with the same amount of
// pPHA; pPHA moves privately between accounts; a withdrawal debits it and
// asks the chain to pay the PHA out of the escrow account.
//
// Inputs are short text commands; amounts are PHA base units (10^-12 PHA)
// as a positive decimal uint64; addresses are 0x followed by 32 bytes of
// hex (accounts and contracts alike):
//
//	link <account>                   (command) withdrawals of the caller pay to <account> (default: the caller)
//	transfer <to> <amount>           (command) private transfer
//	send <contract> <amount> <memo>  (command) transfer to a contract, which is then called
//	                                  "received <from> <amount> <memo>" (sealed, SendGas gas)
//	withdraw <amount>                (command) debit and pay the PHA to the linked account
//	balance                          (query) the caller's balance
//	history                          (query) the caller's last HistoryLen entries, oldest first
//	link                             (query) the account the caller's withdrawals pay to
//	supply                           (query, public) balances plus withdrawals in flight
//
// Deposits arrive through the Deposit handler (the chain's transfer to
// the escrow account) and payout answers through PayoutResult: a paid
// withdrawal leaves the supply, a refused one is credited back.
//
// # Invariant
//
// supply = Σ balances + Σ pending withdrawals = Σ deposits − Σ paid
// withdrawals = the escrow account's balance on chain (after the same
// height's inputs). The contract keeps supply as a running total: it
// changes only in Deposit (+amount) and in a paid PayoutResult (−amount);
// transfers, sends, withdrawals (balance → pending) and refusals (pending →
// balance) move value inside it.
//
// # Storage layout (keys built with contract.Key; integers 8 bytes big-endian)
//
//	Key("bal", addr)             balance of addr (absent: 0)
//	Key("link", addr)            32 bytes: the account addr's withdrawals pay to (absent: addr)
//	Key("hn", addr)              number of history entries addr ever had
//	Key("h", addr, slot)         entry number n at slot n mod HistoryLen (text, one line)
//	Key("supply")                the running supply
//	Key("wid")                   the last withdrawal id used (ids start at 1)
//	Key("w", id)                 a pending withdrawal: owner[32] ‖ to[32] ‖ amount
//
// # Privacy
//
// Balances, transfers, sends and history stay inside the contract
// (commands are sealed to it, storage is encrypted by pRuntime). Public by
// nature: a deposit's sender and amount (a PHA transfer on chain) and a
// withdrawal's amount and payee (a payout on chain). A send's call to the
// receiving contract is sealed to that contract.
package ppha

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/phalago/phala/contract"
)

// SendGas is the gas a send forwards to the receiving contract's
// "received" command (taken out of the send command's own limit, which
// must therefore be larger).
const SendGas = 5_000_000

// HistoryLen bounds the history kept per account: older entries are
// overwritten.
const HistoryLen = 100

// MaxMemoBytes bounds a send's memo (printable ASCII, single spaces).
const MaxMemoBytes = 200

// InputBlock is the size unit clients pad commands to (Pad), so that a
// sealed command's length, which the chain shows, says nothing about its
// amount or memo beyond the number of blocks.
const InputBlock = 128

// Pad pads a command with spaces (which the contract ignores: it splits
// its input on white space) to the next multiple of InputBlock bytes.
func Pad(input string) string {
	n := (len(input) + InputBlock - 1) / InputBlock * InputBlock
	if n == 0 {
		n = InputBlock
	}
	return input + strings.Repeat(" ", n-len(input))
}

// maxReasonBytes bounds a payout refusal's reason kept in the history
// (api.MaxPayoutReasonBytes: a contract does not import the api package).
const maxReasonBytes = 256

// Errors the commands return (their text is the contract's answer).
var (
	ErrInsufficient = errors.New("insufficient balance")
	ErrOverflow     = errors.New("amount overflows")
)

var (
	supplyKey = contract.Key([]byte("supply"))
	widKey    = contract.Key([]byte("wid"))
)

func balanceKey(a contract.Address) []byte { return contract.Key([]byte("bal"), a[:]) }
func linkKey(a contract.Address) []byte    { return contract.Key([]byte("link"), a[:]) }
func histCountKey(a contract.Address) []byte {
	return contract.Key([]byte("hn"), a[:])
}
func histKey(a contract.Address, n uint64) []byte {
	return contract.Key([]byte("h"), a[:], binary.BigEndian.AppendUint64(nil, n%HistoryLen))
}
func pendingKey(id uint64) []byte {
	return contract.Key([]byte("w"), binary.BigEndian.AppendUint64(nil, id))
}

func parseAmount(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 || s[0] == '0' {
		return 0, fmt.Errorf("amount %q must be a positive integer of PHA base units", s)
	}
	return v, nil
}

// credit adds amount to a's balance.
func credit(c *contract.Context, a contract.Address, amount uint64) error {
	b := c.Uint64(balanceKey(a))
	if b+amount < b {
		return ErrOverflow
	}
	c.SetUint64(balanceKey(a), b+amount)
	return nil
}

// debit takes amount out of a's balance.
func debit(c *contract.Context, a contract.Address, amount uint64) error {
	b := c.Uint64(balanceKey(a))
	if b < amount {
		return ErrInsufficient
	}
	if b == amount {
		c.Remove(balanceKey(a))
	} else {
		c.SetUint64(balanceKey(a), b-amount)
	}
	return nil
}

// record appends an entry to a's history, overwriting the oldest beyond
// HistoryLen.
func record(c *contract.Context, a contract.Address, entry string) {
	n := c.Uint64(histCountKey(a))
	c.Set(histKey(a, n), []byte(entry))
	c.SetUint64(histCountKey(a), n+1)
}

// move transfers amount from → to (both balances checked).
func move(c *contract.Context, from, to contract.Address, amount uint64) error {
	if from == to {
		return errors.New("a transfer to oneself moves nothing")
	}
	if err := debit(c, from, amount); err != nil {
		return err
	}
	return credit(c, to, amount)
}

// cleanMemo joins the memo's words with single spaces and checks it is
// printable ASCII of at most MaxMemoBytes.
func cleanMemo(words []string) (string, error) {
	m := strings.Join(words, " ")
	if m == "" || len(m) > MaxMemoBytes {
		return "", fmt.Errorf("memo must be 1 to %d bytes", MaxMemoBytes)
	}
	for i := 0; i < len(m); i++ {
		if m[i] < 0x20 || m[i] > 0x7e {
			return "", errors.New("memo must be printable ASCII")
		}
	}
	return m, nil
}

const usage = "commands: link <account>, transfer <to> <amount>, send <contract> <amount> <memo>, withdraw <amount>"

func command(c *contract.Context, input []byte) ([]byte, error) {
	f := strings.Fields(string(input))
	if len(f) == 0 {
		return nil, errors.New(usage)
	}
	caller := c.Caller()
	switch f[0] {
	case "link":
		if len(f) != 2 {
			return nil, errors.New("usage: link <0x account>")
		}
		to, err := contract.ParseAddress(f[1])
		if err != nil {
			return nil, err
		}
		if err := spendable(c, to); err != nil {
			return nil, fmt.Errorf("link: %w", err)
		}
		if to == caller {
			c.Remove(linkKey(caller))
		} else {
			c.Set(linkKey(caller), to[:])
		}
		record(c, caller, "link "+to.Hex())
		return []byte("linked " + to.Hex()), nil

	case "transfer":
		if len(f) != 3 {
			return nil, errors.New("usage: transfer <0x to> <amount>")
		}
		to, err := contract.ParseAddress(f[1])
		if err != nil {
			return nil, err
		}
		amount, err := parseAmount(f[2])
		if err != nil {
			return nil, err
		}
		if err := spendable(c, to); err != nil {
			return nil, fmt.Errorf("transfer: %w", err)
		}
		if err := move(c, caller, to, amount); err != nil {
			return nil, err
		}
		record(c, caller, "transfer -"+f[2]+" to "+to.Hex())
		record(c, to, "transfer +"+f[2]+" from "+caller.Hex())
		return []byte("ok"), nil

	case "send":
		if len(f) < 4 {
			return nil, errors.New("usage: send <0x contract> <amount> <memo>")
		}
		to, err := contract.ParseAddress(f[1])
		if err != nil {
			return nil, err
		}
		amount, err := parseAmount(f[2])
		if err != nil {
			return nil, err
		}
		memo, err := cleanMemo(f[3:])
		if err != nil {
			return nil, err
		}
		if to == c.Self() {
			return nil, errors.New("send to this contract itself: use transfer")
		}
		if err := move(c, caller, to, amount); err != nil {
			return nil, err
		}
		if err := c.CallContract(to, []byte("received "+caller.Hex()+" "+f[2]+" "+memo), SendGas, true); err != nil {
			return nil, fmt.Errorf("send to %s: %w", to.Hex(), err)
		}
		record(c, caller, "send -"+f[2]+" to "+to.Hex()+" memo "+memo)
		record(c, to, "send +"+f[2]+" from "+caller.Hex()+" memo "+memo)
		return []byte("ok"), nil

	case "withdraw":
		if len(f) != 2 {
			return nil, errors.New("usage: withdraw <amount>")
		}
		amount, err := parseAmount(f[1])
		if err != nil {
			return nil, err
		}
		if err := debit(c, caller, amount); err != nil {
			return nil, err
		}
		to := caller
		if l, ok := c.Get(linkKey(caller)); ok && len(l) == 32 {
			to = contract.Address(l)
		}
		id := c.Uint64(widKey) + 1
		if id >= contract.RefundIDBase {
			return nil, errors.New("withdrawal ids exhausted")
		}
		c.SetUint64(widKey, id)
		p := make([]byte, 0, 72)
		p = append(append(append(p, caller[:]...), to[:]...), binary.BigEndian.AppendUint64(nil, amount)...)
		c.Set(pendingKey(id), p)
		if err := c.Pay(to, amount, id); err != nil {
			return nil, fmt.Errorf("withdraw: %w", err)
		}
		ids := strconv.FormatUint(id, 10)
		record(c, caller, "withdraw -"+f[1]+" to "+to.Hex()+" id "+ids+" pending")
		return []byte("withdrawal " + ids + " pending"), nil
	}
	return nil, fmt.Errorf("unknown command %q (%s)", f[0], usage)
}

// ErrUnspendable refuses a recipient nobody could ever spend from: the
// zero address, this contract's own id or its escrow account. (Other
// contracts' ids and escrow accounts look like any account from inside
// the contract; the CLI refuses them, reading the chain.)
var ErrUnspendable = errors.New("nobody could spend from it")

func spendable(c *contract.Context, to contract.Address) error {
	switch to {
	case contract.Address{}:
		return fmt.Errorf("the zero address: %w", ErrUnspendable)
	case c.Self():
		return fmt.Errorf("%s is this contract: %w (send pPHA to other contracts with send)", to.Hex(), ErrUnspendable)
	case c.Escrow():
		return fmt.Errorf("%s is this contract's escrow account: %w", to.Hex(), ErrUnspendable)
	}
	return nil
}

func deposit(c *contract.Context, from contract.Address, amount uint64) error {
	s := c.Uint64(supplyKey)
	if s+amount < s {
		return ErrOverflow // refunded by pRuntime
	}
	if err := credit(c, from, amount); err != nil {
		return err
	}
	c.SetUint64(supplyKey, s+amount)
	record(c, from, "deposit "+strconv.FormatUint(amount, 10)+" from "+from.Hex())
	return nil
}

// payoutResult settles a withdrawal. Results for ids it has no pending
// withdrawal under (pRuntime's refunds of deposits, from RefundIDBase)
// are ignored.
func payoutResult(c *contract.Context, p contract.Payout) error {
	v, ok := c.Get(pendingKey(p.ID))
	if !ok || len(v) != 72 {
		return nil
	}
	owner := contract.Address(v[:32])
	amount := binary.BigEndian.Uint64(v[64:])
	amt, ids := strconv.FormatUint(amount, 10), strconv.FormatUint(p.ID, 10)
	if p.Paid {
		s := c.Uint64(supplyKey)
		if s < amount {
			return errors.New("supply below a pending withdrawal") // cannot happen: pending counts in supply
		}
		c.SetUint64(supplyKey, s-amount)
		record(c, owner, "withdraw "+amt+" paid id "+ids)
	} else {
		if err := credit(c, owner, amount); err != nil {
			return err
		}
		record(c, owner, "withdraw +"+amt+" refused id "+ids+": "+oneLine(p.Reason))
	}
	c.Remove(pendingKey(p.ID))
	return nil
}

// oneLine keeps a chain reason printable and on one line (at most
// maxReasonBytes, the chain's own bound on a payout's reason).
func oneLine(s string) string {
	b := []byte(s)
	if len(b) > maxReasonBytes {
		b = b[:maxReasonBytes]
	}
	for i, ch := range b {
		if ch < 0x20 || ch > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

func query(c *contract.Context, input []byte) ([]byte, error) {
	f := strings.Fields(string(input))
	if len(f) != 1 {
		return nil, errors.New("queries: balance, history, link, supply")
	}
	caller := c.Caller()
	switch f[0] {
	case "balance":
		return strconv.AppendUint(nil, c.Uint64(balanceKey(caller)), 10), nil
	case "supply":
		return strconv.AppendUint(nil, c.Uint64(supplyKey), 10), nil
	case "link":
		if l, ok := c.Get(linkKey(caller)); ok && len(l) == 32 {
			return []byte(contract.Address(l).Hex()), nil
		}
		return []byte(caller.Hex()), nil
	case "history":
		n := c.Uint64(histCountKey(caller))
		first := uint64(0)
		if n > HistoryLen {
			first = n - HistoryLen
		}
		var out []byte
		for i := first; i < n; i++ {
			e, _ := c.Get(histKey(caller, i))
			out = append(append(out, e...), '\n')
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown query %q (balance, history, link, supply)", f[0])
}

// Handlers are the contract's entry points (registered by the command
// in the parent directory, which builds to WebAssembly).
func Handlers() contract.Handlers {
	return contract.Handlers{
		Command:      command,
		Query:        query,
		Deposit:      deposit,
		PayoutResult: payoutResult,
	}
}
