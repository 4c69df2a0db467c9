package rules

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/rules/imevent"
)

const profileRule = `  - name: welcome
    actions:
      - test.send:
          to: ${ From_Account }
          body: "Hi ${ profile(From_Account).Nick ?? From_Account }, level ${ profile(From_Account).Custom.Level ?? \"none\" } from ${ To_Account }"
          headers: { X-Face: "${ profile(To_Account).FaceUrl ?? \"-\" }" }
    tests:
      - name: by nick
        event: { From_Account: alice, To_Account: bob }
        profiles: { alice: { Nick: Alice, Custom: { Level: gold } } }
        match: true
        actions:
          - test.send: { to: alice, body: "Hi Alice, level gold from bob", headers: { X-Face: "-" } }
      - name: without a profile, the account
        event: { From_Account: carol, To_Account: bob }
        match: true
        actions:
          - test.send: { body: "Hi carol, level none from bob" }
`

// fakeProfiles is an actions.ProfileSource of fixed profiles that counts
// its calls.
type fakeProfiles struct {
	mu      sync.Mutex
	profs   map[string]actions.Profile
	calls   [][]string
	customs [][]string
	err     error
}

func (f *fakeProfiles) Profiles(_ context.Context, accounts, custom []string) (map[string]actions.Profile, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, slices.Clone(accounts))
	f.customs = append(f.customs, slices.Clone(custom))
	if f.err != nil {
		return nil, f.err
	}
	out := map[string]actions.Profile{}
	for _, a := range accounts {
		if p, ok := f.profs[a]; ok {
			out[a] = p
		}
	}
	return out, nil
}

func (f *fakeProfiles) Prefetch([]string, []string) time.Duration { return 0 }

func TestProfileDeferredAndResolved(t *testing.T) {
	s := mustLoad(t, oneRule(profileRule))
	ev := imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "alice", To_Account: "bob"}
	ms, errs := s.Match(&ev)
	if len(errs) > 0 || len(ms) != 1 {
		t.Fatalf("Match: %v, %v", ms, errs)
	}
	params := ms[0].Actions[0].Params
	if params["to"] != "alice" {
		t.Errorf("to = %v: a template without profile() renders at match time", params["to"])
	}
	if _, ok := params["body"].(map[string]any)[deferredTemplate]; !ok {
		t.Fatalf("body = %#v, want a deferred template", params["body"])
	}
	want := map[string]any{"accounts": []any{"alice", "bob"}, "custom": []any{"Level"}}
	if fmt.Sprint(params[actions.ProfilesParam]) != fmt.Sprint(want) {
		t.Errorf("%s = %v, want %v", actions.ProfilesParam, params[actions.ProfilesParam], want)
	}

	src := &fakeProfiles{profs: map[string]actions.Profile{
		"alice": {Nick: "Alice", Custom: map[string]string{"Level": "gold"}},
		"bob":   {FaceUrl: "https://x/b.png"},
	}}
	r := NewResolver(src, nil)
	event := imevent.AppendEventJSON(nil, &ev)
	got, err := r.Resolve(context.Background(), params, event)
	if err != nil {
		t.Fatal(err)
	}
	if got["body"] != "Hi Alice, level gold from bob" || got["to"] != "alice" {
		t.Errorf("resolved %#v", got)
	}
	if h := got["headers"].(map[string]any); h["X-Face"] != "https://x/b.png" {
		t.Errorf("headers = %v", h)
	}
	if _, left := got[actions.ProfilesParam]; left {
		t.Error("the marker is still there")
	}
	if len(src.calls) != 1 || fmt.Sprint(src.customs[0]) != "[Level]" {
		t.Errorf("source calls %v customs %v, want one call with [Level]", src.calls, src.customs)
	}
	if _, err := (&actions.Log{}).Spec().Check(map[string]any{"message": got["body"]}); err != nil {
		t.Error(err)
	}

	// Nobody has a profile: every ?? falls back.
	got, err = NewResolver(&fakeProfiles{}, nil).Resolve(context.Background(), params, event)
	if err != nil || got["body"] != "Hi alice, level none from bob" {
		t.Errorf("without profiles: %v, %v", got["body"], err)
	}

	// A transient source error stays transient, for the queue to retry.
	_, err = NewResolver(&fakeProfiles{err: actions.Transient(errors.New("busy"), 0)}, nil).Resolve(context.Background(), params, event)
	if perm, _ := actions.Classify(err); err == nil || perm {
		t.Errorf("err = %v, want transient", err)
	}
}

func TestProfileOnlyInTemplates(t *testing.T) {
	cases := map[string]string{
		"when": `  - name: r
    when: profile(From_Account).Nick == "x"
    actions: [ { log: { message: hi } } ]
`,
		"once": `  - name: r
    once: { key: 'profile(From_Account).Nick ?? ""' }
    actions: [ { log: { message: hi } } ]
`,
		"field": `  - name: r
    actions: [ { log: { message: "${ profile(From_Account).Nik }" } } ]
`,
		"custom": `  - name: r
    actions: [ { log: { message: "${ profile(From_Account).Custom }" } } ]
`,
		"arity": `  - name: r
    actions: [ { log: { message: "${ profile(From_Account, To_Account).Nick }" } } ]
`,
		"type": `  - name: r
    actions: [ { log: { message: "${ profile(EventTime).Nick }" } } ]
`,
		"deny": `  - name: r
    on: Sns.CallbackPrevFriendAdd
    actions: [ { test.deny: { code: "${ len(profile(From_Account).Nick ?? \"\") }" } } ]
`,
	}
	want := map[string]string{
		"when":   "r.yaml:3:11: rule \"r\": when: profile() may only be used in action templates",
		"once":   "r.yaml:3:19: rule \"r\": once: key: profile() may only be used in action templates",
		"field":  "profile() has the fields Nick, FaceUrl, Gender, Language, Location, SelfSignature, Custom",
		"custom": "name the custom field: profile(...).Custom.KEY",
		"arity":  "profile() takes one account",
		"type":   "profile(): the account must be a string",
		"deny":   "profile() is resolved when a job runs; test.deny is decided while the callback waits",
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			ps := problems(t, oneRule(body))
			if len(ps) == 0 || !strings.Contains(strings.Join(ps, "\n"), want[name]) {
				t.Errorf("problems:\n%s\nwant one containing %q", strings.Join(ps, "\n"), want[name])
			}
		})
	}
}

// TestProfileNotWithList: the worker renders a profile() template without
// the rule set's lists.
func TestProfileNotWithList(t *testing.T) {
	ps := problems(t, map[string]string{"r.yaml": `lists:
  - name: vips
rules:
  - name: r
    actions: [ { log: { message: "${ profile(From_Account).Nick ?? From_Account } ${ From_Account in list(\"vips\") }" } } ]
`})
	if len(ps) != 1 || !strings.Contains(ps[0], "r.yaml:5:") || !strings.Contains(ps[0], "cannot read list()") {
		t.Errorf("problems: %v", ps)
	}
}

func TestProfileExplainShowsFallbacks(t *testing.T) {
	s := mustLoad(t, oneRule(profileRule))
	ev := imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "alice", To_Account: "bob"}
	tr := s.Explain(&ev)
	if len(tr) != 1 || len(tr[0].Actions) != 1 {
		t.Fatalf("explain: %+v", tr)
	}
	if body := tr[0].Actions[0].Params["body"]; body != "Hi alice, level none from bob" {
		t.Errorf("body = %v", body)
	}
}

func TestProfileTestFails(t *testing.T) {
	body := strings.Replace(profileRule, `body: "Hi Alice,`, `body: "Hi Bob,`, 1)
	ps := problems(t, oneRule(body))
	if len(ps) != 1 || !strings.Contains(ps[0], `test "by nick" of rule "welcome" failed`) {
		t.Errorf("problems: %v", ps)
	}
}
