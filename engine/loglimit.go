package engine

import (
	"context"
	"log/slog"
	"sync"

	"golang.org/x/time/rate"
)

// Log lines written per event or per callback (a rule failing at run
// time, a decision failing, a target denied…) are rate limited, each
// message on its own: a 1 000-pair callback against a failing rule must
// not write 1 000 lines, nor a flood of them fill the disk. Within a
// message's budget lines are written as before; beyond it they are
// counted in friendflow_log_lines_suppressed_total{line="engine"}, and the
// next line of that message carries suppressed_before. Debug lines, which
// an operator turns on to see everything, are not limited.
const (
	lineRate  = 10 // lines a second, per message
	lineBurst = 20
)

// lineLimits holds a limiter per message: the messages are constants of
// this package, so the map stays small.
type lineLimits struct {
	mu         sync.Mutex
	m          map[string]*lineLimit
	suppressed func() // counts a line left out; nil: not counted
}

type lineLimit struct {
	lim  *rate.Limiter
	left int64 // lines left out since the last one written
}

// lines returns the engine's line limits, made on first use.
func (e *Engine) lines() *lineLimits {
	e.linesOnce.Do(func() {
		e.lineLimits = &lineLimits{m: map[string]*lineLimit{}}
		if e.Metrics != nil {
			e.lineLimits.suppressed = e.Metrics.LogsSuppressed.WithLabelValues("engine").Inc
		}
	})
	return e.lineLimits
}

// allow says whether a line of msg may be written now, and how many were
// left out before it.
func (l *lineLimits) allow(msg string) (bool, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ll := l.m[msg]
	if ll == nil {
		ll = &lineLimit{lim: rate.NewLimiter(lineRate, lineBurst)}
		l.m[msg] = ll
	}
	if !ll.lim.Allow() {
		ll.left++
		if l.suppressed != nil {
			l.suppressed()
		}
		return false, 0
	}
	n := ll.left
	ll.left = 0
	return true, n
}

// log writes msg at level with args, within msg's limit (debug lines are
// not limited).
func (l *lineLimits) log(logger *slog.Logger, level slog.Level, msg string, args ...any) {
	if !logger.Enabled(context.Background(), level) {
		return
	}
	if level > slog.LevelDebug {
		ok, left := l.allow(msg)
		if !ok {
			return
		}
		if left > 0 {
			args = append(args, "suppressed_before", left)
		}
	}
	logger.Log(context.Background(), level, msg, args...)
}
