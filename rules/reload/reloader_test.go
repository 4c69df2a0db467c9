package reload

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// version renders a rule file whose every rule carries v in its name, so a
// match result shows which version of the files it came from.
func version(v int) string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range 20 {
		fmt.Fprintf(&b, "  - name: v%d-rule%d\n    when: To_Account != \"\"\n    actions:\n      - log: { message: \"v%d\" }\n", v, i, v)
	}
	return b.String()
}

func newTestReloader(t testing.TB, dir string, logs *bytes.Buffer) *Reloader {
	var reg actions.Registry
	if err := reg.Register(&actions.Log{}); err != nil {
		t.Fatal(err)
	}
	return &Reloader{
		Path:     dir,
		Options:  rules.Options{Registry: &reg},
		Logger:   slog.New(slog.NewTextHandler(logs, nil)),
		Interval: 200 * time.Millisecond,
		Settle:   20 * time.Millisecond,
	}
}

// save writes content the way editors do: a temp file renamed over the name.
func save(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp~"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// writeRules writes content as r.yaml into a new temporary directory and
// returns the directory.
func writeRules(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestReloaderMatchesConsistentlyWhileReloading(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rules.yaml")
	save(t, file, version(0))
	var logs bytes.Buffer
	r := newTestReloader(t, dir, &logs)
	if err := r.Reload("start"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = r.Watch(ctx) }()

	// Readers match all the time; each result must come from one version.
	var stop atomic.Bool
	var wg sync.WaitGroup
	var matched atomic.Int64
	errs := make(chan string, 8)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "a", To_Account: "b"}
			for !stop.Load() {
				ms, _ := r.Current().Match(ev)
				if len(ms) != 20 {
					errs <- fmt.Sprintf("%d matches", len(ms))
					return
				}
				v := strings.SplitN(ms[0].Rule, "-", 2)[0]
				for _, m := range ms {
					if !strings.HasPrefix(m.Rule, v+"-") {
						errs <- fmt.Sprintf("mixed versions: %s and %s", ms[0].Rule, m.Rule)
						return
					}
				}
				matched.Add(1)
			}
		}()
	}
	for v := 1; v <= 5; v++ {
		save(t, file, version(v))
		want := fmt.Sprintf("v%d-rule0", v)
		waitFor(t, want, func() bool { return r.Current().Rules()[0].Name == want })
	}
	// A broken save: the last good set keeps serving, and says why.
	save(t, file, version(6)+"  - name: broken\n    when: To_Acount == \"x\"\n    actions: [{log: {}}]\n")
	waitFor(t, "the failed reload", func() bool { return r.Status().LastError != "" })
	if got := r.Current().Rules()[0].Name; got != "v5-rule0" {
		t.Fatalf("after a failed reload the active set is %s", got)
	}
	st := r.Status()
	if !strings.Contains(st.LastError, file+":") || !strings.Contains(st.LastError, "To_Acount") {
		t.Fatalf("last error %q lacks file:line:col and the cause", st.LastError)
	}
	// An emptied file (the first half of `>` or a truncating editor) too.
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the empty file's failure", func() bool { return strings.Contains(r.Status().LastError, "empty") })
	if got := r.Current().Rules()[0].Name; got != "v5-rule0" {
		t.Fatalf("an empty file replaced the rules: %s", got)
	}
	// Fixed: live again, error cleared.
	save(t, file, version(7))
	waitFor(t, "v7", func() bool { return r.Current().Rules()[0].Name == "v7-rule0" })
	if st := r.Status(); st.LastError != "" || st.Failures < 2 || st.Reloads < 7 {
		t.Fatalf("status %+v", st)
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if matched.Load() == 0 {
		t.Fatal("no match ran during the reloads")
	}
	if !strings.Contains(logs.String(), "the last good rules keep serving") {
		t.Error("a failed reload was not logged as an error")
	}
}

func TestReloaderWatchCatchesAChangeMadeRightAfterTheFirstLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rules.yaml")
	save(t, file, version(1))
	var logs bytes.Buffer
	r := newTestReloader(t, dir, &logs)
	r.Interval = time.Hour // only the start check can catch it
	if err := r.Reload("start"); err != nil {
		t.Fatal(err)
	}
	save(t, file, version(2)) // before the watcher is up
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = r.Watch(ctx) }()
	waitFor(t, "v2", func() bool { return r.Current().Rules()[0].Name == "v2-rule0" })
}

func BenchmarkReload1000Rules(b *testing.B) {
	dir := b.TempDir()
	var sb strings.Builder
	sb.WriteString("rules:\n")
	for i := range 1000 {
		fmt.Fprintf(&sb, "  - name: r%d\n    when: From_Account == \"user%d\" && ForceFlag == 1\n    actions:\n      - log: { message: \"hi ${ To_Account }\" }\n", i, i)
	}
	file := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(file, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	var logs bytes.Buffer
	r := newTestReloader(b, dir, &logs)
	r.Settle = 0 // the watcher's default settle delay, as served
	if err := r.Reload("start"); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = r.Watch(ctx) }()
	time.Sleep(100 * time.Millisecond)
	content := sb.String()
	for i := 0; b.Loop(); i++ {
		// save-to-live: write a new version and wait until it serves
		marker := fmt.Sprintf("# v%d\n", i)
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(marker+content), 0o644); err != nil {
			b.Fatal(err)
		}
		before := r.Current()
		if err := os.Rename(tmp, file); err != nil {
			b.Fatal(err)
		}
		for r.Current() == before {
			time.Sleep(time.Millisecond)
		}
	}
}

// slowKind's Spec, once armed, reports that a load has reached it and
// waits for release: a load held in progress.
type slowKind struct {
	armed            atomic.Bool
	reached, release chan struct{}
}

func (k *slowKind) Spec() actions.Spec {
	if k.armed.Load() {
		k.reached <- struct{}{}
		<-k.release
	}
	return actions.Spec{Name: "test.slow"}
}

func (k *slowKind) Do(context.Context, actions.Job, map[string]any) error { return nil }

// Status and Current answer while a load is in progress: GET /rules and
// /readyz read them.
func TestReloaderStatusDuringLoad(t *testing.T) {
	k := &slowKind{reached: make(chan struct{}), release: make(chan struct{})}
	var reg actions.Registry
	if err := reg.Register(k); err != nil {
		t.Fatal(err)
	}
	dir := writeRules(t, "rules:\n  - name: a\n    actions: [{test.slow: {}}]\n")
	r := &Reloader{Path: dir, Options: rules.Options{Registry: &reg}, Logger: slog.New(slog.DiscardHandler)}
	if err := r.Reload("start"); err != nil {
		t.Fatal(err)
	}
	k.armed.Store(true)
	done := make(chan error, 1)
	go func() { done <- r.Reload("test") }()
	<-k.reached // the load is in progress, and stays so until release
	answered := make(chan Status, 1)
	go func() { answered <- r.Status() }()
	select {
	case st := <-answered:
		if st.Reloads != 1 || r.Current() == nil {
			t.Errorf("status during the load: %+v", st)
		}
	case <-time.After(10 * time.Second):
		t.Error("Status waited for the load in progress")
	}
	k.armed.Store(false)
	close(k.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := r.Status(); st.Reloads != 2 {
		t.Errorf("status after the load: %+v", st)
	}
}
