package devnet

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A second devnet on the home of a running one is refused, naming the
// process; a lock left by a devnet that died is taken over; Stop releases
// the home.
func TestSecondDevnetOnSameHomeRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("devnet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var cfg Config
	d, _ := startTestDevnet(t, ctx, func(c *Config) { cfg = *c })
	_, err := Start(ctx, cfg)
	if !errors.Is(err, ErrRunning) || !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) || !strings.Contains(err.Error(), cfg.Home) {
		t.Fatalf("second devnet on %s: %v", cfg.Home, err)
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Home, lockFile)); !os.IsNotExist(err) {
		t.Fatalf("home still locked after Stop: %v", err)
	}
	// A lock of a process that is gone does not hold the home.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, lockFile), []byte("999999999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	release, err := lockHome(other)
	if err != nil {
		t.Fatalf("stale lock: %v", err)
	}
	release()
}
