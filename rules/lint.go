package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"gopkg.in/yaml.v3"

	"github.com/friendflow/friendflow/engine/imcallback"
)

// Lint: warnings about conditions that compile but cannot do what their
// author meant. A rule that never matches fails silently (no error, no dead
// letter), so the loader checks each when against what the field table
// knows of the protocol: which commands carry a field, and the values
// Tencent documents for it. Warnings never stop a rule from loading; a rule
// silences one with lint: {ignore: [CODE]}. The codes are stable: docs and
// operators' ignore lists name them.
const (
	// CodeOutsideDomain: a comparison with a value the field never takes.
	CodeOutsideDomain = "FF001"
	// CodeOneSpelling: a comparison with one spelling of values Tencent
	// sends interchangeably.
	CodeOneSpelling = "FF002"
	// CodeNotCarried: a field none of the rule's on commands carries, so
	// it always holds its zero value.
	CodeNotCarried = "FF003"
	// CodeConstant: a when that is always true or always false on every
	// command of on.
	CodeConstant = "FF004"
)

// lintCodes lists the codes lint: ignore accepts.
var lintCodes = []string{CodeOutsideDomain, CodeOneSpelling, CodeNotCarried, CodeConstant}

// finding is one warning inside a when; at is the rune offset in the
// expression where it points, as expr's nodes locate themselves.
type finding struct {
	code string
	at   int
	msg  string
}

// tableFields indexes imcallback.Fields by name, once: lint looks a field
// up for every identifier of every when.
var tableFields = func() map[string]*imcallback.Field {
	m := make(map[string]*imcallback.Field, len(imcallback.Fields))
	for i := range imcallback.Fields {
		m[imcallback.Fields[i].Name] = &imcallback.Fields[i]
	}
	return m
}()

// linter collects the findings of one when, compiled for the commands on.
type linter struct {
	on       []string
	found    []finding
	reported map[string]bool // fields already reported as not carried
}

// lintWhen checks the checked (not yet optimized) tree of a when for the
// commands on.
func lintWhen(root ast.Node, on []string) []finding {
	l := &linter{on: on}
	ast.Walk(&root, l)
	if v, ok := constantOn(root, on); ok {
		l.add(CodeConstant, 0, "%s", constantMsg(v, on))
	}
	slices.SortStableFunc(l.found, func(a, b finding) int { return a.at - b.at })
	return l.found
}

func (l *linter) add(code string, at int, format string, args ...any) {
	l.found = append(l.found, finding{code: code, at: at, msg: fmt.Sprintf(format, args...)})
}

// Visit implements ast.Visitor.
func (l *linter) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		l.carried(n)
	case *ast.BinaryNode:
		l.comparison(n)
	}
}

// carried reports an event field that no command of on carries.
func (l *linter) carried(n *ast.IdentifierNode) {
	f := tableFields[n.Value]
	if f == nil || l.reported[f.Name] || slices.ContainsFunc(l.on, f.Carries) {
		return
	}
	if l.reported == nil {
		l.reported = make(map[string]bool)
	}
	l.reported[f.Name] = true
	var carriers []string
	for _, c := range imcallback.Commands {
		if f.Carries(c) {
			carriers = append(carriers, c)
		}
	}
	l.add(CodeNotCarried, n.Location().From,
		"%s is not carried by %s, so it is always %s; only %s carries it: add it to on or compare another field",
		f.Name, cmdList(l.on), zeroText(f), strings.Join(carriers, ", "))
}

// comparison checks field == const, field != const, field in [consts] and
// field startsWith const (either operand order for == and !=).
func (l *linter) comparison(n *ast.BinaryNode) {
	switch n.Operator {
	case "==", "!=":
		f, c := fieldAndConst(n.Left, n.Right)
		if f == nil {
			f, c = fieldAndConst(n.Right, n.Left)
		}
		if f != nil {
			l.equal(f, c, n.Operator)
		}
	case "in":
		if f, _ := fieldAndConst(n.Left, nil); f != nil {
			l.in(f, n.Right)
		}
	case "startsWith":
		if f, c := fieldAndConst(n.Left, n.Right); f != nil {
			l.startsWith(f, c)
		}
	}
}

// fieldAndConst returns the table field x names and y as a literal, when x
// is an identifier of a field with a documented domain and y (unless nil)
// is a literal of the field's type.
func fieldAndConst(x, y ast.Node) (*imcallback.Field, ast.Node) {
	id, ok := x.(*ast.IdentifierNode)
	if !ok {
		return nil, nil
	}
	f := tableFields[id.Value]
	if f == nil || len(f.Values)+len(f.Ints) == 0 && f.Prefix == "" {
		return nil, nil
	}
	if y == nil {
		return f, nil
	}
	if _, ok := literal(f, y); !ok {
		return nil, nil
	}
	return f, y
}

// literal is n's value when n is a literal of f's type.
func literal(f *imcallback.Field, n ast.Node) (any, bool) {
	switch n := n.(type) {
	case *ast.StringNode:
		return n.Value, f.Type == "string"
	case *ast.IntegerNode:
		return n.Value, f.Type == "int"
	}
	return nil, false
}

// equal checks f op c, op being == or !=.
func (l *linter) equal(f *imcallback.Field, c ast.Node, op string) {
	v, _ := literal(f, c)
	if l.outside(f, v, c.Location().From) {
		return
	}
	if group := equivalents(f, v); group != nil {
		fix := "in"
		if op == "!=" {
			fix = "not in"
		}
		l.add(CodeOneSpelling, c.Location().From,
			"%s is %s for the same thing, and %s %s %q compares one spelling; use %s %s %s",
			f.Name, quoteOr(group), f.Name, op, v, f.Name, fix, quoteList(group))
	}
}

// in checks the literals of the list of f in [...].
func (l *linter) in(f *imcallback.Field, list ast.Node) {
	arr, ok := list.(*ast.ArrayNode)
	if !ok {
		return
	}
	var vals []any
	for _, el := range arr.Nodes {
		v, ok := literal(f, el)
		if !ok {
			return // not a list of literals: nothing to say about it
		}
		vals = append(vals, v)
		l.outside(f, v, el.Location().From)
	}
	for _, g := range f.Equivalent {
		missing := slices.DeleteFunc(slices.Clone(g), func(s string) bool { return slices.Contains(vals, any(s)) })
		if len(missing) > 0 && len(missing) < len(g) {
			l.add(CodeOneSpelling, arr.Location().From,
				"%s is %s for the same thing, and the list misses %s; add it", f.Name, quoteOr(g), quoteOr(missing))
		}
	}
}

// startsWith checks f startsWith c against f's values or prefix.
func (l *linter) startsWith(f *imcallback.Field, c ast.Node) {
	v, _ := literal(f, c)
	s, _ := v.(string)
	switch {
	case f.Prefix != "":
		if !strings.HasPrefix(s, f.Prefix) && !strings.HasPrefix(f.Prefix, s) {
			l.add(CodeOutsideDomain, c.Location().From,
				"%s always starts with %q, so it never starts with %q; use a prefix that starts with %q",
				f.Name, f.Prefix, s, f.Prefix)
		}
	case len(f.Values) > 0:
		if !slices.ContainsFunc(f.Values, func(x string) bool { return strings.HasPrefix(x, s) }) {
			l.add(CodeOutsideDomain, c.Location().From,
				"no documented %s starts with %q (%s is one of %s)", f.Name, s, f.Name, quoteList(f.Values))
		}
	}
}

// outside reports, at at, a value f never takes, and says whether it did.
func (l *linter) outside(f *imcallback.Field, v any, at int) bool {
	switch v := v.(type) {
	case string:
		if f.Prefix != "" && !strings.HasPrefix(v, f.Prefix) {
			l.add(CodeOutsideDomain, at, "%s always starts with %q, so it is never %q", f.Name, f.Prefix, v)
			return true
		}
		if len(f.Values) == 0 || slices.Contains(f.Values, v) {
			return false
		}
		hint := ""
		if best := closest(v, f.Values); best != "" {
			hint = fmt.Sprintf("; did you mean %q?", best)
		}
		l.add(CodeOutsideDomain, at, "%s is never %q: Tencent documents %s%s", f.Name, v, quoteList(f.Values), hint)
		return true
	case int:
		if len(f.Ints) == 0 || slices.Contains(f.Ints, v) {
			return false
		}
		l.add(CodeOutsideDomain, at, "%s is never %d: Tencent documents %s", f.Name, v, intList(f.Ints))
		return true
	}
	return false
}

// equivalents is v's group of equivalent spellings, nil when it has none.
func equivalents(f *imcallback.Field, v any) []string {
	s, ok := v.(string)
	if !ok {
		return nil
	}
	for _, g := range f.Equivalent {
		if slices.Contains(g, s) {
			return g
		}
	}
	return nil
}

func quoteList(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = strconv.Quote(v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func quoteOr(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, " or ")
}

func intList(vals []int) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = strconv.Itoa(v)
	}
	return strings.Join(q, " or ")
}

func zeroText(f *imcallback.Field) string {
	if f.Type == "int" {
		return "0"
	}
	return `""`
}

func cmdList(on []string) string {
	if len(on) == 1 {
		return on[0]
	}
	return "any of " + strings.Join(on, ", ")
}

func constantMsg(v bool, on []string) string {
	what := "it never matches"
	if v {
		what = "it matches every event"
	}
	return fmt.Sprintf("always %t on %s, so %s; check which fields the commands carry (docs/rules.md)", v, cmdList(on), what)
}

// constantOn reports whether the when root has the same value v on every
// command of on, judging only from what the decoder guarantees: a field a
// command does not carry is its zero value, a literal is itself. Anything
// else is unknown, so a constant found here is certain. A literal true or
// false is left alone: that is written on purpose.
func constantOn(root ast.Node, on []string) (v bool, ok bool) {
	if _, lit := root.(*ast.BoolNode); lit || len(on) == 0 {
		return false, false
	}
	for i, cmd := range on {
		got, known := foldNode(root, cmd)
		b, isBool := got.(bool)
		if !known || !isBool || i > 0 && b != v {
			return false, false
		}
		v = b
	}
	return v, true
}

// foldNode is n's value on cmd's events when it is known without an
// event: the value (bool, int or string) and true, else false.
func foldNode(n ast.Node, cmd string) (any, bool) {
	switch n := n.(type) {
	case *ast.BoolNode:
		return n.Value, true
	case *ast.IntegerNode:
		return n.Value, true
	case *ast.StringNode:
		return n.Value, true
	case *ast.IdentifierNode:
		return foldField(n.Value, cmd)
	case *ast.UnaryNode:
		return foldUnary(n, cmd)
	case *ast.BinaryNode:
		return foldBinary(n, cmd)
	}
	return nil, false
}

// foldField is the zero value of a field cmd does not carry.
func foldField(name, cmd string) (any, bool) {
	f := tableFields[name]
	if f == nil || f.Carries(cmd) {
		return nil, false
	}
	if f.Type == "int" {
		return 0, true
	}
	return "", true
}

func foldUnary(n *ast.UnaryNode, cmd string) (any, bool) {
	x, ok := foldNode(n.Node, cmd)
	b, isBool := x.(bool)
	if !ok || !isBool || n.Operator != "!" && n.Operator != "not" {
		return nil, false
	}
	return !b, true
}

// foldBinary folds the logical operators (one known operand can decide
// them), == and != between operands of one type, and in over a list of
// literals. Mixed types are left unknown: expr's rules for them (an int
// equals a float) are not worth reproducing here.
func foldBinary(n *ast.BinaryNode, cmd string) (any, bool) {
	switch n.Operator {
	case "&&", "and", "||", "or":
		return foldLogic(n, cmd)
	case "==", "!=":
		l, lok := foldNode(n.Left, cmd)
		r, rok := foldNode(n.Right, cmd)
		if !lok || !rok || !sameType(l, r) {
			return nil, false
		}
		return (l == r) == (n.Operator == "=="), true
	case "in":
		return foldIn(n, cmd)
	}
	return nil, false
}

func foldLogic(n *ast.BinaryNode, cmd string) (any, bool) {
	and := n.Operator == "&&" || n.Operator == "and"
	l, lok := foldNode(n.Left, cmd)
	r, rok := foldNode(n.Right, cmd)
	lb, lIsBool := l.(bool)
	rb, rIsBool := r.(bool)
	lok, rok = lok && lIsBool, rok && rIsBool
	// The operand that decides alone: false for &&, true for ||.
	if lok && lb != and || rok && rb != and {
		return !and, true
	}
	if lok && rok {
		return and, true
	}
	return nil, false
}

func foldIn(n *ast.BinaryNode, cmd string) (any, bool) {
	x, ok := foldNode(n.Left, cmd)
	arr, isArr := n.Right.(*ast.ArrayNode)
	if !ok || !isArr {
		return nil, false
	}
	for _, el := range arr.Nodes {
		v, ok := foldNode(el, cmd)
		if !ok || !sameType(v, x) {
			return nil, false
		}
		if v == x {
			return true, true
		}
	}
	return false, true
}

// sameType reports whether two folded values have one type.
func sameType(a, b any) bool {
	switch a.(type) {
	case bool:
		_, ok := b.(bool)
		return ok
	case int:
		_, ok := b.(int)
		return ok
	case string:
		_, ok := b.(string)
		return ok
	}
	return false
}

// findingPos is f's place in src as an expr error, for exprPos, which maps
// it into the rule file the way it maps compile errors.
func findingPos(src string, f finding) error {
	return (&file.Error{Location: file.Location{From: f.at, To: f.at}}).Bind(file.NewSource(src))
}

// parseLint reads a rule's lint: {ignore: [CODE, ...]}.
func (p *fileParser) parseLint(n *yaml.Node, what string) []string {
	what += ": lint"
	fields, ok := p.mapping(n, what, lintKeys)
	if !ok {
		return nil
	}
	var ignore []string
	if kv, ok := fields["ignore"]; ok {
		p.eachItem(kv.val, what, "ignore", "code", func(item *yaml.Node, w string) {
			code, ok := p.scalarString(item, w)
			switch {
			case !ok:
			case !slices.Contains(lintCodes, code):
				p.errAt(resolve(item), "%s: unknown warning code %q%s", what, code, suggestion(code, lintCodes))
			default:
				ignore = append(ignore, code)
			}
		})
	}
	return ignore
}

// warn records the rule's pending warnings but those it ignores.
func (p *fileParser) warn(r *rule, ignore []string) {
	for _, w := range p.pending {
		if !slices.Contains(ignore, w.Code) {
			r.warnings = append(r.warnings, w)
			p.l.warnings = append(p.l.warnings, w)
		}
	}
	p.pending = nil
}

// Warnings lists the lint warnings of every rule, in file and position
// order. A rule loads despite its warnings; `friendflow lint --strict`
// fails on them.
func (s *Set) Warnings() []Problem {
	return append([]Problem(nil), s.warnings...)
}
