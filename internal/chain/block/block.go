// Package block owns the execution context a chain module runs in: the
// state it may read and write, the block's height and time (never the host
// clock), and the messages and events the call emits. A context belongs to
// one call; the application discards its writes, messages and events if the
// call fails.
package block

import (
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/internal/chain/store"
)

// Context is what a module sees while executing a call or a block hook.
type Context struct {
	KV      store.KV
	ChainID string
	Height  int64
	Time    time.Time
	Params  api.Params
	// BlockHash is the hash of the block being finalized (CometBFT's
	// RequestFinalizeBlock.Hash); empty in CheckTx.
	BlockHash []byte
	// Checking is true in CheckTx: the call is validated against pending
	// state but its messages and events go nowhere.
	Checking bool

	Messages []api.Message
	Events   []abci.Event
	// ValidatorUpdates are the changes to CometBFT's validator set the
	// block returns from FinalizeBlock (effective two heights later).
	ValidatorUpdates []abci.ValidatorUpdate
}

// Emit records a queue message. Its sequence must already be assigned (see
// package mq).
func (c *Context) Emit(m api.Message) { c.Messages = append(c.Messages, m) }

// Event records an ABCI event with string attributes given as key, value
// pairs.
func (c *Context) Event(kind string, kv ...string) {
	attrs := make([]abci.EventAttribute, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		attrs = append(attrs, abci.EventAttribute{Key: kv[i], Value: kv[i+1], Index: true})
	}
	c.Events = append(c.Events, abci.Event{Type: kind, Attributes: attrs})
}
