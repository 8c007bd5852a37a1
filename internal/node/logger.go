package node

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	cmtlog "github.com/cometbft/cometbft/libs/log"
)

// cmtLogger adapts slog to CometBFT's logger. CometBFT's info lines (several
// per block) are logged at debug level; its errors stay errors.
type cmtLogger struct{ l *slog.Logger }

// NewCometLogger returns a CometBFT logger writing to l.
func NewCometLogger(l *slog.Logger) cmtlog.Logger { return cmtLogger{l} }

func (c cmtLogger) Debug(msg string, kv ...any) { c.log(slog.LevelDebug-1, msg, kv) }
func (c cmtLogger) Info(msg string, kv ...any)  { c.log(slog.LevelDebug, msg, kv) }
func (c cmtLogger) Error(msg string, kv ...any) {
	level := slog.LevelError
	if isShutdownNoise(msg, kv) {
		level = slog.LevelDebug
	}
	c.log(level, msg, kv)
}

// isShutdownNoise recognizes the errors CometBFT logs while its own
// listeners and peers close during a clean stop.
func isShutdownNoise(msg string, kv []any) bool {
	switch msg {
	case "Stopped accept routine, as transport is closed", "error while stopping peer", "Error stopping pool", "Won't start a peer - switch is not running":
		return true
	}
	for _, v := range kv {
		if err, ok := v.(error); ok && strings.Contains(err.Error(), "use of closed network connection") {
			return true
		}
	}
	return false
}
func (c cmtLogger) With(kv ...any) cmtlog.Logger {
	return cmtLogger{c.l.With(stringify(kv)...)}
}

func (c cmtLogger) log(level slog.Level, msg string, kv []any) {
	if !c.l.Enabled(context.Background(), level) {
		return
	}
	c.l.Log(context.Background(), level, msg, stringify(kv)...)
}

// stringify renders CometBFT's values (often fmt.Stringers with heavy
// reflection-based formatting) as strings, and keys as strings.
func stringify(kv []any) []any {
	out := make([]any, 0, len(kv))
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, fmt.Sprint(kv[i]), fmt.Sprint(kv[i+1]))
	}
	return out
}
