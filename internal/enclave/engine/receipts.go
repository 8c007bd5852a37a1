package engine

// Command receipts (api.Receipt): each running contract keeps the receipts
// of its latest commands, in plaintext inside the enclave and in its
// sealed checkpoint part (so a restart loses none), and serves them sealed
// to each command's sender and signed by the contract. Every replica
// computes the same receipts (status, output and gas are functions of the
// chain's commands), so any of them can serve one.

import (
	"context"
	"errors"
	"fmt"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// Retention of receipts per contract: the latest MaxReceipts commands'
// receipts, and fewer when their outputs exceed MaxReceiptBytes. An older
// receipt is gone (ErrNoReceipt).
const (
	MaxReceipts     = 16_384
	MaxReceiptBytes = 8 << 20
)

// ErrNoReceipt: the worker holds no receipt for the command: not
// dispatched yet (compare NoReceiptError.Dispatched with the command's
// height), evicted (older than the retention), or never a command of the
// contract.
var ErrNoReceipt = errors.New("no receipt")

// NoReceiptError is ErrNoReceipt with the height this worker dispatched.
type NoReceiptError struct {
	Dispatched int64
	Oldest     int64 // height of the oldest receipt kept, 0 if none
}

func (e *NoReceiptError) Error() string {
	return fmt.Sprintf("%v: this worker dispatched blocks up to height %d and keeps receipts from height %d", ErrNoReceipt, e.Dispatched, e.Oldest)
}

func (e *NoReceiptError) Unwrap() error { return ErrNoReceipt }

type receiptKey struct {
	from  crypto.PublicKey
	nonce uint64
}

type receiptEntry struct {
	key    receiptKey
	height int64
	body   api.ReceiptBody
}

// receiptLog is one contract's receipts, oldest first. Not safe for
// concurrent use (the engine's lock).
type receiptLog struct {
	entries []receiptEntry
	index   map[receiptKey]int // position in entries, plus base
	base    int                // entries[0]'s position
	bytes   int                // of outputs
}

func newReceiptLog() *receiptLog { return &receiptLog{index: map[receiptKey]int{}} }

func (l *receiptLog) add(e receiptEntry) {
	if _, ok := l.index[e.key]; ok {
		return // a nonce is executed once; keep the first receipt
	}
	l.entries = append(l.entries, e)
	l.index[e.key] = l.base + len(l.entries) - 1
	l.bytes += len(e.body.Output)
	for len(l.entries) > MaxReceipts || (l.bytes > MaxReceiptBytes && len(l.entries) > 1) {
		old := l.entries[0]
		l.entries[0] = receiptEntry{}
		l.entries = l.entries[1:]
		delete(l.index, old.key)
		l.bytes -= len(old.body.Output)
		l.base++
	}
}

func (l *receiptLog) get(k receiptKey) (receiptEntry, bool) {
	i, ok := l.index[k]
	if !ok {
		return receiptEntry{}, false
	}
	return l.entries[i-l.base], true
}

func (l *receiptLog) oldest() int64 {
	if len(l.entries) == 0 {
		return 0
	}
	return l.entries[0].height
}

func (l *receiptLog) encode(w *codec.Writer) {
	w.Uvarint(uint64(len(l.entries)))
	for i := range l.entries {
		e := &l.entries[i]
		w.Fixed(e.key.from[:])
		w.Uvarint(e.key.nonce)
		w.Varint(e.height)
		w.U8(uint8(e.body.Status))
		w.Uvarint(e.body.GasUsed)
		w.BytesField(e.body.Output)
	}
}

// decodeReceiptLog reads what encode wrote, strictly: within the
// retention bounds, heights never decreasing, no key twice.
func decodeReceiptLog(r *codec.Reader) *receiptLog {
	l := newReceiptLog()
	n := r.Uvarint()
	if n > MaxReceipts || n > uint64(r.Remaining()/36) {
		r.Fail(fmt.Errorf("%w: %d receipts", codec.ErrTooLong, n))
		return l
	}
	for ; r.Err() == nil && n > 0; n-- {
		var e receiptEntry
		r.Fixed(e.key.from[:])
		e.key.nonce = r.Uvarint()
		e.height = r.Varint()
		e.body.Status = api.ReceiptStatus(r.U8())
		e.body.GasUsed = r.Uvarint()
		e.body.Output = r.BytesField(api.MaxReceiptOutputBytes)
		switch _, dup := l.index[e.key]; {
		case r.Err() != nil:
		case e.body.Status > api.ReceiptRejected:
			r.Fail(fmt.Errorf("%w: receipt status %d", codec.ErrBadFormat, e.body.Status))
		case dup:
			r.Fail(fmt.Errorf("%w: receipt repeated", codec.ErrBadFormat))
		case len(l.entries) > 0 && e.height < l.entries[len(l.entries)-1].height:
			r.Fail(fmt.Errorf("%w: receipts out of order", codec.ErrBadFormat))
		case len(l.entries) > 0 && l.bytes+len(e.body.Output) > MaxReceiptBytes:
			r.Fail(fmt.Errorf("%w: receipts over %d bytes", codec.ErrTooLong, MaxReceiptBytes))
		default:
			l.add(e)
		}
	}
	return l
}

// recordReceipt keeps the receipt of a command r executed (or rejected)
// at height.
func (r *running) recordReceipt(from crypto.PublicKey, nonce uint64, height int64, body api.ReceiptBody) {
	if r.receipts == nil {
		r.receipts = newReceiptLog()
	}
	r.receipts.add(receiptEntry{key: receiptKey{from, nonce}, height: height, body: body})
	r.dirty = true
}

// Receipt returns the receipt of the command (contract, from, nonce),
// sealed to from and signed by the contract. Anyone may ask: only from's
// key (and the contract) opens it. It shares the query slots
// (MaxConcurrentQueries, QueryTimeout): each answer costs an ECDH and a
// signature. Errors: ErrBadInput (this worker does not run the contract),
// *NoReceiptError (ErrNoReceipt), ErrBusy.
func (e *Engine) Receipt(ctx context.Context, contract, from crypto.PublicKey, nonce uint64) (*api.Receipt, error) {
	slots := e.querySlots()
	wait, cancel := context.WithTimeout(ctx, QueryTimeout)
	defer cancel()
	select {
	case slots <- struct{}{}:
		defer func() { <-slots }()
	case <-wait.Done():
		return nil, fmt.Errorf("%w: %d queries in progress (%v)", ErrBusy, MaxConcurrentQueries, wait.Err())
	}
	e.mu.Lock()
	r, ok := e.running[contract]
	var ent receiptEntry
	var found bool
	var oldest int64
	if ok && r.receipts != nil {
		ent, found = r.receipts.get(receiptKey{from, nonce})
		oldest = r.receipts.oldest()
	}
	dispatched := e.st.dispatched
	e.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: this worker does not run contract %s", ErrBadInput, contract.Hex())
	}
	if !found {
		return nil, &NoReceiptError{Dispatched: dispatched, Oldest: oldest}
	}
	ch, err := r.c.Channel(from, api.ChannelPurposeReceipt)
	if err != nil {
		return nil, fmt.Errorf("%w: sender key: %v", ErrBadInput, err)
	}
	rc := &api.Receipt{Contract: contract, From: from, Nonce: nonce, Height: ent.height}
	rc.Sealed = ch.Seal(ent.body.Encode(), rc.Header())
	rc.Signature = r.c.Keys().Identity.Sign(api.ContextReceipt, rc.SignBytes())
	return rc, nil
}
