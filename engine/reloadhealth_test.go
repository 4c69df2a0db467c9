package engine

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/reload"
)

// metricValue returns the value of the unlabelled sample name in a scrape.
func metricValue(t *testing.T, out, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no sample %s in:\n%s", name, out)
	return 0
}

// TestReloadHealthGauges drives a real Reloader wired as serve wires it:
// the success gauge follows the last attempt, the timestamp only successes.
func TestReloadHealthGauges(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "r.yaml")
	good := "rules:\n  - name: r\n    actions:\n      - log: { message: hi }\n"
	if err := os.WriteFile(file, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	var reg actions.Registry
	if err := reg.Register(&actions.Log{}); err != nil {
		t.Fatal(err)
	}
	m := NewMetrics("test", "none")
	r := &reload.Reloader{Path: dir, Options: rules.Options{Registry: &reg}, Logger: slog.New(slog.DiscardHandler),
		OnReload: func(set *rules.Set, err error, _ time.Duration) {
			if err != nil {
				m.ReloadFailed()
				return
			}
			m.RulesLoaded(set)
		}}
	const ok, ts = "friendflow_rules_last_reload_success", "friendflow_rules_last_reload_success_timestamp_seconds"
	if v := metricValue(t, scrape(t, m), ok); v != 0 {
		t.Fatalf("%s = %v before any load", ok, v)
	}
	before := float64(time.Now().Unix())
	if err := r.Reload("start"); err != nil {
		t.Fatal(err)
	}
	out := scrape(t, m)
	loadedAt := metricValue(t, out, ts)
	if metricValue(t, out, ok) != 1 || loadedAt < before {
		t.Fatalf("after a good load:\n%s", out)
	}
	if err := os.WriteFile(file, []byte("rules: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload("test"); err == nil {
		t.Fatal("broken rules loaded")
	}
	out = scrape(t, m)
	if metricValue(t, out, ok) != 0 || metricValue(t, out, ts) != loadedAt {
		t.Fatalf("after a failed load:\n%s", out)
	}
	if err := os.WriteFile(file, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload("test"); err != nil {
		t.Fatal(err)
	}
	if v := metricValue(t, scrape(t, m), ok); v != 1 {
		t.Fatalf("%s = %v after the fix", ok, v)
	}
}
