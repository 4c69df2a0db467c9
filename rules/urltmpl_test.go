package rules

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/rules/imevent"
)

// A value inserted into a webhook URL cannot change its path or query
// (issue 13: a To_Account of "../../dlq/drop?x=" rewrote the path).
func TestWebhookURLValuesAreEscaped(t *testing.T) {
	type seen struct{ path, query string }
	got := make(chan seen, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.URL.EscapedPath(), r.URL.RawQuery}
	}))
	defer srv.Close()
	t.Setenv("HOOK_BASE", srv.URL)

	var reg actions.Registry
	hook := &actions.Webhook{Client: srv.Client()}
	if err := reg.Register(hook); err != nil {
		t.Fatal(err)
	}
	dir := writeFiles(t, oneRule(`
  - name: hook
    actions:
      - webhook: {url: '${ env("HOOK_BASE") }/friends/${ To_Account }/add?from=${ From_Account }&n=${ PairIndex }'}
      - webhook: {url: '`+srv.URL+`/raw/${ raw(To_Account) }'}
`))
	s, err := Load(dir, Options{Registry: &reg})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		to, from    string
		path, query string
		rawPath     string
	}{
		{"bob", "alice", "/friends/bob/add", "from=alice&n=0", "/raw/bob"},
		{"../../dlq/drop?x=", "a&b=c#d", "/friends/..%2F..%2Fdlq%2Fdrop%3Fx=/add", "from=a%26b%3Dc%23d&n=0", "/raw/../../dlq/drop"},
		{"..", "?", "/friends/%2E%2E/add", "from=%3F&n=0", "/raw/.."},
		{"ü x", "ü x", "/friends/%C3%BC%20x/add", "from=%C3%BC+x&n=0", "/raw/%C3%BC%20x"},
	} {
		ms, errs := s.Match(&imevent.Event{CallbackCommand: imevent.CmdFriendAdd, To_Account: tc.to, From_Account: tc.from})
		if len(errs) != 0 || len(ms) != 1 {
			t.Fatalf("%q: %v %v", tc.to, ms, errs)
		}
		for i, a := range ms[0].Actions {
			if err := hook.Do(context.Background(), actions.Job{ID: "j", Rule: "hook", Action: "webhook"}, a.Params); err != nil && i == 0 {
				t.Fatalf("%q: %v", tc.to, err)
			}
		}
		first := <-got
		if first.path != tc.path || first.query != tc.query {
			t.Errorf("To_Account %q From_Account %q: request %s?%s; want %s?%s", tc.to, tc.from, first.path, first.query, tc.path, tc.query)
		}
		// raw() inserts the value as it is: the author's explicit choice.
		if second := <-got; second.path != tc.rawPath {
			t.Errorf("raw %q: request %s; want %s", tc.to, second.path, tc.rawPath)
		}
	}
}

// explain shows a URL parameter as the logs do: its query elided.
func TestExplainRedactsURLQuery(t *testing.T) {
	var reg actions.Registry
	if err := reg.Register(&actions.Webhook{}); err != nil {
		t.Fatal(err)
	}
	dir := writeFiles(t, oneRule(`
  - name: hook
    actions: [{webhook: {url: 'https://user:pw@crm.example/hook/${ To_Account }?token=tok-55e1&to=${ To_Account }#frag'}}]
`))
	s, err := Load(dir, Options{Registry: &reg})
	if err != nil {
		t.Fatal(err)
	}
	tr := s.Explain(&imevent.Event{CallbackCommand: imevent.CmdFriendAdd, To_Account: "bob"})
	if got, want := tr[0].Actions[0].Params["url"], "https://crm.example/hook/bob?…"; got != want {
		t.Errorf("explain url %q; want %q", got, want)
	}
}
