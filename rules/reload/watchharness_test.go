package reload

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The watcher tests' helpers, each prefixed "wt" (watcher test) apart from
// the reloader tests' helpers in the same package.

const (
	// wtWait bounds every wait for the watcher; generous for -race on two cores.
	wtWait = 10 * time.Second
	// wtNoPoll keeps the periodic check out of tests that must be served by
	// fsnotify alone, so a broken event path cannot hide behind the poll.
	wtNoPoll = time.Hour
)

type wtCall struct {
	reason string
	fp     string // what a loader would have read when called
}

type wtCheck struct {
	reason string
	fired  bool
}

// wtHarness runs a Watcher on a real directory and records what it does.
type wtHarness struct {
	tb   testing.TB
	path string
	logs *wtLogBuffer

	mu      sync.Mutex
	calls   []wtCall
	checks  []wtCheck
	changed chan struct{} // signalled after every call and check
	block   chan struct{} // if set, OnChange waits until it is closed
}

type wtLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *wtLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *wtLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// wtState is Fingerprint's answer as one comparable string.
func wtState(path string) string {
	fp, err := Fingerprint(path)
	if err != nil {
		return "unreadable"
	}
	return fp
}

func wtStart(tb testing.TB, path string, interval, settle time.Duration) *wtHarness {
	return wtStartBlocking(tb, path, interval, settle, nil)
}

func wtStartBlocking(tb testing.TB, path string, interval, settle time.Duration, block chan struct{}) *wtHarness {
	tb.Helper()
	h := &wtHarness{tb: tb, path: path, logs: &wtLogBuffer{}, changed: make(chan struct{}, 1), block: block}
	ready := make(chan struct{})
	w := &Watcher{
		Path:     path,
		Interval: interval,
		Settle:   settle,
		Logger:   slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnChange: func(reason string) {
			fp := wtState(path)
			h.mu.Lock()
			h.calls = append(h.calls, wtCall{reason, fp})
			h.mu.Unlock()
			h.signal()
			if h.block != nil {
				<-h.block
			}
		},
		checked: func(reason string, fired bool) {
			h.mu.Lock()
			h.checks = append(h.checks, wtCheck{reason, fired})
			h.mu.Unlock()
			h.signal()
		},
		ready: func() { close(ready) },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(wtWait):
			tb.Errorf("Run did not return after cancel")
		}
		if tb.Failed() {
			tb.Logf("calls: %q\nwatcher log:\n%s", h.snapshotCalls(), h.logs)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		tb.Fatalf("Run returned before ready: %v", err)
	case <-time.After(wtWait):
		tb.Fatalf("watcher not ready after %v", wtWait)
	}
	return h
}

func (h *wtHarness) signal() {
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

func (h *wtHarness) snapshotCalls() []wtCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]wtCall(nil), h.calls...)
}

func (h *wtHarness) ncalls() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.calls)
}

func (h *wtHarness) nchecks() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.checks)
}

// waitFor waits, without fixed sleeps, until cond holds under h.mu.
func (h *wtHarness) waitFor(what string, cond func() bool) {
	h.tb.Helper()
	deadline := time.After(wtWait)
	for {
		h.mu.Lock()
		ok := cond()
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-h.changed:
		case <-deadline:
			h.tb.Fatalf("timed out after %v waiting for %s; calls %q", wtWait, what, h.snapshotCalls())
		}
	}
}

// waitConverged waits until OnChange has been called after the calls
// numbered below since, and the last call saw the content now on disk. It
// returns the calls made since.
func (h *wtHarness) waitConverged(since int) []wtCall {
	h.tb.Helper()
	want := wtState(h.path)
	h.waitFor("convergence", func() bool {
		if len(h.calls) <= since || h.calls[len(h.calls)-1].fp != want {
			return false
		}
		// Also wait for the check that made the last call to be recorded,
		// so later waits on checks only see checks made after this.
		fired := 0
		for _, c := range h.checks {
			if c.fired {
				fired++
			}
		}
		return fired == len(h.calls)
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]wtCall(nil), h.calls[since:]...)
}

// waitCheck waits for a check, numbered since or later, whose reason has
// the given prefix, and returns it.
func (h *wtHarness) waitCheck(since int, prefix string) wtCheck {
	h.tb.Helper()
	var found wtCheck
	h.waitFor("a check with reason "+prefix, func() bool {
		for _, c := range h.checks[min(since, len(h.checks)):] {
			if strings.HasPrefix(c.reason, prefix) {
				found = c
				return true
			}
		}
		return false
	})
	return found
}

// assertNoOp performs op, which must not change the content, waits until
// the watcher has checked after an fsnotify event, and asserts no call.
func (h *wtHarness) assertNoOp(name string, op func()) {
	h.tb.Helper()
	calls, checks := h.ncalls(), h.nchecks()
	op()
	h.waitCheck(checks, "fsnotify:")
	if n := h.ncalls(); n != calls {
		h.tb.Fatalf("%s: OnChange called %d times for a no-op; calls %q", name, n-calls, h.snapshotCalls())
	}
}

func wtMust(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func wtWrite(tb testing.TB, path, content string) {
	tb.Helper()
	wtMust(tb, os.WriteFile(path, []byte(content), 0o644))
}

// wtRenameOver writes content to tmp in path's directory and renames it over
// path, as atomic savers, sed -i and most editors do.
func wtRenameOver(tb testing.TB, path, tmp, content string) {
	tb.Helper()
	tmp = filepath.Join(filepath.Dir(path), tmp)
	wtWrite(tb, tmp, content)
	wtMust(tb, os.Rename(tmp, path))
}

// wtRulesDir makes a rules directory with two rule files and two entries
// that must not count.
func wtRulesDir(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "rules")
	wtMust(tb, os.Mkdir(dir, 0o755))
	wtWrite(tb, filepath.Join(dir, "a.yaml"), "a: 0\n")
	wtWrite(tb, filepath.Join(dir, "b.yml"), "b: 0\n")
	wtWrite(tb, filepath.Join(dir, "notes.txt"), "not a rule file\n")
	wtWrite(tb, filepath.Join(dir, ".hidden.yaml"), "hidden: true\n")
	return dir
}

// wtModes runs a scenario against the rules directory and against a.yaml in
// it as a single-file Path.
var wtModes = []struct {
	name string
	path func(dir string) string
}{
	{"dir", func(dir string) string { return dir }},
	{"file", func(dir string) string { return filepath.Join(dir, "a.yaml") }},
}
