package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"gopkg.in/yaml.v3"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/internal/suggest"
	"github.com/friendflow/friendflow/rules/imevent"
)

// The known keys of each mapping are in keys.go.

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

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
}

func newLoader(reg *actions.Registry, getenv func(string) string, lim limits) *loader {
	proto := EnvPrototype()
	envOpt := expr.Function(envFn, readEnv(getenv),
		new(func(string) string), // typed: env(1) or env() is a compile error
	)
	opts := append([]expr.Option{expr.Env(proto), envOpt, rawOption(), expr.Optimize(true)}, budgetOptions()...)
	return &loader{
		reg:      reg,
		exprOpts: opts,
		compiler: newExprCompiler(opts),
		names:    make(map[string]string),
		proto:    proto,
		lim:      lim,
	}
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

// parseFile returns every rule of the file, each marked ok or not. Problems
// go to the loader.
func (l *loader) parseFile(src *source) []*rule {
	p := &fileParser{l: l, path: src.path, lines: strings.Split(string(src.data), "\n")}
	dec := yaml.NewDecoder(bytes.NewReader(src.data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.problem(1, 1, emptyFileMsg)
		} else {
			p.yamlError(src.data, err)
		}
		return nil
	}
	if len(doc.Content) == 0 {
		p.problem(1, 1, emptyFileMsg)
		return nil
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
	if be := checkYAMLBounds(&doc, l.lim.nodes, l.lim.aliasDepth); be != nil {
		p.errAt(be.at, "%s", be.msg)
		return nil
	}
	root := resolve(doc.Content[0])
	fields, ok := p.mapping(root, "file", ruleFileKeys)
	if !ok {
		return nil
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

func (p *fileParser) yamlError(data []byte, err error) {
	msg, line := yamlMessage(err)
	if l := yamlErrorLine(data, msg); l > 0 {
		line = l
	}
	p.problem(max(line, 1), 1, "invalid YAML: %s", msg)
}

// yamlMessage splits a yaml.v3 syntax error into its message and the line
// it names, if any.
func yamlMessage(err error) (string, int) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return m[2], line
	}
	return strings.TrimPrefix(msg, "yaml: "), 0
}

// yamlErrorLine finds the line of a syntax error: yaml.v3 names the line
// where the enclosing block starts, or none at all. It is the shortest
// prefix of the file, in whole lines, that fails with the same message;
// found by bisection, so a few parses of a file that is broken anyway.
func yamlErrorLine(data []byte, msg string) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	fails := func(k int) bool {
		dec := yaml.NewDecoder(bytes.NewReader(bytes.Join(lines[:k], nil)))
		for {
			var n yaml.Node
			err := dec.Decode(&n)
			if err == nil {
				continue
			}
			if errors.Is(err, io.EOF) {
				return false
			}
			m, _ := yamlMessage(err)
			return m == msg
		}
	}
	if !fails(len(lines)) {
		return 0
	}
	lo, hi := 1, len(lines)
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

type kv struct{ key, val *yaml.Node }

// mapping checks that n is a mapping with no duplicate and, when known is
// not nil, no unknown keys, and returns its pairs by key.
func (p *fileParser) mapping(n *yaml.Node, what string, known []string) (map[string]kv, bool) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errAt(n, "%s: want a mapping, got %s", what, describeNode(n))
		return nil, false
	}
	out := make(map[string]kv, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		if k.Kind != yaml.ScalarNode {
			p.errAt(k, "%s: a key must be a name, got %s", what, describeNode(k))
			continue
		}
		if _, dup := out[k.Value]; dup {
			p.errAt(k, "%s: duplicate key %q", what, k.Value)
			continue
		}
		if known != nil && !slices.Contains(known, k.Value) {
			p.errAt(k, "%s: unknown key %q%s", what, k.Value, suggestion(k.Value, known))
			continue
		}
		out[k.Value] = kv{key: k, val: n.Content[i+1]}
	}
	return out, true
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

// eachItem calls fn for every item of a list value (null is an empty
// list), naming each "<what>: <item> N" for its problems.
func (p *fileParser) eachItem(n *yaml.Node, what, key, item string, fn func(*yaml.Node, string)) {
	list := resolve(n)
	switch {
	case isNull(list):
	case list.Kind != yaml.SequenceNode:
		p.errAt(list, "%s: %s: want a list, got %s", what, key, describeNode(list))
	default:
		for i, it := range list.Content {
			fn(it, fmt.Sprintf("%s: %s %d", what, item, i+1))
		}
	}
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

func (p *fileParser) parseAction(item *yaml.Node, r *rule, what string) *action {
	n := resolve(item)
	if n.Kind != yaml.MappingNode {
		p.errAt(n, "%s: want a mapping with one action kind, like `- log: {message: hi}`, got %s", what, describeNode(n))
		return nil
	}
	fields, _ := p.mapping(n, what, nil)
	var kindKey *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		if slices.Contains(actionKeys, k.Value) || fields[k.Value].key != k {
			continue // common keys, and keys mapping already reported
		}
		if kindKey != nil {
			p.errAt(k, "%s: two action kinds in one item (%s and %s); give each action its own list item", what, kindKey.Value, k.Value)
			continue
		}
		kindKey = k
	}
	if kindKey == nil {
		p.errAt(n, "%s: no action kind (known: %s)", what, strings.Join(p.l.reg.Names(), ", "))
		return nil
	}
	kind, ok := p.l.reg.Lookup(kindKey.Value)
	if !ok {
		p.errAt(kindKey, "%s: unknown action kind %q%s", what, kindKey.Value, suggestion(kindKey.Value, p.l.reg.Names()))
		return nil
	}
	spec := kind.Spec()
	what = fmt.Sprintf("%s (%s)", what, spec.Name)
	if spec.Sync {
		// Only a before-callback's reply decides anything.
		for _, cmd := range r.on {
			if !imevent.IsPrev(cmd) {
				p.errAt(kindKey, "%s: %s cannot be used on %s (only on %s)", what, spec.Name, cmd, strings.Join(prevCommands(), ", "))
			}
		}
	}
	a := &action{kind: spec.Name, spec: spec, retry: actions.DefaultRetry}

	pn := resolve(fields[kindKey.Value].val)
	paramsOK := true
	switch {
	case isNull(pn):
		a.params = &pval{kind: pvMap}
	case pn.Kind != yaml.MappingNode:
		p.errAt(pn, "%s: parameters: want a mapping, got %s", what, describeNode(pn))
		return nil
	default:
		// Even with a broken template, the Spec still checks the rest.
		a.params, paramsOK = p.value(pn, what)
		escapeURLParams(spec.Params, a.params)
	}
	if _, err := spec.Check(a.params.loadValue().(map[string]any)); err != nil {
		var pe *actions.ParamError
		at := kindKey
		if errors.As(err, &pe) && pe.Path != "" {
			if key, val, found := findParam(pn, pe.Path); found {
				at = val
				if strings.HasPrefix(pe.Msg, "unknown parameter") {
					at = key
				}
			} else if key != nil {
				at = key
			}
		}
		p.errAt(at, "%s: %s", what, err)
	}

	if kv, ok := fields["delay"]; ok {
		if spec.Sync {
			p.errAt(kv.key, "%s: %s is decided while the callback waits; it takes no delay", what, spec.Name)
		}
		d, ok := p.duration(kv.val, what+": delay")
		if ok && d < 0 {
			p.errAt(resolve(kv.val), "%s: delay must not be negative", what)
		}
		a.delay = d
	}
	if kv, ok := fields["retry"]; ok {
		if spec.Sync {
			p.errAt(kv.key, "%s: %s is decided while the callback waits; it takes no retry", what, spec.Name)
		}
		p.parseRetry(kv.val, &a.retry, what+": retry")
	}
	if !paramsOK {
		return nil
	}
	return a
}

func (p *fileParser) parseRetry(n *yaml.Node, r *Retry, what string) {
	fields, ok := p.mapping(n, what, retryKeys)
	if !ok {
		return
	}
	if kv, ok := fields["attempts"]; ok {
		v := resolve(kv.val)
		var a int
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Decode(&a) != nil {
			p.errAt(v, "%s: attempts: want an integer, got %s", what, describeNode(v))
		} else if a < 1 {
			p.errAt(v, "%s: attempts must be at least 1", what)
		} else {
			r.Attempts = a
		}
	}
	if kv, ok := fields["backoff"]; ok {
		if d, ok := p.duration(kv.val, what+": backoff"); ok {
			if d <= 0 {
				p.errAt(resolve(kv.val), "%s: backoff must be positive", what)
			}
			r.Backoff = d
		}
	}
	if kv, ok := fields["max_backoff"]; ok {
		if d, ok := p.duration(kv.val, what+": max_backoff"); ok {
			r.MaxBackoff = d
		}
	}
	if r.MaxBackoff < r.Backoff {
		at := resolve(n)
		if kv, ok := fields["max_backoff"]; ok {
			at = resolve(kv.val)
		}
		p.errAt(at, "%s: max_backoff (%s) is shorter than backoff (%s)", what, r.MaxBackoff, r.Backoff)
	}
}

// value converts a parameter's YAML value, compiling its templates. It
// returns a value even when not ok (a failed template stands in as a
// template), so that the kind's Spec can still check the rest.
func (p *fileParser) value(n *yaml.Node, what string) (*pval, bool) {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		pv := &pval{kind: pvMap}
		ok := true
		seen := make(map[string]bool, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolve(n.Content[i])
			if k.Kind != yaml.ScalarNode {
				p.errAt(k, "%s: a key must be a name, got %s", what, describeNode(k))
				ok = false
				continue
			}
			if seen[k.Value] {
				p.errAt(k, "%s: duplicate key %q", what, k.Value)
				ok = false
				continue
			}
			seen[k.Value] = true
			v, vok := p.value(n.Content[i+1], what)
			ok = ok && vok
			pv.keys = append(pv.keys, k.Value)
			pv.vals = append(pv.vals, v)
		}
		return pv, ok
	case yaml.SequenceNode:
		pv := &pval{kind: pvList, vals: make([]*pval, 0, len(n.Content))}
		ok := true
		for _, it := range n.Content {
			v, vok := p.value(it, what)
			ok = ok && vok
			pv.vals = append(pv.vals, v)
		}
		return pv, ok
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" {
			if r, seen := p.templates[n]; seen {
				return r.pv, r.ok
			}
			pv, ok := p.templateValue(n, what)
			if p.templates == nil {
				p.templates = make(map[*yaml.Node]tmplResult)
			}
			p.templates[n] = tmplResult{pv, ok}
			return pv, ok
		}
		v, err := scalarValue(n)
		if err != nil {
			p.errAt(n, "%s: %v", what, err)
			return &pval{kind: pvStatic}, false
		}
		return &pval{kind: pvStatic, static: v}, true
	}
	p.errAt(n, "%s: unsupported YAML value", what)
	return &pval{kind: pvStatic}, false
}

func (p *fileParser) templateValue(n *yaml.Node, what string) (*pval, bool) {
	s := n.Value
	spans, tail, err := scanTemplate(s)
	if err != nil {
		p.errAt(n, "%s: %v", what, err)
		return &pval{kind: pvTemplate}, false
	}
	if spans == nil {
		return &pval{kind: pvStatic, static: tail}, true
	}
	t := &template{single: len(spans) == 1 && spans[0].lit == "" && tail == "" && spans[0].start == 2 && spans[0].end == len(s)-1}
	ok := true
	for _, sp := range spans {
		if sp.lit != "" {
			t.parts = append(t.parts, tmplPart{lit: sp.lit})
		}
		src := s[sp.start:sp.end]
		var (
			fast fexpr // kind 0: the VM
			raw  bool
		)
		prog, err := p.l.compiler.compile(src, "", func(n ast.Node) { fast, _ = fastCompile(n); raw = isRawCall(n) })
		if err != nil {
			line, col := p.exprPos(n, sp.start, err)
			p.problem(line, col, "%s: ${ %s }: %s", what, strings.TrimSpace(src), exprMessage(err))
			ok = false
			continue
		}
		t.parts = append(t.parts, tmplPart{src: strings.TrimSpace(src), prog: prog, fast: fast, raw: raw})
	}
	if tail != "" {
		t.parts = append(t.parts, tmplPart{lit: tail})
	}
	for _, part := range t.parts {
		t.size += len(part.lit)
		if part.prog != nil {
			t.size += 16 // an account name, a number
		}
	}
	return &pval{kind: pvTemplate, tmpl: t}, ok
}

// scalarValue converts a non-string YAML scalar to int, float64, bool or
// nil.
func scalarValue(n *yaml.Node) (any, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case int64:
		return int(x), nil
	case uint64:
		if x > math.MaxInt64 {
			return float64(x), nil
		}
		return int(x), nil
	case int, float64, bool, nil, string:
		return v, nil
	}
	return fmt.Sprint(v), nil
}

// staticValue converts a YAML value without templates (the expected
// parameters of a test case) to JSON-compatible data.
func (p *fileParser) staticValue(n *yaml.Node, what string) (any, bool) {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		fields, ok := p.mapping(n, what, nil)
		if !ok {
			return nil, false
		}
		out := make(map[string]any, len(fields))
		for k, kv := range fields {
			v, vok := p.staticValue(kv.val, what)
			ok = ok && vok
			out[k] = v
		}
		return out, ok
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		ok := true
		for _, it := range n.Content {
			v, vok := p.staticValue(it, what)
			ok = ok && vok
			out = append(out, v)
		}
		return out, ok
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" {
			return n.Value, true
		}
		v, err := scalarValue(n)
		if err != nil {
			p.errAt(n, "%s: %v", what, err)
			return nil, false
		}
		return v, true
	}
	p.errAt(n, "%s: unsupported YAML value", what)
	return nil, false
}

func (p *fileParser) parseTest(item *yaml.Node, r *rule, what string) *testCase {
	n := resolve(item)
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if resolve(n.Content[i]).Value == "name" {
				if v := resolve(n.Content[i+1]); v.Kind == yaml.ScalarNode && v.Value != "" {
					what = fmt.Sprintf("%s %q", what, v.Value)
				}
			}
		}
	}
	fields, ok := p.mapping(n, what, testKeys)
	if !ok {
		return nil
	}
	tc := &testCase{line: n.Line, col: n.Column}
	good := true
	if kv, ok := fields["name"]; ok {
		tc.name, _ = p.scalarString(kv.val, what+": name")
	} else {
		p.errAt(n, "%s: missing required key name", what)
		good = false
	}
	if kv, ok := fields["match"]; ok {
		v := resolve(kv.val)
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" || v.Decode(&tc.match) != nil {
			p.errAt(v, "%s: match: want true or false, got %s", what, describeNode(v))
			good = false
		}
	} else {
		p.errAt(n, "%s: missing required key match", what)
		good = false
	}
	ev, ok := p.testEvent(fields, r, what)
	good = good && ok
	tc.event = ev
	if kv, ok := fields["actions"]; ok {
		list := resolve(kv.val)
		if list.Kind != yaml.SequenceNode {
			p.errAt(list, "%s: actions: want a list, got %s", what, describeNode(list))
			return nil
		}
		for i, it := range list.Content {
			ea, ok := p.expectedAction(it, fmt.Sprintf("%s: action %d", what, i+1))
			if !ok {
				good = false
				continue
			}
			tc.actions = append(tc.actions, ea)
		}
	}
	if kv, ok := fields["decision"]; ok {
		d, ok := p.expectedDecision(kv.val, what+": decision")
		if ok && !imevent.IsPrev(tc.event.CallbackCommand) {
			p.errAt(kv.val, "%s: decision: only before-callbacks (Sns.CallbackPrevFriendAdd, Sns.CallbackPrevFriendResponse) are decided; this test's event is %s", what, tc.event.CallbackCommand)
			ok = false
		}
		good = good && ok
		tc.decision = d
	}
	if !good {
		return nil
	}
	return tc
}

// expectedDecision reads a test's decision: allow, deny, or a mapping
// {deny: CODE, reason: TEXT} (both optional: a deny with any code/reason).
func (p *fileParser) expectedDecision(n *yaml.Node, what string) (*expectedDecision, bool) {
	v := resolve(n)
	if v.Kind == yaml.ScalarNode {
		switch v.Value {
		case "allow":
			return &expectedDecision{}, true
		case "deny":
			return &expectedDecision{deny: true}, true
		}
		p.errAt(v, "%s: want allow, deny or {deny: CODE, reason: TEXT}, got %q", what, v.Value)
		return nil, false
	}
	fields, ok := p.mapping(v, what, decisionKeys)
	if !ok {
		return nil, false
	}
	d := &expectedDecision{deny: true}
	if kv, has := fields["deny"]; has {
		c := resolve(kv.val)
		if c.Kind != yaml.ScalarNode || c.ShortTag() != "!!int" || c.Decode(&d.code) != nil {
			p.errAt(c, "%s: deny: want a result code (38000-39000), got %s", what, describeNode(c))
			return nil, false
		}
	}
	if kv, has := fields["reason"]; has {
		r, ok := p.scalarString(kv.val, what+": reason")
		if !ok {
			return nil, false
		}
		d.reason = &r
	}
	return d, true
}

// testEvent builds a test case's event from its partial mapping of event
// fields, checked against the event's own field names and types.
func (p *fileParser) testEvent(fields map[string]kv, r *rule, what string) (imevent.Event, bool) {
	var ev imevent.Event
	vals := make(map[string]any)
	ok := true
	if kv, has := fields["event"]; has {
		en := resolve(kv.val)
		if !isNull(en) {
			ef, mok := p.mapping(en, what+": event", nil)
			if !mok {
				return ev, false
			}
			for name, f := range ef {
				proto, known := p.l.proto[name]
				if !known {
					p.errAt(f.key, "%s: event: unknown field %q%s", what, name, suggestion(name, sortedKeys(p.l.proto)))
					ok = false
					continue
				}
				v := resolve(f.val)
				switch proto.(type) {
				case string:
					if v.Kind != yaml.ScalarNode || isNull(v) {
						p.errAt(v, "%s: event: %s: want a string, got %s", what, name, describeNode(v))
						ok = false
						continue
					}
					vals[name] = v.Value
				case int:
					var i int
					if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Decode(&i) != nil {
						p.errAt(v, "%s: event: %s: want an integer, got %s", what, name, describeNode(v))
						ok = false
						continue
					}
					vals[name] = i
				}
			}
		}
	}
	if cmd, has := vals["CallbackCommand"].(string); has {
		if !imevent.IsCommand(cmd) {
			p.errAt(resolve(fields["event"].val), "%s: event: unknown command %q%s", what, cmd, suggestion(cmd, imevent.Commands))
			ok = false
		}
	} else if len(r.on) > 0 {
		vals["CallbackCommand"] = r.on[0]
	}
	data, err := json.Marshal(vals)
	if err == nil {
		err = json.Unmarshal(data, &ev)
	}
	if err != nil { // the checks above make this unreachable
		p.errAt(resolve(fields["event"].val), "%s: event: %v", what, err)
		ok = false
	}
	return ev, ok
}

func (p *fileParser) expectedAction(item *yaml.Node, what string) (expectedAction, bool) {
	n := resolve(item)
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		p.errAt(n, "%s: want a mapping with one action kind and its expected parameters, like `- log: {message: hi}`", what)
		return expectedAction{}, false
	}
	k := resolve(n.Content[0])
	kind, ok := p.l.reg.Lookup(k.Value)
	if !ok {
		p.errAt(k, "%s: unknown action kind %q%s", what, k.Value, suggestion(k.Value, p.l.reg.Names()))
		return expectedAction{}, false
	}
	ea := expectedAction{kind: k.Value, spec: kind.Spec(), params: map[string]any{}}
	pn := resolve(n.Content[1])
	if isNull(pn) {
		return ea, true
	}
	if pn.Kind != yaml.MappingNode {
		p.errAt(pn, "%s: parameters: want a mapping, got %s", what, describeNode(pn))
		return ea, false
	}
	known := make([]string, len(ea.spec.Params))
	for i, prm := range ea.spec.Params {
		known[i] = prm.Name
	}
	fields, ok := p.mapping(pn, what, known)
	if !ok {
		return ea, false
	}
	for i := 0; i+1 < len(pn.Content); i += 2 {
		name := resolve(pn.Content[i]).Value
		if fields[name].key != resolve(pn.Content[i]) {
			ok = false // reported by mapping
			continue
		}
		v, vok := p.staticValue(pn.Content[i+1], what)
		if !vok {
			ok = false
			continue
		}
		ea.keys = append(ea.keys, name)
		ea.params[name] = v
	}
	return ea, ok
}

func (p *fileParser) scalarString(n *yaml.Node, what string) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.errAt(n, "%s: want a string, got %s", what, describeNode(n))
		return "", false
	}
	return n.Value, true
}

func (p *fileParser) boolean(n *yaml.Node, what string, def bool) bool {
	n = resolve(n)
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		p.errAt(n, "%s: want true or false, got %s", what, describeNode(n))
		return def
	}
	return b
}

func (p *fileParser) duration(n *yaml.Node, what string) (time.Duration, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.errAt(n, "%s: want a duration like 30s, 10m or 24h, got %s", what, describeNode(n))
		return 0, false
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		p.errAt(n, "%s: invalid duration %q (use e.g. 30s, 10m, 24h)", what, n.Value)
		return 0, false
	}
	return d, true
}

// exprPos places an expr compile error inside the YAML scalar n whose
// expression starts at byte offset start of n.Value. It is exact for plain
// and quoted scalars on one line (when no escape changes the text) and for
// literal blocks (|); otherwise it falls back to the scalar's own position.
func (p *fileParser) exprPos(n *yaml.Node, start int, err error) (line, col int) {
	var fe *file.Error
	if !errors.As(err, &fe) || fe.Line < 1 {
		return n.Line, n.Column
	}
	value := n.Value
	// Position of the error inside value: 0-based line, 0-based rune column.
	before := value[:start]
	vLine := strings.Count(before, "\n")
	vCol := utf8.RuneCountInString(before[strings.LastIndexByte(before, '\n')+1:])
	if fe.Line == 1 {
		vCol += fe.Column
	} else {
		vLine += fe.Line - 1
		vCol = fe.Column
	}
	if n.Line < 1 || n.Line > len(p.lines) {
		return n.Line, n.Column
	}
	switch {
	case !strings.Contains(value, "\n") && n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0:
		rest, ok := fromRune(p.lines[n.Line-1], n.Column-1)
		if !ok {
			break
		}
		quoted := n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0
		if quoted {
			if rest == "" {
				break
			}
			rest = rest[1:]
		}
		if !strings.HasPrefix(rest, value) {
			break // escapes or folding changed the text
		}
		if quoted {
			return n.Line, n.Column + 1 + vCol
		}
		return n.Line, n.Column + vCol
	case n.Style&yaml.LiteralStyle != 0:
		valueLines := strings.Split(value, "\n")
		srcIdx := n.Line + vLine // n.Line is the "|" line; content starts below
		if vLine >= len(valueLines) || srcIdx >= len(p.lines) {
			break
		}
		srcLine, vl := p.lines[srcIdx], valueLines[vLine]
		indent := strings.TrimSuffix(srcLine, vl)
		if len(indent) == len(srcLine) && vl != "" || strings.TrimLeft(indent, " ") != "" {
			break
		}
		return srcIdx + 1, utf8.RuneCountInString(indent) + vCol + 1
	}
	return n.Line, n.Column
}

// fromRune is line from its rune i on; false when line is shorter. It
// slices instead of converting to runes: lint places a warning with
// exprPos for every finding of every load.
func fromRune(line string, i int) (string, bool) {
	for off := range line {
		if i == 0 {
			return line[off:], true
		}
		i--
	}
	return "", i == 0
}

// exprMessage is an expr error without its source snippet (the problem's
// position already says where), with a likely event field for a misspelt
// name.
func exprMessage(err error) string {
	msg := err.Error()
	var fe *file.Error
	if errors.As(err, &fe) {
		msg = fe.Message
	}
	msg = strings.TrimSpace(msg)
	if name, ok := strings.CutPrefix(msg, "unknown name "); ok {
		if best := closest(name, sortedKeys(EnvPrototype())); best != "" {
			msg += fmt.Sprintf("; did you mean %s?", best)
		}
	}
	return msg
}

// findParam follows a ParamError path ("custom.data") through the params
// mapping. found reports whether the whole path exists; otherwise key is the
// deepest key found, if any.
func findParam(params *yaml.Node, path string) (key, val *yaml.Node, found bool) {
	n := resolve(params)
	rest := path
	for rest != "" && n.Kind == yaml.MappingNode {
		next := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolve(n.Content[i]).Value
			if rest == k || strings.HasPrefix(rest, k+".") {
				key, val = resolve(n.Content[i]), resolve(n.Content[i+1])
				rest = strings.TrimPrefix(strings.TrimPrefix(rest, k), ".")
				n = val
				next = true
				break
			}
		}
		if !next {
			break
		}
	}
	return key, val, rest == "" && key != nil
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return resolve(n.Content[0])
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing"
		case "!!bool":
			return "a bool"
		case "!!int", "!!float":
			return "a number " + n.Value
		}
		return fmt.Sprintf("the string %q", n.Value)
	}
	return "an unsupported YAML value"
}

// suggestion names the closest known word, when one is close enough to be
// a likely typo, and lists the known words.
func suggestion(got string, known []string) string {
	list := strings.Join(known, ", ")
	if best := closest(got, known); best != "" {
		return fmt.Sprintf("; did you mean %q? (known: %s)", best, list)
	}
	return " (known: " + list + ")"
}

// closest returns the known word nearest to got, if it is near enough to
// be a typo.
func closest(got string, known []string) string {
	return suggest.Closest(got, known, maxSuggestDistance)
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// prevCommands are the before-callbacks, for messages.
func prevCommands() []string {
	var cmds []string
	for _, c := range imevent.Commands {
		if imevent.IsPrev(c) {
			cmds = append(cmds, c)
		}
	}
	return cmds
}
