// Package escrow is a composed example (docs/interop.md "The composed
// example"): it holds private PHA (the ppha contract) on behalf of two
// parties and moves it only when both have committed. The payer funds a
// deal by sending pPHA to this contract (ppha's send, whose memo names the
// deal); the payee commits by accepting it; then this contract, whose own
// pPHA balance holds the funds, calls ppha "transfer <payee> <amount>".
// Before acceptance the payer may cancel, and the funds go back by the
// same path.
//
// Init input: the ppha contract's id (0x and 32 bytes of hex). Inputs are
// short text commands; amounts are PHA base units; deal ids are 1 to 64
// letters, digits, '-' or '_':
//
//	received <from> <amount> <memo>  (command, from the ppha contract only) funds a deal;
//	                                  memo: deal <id> <payee> [<amount>]
//	accept <id> [<amount>]           (command, the payee) release the funds to the payee
//	cancel <id>                      (command, the payer, before acceptance) refund the payer
//	deal <id>                        (query, the payer or the payee) the deal's state
//
// # Decisions (what happens when)
//
//   - received from any caller but the ppha contract: refused (nothing
//     moved: only ppha's send moves pPHA to this contract).
//   - A malformed memo, a deal id used before (by any deal, in any state:
//     ids are never reused), a payee equal to the payer, or a memo naming
//     an amount that is not the amount received: the deal is not funded
//     and the amount is bounced back to the sender (ppha transfer). The
//     command succeeds (its output says "bounced: <reason>"): failing it
//     would revert the bounce and leave the pPHA, already credited to this
//     contract by ppha's send, with nobody.
//   - accept by anyone but the payee, of an unknown deal, of a deal
//     already accepted (a second accept) or cancelled, or naming an amount
//     other than the deal's: refused, nothing moves.
//   - cancel by anyone but the payer, of an unknown deal, after acceptance
//     or a second time: refused, nothing moves.
//   - deal queried, accepted or cancelled by anyone but the payer or the
//     payee: "no such deal" (the same answer as an unknown id: a non-party
//     learns nothing, not even that the deal exists).
//
// # Storage layout (keys built with contract.Key)
//
//	Key("ppha")        32 bytes: the ppha contract's id
//	Key("deal", id)    payer[32] ‖ payee[32] ‖ amount u64 ‖ state u8 ‖ funded height u64 ‖ closed height u64
//	                   (integers big-endian; state 1 funded, 2 accepted, 3 cancelled)
package escrow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/phalago/phala/contract"
)

// TransferGas is the gas forwarded with each call to ppha's transfer.
const TransferGas = 2_000_000

var pphaKey = contract.Key([]byte("ppha"))

func dealKey(id string) []byte { return contract.Key([]byte("deal"), []byte(id)) }

// Deal states.
const (
	Funded    = 1
	Accepted  = 2
	Cancelled = 3
)

var stateNames = map[byte]string{Funded: "funded", Accepted: "accepted", Cancelled: "cancelled"}

type deal struct {
	payer, payee   contract.Address
	amount         uint64
	state          byte
	funded, closed int64
}

const dealBytes = 32 + 32 + 8 + 1 + 8 + 8

func (d *deal) encode() []byte {
	b := make([]byte, 0, dealBytes)
	b = append(append(b, d.payer[:]...), d.payee[:]...)
	b = binary.BigEndian.AppendUint64(b, d.amount)
	b = append(b, d.state)
	b = binary.BigEndian.AppendUint64(b, uint64(d.funded))
	return binary.BigEndian.AppendUint64(b, uint64(d.closed))
}

func loadDeal(c *contract.Context, id string) (*deal, bool) {
	v, ok := c.Get(dealKey(id))
	if !ok || len(v) != dealBytes {
		return nil, false
	}
	return &deal{payer: contract.Address(v[:32]), payee: contract.Address(v[32:64]), amount: binary.BigEndian.Uint64(v[64:72]),
		state: v[72], funded: int64(binary.BigEndian.Uint64(v[73:81])), closed: int64(binary.BigEndian.Uint64(v[81:89]))}, true
}

func parseAmount(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 || s[0] == '0' {
		return 0, fmt.Errorf("amount %q must be a positive integer of PHA base units", s)
	}
	return v, nil
}

func validID(id string) error {
	if len(id) == 0 || len(id) > 64 {
		return fmt.Errorf("deal id %q must be 1 to 64 characters", id)
	}
	for i := 0; i < len(id); i++ {
		ch := id[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			return fmt.Errorf("deal id %q: letters, digits, '-' and '_' only", id)
		}
	}
	return nil
}

func pphaContract(c *contract.Context) contract.Address {
	v, _ := c.Get(pphaKey)
	return contract.Address(v)
}

// pay calls ppha to transfer amount of this contract's pPHA to to.
func pay(c *contract.Context, to contract.Address, amount uint64) error {
	return c.CallContract(pphaContract(c), []byte("transfer "+to.Hex()+" "+strconv.FormatUint(amount, 10)), TransferGas, true)
}

// fund opens a deal from a memo, or says why it cannot (the caller
// bounces the funds).
func fund(c *contract.Context, from contract.Address, amount uint64, memo []string) (string, error) {
	if len(memo) < 3 || len(memo) > 4 || memo[0] != "deal" {
		return "", errors.New("memo must be: deal <id> <payee> [<amount>]")
	}
	id := memo[1]
	if err := validID(id); err != nil {
		return "", err
	}
	payee, err := contract.ParseAddress(memo[2])
	if err != nil {
		return "", err
	}
	if payee == from {
		return "", errors.New("the payee is the payer")
	}
	if len(memo) == 4 {
		want, err := parseAmount(memo[3])
		if err != nil {
			return "", err
		}
		if want != amount {
			return "", fmt.Errorf("the memo names %d, %d were sent", want, amount)
		}
	}
	if _, used := c.Get(dealKey(id)); used {
		return "", fmt.Errorf("deal %s exists already (ids are never reused)", id)
	}
	d := deal{payer: from, payee: payee, amount: amount, state: Funded, funded: c.Height()}
	c.Set(dealKey(id), d.encode())
	return "deal " + id + " funded", nil
}

func command(c *contract.Context, input []byte) ([]byte, error) {
	f := strings.Fields(string(input))
	if len(f) == 0 {
		return nil, errors.New("commands: received (from ppha), accept <id> [<amount>], cancel <id>")
	}
	caller := c.Caller()
	switch f[0] {
	case "received":
		if caller != pphaContract(c) {
			return nil, errors.New("received is accepted only from the ppha contract")
		}
		if len(f) < 3 {
			return nil, errors.New("usage: received <from> <amount> <memo>")
		}
		from, err := contract.ParseAddress(f[1])
		if err != nil {
			return nil, err
		}
		amount, err := parseAmount(f[2])
		if err != nil {
			return nil, err
		}
		out, ferr := fund(c, from, amount, f[3:])
		if ferr == nil {
			return []byte(out), nil
		}
		if err := pay(c, from, amount); err != nil {
			return nil, fmt.Errorf("bounce: %w", err)
		}
		return []byte("bounced: " + ferr.Error()), nil

	case "accept", "cancel":
		if len(f) < 2 || len(f) > 3 || f[0] == "cancel" && len(f) != 2 {
			return nil, errors.New("usage: accept <id> [<amount>] | cancel <id>")
		}
		id := f[1]
		d, ok := loadDeal(c, id)
		if !ok || caller != d.payer && caller != d.payee {
			// The same answer for a deal that exists and one that does not:
			// a non-party learns nothing (as from the deal query).
			return nil, fmt.Errorf("no such deal %q (or it is not yours)", id)
		}
		to, who := d.payee, "payee"
		if f[0] == "cancel" {
			to, who = d.payer, "payer"
		}
		if caller != to {
			return nil, fmt.Errorf("only the deal's %s may %s it", who, f[0])
		}
		if d.state != Funded {
			return nil, fmt.Errorf("deal %s is %s already", id, stateNames[d.state])
		}
		if len(f) == 3 {
			want, err := parseAmount(f[2])
			if err != nil {
				return nil, err
			}
			if want != d.amount {
				return nil, fmt.Errorf("deal %s holds %d, not %d", id, d.amount, want)
			}
		}
		if err := pay(c, to, d.amount); err != nil {
			return nil, fmt.Errorf("%s: %w", f[0], err)
		}
		d.state, d.closed = Accepted, c.Height()
		if f[0] == "cancel" {
			d.state = Cancelled
		}
		c.Set(dealKey(id), d.encode())
		return []byte("deal " + id + " " + stateNames[d.state]), nil
	}
	return nil, fmt.Errorf("unknown command %q (received, accept, cancel)", f[0])
}

func query(c *contract.Context, input []byte) ([]byte, error) {
	f := strings.Fields(string(input))
	if len(f) != 2 || f[0] != "deal" {
		return nil, errors.New("usage: deal <id>")
	}
	d, ok := loadDeal(c, f[1])
	if caller := c.Caller(); !ok || caller != d.payer && caller != d.payee {
		return nil, fmt.Errorf("no such deal %q (or it is not yours)", f[1])
	}
	out := fmt.Sprintf("deal %s: payer %s payee %s amount %d state %s, funded at height %d", f[1], d.payer.Hex(), d.payee.Hex(), d.amount, stateNames[d.state], d.funded)
	if d.closed != 0 {
		out += fmt.Sprintf(", %s at height %d", stateNames[d.state], d.closed)
	}
	return []byte(out), nil
}

func initContract(c *contract.Context, input []byte) ([]byte, error) {
	p, err := contract.ParseAddress(strings.TrimSpace(string(input)))
	if err != nil {
		return nil, fmt.Errorf("init input must be the ppha contract's id: %w", err)
	}
	c.Set(pphaKey, p[:])
	return nil, nil
}

// Handlers are the contract's entry points (registered by the command
// in the parent directory, which builds to WebAssembly).
func Handlers() contract.Handlers {
	return contract.Handlers{Init: initContract, Command: command, Query: query}
}
