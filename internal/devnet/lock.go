package devnet

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrRunning means another devnet runs on the same home directory.
var ErrRunning = errors.New("a devnet is already running on this home")

// lockFile marks a home directory in use by a running devnet: it holds the
// process id, and is removed by Stop. A file left by a devnet that died
// is taken over.
const lockFile = "devnet.pid"

// lockHome takes the home directory for this process, or fails with
// ErrRunning naming the process that holds it.
func lockHome(home string) (release func(), err error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(home, lockFile)
	for range 2 {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			_, werr := fmt.Fprintf(f, "%d\n", os.Getpid())
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				os.Remove(path)
				return nil, werr
			}
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", home, err)
		}
		b, _ := os.ReadFile(path)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && alive(pid) {
			return nil, fmt.Errorf("%w: process %d uses --home %s; stop it first (Ctrl-C), or give another --home", ErrRunning, pid, home)
		}
		os.Remove(path) // left by a devnet that died
	}
	return nil, fmt.Errorf("lock %s: %s keeps reappearing", home, path)
}

func alive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil || p.Signal(syscall.Signal(0)) != nil {
		return false
	}
	// A killed process not yet reaped by its parent (a zombie) still
	// answers signal 0, but holds nothing any more.
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
			return false
		}
	}
	return true
}
