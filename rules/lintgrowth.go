package rules

import (
	"math"
	"strconv"

	"github.com/expr-lang/expr/ast"
)

// Growth lint: an expression whose strings grow faster than its text,
// such as `let v1 = v0 + v0; let v2 = v1 + v1; …` (each line doubles) or
// repeat(s, n) with a large or unknown n. The evaluation budget stops it
// (growth.go) at the rule's first megabyte, failing the rule; lint tells
// the author before that happens.
const (
	// nominalField is the size lint assumes for a field's value: twice
	// Tencent's longest UserID (32 bytes), as a caller can send.
	nominalField = 64
	// maxLintGrowth is the largest string an expression may build from
	// nominal fields without an FF006 warning: a sixteenth of the rule's
	// byte budget, eight times IM's 8000-byte message.
	maxLintGrowth = DefaultEvalBytes / 16
)

// lintGrowth estimates, bottom up, the largest string each node of a
// checked when can build from nominal fields, and reports the first
// growth (+, repeat, replace) past maxLintGrowth.
func lintGrowth(root ast.Node) []finding {
	var lets letValues
	ast.Walk(&root, &lets)
	g := &growthLinter{size: map[ast.Node]int{}, vars: lets}
	ast.Walk(&root, g)
	if g.at == nil {
		return nil
	}
	what := "this expression builds strings"
	if g.unknown {
		what = "repeat() with a count the event decides builds strings"
	}
	return []finding{{code: CodeGrowth, at: g.at.Location().From, msg: what + " of up to " + sizeText(g.size[g.at]) +
		" from " + strconv.Itoa(nominalField) + "-byte fields (each `let v = u + u` doubles): an evaluation past " +
		sizeText(DefaultEvalBytes) + " fails the rule for that event; build the text once, from the fields"}}
}

// letValues maps each let name to its value (the last of a name).
type letValues map[string]ast.Node

func (l *letValues) Visit(node *ast.Node) {
	if d, ok := (*node).(*ast.VariableDeclaratorNode); ok {
		if *l == nil {
			*l = letValues{}
		}
		(*l)[d.Name] = d.Value
	}
}

type growthLinter struct {
	size    map[ast.Node]int    // the estimates of the nodes visited
	vars    map[string]ast.Node // let name → value, visited before its uses
	at      ast.Node            // the first growth past the limit
	unknown bool                // at is repeat() with a count not constant
}

// Visit estimates n from its operands, visited before it.
func (g *growthLinter) Visit(node *ast.Node) {
	n := *node
	est, grows := g.estimate(n)
	g.size[n] = est
	if grows && est > maxLintGrowth && g.at == nil {
		g.at = n
	}
}

// estimate is n's largest string from nominal fields, and whether n is a
// growth (where strings are joined or repeated).
func (g *growthLinter) estimate(n ast.Node) (int, bool) {
	switch n := n.(type) {
	case *ast.StringNode:
		return len(n.Value), false
	case *ast.IdentifierNode:
		if v, ok := g.vars[n.Value]; ok {
			return g.of(v), false
		}
		return nominalField, false
	case *ast.VariableDeclaratorNode:
		return g.of(n.Expr), false
	case *ast.ConditionalNode:
		return max(g.of(n.Exp1), g.of(n.Exp2)), false
	case *ast.BinaryNode:
		if n.Operator == "+" {
			return satAdd(g.of(n.Left), g.of(n.Right)), true
		}
	case *ast.BuiltinNode:
		if growthBuiltins[n.Name] && len(n.Arguments) > 0 {
			return g.of(n.Arguments[0]), false
		}
	case *ast.CallNode:
		return g.call(n)
	}
	return nominalField, false
}

// call estimates the growth functions growPatcher put in.
func (g *growthLinter) call(c *ast.CallNode) (int, bool) {
	id, _ := c.Callee.(*ast.IdentifierNode)
	if id == nil {
		return nominalField, false
	}
	args := c.Arguments
	switch id.Value {
	case sizedFn:
		return g.of(args[1]), false
	case repeatFn:
		k, ok := args[2].(*ast.IntegerNode)
		if !ok {
			if g.at == nil {
				g.unknown = true
			}
			return math.MaxInt, true
		}
		return satMul(g.of(args[1]), k.Value), true
	case replaceFn:
		s, repl := g.of(args[1]), g.of(args[3])
		matches := s + 1
		if old, ok := args[2].(*ast.StringNode); ok && len(old.Value) > 0 {
			matches = s/len(old.Value) + 1
		}
		return satAdd(s, satMul(matches, repl)), true
	}
	return nominalField, false
}

// of is the estimate of a node already visited.
func (g *growthLinter) of(n ast.Node) int {
	if v, ok := g.size[n]; ok {
		return v
	}
	return nominalField
}

// sizeText is n bytes in the largest whole unit.
func sizeText(n int) string {
	switch {
	case n == math.MaxInt:
		return "any size"
	case n >= 1<<20:
		return strconv.Itoa(n>>20) + " MiB"
	case n >= 1<<10:
		return strconv.Itoa(n>>10) + " KiB"
	}
	return strconv.Itoa(n) + " bytes"
}
