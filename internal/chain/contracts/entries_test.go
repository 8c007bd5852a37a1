package contracts

import (
	"bytes"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/store"
)

func commitAt(t *testing.T, s *store.Store, h int64) {
	t.Helper()
	root := s.WorkingRoot()
	if err := s.Commit(h, time.Unix(h, 0), &api.BlockMessages{Height: h, StateRoot: root}, api.AppHash(root, api.MessagesRoot(nil))); err != nil {
		t.Fatal(err)
	}
}

func listEntries(t *testing.T, s *store.Store, data []byte, h int64) *api.EntryPage {
	t.Helper()
	res, err := queryEntries(s, &abci.RequestQuery{Path: api.QueryContractEntries, Data: data, Height: h})
	if err != nil {
		t.Fatal(err)
	}
	if res.Height != h {
		t.Fatalf("answered at %d, asked %d", res.Height, h)
	}
	p, err := api.DecodeEntryPage(res.Value)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func locs(p *api.EntryPage) string {
	var b strings.Builder
	for _, e := range p.Entries {
		b.WriteByte(e.Location[0])
		b.WriteByte(e.Value[0])
	}
	return b.String()
}

// The entries listing answers each form (from the first, after a
// location, within [from, end)) with the entries of the asked height:
// from the latest version while the contract's checkpoint record is
// unchanged, from the asked version's tree once it changed; it never
// lists another contract's entries; malformed data is refused.
func TestQueryEntriesForms(t *testing.T) {
	s, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := crypto.PublicKey{7}
	next := c
	next[31] = 1 // the next contract's entries follow c's in the store
	loc := func(b byte) [32]byte { return [32]byte{b} }
	after := func(b byte) []byte { l := loc(b); return append(c[:len(c):len(c)], l[:]...) }
	set := func(contract crypto.PublicKey, l byte, v string) {
		s.Set(api.StateEntryKey(contract, loc(l)), []byte(v+"-------"))
	}
	set(c, 'a', "1")
	set(c, 'c', "1")
	set(c, 'e', "1")
	set(next, 'b', "x")
	s.Set(api.CheckpointKey(c), (&api.Checkpoint{Height: 1, Root: [32]byte{1}}).Encode())
	commitAt(t, s, 1)
	commitAt(t, s, 2) // no change: the latest version has the same record

	for _, h := range []int64{1, 2} {
		for _, tc := range []struct {
			name string
			data []byte
			want string
		}{
			{"all", c[:], "a1c1e1"},
			{"after", after('a'), "c1e1"},
			{"after the last", after('e'), ""},
			{"range", api.EntryRangeQuery(c, loc('a'), loc('e')), "a1c1"},
			{"range to the end", api.EntryRangeQuery(c, loc('b'), [32]byte{}), "c1e1"},
			{"empty range", api.EntryRangeQuery(c, loc('f'), loc('g')), ""},
		} {
			if p := listEntries(t, s, tc.data, h); locs(p) != tc.want || p.More {
				t.Fatalf("height %d %s: %q more=%v, want %q", h, tc.name, locs(p), p.More, tc.want)
			}
		}
	}
	// A new checkpoint at 3: height 1 still lists its own entries (from
	// the tree), 3 the new ones.
	set(c, 'a', "3")
	s.Delete(api.StateEntryKey(c, loc('c')))
	set(c, 'd', "3")
	s.Set(api.CheckpointKey(c), (&api.Checkpoint{Height: 2, Root: [32]byte{3}}).Encode())
	commitAt(t, s, 3)
	if got := locs(listEntries(t, s, c[:], 1)); got != "a1c1e1" {
		t.Fatalf("old checkpoint: %q", got)
	}
	if got := locs(listEntries(t, s, api.EntryRangeQuery(c, [32]byte{}, loc('e')), 3)); got != "a3d3" {
		t.Fatalf("new checkpoint: %q", got)
	}
	for _, bad := range [][]byte{nil, c[:31], append(c[:], 1), make([]byte, 97)} {
		if _, err := queryEntries(s, &abci.RequestQuery{Data: bad, Height: 3}); err == nil {
			t.Fatalf("data of %d bytes accepted", len(bad))
		}
	}
	if q := api.EntryRangeQuery(c, loc(1), loc(2)); len(q) != 96 || !bytes.Equal(q[:32], c[:]) || q[32] != 1 || q[64] != 2 {
		t.Fatalf("range query data %x", q)
	}
}
