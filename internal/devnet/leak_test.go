package devnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/contract/contracttest"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/testnet"
)

// TestNoContractPlaintextLeaves runs commands and queries that fail in
// every way a contract can (contract error, panic, out of gas, a write in a
// query, an unknown command), each repeating a unique marker from its
// sealed input, on a devnet logging at debug level. The markers reach the
// querying caller (sealed to it), and appear nowhere else: not in any log
// line of any part, not in any file under the devnet's home (node stores,
// pRuntime data directories, code cache, sealed files), not in the
// pRuntimes' /info or egress.
func TestNoContractPlaintextLeaves(t *testing.T) {
	if testing.Short() {
		t.Skip("whole devnet")
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var home string
	d, c := startTestDevnet(t, ctx, func(cfg *Config) {
		cfg.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		home = cfg.Home
	})
	alice := crypto.MustKeyPairFromURI("//Alice")
	signer := c.NewSigner(alice)
	upload, _, err := signer.Upload(ctx, contracttest.Build(t, filepath.Join("testdata", "leaky")), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := mustDeployed(t, ctx, c, upload, 2)

	var markers []string
	marker := func() string {
		b := make([]byte, 8)
		rand.Read(b)
		m := "SECRET" + strings.ToUpper(hex.EncodeToString(b))
		markers = append(markers, m)
		return m
	}
	// Commands: one that succeeds (its input and output are plaintext
	// too) and one per failure kind, then a last one to wait for.
	for _, op := range []string{"store", "fail", "panic", "spin", "bogus"} {
		if _, err := signer.Command(ctx, rec, []byte(op+" "+marker())); err != nil {
			t.Fatalf("command %s: %v", op, err)
		}
	}
	res, err := signer.Command(ctx, rec, []byte("store "+marker()))
	if err != nil {
		t.Fatal(err)
	}
	testnet.WaitFor(t, time.Minute, "both workers executed every command", func() (bool, error) {
		for _, rt := range d.Runtimes[1:] {
			info, err := rt.API.Info(ctx)
			if err != nil || info.Dispatched < res.Height {
				return false, nil
			}
		}
		return true, nil
	})
	// The workers write the contract's state to the chain: the scan below
	// covers its encrypted entries in the node's store.
	testnet.WaitFor(t, time.Minute, "a checkpoint on chain covering every command", func() (bool, error) {
		cp, _, err := c.Checkpoint(ctx, rec.Identity)
		return err == nil && cp != nil && cp.Height >= res.Height && cp.Entries > 0, err
	})
	// Queries: each failure reaches the caller, sealed, with its marker.
	for _, op := range []string{"fail", "panic", "spin", "write", "bogus"} {
		m := marker()
		out, _, err := c.QueryContract(ctx, alice, rec, []byte(op+" "+m))
		if err == nil {
			t.Fatalf("query %s succeeded with %q", op, out)
		}
		if op == "fail" || op == "bogus" { // a panic traps: its message is discarded with the guest's stderr
			if !strings.Contains(err.Error(), m) {
				t.Errorf("query %s: the caller did not get the contract's message: %v", op, err)
			}
		}
	}

	var seen []string
	scan := func(what string, data []byte) {
		for _, m := range markers {
			if bytes.Contains(data, []byte(m)) {
				t.Errorf("%s contains contract plaintext %s", what, m)
			}
		}
		seen = append(seen, what)
	}
	for _, rt := range d.Runtimes {
		info, err := rt.API.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		scan(rt.Name+" /info", []byte(info.StateRoot+strings.Join(mapValues(info.Contracts), "")))
		eg, err := rt.API.Egress(ctx)
		if err != nil {
			t.Fatal(err)
		}
		scan(rt.Name+" egress", api.EncodeSignedMessages(eg))
	}
	scan("logs of every part at debug level", logs.Bytes())
	filepath.WalkDir(home, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if b, err := os.ReadFile(p); err == nil {
				scan(p, b)
			}
		}
		return nil
	})
	if len(seen) < 10 || len(logs.Bytes()) == 0 {
		t.Fatalf("scanned too little: %v", seen)
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
