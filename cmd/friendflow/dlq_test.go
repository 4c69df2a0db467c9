package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/examples/callbacks"
)

// TestDLQCommands drives `friendflow dlq` against a running friendflow
// whose webhook target refuses every request (400: a permanent failure).
func TestDLQCommands(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Error(w, "no such customer", http.StatusBadRequest)
	}))
	defer target.Close()
	rulesDir := t.TempDir()
	rule := fmt.Sprintf("rules:\n  - name: crm\n    actions:\n      - webhook: { url: %q, secret: hmac-hunter2, headers: { Authorization: Bearer crm-hunter3 } }\n", target.URL+"/hook")
	if err := os.WriteFile(filepath.Join(rulesDir, "crm.yaml"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	listen, admin := freePort(t), freePort(t)
	start(t, nil, "serve", "--sdkappid", "1400000000", "--listen", listen, "--admin-listen", admin,
		"--rules", rulesDir, "--data", t.TempDir(), "--log-level", "error")
	waitReady(t, admin)

	body := callbacks.Must("friend_add_forced_by_admin.json")
	q := url.Values{"SdkAppid": {"1400000000"}, "CallbackCommand": {"Sns.CallbackFriendAdd"}}
	resp, err := http.Post("http://"+listen+"/callback?"+q.Encode(), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	dlq := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(append([]string{"dlq"}, append(args, "--admin-listen", admin)...), &out, &errOut, func(string) string { return "" })
		return code, out.String() + errOut.String()
	}
	var out string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, out = dlq("list"); strings.Contains(out, "1 dead letters") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(out, "1 dead letters") || !strings.Contains(out, "crm") || !strings.Contains(out, "400") {
		t.Fatalf("dlq list:\n%s", out)
	}
	id := strings.Fields(strings.Split(out, "\n")[1])[0]

	// show: the job in full, secrets redacted.
	code, out := dlq("show", id)
	for _, want := range []string{"id:", id, "rule:", "crm", "action:", "webhook", "reason:", "permanent failure",
		`"secret": "<redacted>"`, `"headers": "<redacted>"`, `"url": "` + target.URL + `/hook"`,
		"attempt 1 at ", "400", "event:", `"CallbackCommand": "Sns.CallbackFriendAdd"`} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("dlq show %s: exit %d, lacks %q:\n%s", id, code, want, out)
		}
	}
	if strings.Contains(out, "hunter") {
		t.Fatalf("dlq show shows a secret:\n%s", out)
	}
	_, asJSON := dlq("show", id, "--json")
	for _, flags := range [][]string{{"-o", "json"}, {"--output=json"}, {"--json"}} {
		code, out := dlq(append([]string{"show", id}, flags...)...)
		if code != 0 || !strings.Contains(out, `"errors": [`) || strings.Contains(out, "hunter") || out != asJSON {
			t.Fatalf("dlq show %v: %d %s", flags, code, out)
		}
	}
	if code, out := dlq("show", id, "-o", "yaml"); code != 2 || !strings.Contains(out, `--output must be text or json, got "yaml"`) {
		t.Fatalf("dlq show -o yaml: %d %s", code, out)
	}
	// An unknown id: exit 1 naming it, nothing replayed or dropped.
	for _, args := range [][]string{{"show", "no-such-job"}, {"replay", id, "no-such-job"}, {"drop", "no-such-job"}} {
		if code, out := dlq(args...); code != 1 || !strings.Contains(out, `"no-such-job"`) {
			t.Fatalf("dlq %v: exit %d, want 1 naming the id:\n%s", args, code, out)
		}
	}
	if code, out := dlq("show"); code != 2 || !strings.Contains(out, "one job id") {
		t.Fatalf("dlq show without an id: %d %s", code, out)
	}
	if code, out := dlq("replay"); code != 2 || !strings.Contains(out, "needs job ids, a filter") {
		t.Fatalf("dlq replay without ids: %d %s", code, out)
	}
	if code, out := dlq("replay", id); code != 0 || !strings.Contains(out, "1 replayed") {
		t.Fatalf("dlq replay %s: %d %s", id, code, out)
	}
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, out = dlq("list", "--json"); strings.Contains(out, `"count": 1`) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(out, `"count": 1`) {
		t.Fatalf("the replayed job did not fail back into the dead letters: %s", out)
	}
	dlqFilters(t, dlq, id)
}

// dlqFilters checks the filters, --dry-run and the confirmation of a bulk
// drop, with the one dead letter of rule crm (id) in the store.
func dlqFilters(t *testing.T, dlq func(...string) (int, string), id string) {
	answer := func(s string, tty bool) {
		t.Cleanup(func() { stdinTerminal = defaultStdinTerminal })
		stdinTerminal = func() (io.Reader, bool) { return strings.NewReader(s), tty }
	}
	for _, args := range [][]string{{"drop", id, "--all"}, {"replay", "--all", "--rule", "crm"}, {"replay", id, "--dry-run"}, {"list", "--limit", "-1"}, {"list", "--json", "--limit", "0"}} {
		if code, out := dlq(args...); code != 2 {
			t.Errorf("dlq %v: exit %d, want 2:\n%s", args, code, out)
		}
	}
	for args, want := range map[string]string{
		"list --rule crm":                        "1 dead letters match, of 1",
		"list --rule nope":                       "0 dead letters match, of 1",
		"list --kind webhook --error CUSTOMER":   "1 dead letters match, of 1",
		"list --since 1h --until 0s":             "1 dead letters match, of 1",
		"list --until 1h":                        "0 dead letters match, of 1",
		"replay --rule crm --dry-run":            "1 would be replayed (dry run)",
		"drop --all --dry-run":                   "1 would be dropped (dry run)",
		"drop --error nothing-like-it --dry-run": "0 would be dropped (dry run)",
	} {
		if code, out := dlq(strings.Fields(args)...); code != 0 || !strings.Contains(out, want) {
			t.Errorf("dlq %s: exit %d, want %q:\n%s", args, code, want, out)
		}
	}
	if code, out := dlq("list", "--since", "yesterday"); code != 1 || !strings.Contains(out, "neither an RFC 3339 time nor a duration") {
		t.Errorf("a bad --since: exit %d\n%s", code, out)
	}
	// Not a terminal: a bulk drop needs --yes. A terminal: it asks.
	answer("", false)
	if code, out := dlq("drop", "--all"); code != 2 || !strings.Contains(out, "Drop 1 dead letters for good? stdin is not a terminal to ask on: add --yes") {
		t.Fatalf("dlq drop --all, no terminal: exit %d\n%s", code, out)
	}
	answer("n\n", true)
	if code, out := dlq("drop", "--rule", "crm"); code != 1 || !strings.Contains(out, "[y/N]") || !strings.Contains(out, "nothing dropped") {
		t.Fatalf("dlq drop --rule crm, answered n: exit %d\n%s", code, out)
	}
	if _, out := dlq("list"); !strings.Contains(out, "1 dead letters") {
		t.Fatalf("a refused drop dropped: %s", out)
	}
	if code, out := dlq("replay", "--rule", "crm"); code != 0 || !strings.Contains(out, "1 replayed") {
		t.Fatalf("dlq replay --rule crm: %d %s", code, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, out := dlq("list"); !strings.Contains(out, "1 dead letters"); _, out = dlq("list") {
		if time.Now().After(deadline) {
			t.Fatalf("the replayed job did not fail back into the dead letters: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	answer("y\n", true)
	if code, out := dlq("drop", "--all"); code != 0 || !strings.Contains(out, "1 dropped") {
		t.Fatalf("dlq drop --all, answered y: %d %s", code, out)
	}
	if _, out := dlq("list"); !strings.Contains(out, "0 dead letters") {
		t.Fatalf("after drop: %s", out)
	}
	answer("", false)
	if code, out := dlq("drop", "--all", "--yes"); code != 0 || !strings.Contains(out, "0 dropped") {
		t.Fatalf("dlq drop --all --yes of nothing: %d %s", code, out)
	}
}
