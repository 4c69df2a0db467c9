package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/friendflow/friendflow/rules/imevent"
	"go.yaml.in/yaml/v3"
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
	// CodeCostlyLoop: loops (all, any, filter, map, …) nested in another
	// loop's predicate, or over a long constant range, and long ranges or
	// ranges whose length the caller decides: the cost is the product of
	// the lengths, and an evaluation over budget fails.
	CodeCostlyLoop = "FF005"
	// CodeGrowth: strings that grow faster than the expression's text
	// (a let that doubles another, repeat with a large or unknown count):
	// an evaluation that builds too much fails.
	CodeGrowth = "FF006"
	// CodeCallbackLoop: an action whose own request IM calls back with a
	// command the rule is on (im.friend_add on Sns.CallbackFriendAdd),
	// under a when that does not exclude the events an admin caused
	// (Admin_Account): the rule can answer its own callbacks.
	CodeCallbackLoop = "FF007"
)

// lintCodes lists the codes lint: ignore accepts.
var lintCodes = []string{CodeOutsideDomain, CodeOneSpelling, CodeNotCarried, CodeConstant, CodeCostlyLoop, CodeGrowth, CodeCallbackLoop}

// finding is one warning inside a when; at is the rune offset in the
// expression where it points, as expr's nodes locate themselves.
type finding struct {
	code string
	at   int
	msg  string
}

// tableFields indexes imevent.Fields by name, once: lint looks a field
// up for every identifier of every when.
var tableFields = func() map[string]*imevent.Field {
	m := make(map[string]*imevent.Field, len(imevent.Fields))
	for i := range imevent.Fields {
		m[imevent.Fields[i].Name] = &imevent.Fields[i]
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
		l.add(CodeConstant, 0, constantMsg(v, on))
	}
	l.found = append(l.found, lintLoops(root)...)
	l.found = append(l.found, lintGrowth(root)...)
	slices.SortStableFunc(l.found, func(a, b finding) int { return a.at - b.at })
	return l.found
}

// add records a finding. Messages are concatenated, not formatted: a load
// of many rules that share one mistake formats one message per rule.
func (l *linter) add(code string, at int, msg string) {
	l.found = append(l.found, finding{code: code, at: at, msg: msg})
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
	for _, c := range imevent.Commands {
		if f.Carries(c) {
			carriers = append(carriers, c)
		}
	}
	l.add(CodeNotCarried, n.Location().From, f.Name+" is not carried by "+cmdList(l.on)+", so it is always "+zeroText(f)+
		"; only "+strings.Join(carriers, ", ")+" carries it: add it to on or compare another field")
}

// comparison checks field == const, field != const, field in [consts] and
// field startsWith const (either operand order for == and !=).
func (l *linter) comparison(n *ast.BinaryNode) {
	switch n.Operator {
	case "==", "!=":
		f, v := fieldAndConst(n.Left, n.Right)
		if f == nil {
			f, v = fieldAndConst(n.Right, n.Left)
		}
		if f != nil {
			l.equal(f, v, n.Operator)
		}
	case "in":
		if f, _ := fieldAndConst(n.Left, nil); f != nil {
			l.in(f, n.Right)
		}
	case "startsWith":
		if f, v := fieldAndConst(n.Left, n.Right); f != nil {
			l.startsWith(f, v)
		}
	}
}

// fieldAndConst returns the table field x names and y as a literal, when x
// is an identifier of a field with a documented domain and y (unless nil)
// is a literal of the field's type.
func fieldAndConst(x, y ast.Node) (*imevent.Field, value) {
	id, ok := x.(*ast.IdentifierNode)
	if !ok {
		return nil, value{}
	}
	f := tableFields[id.Value]
	if f == nil || len(f.Values)+len(f.Ints) == 0 && f.Prefix == "" {
		return nil, value{}
	}
	if y == nil {
		return f, value{}
	}
	v, ok := literal(f, y)
	if !ok {
		return nil, value{}
	}
	return f, v
}

// value is a literal's value, or an operand's folded value: a struct, not
// an interface, so that linting a condition allocates nothing for it.
type value struct {
	kind fkind
	b    bool
	i    int
	s    string
	at   int // a literal's rune offset in the expression
}

// literal is n's value when n is a literal of f's type.
func literal(f *imevent.Field, n ast.Node) (value, bool) {
	switch n := n.(type) {
	case *ast.StringNode:
		return value{kind: fkString, s: n.Value, at: n.Location().From}, f.Type == "string"
	case *ast.IntegerNode:
		return value{kind: fkInt, i: n.Value, at: n.Location().From}, f.Type == "int"
	}
	return value{}, false
}

// equal checks f op v, op being == or !=.
func (l *linter) equal(f *imevent.Field, v value, op string) {
	if l.outside(f, v) {
		return
	}
	if group := equivalents(f, v.s); group != nil {
		fix := "in"
		if op == "!=" {
			fix = "not in"
		}
		l.add(CodeOneSpelling, v.at, f.Name+" is "+quoteOr(group)+" for the same thing, and "+f.Name+" "+op+" "+strconv.Quote(v.s)+
			" compares one spelling; use "+f.Name+" "+fix+" "+quoteList(group))
	}
}

// in checks the literals of the list of f in [...].
func (l *linter) in(f *imevent.Field, list ast.Node) {
	arr, ok := list.(*ast.ArrayNode)
	if !ok {
		return
	}
	for _, el := range arr.Nodes {
		if _, ok := literal(f, el); !ok {
			return // not a list of literals: nothing to say about it
		}
	}
	for _, el := range arr.Nodes {
		v, _ := literal(f, el)
		l.outside(f, v)
	}
	for _, g := range f.Equivalent {
		if missing := missingFrom(g, arr.Nodes); len(missing) > 0 && len(missing) < len(g) {
			l.add(CodeOneSpelling, arr.Location().From,
				f.Name+" is "+quoteOr(g)+" for the same thing, and the list misses "+quoteOr(missing)+"; add it")
		}
	}
}

// missingFrom lists the spellings of group that no string literal of
// nodes names.
func missingFrom(group []string, nodes []ast.Node) []string {
	var missing []string
	for _, s := range group {
		named := slices.ContainsFunc(nodes, func(n ast.Node) bool {
			str, ok := n.(*ast.StringNode)
			return ok && str.Value == s
		})
		if !named {
			missing = append(missing, s)
		}
	}
	return missing
}

// startsWith checks f startsWith v against f's values or prefix.
func (l *linter) startsWith(f *imevent.Field, v value) {
	s := v.s
	switch {
	case f.Prefix != "":
		if !strings.HasPrefix(s, f.Prefix) && !strings.HasPrefix(f.Prefix, s) {
			l.add(CodeOutsideDomain, v.at, f.Name+" always starts with "+strconv.Quote(f.Prefix)+", so it never starts with "+
				strconv.Quote(s)+"; use a prefix that starts with "+strconv.Quote(f.Prefix))
		}
	case len(f.Values) > 0:
		if !slices.ContainsFunc(f.Values, func(x string) bool { return strings.HasPrefix(x, s) }) {
			l.add(CodeOutsideDomain, v.at,
				"no documented "+f.Name+" starts with "+strconv.Quote(s)+" ("+f.Name+" is one of "+quoteList(f.Values)+")")
		}
	}
}

// outside reports a value f never takes, and says whether it did.
func (l *linter) outside(f *imevent.Field, v value) bool {
	if v.kind == fkInt {
		if len(f.Ints) == 0 || slices.Contains(f.Ints, v.i) {
			return false
		}
		l.add(CodeOutsideDomain, v.at, f.Name+" is never "+strconv.Itoa(v.i)+": Tencent documents "+intList(f.Ints))
		return true
	}
	if f.Prefix != "" && !strings.HasPrefix(v.s, f.Prefix) {
		l.add(CodeOutsideDomain, v.at, f.Name+" always starts with "+strconv.Quote(f.Prefix)+", so it is never "+strconv.Quote(v.s))
		return true
	}
	if len(f.Values) == 0 || slices.Contains(f.Values, v.s) {
		return false
	}
	hint := ""
	if best := closest(v.s, f.Values); best != "" {
		hint = "; did you mean " + strconv.Quote(best) + "?"
	}
	l.add(CodeOutsideDomain, v.at, f.Name+" is never "+strconv.Quote(v.s)+": Tencent documents "+quoteList(f.Values)+hint)
	return true
}

// equivalents is s's group of equivalent spellings, nil when it has none.
func equivalents(f *imevent.Field, s string) []string {
	for _, g := range f.Equivalent {
		if slices.Contains(g, s) {
			return g
		}
	}
	return nil
}

func quoteList(vals []string) string {
	return "[" + joinQuoted(vals, ", ") + "]"
}

func quoteOr(vals []string) string { return joinQuoted(vals, " or ") }

// joinQuoted joins the Go-quoted vals with sep, in one allocation.
func joinQuoted(vals []string, sep string) string {
	b := make([]byte, 0, 64)
	for i, v := range vals {
		if i > 0 {
			b = append(b, sep...)
		}
		b = strconv.AppendQuote(b, v)
	}
	return string(b)
}

func intList(vals []int) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = strconv.Itoa(v)
	}
	return strings.Join(q, " or ")
}

func zeroText(f *imevent.Field) string {
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
	return fmt.Sprintf("always %t on %s, so %s; compare fields the on commands carry (docs/rules.md#event-fields), or change on", v, cmdList(on), what)
}

// constantOn reports whether the when root has the same value v on every
// command of on, judging only from what the decoder guarantees: a field a
// command does not carry is its zero value, CallbackCommand is the
// command, a literal is itself. Anything else is unknown, so a constant
// found here is certain. A literal true or false is left alone: that is
// written on purpose.
func constantOn(root ast.Node, on []string) (v bool, ok bool) {
	if _, lit := root.(*ast.BoolNode); lit || len(on) == 0 {
		return false, false
	}
	for i, cmd := range on {
		got, known := foldNode(root, cmd)
		if !known || got.kind != fkBool || i > 0 && got.b != v {
			return false, false
		}
		v = got.b
	}
	return v, true
}

// foldNode is n's value on cmd's events when it is known without an
// event.
func foldNode(n ast.Node, cmd string) (value, bool) {
	switch n := n.(type) {
	case *ast.BoolNode:
		return value{kind: fkBool, b: n.Value}, true
	case *ast.IntegerNode:
		return value{kind: fkInt, i: n.Value}, true
	case *ast.StringNode:
		return value{kind: fkString, s: n.Value}, true
	case *ast.IdentifierNode:
		return foldField(n.Value, cmd)
	case *ast.UnaryNode:
		return foldUnary(n, cmd)
	case *ast.BinaryNode:
		return foldBinary(n, cmd)
	}
	return value{}, false
}

// foldField is the value of a field known on every event of cmd: the
// command itself, or the zero value of a field cmd does not carry.
func foldField(name, cmd string) (value, bool) {
	f := tableFields[name]
	switch {
	case f == nil:
		return value{}, false
	case name == "CallbackCommand":
		return value{kind: fkString, s: cmd}, true
	case f.Carries(cmd):
		return value{}, false
	case f.Type == "int":
		return value{kind: fkInt}, true
	}
	return value{kind: fkString}, true
}

func foldUnary(n *ast.UnaryNode, cmd string) (value, bool) {
	x, ok := foldNode(n.Node, cmd)
	if !ok || x.kind != fkBool || n.Operator != "!" && n.Operator != "not" {
		return value{}, false
	}
	return value{kind: fkBool, b: !x.b}, true
}

// foldBinary folds the logical operators (one known operand can decide
// them), == and != between operands of one type, and in over a list of
// literals. Mixed types are left unknown: expr's rules for them (an int
// equals a float) are not worth reproducing here.
func foldBinary(n *ast.BinaryNode, cmd string) (value, bool) {
	switch n.Operator {
	case "&&", "and", "||", "or":
		return foldLogic(n, cmd)
	case "==", "!=":
		l, lok := foldNode(n.Left, cmd)
		r, rok := foldNode(n.Right, cmd)
		if !lok || !rok || l.kind != r.kind {
			return value{}, false
		}
		return value{kind: fkBool, b: (l == r) == (n.Operator == "==")}, true
	case "in":
		return foldIn(n, cmd)
	}
	return value{}, false
}

func foldLogic(n *ast.BinaryNode, cmd string) (value, bool) {
	and := n.Operator == "&&" || n.Operator == "and"
	l, lok := foldNode(n.Left, cmd)
	r, rok := foldNode(n.Right, cmd)
	lok, rok = lok && l.kind == fkBool, rok && r.kind == fkBool
	// The operand that decides alone: false for &&, true for ||.
	if lok && l.b != and || rok && r.b != and {
		return value{kind: fkBool, b: !and}, true
	}
	if lok && rok {
		return value{kind: fkBool, b: and}, true
	}
	return value{}, false
}

func foldIn(n *ast.BinaryNode, cmd string) (value, bool) {
	x, ok := foldNode(n.Left, cmd)
	arr, isArr := n.Right.(*ast.ArrayNode)
	if !ok || !isArr {
		return value{}, false
	}
	for _, el := range arr.Nodes {
		v, ok := foldNode(el, cmd)
		if !ok || v.kind != x.kind {
			return value{}, false
		}
		if v == x {
			return value{kind: fkBool, b: true}, true
		}
	}
	return value{kind: fkBool}, true
}

// findingPos is f's place in src as an expr error, for exprPos, which maps
// it into the rule file the way it maps compile errors: the 1-based line
// and 0-based rune column of the rune offset f.at.
func findingPos(src string, f finding) error {
	line, col, i := 1, 0, 0
	for _, r := range src {
		if i == f.at {
			break
		}
		if r == '\n' {
			line, col = line+1, 0
		} else {
			col++
		}
		i++
	}
	return &file.Error{Line: line, Column: col}
}

// parseLint reads the codes of a rule's lint: {ignore: [CODE, ...]}, if
// the rule's fields have one.
func (p *fileParser) parseLint(rule map[string]kv, what string) []string {
	lint, ok := rule["lint"]
	if !ok {
		return nil
	}
	what += ": lint"
	fields, ok := p.mapping(lint.val, what, lintKeys)
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
