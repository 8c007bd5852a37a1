// Package module owns the shape every chain module has and the multiplexer
// that routes to them (the model is oasis-core's cometbft application
// multiplexer, STYLE.md item 18).
//
// A [Module] names itself and declares, in one value, everything it owns:
// the transaction calls it executes, the state key prefixes it writes, the
// off-chain origins it admits into the queue, the pushed-message topics it
// consumes, its part of the genesis, its begin- and end-block work and the
// query paths it serves. The application registers the modules once, in a
// fixed order, in a [Mux]; the Mux refuses two modules claiming the same
// call, origin, topic, query path or overlapping key prefixes, so a reader
// finds the owner of anything by reading the table.
//
// Modules that must act on each other call each other's exported functions
// (a module's state stays behind its package's API); none reads another's
// keys directly.
package module

import (
	"fmt"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/store"
)

// CallHandler executes one call of a transaction whose fee is already
// charged. An error reverts the call's writes, messages and events.
type CallHandler func(ctx *block.Context, signer crypto.PublicKey, call api.Call) error

// Authorizer says whether key may currently send messages as an off-chain
// origin of the given kind (see package mq).
type Authorizer func(kv store.KV, kind api.OriginKind, key crypto.PublicKey, height int64) error

// Consumer is a module's handler of the pushed messages of one (origin
// kind, topic). The message is in the queue whatever the handler makes of
// it: a handler that refuses records an event and returns.
type Consumer struct {
	Origin api.OriginKind
	Topic  string
	Handle func(ctx *block.Context, m *api.Message)
}

// Genesis is what InitChain gives every module.
type Genesis struct {
	ChainID    string
	State      *api.GenesisState
	Validators []abci.ValidatorUpdate // CometBFT's genesis validator set
}

// Querier answers a query that is not one proved state key (a listing, a
// block's messages). It reads committed versions of st only.
type Querier func(st *store.Store, req *abci.RequestQuery) (*abci.ResponseQuery, error)

// Module is one part of the chain's state machine. Every field but Name is
// optional.
type Module struct {
	// Name is the module's name: its origin name in the queue
	// (api.ModuleOrigin) and its name in logs.
	Name string
	// KeyPrefixes are the state key prefixes the module writes.
	KeyPrefixes []string
	// Calls maps the transaction calls the module executes to handlers.
	Calls map[api.CallKind]CallHandler
	// Origins maps the off-chain origin kinds whose pushed messages the
	// module admits to its authorizer.
	Origins map[api.OriginKind]Authorizer
	// Consumes lists the pushed messages the module acts on.
	Consumes []Consumer
	// Observe, if set, sees every pushed message the queue accepts, after
	// its consumer (counting, not acting: several modules may observe).
	Observe func(ctx *block.Context, m *api.Message)
	// InitGenesis writes the module's part of the genesis state. It runs
	// on the validated genesis; an error stops the chain from starting.
	InitGenesis func(kv store.KV, g *Genesis) error
	// BeginBlock runs before a block's transactions, EndBlock after them;
	// both on the block's working state. An error is a broken invariant:
	// the node stops rather than commit a wrong state.
	BeginBlock func(ctx *block.Context) error
	EndBlock   func(ctx *block.Context) error
	// StateQueries are the query paths answered by one state key (the key
	// is api.QueryKey(path, data)), proved on request.
	StateQueries []string
	// Queries are the query paths answered by a Querier.
	Queries map[string]Querier
}

// Mux routes calls, pushed messages, queries and block hooks to the
// registered modules. It is built once and read-only afterwards.
type Mux struct {
	modules   []*Module
	calls     map[api.CallKind]*Module
	origins   map[api.OriginKind]Authorizer
	consumers map[consumerKey]Consumer
	state     map[string]*Module
	queries   map[string]Querier
	prefixes  map[string]*Module
}

type consumerKey struct {
	origin api.OriginKind
	topic  string
}

// NewMux registers modules in order (block hooks and genesis run in this
// order). It panics on a conflict between two modules' declarations: the
// table is a program constant, not input.
func NewMux(modules ...*Module) *Mux {
	x := &Mux{calls: map[api.CallKind]*Module{}, origins: map[api.OriginKind]Authorizer{}, consumers: map[consumerKey]Consumer{},
		state: map[string]*Module{}, queries: map[string]Querier{}, prefixes: map[string]*Module{}}
	names := map[string]bool{}
	for _, m := range modules {
		if m.Name == "" || len(m.Name) > api.MaxModuleNameBytes || names[m.Name] {
			panic(fmt.Sprintf("module: bad or repeated module name %q", m.Name))
		}
		names[m.Name] = true
		for kind, h := range m.Calls {
			if o, ok := x.calls[kind]; ok {
				panic(fmt.Sprintf("module: call %s claimed by %s and %s", kind, o.Name, m.Name))
			}
			if h == nil {
				panic(fmt.Sprintf("module: %s: nil handler of %s", m.Name, kind))
			}
			x.calls[kind] = m
		}
		for kind, a := range m.Origins {
			if _, ok := x.origins[kind]; ok || !kind.OffChain() {
				panic(fmt.Sprintf("module: %s: origin %s is off-chain only and claimed once", m.Name, kind))
			}
			x.origins[kind] = a
		}
		for _, c := range m.Consumes {
			k := consumerKey{c.Origin, c.Topic}
			if _, ok := x.consumers[k]; ok {
				panic(fmt.Sprintf("module: %s: %s messages of topic %q already consumed", m.Name, c.Origin, c.Topic))
			}
			x.consumers[k] = c
		}
		for _, p := range m.KeyPrefixes {
			for q, o := range x.prefixes {
				if strings.HasPrefix(p, q) || strings.HasPrefix(q, p) {
					panic(fmt.Sprintf("module: key prefix %q of %s overlaps %q of %s", p, m.Name, q, o.Name))
				}
			}
			x.prefixes[p] = m
		}
		for _, p := range m.StateQueries {
			x.claimQuery(m, p)
			x.state[p] = m
		}
		for p, q := range m.Queries {
			x.claimQuery(m, p)
			x.queries[p] = q
		}
		x.modules = append(x.modules, m)
	}
	return x
}

func (x *Mux) claimQuery(m *Module, path string) {
	if _, ok := x.state[path]; ok {
		panic(fmt.Sprintf("module: %s: query path %s claimed twice", m.Name, path))
	}
	if _, ok := x.queries[path]; ok {
		panic(fmt.Sprintf("module: %s: query path %s claimed twice", m.Name, path))
	}
}

// Modules returns the registered modules in order.
func (x *Mux) Modules() []*Module { return x.modules }

// Execute runs a call through the module that owns its kind.
func (x *Mux) Execute(ctx *block.Context, signer crypto.PublicKey, call api.Call) error {
	m, ok := x.calls[call.Kind()]
	if !ok {
		return fmt.Errorf("%w: %s", api.ErrUnknownCall, call.Kind())
	}
	return m.Calls[call.Kind()](ctx, signer, call)
}

// Authorize is the mq admission of off-chain origins: the module owning
// the origin kind decides.
func (x *Mux) Authorize(kv store.KV, kind api.OriginKind, key crypto.PublicKey, height int64) error {
	a, ok := x.origins[kind]
	if !ok {
		return fmt.Errorf("%w: no %s with key %s is known to the chain", api.ErrUnknownOrigin, kind, key.Hex())
	}
	return a(kv, kind, key, height)
}

// Deliver hands a pushed message to the module consuming its (origin
// kind, topic), if any, then to every module observing.
func (x *Mux) Deliver(ctx *block.Context, m *api.Message) {
	if c, ok := x.consumers[consumerKey{m.Origin.Kind, m.Topic}]; ok {
		c.Handle(ctx, m)
	}
	for _, mod := range x.modules {
		if mod.Observe != nil {
			mod.Observe(ctx, m)
		}
	}
}

// InitGenesis runs every module's genesis in order.
func (x *Mux) InitGenesis(kv store.KV, g *Genesis) error {
	for _, m := range x.modules {
		if m.InitGenesis == nil {
			continue
		}
		if err := m.InitGenesis(kv, g); err != nil {
			return fmt.Errorf("genesis of module %s: %w", m.Name, err)
		}
	}
	return nil
}

// BeginBlock runs every module's begin-block hook in order.
func (x *Mux) BeginBlock(ctx *block.Context) error {
	for _, m := range x.modules {
		if m.BeginBlock == nil {
			continue
		}
		if err := m.BeginBlock(ctx); err != nil {
			return fmt.Errorf("begin block of module %s: %w", m.Name, err)
		}
	}
	return nil
}

// EndBlock runs every module's end-block hook in order.
func (x *Mux) EndBlock(ctx *block.Context) error {
	for _, m := range x.modules {
		if m.EndBlock == nil {
			continue
		}
		if err := m.EndBlock(ctx); err != nil {
			return fmt.Errorf("end block of module %s: %w", m.Name, err)
		}
	}
	return nil
}

// StateQuery reports whether path is a proved state query some module
// serves.
func (x *Mux) StateQuery(path string) bool {
	_, ok := x.state[path]
	return ok
}

// Querier returns the querier of path, or nil.
func (x *Mux) Querier(path string) Querier { return x.queries[path] }
