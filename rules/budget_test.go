package rules

import (
	"errors"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/rules/imevent"
)

// issueLoop is the condition of issue 13: a billion steps, which held a
// callback for more than 10 s before evaluations were budgeted.
const issueLoop = `let r = 1..999; all(r, {let x = #; all(r, {let y = #; all(r, {x + y + # >= 0})})})`

func budgetRules(cmd string) map[string]string {
	return oneRule(`
  - name: loops
    on: ` + cmd + `
    when: '` + issueLoop + `'
    lint: {ignore: [` + CodeCostlyLoop + `]}
    actions: [{log: {message: never}}]
  - name: plain
    on: ` + cmd + `
    when: From_Account == "a"
    actions: [{log: {message: "hi ${ To_Account }"}}]
  - name: small-loop
    on: ` + cmd + `
    when: 'any(split("x,y,a", ","), # == From_Account)'
    once: {key: 'join(map(1..3, string(#)), "-") + From_Account'}
    actions: [{log: {message: '${ join(filter(["a","b"], # != To_Account), ",") }'}}]
`)
}

func TestEvalBudgetFailsOnlyTheLoopingRule(t *testing.T) {
	for _, cmd := range []string{imevent.CmdFriendAdd, imevent.CmdPrevFriendAdd} {
		t.Run(cmd, func(t *testing.T) {
			s := mustLoad(t, budgetRules(cmd))
			ev := &imevent.Event{CallbackCommand: cmd, From_Account: "a", To_Account: "b"}
			ms, errs := s.Match(ev)
			if len(errs) != 1 || errs[0].Rule != "loops" || !errors.Is(errs[0], ErrEvalBudget) {
				t.Fatalf("errors = %v; want one ErrEvalBudget of rule loops", errs)
			}
			var names []string
			for _, m := range ms {
				names = append(names, m.Rule)
			}
			if strings.Join(names, ",") != "plain,small-loop" {
				t.Fatalf("matched %v; want plain and small-loop", names)
			}
			if got := ms[1].Once.Key; got != "1-2-3a" {
				t.Errorf("once key %q", got)
			}
			if got := ms[1].Actions[0].Params["message"]; got != "a" {
				t.Errorf("message %q", got)
			}
			// The budget is each rule's, not used up by earlier events.
			for range 3 {
				if _, errs := s.Match(ev); len(errs) != 1 {
					t.Fatalf("errors = %v", errs)
				}
			}
			if cmd == imevent.CmdPrevFriendAdd {
				if d := s.Decide(ev); d.Deny {
					t.Fatalf("decision %+v", d)
				}
			}
		})
	}
}

func TestEvalBudgetExplainShowsTheError(t *testing.T) {
	s := mustLoad(t, budgetRules(imevent.CmdFriendAdd))
	tr := s.Explain(&imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "a"})
	if tr[0].Status != StatusError || !strings.Contains(tr[0].Error, ErrEvalBudget.Error()) {
		t.Fatalf("loops: %+v", tr[0])
	}
	if tr[1].Status != StatusMatched || tr[2].Status != StatusMatched {
		t.Fatalf("others: %+v %+v", tr[1], tr[2])
	}
}

func TestEvalBudgetInTemplatesAndOnce(t *testing.T) {
	s := mustLoad(t, oneRule(`
  - name: tmpl
    actions: [{log: {message: '${ len(filter(1..999, {let x = #; any(1..999, {# == x + 1000})})) }'}}]
  - name: once
    once: {key: 'string(len(filter(1..999, {let x = #; any(1..999, {# == x + 1000})})))'}
    actions: [{log: {message: hi}}]
  - name: ok
    actions: [{log: {message: hi}}]
`))
	ms, errs := s.Match(&imevent.Event{CallbackCommand: imevent.CmdFriendAdd})
	if len(errs) != 2 || !errors.Is(errs[0], ErrEvalBudget) || !errors.Is(errs[1], ErrEvalBudget) {
		t.Fatalf("errors = %v", errs)
	}
	if len(ms) != 1 || ms[0].Rule != "ok" {
		t.Fatalf("matches = %+v", ms)
	}
}

// A range is charged before it is built: issue 22's len(1..999999) < 0
// held 8 MB per event within expr's own memory budget.
func TestEvalRangeBudget(t *testing.T) {
	const rule = `
  - name: big
    when: 'len(1..999999) < 0'
    lint: {ignore: [FF005]}
`
	s := mustLoad(t, oneRule(rule))
	_, errs := s.Match(&imevent.Event{CallbackCommand: imevent.CmdFriendAdd})
	if len(errs) != 1 || !errors.Is(errs[0], ErrEvalBudget) || !strings.Contains(errs[0].Error(), "more than 100000 steps") {
		t.Fatalf("errors = %v", errs)
	}
	// Larger budgets let it through, up to expr's memory budget.
	s = mustLoad(t, oneRule(rule), func(o *Options) { o.EvalSteps, o.EvalBytes = 2_000_000, 16<<20 })
	if ms, errs := s.Match(&imevent.Event{CallbackCommand: imevent.CmdFriendAdd}); len(errs) != 0 || len(ms) != 0 {
		t.Fatalf("with larger budgets: %v %v", ms, errs)
	}
}

// A type error inside a predicate is still a load error: the metering
// keeps the collection's type.
func TestEvalBudgetKeepsTypeChecks(t *testing.T) {
	got := problems(t, oneRule(`
  - name: typed
    when: 'all(1..3, upper(#) == "X")'
`))
	if len(got) != 1 || !strings.Contains(got[0], "cannot use int as argument (type string)") {
		t.Fatalf("problems = %q", got)
	}
}

func TestLintCostlyLoops(t *testing.T) {
	s := mustLoad(t, oneRule(`
  - name: issue
    when: '`+issueLoop+`'
  - name: long-range
    when: 'any(1..5000, # == EventTime)'
  - name: fine
    when: 'any(split(Remark, ","), # == "x") && all([1, 2], # > 0)'
    on: Sns.CallbackPrevFriendAdd
`))
	var got []string
	for _, w := range s.Warnings() {
		if w.Code == CodeCostlyLoop {
			got = append(got, w.String())
		}
	}
	want := []string{
		"r.yaml:4:28: warning FF005: rule \"issue\": when: all() holds loops nested 3 deep",
		"r.yaml:6:12: warning FF005: rule \"long-range\": when: any() walks a range of 5000 numbers",
	}
	if len(got) != len(want) {
		t.Fatalf("FF005 warnings:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("warning %d:\n got %s\nwant %s…", i, got[i], want[i])
		}
	}
}

// BenchmarkEvalBudgetExhausted is the cost of a rule that uses up its
// whole default budget: the longest one rule can hold an event.
func BenchmarkEvalBudgetExhausted(b *testing.B) {
	s := mustLoad(b, budgetRules(imevent.CmdFriendAdd))
	ev := &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "a", To_Account: "b"}
	for b.Loop() {
		if _, errs := s.Match(ev); len(errs) != 1 {
			b.Fatal(errs)
		}
	}
}
