package rules

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/rules/imevent"
)

// Status is what Explain found for one rule.
type Status string

const (
	StatusMatched       Status = "matched"
	StatusNotMatched    Status = "not_matched"
	StatusNotApplicable Status = "not_applicable" // the event's command is not in the rule's on
	StatusDisabled      Status = "disabled"
	StatusError         Status = "error" // a runtime error: counts as not matched
)

// RuleTrace says what one rule made of one event, and why.
type RuleTrace struct {
	Rule   string   `json:"rule"`
	File   string   `json:"file"`
	Line   int      `json:"line"`
	On     []string `json:"on"`
	Status Status   `json:"status"`
	// Reason is a one-line human explanation of Status.
	Reason string `json:"reason"`
	Shadow bool   `json:"shadow,omitempty"`
	When   string `json:"when,omitempty"`
	// Warnings are the rule's lint warnings: a reason it may not match as
	// its author meant.
	Warnings []Problem `json:"warnings,omitempty"`
	// Operator joins Conditions: "&&" or "||" when when's top level is a
	// chain of that operator, "" when Conditions is when as a whole.
	Operator   string      `json:"operator,omitempty"`
	Conditions []Condition `json:"conditions,omitempty"`
	Once       *OnceTrace  `json:"once,omitempty"`
	// Actions are the rendered actions, for matched rules (also in shadow
	// mode, where they are not run) and for disabled rules that would
	// match. Secret parameters read "<redacted>"; URL parameters are
	// shown as actions.RedactURL shows them.
	Actions []ActionTrace `json:"actions,omitempty"`
	Error   string        `json:"error,omitempty"`
	// Lists are the list memberships the rule looked up, each once.
	Lists []ListValue `json:"lists,omitempty"`
}

// Condition is the value of one top-level operand of when, each evaluated
// on its own (even where && or || would have stopped early).
type Condition struct {
	Expr  string `json:"expr"`
	Value any    `json:"value"`
	Error string `json:"error,omitempty"`
}

// onceChecked says in t whether a callback would check t's once key
// before queueing acts (the engine's rule: not for shadow rules, nor
// for rules with no queued action; off: shadow or disabled).
func onceChecked(t *RuleTrace, acts []Action, off bool) {
	if t.Once == nil || off || !slices.ContainsFunc(acts, func(a Action) bool { return !a.Sync }) {
		return
	}
	t.Once.Checked = true
	t.Reason = fmt.Sprintf("when is true; the actions run only if once key %q was not seen by this rule within %s", t.Once.Key, t.Once.For)
}

// OnceTrace is a rendered dedup key. Checked says whether a callback
// would check it: the engine claims the key before storing the rule's
// queued actions, and skips them when the rule claimed it within For.
// Shadow rules and rules whose actions all run in the reply (deny) store
// no jobs, so they check nothing. Explain itself has no side effects: it
// neither reads nor claims the key.
type OnceTrace struct {
	Key     string `json:"key"`
	For     string `json:"for"`
	Checked bool   `json:"checked"`
}

// ActionTrace is a rendered action as explain shows it.
type ActionTrace struct {
	Kind   string         `json:"kind"`
	Params map[string]any `json:"params"`
	Delay  string         `json:"delay,omitempty"`
	Retry  RetryTrace     `json:"retry"`
	Sync   bool           `json:"sync,omitempty"`
	// CancelOn is the action's cancel_on.
	CancelOn []string `json:"cancel_on,omitempty"`
}

// RetryTrace is Retry with durations as text.
type RetryTrace struct {
	Attempts   int    `json:"attempts"`
	Backoff    string `json:"backoff"`
	MaxBackoff string `json:"max_backoff"`
}

// explainProgs are the separately compiled top-level operands of a rule's
// when, compiled on the first Explain of the rule: Match never needs them.
type explainProgs struct {
	op       string
	operands []operand
}

type operand struct {
	src  string
	prog *vm.Program
	err  error
}

// Explain evaluates ev against every rule, in file order, without side
// effects, and says for each what happened and why. Unlike Match it
// evaluates every rule (not only the index's candidates); a runtime error
// is a trace's StatusError, not an error of its own.
func (s *Set) Explain(ev *imevent.Event) []RuleTrace { return s.ExplainWith(ev, ExplainInput{}) }

// ExplainCounts is Explain for an event whose counters were counted into
// counts (Set.Count): count() reads them, and counts.Values() then holds
// every value explain used.
func (s *Set) ExplainCounts(ev *imevent.Event, counts *Counts) []RuleTrace {
	return s.ExplainWith(ev, ExplainInput{Counts: counts})
}

// ExplainInput is what explain knows of the world besides the event.
// Explain never calls IM or writes a counter: what it is not given reads
// as empty.
type ExplainInput struct {
	// Counts are the event's counts (Set.Count): count() reads them, and
	// Counts.Values() then holds every value explain used. Nil: zero.
	Counts *Counts
	// Profiles are what profile() gives, by account, as a rule test's
	// profiles: do; an account not in it has no profile (the templates'
	// fallbacks show).
	Profiles map[string]actions.Profile
}

// ExplainWith is Explain with what in gives: the event's counts and the
// IM profiles its templates read.
func (s *Set) ExplainWith(ev *imevent.Event, in ExplainInput) []RuleTrace {
	counts := in.Counts
	sc := s.scratch.Get().(*scratch)
	defer s.scratch.Put(sc)
	le := &listEnv{src: s.lists}
	env := withLists(withBudget(envOf(ev), &sc.budget), le)
	if len(s.counters) > 0 {
		env[countsKey] = counts
	}
	sc.budget.begin(nil, &s.lim)
	out := make([]RuleTrace, 0, len(s.rules))
	for _, r := range s.rules {
		sc.budget.rule()
		var looked []ListValue
		le.trace = &looked
		t := s.explainRule(r, ev, env, sc, in.Profiles)
		t.Lists = looked
		out = append(out, t)
	}
	return out
}

func (s *Set) explainRule(r *rule, ev *imevent.Event, env map[string]any, sc *scratch, profiles map[string]actions.Profile) RuleTrace {
	t := RuleTrace{Rule: r.name, File: r.file, Line: r.line, On: r.on, Shadow: r.shadow, When: r.whenSrc, Warnings: r.warnings}
	if !r.covers(ev.CallbackCommand) {
		t.Status = StatusNotApplicable
		t.Reason = fmt.Sprintf("command %s is not in on [%s]", ev.CallbackCommand, strings.Join(r.on, ", "))
		return t
	}
	t.Operator, t.Conditions = s.conditions(r, env, sc)
	ok, err := r.evalWhen(&sc.budget, &sc.vm, env)
	switch {
	case err != nil:
		t.Status, t.Error, t.Reason = StatusError, err.Error(), "when failed at run time; counts as not matched"
	case !ok:
		t.Status, t.Reason = StatusNotMatched, notMatchedReason(t.Operator, t.Conditions)
	default:
		t.Status, t.Reason = StatusMatched, "when is true"
		if r.shadow {
			t.Reason = "when is true; shadow rule: its actions are not run"
		}
		// Explain never calls IM: profile() gives the profiles it was
		// given, and none for any other account (the templates' fallbacks).
		x := &evalCtx{ev: ev, vm: &sc.vm, sc: sc, env: env, profiles: func(account string) map[string]any { return profiles[account].Value() }}
		once, err := r.evalOnce(x)
		if err == nil && once != nil {
			t.Once = &OnceTrace{Key: once.Key, For: once.For.String()}
		}
		var acts []Action
		if err == nil {
			acts, err = r.renderActions(x)
		}
		if err != nil {
			t.Status, t.Error, t.Reason = StatusError, err.Error(), "failed at run time; counts as not matched"
			break
		}
		for i, a := range acts {
			t.Actions = append(t.Actions, r.actionTrace(i, a))
		}
		onceChecked(&t, acts, r.shadow || !r.enabled)
	}
	if !r.enabled {
		would := map[Status]string{
			StatusMatched:    "it would match",
			StatusNotMatched: "it would not match",
			StatusError:      "it would fail",
		}[t.Status]
		t.Status, t.Reason = StatusDisabled, "enabled: false; "+would
	}
	return t
}

// actionTrace is the i-th rendered action of r as explain and outcomes
// show it, secret and URL parameters redacted.
func (r *rule) actionTrace(i int, a Action) ActionTrace {
	return ActionTrace{
		Kind:     a.Kind,
		Params:   r.actions[i].spec.Redact(a.Params),
		Delay:    durationText(a.Delay),
		Retry:    RetryTrace{Attempts: a.Retry.Attempts, Backoff: a.Retry.Backoff.String(), MaxBackoff: a.Retry.MaxBackoff.String()},
		Sync:     a.Sync,
		CancelOn: a.Cancel.commands(),
	}
}

func durationText(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func notMatchedReason(op string, conds []Condition) string {
	if op == "" {
		return "when is false"
	}
	var failed []string
	for _, c := range conds {
		if b, ok := c.Value.(bool); c.Error != "" || (ok && !b) {
			failed = append(failed, c.Expr)
		}
	}
	if op == "||" {
		return "when is false: no alternative is true"
	}
	if len(failed) == 0 {
		return "when is false"
	}
	return "when is false; false: " + strings.Join(failed, "; ")
}

// conditions evaluates each top-level operand of r's when separately.
func (s *Set) conditions(r *rule, env map[string]any, sc *scratch) (string, []Condition) {
	if r.whenSrc == "" {
		return "", nil
	}
	e := s.explainProgsOf(r)
	if len(e.operands) == 0 {
		c := Condition{Expr: r.whenSrc}
		if v, err := r.evalWhen(&sc.budget, &sc.vm, env); err != nil {
			c.Error = err.Error()
		} else {
			c.Value = v
		}
		return "", []Condition{c}
	}
	out := make([]Condition, len(e.operands))
	for i, o := range e.operands {
		out[i] = Condition{Expr: o.src}
		if o.err != nil {
			out[i].Error = exprMessage(o.err)
			continue
		}
		v, err := sc.budget.run(&sc.vm, o.prog, env)
		if err != nil {
			out[i].Error = err.Error()
			continue
		}
		if jv, err := jsonValue(v); err == nil {
			out[i].Value = jv
		} else {
			out[i].Value = fmt.Sprint(v)
		}
	}
	return e.op, out
}

func (s *Set) explainProgsOf(r *rule) *explainProgs {
	r.explainOnce.Do(func() {
		e := &explainProgs{}
		if tree, err := parser.Parse(r.whenSrc); err == nil {
			op, nodes := splitTop(tree.Node)
			if len(nodes) > 1 {
				e.op = op
				for _, n := range nodes {
					src := n.String()
					prog, err := expr.Compile(src, s.exprOpts...)
					e.operands = append(e.operands, operand{src: src, prog: prog, err: err})
				}
			}
		}
		r.explain = e
	})
	return r.explain
}

// splitTop splits the top-level chain of && (and) or || (or) of n.
func splitTop(n ast.Node) (string, []ast.Node) {
	b, ok := n.(*ast.BinaryNode)
	if !ok {
		return "", []ast.Node{n}
	}
	switch b.Operator {
	case "&&", "and":
		return "&&", conjuncts(n)
	case "||", "or":
		return "||", disjuncts(n)
	}
	return "", []ast.Node{n}
}

func disjuncts(n ast.Node) []ast.Node {
	if b, ok := n.(*ast.BinaryNode); ok && (b.Operator == "||" || b.Operator == "or") {
		return append(disjuncts(b.Left), disjuncts(b.Right)...)
	}
	return []ast.Node{n}
}

// isSecret reports whether the top-level parameter name is secret or holds
// secret fields.
func isSecret(spec actions.Spec, name string) bool {
	for _, p := range spec.Params {
		if p.Name == name {
			return p.Secret || p.Type == actions.Object && hasSecret(p.Fields)
		}
	}
	return false
}

func hasSecret(decl []actions.Param) bool {
	for _, p := range decl {
		if p.Secret || hasSecret(p.Fields) {
			return true
		}
	}
	return false
}
