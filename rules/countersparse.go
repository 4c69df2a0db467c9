package rules

// The counters: key of a rule file (docs/rules.md, "Counters: rules with memory"), parsed and checked at load.

import (
	"fmt"
	"reflect"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"go.yaml.in/yaml/v3"
)

// parseCounters reads a file's counters: into the loader's counters.
func (p *fileParser) parseCounters(n *yaml.Node) {
	p.eachItem(n, "file", "counters", "counter", func(item *yaml.Node, what string) {
		if c := p.parseCounter(item, what); c != nil {
			p.l.counters = append(p.l.counters, c)
			p.l.counterByName[c.Name] = c
		}
	})
}

func (p *fileParser) parseCounter(item *yaml.Node, what string) *counterSpec {
	n := resolve(item)
	fields, ok := p.mapping(n, what, counterKeys)
	if !ok {
		return nil
	}
	c := &counterSpec{file: p.path, line: n.Line, col: n.Column, Counter: Counter{On: []string{defaultCommand}}}
	good := true
	if kv, ok := fields["name"]; !ok {
		p.errAt(n, "%s: missing required key name", what)
		good = false
	} else if name, ok := p.scalarString(kv.val, what+": name"); ok {
		what = fmt.Sprintf("counter %q", name)
		switch first := p.l.counterByName[name]; {
		case !counterNameRE.MatchString(name):
			p.errAt(resolve(kv.val), "%s: name: want a letter then up to 63 of a-z, A-Z, 0-9, '_' and '-'", what)
			good = false
		case first != nil:
			p.errAt(resolve(kv.val), "duplicate counter name %q (first defined at %s:%d:%d)", name, first.file, first.line, first.col)
			good = false
		}
		c.Name = name
	} else {
		good = false
	}
	if kv, ok := fields["on"]; ok {
		c.On = p.parseOn(kv.val, what)
		good = good && len(c.On) > 0
	}
	good = p.counterKey(c, fields, n, what) && good
	good = p.counterWindow(c, fields, n, what) && good
	if !good {
		return nil
	}
	return c
}

func (p *fileParser) counterKey(c *counterSpec, fields map[string]kv, n *yaml.Node, what string) bool {
	kv, ok := fields["key"]
	if !ok {
		p.errAt(n, "%s: missing required key key", what)
		return false
	}
	kn := resolve(kv.val)
	if kn.Kind != yaml.ScalarNode || isNull(kn) {
		p.errAt(kn, "%s: key: want an expression, got %s", what, describeNode(kn))
		return false
	}
	c.Key = kn.Value
	var fast fexpr
	known := p.l.compiler.counters
	p.l.compiler.counters = nil // a key cannot count: counting comes first
	prog, err := p.l.compiler.compile(c.Key, "string", func(n ast.Node) { fast, _ = fastCompile(n) }, expr.AsKind(reflect.String))
	p.l.compiler.counters = known
	if err != nil {
		line, col := p.exprPos(kn, 0, err)
		p.problem(line, col, "%s: key: %s", what, exprMessage(err))
		return false
	}
	c.key = prog
	if fast.kind == fkString {
		c.fast = fast.s
	}
	return true
}

func (p *fileParser) counterWindow(c *counterSpec, fields map[string]kv, n *yaml.Node, what string) bool {
	kv, ok := fields["window"]
	if !ok {
		p.errAt(n, "%s: missing required key window", what)
		return false
	}
	d, ok := p.duration(kv.val, what+": window")
	if !ok {
		return false
	}
	if d < MinCounterWindow || d > MaxCounterWindow {
		p.errAt(resolve(kv.val), "%s: window must be between %s and %s, got %s", what, MinCounterWindow, shortDuration(MaxCounterWindow), d)
		return false
	}
	c.Window = d
	return true
}
