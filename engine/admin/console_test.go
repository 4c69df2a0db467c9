package admin

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/examples/callbacks"
	"github.com/friendflow/friendflow/rules/imevent"
)

const scriptWording = `<script>alert("x")</script>`

func (f *adminFixture) page(t *testing.T, client *http.Client, path string) (int, string, http.Header) {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Get(f.admin.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestConsolePagesEscapeCallersData(t *testing.T) {
	f := newAdminFixture(t)
	f.signedPost(t, imevent.CmdPrevFriendAdd, `{"CallbackCommand":"Sns.CallbackPrevFriendAdd","Requester_Account":"m","From_Account":"<b>m</b>",
	  "FriendItem":[{"To_Account":"a","AddWording":"`+strings.ReplaceAll(scriptWording, `"`, `\"`)+`"},{"To_Account":"b","AddWording":"cheap loan"}],"EventTime":1}`)
	f.signedPost(t, imevent.CmdFriendAdd, string(callbacks.Must("friend_add_response.json")))
	for path, want := range map[string][]string{
		"/":                               {"Rules loaded", `id="rules-loaded">3<`},
		"/ui/rules":                       {"deny-spam", "AddWording contains &#34;loan&#34;", "r.yaml", "headers: {Authorization: &#34;&lt;redacted&gt;&#34;}"},
		"/ui/events":                      {`href="/ui/events/256"`, "&lt;b&gt;m&lt;/b&gt; → a", "deny 38001", `data-live="/ui/events/live?"`, `src="/ui/static/events.js"`},
		"/ui/events?outcome=denied":       {`href="/ui/events/257"`},
		"/ui/events/256":                  {"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;", "AddWording contains &#34;loan&#34;", "false"},
		"/ui/events/512":                  {"&lt;redacted&gt;", "doomed"},
		"/ui/static/events.js":            {"textContent", "EventSource"},
		"/ui/try":                         {`name="name0" value="r.yaml"`, "secret: &#34;&lt;redacted&gt;&#34;"},
		"/ui/dlq":                         {"Dead letters"},
		"/ui/static/console.css":          {"--accent"},
		"/ui/events?outcome=nonsense":     {"outcome must be one of"},
		"/ui/events/999":                  {"not recorded"},
		"/ui/events?account=%3Cscript%3E": {`value="&lt;script&gt;"`},
	} {
		_, body, h := f.page(t, nil, path)
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("%s lacks %q:\n%s", path, w, body)
			}
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, "<b>m") || strings.Contains(body, `src="/ui/static/events.js"`) && !strings.HasPrefix(path, "/ui/events") {
			t.Errorf("%s shows a caller's markup unescaped", path)
		}
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if strings.Contains(body, "hunter2") || strings.Contains(body, "hunter3") {
			t.Errorf("%s shows a secret", path)
		}
	}
}

func TestConsoleTryAndDeadLetters(t *testing.T) {
	f := newAdminFixture(t)
	f.signedPost(t, imevent.CmdFriendAdd, string(callbacks.Must("friend_add_response.json")))
	f.waitDeadLetters(t, 2)
	post := func(path string, form url.Values, origin string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, f.admin.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
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
	// The form starts from the serving files, secrets hidden; sent as it
	// is, it loads and changes nothing.
	_, page, _ := f.page(t, nil, "/ui/try")
	start := strings.Index(page, `<textarea name="data0"`)
	start += strings.Index(page[start:], ">") + 1
	prefilled := html.UnescapeString(page[start : start+strings.Index(page[start:], "</textarea>")])
	if strings.Contains(prefilled, "hunter") || !strings.Contains(prefilled, `Authorization: "<redacted>"`) {
		t.Fatalf("prefilled:\n%s", prefilled)
	}
	status, body := post("/ui/try", url.Values{"name0": {"r.yaml"}, "data0": {prefilled}}, f.admin.URL)
	if status != 200 || !strings.Contains(body, `<span class="good">no change</span>`) {
		t.Fatalf("try the prefilled files: %d\n%s", status, body)
	}

	candidate := strings.Replace(adminRules, "  - name: doomed\n", "  - name: doomed\n    when: From_Account == \"bob\"\n", 1)
	status, body = post("/ui/try", url.Values{"name0": {"r.yaml"}, "data0": {candidate}, "name1": {""}, "data1": {""}}, f.admin.URL)
	if status != 200 || !strings.Contains(body, `<td>doomed</td>`) || !strings.Contains(body, `<a href="/ui/events/256">#256</a>`) || !strings.Contains(body, "changes") {
		t.Fatalf("try: %d\n%s", status, body)
	}
	status, body = post("/ui/try", url.Values{"name0": {"r.yaml"}, "data0": {"rules:\n  - name: x\n    when: nope ==\n"}}, "")
	if status != 200 || !strings.Contains(body, "problems") || !strings.Contains(body, "r.yaml:3:") {
		t.Fatalf("try broken rules: %d\n%s", status, body)
	}

	_, body, _ = f.page(t, nil, "/ui/dlq")
	if !strings.Contains(body, "unexpected EOF") || !strings.Contains(body, `class="replay"`) {
		t.Fatalf("dlq page:\n%s", body)
	}
	id := body[strings.Index(body, `name="id" value="`)+len(`name="id" value="`):]
	id = id[:strings.Index(id, `"`)]
	if status, _ := post("/ui/dlq/drop", url.Values{"id": {id}}, "https://evil.example"); status != http.StatusForbidden {
		t.Fatalf("cross-origin drop: %d", status)
	}
	req, _ := http.NewRequest(http.MethodPost, f.admin.URL+"/ui/dlq/drop", strings.NewReader("all=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site drop (Fetch Metadata): %v %v", resp, err)
	}
	if status, body := post("/ui/dlq/drop", url.Values{"id": {id}}, f.admin.URL); status != 200 || !strings.Contains(body, "1 dropped") {
		t.Fatalf("drop: %d\n%s", status, body)
	}
	if status, body := post("/ui/dlq/replay", url.Values{"all": {"1"}}, f.admin.URL); status != 200 || !strings.Contains(body, "1 replayed") {
		t.Fatalf("replay all: %d\n%s", status, body)
	}
}

func TestConsoleLogin(t *testing.T) {
	f := newAdminFixture(t)
	f.console.CheckToken = TokenChecker([]byte("admin-s3cret"))
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	status, body, _ := f.page(t, client, "/ui/events")
	if status != 200 || !strings.Contains(body, `name="token"`) {
		t.Fatalf("unauthenticated page: %d\n%s", status, body)
	}
	resp, err := client.PostForm(f.admin.URL+"/ui/login", url.Values{"token": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/ui/login" {
		t.Fatalf("a wrong token went to %s", resp.Request.URL)
	}
	if resp, err = client.PostForm(f.admin.URL+"/ui/login", url.Values{"token": {"admin-s3cret"}}); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	u, _ := url.Parse(f.admin.URL)
	if cks := jar.Cookies(u); len(cks) != 1 || cks[0].Name != ConsoleCookie {
		t.Fatalf("cookies %v", cks)
	}
	if status, body, _ := f.page(t, client, "/ui/events"); status != 200 || !strings.Contains(body, "events recorded") {
		t.Fatalf("after login: %d\n%s", status, body)
	}
	req, _ := http.NewRequest(http.MethodGet, f.admin.URL+"/ui/rules", nil)
	req.Header.Set("Authorization", "Bearer admin-s3cret")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 || resp.Request.URL.Path != "/ui/rules" {
		t.Fatalf("bearer: %v %v", resp, err)
	}
	req, _ = http.NewRequest(http.MethodPost, f.admin.URL+"/ui/dlq/drop", strings.NewReader("all=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a write without the token: %v %v", resp, err)
	}
}

// waitDeadLetters polls until the queue holds n dead letters.
func (f *adminFixture) waitDeadLetters(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := f.q.Stats(context.Background())
		if err == nil && st.DeadLetters == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d dead letters, want %d (%v)", st.DeadLetters, n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
