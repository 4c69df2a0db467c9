package rules

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
)

// Evaluation budget. An expression without loops costs at most its size,
// which expr bounds at compile time (expr.MaxNodes); only the builtins that
// run a predicate over a collection (all, any, filter, map, reduce, …) can
// cost more than they read, and nested, they multiply: three nested all()
// over 1..999 are a billion steps. expr's VM counts memory
// (vm.VM.MemoryBudget: ranges, the arrays map and filter build) but has no
// step or time limit and does not poll a context, so the loader adds one:
// every collection a predicate builtin is about to walk first passes
// through loopFn, which charges the evaluation its length times the size of
// the predicate, and fails it once the charges pass the budget. The charge
// comes before the walk, so a loop over budget never starts, and an
// expression without predicates costs nothing more.
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
)

// ErrEvalBudget is wrapped by the RuleError of a rule whose evaluation
// passed its step budget (Options.EvalSteps).
var ErrEvalBudget = errors.New("evaluation budget exceeded")

const (
	// loopFn and budgetKey cannot be written in an expression (expr's
	// names hold no space), so no rule can call the one or read the other
	// by name.
	loopFn    = "ff loop"
	budgetKey = "ff budget"
)

// evalBudget is the step budget of one rule's evaluation for one event.
// The environment map carries it under budgetKey.
type evalBudget struct {
	max, used int
}

func (b *evalBudget) spend(n int) error {
	b.used += n
	if b.used > b.max {
		return fmt.Errorf("%w: more than %d steps (loops over collections, weighted by the size of their predicates)", ErrEvalBudget, b.max)
	}
	return nil
}

// withBudget installs b in env, the environment of an evaluation.
func withBudget(env map[string]any, b *evalBudget) map[string]any {
	env[budgetKey] = b
	return env
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
	return []expr.Option{
		func(c *conf.Config) { c.Functions[loopFn] = fn },
		expr.Patch(loopPatcher{}),
	}
}

// loopStep(env, collection, weight) charges env's budget for walking the
// collection with a predicate of weight nodes and returns the collection.
func loopStep(args ...any) (any, error) {
	env, _ := args[0].(map[string]any)
	b, _ := env[budgetKey].(*evalBudget)
	if b == nil {
		// Every evaluation installs a budget (withBudget); one without is
		// a bug, which must not turn into an unbounded loop.
		return nil, fmt.Errorf("%w: no budget installed", ErrEvalBudget)
	}
	weight, _ := args[2].(int)
	if err := b.spend((collectionLen(args[1]) + 1) * weight); err != nil {
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
