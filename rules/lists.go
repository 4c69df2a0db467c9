package rules

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"go.yaml.in/yaml/v3"

	"github.com/friendflow/friendflow/rules/imevent"
)

// Operator-managed lists (docs/rules.md, "Lists"): a rule file declares a list's name
// under lists:, its members change at run time (engine/state), and a
// condition asks `X in list("NAME")`. The loader rewrites each such `in`
// into a call of inListFn that passes the evaluation's environment, whose
// listsKey entry is the Lists to ask: the deployment's for Match, a test
// case's own members for its tests:, a recording one for Explain. Match
// runs such a condition on the fast path (fastInList) while the Set's
// Lists are ready. The check is one lookup in the Lists (engine/state: a
// hash set in memory); the member set itself never enters expr.

// Lists answers membership of the operator-managed lists.
// engine/state's Lists implements it. A Lists whose Contains can fail also
// has a method Ready() error, nil once Contains no longer fails: rules
// that look a list up take the fast path only then, and the VM, which
// reports the error, before.
type Lists interface {
	// Contains reports whether member is in the list named name; a list
	// nobody wrote to is empty. An error (the lists are not loaded yet)
	// fails the rule for the event, as any run-time error does.
	Contains(name, member string) (bool, error)
}

// ListDecl is one list a rule file declares.
type ListDecl struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	File        string `json:"file"`
	Line        int    `json:"line"`
}

// ListValue is one list membership an evaluation looked up: explain
// shows them.
type ListValue struct {
	List   string `json:"list"`
	Member string `json:"member"`
	In     bool   `json:"in"`
	Error  string `json:"error,omitempty"`
}

const (
	// listFn is the function rules write; inListFn and listsKey cannot be
	// written in an expression (they hold a space).
	listFn   = "list"
	inListFn = "ff inlist"
	listsKey = "ff lists"
)

// listNameRE is what a list name may be: engine/state.CheckName's rule,
// one key token of the lists bucket and a path segment of the admin API.
var listNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

var errListUse = errors.New(`list("NAME") can only be the right side of in, as in From_Account in list("spammers"), with the list's name in quotes`)

// listBinding is the Lists of one Load's Set (Options.Lists), which the
// fast path's closures read: the patcher puts it into every inListFn call
// as a constant, where fastCompile finds it and the VM ignores it.
type listBinding struct{ src Lists }

// listEnv is what an evaluation's environment carries under listsKey.
type listEnv struct {
	src   Lists        // nil: every list is empty
	trace *[]ListValue // when set, every lookup is appended
}

// withLists installs le in env, the environment of an evaluation.
func withLists(env map[string]any, le *listEnv) map[string]any {
	env[listsKey] = le
	return env
}

// listOptions are the expr options of lists: the two functions and the
// patch that turns `X in list("NAME")` into inListFn($env, X, "NAME",
// binding).
func listOptions(b *listBinding) []expr.Option {
	list := &builtin.Function{
		Name:     listFn,
		Func:     func(...any) (any, error) { return nil, errListUse },
		Validate: func([]reflect.Type) (reflect.Type, error) { return nil, errListUse },
	}
	in := &builtin.Function{Name: inListFn, Func: inList, Validate: validateInList}
	return []expr.Option{
		func(c *conf.Config) { c.Functions[listFn], c.Functions[inListFn] = list, in },
		expr.Patch(listPatcher{b: b}),
	}
}

func validateInList(args []reflect.Type) (reflect.Type, error) {
	if len(args) != 4 {
		return nil, errListUse
	}
	if k := args[1].Kind(); k != reflect.String && k != reflect.Interface {
		return nil, fmt.Errorf("in list(...): the left side must be a string, an account such as From_Account; got %s", args[1])
	}
	return reflect.TypeFor[bool](), nil
}

// inList(env, member, name, binding) looks member up in the
// environment's lists.
func inList(args ...any) (any, error) {
	env, _ := args[0].(map[string]any)
	le, _ := env[listsKey].(*listEnv)
	member, _ := args[1].(string)
	name, _ := args[2].(string)
	if le == nil || le.src == nil {
		return le.record(name, member, false, nil)
	}
	in, err := le.src.Contains(name, member)
	return le.record(name, member, in, err)
}

func (le *listEnv) record(name, member string, in bool, err error) (any, error) {
	if le != nil && le.trace != nil {
		v := ListValue{List: name, Member: member, In: in}
		if err != nil {
			v.Error = err.Error()
		}
		if !slices.Contains(*le.trace, v) {
			*le.trace = append(*le.trace, v)
		}
	}
	if err != nil {
		return false, fmt.Errorf("list %q: %w", name, err)
	}
	return in, nil
}

// listPatcher rewrites `X in list("NAME")`; any other use of list() is
// left for its Validate to refuse.
type listPatcher struct{ b *listBinding }

func (p listPatcher) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BinaryNode)
	if !ok || b.Operator != "in" {
		return
	}
	c := callTo(b.Right, listFn)
	if c == nil || len(c.Arguments) != 1 {
		return
	}
	name, ok := c.Arguments[0].(*ast.StringNode)
	if !ok {
		return
	}
	env := &ast.IdentifierNode{Value: "$env"}
	lit := &ast.StringNode{Value: name.Value}
	bind := &ast.ConstantNode{Value: p.b}
	call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: inListFn}, Arguments: []ast.Node{env, b.Left, lit, bind}}
	for _, n := range []ast.Node{env, lit, bind, call.Callee, call} {
		n.SetLocation(c.Location())
	}
	*node = call // keeps call's location: list( is where a problem points
}

// listRef is a list name an expression uses, at a rune offset of it.
type listRef struct {
	name string
	at   int
}

// listRefs returns the lists the checked tree n looks up.
func listRefs(n ast.Node) []listRef {
	var v listRefVisitor
	ast.Walk(&n, &v)
	return v.refs
}

type listRefVisitor struct{ refs []listRef }

func (v *listRefVisitor) Visit(n *ast.Node) {
	if c := callTo(*n, inListFn); c != nil && len(c.Arguments) == 4 {
		if s, ok := c.Arguments[2].(*ast.StringNode); ok {
			v.refs = append(v.refs, listRef{name: s.Value, at: c.Location().From})
		}
	}
}

// listUse is a list name a rule uses, where it uses it.
type listUse struct {
	name      string
	what      string
	line, col int
	file      string
}

// noteLists records the lists the last expression compiled looks up, src
// being written at offset start of the YAML scalar n, and reports
// whether it looks any up.
func (p *fileParser) noteLists(n *yaml.Node, start int, src, what string) bool {
	for _, r := range p.l.compiler.lists {
		line, col := p.exprPos(n, start, findingPos(src, finding{at: r.at}))
		p.l.listUses = append(p.l.listUses, listUse{name: r.name, what: what, file: p.path, line: line, col: col})
	}
	return len(p.l.compiler.lists) > 0
}

// parseLists reads a file's lists:.
func (p *fileParser) parseLists(n *yaml.Node) {
	p.eachItem(n, "file", "lists", "list", func(item *yaml.Node, what string) {
		fields, ok := p.mapping(item, what, listKeys)
		if !ok {
			return
		}
		kv, ok := fields["name"]
		if !ok {
			p.errAt(resolve(item), "%s: missing required key name", what)
			return
		}
		name, ok := p.scalarString(kv.val, what+": name")
		if !ok {
			return
		}
		at := resolve(kv.val)
		if !listNameRE.MatchString(name) {
			p.errAt(at, "list %q: a name is 1 to 64 of A-Z, a-z, 0-9, '_' and '-'", name)
			return
		}
		d := ListDecl{Name: name, File: p.path, Line: at.Line}
		if kv, ok := fields["description"]; ok {
			d.Description, _ = p.scalarString(kv.val, what+": description")
		}
		if i := slices.IndexFunc(p.l.lists, func(o ListDecl) bool { return o.Name == name }); i >= 0 {
			p.errAt(at, "duplicate list name %q (first declared at %s:%d)", name, p.l.lists[i].File, p.l.lists[i].Line)
			return
		}
		p.l.lists = append(p.l.lists, d)
	})
}

// checkListUses reports every use of a list no file declares.
func (l *loader) checkListUses() {
	known := make([]string, len(l.lists))
	for i, d := range l.lists {
		known[i] = d.Name
	}
	for _, u := range l.listUses {
		if slices.Contains(known, u.name) {
			continue
		}
		msg := fmt.Sprintf("%s: unknown list %q; declare it under lists: in a rule file", u.what, u.name)
		if len(known) > 0 {
			msg += suggestion(u.name, known)
		}
		l.problems = append(l.problems, Problem{File: u.file, Line: u.line, Col: u.col, Msg: msg})
	}
}

// ListSource is the Lists the set's list() reads (Options.Lists).
func (s *Set) ListSource() Lists { return s.lists }

// Lists are the lists the rule files declare, in file order.
func (s *Set) Lists() []ListDecl { return slices.Clone(s.decls) }

// testLists are a test case's list members: the only members its lists
// have while it runs.
type testLists map[string][]string

func (t testLists) Contains(name, member string) (bool, error) {
	return slices.Contains(t[name], member), nil
}

// parseTestLists reads a test case's lists: {NAME: [MEMBER, ...]}.
func (p *fileParser) parseTestLists(n *yaml.Node, what string) (testLists, bool) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errAt(n, "%s: lists: want a mapping of list names to members, got %s", what, describeNode(n))
		return nil, false
	}
	out := testLists{}
	good := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		p.l.listUses = append(p.l.listUses, listUse{name: k.Value, what: what + ": lists", file: p.path, line: k.Line, col: k.Column})
		if v.Kind != yaml.SequenceNode {
			p.errAt(v, "%s: lists: %s: want a list of members, got %s", what, k.Value, describeNode(v))
			good = false
			continue
		}
		members := []string{}
		for _, m := range v.Content {
			s, ok := p.scalarString(m, what+": lists: "+k.Value)
			good = good && ok
			members = append(members, s)
		}
		out[k.Value] = members
	}
	return out, good
}

// fastInList compiles inListFn(env, X, "NAME", binding) for the fast
// path: one lookup in the Set's Lists. It answers false on an error,
// which Match never lets it see: it takes the fast path for such a rule
// only while the Lists are ready (Set.listsReady), and the VM otherwise.
func fastInList(c *ast.CallNode) (fexpr, bool) {
	if len(c.Arguments) != 4 {
		return fexpr{}, false
	}
	l, ok := fastCompile(c.Arguments[1])
	name, nok := c.Arguments[2].(*ast.StringNode)
	bc, bok := c.Arguments[3].(*ast.ConstantNode)
	if !ok || !nok || !bok || l.kind != fkString {
		return fexpr{}, false
	}
	b, _ := bc.Value.(*listBinding)
	if b == nil {
		return fexpr{}, false
	}
	ls, list := l.s, name.Value
	return boolExpr(func(e *imevent.Event) bool {
		if b.src == nil {
			return false
		}
		in, err := b.src.Contains(list, ls(e))
		return in && err == nil
	})
}

// listsReady says whether the Set's Lists answer without errors now:
// only then may a rule that looks a list up take the fast path.
func (s *Set) listsReady() bool {
	if r, ok := s.lists.(interface{ Ready() error }); ok {
		return r.Ready() == nil
	}
	return true
}
