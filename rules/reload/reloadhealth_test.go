package reload

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/rules"
)

// jsonLines decodes every JSON log line written to buf.
func jsonLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// TestReloaderReportsFailureAndRecovery: a failed reload logs its error in
// the err field (the message stays one fixed text), and the reload that
// fixes it says so at info, even when the fixed files equal the last good
// ones.
func TestReloaderReportsFailureAndRecovery(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rules.yaml")
	save(t, file, version(1))
	var logs bytes.Buffer
	r := newTestReloader(t, dir, &logs)
	r.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	var outcomes []bool
	r.OnReload = func(_ *rules.Set, err error, _ time.Duration) { outcomes = append(outcomes, err == nil) }
	if err := r.Reload("start"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("rules:\n  - name: x\n    when: To_Acount == \"a\"\n    actions:\n      - log: { message: m }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload("test"); err == nil {
		t.Fatal("a broken file loaded")
	}
	save(t, file, version(1)) // back to the serving content
	if err := r.Reload("test"); err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, true}; !slices.Equal(outcomes, want) {
		t.Fatalf("OnReload outcomes %v, want %v", outcomes, want)
	}
	var failed, recovered map[string]any
	for _, l := range jsonLines(t, &logs) {
		switch l["msg"] {
		case "rules reload failed; the last good rules keep serving":
			failed = l
		case "rules reloaded; the previous reload had failed":
			recovered = l
		}
	}
	if failed == nil || failed["level"] != "ERROR" {
		t.Fatalf("no error line for the failed reload:\n%s", logs.String())
	}
	if e, _ := failed["err"].(string); !strings.Contains(e, file+":3:") || !strings.Contains(e, "To_Acount") {
		t.Errorf("err field %q lacks file:line:col and the cause", e)
	}
	if _, ok := failed["error"]; ok {
		t.Error("the error is under error, not err")
	}
	if recovered == nil || recovered["level"] != "INFO" || recovered["hash"] != r.Current().Hash() {
		t.Fatalf("no info line for the recovery:\n%s", logs.String())
	}
}

// warnRules load with five lint warnings (rules' lint tests check each).
const warnRules = `rules:
  - name: only-one-spelling
    when: ClientCmd == "friend_response"
  - name: prev-field-on-after
    on: Sns.CallbackFriendAdd
    when: TagName == "x"
  - name: impossible
    when: ForceFlag == 2
  - name: typo-value
    when: ClientCmd == "friend_ad"
`

// A load that changes the rules logs each warning once; the rules serve.
func TestReloaderLogsWarnings(t *testing.T) {
	dir := writeRules(t, warnRules)
	var logs bytes.Buffer
	r := newTestReloader(t, dir, &logs)
	for range 2 {
		if err := r.Reload("test"); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN msg=\"rule warning: "); n != 5 {
		t.Errorf("%d warning lines, want 5 (once, for the first load):\n%s", n, &logs)
	}
	if !strings.Contains(logs.String(), "warning FF001: rule \\\"impossible\\\"") {
		t.Errorf("no FF001 line for impossible:\n%s", &logs)
	}
}
