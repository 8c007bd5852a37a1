package store

import (
	"bytes"
	"fmt"
	"reflect"
	"sort"
	"testing"
)

// op is one call a recordingKV received.
type op struct {
	kind  string // "set" or "del"
	key   string
	value string
}

func (o op) String() string {
	if o.kind == "del" {
		return fmt.Sprintf("del %q", o.key)
	}
	return fmt.Sprintf("set %q=%q", o.key, o.value)
}

// recordingKV is a map-backed KV that records every write it receives, in
// order.
type recordingKV struct {
	m   map[string][]byte
	ops []op
}

func newRecordingKV(init map[string]string) *recordingKV {
	r := &recordingKV{m: map[string][]byte{}}
	for k, v := range init {
		r.m[k] = []byte(v)
	}
	return r
}

func (r *recordingKV) Get(key []byte) []byte { return r.m[string(key)] }

func (r *recordingKV) Set(key, value []byte) {
	if value == nil {
		panic("recordingKV: Set with a nil value")
	}
	r.m[string(key)] = value
	r.ops = append(r.ops, op{kind: "set", key: string(key), value: string(value)})
}

func (r *recordingKV) Delete(key []byte) {
	delete(r.m, string(key))
	r.ops = append(r.ops, op{kind: "del", key: string(key)})
}

func (r *recordingKV) contents() map[string]string {
	out := make(map[string]string, len(r.m))
	for k, v := range r.m {
		out[k] = string(v)
	}
	return out
}

func set(k, v string) op { return op{kind: "set", key: k, value: v} }
func del(k string) op    { return op{kind: "del", key: k} }

// apply performs ops on kv in the given order.
func apply(kv KV, ops []op) {
	for _, o := range ops {
		if o.kind == "del" {
			kv.Delete([]byte(o.key))
		} else {
			kv.Set([]byte(o.key), []byte(o.value))
		}
	}
}

func TestCacheGet(t *testing.T) {
	parent := map[string]string{"a": "1", "b": "2", "c": "3"}
	tests := []struct {
		name string
		ops  []op
		key  string
		want []byte // nil: absent
	}{
		{name: "reads through to the parent", key: "a", want: []byte("1")},
		{name: "absent everywhere", key: "zz", want: nil},
		{name: "buffered set shadows the parent", ops: []op{set("a", "x")}, key: "a", want: []byte("x")},
		{name: "buffered set of a new key", ops: []op{set("d", "4")}, key: "d", want: []byte("4")},
		{name: "buffered delete hides the parent", ops: []op{del("b")}, key: "b", want: nil},
		{name: "set after delete", ops: []op{del("b"), set("b", "y")}, key: "b", want: []byte("y")},
		{name: "delete after set", ops: []op{set("b", "y"), del("b")}, key: "b", want: nil},
		{name: "last set wins", ops: []op{set("c", "p"), set("c", "q")}, key: "c", want: []byte("q")},
		{name: "empty value is present, not deleted", ops: []op{set("a", "")}, key: "a", want: []byte{}},
		{name: "other keys read through", ops: []op{set("a", "x"), del("b")}, key: "c", want: []byte("3")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newRecordingKV(parent)
			c := NewCache(p)
			apply(c, tc.ops)
			got := c.Get([]byte(tc.key))
			if (got == nil) != (tc.want == nil) || !bytes.Equal(got, tc.want) {
				t.Fatalf("Get(%q) = %q (nil %v), want %q (nil %v)", tc.key, got, got == nil, tc.want, tc.want == nil)
			}
			if len(p.ops) != 0 {
				t.Fatalf("parent received writes before Write: %v", p.ops)
			}
			if !reflect.DeepEqual(p.contents(), parent) {
				t.Fatalf("parent changed before Write: %v", p.contents())
			}
		})
	}
}

func TestCacheSetNilIsEmptyValue(t *testing.T) {
	p := newRecordingKV(nil)
	c := NewCache(p)
	c.Set([]byte("k"), nil)
	if v := c.Get([]byte("k")); v == nil || len(v) != 0 {
		t.Fatalf("Get after Set(nil) = %#v, want a non-nil empty value", v)
	}
	c.Write()
	want := []op{set("k", "")}
	if !reflect.DeepEqual(p.ops, want) {
		t.Fatalf("parent ops = %v, want %v", p.ops, want)
	}
	if v, ok := p.m["k"]; !ok || v == nil {
		t.Fatalf("parent holds %#v (present %v), want an empty value", v, ok)
	}
}

func TestCacheWrite(t *testing.T) {
	parent := map[string]string{"a": "1", "b": "2", "m": "old"}
	tests := []struct {
		name    string
		ops     []op
		wantOps []op
		after   map[string]string
	}{
		{
			name:    "nothing buffered writes nothing",
			wantOps: nil,
			after:   parent,
		},
		{
			name:    "sets are flushed in key order, not call order",
			ops:     []op{set("z", "26"), set("c", "3"), set("m", "13"), set("a", "one")},
			wantOps: []op{set("a", "one"), set("c", "3"), set("m", "13"), set("z", "26")},
			after:   map[string]string{"a": "one", "b": "2", "c": "3", "m": "13", "z": "26"},
		},
		{
			name:    "deletes interleave with sets in key order",
			ops:     []op{del("m"), set("n", "x"), del("a"), set("b", "two")},
			wantOps: []op{del("a"), set("b", "two"), del("m"), set("n", "x")},
			after:   map[string]string{"b": "two", "n": "x"},
		},
		{
			name:    "each key is written once, with its last value",
			ops:     []op{set("q", "1"), set("q", "2"), del("b"), set("b", "back"), set("x", "gone"), del("x")},
			wantOps: []op{set("b", "back"), set("q", "2"), del("x")},
			after:   map[string]string{"a": "1", "b": "back", "m": "old", "q": "2"},
		},
		{
			name:    "byte order, not length order",
			ops:     []op{set("b", ""), set("ab", ""), set("a\x00", ""), set("B", ""), set("\xff", "")},
			wantOps: []op{set("B", ""), set("a\x00", ""), set("ab", ""), set("b", ""), set("\xff", "")},
			after:   map[string]string{"a": "1", "b": "", "m": "old", "B": "", "a\x00": "", "ab": "", "\xff": ""},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newRecordingKV(parent)
			c := NewCache(p)
			apply(c, tc.ops)
			c.Write()
			if !reflect.DeepEqual(p.ops, tc.wantOps) {
				t.Fatalf("parent ops = %v\nwant          %v", p.ops, tc.wantOps)
			}
			if !sort.SliceIsSorted(p.ops, func(i, j int) bool { return p.ops[i].key < p.ops[j].key }) {
				t.Fatalf("parent ops not in key order: %v", p.ops)
			}
			if !reflect.DeepEqual(p.contents(), tc.after) {
				t.Fatalf("parent after Write = %v, want %v", p.contents(), tc.after)
			}
			// Write empties the buffer: a second Write sends nothing, and
			// reads now come from the parent.
			p.ops = nil
			c.Write()
			if len(p.ops) != 0 {
				t.Fatalf("second Write sent %v", p.ops)
			}
			p.m["a"] = []byte("changed in parent")
			if got := c.Get([]byte("a")); string(got) != "changed in parent" {
				t.Fatalf("after Write, Get(a) = %q, want the parent's value", got)
			}
		})
	}
}

func TestCacheDiscard(t *testing.T) {
	parent := map[string]string{"a": "1", "b": "2"}
	p := newRecordingKV(parent)
	c := NewCache(p)
	apply(c, []op{set("a", "x"), del("b"), set("c", "3")})
	c.Discard()
	for k, want := range map[string][]byte{"a": []byte("1"), "b": []byte("2"), "c": nil} {
		if got := c.Get([]byte(k)); !bytes.Equal(got, want) || (got == nil) != (want == nil) {
			t.Errorf("after Discard, Get(%q) = %q, want %q", k, got, want)
		}
	}
	c.Write()
	if len(p.ops) != 0 {
		t.Fatalf("Write after Discard sent %v", p.ops)
	}
	if !reflect.DeepEqual(p.contents(), parent) {
		t.Fatalf("parent changed: %v", p.contents())
	}
	// The cache is still usable after Discard.
	c.Set([]byte("d"), []byte("4"))
	c.Write()
	if want := []op{set("d", "4")}; !reflect.DeepEqual(p.ops, want) {
		t.Fatalf("ops after reuse = %v, want %v", p.ops, want)
	}
}

func TestCacheNested(t *testing.T) {
	p := newRecordingKV(map[string]string{"a": "1", "b": "2"})
	outer := NewCache(p)
	inner := NewCache(outer)

	inner.Set([]byte("c"), []byte("3"))
	inner.Delete([]byte("a"))
	if got := outer.Get([]byte("c")); got != nil {
		t.Fatalf("outer sees inner's unflushed write: %q", got)
	}
	if got := inner.Get([]byte("b")); string(got) != "2" {
		t.Fatalf("inner Get(b) = %q, want read through two levels", got)
	}
	inner.Write()
	if len(p.ops) != 0 {
		t.Fatalf("inner Write reached the root: %v", p.ops)
	}
	if got := outer.Get([]byte("a")); got != nil {
		t.Fatalf("outer Get(a) = %q after inner deleted it", got)
	}

	// A discarded inner cache leaves the outer one intact.
	inner.Set([]byte("b"), []byte("discarded"))
	inner.Discard()
	if got := outer.Get([]byte("b")); string(got) != "2" {
		t.Fatalf("outer Get(b) = %q after inner Discard", got)
	}

	outer.Write()
	if want := []op{del("a"), set("c", "3")}; !reflect.DeepEqual(p.ops, want) {
		t.Fatalf("root ops = %v, want %v", p.ops, want)
	}
}
