package rules

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/friendflow/friendflow/rules/imevent"
)

// memLists is a Lists for tests, changed while a Set uses it.
type memLists struct {
	mu  sync.Mutex
	m   map[string][]string
	err error
}

func (l *memLists) Ready() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *memLists) Contains(name, member string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.m[name], member), l.err
}

const listRules = `lists:
  - name: spammers
    description: accounts whose requests are denied
rules:
  - name: deny-spammers
    on: Sns.CallbackPrevFriendAdd
    when: From_Account in list("spammers") && not (To_Account in list("vips"))
    actions:
      - test.deny: { code: 38001 }
    tests:
      - name: a listed sender is denied
        lists: { spammers: [eve] }
        event: { From_Account: eve, To_Account: bob }
        match: true
        decision: { deny: 38001 }
      - name: a sender not listed is allowed
        lists: { spammers: [eve] }
        event: { From_Account: alice, To_Account: bob }
        match: false
        decision: allow
      - name: lists are empty unless the case gives them
        event: { From_Account: eve, To_Account: bob }
        match: false
`

const vipFile = `lists:
  - name: vips
rules: []
`

func TestListsMatchWhatTheSourceHolds(t *testing.T) {
	src := &memLists{m: map[string][]string{}}
	s := mustLoad(t, map[string]string{"a.yaml": listRules, "b.yaml": vipFile}, func(o *Options) { o.Lists = src })
	if got := s.Lists(); len(got) != 2 || got[0].Name != "spammers" || got[0].Description == "" || got[1].Name != "vips" {
		t.Fatalf("Lists() = %+v", got)
	}
	ev := &imevent.Event{CallbackCommand: imevent.CmdPrevFriendAdd, From_Account: "eve", To_Account: "bob"}
	if d := s.Decide(ev); d.Deny {
		t.Fatal("denied with empty lists")
	}
	src.mu.Lock()
	src.m["spammers"] = []string{"eve"}
	src.mu.Unlock()
	if d := s.Decide(ev); !d.Deny || d.Code != 38001 {
		t.Fatalf("decision with eve listed: %+v", d)
	}
	src.mu.Lock()
	src.m["vips"] = []string{"bob"}
	src.mu.Unlock()
	if d := s.Decide(ev); d.Deny {
		t.Fatal("not in list(vips) ignored")
	}

	// A source that cannot answer fails the rule, visibly.
	src.mu.Lock()
	src.err = errors.New("lists are still loading")
	src.mu.Unlock()
	_, errs := s.Match(ev)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "still loading") {
		t.Fatalf("errors = %v", errs)
	}
}

func TestExplainShowsListValues(t *testing.T) {
	src := &memLists{m: map[string][]string{"spammers": {"eve"}}}
	s := mustLoad(t, map[string]string{"a.yaml": listRules, "b.yaml": vipFile}, func(o *Options) { o.Lists = src })
	tr := s.Explain(&imevent.Event{CallbackCommand: imevent.CmdPrevFriendAdd, From_Account: "eve", To_Account: "bob"})
	want := []ListValue{{List: "spammers", Member: "eve", In: true}, {List: "vips", Member: "bob"}}
	if !slices.Equal(tr[0].Lists, want) {
		t.Fatalf("explain lists = %+v, want %+v", tr[0].Lists, want)
	}
}

func TestListProblems(t *testing.T) {
	for _, c := range []struct{ name, file, want string }{
		{"unknown list", "lists: [{name: spammers}]\nrules:\n  - name: r\n    when: From_Account in list(\"spamers\")\n",
			`r.yaml:4:27: rule "r": when: unknown list "spamers"; declare it under lists: in a rule file; did you mean "spammers"?`},
		{"no lists at all", "rules:\n  - name: r\n    when: From_Account in list(\"x\")\n",
			`r.yaml:3:27: rule "r": when: unknown list "x"; declare it under lists: in a rule file`},
		{"list outside in", "lists: [{name: x}]\nrules:\n  - name: r\n    when: len(list(\"x\")) > 0\n", `can only be the right side of in`},
		{"name not quoted", "lists: [{name: x}]\nrules:\n  - name: r\n    when: From_Account in list(To_Account)\n", `can only be the right side of in`},
		{"left not a string", "lists: [{name: x}]\nrules:\n  - name: r\n    when: ForceFlag in list(\"x\")\n", `the left side must be a string`},
		{"bad name", "lists: [{name: a.b}]\nrules: []\n", `a name is 1 to 64`},
		{"duplicate", "lists: [{name: x}, {name: x}]\nrules: []\n", `duplicate list name "x"`},
		{"unknown key", "lists: [{name: x, members: [a]}]\nrules: []\n", `members`},
		{"test of an unknown list", "lists: [{name: x}]\nrules:\n  - name: r\n    tests:\n      - name: t\n        lists: {y: [a]}\n        event: {}\n        match: true\n",
			`unknown list "y"`},
		{"template", "rules:\n  - name: r\n    actions:\n      - log: { message: \"${ From_Account in list('nope') }\" }\n", `unknown list "nope"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := strings.Join(problems(t, map[string]string{"r.yaml": c.file}), "\n")
			if !strings.Contains(got, c.want) {
				t.Fatalf("problems:\n%s\nwant one containing %q", got, c.want)
			}
		})
	}
}

// BenchmarkMatchListCheck is the cost per event of a Prev rule whose
// when is one `in list(...)` check, against a Lists of constant cost.
func BenchmarkMatchListCheck(b *testing.B) {
	src := &memLists{m: map[string][]string{"spammers": {"eve"}}}
	s := mustLoad(b, map[string]string{"a.yaml": listRules, "b.yaml": vipFile}, func(o *Options) { o.Lists = src })
	ev := &imevent.Event{CallbackCommand: imevent.CmdPrevFriendAdd, From_Account: "alice", To_Account: "bob"}
	for b.Loop() {
		s.Match(ev)
	}
}

func TestListInTemplatesAndNotIn(t *testing.T) {
	src := &memLists{m: map[string][]string{"vips": {"bob"}}}
	s := mustLoad(t, map[string]string{"a.yaml": `lists: [{name: vips}]
rules:
  - name: r
    on: Sns.CallbackPrevFriendAdd
    when: From_Account not in list("vips")
    once: { key: '(To_Account in list("vips") ? "vip|" : "") + From_Account' }
    actions:
      - log: { message: "vip target: ${ To_Account in list('vips') }" }
`}, func(o *Options) { o.Lists = src })
	ms, errs := s.Match(&imevent.Event{CallbackCommand: imevent.CmdPrevFriendAdd, From_Account: "eve", To_Account: "bob"})
	if len(errs) != 0 || len(ms) != 1 || ms[0].Once.Key != "vip|eve" || ms[0].Actions[0].Params["message"] != "vip target: true" {
		t.Fatalf("matches %+v, errors %v", ms, errs)
	}
	if ms, _ := s.Match(&imevent.Event{CallbackCommand: imevent.CmdPrevFriendAdd, From_Account: "bob"}); len(ms) != 0 {
		t.Fatal("not in list matched a member")
	}
	src.mu.Lock()
	src.err = errors.New("still loading")
	src.mu.Unlock()
	if _, errs := s.Match(&imevent.Event{CallbackCommand: imevent.CmdPrevFriendAdd, From_Account: "eve", To_Account: "bob"}); len(errs) != 1 {
		t.Fatalf("a list error in when, once or a template must fail the rule: %v", errs)
	}
}
