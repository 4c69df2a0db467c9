package rules

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/vm"
)

// Evaluation budget. An expression without loops costs at most its size,
// which expr bounds at compile time (expr.MaxNodes); only the builtins that
// run a predicate over a collection (all, any, filter, map, reduce, …) can
// cost more than they read, and nested, they multiply: three nested all()
// over 1..999 are a billion steps. expr's VM counts memory
// (vm.VM.MemoryBudget: ranges, the arrays map and filter build) but only
// per run, has no step or time limit and does not poll a context, so the
// loader adds a budget: every collection a predicate builtin is about to
// walk first passes through loopFn, which charges the evaluation its length
// times the size of the predicate; every program run charges its size;
// every range and every string or list a builtin or + builds is charged
// its bytes before it is built (growth.go). Charges fail the evaluation
// once they pass the rule's share (EvalSteps, EvalBytes), and every
// evaluation of a callback once the callback's together pass its budget
// (CallbackSteps, CallbackBytes) or its deadline passes (Set.NewBudget):
// a 1000-pair callback costs at most one callback's budget, not a thousand
// rules' budgets. The charge comes before the work, so a loop over budget
// never starts, and an expression without loops, ranges or growth costs
// one addition more.
const (
	// DefaultEvalSteps is about 2 ms of evaluation at its worst (measured
	// with BenchmarkEvalBudgetExhausted): far more than a rule looping
	// over a callback's few fields needs, far less than a callback's
	// deadline.
	DefaultEvalSteps = 100_000
	// DefaultEvalMemory is expr's own default memory budget (its
	// conf.DefaultMemoryBudget): a range or built array counts one per
	// element.
	DefaultEvalMemory uint = 1_000_000
	// DefaultEvalBytes bounds the strings, lists and ranges one rule's
	// evaluation for one event builds: a message is at most 8000 bytes
	// (IM's limit), so a megabyte is generous, and twenty callbacks
	// evaluating at once hold a few tens of megabytes at most.
	DefaultEvalBytes = 1 << 20
	// DefaultCallbackSteps bounds the steps of every evaluation of one
	// callback together: about 200 ms at the worst 20 ns a step, inside
	// Tencent's 2 s even for twenty callbacks sharing two cores' worth of
	// time slices, and 100 steps for each of 1000 pairs × 100 rules.
	DefaultCallbackSteps = 10_000_000
	// DefaultCallbackBytes bounds the bytes every evaluation of one
	// callback builds together (each is garbage once its rule is done, so
	// this bounds time, not memory: tens of milliseconds of copying).
	DefaultCallbackBytes = 16 << 20
	// deadlineEvery is how many steps pass between readings of the clock
	// against a budget's deadline: a few microseconds of evaluation.
	deadlineEvery = 1024
)

// ErrEvalBudget is wrapped by the RuleError of a rule whose evaluation
// passed its budget (Options.EvalSteps, EvalBytes) or its callback's
// (Options.CallbackSteps, CallbackBytes, the deadline of Set.NewBudget).
var ErrEvalBudget = errors.New("evaluation budget exceeded")

// ErrCallbackBudget is wrapped, with ErrEvalBudget, by the RuleError of
// every evaluation after its callback's budget was spent: one callback
// reports it for many rules and events, and the engine logs it once.
var ErrCallbackBudget = fmt.Errorf("%w: the callback's budget is spent", ErrEvalBudget)

const (
	// loopFn and budgetKey cannot be written in an expression (expr's
	// names hold no space), so no rule can call the one or read the other
	// by name.
	loopFn    = "ff loop"
	budgetKey = "ff budget"
)

// Budget is the evaluation budget of one callback: every rule's
// evaluation for every event of the callback draws on it (Set.MatchBudget).
// Once spent, every later evaluation that needs expr's VM fails at once
// with ErrCallbackBudget; conditions on the fast path, which cost a few
// comparisons, still run. A Budget is for one goroutine.
type Budget struct {
	steps, maxSteps int
	bytes, maxBytes int
	deadline        time.Time // zero: none
	checkAt         int       // steps at which the clock is next read
	err             error     // why it is spent; nil while it is not
}

// NewBudget returns the budget of one callback whose evaluations must end
// by deadline (zero: only the step and byte limits apply): a decision that
// answers at its timeout must not go on burning CPU for a reply nobody
// reads.
func (s *Set) NewBudget(deadline time.Time) *Budget {
	b := new(Budget)
	s.ResetBudget(b, deadline)
	return b
}

// ResetBudget makes *b what NewBudget(deadline) returns, in place: the
// engine keeps an after-callback's budget in memory it reuses.
func (s *Set) ResetBudget(b *Budget, deadline time.Time) {
	*b = Budget{maxSteps: s.lim.callbackSteps, maxBytes: s.lim.callbackBytes, deadline: deadline}
}

// Err is why the budget is spent (wrapping ErrCallbackBudget); nil while
// it is not.
func (b *Budget) Err() error { return b.err }

// Used is what the callback's evaluations cost so far.
func (b *Budget) Used() (steps, bytes int) { return b.steps, b.bytes }

func (b *Budget) charge(steps, bytes int) error {
	if b.err != nil {
		return b.err
	}
	b.steps += steps
	b.bytes += bytes
	switch {
	case b.steps > b.maxSteps:
		b.err = fmt.Errorf("%w: its evaluations passed %d steps together", ErrCallbackBudget, b.maxSteps)
	case b.bytes > b.maxBytes:
		b.err = fmt.Errorf("%w: its evaluations built more than %d bytes together", ErrCallbackBudget, b.maxBytes)
	case b.steps >= b.checkAt && !b.deadline.IsZero():
		b.checkAt = b.steps + deadlineEvery
		if time.Now().After(b.deadline) {
			b.err = fmt.Errorf("%w: its reply deadline passed", ErrCallbackBudget)
		}
	}
	return b.err
}

// evalBudget is the budget of one rule's evaluation for one event, which
// draws on its callback's. The environment map carries it under
// budgetKey.
type evalBudget struct {
	steps, maxSteps int
	bytes, maxBytes int
	cb              *Budget // the callback's; never nil during an evaluation
	own             Budget  // cb when the caller gave none: one event's
}

// begin starts the evaluations of one event, drawing on cb, or on a
// budget of their own when cb is nil.
func (b *evalBudget) begin(cb *Budget, lim *limits) {
	if cb == nil {
		b.own = Budget{maxSteps: lim.callbackSteps, maxBytes: lim.callbackBytes}
		cb = &b.own
	}
	b.cb = cb
}

// rule starts the evaluation of one rule: each has its whole share.
func (b *evalBudget) rule() { b.steps, b.bytes = 0, 0 }

func (b *evalBudget) spend(steps, bytes int) error {
	b.steps += steps
	b.bytes += bytes
	if b.steps > b.maxSteps {
		return fmt.Errorf("%w: more than %d steps (loops over collections weighted by the size of their predicates, ranges, programs run)", ErrEvalBudget, b.maxSteps)
	}
	if b.bytes > b.maxBytes {
		return fmt.Errorf("%w: more than %d bytes of strings, lists and ranges built", ErrEvalBudget, b.maxBytes)
	}
	return b.cb.charge(steps, bytes)
}

// run runs p in m, charging its size first: a program without loops costs
// about its size, and a callback of many events runs many.
func (b *evalBudget) run(m *vm.VM, p *vm.Program, env map[string]any) (any, error) {
	if err := b.spend(len(p.Bytecode), 0); err != nil {
		return nil, err
	}
	return m.Run(p, env)
}

// withBudget installs b in env, the environment of an evaluation.
func withBudget(env map[string]any, b *evalBudget) map[string]any {
	env[budgetKey] = b
	return env
}

// budgetOf is the budget an evaluation's environment carries.
func budgetOf(env any) (*evalBudget, error) {
	m, _ := env.(map[string]any)
	b, _ := m[budgetKey].(*evalBudget)
	if b == nil || b.cb == nil {
		// Every evaluation installs a budget (withBudget); one without is
		// a bug, which must not turn into unbounded work.
		return nil, fmt.Errorf("%w: no budget installed", ErrEvalBudget)
	}
	return b, nil
}

// budgetOptions are the expr options that meter loops: the loopFn function
// and the patch that routes every predicate builtin's collection through
// it.
func budgetOptions() []expr.Option {
	fn := &builtin.Function{
		Name: loopFn,
		Func: loopStep,
		// The collection passes through unchanged, and so does its type
		// (see loopPatcher), so # stays typed and type errors in a
		// predicate stay load errors. This is for an untyped collection.
		Validate: func(args []reflect.Type) (reflect.Type, error) {
			if len(args) != 3 {
				return nil, fmt.Errorf("%s: want 3 arguments", loopFn)
			}
			return args[1], nil
		},
	}
	opts := []expr.Option{
		func(c *conf.Config) { c.Functions[loopFn] = fn },
		// Growth first: it rewrites ranges, and loopPatcher then wraps
		// the rewritten collection.
		expr.Patch(growPatcher{}),
		expr.Patch(loopPatcher{}),
	}
	return append(opts, growthFunctions()...)
}

// loopStep(env, collection, weight) charges env's budget for walking the
// collection with a predicate of weight nodes and returns the collection.
func loopStep(args ...any) (any, error) {
	b, err := budgetOf(args[0])
	if err != nil {
		return nil, err
	}
	weight, _ := args[2].(int)
	if err := b.spend((collectionLen(args[1])+1)*weight, 0); err != nil {
		return nil, err
	}
	return args[1], nil
}

func collectionLen(v any) int {
	switch c := v.(type) {
	case []int:
		return len(c)
	case []any:
		return len(c)
	case []string:
		return len(c)
	case nil:
		return 0
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map, reflect.String, reflect.Chan:
		return rv.Len()
	}
	return 0
}

// loopPatcher wraps the collection argument of every builtin that takes a
// predicate in a call of loopFn.
type loopPatcher struct{}

func (loopPatcher) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BuiltinNode)
	if !ok || len(b.Arguments) < 2 || isLoopCall(b.Arguments[0]) {
		return
	}
	weight := 0
	for _, p := range predicates(b) {
		weight += nodeCount(p.Node)
	}
	if weight == 0 {
		return
	}
	coll := b.Arguments[0]
	env := &ast.IdentifierNode{Value: "$env"}
	w := &ast.IntegerNode{Value: weight}
	call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: loopFn}, Arguments: []ast.Node{env, coll, w}}
	for _, n := range []ast.Node{env, w, call.Callee, call} {
		n.SetLocation(coll.Location())
	}
	// The checker has typed the tree before it runs patches, and takes a
	// call's nature as set when it knows a type: so the collection's
	// nature (element types, a map's fields) passes through whole.
	call.SetNature(*coll.Nature())
	b.Arguments[0] = call
}

// isLoopCall reports whether n is a collection loopPatcher wrapped.
func isLoopCall(n ast.Node) bool { return callTo(n, loopFn) != nil }

// unwrapLoop returns the collection a loopFn call wraps, or n.
func unwrapLoop(n ast.Node) ast.Node {
	if c := callTo(n, loopFn); c != nil {
		return c.Arguments[1]
	}
	return n
}

// callTo returns n when it is a call of the function named name, else nil.
func callTo(n ast.Node, name string) *ast.CallNode {
	c, ok := n.(*ast.CallNode)
	if !ok {
		return nil
	}
	if id, ok := c.Callee.(*ast.IdentifierNode); !ok || id.Value != name {
		return nil
	}
	return c
}

type counter int

func (c *counter) Visit(*ast.Node) { *c++ }

func nodeCount(n ast.Node) int {
	var c counter
	ast.Walk(&n, &c)
	return int(c)
}
