package admin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/engine/state"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/reload"
)

const listsAdminRules = `lists:
  - name: blocked
    description: <b>blocked</b> accounts
rules:
  - name: deny-blocked
    on: Sns.CallbackPrevFriendAdd
    when: From_Account in list("blocked")
    actions:
      - deny: { code: 38001 }
`

// newListsServer is an admin server with the lists API and the console
// over real lists on the embedded JetStream.
func newListsServer(t *testing.T) (*httptest.Server, *state.Lists) {
	t.Helper()
	dir, reg, q, log := stateFixture(t, listsAdminRules)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lists, err := state.OpenLists(ctx, state.ListsConfig{JetStream: q.JetStream(), Namespace: q.Namespace(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lists.Close)
	if err := lists.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	rl := &reload.Reloader{Path: dir, Options: rules.Options{Registry: reg, Lists: lists}, Logger: log}
	if err := rl.Reload("start"); err != nil {
		t.Fatal(err)
	}
	a := New()
	MountLists(a, lists, rl)
	c := &Console{Version: "test", Rules: rl, Registry: reg, Lists: lists, Logger: log}
	if err := c.Mount(a); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv, lists
}

// stateFixture writes rulesYAML as a rule directory's one file and opens
// the embedded queue, whose JetStream the counters and lists live in: the
// rule directory, a registry with deny, the queue and a silent logger.
func stateFixture(t *testing.T, rulesYAML string) (string, *actions.Registry, *queue.Queue, *slog.Logger) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(rulesYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	reg := &actions.Registry{}
	if err := reg.Register(&actions.Deny{}); err != nil {
		t.Fatal(err)
	}
	q, err := queue.Open(context.Background(), queue.Config{DataDir: filepath.Join(t.TempDir(), "data"), Registry: reg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Stop(5 * time.Second) })
	return dir, reg, q, log
}

func send(t *testing.T, method, u, ctype, body, origin string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestListsAPI(t *testing.T) {
	srv, lists := newListsServer(t)
	u := srv.URL
	if st, body := send(t, "POST", u+"/lists/blocked/add", "application/json", `{"members":["eve","mallory"]}`, ""); st != 200 || !strings.Contains(body, `"members": 2`) {
		t.Fatalf("add: %d %s", st, body)
	}
	if st, body := send(t, "POST", u+"/lists/blocked/add", "text/plain", "x\n", ""); st != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain, which a page of any origin can post: %d %s", st, body)
	}
	if st, body := send(t, "POST", u+"/lists/nope/add", "application/json", `{"members":["a"]}`, ""); st != 404 || !strings.Contains(body, "blocked") {
		t.Fatalf("undeclared list: %d %s", st, body)
	}
	if st, body := send(t, "POST", u+"/lists/blocked/add", "application/octet-stream", "a\nb\n\n"+strings.Repeat("x", 300)+"\n", ""); st != 400 || !strings.Contains(body, "line 4") {
		t.Fatalf("a bad line: %d %s", st, body)
	}
	if st, body := send(t, "GET", u+"/lists/blocked?contains=eve", "", "", ""); st != 200 || !strings.Contains(body, `"in": true`) {
		t.Fatalf("contains: %d %s", st, body)
	}
	if st, body := send(t, "GET", u+"/lists/blocked?limit=1", "", "", ""); st != 200 || strings.Count(body, `"mallory"`)+strings.Count(body, `"eve"`) != 1 || !strings.Contains(body, "next_cursor") {
		t.Fatalf("page: %d %s", st, body)
	}
	if st, body := send(t, "GET", u+"/lists/blocked?cursor=zz", "", "", ""); st != 400 {
		t.Fatalf("bad cursor: %d %s", st, body)
	}
	if st, body := send(t, "PUT", u+"/lists/blocked", "application/octet-stream", "zed\n", ""); st != 200 || !strings.Contains(body, `"op": "replace"`) {
		t.Fatalf("replace: %d %s", st, body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ok, _ := lists.Contains("blocked", "eve"); ok; ok, _ = lists.Contains("blocked", "eve") {
		if time.Now().After(deadline) {
			t.Fatal("the replace never reached the replica's set")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st, body := send(t, "GET", u+"/lists", "", "", ""); st != 200 || !strings.Contains(body, `"name": "blocked"`) || !strings.Contains(body, `"declared": true`) {
		t.Fatalf("lists: %d %s", st, body)
	}
}

func TestConsoleListsPage(t *testing.T) {
	srv, lists := newListsServer(t)
	u := srv.URL
	if _, err := lists.Add(context.Background(), "blocked", state.MembersOf([]string{`<script>alert(1)</script>`})); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"members": {"eve\n mallory \n"}}.Encode()
	if st, _ := send(t, "POST", u+"/ui/lists/blocked/add", "application/x-www-form-urlencoded", form, "https://evil.example"); st != http.StatusForbidden {
		t.Fatalf("cross-origin add: %d", st)
	}
	if st, body := send(t, "POST", u+"/ui/lists/blocked/add", "application/x-www-form-urlencoded", form, u); st != 200 || !strings.Contains(body, "2 member(s): add done") {
		t.Fatalf("add from the console: %d %s", st, body)
	}
	st, body := send(t, "GET", u+"/ui/lists/blocked?contains=eve", "", "", "")
	if st != 200 || !strings.Contains(body, "eve is in blocked") || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") || strings.Contains(body, "<script") {
		t.Fatalf("list page: %d %s", st, body)
	}
	if st, body := send(t, "POST", u+"/ui/lists/blocked/remove", "application/x-www-form-urlencoded", url.Values{"members": {"eve"}}.Encode(), u); st != 200 || !strings.Contains(body, "remove done") {
		t.Fatalf("remove from the console: %d %s", st, body)
	}
	st, body = send(t, "GET", u+"/ui/lists", "", "", "")
	if st != 200 || !strings.Contains(body, `href="/ui/lists/blocked"`) || !strings.Contains(body, "&lt;b&gt;blocked&lt;/b&gt;") {
		t.Fatalf("lists page: %d %s", st, body)
	}
	resp, err := http.Get(u + "/ui/lists")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("CSP %q", csp)
	}
}
