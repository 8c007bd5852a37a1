package channel

import (
	"bytes"
	"errors"
	"testing"
)

// TestSession: both sides derive the same keys; a message opens only in
// its direction, under its number, additional data and transcript.
func TestSession(t *testing.T) {
	shared, transcript := [32]byte{1}, [32]byte{2}
	client, err := NewSession(shared, transcript)
	if err != nil {
		t.Fatal(err)
	}
	worker, _ := NewSession(shared, transcript)
	other, _ := NewSession(shared, [32]byte{3})
	q := client.SealQuery(7, []byte("balance"), []byte("ad"))
	if got, err := worker.OpenQuery(7, q, []byte("ad")); err != nil || string(got) != "balance" {
		t.Fatalf("query: %q %v", got, err)
	}
	if bytes.Contains(q, []byte("balance")) {
		t.Fatal("plaintext visible")
	}
	a := worker.SealAnswer(7, []byte("77"), []byte("ad"))
	if got, err := client.OpenAnswer(7, a, []byte("ad")); err != nil || string(got) != "77" {
		t.Fatalf("answer: %q %v", got, err)
	}
	for _, tc := range []struct {
		name string
		open func() ([]byte, error)
		want error
	}{
		{"query reflected as an answer", func() ([]byte, error) { return client.OpenAnswer(7, q, []byte("ad")) }, ErrOpen},
		{"answer reflected as a query", func() ([]byte, error) { return worker.OpenQuery(7, a, []byte("ad")) }, ErrOpen},
		{"another number", func() ([]byte, error) { return worker.OpenQuery(8, q, []byte("ad")) }, ErrOpen},
		{"other additional data", func() ([]byte, error) { return worker.OpenQuery(7, q, []byte("da")) }, ErrOpen},
		{"another transcript", func() ([]byte, error) { return other.OpenQuery(7, q, []byte("ad")) }, ErrOpen},
		{"short", func() ([]byte, error) { return worker.OpenQuery(7, q[:15], []byte("ad")) }, ErrShort},
	} {
		if _, err := tc.open(); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
