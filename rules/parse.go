package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/rules/imevent"
)

// The known keys of each mapping are in keys.go.

// loader compiles the rule files of one Load and collects its problems.
type loader struct {
	reg      *actions.Registry
	exprOpts []expr.Option // the environment every expression compiles against
	compiler *exprCompiler
	problems []Problem
	warnings []Problem         // lint warnings, not ignored by their rules
	names    map[string]string // rule name -> where it was first defined
	proto    map[string]any
	lim      limits
	lists    []ListDecl   // declared under lists:, in file order
	listUses []listUse    // checked against lists once every file is read
	binding  *listBinding // Options.Lists, for the fast path's list lookups

	counters      []*counterSpec          // declared, in file order
	counterByName map[string]*counterSpec // the compiler's too
}

func newLoader(reg *actions.Registry, getenv func(string) string, lim limits) *loader {
	proto := EnvPrototype()
	envOpt := expr.Function(envFn, readEnv(getenv),
		new(func(string) string), // typed: env(1) or env() is a compile error
	)
	// profile() is a function of the environment, not an expr.Function,
	// so that each evaluation can give its own (see setProfileFn).
	withProfile := maps.Clone(proto)
	withProfile[profileFn] = profileStub
	opts := append([]expr.Option{expr.Env(withProfile), envOpt, rawOption(), expr.Optimize(true)}, budgetOptions()...)
	binding := &listBinding{}
	opts = append(opts, listOptions(binding)...)
	opts = append(opts, countOptions()...)
	l := &loader{
		binding:  binding,
		reg:      reg,
		exprOpts: opts,
		compiler: newExprCompiler(opts),
		names:    make(map[string]string),
		proto:    proto,
		lim:      lim,

		counterByName: make(map[string]*counterSpec),
	}
	l.compiler.counters = l.counterByName
	return l
}

// fileParser walks the node tree of one file.
type fileParser struct {
	l     *loader
	path  string
	lines []string // the file's lines, to place expression errors exactly
	bad   bool     // the rule being parsed has a problem
	// pending are the lint warnings of the rule being parsed, kept until
	// its lint: ignore is known.
	pending []Problem
	// templates are the parameter strings compiled so far, by node: a
	// string reached through many aliases is compiled once.
	templates map[*yaml.Node]tmplResult
}

type tmplResult struct {
	pv *pval
	ok bool
}

func (p *fileParser) problem(line, col int, format string, args ...any) {
	p.l.problems = append(p.l.problems, Problem{File: p.path, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
	p.bad = true
}

func (p *fileParser) errAt(n *yaml.Node, format string, args ...any) {
	p.problem(n.Line, n.Column, format, args...)
}

// decodedFile is a rule file decoded, before its rules are parsed: the
// declarations of every file (counters:) are read before any rule, so that
// a rule may use a counter declared in another file.
type decodedFile struct {
	p      *fileParser
	root   *yaml.Node
	fields map[string]kv // nil: the file has a problem already reported
}

// decodeFile decodes one file and checks its top level.
func (l *loader) decodeFile(src *source) decodedFile {
	p := &fileParser{l: l, path: src.path, lines: strings.Split(string(src.data), "\n")}
	f := decodedFile{p: p}
	dec := yaml.NewDecoder(bytes.NewReader(src.data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.problem(1, 1, emptyFileMsg)
		} else {
			p.yamlError(src.data, err)
		}
		return f
	}
	if len(doc.Content) == 0 {
		p.problem(1, 1, emptyFileMsg)
		return f
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		at := &next
		if len(next.Content) > 0 {
			at = next.Content[0]
		}
		p.errAt(at, "a second YAML document in one file; keep every rule under the first document's rules:")
	} else if !errors.Is(err, io.EOF) {
		p.yamlError(src.data, err)
	}

	// Before anything walks the tree, which expands aliases as it goes.
	if be := checkYAMLBounds(&doc, l.lim); be != nil {
		p.errAt(be.at, "%s", be.msg)
		return f
	}
	f.root = resolve(doc.Content[0])
	if fields, ok := p.mapping(f.root, "file", ruleFileKeys); ok {
		f.fields = fields
	}
	return f
}

// parseDecls reads a decoded file's declarations: its counters.
func (l *loader) parseDecls(f decodedFile) {
	if kv, ok := f.fields["counters"]; ok {
		f.p.parseCounters(kv.val)
	}
}

// parseRules parses the rules of a decoded file, each marked ok or not.
// Problems go to the loader.
func (l *loader) parseRules(f decodedFile) []*rule {
	p, root, fields := f.p, f.root, f.fields
	if fields == nil {
		return nil
	}
	if kv, ok := fields["lists"]; ok {
		p.parseLists(kv.val)
	}
	kv, ok := fields["rules"]
	if !ok {
		p.errAt(root, "missing key rules")
		return nil
	}
	list := resolve(kv.val)
	if isNull(list) {
		p.errAt(kv.key, emptyRulesMsg)
		return nil
	}
	if list.Kind != yaml.SequenceNode {
		p.errAt(list, "rules: want a list of rules, got %s", describeNode(list))
		return nil
	}
	out := make([]*rule, 0, len(list.Content))
	for _, item := range list.Content {
		if r := p.parseRule(item); r != nil {
			out = append(out, r)
		}
	}
	return out
}

// parseRule compiles one item of rules:. It returns nil only when the item
// is not a mapping at all.
func (p *fileParser) parseRule(item *yaml.Node) *rule {
	p.bad, p.pending = false, nil
	n := resolve(item)
	r := &rule{file: p.path, line: n.Line, col: n.Column, enabled: true, on: []string{defaultCommand}}

	// The name comes first so that every later message can say which rule.
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if resolve(n.Content[i]).Value == "name" {
				r.name = p.parseName(n, resolve(n.Content[i+1]))
				break
			}
		}
	}
	what := "rule"
	if r.name != "" {
		what = fmt.Sprintf("rule %q", r.name)
	}
	fields, ok := p.mapping(n, what, ruleKeys)
	if !ok {
		return nil
	}
	if _, ok := fields["name"]; !ok {
		p.errAt(n, "rule: missing required key name")
	}
	if kv, ok := fields["description"]; ok {
		r.description, _ = p.scalarString(kv.val, what+": description")
	}
	if kv, ok := fields["on"]; ok {
		r.on = p.parseOn(kv.val, what)
	}
	if kv, ok := fields["when"]; ok {
		p.parseWhen(kv.val, r, what)
	}
	if kv, ok := fields["enabled"]; ok {
		r.enabled = p.boolean(kv.val, what+": enabled", true)
	}
	if kv, ok := fields["shadow"]; ok {
		r.shadow = p.boolean(kv.val, what+": shadow", false)
	}
	if kv, ok := fields["once"]; ok {
		r.once = p.parseOnce(kv.val, what)
	}
	if kv, ok := fields["actions"]; ok {
		p.eachItem(kv.val, what, "actions", "action", func(item *yaml.Node, w string) {
			if a := p.parseAction(item, r, w); a != nil {
				r.actions = append(r.actions, a)
			}
		})
	}
	if kv, ok := fields["tests"]; ok {
		p.eachItem(kv.val, what, "tests", "test", func(item *yaml.Node, w string) {
			if tc := p.parseTest(item, r, w); tc != nil {
				r.tests = append(r.tests, tc)
			}
		})
	}
	p.warn(r, p.parseLint(fields, what))
	r.ok = !p.bad
	return r
}

func (p *fileParser) parseName(rule, n *yaml.Node) string {
	name, ok := p.scalarString(n, "rule: name")
	if !ok {
		return ""
	}
	if strings.TrimSpace(name) == "" {
		p.errAt(n, "rule: name is empty")
		return ""
	}
	at := fmt.Sprintf("%s:%d:%d", p.path, n.Line, n.Column)
	if first, dup := p.l.names[name]; dup {
		p.errAt(n, "duplicate rule name %q (first defined at %s)", name, first)
	} else {
		p.l.names[name] = at
	}
	return name
}

func (p *fileParser) parseOn(n *yaml.Node, what string) []string {
	n = resolve(n)
	var items []*yaml.Node
	switch n.Kind {
	case yaml.ScalarNode:
		if isNull(n) {
			p.errAt(n, "%s: on is empty; leave it out for the default %s", what, defaultCommand)
			return nil
		}
		items = []*yaml.Node{n}
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			p.errAt(n, "%s: on is an empty list; leave it out for the default %s", what, defaultCommand)
			return nil
		}
		items = n.Content
	default:
		p.errAt(n, "%s: on: want a command or a list of commands, got %s", what, describeNode(n))
		return nil
	}
	var out []string
	for _, it := range items {
		cmd, ok := p.scalarString(it, what+": on")
		if !ok {
			continue
		}
		it = resolve(it)
		switch {
		case !imevent.IsCommand(cmd):
			p.errAt(it, "%s: unknown command %q%s", what, cmd, suggestion(cmd, imevent.Commands))
		case slices.Contains(out, cmd):
			p.errAt(it, "%s: command %q is listed twice in on", what, cmd)
		default:
			out = append(out, cmd)
		}
	}
	return out
}

func (p *fileParser) parseWhen(n *yaml.Node, r *rule, what string) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.errAt(n, "%s: when: want an expression, got %s", what, describeNode(n))
		return
	}
	r.whenSrc = n.Value
	var found []finding
	prog, cond, key, err := p.l.compileLinted(r.whenSrc, r.on, &found)
	if err != nil {
		line, col := p.exprPos(n, 0, err)
		p.problem(line, col, "%s: when: %s", what, exprMessage(err))
		return
	}
	r.when, r.cond, r.whenKey = prog, cond, key
	r.usesLists = len(p.l.compiler.lists) > 0
	p.noteLists(n, 0, r.whenSrc, what+": when")
	for _, f := range found {
		line, col := p.exprPos(n, 0, findingPos(r.whenSrc, f))
		p.pending = append(p.pending, Problem{File: p.path, Line: line, Col: col, Code: f.code, Msg: what + ": when: " + f.msg})
	}
}

// compileWhen compiles a condition for the VM, for the fast path (cond is
// nil when it must run in the VM) and for the index (key is nil when no
// conjunct is indexable).
func (l *loader) compileWhen(src string) (prog *vm.Program, cond func(*imevent.Event) bool, key *indexKey, err error) {
	return l.compileLinted(src, nil, nil)
}

// compileLinted is compileWhen that also lints the condition for the
// commands on into *found, unless found is nil: the checked tree lint
// reads exists only inside the compile.
func (l *loader) compileLinted(src string, on []string, found *[]finding) (prog *vm.Program, cond func(*imevent.Event) bool, key *indexKey, err error) {
	prog, err = l.compiler.compile(src, "bool", func(n ast.Node) {
		cond, key = fastCond(n), indexKeyOf(n, l.proto)
		if found != nil {
			*found = lintWhen(n, on)
		}
	}, expr.AsBool())
	if err != nil {
		return nil, nil, nil, err
	}
	return prog, cond, key, nil
}

func (p *fileParser) parseOnce(n *yaml.Node, what string) *onceSpec {
	what += ": once"
	fields, ok := p.mapping(n, what, onceKeys)
	if !ok {
		return nil
	}
	o := &onceSpec{dur: defaultOnceFor}
	kv, ok := fields["key"]
	if !ok {
		p.errAt(resolve(n), "%s: missing required key key", what)
		return nil
	}
	kn := resolve(kv.val)
	if kn.Kind != yaml.ScalarNode || isNull(kn) {
		p.errAt(kn, "%s: key: want an expression, got %s", what, describeNode(kn))
		return nil
	}
	o.src = kn.Value
	var fast fexpr
	prog, err := p.l.compiler.compile(o.src, "string", func(n ast.Node) { fast, _ = fastCompile(n) }, expr.AsKind(reflect.String))
	if err != nil {
		line, col := p.exprPos(kn, 0, err)
		p.problem(line, col, "%s: key: %s", what, exprMessage(err))
		return nil
	}
	o.key = prog
	if p.noteLists(kn, 0, o.src, what+": key") {
		fast = fexpr{} // the VM, which reports a list's error
	}
	if fast.kind == fkString {
		o.fast = fast.s
	}
	if kv, ok := fields["for"]; ok {
		d, ok := p.duration(kv.val, what+": for")
		if ok && d < time.Second {
			// The key-value store keeps keys for at least 100 ms, and a
			// window this short cannot stop a duplicate anyway.
			p.errAt(resolve(kv.val), "%s: for must be at least 1s, got %s", what, d)
		}
		o.dur = d
	}
	return o
}
