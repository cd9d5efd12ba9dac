package ha

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// hclogAdapter is an hclog.Logger, the logger type of raft and raft-wal,
// that writes to an slog.Logger. Records carry a "component" attribute
// with the hclog name ("raft", "raft-net", "raft-wal", ...). Levels are set
// by the slog handler: SetLevel does nothing.
type hclogAdapter struct {
	logger  *slog.Logger
	name    string
	implied []any
}

var _ hclog.Logger = (*hclogAdapter)(nil)

// newHCLogAdapter returns an adapter named name that writes to logger.
func newHCLogAdapter(logger *slog.Logger, name string) *hclogAdapter {
	return &hclogAdapter{logger: logger, name: name}
}

// slogLevel maps an hclog level to an slog level; Trace is below Debug.
func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Log writes msg with the key-value pairs args at level.
func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	lv := slogLevel(level)
	ctx := context.Background()
	if !a.logger.Enabled(ctx, lv) {
		return
	}
	if a.name != "" {
		args = append(args, "component", a.name)
	}
	a.logger.Log(ctx, lv, msg, args...)
}

// Trace logs at trace level (below slog's debug).
func (a *hclogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }

// Debug logs at debug level.
func (a *hclogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }

// Info logs at info level.
func (a *hclogAdapter) Info(msg string, args ...any) { a.Log(hclog.Info, msg, args...) }

// Warn logs at warn level.
func (a *hclogAdapter) Warn(msg string, args ...any) { a.Log(hclog.Warn, msg, args...) }

// Error logs at error level.
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

// enabled reports whether the slog handler takes records of level.
func (a *hclogAdapter) enabled(level hclog.Level) bool {
	return a.logger.Enabled(context.Background(), slogLevel(level))
}

// IsTrace reports whether trace records are logged.
func (a *hclogAdapter) IsTrace() bool { return a.enabled(hclog.Trace) }

// IsDebug reports whether debug records are logged.
func (a *hclogAdapter) IsDebug() bool { return a.enabled(hclog.Debug) }

// IsInfo reports whether info records are logged.
func (a *hclogAdapter) IsInfo() bool { return a.enabled(hclog.Info) }

// IsWarn reports whether warn records are logged.
func (a *hclogAdapter) IsWarn() bool { return a.enabled(hclog.Warn) }

// IsError reports whether error records are logged.
func (a *hclogAdapter) IsError() bool { return a.enabled(hclog.Error) }

// ImpliedArgs returns the key-value pairs added by With.
func (a *hclogAdapter) ImpliedArgs() []any { return a.implied }

// With returns a logger that adds the key-value pairs args to every record.
func (a *hclogAdapter) With(args ...any) hclog.Logger {
	implied := append(append([]any(nil), a.implied...), args...)
	return &hclogAdapter{logger: a.logger.With(args...), name: a.name, implied: implied}
}

// Name returns the logger's name.
func (a *hclogAdapter) Name() string { return a.name }

// Named returns a logger whose name is this one's and name joined by a dot.
func (a *hclogAdapter) Named(name string) hclog.Logger {
	if a.name != "" {
		name = a.name + "." + name
	}
	return a.ResetNamed(name)
}

// ResetNamed returns a logger named name.
func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	return &hclogAdapter{logger: a.logger, name: name, implied: a.implied}
}

// SetLevel does nothing: the slog handler decides what is logged.
func (a *hclogAdapter) SetLevel(hclog.Level) {}

// GetLevel returns the lowest level the slog handler takes.
func (a *hclogAdapter) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if a.enabled(l) {
			return l
		}
	}
	return hclog.Off
}

// StandardLogger returns a log.Logger that writes through StandardWriter.
func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

// StandardWriter returns a writer that logs each line written to it, at
// opts.ForceLevel if set, else at the level of a "[DEBUG]"-style prefix
// if opts.InferLevels is set, else at info level.
func (a *hclogAdapter) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	if opts == nil {
		opts = &hclog.StandardLoggerOptions{}
	}
	return &hclogLineWriter{a: a, opts: *opts}
}

// hclogLineWriter logs every line written to it.
type hclogLineWriter struct {
	a    *hclogAdapter
	opts hclog.StandardLoggerOptions
}

// Write logs p's lines and reports p fully written.
func (w *hclogLineWriter) Write(p []byte) (int, error) {
	for line := range bytes.Lines(p) {
		msg := strings.TrimSpace(string(line))
		if msg == "" {
			continue
		}
		level := hclog.Info
		switch {
		case w.opts.ForceLevel != hclog.NoLevel:
			level = w.opts.ForceLevel
		case w.opts.InferLevels:
			for _, pl := range []struct {
				prefix string
				level  hclog.Level
			}{
				{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug}, {"[INFO]", hclog.Info},
				{"[WARN]", hclog.Warn}, {"[ERR]", hclog.Error}, {"[ERROR]", hclog.Error},
			} {
				if rest, ok := strings.CutPrefix(msg, pl.prefix); ok {
					level, msg = pl.level, strings.TrimSpace(rest)
					break
				}
			}
		}
		w.a.Log(level, msg)
	}
	return len(p), nil
}
