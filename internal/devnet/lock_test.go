package devnet

import (
	"context"
	"errors"
	"os"
	"os/exec"
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

// A killed process its parent has not reaped yet (a zombie) holds no
// home: alive says so, so a devnet restarted right after `kill -9` of the
// previous one is not refused.
func TestAliveIgnoresZombies(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep:", err)
	}
	pid := cmd.Process.Pid
	if !alive(pid) {
		t.Fatal("a running process is not alive")
	}
	cmd.Process.Kill()
	defer cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatal("a killed, unreaped process still counts as alive")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
