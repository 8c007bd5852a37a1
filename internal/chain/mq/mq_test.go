package mq

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/store"
)

const chainID = "phala-mq-test"

var (
	alice     = crypto.MustKeyPairFromURI("//Alice")
	worker    = crypto.MustKeyPairFromURI("//Worker")
	stranger  = crypto.MustKeyPairFromURI("//Stranger")
	keeper    = crypto.MustKeyPairFromURI("//Gatekeeper")
	errDenied = errors.New("test authorizer: denied")
)

// memKV is a trivial map-backed store.KV.
type memKV map[string][]byte

func (m memKV) Get(key []byte) []byte { return m[string(key)] }
func (m memKV) Set(key, value []byte) { m[string(key)] = value }
func (m memKV) Delete(key []byte)     { delete(m, string(key)) }

func (m memKV) clone() memKV {
	out := make(memKV, len(m))
	for k, v := range m {
		out[k] = append([]byte(nil), v...)
	}
	return out
}

// newContext returns a block context whose KV is a cache over mem.
func newContext(mem memKV) (*block.Context, *store.Cache) {
	c := store.NewCache(mem)
	return &block.Context{KV: c, ChainID: chainID, Height: 7, Time: time.Unix(1_700_000_000, 0), Params: api.DefaultParams()}, c
}

func seqValue(n uint64) []byte { return binary.AppendUvarint(nil, n) }

// checkEvent checks that ev is the "message" event of m.
func checkEvent(t *testing.T, ev map[string]string, kind string, m api.Message) {
	t.Helper()
	want := map[string]string{"origin": m.Origin.String(), "topic": m.Topic, "seq": strconv.FormatUint(m.Seq, 10)}
	if kind != "message" || !reflect.DeepEqual(ev, want) {
		t.Fatalf("event %s %v, want message %v", kind, ev, want)
	}
}

func eventAttrs(ctx *block.Context, i int) (string, map[string]string) {
	e := ctx.Events[i]
	attrs := map[string]string{}
	for _, a := range e.Attributes {
		attrs[a.Key] = a.Value
	}
	return e.Type, attrs
}

func TestNextSeq(t *testing.T) {
	o := api.ModuleOrigin("registry")
	tests := []struct {
		name   string
		stored []byte // nil: no entry
		want   uint64
		panics bool
	}{
		{name: "no entry", want: 0},
		{name: "zero", stored: seqValue(0), want: 0},
		{name: "one byte", stored: seqValue(5), want: 5},
		{name: "multi byte", stored: seqValue(300), want: 300},
		{name: "max", stored: seqValue(^uint64(0)), want: ^uint64(0)},
		{name: "corrupt", stored: []byte{0x80}, panics: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := memKV{}
			if tc.stored != nil {
				mem[string(api.NextSeqKey(o))] = tc.stored
			}
			defer func() {
				if r := recover(); (r != nil) != tc.panics {
					t.Fatalf("panic = %v, want panic %v", r, tc.panics)
				}
			}()
			if got := NextSeq(mem, o); got != tc.want {
				t.Fatalf("NextSeq = %d, want %d", got, tc.want)
			}
		})
	}
}

// SkipTo only moves a sequence forward.
func TestSkipTo(t *testing.T) {
	o := api.ModuleOrigin("registry")
	mem := memKV{}
	SkipTo(mem, o, 7)
	if got := NextSeq(mem, o); got != 7 {
		t.Fatalf("after SkipTo(7): %d", got)
	}
	SkipTo(mem, o, 3)
	if got := NextSeq(mem, o); got != 7 {
		t.Fatalf("SkipTo moved back: %d", got)
	}
}

func TestEmitSequencesPerOrigin(t *testing.T) {
	mem := memKV{}
	ctx, cache := newContext(mem)
	mod := api.ModuleOrigin("registry")
	other := api.ModuleOrigin("accounts")
	acct := api.KeyOrigin(api.OriginAccount, alice.Public())
	// Same key, different kind: a separate origin with its own sequence.
	acctAsWorker := api.KeyOrigin(api.OriginWorker, alice.Public())

	calls := []struct {
		o       api.Origin
		wantSeq uint64
	}{
		{mod, 0}, {acct, 0}, {mod, 1}, {other, 0}, {mod, 2}, {acct, 1}, {other, 1}, {acct, 2},
	}
	for i, c := range calls {
		payload := []byte(fmt.Sprintf("payload %d", i))
		if err := Emit(ctx, c.o, "t/"+strconv.Itoa(i), payload); err != nil {
			t.Fatalf("Emit #%d from %s: %v", i, c.o, err)
		}
		m := ctx.Messages[len(ctx.Messages)-1]
		want := api.Message{Origin: c.o, Topic: "t/" + strconv.Itoa(i), Seq: c.wantSeq, Payload: payload}
		if !reflect.DeepEqual(m, want) {
			t.Fatalf("Emit #%d enqueued %+v, want %+v", i, m, want)
		}
		kind, attrs := eventAttrs(ctx, len(ctx.Events)-1)
		checkEvent(t, attrs, kind, want)
	}
	if len(ctx.Messages) != len(calls) || len(ctx.Events) != len(calls) {
		t.Fatalf("%d messages and %d events for %d calls", len(ctx.Messages), len(ctx.Events), len(calls))
	}
	for o, want := range map[api.Origin]uint64{mod: 3, other: 2, acct: 3, acctAsWorker: 0} {
		if got := NextSeq(ctx.KV, o); got != want {
			t.Errorf("NextSeq(%s) = %d, want %d", o, got, want)
		}
	}
	// Nothing reaches the parent before the cache is written; after, the
	// sequences are stored as uvarints under NextSeqKey.
	if len(mem) != 0 {
		t.Fatalf("parent written before Write: %d keys", len(mem))
	}
	cache.Write()
	want := memKV{
		string(api.NextSeqKey(mod)):   seqValue(3),
		string(api.NextSeqKey(other)): seqValue(2),
		string(api.NextSeqKey(acct)):  seqValue(3),
	}
	if !reflect.DeepEqual(mem, want) {
		t.Fatalf("stored sequences = %v, want %v", mem, want)
	}

	// A new block continues from the stored sequences.
	ctx2, _ := newContext(mem)
	if err := Emit(ctx2, mod, "t", nil); err != nil {
		t.Fatal(err)
	}
	if got := ctx2.Messages[0].Seq; got != 3 {
		t.Fatalf("next block's first message of %s has seq %d, want 3", mod, got)
	}
}

func TestEmitRefusals(t *testing.T) {
	mod := api.ModuleOrigin("registry")
	tests := []struct {
		name    string
		origin  api.Origin
		topic   string
		payload []byte
		wantErr error // nil: accepted
	}{
		{name: "worker origin", origin: api.KeyOrigin(api.OriginWorker, worker.Public()), topic: "t", wantErr: api.ErrInvalidCall},
		{name: "contract origin", origin: api.KeyOrigin(api.OriginContract, worker.Public()), topic: "t", wantErr: api.ErrInvalidCall},
		{name: "gatekeeper origin", origin: api.KeyOrigin(api.OriginGatekeeper, keeper.Public()), topic: "t", wantErr: api.ErrInvalidCall},
		{name: "empty topic", origin: mod, topic: "", wantErr: api.ErrInvalidCall},
		{name: "topic too long", origin: mod, topic: strings.Repeat("x", api.MaxTopicBytes+1), wantErr: api.ErrInvalidCall},
		{name: "payload too large", origin: mod, topic: "t", payload: make([]byte, api.MaxPayloadBytes+1), wantErr: api.ErrTooLarge},
		{name: "longest topic", origin: mod, topic: strings.Repeat("x", api.MaxTopicBytes)},
		{name: "largest payload", origin: mod, topic: "t", payload: make([]byte, api.MaxPayloadBytes)},
		{name: "empty payload", origin: mod, topic: "t", payload: nil},
		{name: "account origin", origin: api.KeyOrigin(api.OriginAccount, alice.Public()), topic: "t"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := memKV{string(api.NextSeqKey(tc.origin)): seqValue(4)}
			before := mem.clone()
			ctx, cache := newContext(mem)
			err := Emit(ctx, tc.origin, tc.topic, tc.payload)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Emit: %v", err)
				}
				if len(ctx.Messages) != 1 || ctx.Messages[0].Seq != 4 {
					t.Fatalf("messages = %+v, want one with seq 4", ctx.Messages)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Emit error = %v, want %v", err, tc.wantErr)
			}
			if len(ctx.Messages) != 0 || len(ctx.Events) != 0 {
				t.Fatalf("refused Emit left %d messages, %d events", len(ctx.Messages), len(ctx.Events))
			}
			if got := NextSeq(ctx.KV, tc.origin); got != 4 {
				t.Fatalf("refused Emit moved the sequence to %d", got)
			}
			cache.Write()
			if !reflect.DeepEqual(mem, before) {
				t.Fatalf("refused Emit changed state: %v", mem)
			}
		})
	}
}

// authorizer allows the worker and the gatekeeper, and records its calls.
type authorizer struct {
	calls []string
}

func (a *authorizer) check(kv store.KV, kind api.OriginKind, key crypto.PublicKey, height int64) error {
	if kv == nil {
		return errors.New("authorizer given no state")
	}
	a.calls = append(a.calls, fmt.Sprintf("%s %s %d", kind, key.Hex(), height))
	switch {
	case kind == api.OriginWorker && key == worker.Public(),
		kind == api.OriginGatekeeper && key == keeper.Public():
		return nil
	}
	return fmt.Errorf("%w: %s %s (%w)", api.ErrUnknownOrigin, kind, key.Hex(), errDenied)
}

func TestPush(t *testing.T) {
	wOrigin := api.KeyOrigin(api.OriginWorker, worker.Public())
	gOrigin := api.KeyOrigin(api.OriginGatekeeper, keeper.Public())
	sOrigin := api.KeyOrigin(api.OriginWorker, stranger.Public())
	const next = 2 // the stored next sequence of every origin

	signed := func(o api.Origin, seq uint64, key *crypto.KeyPair) api.SignedMessage {
		return api.SignMessage(chainID, api.Message{Origin: o, Topic: "w/out", Seq: seq, Payload: []byte("hello")}, key)
	}
	tests := []struct {
		name     string
		msg      api.SignedMessage
		wantErr  error // nil: accepted
		wantAuth bool  // the authorizer must have been asked
	}{
		{name: "next sequence", msg: signed(wOrigin, next, worker), wantAuth: true},
		{name: "gatekeeper next sequence", msg: signed(gOrigin, next, keeper), wantAuth: true},
		{name: "unauthorized origin", msg: signed(sOrigin, next, stranger), wantErr: errDenied, wantAuth: true},
		{name: "unauthorized kind for an authorized key", msg: signed(api.KeyOrigin(api.OriginContract, worker.Public()), next, worker), wantErr: api.ErrUnknownOrigin, wantAuth: true},
		{name: "module origin", msg: api.SignedMessage{Message: api.Message{Origin: api.ModuleOrigin("registry"), Topic: "t", Seq: next}}, wantErr: api.ErrUnknownOrigin},
		{name: "account origin", msg: signed(api.KeyOrigin(api.OriginAccount, worker.Public()), next, worker), wantErr: api.ErrUnknownOrigin},
		{name: "signed by another key", msg: signed(wOrigin, next, stranger), wantErr: api.ErrBadSignature, wantAuth: true},
		{name: "signed for another chain", msg: api.SignMessage("other-chain", signed(wOrigin, next, worker).Message, worker), wantErr: api.ErrBadSignature, wantAuth: true},
		{name: "payload changed after signing", msg: func() api.SignedMessage {
			m := signed(wOrigin, next, worker)
			m.Message.Payload = []byte("hellO")
			return m
		}(), wantErr: api.ErrBadSignature, wantAuth: true},
		{name: "sequence changed after signing", msg: func() api.SignedMessage {
			m := signed(wOrigin, next+1, worker)
			m.Message.Seq = next
			return m
		}(), wantErr: api.ErrBadSignature, wantAuth: true},
		{name: "zero signature", msg: api.SignedMessage{Message: signed(wOrigin, next, worker).Message}, wantErr: api.ErrBadSignature, wantAuth: true},
		{name: "gap", msg: signed(wOrigin, next+1, worker), wantErr: api.ErrBadSequence, wantAuth: true},
		{name: "far gap", msg: signed(wOrigin, 1<<40, worker), wantErr: api.ErrBadSequence, wantAuth: true},
		{name: "repeat of the last", msg: signed(wOrigin, next-1, worker), wantErr: api.ErrAlreadyAccepted, wantAuth: true},
		{name: "repeat of the first", msg: signed(wOrigin, 0, worker), wantErr: api.ErrAlreadyAccepted, wantAuth: true},
		{name: "empty topic", msg: api.SignMessage(chainID, api.Message{Origin: wOrigin, Seq: next}, worker), wantErr: api.ErrInvalidCall},
		{name: "topic too long", msg: api.SignMessage(chainID, api.Message{Origin: wOrigin, Topic: strings.Repeat("t", api.MaxTopicBytes+1), Seq: next}, worker), wantErr: api.ErrInvalidCall},
		{name: "payload too large", msg: api.SignMessage(chainID, api.Message{Origin: wOrigin, Topic: "t", Seq: next, Payload: make([]byte, api.MaxPayloadBytes+1)}, worker), wantErr: api.ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := memKV{}
			for _, o := range []api.Origin{wOrigin, gOrigin, sOrigin, api.KeyOrigin(api.OriginContract, worker.Public()), api.KeyOrigin(api.OriginAccount, worker.Public()), api.ModuleOrigin("registry")} {
				mem[string(api.NextSeqKey(o))] = seqValue(next)
			}
			before := mem.clone()
			ctx, cache := newContext(mem)
			auth := &authorizer{}
			m := tc.msg
			err := Push(ctx, &m, auth.check)

			if tc.wantAuth {
				want := []string{fmt.Sprintf("%s %s %d", m.Message.Origin.Kind, m.Message.Origin.Key.Hex(), ctx.Height)}
				if !reflect.DeepEqual(auth.calls, want) {
					t.Errorf("authorizer calls = %v, want %v", auth.calls, want)
				}
			}
			o := m.Message.Origin
			if !o.Kind.OffChain() && len(auth.calls) != 0 {
				t.Errorf("authorizer asked about a chain origin: %v", auth.calls)
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Push: %v", err)
				}
				if len(ctx.Messages) != 1 || !reflect.DeepEqual(ctx.Messages[0], m.Message) {
					t.Fatalf("enqueued %+v, want exactly %+v", ctx.Messages, m.Message)
				}
				if len(ctx.Events) != 1 {
					t.Fatalf("%d events, want 1", len(ctx.Events))
				}
				kind, attrs := eventAttrs(ctx, 0)
				checkEvent(t, attrs, kind, m.Message)
				if got := NextSeq(ctx.KV, o); got != next+1 {
					t.Fatalf("NextSeq after Push = %d, want %d", got, next+1)
				}
				cache.Write()
				if got := mem[string(api.NextSeqKey(o))]; !reflect.DeepEqual(got, seqValue(next+1)) {
					t.Fatalf("stored sequence = %x, want %x", got, seqValue(next+1))
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Push error = %v, want %v", err, tc.wantErr)
			}
			if len(ctx.Messages) != 0 || len(ctx.Events) != 0 {
				t.Fatalf("refused Push left %d messages, %d events", len(ctx.Messages), len(ctx.Events))
			}
			if got := NextSeq(ctx.KV, o); got != next {
				t.Fatalf("refused Push moved the sequence to %d", got)
			}
			cache.Write()
			if !reflect.DeepEqual(mem, before) {
				t.Fatalf("refused Push changed state")
			}
		})
	}
}

func TestPushStream(t *testing.T) {
	// A worker's messages 0, 1, 2 are admitted in order; each can be
	// admitted only once, and the gatekeeper's sequence is independent.
	wOrigin := api.KeyOrigin(api.OriginWorker, worker.Public())
	gOrigin := api.KeyOrigin(api.OriginGatekeeper, keeper.Public())
	mem := memKV{}
	ctx, _ := newContext(mem)
	auth := &authorizer{}
	push := func(o api.Origin, key *crypto.KeyPair, seq uint64) error {
		m := api.SignMessage(chainID, api.Message{Origin: o, Topic: "t", Seq: seq, Payload: []byte{byte(seq)}}, key)
		return Push(ctx, &m, auth.check)
	}
	steps := []struct {
		o       api.Origin
		key     *crypto.KeyPair
		seq     uint64
		wantErr error
	}{
		{wOrigin, worker, 1, api.ErrBadSequence},
		{wOrigin, worker, 0, nil},
		{wOrigin, worker, 0, api.ErrAlreadyAccepted},
		{gOrigin, keeper, 0, nil},
		{wOrigin, worker, 1, nil},
		{gOrigin, keeper, 2, api.ErrBadSequence},
		{wOrigin, worker, 2, nil},
		{gOrigin, keeper, 1, nil},
		{wOrigin, worker, 2, api.ErrAlreadyAccepted},
	}
	var wantSeqs []string
	for i, s := range steps {
		err := push(s.o, s.key, s.seq)
		if !errors.Is(err, s.wantErr) {
			t.Fatalf("step %d: push %s seq %d = %v, want %v", i, s.o, s.seq, err, s.wantErr)
		}
		if err == nil {
			wantSeqs = append(wantSeqs, fmt.Sprintf("%s#%d", s.o.Kind, s.seq))
		}
	}
	var got []string
	for _, m := range ctx.Messages {
		got = append(got, fmt.Sprintf("%s#%d", m.Origin.Kind, m.Seq))
	}
	if !reflect.DeepEqual(got, wantSeqs) {
		t.Fatalf("queue = %v, want %v", got, wantSeqs)
	}
	if NextSeq(ctx.KV, wOrigin) != 3 || NextSeq(ctx.KV, gOrigin) != 2 {
		t.Fatalf("next sequences: worker %d, gatekeeper %d", NextSeq(ctx.KV, wOrigin), NextSeq(ctx.KV, gOrigin))
	}
}
