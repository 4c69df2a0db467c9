package admin

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/engine/record"
	"github.com/friendflow/friendflow/examples/callbacks"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
	"github.com/friendflow/friendflow/rules/reload"
)

// failKind fails permanently: its jobs go straight to the dead letters.
type failKind struct{}

func (failKind) Spec() actions.Spec { return actions.Spec{Name: "fail"} }
func (failKind) Do(context.Context, actions.Job, map[string]any) error {
	return actions.Permanent(io.ErrUnexpectedEOF)
}

const adminRules = `rules:
  - name: notify
    actions:
      - webhook:
          url: http://127.0.0.1:1/hook
          secret: hunter2-webhook-secret
          headers: { Authorization: "Bearer hunter3-crm-token" }
  - name: doomed
    actions:
      - fail: {}
  - name: deny-spam
    on: [Sns.CallbackPrevFriendAdd, Sns.CallbackPrevFriendResponse]
    when: AddWording contains "loan" || ResponseAction == "Response_Action_Reject"
    actions:
      - deny: { code: 38001, reason: spam }
`

type adminFixture struct {
	admin    *httptest.Server
	callback *httptest.Server
	reloader *reload.Reloader
	dir      string
	q        *queue.Queue
	ring     *record.Log
	console  *Console
	srv      *Server
}

func newAdminFixture(t testing.TB) *adminFixture {
	t.Helper()
	f := &adminFixture{dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(f.dir, "r.yaml"), []byte(adminRules), 0o644); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	var reg actions.Registry
	for _, k := range []actions.Kind{&actions.Webhook{}, &actions.Deny{}, failKind{}} {
		if err := reg.Register(k); err != nil {
			t.Fatal(err)
		}
	}
	f.reloader = &reload.Reloader{Path: f.dir, Options: rules.Options{Registry: &reg}, Logger: log}
	if err := f.reloader.Reload("start"); err != nil {
		t.Fatal(err)
	}
	q, err := queue.Open(context.Background(), queue.Config{DataDir: filepath.Join(t.TempDir(), "data"), Registry: &reg, Logger: log,
		RecordEvents: 100, Hooks: record.Hooks(queue.Hooks{}, func() *record.Log { return f.ring })})
	if err != nil {
		t.Fatal(err)
	}
	f.q = q
	f.ring = record.New(q, record.Options{Linger: time.Millisecond, Rules: f.reloader.Current, Logger: log})
	t.Cleanup(func() {
		f.ring.Close()
		_ = q.Stop(5 * time.Second)
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = q.Run(ctx) }()
	eng := &engine.Engine{Rules: f.reloader.Current, Queue: q, Logger: log, DecisionTimeout: time.Second, Recorder: f.ring}

	admin := New()
	MountRules(admin, f.reloader, testAppID)
	MountDLQ(admin, q)
	MountEvents(admin, f.ring, f.reloader, &reg)
	f.console = &Console{Version: "test", Rules: f.reloader, Events: f.ring, DLQ: q, Registry: &reg, Queue: q.Stats, Logger: log}
	if err := f.console.Mount(admin); err != nil {
		t.Fatal(err)
	}
	f.srv = admin
	f.admin = httptest.NewServer(admin)
	t.Cleanup(f.admin.Close)
	f.callback = httptest.NewServer(&imcallback.Receiver{SdkAppid: testAppID, Token: []byte(testToken), Handler: eng, Logger: log})
	t.Cleanup(f.callback.Close)
	return f
}

func (f *adminFixture) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.admin.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// signedPost sends a callback body as Tencent does, signed now.
func (f *adminFixture) signedPost(t *testing.T, cmd, body string) imcallback.Reply {
	t.Helper()
	rt := strconv.FormatInt(time.Now().Unix(), 10)
	q := url.Values{"SdkAppid": {strconv.Itoa(testAppID)}, "CallbackCommand": {cmd}, "contenttype": {"json"},
		"ClientIP": {"10.1.2.3"}, "OptPlatform": {"Android"}, "RequestTime": {rt}, "Sign": {imcallback.Sign([]byte(testToken), rt)}}
	resp, err := http.Post(f.callback.URL+"/?"+q.Encode(), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r imcallback.Reply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, %v", resp.StatusCode, err)
	}
	f.flushRecording(t)
	return r
}

// flushRecording waits until what was recorded is stored: the recording
// is written off the reply path.
func (f *adminFixture) flushRecording(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.ring.Flush(ctx)
	if ctx.Err() != nil {
		t.Fatal("the recording was not written within 30 s")
	}
}

func TestSignedPrevCallbacksEndToEnd(t *testing.T) {
	f := newAdminFixture(t)
	add := `{"CallbackCommand":"Sns.CallbackPrevFriendAdd","Requester_Account":"m","From_Account":"m",
	  "FriendItem":[{"To_Account":"a","AddWording":"hello"},{"To_Account":"b","AddWording":"cheap loan"}],"EventTime":1}`
	r := f.signedPost(t, imevent.CmdPrevFriendAdd, add)
	want := []imcallback.ResultItem{{To_Account: "a"}, {To_Account: "b", ResultCode: 38001, ResultInfo: "spam"}}
	if len(r.ResultItem) != 2 || r.ResultItem[0] != want[0] || r.ResultItem[1] != want[1] || r.ActionStatus != "OK" {
		t.Fatalf("PrevFriendAdd reply %+v", r)
	}
	r = f.signedPost(t, imevent.CmdPrevFriendResponse, string(callbacks.Must("prev_friend_response.json")))
	want = []imcallback.ResultItem{{To_Account: "id1"}, {To_Account: "id2", ResultCode: 38001, ResultInfo: "spam"}}
	if len(r.ResultItem) != 2 || r.ResultItem[0] != want[0] || r.ResultItem[1] != want[1] {
		t.Fatalf("PrevFriendResponse reply %+v", r)
	}
}

func TestAdminRulesReloadExplain(t *testing.T) {
	f := newAdminFixture(t)
	status, body := f.do(t, http.MethodGet, "/rules", "")
	if status != 200 || !strings.Contains(body, `"name": "notify"`) || !strings.Contains(body, f.reloader.Current().Hash()) {
		t.Fatalf("GET /rules: %d %s", status, body)
	}
	if strings.Contains(body, "hunter2") {
		t.Fatal("GET /rules shows a webhook secret")
	}

	// explain: per target decision, secrets redacted.
	status, body = f.do(t, http.MethodPost, "/explain?command=Sns.CallbackPrevFriendAdd",
		`{"FriendItem":[{"To_Account":"a","AddWording":"loan?"},{"To_Account":"b"}],"From_Account":"m"}`)
	var ex []engine.EventExplanation
	if err := json.Unmarshal([]byte(body), &ex); err != nil || status != 200 || len(ex) != 2 {
		t.Fatalf("POST /explain: %d %s", status, body)
	}
	if d := ex[0].Decision; d == nil || d.ResultCode != 38001 || ex[0].DecidedBy != "deny-spam" {
		t.Errorf("decision of target a: %+v by %q", d, ex[0].DecidedBy)
	}
	if d := ex[1].Decision; d == nil || d.ResultCode != 0 {
		t.Errorf("decision of target b: %+v", d)
	}
	_, body = f.do(t, http.MethodPost, "/explain", `{"From_Account":"a","To_Account":"b"}`)
	if strings.Contains(body, "hunter2") || strings.Contains(body, "hunter3") || !strings.Contains(body, "<redacted>") {
		t.Fatalf("explain leaks or does not redact the webhook secret: %s", body)
	}
	if status, body = f.do(t, http.MethodPost, "/explain", `{"Form_Account":"a"}`); status != 400 || !strings.Contains(body, "Form_Account") {
		t.Fatalf("explain of a misspelt event: %d %s", status, body)
	}

	// reload: a broken file is refused with 422 and every problem; the old set serves on.
	old := f.reloader.Current().Hash()
	if err := os.WriteFile(filepath.Join(f.dir, "r.yaml"), []byte(adminRules+"  - name: notify\n    actions: [{fail: {}}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	status, body = f.do(t, http.MethodPost, "/reload", "")
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "duplicate") || !strings.Contains(body, `"serving_hash": "`+old) {
		t.Fatalf("POST /reload of a broken file: %d %s", status, body)
	}
	if f.reloader.Current().Hash() != old {
		t.Fatal("a failed reload replaced the rules")
	}
	_, body = f.do(t, http.MethodGet, "/rules", "")
	if !strings.Contains(body, "last_error") || !strings.Contains(body, "r.yaml:") {
		t.Fatalf("GET /rules does not show the last error: %s", body)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "r.yaml"), []byte(adminRules), 0o644); err != nil {
		t.Fatal(err)
	}
	if status, body = f.do(t, http.MethodPost, "/reload", ""); status != 200 || !strings.Contains(body, `"ok": true`) {
		t.Fatalf("POST /reload: %d %s", status, body)
	}
}

func TestAdminDeadLetters(t *testing.T) {
	f := newAdminFixture(t)
	// Two callbacks: each stores a webhook job (target down: retried) and a
	// doomed job (dead at once).
	for range 2 {
		f.signedPost(t, imevent.CmdFriendAdd, string(callbacks.Must("friend_add_response.json")))
	}
	var list struct {
		DeadLetters []DeadLetterView `json:"dead_letters"`
		Count       int              `json:"count"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, body := f.do(t, http.MethodGet, "/dlq", "")
		if err := json.Unmarshal([]byte(body), &list); err != nil {
			t.Fatal(err)
		}
		if list.Count == 4 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if list.Count != 4 {
		t.Fatalf("%d dead letters, want 4 (2 callbacks x 2 pairs)", list.Count)
	}
	d := list.DeadLetters[0]
	if d.Rule != "doomed" || d.Action != "fail" || d.Attempts != 1 || !strings.Contains(d.LastError, "unexpected EOF") || d.FirstAttempt.IsZero() || d.LastAttempt.IsZero() {
		t.Fatalf("dead letter %+v", d)
	}
	// One dead letter in full: the job, each attempt's error, the event.
	status, body := f.do(t, http.MethodGet, "/dlq/"+d.ID, "")
	var detail DeadLetterDetail
	if err := json.Unmarshal([]byte(body), &detail); status != 200 || err != nil {
		t.Fatalf("GET /dlq/%s: %d %s", d.ID, status, body)
	}
	if detail.ID != d.ID || detail.Rule != "doomed" || detail.Action != "fail" || detail.Reason != "permanent failure" ||
		len(detail.Errors) != 1 || detail.Errors[0].Attempt != 1 || !strings.Contains(detail.Errors[0].Error, "unexpected EOF") ||
		!strings.Contains(string(detail.Event), `"From_Account"`) || detail.CallbackID == "" {
		t.Errorf("GET /dlq/%s: %s", d.ID, body)
	}
	// Unknown ids: 404 naming them, and nothing replayed or dropped.
	if status, body := f.do(t, http.MethodGet, "/dlq/no-such-job", ""); status != 404 || !strings.Contains(body, `no dead letter with id \"no-such-job\"`) {
		t.Errorf("GET /dlq/no-such-job: %d %s", status, body)
	}
	for _, op := range []string{"replay", "drop"} {
		status, body := f.do(t, http.MethodPost, "/dlq/"+op, `{"ids":["`+d.ID+`","no-such-job"]}`)
		if status != 404 || !strings.Contains(body, `"unknown_ids": [`) || !strings.Contains(body, `"no-such-job"`) {
			t.Errorf("%s with an unknown id: %d %s", op, status, body)
		}
	}
	if _, body := f.do(t, http.MethodGet, "/dlq", ""); !strings.Contains(body, `"count": 4`) {
		t.Fatalf("after refused operations: %s", body)
	}
	if status, body := f.do(t, http.MethodPost, "/dlq/drop", `{}`); status != 400 {
		t.Fatalf("drop without ids or all: %d %s", status, body)
	}
	if status, body := f.do(t, http.MethodPost, "/dlq/drop", `{"ids":["`+d.ID+`"]}`); status != 200 || !strings.Contains(body, `"dropped": 1`) {
		t.Fatalf("drop one: %d %s", status, body)
	}
	// Replaying sends the rest back; they fail again and return.
	if status, body := f.do(t, http.MethodPost, "/dlq/replay", `{"all":true}`); status != 200 || !strings.Contains(body, `"replayed": 3`) {
		t.Fatalf("replay all: %d %s", status, body)
	}
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, body := f.do(t, http.MethodGet, "/dlq", "")
		_ = json.Unmarshal([]byte(body), &list)
		if list.Count == 3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if list.Count != 3 {
		t.Fatalf("after replay: %d dead letters, want the 3 replayed back", list.Count)
	}
	if status, body := f.do(t, http.MethodPost, "/dlq/drop", `{"all":true}`); status != 200 || !strings.Contains(body, `"dropped": 3`) {
		t.Fatalf("drop all: %d %s", status, body)
	}
}

const (
	testAppID = 1400000000
	testToken = "s3cr3t-callback-token"
)
