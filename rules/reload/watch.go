package reload

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/friendflow/friendflow/rules"
)

const (
	// watchDefaultInterval bounds how long a change that produced no usable
	// event (bind mounts, overflowed queues, hard links written elsewhere)
	// can stay unnoticed.
	watchDefaultInterval = 5 * time.Second

	// watchDefaultSettle is the quiet time after the last event before the
	// content is hashed. The bursts that matter (an editor's rename dance,
	// sed -i, git checkout, the kubelet's ..data swap) finish within a few
	// milliseconds, so 100 ms lets them complete while adding delay nobody
	// notices on a config reload. Slower writers are covered by the fingerprint rule:
	// a half-written state that was reported always differs from the final
	// one, so the final one is reported too.
	watchDefaultSettle = 100 * time.Millisecond

	// watchMaxSymlinkHops matches the kernel's limit (MAXSYMLINKS).
	watchMaxSymlinkHops = 40
)

// Watcher calls OnChange when the content of the rule files under Path may
// have changed.
//
// It watches directories, never single files: editors, sed -i, git and the
// kubelet replace files by rename or by swapping the ..data symlink, and a
// watch on the replaced inode would go silent. Besides the directory holding
// the rules it watches the directory holding Path (so a rules directory that
// is removed and recreated, or a file that appears later, is noticed) and
// the directories along Path's symlink chain. Events only schedule a check;
// OnChange runs when the content fingerprint differs from the one last
// reported, so a touch or a no-op save does nothing. A periodic check makes
// sure that a lost event can delay a reload by at most Interval.
type Watcher struct {
	Path     string        // a directory of *.yaml/*.yml, or one file
	Interval time.Duration // periodic content-hash check; 0 means 5s
	Settle   time.Duration // quiet time after the last event before checking; 0 means 100ms

	// OnChange is called from one goroutine, never concurrently, with a
	// reason such as "fsnotify: WRITE a.yaml" or "poll: content hash
	// changed". It is not called for the state found at start: the caller
	// loads that itself. Path becoming unreadable (removed, say) counts as
	// a change, so the failed reload is reported rather than skipped.
	OnChange func(reason string)

	Logger *slog.Logger // nil discards

	// Initial, when set, is the Fingerprint of the content the caller last
	// loaded. If the content found at start differs (it changed between
	// that load and Run), OnChange is called at once instead of waiting
	// for a next change that may never come.
	Initial string

	// checked, if set, is called on the Run goroutine after every check with
	// its reason and whether OnChange was called. Tests use it to know that
	// an event has been handled without waiting a fixed time.
	checked func(reason string, fired bool)
	// ready, if set, is called once the watches are in place and the
	// initial fingerprint is recorded.
	ready func()
}

// Run watches until ctx is done, then returns nil. It returns an error only
// for an unusable configuration. A missing Path is not one: Run logs it and
// reports the path once it appears. If fsnotify itself cannot start (the
// inotify instance limit is a common cause in crowded pods), Run logs the
// error and keeps the periodic check going.
func (w *Watcher) Run(ctx context.Context) error {
	switch {
	case w.Path == "":
		return errors.New("rules watcher: empty Path")
	case w.OnChange == nil:
		return errors.New("rules watcher: nil OnChange")
	case w.Interval < 0 || w.Settle < 0:
		return fmt.Errorf("rules watcher: negative Interval (%v) or Settle (%v)", w.Interval, w.Settle)
	}
	path, err := filepath.Abs(w.Path)
	if err != nil {
		return fmt.Errorf("rules watcher: %w", err)
	}
	r := &watchRun{
		w:        w,
		path:     path,
		log:      w.Logger,
		interval: cmp.Or(w.Interval, watchDefaultInterval),
		settle:   cmp.Or(w.Settle, watchDefaultSettle),
		dirs:     make(map[string]os.FileInfo),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("path", path)

	r.fsw, err = fsnotify.NewWatcher()
	if err != nil {
		r.log.Error("rules watcher: fsnotify unavailable, relying on periodic checks only",
			"interval", r.interval.String(), "err", err)
		r.fsw = nil
	} else {
		defer r.fsw.Close()
	}

	// Watches first, fingerprint second: a change made in between raises an
	// event instead of slipping past both.
	r.syncWatches()
	r.last = r.state()
	if w.Initial != "" && r.last != w.Initial {
		w.OnChange("start: content changed since the last load")
	}
	if w.ready != nil {
		w.ready()
	}
	return r.loop(ctx)
}

// watchRun is the state of one Run call, owned by its goroutine.
type watchRun struct {
	w        *Watcher
	path     string // absolute
	log      *slog.Logger
	interval time.Duration
	settle   time.Duration

	fsw *fsnotify.Watcher // nil when fsnotify could not start
	// dirs maps every directory we asked fsnotify to watch to its identity
	// when added: the same name with another inode means the directory was
	// replaced (a new mount, a rename over it) and the watch is stale.
	dirs map[string]os.FileInfo
	// targets says which entries of each watched directory matter (nil: all).
	targets map[string]map[string]bool

	last    string // the state last reported (or found at start)
	lastErr string // the last unreadable-state error logged, to log transitions only
}

func (r *watchRun) loop(ctx context.Context) error {
	settle := time.NewTimer(r.settle)
	settle.Stop()
	defer settle.Stop()
	poll := time.NewTicker(r.interval)
	defer poll.Stop()

	var (
		events  <-chan fsnotify.Event
		errs    <-chan error
		pending string // the first event of the burst being settled
		more    int    // the burst's other events
	)
	if r.fsw != nil {
		events, errs = r.fsw.Events, r.fsw.Errors
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if !r.relevant(ev) {
				continue
			}
			if pending == "" {
				pending = "fsnotify: " + ev.Op.String() + " " + filepath.Base(ev.Name)
			} else {
				more++
			}
			settle.Reset(r.settle)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// Events may have been dropped (certainly so on overflow), and
			// nothing says which: check the content as after an event.
			r.log.Warn("rules watcher: fsnotify error, checking content", "err", err)
			if pending != "" {
				more++
			}
			pending = "fsnotify: error: " + err.Error()
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				pending = "fsnotify: event queue overflow"
			}
			settle.Reset(r.settle)
		case <-settle.C:
			reason := pending
			if more > 0 {
				reason += fmt.Sprintf(" (+%d more events)", more)
			}
			pending, more = "", 0
			r.check(reason)
		case <-poll.C:
			r.check("poll: content hash changed")
		}
	}
}

// relevant reports whether ev touches an entry that can change what
// Fingerprint sees. Events from directories we no longer track (the watched
// directory's own removal, for one) count: re-checking is cheap.
func (r *watchRun) relevant(ev fsnotify.Event) bool {
	names, ok := r.targets[filepath.Dir(ev.Name)]
	if !ok || names == nil {
		return true
	}
	return names[filepath.Base(ev.Name)]
}

func (r *watchRun) check(reason string) {
	r.syncWatches()
	state := r.state()
	fired := state != r.last
	if fired {
		r.last = state
		r.log.Debug("rules watcher: content changed", "reason", reason)
		r.w.OnChange(reason)
	}
	if r.w.checked != nil {
		r.w.checked(reason, fired)
	}
}

// state is the fingerprint of Path, or a marker carrying the error that
// kept it from being computed; either way, two equal states mean nothing
// changed that a reload could see.
func (r *watchRun) state() string {
	fp, err := Fingerprint(r.path)
	if err != nil {
		if msg := err.Error(); msg != r.lastErr {
			r.lastErr = msg
			r.log.Warn("rules watcher: rules path unreadable, still watching", "err", err)
		}
		return "unreadable: " + err.Error()
	}
	if r.lastErr != "" {
		r.lastErr = ""
		r.log.Info("rules watcher: rules path readable again")
	}
	return fp
}

// syncWatches brings the fsnotify watches in line with what Path currently
// resolves to: it adds directories that (re)appeared, replaces watches whose
// directory was swapped for another, and drops directories no longer on the
// way. Errors are not fatal: the next check or poll tries again.
func (r *watchRun) syncWatches() {
	want := watchTargets(r.path)
	r.targets = want
	if r.fsw == nil {
		return
	}
	active := make(map[string]bool)
	for _, p := range r.fsw.WatchList() {
		active[p] = true
	}
	for dir := range r.dirs {
		if _, ok := want[dir]; !ok {
			if active[dir] {
				_ = r.fsw.Remove(dir) // fails only if the kernel dropped it already
			}
			delete(r.dirs, dir)
		}
	}
	for dir := range want {
		// Stat before Add: if the directory is swapped in between, the
		// recorded identity is the old one and the next sync re-adds,
		// whereas the other order could keep a stale watch for good.
		fi, err := os.Stat(dir)
		if err != nil || !fi.IsDir() {
			if active[dir] {
				_ = r.fsw.Remove(dir)
			}
			delete(r.dirs, dir)
			continue
		}
		if old, ok := r.dirs[dir]; ok && active[dir] && os.SameFile(old, fi) {
			continue
		}
		if active[dir] {
			_ = r.fsw.Remove(dir)
		}
		if err := r.fsw.Add(dir); err != nil {
			r.log.Debug("rules watcher: cannot watch directory", "dir", dir, "err", err)
			delete(r.dirs, dir)
			continue
		}
		r.dirs[dir] = fi
	}
}

// watchTargets returns the directories whose entries decide what
// Fingerprint(path) sees, each with the entry names that matter (nil: every
// entry). It always includes path's own entry in its parent, so a rules
// directory or file that is removed, recreated or renamed over is noticed.
// It then follows the symlinks met on the way, and, for a directory, those
// of its rule files. For a Kubernetes volume (a.yaml -> ..data/a.yaml,
// ..data -> ..2026_...) that covers the volume directory (a.yaml, ..data)
// and the current timestamped directory.
func watchTargets(path string) map[string]map[string]bool {
	t := make(watchTargetSet)
	dir, name := filepath.Dir(path), filepath.Base(path)
	t.add(dir, name)
	final, isDir := t.follow(dir, name)
	if !isDir {
		return t
	}
	t[final] = nil
	entries, err := os.ReadDir(final)
	if err != nil {
		return t
	}
	for _, e := range entries {
		if e.Type()&os.ModeSymlink != 0 && rules.IsRuleFile(e.Name()) {
			t.follow(final, e.Name())
		}
	}
	return t
}

type watchTargetSet map[string]map[string]bool

func (t watchTargetSet) add(dir, name string) {
	names, ok := t[dir]
	if ok && names == nil {
		return
	}
	if !ok {
		names = make(map[string]bool)
		t[dir] = names
	}
	names[name] = true
}

// follow resolves name in dir one component at a time, recording every
// symlink met and the file it ends at, or the missing entry it stops at
// (whose creation is the event to wait for). It returns the path reached
// and whether that is a directory. An absolute link target is walked from
// the root, but only symlinks met on the way are recorded, not the ordinary
// directories above the rules.
func (t watchTargetSet) follow(dir, name string) (string, bool) {
	sep := string(filepath.Separator)
	rest := []string{name}
	for hops := 0; len(rest) > 0; {
		name, rest = rest[0], rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			dir = filepath.Dir(dir)
			continue
		}
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		switch {
		case err != nil:
			t.add(dir, name)
			return p, false
		case fi.Mode()&os.ModeSymlink != 0:
			t.add(dir, name)
			if hops++; hops > watchMaxSymlinkHops {
				return p, false
			}
			link, err := os.Readlink(p)
			if err != nil {
				return p, false
			}
			if filepath.IsAbs(link) {
				dir = filepath.VolumeName(link) + sep
			}
			rest = append(strings.Split(link, sep), rest...)
		case fi.IsDir():
			dir = p
		default:
			if len(rest) == 0 {
				t.add(dir, name)
			}
			return p, false
		}
	}
	return dir, true
}
