package rules

import (
	"regexp"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/friendflow/friendflow/rules/imevent"
)

// The fast path: expressions of a small subset of expr compiled to Go
// closures over *Event. Running a condition in expr's VM needs the event as
// a map[string]any, and filling that map (boxing every field) costs more
// than evaluating the conditions operators write; a closure reads the
// field and compares. Every construct accepted here reproduces expr
// v1.17.8's result exactly and cannot fail at run time; anything else
// (function calls, member access, floats, nil, conditionals, let, ...)
// leaves the expression to the VM. TestFastMatchesVM and FuzzFastMatchesVM
// hold the two to the same answers.

// fkind is the type of a fast expression's value.
type fkind uint8

const (
	fkBool fkind = iota + 1
	fkInt
	fkString
)

// fexpr is a compiled fast expression: the closure of its kind is set.
type fexpr struct {
	kind fkind
	b    func(*imevent.Event) bool
	i    func(*imevent.Event) int
	s    func(*imevent.Event) string
	// konst: a literal (or a negated one); its value is cb, ci or cs.
	// Operators whose operand must be constant (the list of in) need it.
	konst bool
	cb    bool
	ci    int
	cs    string
}

// eventField reads one field of an Event without the environment map.
// eventFieldOf, generated into fields_gen.go, gives each field's reader.
type eventField struct {
	kind fkind
	str  func(*imevent.Event) string
	num  func(*imevent.Event) int
}

// fastCond compiles a when; nil when it must run in the VM.
func fastCond(n ast.Node) func(*imevent.Event) bool {
	x, ok := fastCompile(n)
	if !ok || x.kind != fkBool {
		return nil
	}
	return x.b
}

// fastCompile compiles n, or reports false when n is outside the subset.
// Types are the operands' own, never converted: expr would compare an int
// with a float numerically and a string with an int as unequal, and the
// subset stays out of both.
func fastCompile(n ast.Node) (fexpr, bool) {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		f, ok := eventFieldOf(n.Value)
		if !ok {
			return fexpr{}, false
		}
		return fexpr{kind: f.kind, s: f.str, i: f.num}, true
	case *ast.StringNode:
		return constString(n.Value), true
	case *ast.IntegerNode:
		return constInt(n.Value), true
	case *ast.BoolNode:
		return constBool(n.Value), true
	case *ast.UnaryNode:
		return fastUnary(n)
	case *ast.BinaryNode:
		return fastBinary(n)
	case *ast.CallNode:
		if callTo(n, inListFn) != nil {
			return fastInList(n)
		}
	}
	return fexpr{}, false
}

func constString(v string) fexpr {
	return fexpr{kind: fkString, konst: true, cs: v, s: func(*imevent.Event) string { return v }}
}

func constInt(v int) fexpr {
	return fexpr{kind: fkInt, konst: true, ci: v, i: func(*imevent.Event) int { return v }}
}

func constBool(v bool) fexpr {
	return fexpr{kind: fkBool, konst: true, cb: v, b: func(*imevent.Event) bool { return v }}
}

func boolExpr(f func(*imevent.Event) bool) (fexpr, bool) { return fexpr{kind: fkBool, b: f}, true }

func fastUnary(n *ast.UnaryNode) (fexpr, bool) {
	x, ok := fastCompile(n.Node)
	if !ok {
		return fexpr{}, false
	}
	switch {
	case (n.Operator == "!" || n.Operator == "not") && x.kind == fkBool:
		if x.konst {
			return constBool(!x.cb), true
		}
		b := x.b
		return boolExpr(func(e *imevent.Event) bool { return !b(e) })
	case n.Operator == "-" && x.kind == fkInt:
		// Go's wrapping negation, as runtime.Negate does for an int.
		if x.konst {
			return constInt(-x.ci), true
		}
		i := x.i
		return fexpr{kind: fkInt, i: func(e *imevent.Event) int { return -i(e) }}, true
	case n.Operator == "+" && x.kind == fkInt:
		return x, true
	}
	return fexpr{}, false
}

func fastBinary(n *ast.BinaryNode) (fexpr, bool) {
	l, ok := fastCompile(n.Left)
	if !ok {
		return fexpr{}, false
	}
	switch n.Operator {
	case "in":
		return fastIn(l, n.Right)
	case "matches":
		return fastMatches(l, n.Right)
	}
	r, ok := fastCompile(n.Right)
	if !ok {
		return fexpr{}, false
	}
	return fastOperator(n.Operator, l, r)
}

// fastMatches compiles `l matches "pattern"`. Only a literal pattern: expr
// compiles it once, at load, and a pattern computed per event could fail
// at run time.
func fastMatches(l fexpr, pattern ast.Node) (fexpr, bool) {
	p, ok := pattern.(*ast.StringNode)
	if !ok || l.kind != fkString {
		return fexpr{}, false
	}
	// regexp.Compile, as expr's compiler does for a literal pattern.
	re, err := regexp.Compile(p.Value)
	if err != nil {
		return fexpr{}, false
	}
	s := l.s
	return boolExpr(func(e *imevent.Event) bool { return re.MatchString(s(e)) })
}

// fastOperator compiles a binary operator other than in and matches, both
// of whose operands compiled.
func fastOperator(op string, l, r fexpr) (fexpr, bool) {
	switch op {
	case "&&", "and", "||", "or":
		return fastLogic(op, l, r)
	case "==":
		return fastEqual(l, r, false)
	case "!=":
		return fastEqual(l, r, true)
	case "<", "<=", ">", ">=":
		if l.kind != fkInt || r.kind != fkInt {
			return fexpr{}, false
		}
		return fastCompare(op, l, r)
	case "+":
		return fastConcat(l, r)
	case "contains", "startsWith", "endsWith":
		if l.kind != fkString || r.kind != fkString {
			return fexpr{}, false
		}
		return fastStringOp(op, l, r)
	}
	return fexpr{}, false
}

// fastLogic compiles && (and) or || (or) between two booleans, each
// short-circuiting as in expr.
func fastLogic(op string, l, r fexpr) (fexpr, bool) {
	if l.kind != fkBool || r.kind != fkBool {
		return fexpr{}, false
	}
	lb, rb := l.b, r.b
	if op == "&&" || op == "and" {
		return boolExpr(func(e *imevent.Event) bool { return lb(e) && rb(e) })
	}
	return boolExpr(func(e *imevent.Event) bool { return lb(e) || rb(e) })
}

// fastConcat compiles + between strings only (once keys join accounts);
// arithmetic is left to the VM with its overflow and int/float rules.
func fastConcat(l, r fexpr) (fexpr, bool) {
	if l.kind != fkString || r.kind != fkString {
		return fexpr{}, false
	}
	ls, rs := l.s, r.s
	return fexpr{kind: fkString, s: func(e *imevent.Event) string { return ls(e) + rs(e) }}, true
}

// fastEqual compiles == (neg false) or != (neg true) between operands of
// one type, where expr's == is Go's.
func fastEqual(l, r fexpr, neg bool) (fexpr, bool) {
	if l.kind != r.kind {
		return fexpr{}, false
	}
	if l.konst && !r.konst { // keep the constant on the right
		l, r = r, l
	}
	switch l.kind {
	case fkString:
		ls := l.s
		if r.konst {
			c := r.cs
			return boolExpr(func(e *imevent.Event) bool { return (ls(e) == c) != neg })
		}
		rs := r.s
		return boolExpr(func(e *imevent.Event) bool { return (ls(e) == rs(e)) != neg })
	case fkInt:
		li := l.i
		if r.konst {
			c := r.ci
			return boolExpr(func(e *imevent.Event) bool { return (li(e) == c) != neg })
		}
		ri := r.i
		return boolExpr(func(e *imevent.Event) bool { return (li(e) == ri(e)) != neg })
	case fkBool:
		lb, rb := l.b, r.b
		return boolExpr(func(e *imevent.Event) bool { return (lb(e) == rb(e)) != neg })
	}
	return fexpr{}, false
}

func fastCompare(op string, l, r fexpr) (fexpr, bool) {
	li := l.i
	if r.konst {
		c := r.ci
		switch op {
		case "<":
			return boolExpr(func(e *imevent.Event) bool { return li(e) < c })
		case "<=":
			return boolExpr(func(e *imevent.Event) bool { return li(e) <= c })
		case ">":
			return boolExpr(func(e *imevent.Event) bool { return li(e) > c })
		case ">=":
			return boolExpr(func(e *imevent.Event) bool { return li(e) >= c })
		}
		return fexpr{}, false
	}
	ri := r.i
	switch op {
	case "<":
		return boolExpr(func(e *imevent.Event) bool { return li(e) < ri(e) })
	case "<=":
		return boolExpr(func(e *imevent.Event) bool { return li(e) <= ri(e) })
	case ">":
		return boolExpr(func(e *imevent.Event) bool { return li(e) > ri(e) })
	case ">=":
		return boolExpr(func(e *imevent.Event) bool { return li(e) >= ri(e) })
	}
	return fexpr{}, false
}

func fastStringOp(op string, l, r fexpr) (fexpr, bool) {
	var f func(s, sub string) bool
	switch op {
	case "contains":
		f = strings.Contains
	case "startsWith":
		f = strings.HasPrefix
	case "endsWith":
		f = strings.HasSuffix
	default:
		return fexpr{}, false
	}
	ls := l.s
	if r.konst {
		c := r.cs
		return boolExpr(func(e *imevent.Event) bool { return f(ls(e), c) })
	}
	rs := r.s
	return boolExpr(func(e *imevent.Event) bool { return f(ls(e), rs(e)) })
}

// smallList is the longest in-list searched by scanning: below it a scan
// of a few strings beats hashing the needle.
const smallList = 8

// fastIn compiles `l in [constants]` with every constant of l's type. expr
// compares each element with == (or looks the value up in a map built from
// the list), which for one type is Go's ==.
func fastIn(l fexpr, list ast.Node) (fexpr, bool) {
	arr, ok := list.(*ast.ArrayNode)
	if !ok || (l.kind != fkString && l.kind != fkInt) {
		return fexpr{}, false
	}
	var strs []string
	var nums []int
	for _, n := range arr.Nodes {
		x, ok := fastCompile(n)
		if !ok || !x.konst || x.kind != l.kind {
			return fexpr{}, false
		}
		strs = append(strs, x.cs)
		nums = append(nums, x.ci)
	}
	if l.kind == fkString {
		ls := l.s
		if len(strs) > smallList {
			set := make(map[string]struct{}, len(strs))
			for _, v := range strs {
				set[v] = struct{}{}
			}
			return boolExpr(func(e *imevent.Event) bool { _, ok := set[ls(e)]; return ok })
		}
		return boolExpr(func(e *imevent.Event) bool {
			v := ls(e)
			for _, c := range strs {
				if v == c {
					return true
				}
			}
			return false
		})
	}
	li := l.i
	if len(nums) > smallList {
		set := make(map[int]struct{}, len(nums))
		for _, v := range nums {
			set[v] = struct{}{}
		}
		return boolExpr(func(e *imevent.Event) bool { _, ok := set[li(e)]; return ok })
	}
	return boolExpr(func(e *imevent.Event) bool {
		v := li(e)
		for _, c := range nums {
			if v == c {
				return true
			}
		}
		return false
	})
}
