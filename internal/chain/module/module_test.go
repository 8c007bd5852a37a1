package module

import (
	"errors"
	"strings"
	"testing"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/block"
)

func call(*block.Context, crypto.PublicKey, api.Call) error { return nil }

// TestMuxRefusesConflicts: two modules cannot own the same thing.
func TestMuxRefusesConflicts(t *testing.T) {
	tests := []struct {
		name string
		a, b *Module
		want string
	}{
		{"same name", &Module{Name: "x"}, &Module{Name: "x"}, "repeated"},
		{"same call", &Module{Name: "a", Calls: map[api.CallKind]CallHandler{api.CallTransfer: call}}, &Module{Name: "b", Calls: map[api.CallKind]CallHandler{api.CallTransfer: call}}, "claimed by a and b"},
		{"overlapping keys", &Module{Name: "a", KeyPrefixes: []string{"c/"}}, &Module{Name: "b", KeyPrefixes: []string{"c/x"}}, "overlaps"},
		{"same query", &Module{Name: "a", StateQueries: []string{"/q"}}, &Module{Name: "b", StateQueries: []string{"/q"}}, "claimed twice"},
		{"same topic", &Module{Name: "a", Consumes: []Consumer{{Origin: api.OriginWorker, Topic: "t"}}}, &Module{Name: "b", Consumes: []Consumer{{Origin: api.OriginWorker, Topic: "t"}}}, "already consumed"},
		{"same origin", &Module{Name: "a", Origins: map[api.OriginKind]Authorizer{api.OriginWorker: nil}}, &Module{Name: "b", Origins: map[api.OriginKind]Authorizer{api.OriginWorker: nil}}, "claimed once"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(r.(string), tc.want) {
					t.Fatalf("NewMux panic %v, want one containing %q", r, tc.want)
				}
			}()
			NewMux(tc.a, tc.b)
		})
	}
}

// TestMuxRoutes: calls, origins and pushed topics reach their owner; the
// rest is refused or ignored.
func TestMuxRoutes(t *testing.T) {
	var got []string
	x := NewMux(&Module{
		Name: "a",
		Calls: map[api.CallKind]CallHandler{api.CallTransfer: func(*block.Context, crypto.PublicKey, api.Call) error {
			got = append(got, "transfer")
			return nil
		}},
		Consumes: []Consumer{{Origin: api.OriginGatekeeper, Topic: "t", Handle: func(*block.Context, *api.Message) { got = append(got, "t") }}},
	})
	ctx := &block.Context{}
	if err := x.Execute(ctx, crypto.PublicKey{}, &api.Transfer{}); err != nil {
		t.Fatal(err)
	}
	if err := x.Execute(ctx, crypto.PublicKey{}, &api.PostMessage{}); !errors.Is(err, api.ErrUnknownCall) {
		t.Fatalf("unowned call: %v", err)
	}
	if err := x.Authorize(nil, api.OriginWorker, crypto.PublicKey{}, 1); !errors.Is(err, api.ErrUnknownOrigin) {
		t.Fatalf("unowned origin: %v", err)
	}
	x.Deliver(ctx, &api.Message{Origin: api.Origin{Kind: api.OriginGatekeeper}, Topic: "t"})
	x.Deliver(ctx, &api.Message{Origin: api.Origin{Kind: api.OriginWorker}, Topic: "t"})
	x.Deliver(ctx, &api.Message{Origin: api.Origin{Kind: api.OriginGatekeeper}, Topic: "t/sub"})
	if strings.Join(got, ",") != "transfer,t" {
		t.Fatalf("routed %v", got)
	}
}
