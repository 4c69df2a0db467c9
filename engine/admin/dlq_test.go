package admin

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/examples/callbacks"
	"github.com/friendflow/friendflow/rules/imevent"
)

type dlqListing struct {
	DeadLetters []DeadLetterView `json:"dead_letters"`
	Count       int              `json:"count"`
	Total       int              `json:"total"`
	Next        string           `json:"next"`
}

// deadFixture is the admin fixture with 6 dead letters of kind fail
// ("unexpected EOF"), two per callback: 4 of rule doomed, then 2 of rule
// second (doomed renamed).
func deadFixture(t *testing.T) *adminFixture {
	f := newAdminFixture(t)
	for range 2 {
		f.signedPost(t, imevent.CmdFriendAdd, string(callbacks.Must("friend_add_response.json")))
	}
	renamed := strings.Replace(adminRules, "name: doomed", "name: second", 1)
	if err := os.WriteFile(filepath.Join(f.dir, "r.yaml"), []byte(renamed), 0o644); err != nil {
		t.Fatal(err)
	}
	if status, body := f.do(t, http.MethodPost, "/reload", ""); status != 200 {
		t.Fatalf("reload: %d %s", status, body)
	}
	f.signedPost(t, imevent.CmdFriendAdd, string(callbacks.Must("friend_add_response.json")))
	deadline := time.Now().Add(10 * time.Second)
	for f.listDead(t, "").Total != 6 {
		if time.Now().After(deadline) {
			t.Fatal("6 dead letters never came")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return f
}

func (f *adminFixture) listDead(t *testing.T, query string) dlqListing {
	t.Helper()
	status, body := f.do(t, http.MethodGet, "/dlq"+query, "")
	var l dlqListing
	if err := json.Unmarshal([]byte(body), &l); err != nil || status != 200 {
		t.Fatalf("GET /dlq%s: %d %s", query, status, body)
	}
	return l
}

// allDead follows the cursors of GET /dlq?query, pages of at most limit.
func (f *adminFixture) allDead(t *testing.T, query url.Values, limit int) []DeadLetterView {
	t.Helper()
	query.Set("limit", strconv.Itoa(limit))
	var out []DeadLetterView
	for range 100 {
		l := f.listDead(t, "?"+query.Encode())
		if l.Count != len(l.DeadLetters) || l.Count > limit {
			t.Fatalf("page of %d (count %d), limit %d", len(l.DeadLetters), l.Count, limit)
		}
		out = append(out, l.DeadLetters...)
		if l.Next == "" {
			return out
		}
		query.Set("cursor", l.Next)
	}
	t.Fatal("the cursor never ends")
	return nil
}

func TestAdminDeadLettersPagedAndFiltered(t *testing.T) {
	f := deadFixture(t)
	seen := map[string]bool{}
	for _, d := range f.allDead(t, url.Values{}, 2) {
		seen[d.ID] = true
	}
	if len(seen) != 6 {
		t.Fatalf("paging by 2 saw %d distinct dead letters, want 6", len(seen))
	}
	for _, tc := range []struct {
		query url.Values
		want  int
		rule  string
	}{
		{url.Values{"rule": {"doomed"}}, 4, "doomed"},
		{url.Values{"rule": {"second"}}, 2, "second"},
		{url.Values{"kind": {"fail"}}, 6, ""},
		{url.Values{"kind": {"webhook"}}, 0, ""},
		{url.Values{"error": {"UNEXPECTED eof"}}, 6, ""},
		{url.Values{"error": {"timeout"}}, 0, ""},
		{url.Values{"rule": {"second"}, "error": {"eof"}, "since": {"1h"}}, 2, "second"},
		{url.Values{"since": {"1h"}}, 6, ""},
		{url.Values{"until": {"1h"}}, 0, ""},
		{url.Values{"since": {time.Now().Add(time.Hour).Format(time.RFC3339)}}, 0, ""},
		{url.Values{"rule": {"doomed"}, "order": {"newest"}}, 4, "doomed"},
	} {
		got := f.allDead(t, tc.query, 2)
		if len(got) != tc.want {
			t.Errorf("GET /dlq?%s: %d dead letters, want %d", tc.query.Encode(), len(got), tc.want)
		}
		for _, d := range got {
			if tc.rule != "" && d.Rule != tc.rule {
				t.Errorf("GET /dlq?%s listed rule %s", tc.query.Encode(), d.Rule)
			}
		}
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?limit=1001", "?cursor=zz", "?since=yesterday", "?order=sideways"} {
		if status, body := f.do(t, http.MethodGet, "/dlq"+q, ""); status != 400 {
			t.Errorf("GET /dlq%s: %d %s, want 400", q, status, body)
		}
	}

	for _, body := range []string{`{"ids":["x"],"dry_run":true}`, `{"all":true,"filter":{}}`, `{"filter":{"since":"soon"}}`, `{"all":true,"cursor":"nope"}`} {
		if status, out := f.do(t, http.MethodPost, "/dlq/drop", body); status != 400 {
			t.Errorf("drop %s: %d %s, want 400", body, status, out)
		}
	}
	status, body := f.do(t, http.MethodPost, "/dlq/replay", `{"filter":{"rule":"doomed"},"dry_run":true}`)
	if status != 200 || !strings.Contains(body, `"replayed": 4`) || !strings.Contains(body, `"dry_run": true`) || f.listDead(t, "").Total != 6 {
		t.Fatalf("dry run: %d %s", status, body)
	}
	// A drop by filter in steps of one, as the CLI goes.
	dropped, cursor := 0, ""
	for range 10 {
		req, _ := json.Marshal(map[string]any{"filter": map[string]string{"rule": "second"}, "limit": 1, "cursor": cursor})
		status, body := f.do(t, http.MethodPost, "/dlq/drop", string(req))
		var out struct {
			Dropped int    `json:"dropped"`
			Next    string `json:"next"`
		}
		if err := json.Unmarshal([]byte(body), &out); err != nil || status != 200 || out.Dropped > 1 {
			t.Fatalf("drop step: %d %s", status, body)
		}
		dropped += out.Dropped
		if cursor = out.Next; cursor == "" {
			break
		}
	}
	left := f.allDead(t, url.Values{}, 2)
	if dropped != 2 || len(left) != 4 {
		t.Fatalf("dropped %d, %d left; want 2 and 4", dropped, len(left))
	}
	for _, d := range left {
		if d.Rule != "doomed" {
			t.Errorf("a %s dead letter survived the drop of rule second's", d.Rule)
		}
	}
}

func TestConsoleDeadLettersPagedFilteredAndConfirmed(t *testing.T) {
	f := deadFixture(t)
	_, body, _ := f.page(t, nil, "/ui/dlq?limit=4")
	if n := strings.Count(body, `class="replay"`); n != 4 || !strings.Contains(body, `id="next-page"`) || !strings.Contains(body, "of 6 dead letters") {
		t.Fatalf("first page of 4: %d rows\n%s", n, body)
	}
	next := body[strings.Index(body, `id="next-page" href="`)+len(`id="next-page" href="`):]
	next = html.UnescapeString(next[:strings.Index(next, `"`)])
	_, body, _ = f.page(t, nil, next)
	if n := strings.Count(body, `class="replay"`); n != 2 || strings.Contains(body, `id="next-page"`) {
		t.Fatalf("second page (%s): %d rows\n%s", next, n, body)
	}
	_, body, _ = f.page(t, nil, "/ui/dlq?rule=second")
	if n := strings.Count(body, `class="replay"`); n != 2 || strings.Contains(body, "<td>doomed</td>") || !strings.Contains(body, "Drop all matching") {
		t.Fatalf("filtered page: %d rows\n%s", n, body)
	}
	if status, body, _ := f.page(t, nil, "/ui/dlq?cursor=bogus"); status != 400 || !strings.Contains(body, "bad dead-letter cursor") {
		t.Fatalf("bad cursor: %d\n%s", status, body)
	}

	post := func(form url.Values) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, f.admin.URL+"/ui/dlq/drop", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", f.admin.URL)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// A bulk drop asks first, saying how many, and drops nothing.
	status, body := post(url.Values{"all": {"1"}, "rule": {"doomed"}})
	if status != 200 || !strings.Contains(body, "This drops 4 dead letter(s) matching the filter") || !strings.Contains(body, `name="confirm" value="1"`) {
		t.Fatalf("bulk drop, unconfirmed: %d\n%s", status, body)
	}
	if got := f.listDead(t, "").Total; got != 6 {
		t.Fatalf("an unconfirmed drop dropped: %d left", got)
	}
	status, body = post(url.Values{"all": {"1"}, "rule": {"doomed"}, "confirm": {"1"}})
	if status != 200 || !strings.Contains(body, "4 dropped") {
		t.Fatalf("bulk drop, confirmed: %d\n%s", status, body)
	}
	if l := f.listDead(t, ""); l.Total != 2 || l.DeadLetters[0].Rule != "second" {
		t.Fatalf("after the drop: %+v", l)
	}
}
