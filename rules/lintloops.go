package rules

import (
	"strconv"

	"github.com/expr-lang/expr/ast"
)

// maxLintRange is the longest constant range a loop may walk without an
// FF005 warning: a thousand steps is already more than a callback's fields
// give any reason for.
const maxLintRange = 1000

// lintLoops finds the loops of a checked when whose cost grows faster than
// its text: a loop nested in another loop's predicate (reported once, at
// the outermost loop, with the depth), and a loop over a constant range
// longer than maxLintRange.
func lintLoops(root ast.Node) []finding {
	ll := &loopLinter{depth: map[*ast.BuiltinNode]int{}, vars: map[string]ast.Node{}}
	ast.Walk(&root, ll)
	for _, b := range ll.loops {
		ll.depthOf(b) // marks the inner loops
	}
	var out []finding
	for _, b := range ll.loops {
		if ll.inner[b] {
			continue
		}
		if d := ll.depthOf(b); d >= 2 {
			out = append(out, finding{code: CodeCostlyLoop, at: b.Location().From, msg: b.Name + "() holds loops nested " +
				strconv.Itoa(d) + " deep: its cost is the product of their lengths, and an evaluation over the budget (" +
				strconv.Itoa(DefaultEvalSteps) + " steps by default) fails the rule for that event; loop once, or over short lists"})
		}
	}
	for _, b := range ll.loops {
		if n, ok := ll.rangeLen(unwrapLoop(b.Arguments[0])); ok && n > maxLintRange {
			out = append(out, finding{code: CodeCostlyLoop, at: b.Location().From, msg: b.Name + "() walks a range of " +
				strconv.Itoa(n) + " numbers: a loop this long can pass the evaluation budget and fail the rule; walk the event's values instead"})
		}
	}
	return out
}

type loopLinter struct {
	loops []*ast.BuiltinNode // builtins that take a predicate, in walk order
	inner map[*ast.BuiltinNode]bool
	depth map[*ast.BuiltinNode]int
	vars  map[string]ast.Node // let name = value (the last one of a name)
}

func (ll *loopLinter) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.VariableDeclaratorNode:
		ll.vars[n.Name] = n.Value
	case *ast.BuiltinNode:
		if len(predicates(n)) > 0 {
			ll.loops = append(ll.loops, n)
		}
	}
}

// predicates returns the predicate arguments of a builtin.
func predicates(b *ast.BuiltinNode) []*ast.PredicateNode {
	var out []*ast.PredicateNode
	for _, a := range b.Arguments {
		if p, ok := a.(*ast.PredicateNode); ok {
			out = append(out, p)
		}
	}
	return out
}

// depthOf is 1 for a loop whose predicates hold no loop, else one more than
// the deepest loop inside them, which it marks inner.
func (ll *loopLinter) depthOf(b *ast.BuiltinNode) int {
	if d, ok := ll.depth[b]; ok {
		return d
	}
	d := 1
	for _, p := range predicates(b) {
		var found loopFinder
		ast.Walk(&p.Node, &found)
		for _, c := range found {
			if ll.inner == nil {
				ll.inner = map[*ast.BuiltinNode]bool{}
			}
			ll.inner[c] = true
			d = max(d, 1+ll.depthOf(c))
		}
	}
	ll.depth[b] = d
	return d
}

type loopFinder []*ast.BuiltinNode

func (f *loopFinder) Visit(node *ast.Node) {
	if b, ok := (*node).(*ast.BuiltinNode); ok && len(predicates(b)) > 0 {
		*f = append(*f, b)
	}
}

// rangeLen is the length of a constant range a..b, written in place or
// through a let variable.
func (ll *loopLinter) rangeLen(n ast.Node) (int, bool) {
	if id, ok := n.(*ast.IdentifierNode); ok {
		if v, ok := ll.vars[id.Value]; ok {
			n = v
		}
	}
	b, ok := n.(*ast.BinaryNode)
	if !ok || b.Operator != ".." {
		return 0, false
	}
	lo, lok := b.Left.(*ast.IntegerNode)
	hi, hok := b.Right.(*ast.IntegerNode)
	if !lok || !hok {
		return 0, false
	}
	return max(hi.Value-lo.Value+1, 0), true
}
