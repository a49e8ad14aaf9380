package pid1

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// consoleHandler writes one plain line per record: "cairn: phase: msg k=v".
type consoleHandler struct {
	mu    *sync.Mutex
	w     io.Writer
	attrs []slog.Attr
	level slog.Level
	start time.Time
}

func newLogger(w io.Writer, debug bool) *slog.Logger {
	lvl := slog.LevelInfo
	if debug {
		lvl = slog.LevelDebug
	}
	return slog.New(&consoleHandler{mu: &sync.Mutex{}, w: w, level: lvl, start: time.Now()})
}

func (h *consoleHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *consoleHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString("cairn: ")
	var rest []string
	add := func(a slog.Attr) {
		if a.Key == "phase" || a.Key == "service" {
			b.WriteString(a.Value.String() + ": ")
			return
		}
		v := a.Value.String()
		if strings.ContainsAny(v, " \t") {
			v = fmt.Sprintf("%q", v)
		}
		rest = append(rest, a.Key+"="+v)
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(func(a slog.Attr) bool { add(a); return true })
	if r.Level >= slog.LevelError {
		b.WriteString("ERROR ")
	} else if r.Level >= slog.LevelWarn {
		b.WriteString("WARNING ")
	}
	b.WriteString(r.Message)
	for _, s := range rest {
		b.WriteString(" " + s)
	}
	b.WriteString("\n")
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *consoleHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr{}, h.attrs...), attrs...)
	return &n
}

func (h *consoleHandler) WithGroup(string) slog.Handler { return h }
