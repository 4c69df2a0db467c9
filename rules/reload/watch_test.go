package reload

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestWatcherSavePatterns(t *testing.T) {
	scenarios := []struct {
		name string
		save func(t *testing.T, dir string, settle time.Duration)
	}{
		{"vim backup rename", func(t *testing.T, dir string, _ time.Duration) {
			// vim's default on Unix (backupcopy=auto): probe with 4913,
			// move the original to a.yaml~, write a new a.yaml, delete the
			// backup; the swap file is written throughout.
			a := filepath.Join(dir, "a.yaml")
			wtWrite(t, filepath.Join(dir, ".a.yaml.swp"), "swap 1")
			wtWrite(t, filepath.Join(dir, "4913"), "")
			wtMust(t, os.Remove(filepath.Join(dir, "4913")))
			wtMust(t, os.Rename(a, a+"~"))
			f, err := os.OpenFile(a, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			wtMust(t, err)
			_, err = f.WriteString("a: 1\n")
			wtMust(t, err)
			_, err = f.WriteString("more: 1\n")
			wtMust(t, err)
			wtMust(t, f.Close())
			wtMust(t, os.Remove(a+"~"))
			wtWrite(t, filepath.Join(dir, ".a.yaml.swp"), "swap 2")
		}},
		{"write temp then rename over", func(t *testing.T, dir string, _ time.Duration) {
			wtRenameOver(t, filepath.Join(dir, "a.yaml"), ".a.yaml.tmp1234", "a: 2\n")
		}},
		{"sed -i", func(t *testing.T, dir string, _ time.Duration) {
			// GNU sed -i writes ./sedXXXXXX and renames it over the file.
			wtRenameOver(t, filepath.Join(dir, "a.yaml"), "sedAb12Cd", "a: 3\n")
		}},
		{"truncate and write", func(t *testing.T, dir string, _ time.Duration) {
			wtWrite(t, filepath.Join(dir, "a.yaml"), "a: 4\n")
		}},
		{"truncate, write in two chunks with a pause inside Settle", func(t *testing.T, dir string, settle time.Duration) {
			f, err := os.OpenFile(filepath.Join(dir, "a.yaml"), os.O_WRONLY|os.O_TRUNC, 0)
			wtMust(t, err)
			defer f.Close()
			_, err = f.WriteString("a: 5\n")
			wtMust(t, err)
			time.Sleep(settle / 2) // a slow writer, not a wait for the watcher
			_, err = f.WriteString("rest: 5\n")
			wtMust(t, err)
			wtMust(t, f.Close())
		}},
	}
	const settle = 100 * time.Millisecond
	for _, mode := range wtModes {
		for _, sc := range scenarios {
			t.Run(mode.name+"/"+sc.name, func(t *testing.T) {
				dir := wtRulesDir(t)
				h := wtStart(t, mode.path(dir), wtNoPoll, settle)
				sc.save(t, dir, settle)
				calls := h.waitConverged(0)
				for _, c := range calls {
					if !strings.HasPrefix(c.reason, "fsnotify: ") {
						t.Errorf("reason %q, want an fsnotify one", c.reason)
					}
				}
				// Saving the same content again, or touching, must not fire.
				h.assertNoOp("touch", func() {
					now := time.Now()
					wtMust(t, os.Chtimes(filepath.Join(dir, "a.yaml"), now, now))
				})
				b, err := os.ReadFile(filepath.Join(dir, "a.yaml"))
				wtMust(t, err)
				h.assertNoOp("same-content save", func() {
					wtRenameOver(t, filepath.Join(dir, "a.yaml"), ".a.yaml.tmp", string(b))
				})
			})
		}
	}
}

// A state seen half-written is reported, and the completed state is
// reported again even though it differs from the last only by content.
func TestWatcherHalfWrittenThenCompleted(t *testing.T) {
	for _, mode := range wtModes {
		t.Run(mode.name, func(t *testing.T) {
			dir := wtRulesDir(t)
			path := mode.path(dir)
			h := wtStart(t, path, wtNoPoll, 20*time.Millisecond)

			f, err := os.OpenFile(filepath.Join(dir, "a.yaml"), os.O_WRONLY|os.O_TRUNC, 0)
			wtMust(t, err)
			defer f.Close()
			_, err = f.WriteString("a: [1,")
			wtMust(t, err)
			half := h.waitConverged(0)
			_, err = f.WriteString(" 2]\n")
			wtMust(t, err)
			wtMust(t, f.Close())
			full := h.waitConverged(len(half))
			if half[len(half)-1].fp == full[len(full)-1].fp {
				t.Fatal("half and full content share a fingerprint")
			}
		})
	}
}

// wtConfigMap mimics the kubelet's AtomicWriter: the payload lives in a
// timestamped directory, ..data points to it, and every user-visible name
// is a symlink through ..data.
type wtConfigMap struct {
	tb    testing.TB
	dir   string
	seq   int
	cur   string          // current timestamped directory
	names map[string]bool // user-visible names
}

func (c *wtConfigMap) update(files map[string]string) {
	c.tb.Helper()
	c.seq++
	ts := fmt.Sprintf("..2026_11_25_23_%02d_%02d.%09d", c.seq/60%60, c.seq%60, 100000000+c.seq)
	wtMust(c.tb, os.Mkdir(filepath.Join(c.dir, ts), 0o755))
	for name, content := range files {
		wtWrite(c.tb, filepath.Join(c.dir, ts, name), content)
	}
	tmp := filepath.Join(c.dir, "..data_tmp")
	wtMust(c.tb, os.Symlink(ts, tmp))
	wtMust(c.tb, os.Rename(tmp, filepath.Join(c.dir, "..data")))
	for name := range files {
		p := filepath.Join(c.dir, name)
		if _, err := os.Lstat(p); err != nil {
			wtMust(c.tb, os.Symlink(filepath.Join("..data", name), p))
		}
	}
	if c.cur != "" {
		wtMust(c.tb, os.RemoveAll(filepath.Join(c.dir, c.cur)))
	}
	for name := range c.names {
		if _, ok := files[name]; !ok {
			wtMust(c.tb, os.Remove(filepath.Join(c.dir, name)))
		}
	}
	c.cur = ts
	c.names = make(map[string]bool)
	for name := range files {
		c.names[name] = true
	}
}

func TestWatcherKubernetesConfigMap(t *testing.T) {
	for _, mode := range wtModes {
		t.Run(mode.name, func(t *testing.T) {
			cm := &wtConfigMap{tb: t, dir: t.TempDir()}
			cm.update(map[string]string{"a.yaml": "a: 0\n", "b.yaml": "b: 0\n"})
			h := wtStart(t, mode.path(cm.dir), wtNoPoll, 100*time.Millisecond)

			// One swap at a time: each is reported once.
			for i := 1; i <= 3; i++ {
				n := h.ncalls()
				cm.update(map[string]string{"a.yaml": fmt.Sprintf("a: %d\n", i), "b.yaml": "b: 0\n"})
				if calls := h.waitConverged(n); len(calls) != 1 {
					t.Errorf("swap %d: %d calls %q, want 1", i, len(calls), calls)
				}
			}
			// Several swaps in a row, one adding and one dropping a file.
			n := h.ncalls()
			cm.update(map[string]string{"a.yaml": "a: 10\n", "b.yaml": "b: 0\n", "c.yaml": "c: 0\n"})
			cm.update(map[string]string{"a.yaml": "a: 11\n", "c.yaml": "c: 1\n"})
			cm.update(map[string]string{"a.yaml": "a: 12\n", "c.yaml": "c: 2\n"})
			calls := h.waitConverged(n)
			for _, c := range calls {
				if !strings.HasPrefix(c.reason, "fsnotify: ") {
					t.Errorf("reason %q, want an fsnotify one", c.reason)
				}
			}
			// A resync with identical data (the kubelet rewrites on
			// metadata changes) must not fire.
			h.assertNoOp("identical swap", func() {
				cm.update(map[string]string{"a.yaml": "a: 12\n", "c.yaml": "c: 2\n"})
			})
		})
	}
}

func TestWatcherGitCheckoutBurst(t *testing.T) {
	dir := wtRulesDir(t)
	h := wtStart(t, dir, wtNoPoll, 200*time.Millisecond)
	// git checkout unlinks and recreates changed files, adds and removes
	// others, all within a few milliseconds.
	a := filepath.Join(dir, "a.yaml")
	wtMust(t, os.Remove(a))
	wtWrite(t, a, "a: 7\n")
	wtMust(t, os.Remove(filepath.Join(dir, "b.yml")))
	wtWrite(t, filepath.Join(dir, "c.yaml"), "c: 7\n")
	wtWrite(t, filepath.Join(dir, "d.yml"), "d: 7\n")
	wtMust(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	wtWrite(t, filepath.Join(dir, "sub", "ignored.yaml"), "x: 1\n")
	calls := h.waitConverged(0)
	if len(calls) != 1 {
		t.Fatalf("burst gave %d calls %q, want 1", len(calls), calls)
	}
	if !strings.Contains(calls[0].reason, "more events") {
		t.Errorf("reason %q does not mention the rest of the burst", calls[0].reason)
	}
}

func TestWatcherDeleteAndCreateFiles(t *testing.T) {
	t.Run("dir", func(t *testing.T) {
		dir := wtRulesDir(t)
		h := wtStart(t, dir, wtNoPoll, 50*time.Millisecond)
		wtMust(t, os.Remove(filepath.Join(dir, "b.yml")))
		n := len(h.waitConverged(0))
		wtWrite(t, filepath.Join(dir, "new.yaml"), "new: 1\n")
		h.waitConverged(n)
		// Files the loader ignores do not fire.
		h.assertNoOp("non-rule file", func() { wtWrite(t, filepath.Join(dir, "README.md"), "x") })
		h.assertNoOp("hidden file", func() { wtWrite(t, filepath.Join(dir, ".x.yaml"), "x") })
	})
	t.Run("file", func(t *testing.T) {
		dir := wtRulesDir(t)
		a := filepath.Join(dir, "a.yaml")
		h := wtStart(t, a, wtNoPoll, 50*time.Millisecond)
		// The file going away is reported (the reload fails visibly and
		// keeps the last good set); its return is reported again.
		wtMust(t, os.Remove(a))
		calls := h.waitConverged(0)
		if got := calls[len(calls)-1].fp; got != "unreadable" {
			t.Fatalf("last call saw %q, want the missing file", got)
		}
		wtWrite(t, a, "a: 8\n")
		h.waitConverged(len(calls))
		// Other files in the directory are filtered out: they neither fire
		// nor even schedule a check. The touch of a.yaml afterwards proves
		// the watcher got past b.yml's events.
		checks := h.nchecks()
		h.assertNoOp("sibling change", func() {
			wtWrite(t, filepath.Join(dir, "b.yml"), "b: 9\n")
			now := time.Now()
			wtMust(t, os.Chtimes(a, now, now))
		})
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, c := range h.checks[checks:] {
			if strings.Contains(c.reason, "b.yml") {
				t.Errorf("check %q: events for b.yml were not filtered out", c.reason)
			}
		}
	})
}

// TestWatcherLostEventPoll changes a rule file through a hard link in a
// directory nobody watches. inotify reports events to the watches on the
// directory of the name used, so the watched directory hears nothing: an
// honest lost event, like a bind mount updated from outside. Only the
// periodic check can see it.
func TestWatcherLostEventPoll(t *testing.T) {
	dir := wtRulesDir(t)
	link := filepath.Join(t.TempDir(), "elsewhere.yaml")
	wtMust(t, os.Link(filepath.Join(dir, "a.yaml"), link))
	h := wtStart(t, dir, 300*time.Millisecond, 50*time.Millisecond)

	checks := h.nchecks()
	f, err := os.OpenFile(link, os.O_WRONLY|os.O_TRUNC, 0)
	wtMust(t, err)
	_, err = f.WriteString("a: changed behind inotify's back\n")
	wtMust(t, err)
	wtMust(t, f.Close())

	calls := h.waitConverged(0)
	if len(calls) != 1 || calls[0].reason != "poll: content hash changed" {
		t.Fatalf("calls %q, want one from the poll", calls)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.checks[checks:] {
		if strings.HasPrefix(c.reason, "fsnotify:") {
			t.Fatalf("check %q: inotify did see the hard-link write, so this test proves nothing", c.reason)
		}
	}
}

// TestWatcherQueueOverflow overflows the kernel's inotify queue while
// OnChange is busy. The flood is of files that a single-file Path ignores,
// and the one relevant change comes after the queue is full, so its event
// is dropped: nothing but the reaction to ErrEventOverflow can see it.
func TestWatcherQueueOverflow(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		t.Skipf("not Linux inotify: %v", err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || limit > 50000 {
		t.Skipf("max_queued_events %q too large to overflow quickly", b)
	}
	dir := wtRulesDir(t)
	a := filepath.Join(dir, "a.yaml")
	block := make(chan struct{})
	h := wtStartBlocking(t, a, wtNoPoll, 20*time.Millisecond, block)
	released := false
	defer func() {
		if !released {
			close(block)
		}
	}()

	wtWrite(t, a, "a: 1\n")
	h.waitFor("OnChange to start", func() bool { return len(h.calls) == 1 })
	// Each create and remove is one event; distinct names keep the kernel
	// from merging them. fsnotify holds up to 4096 events in its buffer, so
	// the flood exceeds the queue by that and some.
	for i := range limit/2 + 4000 {
		p := filepath.Join(dir, "f"+strconv.Itoa(i))
		wtMust(t, os.WriteFile(p, nil, 0o644))
		wtMust(t, os.Remove(p))
	}
	wtWrite(t, a, "a: 2\n")
	close(block)
	released = true

	calls := h.waitConverged(1)
	if r := calls[len(calls)-1].reason; !strings.Contains(r, "overflow") {
		t.Errorf("final reason %q, want the overflow check", r)
	}
}

func TestWatcherDirectoryRemovedAndRecreated(t *testing.T) {
	t.Run("remove and recreate", func(t *testing.T) {
		dir := wtRulesDir(t)
		h := wtStart(t, dir, wtNoPoll, 50*time.Millisecond)
		wtMust(t, os.RemoveAll(dir))
		calls := h.waitConverged(0)
		wtMust(t, os.Mkdir(dir, 0o755))
		wtWrite(t, filepath.Join(dir, "a.yaml"), "a: 1\n")
		calls = append(calls, h.waitConverged(len(calls))...)
		// The new directory is watched: an in-place write is seen.
		wtWrite(t, filepath.Join(dir, "a.yaml"), "a: 2\n")
		h.waitConverged(len(calls))
	})
	t.Run("replaced by rename", func(t *testing.T) {
		dir := wtRulesDir(t)
		h := wtStart(t, dir, wtNoPoll, 50*time.Millisecond)
		next := dir + ".new"
		wtMust(t, os.Mkdir(next, 0o755))
		wtWrite(t, filepath.Join(next, "a.yaml"), "a: 3\n")
		wtMust(t, os.Rename(dir, dir+".old"))
		wtMust(t, os.Rename(next, dir))
		n := len(h.waitConverged(0))
		// Writes to the old directory no longer matter; to the new one they do.
		h.assertNoOp("write to the old directory", func() {
			wtWrite(t, filepath.Join(dir+".old", "a.yaml"), "a: old\n")
			now := time.Now()
			wtMust(t, os.Chtimes(filepath.Join(dir, "a.yaml"), now, now))
		})
		wtWrite(t, filepath.Join(dir, "a.yaml"), "a: 4\n")
		h.waitConverged(n)
	})
}

func TestWatcherPathMissingAtStart(t *testing.T) {
	for _, mode := range wtModes {
		t.Run(mode.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "rules")
			path := mode.path(dir)
			if mode.name == "file" {
				wtMust(t, os.Mkdir(dir, 0o755))
			}
			h := wtStart(t, path, wtNoPoll, 50*time.Millisecond)
			if !strings.Contains(h.logs.String(), "unreadable") {
				t.Errorf("missing path not logged:\n%s", h.logs)
			}
			if mode.name == "dir" {
				wtMust(t, os.Mkdir(dir, 0o755))
			}
			wtWrite(t, filepath.Join(dir, "a.yaml"), "a: 1\n")
			n := len(h.waitConverged(0))
			wtWrite(t, filepath.Join(dir, "a.yaml"), "a: 2\n")
			h.waitConverged(n)
		})
	}
}

// A single-file Path that is a symlink into another directory: writes at
// the target are seen, and so is re-pointing the link.
func TestWatcherSymlinkedFile(t *testing.T) {
	root := t.TempDir()
	etc, cfg1, cfg2 := filepath.Join(root, "etc"), filepath.Join(root, "cfg1"), filepath.Join(root, "cfg2")
	for _, d := range []string{etc, cfg1, cfg2} {
		wtMust(t, os.Mkdir(d, 0o755))
	}
	wtWrite(t, filepath.Join(cfg1, "real.yaml"), "v: 1\n")
	wtWrite(t, filepath.Join(cfg2, "other.yaml"), "v: 2\n")
	path := filepath.Join(etc, "rules.yaml")
	wtMust(t, os.Symlink(filepath.Join(cfg1, "real.yaml"), path))
	h := wtStart(t, path, wtNoPoll, 50*time.Millisecond)

	wtWrite(t, filepath.Join(cfg1, "real.yaml"), "v: 1.1\n")
	n := len(h.waitConverged(0))

	wtMust(t, os.Symlink("../cfg2/other.yaml", path+".tmp"))
	wtMust(t, os.Rename(path+".tmp", path))
	n += len(h.waitConverged(n))

	h.assertNoOp("write to the old target", func() {
		wtWrite(t, filepath.Join(cfg1, "real.yaml"), "v: 1.2\n")
		now := time.Now()
		wtMust(t, os.Chtimes(filepath.Join(cfg2, "other.yaml"), now, now))
	})
	wtWrite(t, filepath.Join(cfg2, "other.yaml"), "v: 2.1\n")
	h.waitConverged(n)
}

func TestWatcherRunConfig(t *testing.T) {
	ctx := context.Background()
	for name, w := range map[string]*Watcher{
		"empty path":        {OnChange: func(string) {}},
		"nil OnChange":      {Path: t.TempDir()},
		"negative interval": {Path: t.TempDir(), OnChange: func(string) {}, Interval: -1},
		"negative settle":   {Path: t.TempDir(), OnChange: func(string) {}, Settle: -1},
	} {
		if err := w.Run(ctx); err == nil {
			t.Errorf("%s: Run returned nil", name)
		}
	}
}

func TestWatcherDefaultsAndCancel(t *testing.T) {
	dir := wtRulesDir(t)
	// Zero Interval and Settle take the defaults; a change is still seen.
	h := wtStart(t, dir, 0, 0)
	wtWrite(t, filepath.Join(dir, "a.yaml"), "a: 1\n")
	h.waitConverged(0)
	// wtStart's cleanup asserts that Run returns nil promptly on cancel.
}

func TestWatchTargets(t *testing.T) {
	cm := &wtConfigMap{tb: t, dir: t.TempDir()}
	cm.update(map[string]string{"a.yaml": "a: 0\n"})
	got := watchTargets(filepath.Join(cm.dir, "a.yaml"))
	ts := filepath.Join(cm.dir, cm.cur)
	if names := got[cm.dir]; !names["a.yaml"] || !names["..data"] || len(names) != 2 {
		t.Errorf("volume directory names %v, want a.yaml and ..data", names)
	}
	if names := got[ts]; !names["a.yaml"] || len(names) != 1 {
		t.Errorf("timestamped directory names %v, want a.yaml", names)
	}
	if len(got) != 2 {
		t.Errorf("targets %v, want two directories", got)
	}

	got = watchTargets(cm.dir)
	if names, ok := got[cm.dir]; !ok || names != nil {
		t.Errorf("directory Path: %v, want all entries of %s", got, cm.dir)
	}
	if names := got[filepath.Dir(cm.dir)]; !names[filepath.Base(cm.dir)] {
		t.Errorf("directory Path: parent not watched for its entry: %v", got)
	}
	if names := got[ts]; !names["a.yaml"] {
		t.Errorf("directory Path: rule file symlink not followed: %v", got)
	}

	// A symlink loop ends the walk instead of hanging it.
	loop := filepath.Join(t.TempDir(), "loop.yaml")
	wtMust(t, os.Symlink(filepath.Base(loop), loop))
	if got := watchTargets(loop); !got[filepath.Dir(loop)]["loop.yaml"] {
		t.Errorf("loop: %v", got)
	}
}

// BenchmarkWatcherSaveToOnChange measures the latency from a completed
// rename-over save to OnChange (including the test's own re-read of the
// files, as a loader would). It is dominated by Settle.
func BenchmarkWatcherSaveToOnChange(b *testing.B) {
	for _, settle := range []time.Duration{100 * time.Millisecond, 10 * time.Millisecond} {
		b.Run("settle="+settle.String(), func(b *testing.B) {
			dir := wtRulesDir(b)
			h := wtStart(b, dir, wtNoPoll, settle)
			a := filepath.Join(dir, "a.yaml")
			i := 0
			for b.Loop() {
				i++
				n := h.ncalls()
				wtRenameOver(b, a, ".a.yaml.tmp", fmt.Sprintf("a: %d\n", i))
				h.waitFor("OnChange", func() bool { return len(h.calls) > n })
			}
		})
	}
}
