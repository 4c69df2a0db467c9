package rules

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions/builtin"
	"github.com/friendflow/friendflow/rules/imevent"
)

func TestExplain(t *testing.T) {
	s := mustLoad(t, oneRule(`  - name: matched
    when: ClientCmd == "friend_response" && From_Account != ""
    once: {key: From_Account, for: 1h}
    actions:
      - test.send:
          to: ${ From_Account }
          token: ${ env("TOKEN") }
          custom: {data: "d", key: "${ env(\"TOKEN\") }"}
        delay: 1m
  - name: not-matched
    when: ClientCmd == "friend_response" && (ForceFlag == 1 || PairIndex > 5) && To_Account == "zed"
  - name: either
    when: ForceFlag == 1 or To_Account == "zed"
  - name: other-command
    on: Sns.CallbackBlackListAdd
  - name: disabled
    enabled: false
    when: From_Account == "alice"
  - name: failing
    when: ForceFlag % PairCount == 0
  - name: shadow
    shadow: true
    actions: [{log: {message: "would log ${ From_Account }"}}]
`), func(o *Options) {
		o.Getenv = func(string) string { return "top-secret" }
	})
	ev := &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, ClientCmd: "friend_response", From_Account: "alice", To_Account: "bob"}
	tr := s.Explain(ev)
	if len(tr) != 7 {
		t.Fatalf("%d traces", len(tr))
	}
	byRule := map[string]RuleTrace{}
	for _, x := range tr {
		byRule[x.Rule] = x
	}

	m := byRule["matched"]
	if m.Status != StatusMatched || m.Operator != "&&" || len(m.Conditions) != 2 || m.Line != 2 ||
		m.Once == nil || m.Once.Key != "alice" || m.Once.For != "1h0m0s" || !m.Once.Checked || len(m.Actions) != 1 ||
		m.Reason != `when is true; the actions run only if once key "alice" was not seen by this rule within 1h0m0s` {
		t.Fatalf("matched = %+v", m)
	}
	wantParams := map[string]any{"to": "alice", "token": "<redacted>", "custom": map[string]any{"data": "d", "key": "<redacted>"}}
	if a := m.Actions[0]; !reflect.DeepEqual(a.Params, wantParams) || a.Delay != "1m0s" || a.Retry.Attempts != 10 {
		t.Errorf("action = %+v", a)
	}

	n := byRule["not-matched"]
	wantConds := []Condition{
		{Expr: `ClientCmd == "friend_response"`, Value: true},
		{Expr: `ForceFlag == 1 || PairIndex > 5`, Value: false},
		{Expr: `To_Account == "zed"`, Value: false},
	}
	if n.Status != StatusNotMatched || n.Operator != "&&" || !reflect.DeepEqual(n.Conditions, wantConds) ||
		n.Reason != `when is false; false: ForceFlag == 1 || PairIndex > 5; To_Account == "zed"` || n.Actions != nil {
		t.Errorf("not-matched = %+v", n)
	}
	if e := byRule["either"]; e.Status != StatusNotMatched || e.Operator != "||" || len(e.Conditions) != 2 {
		t.Errorf("either = %+v", e)
	}
	if o := byRule["other-command"]; o.Status != StatusNotApplicable || o.Conditions != nil ||
		o.Reason != "command Sns.CallbackFriendAdd is not in on [Sns.CallbackBlackListAdd]" {
		t.Errorf("other-command = %+v", o)
	}
	if d := byRule["disabled"]; d.Status != StatusDisabled || d.Reason != "enabled: false; it would match" {
		t.Errorf("disabled = %+v", d)
	}
	if f := byRule["failing"]; f.Status != StatusError || !strings.Contains(f.Error, "divide by zero") ||
		len(f.Conditions) != 1 || f.Conditions[0].Error == "" {
		t.Errorf("failing = %+v", f)
	}
	if sh := byRule["shadow"]; sh.Status != StatusMatched || !sh.Shadow || len(sh.Actions) != 1 ||
		sh.Actions[0].Params["message"] != "would log alice" {
		t.Errorf("shadow = %+v", sh)
	}

	data, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "top-secret") {
		t.Errorf("a secret leaked into explain: %s", data)
	}
	for _, key := range []string{`"rule":"matched"`, `"status":"not_matched"`, `"conditions":[{"expr":`, `"once":{"key":"alice","for":"1h0m0s","checked":true}`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("JSON lacks %s: %s", key, data)
		}
	}
}

func TestInfo(t *testing.T) {
	files := map[string]string{
		"a.yaml": "rules:\n  - name: a\n    actions: [{test.send: {to: x, token: hunter2}}]\n",
		"b.yml":  "rules: []\n",
	}
	dir := writeFiles(t, files)
	s, err := Load(dir, Options{Registry: testRegistry(t)})
	if err != nil {
		t.Fatal(err)
	}
	h, err := SourceHash(dir)
	if err != nil || h != s.Hash() || len(h) != 64 {
		t.Fatalf("SourceHash = %q, %v; Hash = %q", h, err, s.Hash())
	}
	fs := s.Files()
	if len(fs) != 2 || fs[0].Rules != 1 || fs[1].Rules != 0 || fs[0].Hash == fs[1].Hash || len(fs[0].Hash) != 64 {
		t.Fatalf("files = %+v", fs)
	}
	data, _ := json.Marshal(s.Rules())
	if strings.Contains(string(data), "hunter2") {
		t.Fatalf("Rules shows a parameter value: %s", data)
	}
	if want := `[{"name":"a","file":"` + dir + `/a.yaml","line":2,"on":["Sns.CallbackFriendAdd"],"when":"","enabled":true,"shadow":false,"actions":["test.send"]}]`; string(data) != want {
		t.Fatalf("rules JSON:\n %s\nwant\n %s", data, want)
	}

	// The hash changes with a file's content and with its name.
	other := writeFiles(t, map[string]string{"a.yaml": files["a.yaml"], "c.yml": files["b.yml"]})
	if h2, _ := SourceHash(other); h2 == h {
		t.Error("renaming a file kept the hash")
	}
	other = writeFiles(t, map[string]string{"a.yaml": files["a.yaml"], "b.yml": "rules: [] \n"})
	if h2, _ := SourceHash(other); h2 == h {
		t.Error("changing a file kept the hash")
	}
	if _, err := SourceHash(t.TempDir()); err == nil {
		t.Error("SourceHash of an empty directory succeeded")
	}
}

func TestExamples(t *testing.T) {
	// The examples use the real kinds: the registry serve builds.
	reg := builtin.Registry(builtin.Deps{})
	s, err := Load(exampleRules(t), Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	res := s.RunTests()
	if len(res) < 6 {
		t.Fatalf("only %d example tests", len(res))
	}
	perRule := map[string][2]int{} // matches expected true, false
	for _, r := range res {
		if !r.Pass {
			t.Errorf("%s / %s: %s", r.Rule, r.Test, r.Failure)
		}
	}
	for _, r := range s.rules {
		for _, tc := range r.tests {
			c := perRule[r.name]
			if tc.match {
				c[0]++
			} else {
				c[1]++
			}
			perRule[r.name] = c
		}
	}
	for _, name := range []string{"welcome-on-accept", "audit-forced-adds", "blacklist-alert"} {
		if c := perRule[name]; c[0] == 0 || c[1] == 0 {
			t.Errorf("%s: %d matching and %d non-matching tests; want both", name, c[0], c[1])
		}
	}
	// The welcome key is the same whichever side is From. The examples
	// count friendships (first-friend), so each event is counted first,
	// as the engine does.
	counters := NewMemCounters()
	match := func(ev *imevent.Event) []Match {
		ms, errs := s.MatchCounts(ev, nil, s.Count(context.Background(), ev, counters, time.Now()))
		if errs != nil {
			t.Errorf("rule errors: %v", errs)
		}
		var welcome []Match
		for _, m := range ms {
			if m.Rule == "welcome-on-accept" {
				welcome = append(welcome, m)
			}
		}
		return welcome
	}
	a := match(&imevent.Event{CallbackCommand: imevent.CmdFriendAdd, ClientCmd: "friend_response", From_Account: "alice", To_Account: "bob"})
	b := match(&imevent.Event{CallbackCommand: imevent.CmdFriendAdd, ClientCmd: "friend_response", From_Account: "bob", To_Account: "alice"})
	if len(a) != 1 || len(b) != 1 || a[0].Once.Key != b[0].Once.Key {
		t.Fatalf("welcome matches: %+v / %+v", a, b)
	}
}

// explain says whether a callback would check the once key: only when the
// rule stores jobs, as the engine claims keys (not for shadow rules, nor
// for a deny alone, which runs in the reply).
func TestExplainOnceChecked(t *testing.T) {
	s := mustLoad(t, oneRule(`  - name: queued
    once: {key: 'From_Account + "|" + To_Account', for: 2h}
    actions: [{test.send: {to: "${ To_Account }"}}]
  - name: shadowed
    shadow: true
    once: {key: From_Account, for: 1h}
    actions: [{test.send: {to: x}}]
  - name: off
    enabled: false
    once: {key: From_Account, for: 1h}
    actions: [{test.send: {to: x}}]
  - name: deny-only
    on: Sns.CallbackPrevFriendAdd
    once: {key: From_Account, for: 1h}
    actions: [{test.deny: {code: 38001}}]
`))
	ev := &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "alice", To_Account: "bob"}
	prev := &imevent.Event{CallbackCommand: imevent.CmdPrevFriendAdd, From_Account: "alice", To_Account: "bob"}
	got := map[string]RuleTrace{}
	for _, x := range s.Explain(ev) {
		got[x.Rule] = x
	}
	for _, x := range s.Explain(prev) {
		if x.Rule == "deny-only" {
			got[x.Rule] = x
		}
	}
	if q := got["queued"]; q.Once == nil || q.Once.Key != "alice|bob" || !q.Once.Checked || !strings.Contains(q.Reason, `once key "alice|bob"`) {
		t.Errorf("queued: %+v %+v", q, q.Once)
	}
	for _, name := range []string{"shadowed", "off", "deny-only"} {
		if x := got[name]; x.Once == nil || x.Once.Checked || strings.Contains(x.Reason, "once key") {
			t.Errorf("%s: %+v %+v", name, x, x.Once)
		}
	}
}
