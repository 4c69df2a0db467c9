package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/engine/state"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/reload"
)

const countersAdminRules = `counters:
  - name: requests_by_sender
    on: Sns.CallbackPrevFriendAdd
    key: From_Account
    window: 10m
rules:
  - name: deny-floods
    on: Sns.CallbackPrevFriendAdd
    when: count("requests_by_sender", From_Account) > 3
    actions:
      - deny: { code: 38001 }
`

// newCountersServer is an admin server with the counters API and the
// console over real counters on the embedded JetStream, behind a token.
func newCountersServer(t *testing.T) (*httptest.Server, *state.Counters, rules.Counter) {
	t.Helper()
	dir, reg, q, log := stateFixture(t, countersAdminRules)
	rl := &reload.Reloader{Path: dir, Options: rules.Options{Registry: reg}, Logger: log}
	if err := rl.Reload("start"); err != nil {
		t.Fatal(err)
	}
	ctrs := state.NewCounters(q)
	a := New()
	MountCounters(a, rl, ctrs)
	c := &Console{Version: "test", Rules: rl, Registry: reg, Counters: ctrs, Logger: log,
		CheckToken: func(tok string) bool { return tok == "counters-admin-token" }}
	if err := c.Mount(a); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv, ctrs, rl.Current().Counters()[0]
}

func get(t *testing.T, u, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if token != "" {
		req.AddCookie(&http.Cookie{Name: ConsoleCookie, Value: token})
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, resp.Body)
	return resp.StatusCode, b.String()
}

// TestCountersTop: GET /counters/{name} and the Counters page show the
// busiest keys, escaped, busiest first; a scan cut short says so; an
// unknown counter is 404 with the closest name; the page needs the token.
func TestCountersTop(t *testing.T) {
	srv, ctrs, ctr := newCountersServer(t)
	ctx := context.Background()
	now := time.Now()
	for key, n := range map[string]int{"eve": 5, "<script>alert(1)</script>": 3, "bob": 1} {
		for range n {
			if _, err := ctrs.Add(ctx, ctr, key, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, body := get(t, srv.URL+"/counters/requests_by_sender?top=2", "")
	var top CounterTop
	if err := json.Unmarshal([]byte(body), &top); st != 200 || err != nil {
		t.Fatalf("GET /counters/requests_by_sender: %d %s %v", st, body, err)
	}
	if len(top.Keys) != 2 || top.Keys[0] != (state.KeyCount{Key: "eve", Count: 5}) || top.Keys[1].Count != 3 ||
		top.Total != 3 || top.Examined != 3 || top.Cut || top.Key != "From_Account" || top.Window != "10m0s" {
		t.Fatalf("top 2: %+v", top)
	}
	if st, body := get(t, srv.URL+"/counters/requests_by_sender?scan=1", ""); st != 200 || !strings.Contains(body, `"cut": true`) || !strings.Contains(body, `"examined": 1`) {
		t.Fatalf("scan=1: %d %s", st, body)
	}
	if st, body := get(t, srv.URL+"/counters/requests_by_sendr", ""); st != 404 || !strings.Contains(body, `did you mean \"requests_by_sender\"`) {
		t.Fatalf("misspelt: %d %s", st, body)
	}
	if st, _ := get(t, srv.URL+"/counters/requests_by_sender?top=x", ""); st != 400 {
		t.Fatalf("top=x: %d", st)
	}
	if st, body := get(t, srv.URL+"/counters/requests_by_sender/eve", ""); st != 200 || !strings.Contains(body, `"count": 5`) {
		t.Fatalf("one key: %d %s", st, body)
	}

	if st, _ := get(t, srv.URL+"/ui/counters", ""); st != http.StatusSeeOther {
		t.Fatalf("the page without the token: %d", st)
	}
	st, body = get(t, srv.URL+"/ui/counters", "counters-admin-token")
	if st != 200 || !strings.Contains(body, `id="counter-requests_by_sender"`) || !strings.Contains(body, "From_Account") ||
		!strings.Contains(body, "Sns.CallbackPrevFriendAdd") || !strings.Contains(body, "Examined all 3 keys") ||
		!strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") || strings.Contains(body, "<script") {
		t.Fatalf("counters page: %d %s", st, body)
	}
	if i, j := strings.Index(body, "<code>eve</code>"), strings.Index(body, "<code>bob</code>"); i < 0 || j < i {
		t.Fatalf("eve (5) before bob (1):\n%s", body)
	}
	resp, err := http.Get(srv.URL + "/ui/counters")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("CSP %q", csp)
	}
}
