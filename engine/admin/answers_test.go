package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/engine"
	"github.com/friendflow/friendflow/examples/callbacks"
	"github.com/friendflow/friendflow/rules/imevent"
	"github.com/friendflow/friendflow/rules/reload"
)

// answer sends a request and checks that its answer is exactly what the
// server writes of it decoded into T: T declares every key, in the order
// and the shape they have on the wire. It returns the decoded answer.
func answer[T any](t *testing.T, url, method, path, ct, body string, wantStatus int) T {
	t.Helper()
	req, err := http.NewRequest(method, url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw bytes.Buffer
	if _, err := raw.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, wantStatus, raw.String())
	}
	var v T
	dec := json.NewDecoder(bytes.NewReader(raw.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s %s: the answer is no %T: %v\n%s", method, path, v, err, raw.String())
	}
	rec := httptest.NewRecorder()
	writeJSON(rec, wantStatus, v)
	if rec.Body.String() != raw.String() {
		t.Fatalf("%s %s: %T encodes\n%s\nthe server answered\n%s", method, path, v, rec.Body.String(), raw.String())
	}
	return v
}

// TestAnswersAreTheirTypes walks every JSON answer of the admin API,
// success and failure, through its declared type (answers.go).
func TestAnswersAreTheirTypes(t *testing.T) {
	f := newAdminFixture(t)
	u := f.admin.URL
	const js = "application/json"

	if h := answer[Health](t, u, "GET", "/healthz", "", "", 200); h.Status != "ok" {
		t.Errorf("healthz %+v", h)
	}
	if r := answer[Readiness](t, u, "GET", "/readyz", "", "", 200); r.Status != "ready" || r.Failing != nil {
		t.Errorf("readyz %+v", r)
	}

	// Rules: loaded, a failed reload, a set of no rules.
	rv := answer[RulesView](t, u, "GET", "/rules", "", "", 200)
	if rv.Hash != f.reloader.Current().Hash() || len(rv.Files) != 1 || len(rv.Rules) != 3 || rv.Status.Reloads != 1 {
		t.Errorf("GET /rules %+v", rv)
	}
	if r := answer[Reloaded](t, u, "POST", "/reload", "", "", 200); !r.OK || r.Rules != 3 || r.Hash != rv.Hash {
		t.Errorf("reload %+v", r)
	}
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(f.dir, "r.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(adminRules + "  - name: notify\n    actions: [{fail: {}}]\n")
	if r := answer[ReloadFailed](t, u, "POST", "/reload", "", "", 422); r.OK || len(r.Problems) != 1 || r.ServingHash != rv.Hash || !strings.Contains(r.Error, "duplicate") {
		t.Errorf("failed reload %+v", r)
	}
	if r := answer[RulesView](t, u, "GET", "/rules", "", "", 200); r.Status.LastError == "" || r.Hash != rv.Hash {
		t.Errorf("GET /rules after a failed reload %+v", r)
	}
	write("rules: []\n")
	if r := answer[Reloaded](t, u, "POST", "/reload", "", "", 200); r.Rules != 0 {
		t.Errorf("reload of no rules %+v", r)
	}
	if r := answer[RulesView](t, u, "GET", "/rules", "", "", 200); r.Rules == nil || len(r.Rules) != 0 {
		t.Errorf("GET /rules of no rules: %+v", r)
	}
	write(adminRules)
	answer[Reloaded](t, u, "POST", "/reload", "", "", 200)

	// Explain.
	if ex := answer[[]engine.EventExplanation](t, u, "POST", "/explain", js, `{"From_Account":"a","To_Account":"b"}`, 200); len(ex) != 1 {
		t.Errorf("explain %+v", ex)
	}
	if e := answer[ErrorBody](t, u, "POST", "/explain", js, `{"Form_Account":"a"}`, 400); !strings.Contains(e.Error, "Form_Account") {
		t.Errorf("explain of a misspelt event %+v", e)
	}

	// Dead letters: listed, shown, moved, refused.
	for range 2 {
		f.signedPost(t, imevent.CmdFriendAdd, string(callbacks.Must("friend_add_response.json")))
	}
	var list DeadLetterList
	for deadline := time.Now().Add(10 * time.Second); list.Count != 4 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		list = answer[DeadLetterList](t, u, "GET", "/dlq", "", "", 200)
	}
	if list.Count != 4 || len(list.DeadLetters) != 4 {
		t.Fatalf("GET /dlq %+v", list)
	}
	id := list.DeadLetters[0].ID
	if d := answer[DeadLetterDetail](t, u, "GET", "/dlq/"+id, "", "", 200); d.ID != id || len(d.Errors) != 1 || len(d.Event) == 0 {
		t.Errorf("GET /dlq/%s %+v", id, d)
	}
	if e := answer[ErrorBody](t, u, "GET", "/dlq/no-such-job", "", "", 404); len(e.UnknownIDs) != 1 {
		t.Errorf("GET /dlq/no-such-job %+v", e)
	}
	if m := answer[DeadLettersMoved](t, u, "POST", "/dlq/replay", js, `{"ids":["`+id+`","no-such-job"]}`, 404); m.Replayed == nil || m.Count() != 0 || m.Error == "" || len(m.UnknownIDs) != 1 {
		t.Errorf("replay of an unknown id %+v", m)
	}
	if m := answer[DeadLettersMoved](t, u, "POST", "/dlq/drop", js, `{"ids":["no-such-job"]}`, 404); m.Dropped == nil || m.Replayed != nil {
		t.Errorf("drop of an unknown id %+v", m)
	}
	answer[ErrorBody](t, u, "POST", "/dlq/drop", js, `{}`, 400)
	answer[ErrorBody](t, u, "POST", "/dlq/drop", js, `{"ids":["a"],"everything":true}`, 400)
	if m := answer[DeadLettersMoved](t, u, "POST", "/dlq/drop", js, `{"ids":["`+id+`"]}`, 200); m.Count() != 1 || m.Error != "" {
		t.Errorf("drop one %+v", m)
	}
	if m := answer[DeadLettersMoved](t, u, "POST", "/dlq/replay", js, `{"all":true}`, 200); m.Count() != 3 {
		t.Errorf("replay all %+v", m)
	}

	// Recorded events and backtests.
	l := answer[EventList](t, u, "GET", "/events?limit=1", "", "", 200)
	if len(l.Events) != 1 || l.Next == 0 || l.Recorded != 4 || l.Capacity != 100 {
		t.Fatalf("GET /events?limit=1: %d events, next %d, %d of %d recorded", len(l.Events), l.Next, l.Recorded, l.Capacity)
	}
	if l := answer[EventList](t, u, "GET", "/events?command=Sns.CallbackPrevFriendAdd", "", "", 200); l.Events == nil || len(l.Events) != 0 || l.Next != 0 {
		t.Errorf("GET /events of no event %+v", l)
	}
	answer[ErrorBody](t, u, "GET", "/events?since=yesterday", "", "", 400)
	newest := strconv.FormatUint(l.Events[0].ID, 10)
	if tr := answer[Trace](t, u, "GET", "/events/"+newest, "", "", 200); tr.Event.ID != l.Events[0].ID || !tr.CurrentRules {
		t.Errorf("GET /events/%s %+v", newest, tr)
	}
	answer[ErrorBody](t, u, "GET", "/events/99", "", "", 404)
	files, _ := json.Marshal(RuleFiles{Files: []RuleFile{{Name: "r.yaml", Data: adminRules}}})
	if r := answer[TryResult](t, u, "POST", "/backtest", js, string(files), 200); !r.OK || r.Diff == nil || r.Diff.Changed {
		t.Errorf("backtest of the serving rules %+v", r)
	}
	if r := answer[TryResult](t, u, "POST", "/backtest", "application/yaml", "", 422); r.OK || len(r.Problems) != 1 {
		t.Errorf("backtest of an empty file %+v", r)
	}

	// The guard's refusals, and readiness failing.
	answer[ErrorBody](t, u, "POST", "/reload", "text/plain", "x", 415)
	f.srv.AddCheck("queue", func() error { return errors.New("store down") })
	f.srv.SetDraining()
	if r := answer[Readiness](t, u, "GET", "/readyz", "", "", 503); r.Status != "not ready" || len(r.Failing) != 2 {
		t.Errorf("readyz %+v", r)
	}
}

// TestAnswersWithoutRules: before any rule set loads, GET /rules has the
// status alone, and explain and reload say why.
func TestAnswersWithoutRules(t *testing.T) {
	a := New()
	MountRules(a, &reload.Reloader{Path: filepath.Join(t.TempDir(), "none"), Logger: slog.New(slog.DiscardHandler)}, testAppID)
	srv := httptest.NewServer(a)
	defer srv.Close()
	if r := answer[RulesView](t, srv.URL, "GET", "/rules", "", "", 200); r.Hash != "" || r.Files != nil || r.Rules != nil {
		t.Errorf("GET /rules %+v", r)
	}
	if e := answer[ErrorBody](t, srv.URL, "POST", "/explain", "application/json", "{}", 503); e.Error != engine.ErrNoRules.Error() {
		t.Errorf("explain %+v", e)
	}
	if r := answer[ReloadFailed](t, srv.URL, "POST", "/reload", "", "", 422); r.ServingHash != "" || r.Error == "" {
		t.Errorf("reload %+v", r)
	}
}
