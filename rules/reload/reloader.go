package reload

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/friendflow/friendflow/rules"
)

// Reloader holds the active rule set and replaces it, whole, when a reload
// succeeds. A request reads one consistent set through Current; a failed
// reload changes nothing but Status.
type Reloader struct {
	Path     string
	Options  rules.Options
	Logger   *slog.Logger
	Interval time.Duration // periodic content check of the watcher; 0: its default
	Settle   time.Duration // settle delay of the watcher; 0: its default
	// OnReload, when set, is told the outcome of every reload attempt
	// (metrics); err is nil on success.
	OnReload func(set *rules.Set, err error, took time.Duration)

	current atomic.Pointer[rules.Set]
	loading sync.Mutex // serialises reloads; held for a whole load
	// mu guards status and seen, and is never held during a load: /rules
	// and /readyz read the status while a large or hostile file loads.
	mu     sync.Mutex
	status Status
	seen   string // Fingerprint taken before the last load attempt
}

// Status is what GET /rules shows about reloading.
type Status struct {
	LoadedAt    time.Time `json:"loaded_at"`
	Hash        string    `json:"hash"`
	Reloads     int       `json:"reloads"`
	Failures    int       `json:"failures"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	LastReason  string    `json:"last_reason,omitempty"`
}

// Current returns the active rule set; nil before the first successful load.
func (r *Reloader) Current() *rules.Set { return r.current.Load() }

// Status returns a copy of the reload status.
func (r *Reloader) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Reload loads the rules from Path and, only if everything loads, compiles
// and passes its tests, makes them the active set. On failure the active
// set stays as it was and the error (every problem, file:line:col) is kept
// in Status and returned.
func (r *Reloader) Reload(reason string) error {
	r.loading.Lock()
	defer r.loading.Unlock()
	start := time.Now()
	// Taken before the load: if the files change while it runs, the
	// watcher sees a difference and reloads again.
	seen, _ := Fingerprint(r.Path)
	set, err := rules.Load(r.Path, r.Options)
	took := time.Since(start)
	log := r.logger()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = seen
	r.status.LastReason = reason
	if err != nil {
		r.status.Failures++
		r.status.LastError = err.Error()
		r.status.LastErrorAt = time.Now()
		var le *rules.LoadError
		attrs := []any{"reason", reason, "path", r.Path}
		if errors.As(err, &le) {
			attrs = append(attrs, "problems", len(le.Problems))
		}
		if old := r.current.Load(); old != nil {
			attrs = append(attrs, "serving_hash", old.Hash(), "serving_rules", old.Len())
		}
		// The error in a field of its own: log pipelines group lines by
		// message, and every problem list would make a message of its own.
		attrs = append(attrs, "err", err.Error())
		log.Error("rules reload failed; the last good rules keep serving", attrs...)
		if r.OnReload != nil {
			r.OnReload(nil, err, took)
		}
		return err
	}
	old := r.current.Swap(set)
	recovered := r.status.LastError != ""
	r.status.Reloads++
	r.status.LoadedAt = time.Now()
	r.status.Hash = set.Hash()
	r.status.LastError = ""
	r.status.LastErrorAt = time.Time{}
	changed := old == nil || old.Hash() != set.Hash()
	attrs := []any{"reason", reason, "rules", set.Len(), "hash", set.Hash(), "took", took.String()}
	switch {
	case recovered:
		// Said at info even when the rules are unchanged: whoever saw the
		// failure needs to see it is over.
		log.Info("rules reloaded; the previous reload had failed", attrs...)
	case !changed:
		log.Debug("rules reloaded, unchanged", attrs...)
	default:
		log.Info("rules loaded", attrs...)
	}
	if changed {
		// Once per change of the files, not per unchanged reload: a
		// warning names a rule that may never match as meant.
		for _, w := range set.Warnings() {
			log.Warn("rule warning: "+w.String(), "code", w.Code, "hash", set.Hash())
		}
	}
	if r.OnReload != nil {
		r.OnReload(set, nil, took)
	}
	return nil
}

// Watch reloads whenever the files under Path change, until ctx is done.
// The first load is the caller's (so a start with broken rules can fail
// loudly); Watch only follows changes.
func (r *Reloader) Watch(ctx context.Context) error {
	r.mu.Lock()
	seen := r.seen
	r.mu.Unlock()
	w := &Watcher{
		Initial:  seen,
		Path:     r.Path,
		Interval: r.Interval,
		Settle:   r.Settle,
		Logger:   r.logger(),
		OnChange: func(reason string) { _ = r.Reload(reason) },
	}
	return w.Run(ctx)
}

func (r *Reloader) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}
