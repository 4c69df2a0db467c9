package rules

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/rules/imevent"
)

// testCase is one item of a rule's tests:.
type testCase struct {
	name      string
	line, col int
	event     imevent.Event
	match     bool
	actions   []expectedAction
	decision  *expectedDecision // nil: not checked
	lists     testLists         // the case's list members; nil: none
	profiles  map[string]actions.Profile
	// seq are the events before event, in order (events:), each counted
	// and matched for the counters and once keys they leave; noMatch: the
	// case gives no match: (it gives a decision).
	seq     []imevent.Event
	noMatch bool
}

// profileFn is profile() in the test: its profiles, or none.
func (tc *testCase) profileFn(account string) map[string]any {
	return tc.profiles[account].Value()
}

// expectedDecision is the decision a test expects of the whole rule set
// for its event: allow, or deny (with a code and a reason when given).
type expectedDecision struct {
	deny   bool
	code   int     // 0: any
	reason *string // nil: any
}

func (d *expectedDecision) String() string {
	if !d.deny {
		return "allow"
	}
	s := "deny"
	if d.code != 0 {
		s += " " + strconv.Itoa(d.code)
	}
	if d.reason != nil {
		s += fmt.Sprintf(" %q", *d.reason)
	}
	return s
}

// checkDecision compares the set's decision for ev with the expected one.
func (s *Set) checkDecision(want *expectedDecision, ev *imevent.Event, lists Lists, counts *Counts) string {
	matches, _ := s.matchWith(nil, ev, nil, lists, false, counts)
	got := DecisionOf(matches)
	ok := got.Deny == want.deny &&
		(!want.deny || want.code == 0 || want.code == got.Code) &&
		(!want.deny || want.reason == nil || *want.reason == got.Reason)
	if ok {
		return ""
	}
	desc := "allow"
	if got.Deny {
		desc = fmt.Sprintf("deny %d %q by rule %s", got.Code, got.Reason, got.Rule)
	}
	return fmt.Sprintf("expected decision: %s, got %s", want, desc)
}

// expectedAction is an action a test case expects among the rendered ones:
// every given parameter must equal the rendered value.
type expectedAction struct {
	kind   string
	spec   actions.Spec
	keys   []string // parameter names, in file order
	params map[string]any
	// delay and cancelOn (with checkCancel) are compared when given
	// beside the kind (ruletestcancel.go).
	delay       *time.Duration
	cancelOn    []string
	checkCancel bool
}

// TestResult is the outcome of one tests: case.
type TestResult struct {
	Rule string `json:"rule"`
	Test string `json:"test"`
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
	Pass bool   `json:"pass"`
	// Failure says what differed, over several indented lines when it
	// compares rendered actions parameter by parameter.
	Failure string `json:"failure,omitempty"`
}

// RunTests runs every rule's tests: cases, in file order. A case tests the
// rule itself: enabled: false and shadow: true do not change its outcome,
// so a rule can be tested before it is switched on.
func (s *Set) RunTests() []TestResult { return s.RunTestsMatching(nil) }

// RunTestsMatching is RunTests for the cases keep accepts, given the
// rule's and the case's names; a nil keep runs them all.
func (s *Set) RunTestsMatching(keep func(rule, test string) bool) []TestResult {
	var out []TestResult
	sc := s.scratch.Get().(*scratch)
	defer s.scratch.Put(sc)
	for _, r := range s.rules {
		if !r.ok {
			continue
		}
		for _, tc := range r.tests {
			if keep != nil && !keep(r.name, tc.name) {
				continue
			}
			res := TestResult{Rule: r.name, Test: tc.name, File: r.file, Line: tc.line, Col: tc.col}
			res.Failure = s.runTest(r, tc, sc)
			res.Pass = res.Failure == ""
			out = append(out, res)
		}
	}
	return out
}

// runTest returns "" when the case passes, else what went wrong.
func (s *Set) runTest(r *rule, tc *testCase, sc *scratch) string {
	ev := tc.event
	st := s.testState(tc)
	sc.budget.begin(nil, &s.lim)
	sc.budget.rule()
	env := withLists(withBudget(envOf(&ev), &sc.budget), &listEnv{src: tc.lists})
	if len(s.counters) > 0 {
		env[countsKey] = st.counts
	}
	matched := false
	if r.covers(ev.CallbackCommand) {
		ok, err := r.evalWhen(&sc.budget, &sc.vm, env)
		if err != nil {
			return "runtime error: " + err.Error()
		}
		matched = ok
	}
	if matched != tc.match && !tc.noMatch {
		var b strings.Builder
		fmt.Fprintf(&b, "expected match: %t, got %t", tc.match, matched)
		if !r.covers(ev.CallbackCommand) {
			fmt.Fprintf(&b, " (command %s is not in on %v)", ev.CallbackCommand, r.on)
			return b.String()
		}
		if trace := s.conditionsText(r, env, sc); trace != "" {
			b.WriteString("\n")
			b.WriteString(trace)
		}
		b.WriteString(countsText(st.counts))
		return b.String()
	}
	if tc.decision != nil {
		// The decision is the whole set's: a later rule's test can show
		// that an earlier rule's deny wins, or that nothing denies.
		if d := s.checkDecision(tc.decision, &ev, tc.lists, st.counts); d != "" {
			return d + countsText(st.counts)
		}
	}
	if !matched {
		return ""
	}
	x := &evalCtx{ev: &ev, vm: &sc.vm, sc: sc, env: env, profiles: tc.profileFn}
	once, err := r.evalOnce(x)
	if err != nil {
		return "runtime error: " + err.Error()
	}
	got, err := r.renderActions(x)
	if err != nil {
		return "runtime error: " + err.Error()
	}
	if once != nil && st.onceSeen(r.name, once.Key) && len(tc.actions) > 0 {
		return fmt.Sprintf("expected actions, but once skips them: key %q was seen by an earlier event of the case", once.Key)
	}
	return compareActions(tc.actions, got)
}

// conditionsText lists the value of each top-level operand of when.
func (s *Set) conditionsText(r *rule, env map[string]any, sc *scratch) string {
	op, conds := s.conditions(r, env, sc)
	if len(conds) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  when: %s", r.whenSrc)
	if len(conds) > 1 {
		for _, c := range conds {
			fmt.Fprintf(&b, "\n    %s %s: ", op, c.Expr)
			if c.Error != "" {
				b.WriteString("error: " + c.Error)
			} else {
				b.WriteString(formatValue(c.Value))
			}
		}
	}
	return b.String()
}

// compareActions checks that every expected action appears, in order,
// among got, each given parameter equal to the rendered value.
func compareActions(want []expectedAction, got []Action) string {
	pos := 0
	for wi := range want {
		w := &want[wi]
		found := -1
		for gi := pos; gi < len(got); gi++ {
			if got[gi].Kind == w.kind && paramsMatch(w, got[gi].Params) && w.timingMatches(&got[gi]) {
				found = gi
				break
			}
		}
		if found >= 0 {
			pos = found + 1
			continue
		}
		return actionDiff(wi, w, got, pos)
	}
	return ""
}

func paramsMatch(w *expectedAction, got map[string]any) bool {
	for _, k := range w.keys {
		if !paramEqual(w.spec, k, w.params[k], got) {
			return false
		}
	}
	return true
}

// paramEqual compares an expected parameter with the rendered one as the
// kind will see them: both normalised by the parameter's declaration (so
// "5s" equals a rendered "5s", 3 equals 3.0, and an absent parameter is
// its default); values the declaration cannot normalise are compared
// loosely.
func paramEqual(spec actions.Spec, name string, want any, got map[string]any) bool {
	gv, present := got[name]
	for _, p := range spec.Params {
		if p.Name != name {
			continue
		}
		if !present {
			gv = p.Default
		}
		one := actions.Spec{Params: []actions.Param{p}}
		wn, err1 := one.Check(map[string]any{name: want})
		gn, err2 := one.Check(map[string]any{name: gv})
		if err1 == nil && err2 == nil {
			return looseEqual(wn[name], gn[name])
		}
		break
	}
	return looseEqual(want, gv)
}

// looseEqual is reflect.DeepEqual except that numbers compare by value.
func looseEqual(a, b any) bool {
	if fa, ok := number(a); ok {
		fb, ok := number(b)
		return ok && fa == fb
	}
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !looseEqual(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !looseEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case float64:
		return n, !math.IsNaN(n)
	}
	return 0, false
}

// actionDiff explains why expected action wi was not found: each rendered
// action of the same kind after the previous expected one is compared
// parameter by parameter.
func actionDiff(wi int, w *expectedAction, got []Action, from int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "expected action %d (%s) not found among the rendered actions", wi+1, w.kind)
	if from > 0 {
		fmt.Fprintf(&b, " after action %d", from)
	}
	b.WriteString("\n  expected:")
	fmt.Fprintf(&b, "\n    %s:", w.kind)
	for _, k := range w.keys {
		fmt.Fprintf(&b, "\n      %s: %s", k, formatParam(w.spec, k, w.params[k]))
	}
	w.timingDiff(&b, nil)
	kinds := make([]string, len(got))
	same := 0
	for i, g := range got {
		kinds[i] = g.Kind
		if i < from || g.Kind != w.kind {
			continue
		}
		same++
		fmt.Fprintf(&b, "\n  rendered action %d (%s):", i+1, g.Kind)
		for _, k := range w.keys {
			gv, ok := g.Params[k]
			switch {
			case paramEqual(w.spec, k, w.params[k], g.Params):
				fmt.Fprintf(&b, "\n      %s: %s (equal)", k, formatParam(w.spec, k, w.params[k]))
			case !ok:
				fmt.Fprintf(&b, "\n      %s: expected %s, not set", k, formatParam(w.spec, k, w.params[k]))
			default:
				fmt.Fprintf(&b, "\n      %s: expected %s, got %s", k, formatParam(w.spec, k, w.params[k]), formatParam(w.spec, k, gv))
			}
		}
		w.timingDiff(&b, &got[i])
	}
	if same == 0 {
		if len(got) == 0 {
			b.WriteString("\n  the rule rendered no actions")
		} else {
			fmt.Fprintf(&b, "\n  no %s action rendered there; rendered: %s", w.kind, strings.Join(kinds, ", "))
		}
	}
	return b.String()
}

// formatParam is formatValue for a parameter, hiding secrets: a failing
// test becomes a load error, and load errors are logged.
func formatParam(spec actions.Spec, name string, v any) string {
	if isSecret(spec, name) {
		return `"` + redacted + `"`
	}
	return formatValue(v)
}

// formatValue shows a value as JSON, which quotes strings and makes the
// difference between "1" and 1 visible.
func formatValue(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(data)
}
