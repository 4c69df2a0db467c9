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
	walked := map[ast.Node]bool{}
	for _, b := range ll.loops {
		coll := ll.resolve(unwrapLoop(b.Arguments[0]))
		if n, ok := ll.rangeLen(coll); ok && n > maxLintRange {
			walked[coll] = true
			out = append(out, finding{code: CodeCostlyLoop, at: b.Location().From, msg: b.Name + "() walks a range of " +
				strconv.Itoa(n) + " numbers: a loop this long can pass the evaluation budget and fail the rule; walk the event's values instead"})
		}
	}
	for _, r := range ll.ranges {
		if walked[r] {
			continue
		}
		lo, hi := rangeBounds(r)
		n, ok := constRange(lo, hi)
		switch {
		case ok && n > maxLintRange:
			out = append(out, finding{code: CodeCostlyLoop, at: r.Location().From, msg: "the range has " + strconv.Itoa(n) +
				" numbers, built for every event (8 bytes and a step each): it can pass the evaluation budget and fail the rule; use a shorter range or a comparison"})
		case !ok && (callerDecides(lo) || callerDecides(hi)):
			out = append(out, finding{code: CodeCostlyLoop, at: r.Location().From, msg: "the caller decides the range's length " +
				"(EventTime makes it trillions of numbers): it can pass the evaluation budget and fail the rule; use constant bounds or a comparison"})
		}
	}
	return out
}

type loopLinter struct {
	loops  []*ast.BuiltinNode // builtins that take a predicate, in walk order
	ranges []ast.Node         // ranges built at run time (not those of x in a..b)
	inner  map[*ast.BuiltinNode]bool
	depth  map[*ast.BuiltinNode]int
	vars   map[string]ast.Node // let name = value (the last one of a name)
}

func (ll *loopLinter) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.VariableDeclaratorNode:
		ll.vars[n.Name] = n.Value
	case *ast.BuiltinNode:
		if len(predicates(n)) > 0 {
			ll.loops = append(ll.loops, n)
		}
	case *ast.CallNode:
		if callTo(n, rangeFn) != nil {
			ll.ranges = append(ll.ranges, n)
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
	return constRange(rangeBounds(ll.resolve(n)))
}

// resolve is the value of a let variable n, else n.
func (ll *loopLinter) resolve(n ast.Node) ast.Node {
	if id, ok := n.(*ast.IdentifierNode); ok {
		if v, ok := ll.vars[id.Value]; ok {
			return v
		}
	}
	return n
}

// callerDecides reports whether n reads a number the caller sends: an
// event field other than PairIndex and PairCount, which friendflow counts.
func callerDecides(n ast.Node) bool {
	var v fieldReader
	ast.Walk(&n, &v)
	return bool(v)
}

type fieldReader bool

func (v *fieldReader) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok && tableFields[id.Value] != nil && id.Value != "PairIndex" && id.Value != "PairCount" {
		*v = true
	}
}

// rangeBounds returns the bounds of a range a..b, as written or as
// growPatcher rewrote it; nil when n is no range.
func rangeBounds(n ast.Node) (lo, hi ast.Node) {
	if c := callTo(n, rangeFn); c != nil {
		return c.Arguments[1], c.Arguments[2]
	}
	if b, ok := n.(*ast.BinaryNode); ok && b.Operator == ".." {
		return b.Left, b.Right
	}
	return nil, nil
}

// constRange is the length of lo..hi when both are integer constants.
func constRange(lo, hi ast.Node) (int, bool) {
	l, lok := lo.(*ast.IntegerNode)
	h, hok := hi.(*ast.IntegerNode)
	if !lok || !hok {
		return 0, false
	}
	return max(h.Value-l.Value+1, 0), true
}
